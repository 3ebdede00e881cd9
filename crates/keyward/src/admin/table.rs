//! Plain-text output: aligned tables and key/value listings, plus the cell formatting the
//! resources share. No external crate: columns are padded to their widest cell.

use std::fmt::Display;

use chrono::{DateTime, SecondsFormat, Utc};
use keyward_core::ip::IpAllowlist;

/// Space between columns.
const GAP: &str = "  ";

/// Rows of cells under an optional header, rendered with aligned columns.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// A headerless two-column listing of `key: value` lines, for a single record.
    pub(crate) fn details<K: Display>(pairs: impl IntoIterator<Item = (K, String)>) -> Self {
        let mut table = Self::default();
        for (key, value) in pairs {
            table.row([format!("{key}:"), value]);
        }
        table
    }

    /// Adds a row; cells from the server are cleaned of control characters, so a name cannot
    /// break the layout or send escape sequences to the terminal.
    pub(crate) fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows
            .push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    /// The table as text, one line per row, without trailing spaces or a final newline.
    pub(crate) fn render(&self) -> String {
        let lines: Vec<&Vec<String>> = if self.header.is_empty() {
            self.rows.iter().collect()
        } else {
            std::iter::once(&self.header).chain(&self.rows).collect()
        };
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                lines
                    .iter()
                    .filter_map(|l| l.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        lines
            .iter()
            .map(|line| {
                let mut out = String::new();
                for (i, (cell, width)) in line.iter().zip(&widths).enumerate() {
                    if i > 0 {
                        out.push_str(GAP);
                    }
                    out.push_str(cell);
                    out.push_str(&" ".repeat(width.saturating_sub(cell.chars().count())));
                }
                out.trim_end().to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Replaces control characters (newlines, escapes) with visible stand-ins.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// An instant as `2026-01-01T12:00:00Z`, or `-`.
pub(crate) fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

/// A value, or `placeholder` when absent.
pub(crate) fn or<T: Display>(value: Option<T>, placeholder: &str) -> String {
    value.map_or_else(|| placeholder.to_owned(), |v| v.to_string())
}

/// Items separated by commas, or `-` for none.
pub(crate) fn list<T: Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An allowlist's entries separated by commas, or `empty` when it has none.
pub(crate) fn ips(list: &IpAllowlist, empty: &str) -> String {
    if list.is_empty() {
        return empty.to_owned();
    }
    list.entries().join(", ")
}

/// A rate limit as `N/min`, or `placeholder` when unset.
/// A level's own limit with what it counts (`150/min per user`), or `placeholder`.
pub(crate) fn budget(
    limit: Option<(u32, keyward_core::RateLimitPer)>,
    placeholder: &str,
) -> String {
    or(
        limit.map(|(n, per)| format!("{n}/min per {per}")),
        placeholder,
    )
}

/// `yes` or `no`.
pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let mut t = Table::new(&["ID", "NAME", "STATUS"]);
        t.row(["tok_1".into(), "a much longer name".into(), "active".into()]);
        t.row(["tok_22".into(), "short".into(), "revoked".into()]);
        assert_eq!(
            t.render(),
            "ID      NAME                STATUS\n\
             tok_1   a much longer name  active\n\
             tok_22  short               revoked"
        );
    }

    #[test]
    fn details_and_cleaning() {
        let t = Table::details([
            ("id", "x".to_owned()),
            ("name", "evil\u{1b}[2J\nname".to_owned()),
        ]);
        assert_eq!(t.render(), "id:    x\nname:  evil?[2J name");
        assert_eq!(Table::new(&["A"]).render(), "A");
    }

    #[test]
    fn allowlists_and_rate_limits() {
        let list = IpAllowlist::parse_input("192.168.1.7\n10.1.2.3/8", "ip_allowlist").unwrap();
        assert_eq!(ips(&list, "any"), "10.0.0.0/8, 192.168.1.7/32");
        assert_eq!(ips(&IpAllowlist::default(), "any"), "any");
        let user = keyward_core::RateLimitPer::User;
        assert_eq!(budget(Some((150, user)), "default"), "150/min per user");
        assert_eq!(budget(None, "default"), "default");
    }
}

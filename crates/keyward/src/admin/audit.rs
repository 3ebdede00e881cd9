//! `keyward audit list|tail|export|verify|checkpoint`: the workspace's audit trail as a table,
//! followed live, exported as NDJSON or CSV; its keyed hash chain checked, alone or against a
//! checkpoint kept elsewhere (non-zero exit when broken); and checkpoints of its head printed
//! as one line of JSON to keep.

use std::time::Duration;

use anyhow::bail;
use chrono::{DateTime, Utc};
use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery, AuditVerification, Checkpoint};

use super::args;
use super::table::{self, Table};
use super::{emit, Ctx, PageArgs};

/// `keyward audit …`.
#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// List events, oldest first (or newest first with --desc).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Newest first.
        #[arg(long)]
        desc: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Print events as they happen (after the last few), until interrupted.
    Tail {
        #[command(flatten)]
        filter: FilterArgs,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2)]
        interval: u64,
    },
    /// Write every matching event to standard output.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// `ndjson` (one JSON event per line) or `csv`.
        #[arg(long, value_enum, default_value = "ndjson")]
        format: Format,
    },
    /// Check the keyed hash chain; exits non-zero and names the first broken event if it is not
    /// intact.
    Verify {
        /// Also check that the chain still passes, unchanged, through the checkpoint in this
        /// file (as printed by `keyward audit checkpoint`; `-` for standard input).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<std::path::PathBuf>,
    },
    /// Print the chain's head signed with the chain key, as one line of JSON, to store
    /// somewhere the database's writers cannot reach.
    Checkpoint,
}

/// Export formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row.
    Csv,
}

/// Filters shared by the verbs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only events by this token or user (`tok_…`, `usr_…`).
    #[arg(long)]
    actor: Option<String>,
    /// Only events about or by this token (`--token` is the caller's own secret).
    #[arg(long = "token-id", value_name = "TOKEN_ID")]
    token_id: Option<String>,
    /// Only this action (`token.revoked`) or family (`token.*`).
    #[arg(long)]
    action: Option<String>,
    /// From this RFC 3339 time.
    #[arg(long, value_parser = args::instant)]
    from: Option<DateTime<Utc>>,
    /// Until this RFC 3339 time.
    #[arg(long, value_parser = args::instant)]
    to: Option<DateTime<Utc>>,
}

impl FilterArgs {
    fn query(&self) -> AuditQuery {
        AuditQuery {
            actor: self.actor.clone(),
            token: self.token_id.clone(),
            action: self.action.clone(),
            from: self.from,
            to: self.to,
            ..AuditQuery::default()
        }
    }
}

pub(crate) async fn run(cmd: AuditCmd, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::List { filter, desc, page } => {
            let base = AuditQuery {
                order: desc.then(|| "desc".to_owned()),
                limit: page.limit,
                ..filter.query()
            };
            let listed = page
                .fetch(|cursor| {
                    let q = AuditQuery {
                        cursor,
                        ..base.clone()
                    };
                    async move { ctx.client.audit(&q).await }
                })
                .await?;
            ctx.show_page(&listed, events_table)
        }
        AuditCmd::Tail { filter, interval } => tail(ctx, &filter, interval).await,
        AuditCmd::Export { filter, format } => export(ctx, &filter, format).await,
        AuditCmd::Checkpoint => {
            let cp = ctx.client.audit_checkpoint().await?;
            emit(&serde_json::to_string(&cp)?)
        }
        AuditCmd::Verify { checkpoint } => {
            let v = match checkpoint {
                None => ctx.client.verify_audit().await?,
                Some(path) => {
                    let cp = read_checkpoint(&path)?;
                    ctx.client.verify_audit_checkpoint(&cp).await?
                }
            };
            ctx.show(&v, verification)?;
            match v.first_broken {
                Some(b) => bail!("audit trail broken at event {}: {}", b.seq, b.reason),
                None => Ok(()),
            }
        }
    }
}

/// Reads a checkpoint line from `path` (`-`: standard input).
fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<Checkpoint> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?
    };
    serde_json::from_str(text.trim())
        .map_err(|e| anyhow::anyhow!("{} is not a keyward checkpoint: {e}", path.display()))
}

async fn tail(ctx: &Ctx, filter: &FilterArgs, interval: u64) -> anyhow::Result<()> {
    let last = AuditQuery {
        order: Some("desc".into()),
        limit: Some(10),
        ..filter.query()
    };
    let mut recent = ctx.client.audit(&last).await?.items;
    recent.reverse();
    let mut cursor = recent.last().map(|e| e.seq).unwrap_or(0);
    print_events(ctx, &recent)?;
    loop {
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
        let q = AuditQuery {
            cursor: Some(cursor.to_string()),
            limit: Some(1000),
            ..filter.query()
        };
        let Page { items, .. } = ctx.client.audit(&q).await?;
        if let Some(e) = items.last() {
            cursor = e.seq;
        }
        print_events(ctx, &items)?;
    }
}

fn print_events(ctx: &Ctx, events: &[AuditEventView]) -> anyhow::Result<()> {
    for e in events {
        if ctx.json {
            emit(&serde_json::to_string(e)?)?;
        } else {
            emit(&line(e))?;
        }
    }
    Ok(())
}

fn line(e: &AuditEventView) -> String {
    format!(
        "{:>6}  {}  {:<22} {} {}  by {}{}{}",
        e.seq,
        table::time(Some(e.at)),
        e.action,
        e.target_kind,
        e.target_id,
        actor(e),
        e.ip.as_deref()
            .map(|ip| format!(" from {ip}"))
            .unwrap_or_default(),
        if e.count > 1 {
            format!(" ×{}", e.count)
        } else {
            String::new()
        },
    )
}

async fn export(ctx: &Ctx, filter: &FilterArgs, format: Format) -> anyhow::Result<()> {
    if format == Format::Csv {
        emit("seq,at,actor_kind,actor_token,actor_user,action,target_kind,target_id,ip,count,before,after,prev_hash,hash")?;
    }
    let mut cursor = None;
    loop {
        let q = AuditQuery {
            cursor,
            limit: Some(1000),
            ..filter.query()
        };
        let page = ctx.client.audit(&q).await?;
        for e in &page.items {
            match format {
                Format::Ndjson => emit(&serde_json::to_string(e)?)?,
                Format::Csv => emit(&csv_row(e))?,
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(()),
        }
    }
}

/// One CSV row (RFC 4180 quoting).
pub(crate) fn csv_row(e: &AuditEventView) -> String {
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let cells = [
        e.seq.to_string(),
        e.at.to_rfc3339(),
        e.actor.kind_str().to_owned(),
        e.actor.token_id.map(|t| t.to_string()).unwrap_or_default(),
        e.actor.user_id.map(|u| u.to_string()).unwrap_or_default(),
        e.action.clone(),
        e.target_kind.clone(),
        e.target_id.clone(),
        e.ip.clone().unwrap_or_default(),
        e.count.to_string(),
        json(&e.before),
        json(&e.after),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    cells.iter().map(|c| quote(c)).collect::<Vec<_>>().join(",")
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

fn actor(e: &AuditEventView) -> String {
    match (e.actor.token_id, e.actor.user_id) {
        (Some(t), Some(u)) => format!("{t} ({u})"),
        (Some(t), None) => t.to_string(),
        (None, Some(u)) => u.to_string(),
        (None, None) => e.actor.kind_str().to_owned(),
    }
}

fn events_table(events: &[AuditEventView]) -> Table {
    let mut t = Table::new(&["SEQ", "AT", "ACTION", "TARGET", "ACTOR", "IP"]);
    for e in events {
        t.row([
            e.seq.to_string(),
            table::time(Some(e.at)),
            e.action.clone(),
            format!("{} {}", e.target_kind, e.target_id),
            actor(e),
            table::or(e.ip.as_deref(), "-"),
        ]);
    }
    t
}

fn verification(v: &AuditVerification) -> Table {
    let state = match &v.first_broken {
        None => "intact".to_owned(),
        Some(b) => format!("BROKEN at event {}: {}", b.seq, b.reason),
    };
    let mut rows = vec![
        ("chain", state),
        ("events checked", v.events_checked.to_string()),
        ("last event", v.head_seq.to_string()),
    ];
    rows.push((
        "keyed from",
        v.keyed_from
            .map_or_else(|| "-".to_owned(), |s| format!("event {s}")),
    ));
    if let Some(seq) = v.checkpoint_seq {
        rows.push(("checkpoint", format!("event {seq}")));
    }
    Table::details(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::audit::{Actor, AuditEventView};

    #[test]
    fn csv_quotes_what_needs_it() {
        let e = AuditEventView {
            seq: 7,
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            actor: Actor::SYSTEM,
            action: "role.updated".into(),
            target_kind: "role".into(),
            target_id: "rol_x".into(),
            before: Some(serde_json::json!({"name": "a,\"b\""})),
            after: None,
            ip: None,
            count: 1,
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        let row = csv_row(&e);
        assert!(row.starts_with("7,2023-11-14T22:13:20+00:00,system,,,role.updated,role,rol_x,,1,"));
        assert!(row.contains(r#""{""name"":""a,\""b\""""}""#), "{row}");
        assert!(row.ends_with(",,p,h"), "{row}");
    }
}

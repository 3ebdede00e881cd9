//! The audit export: every event matching the log's filters, oldest first, as JSON Lines (the
//! API's event objects, one per line) or CSV, streamed page by page as a download. A file holds
//! at most [`EXPORT_CAP`] events; a longer export ends with a line saying so and naming the
//! cursor to continue from.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery};

use super::{filters_of, refused, EXPORT_STEP};
use crate::ops;
use crate::state::AppState;
use crate::ui::auth::Person;
use crate::ui::page::{explain, message};

/// Most events in one export.
pub const EXPORT_CAP: usize = 100_000;

/// The file formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// One JSON object per line, as `GET /v1/audit` shows events.
    Jsonl,
    /// RFC 4180 CSV with a header row; before/after as JSON text.
    Csv,
}

const CSV_HEADER: &str = "seq,at,actor_kind,actor_token_id,actor_user_id,action,target_kind,\
                          target_id,ip,count,before,after,prev_hash,hash\r\n";

/// One CSV field: quoted when it holds a comma, quote or line break; a text starting like a
/// spreadsheet formula (`= + - @`, tab, CR) gets a leading `'` so opening the file runs nothing.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let prefix = if formula { "'" } else { "" };
    if value.contains([',', '"', '\n', '\r']) || formula {
        out.push('"');
        out.push_str(prefix);
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn json_text(v: &Option<serde_json::Value>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// `e` as one line of `format`, appended to `out`.
fn write_event(out: &mut String, format: Format, e: &AuditEventView) {
    match format {
        Format::Jsonl => {
            if let Ok(line) = serde_json::to_string(e) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        Format::Csv => {
            let fields = [
                e.seq.to_string(),
                e.at.to_rfc3339(),
                e.actor.kind.as_str().to_owned(),
                e.actor.token_id.map(|t| t.to_string()).unwrap_or_default(),
                e.actor.user_id.map(|u| u.to_string()).unwrap_or_default(),
                e.action.clone(),
                e.target_kind.clone(),
                e.target_id.clone(),
                e.ip.clone().unwrap_or_default(),
                e.count.to_string(),
                json_text(&e.before),
                json_text(&e.after),
                e.prev_hash.clone(),
                e.hash.clone(),
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(out, f);
            }
            out.push_str("\r\n");
        }
    }
}

/// The last line of an export cut off at the cap, naming the cursor to continue from.
fn write_cut(out: &mut String, format: Format, cap: usize, cursor: &str) {
    let note =
        format!("export stopped at {cap} events; export again with cursor={cursor} for the rest");
    match format {
        Format::Jsonl => {
            let line = serde_json::json!({
                "truncated": true,
                "limit": cap,
                "next_cursor": cursor,
                "message": note,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Format::Csv => {
            csv_field(out, &format!("# {note}"));
            out.push_str("\r\n");
        }
    }
}

/// The lines of one step of an export that has `sent` events so far: the events of `page` up
/// to `cap` in all. Returns the text, how many events it holds, and the cursor of the next
/// step (`None` at the end; after a cut, the cut line is written and `None` returned).
fn export_step(
    format: Format,
    page: &Page<AuditEventView>,
    sent: usize,
    cap: usize,
) -> (String, usize, Option<String>) {
    let mut out = String::new();
    let room = cap.saturating_sub(sent);
    let take = page.items.len().min(room);
    for e in &page.items[..take] {
        write_event(&mut out, format, e);
    }
    let more = take < page.items.len() || page.next_cursor.is_some();
    if sent + take >= cap && more {
        let cursor = page.items[..take]
            .last()
            .map(|e| e.seq.to_string())
            .or_else(|| page.next_cursor.clone())
            .unwrap_or_default();
        write_cut(&mut out, format, cap, &cursor);
        return (out, take, None);
    }
    (out, take, page.next_cursor.clone())
}

/// A response body fed by a channel: the export task sends chunks, the connection reads them.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|r| r.map(hyper::body::Frame::data)))
    }
}

pub(super) async fn export(
    State(state): State<AppState>,
    person: Person,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = person.caller.require("keyward.audit:read") {
        return refused(&person, &e);
    }
    let (f, x) = filters_of(&pairs);
    let format = match x.format.as_deref() {
        None | Some("jsonl") => Format::Jsonl,
        Some("csv") => Format::Csv,
        Some(_) => {
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                person.chrome("Export"),
                "Choose the format jsonl or csv.",
                "/ui/audit",
                "Back to the audit log",
            )
        }
    };
    let back = format!("/ui/audit?{}", f.link());
    let q = match f.query() {
        Ok(q) => AuditQuery {
            order: Some("asc".into()),
            limit: Some(EXPORT_STEP),
            cursor: x.cursor,
            ..q
        },
        Err((_, text)) => {
            let c = person.chrome("Export");
            return message(
                StatusCode::UNPROCESSABLE_ENTITY,
                c,
                text,
                &back,
                "Back to the audit log",
            );
        }
    };
    // The first step before answering, so a refused filter is a page, not a broken download.
    let first = match ops::audit::list(&state, &person.caller, &q).await {
        Ok(p) => p,
        Err(e) => {
            let (_, text, status) = explain(&e);
            return message(
                status,
                person.chrome("Export"),
                text,
                &back,
                "Back to the audit log",
            );
        }
    };
    let day = state.now().format("%Y-%m-%d").to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let caller = person.caller;
    tokio::spawn(async move {
        let mut q = q;
        let mut page = first;
        let mut sent = 0usize;
        if format == Format::Csv && tx.send(Ok(Bytes::from(CSV_HEADER))).await.is_err() {
            return;
        }
        loop {
            let (text, n, next) = export_step(format, &page, sent, EXPORT_CAP);
            sent += n;
            if !text.is_empty() && tx.send(Ok(Bytes::from(text))).await.is_err() {
                return; // the download was abandoned
            }
            let Some(cursor) = next else { return };
            q.cursor = Some(cursor);
            page = match ops::audit::list(&state, &caller, &q).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = ?e, "an audit export failed part-way");
                    let _ = tx
                        .send(Err(std::io::Error::other("the audit export failed")))
                        .await;
                    return;
                }
            };
        }
    });
    let (kind, ext) = match format {
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let disposition = format!("attachment; filename=\"keyward-audit-{day}.{ext}\"");
    let mut response = Body::new(Chunks(rx)).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&EXPORT_CAP.to_string()) {
        h.insert("x-keyward-export-limit", v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: &str) -> String {
        let mut s = String::new();
        csv_field(&mut s, value);
        s
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(row("token.created"), "token.created");
        assert_eq!(row("a,b"), "\"a,b\"");
        assert_eq!(row("{\"a\":\"x\"}"), "\"{\"\"a\"\":\"\"x\"\"}\"");
        assert_eq!(row("=cmd()"), "\"'=cmd()\"");
        assert_eq!(row("line\nbreak"), "\"line\nbreak\"");
    }

    fn event(seq: i64) -> AuditEventView {
        AuditEventView {
            seq,
            at: chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap(),
            actor: keyward_core::audit::Actor::SYSTEM,
            action: "token.created".into(),
            target_kind: "token".into(),
            target_id: "tok_x".into(),
            before: None,
            after: Some(serde_json::json!({"name": "a, \"b\""})),
            ip: Some("127.0.0.1".into()),
            count: 1,
            prev_hash: String::new(),
            hash: "h".into(),
        }
    }

    fn page(seqs: &[i64], more: bool) -> Page<AuditEventView> {
        Page {
            items: seqs.iter().map(|s| event(*s)).collect(),
            next_cursor: more.then(|| seqs.last().unwrap().to_string()),
        }
    }

    #[test]
    fn a_step_goes_on_while_there_is_more() {
        let (text, n, next) = export_step(Format::Jsonl, &page(&[1, 2], true), 0, 10);
        assert_eq!((n, next.as_deref()), (2, Some("2")));
        let lines: Vec<AuditEventView> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, vec![event(1), event(2)]);
        let (_, n, next) = export_step(Format::Jsonl, &page(&[3], false), 2, 10);
        assert_eq!((n, next), (1, None));
    }

    #[test]
    fn the_cap_cuts_with_a_line_naming_the_cursor() {
        let (text, n, next) = export_step(Format::Jsonl, &page(&[5, 6, 7], false), 1, 3);
        assert_eq!((n, next), (2, None));
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["truncated"], true);
        assert_eq!(last["next_cursor"], "6");
        // Exactly at the cap with more to come is a cut too; with nothing more it is not.
        let (text, n, _) = export_step(Format::Csv, &page(&[1, 2], true), 0, 2);
        assert_eq!(n, 2);
        assert!(text.lines().last().unwrap().contains("cursor=2"), "{text}");
        let (text, _, _) = export_step(Format::Csv, &page(&[1, 2], false), 0, 2);
        assert!(!text.contains("stopped"), "{text}");
        assert_eq!(text.lines().count(), 2);
    }
}

//! The audit log: the workspace's events newest first, filtered by a GET form (actor, token,
//! action or family, dates) and paged with the trail's cursor; the export of every matching
//! event as JSON Lines or CSV; and the check of the keyed hash chain. Everything is
//! [`crate::ops::audit`]'s, with the person as the caller (`keyward.audit:read`).
//!
//! An export is streamed page by page, oldest first, and holds at most [`EXPORT_CAP`] events.
//! When there are more, its last line says so and gives the cursor to continue from (an export
//! link takes `cursor=` like the API), so a cut-off file is never mistaken for a whole one.
//!
//! # Layout
//! - this module: the log page, its filters, event rows (shared with a token's activity), and
//!   the chain check.
//! - [`export`]: the download.

pub mod export;

pub use export::EXPORT_CAP;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use keyward_core::api::Page;
use keyward_core::audit::{ActorKind, AuditEventView, AuditQuery};
use keyward_core::UserId;

use super::auth::Person;
use super::page::{explain, html, message, Chrome};
use crate::ops;
use crate::state::AppState;

/// Events on one page of the log.
const PAGE_SIZE: u32 = 50;
/// Events fetched per step of an export (the trail's largest page).
const EXPORT_STEP: u32 = 1000;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/audit", get(list))
        .route("/ui/audit/export", get(export::export))
        .route("/ui/audit/verify", get(verify))
}

fn refused(person: &Person, e: &crate::error::ApiError) -> Response {
    person.refused(e, "/ui", "Back to the overview")
}

/// A time as the log shows it: UTC, to the second.
pub(super) fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The filters of the log as the person typed them (kept to show the form again).
#[derive(Debug, Default, Clone)]
struct Filters {
    actor: String,
    token: String,
    action: String,
    from: String,
    to: String,
}

/// Query parameters besides the filters.
#[derive(Debug, Default)]
struct Extra {
    cursor: Option<String>,
    format: Option<String>,
}

fn filters_of(pairs: &[(String, String)]) -> (Filters, Extra) {
    let mut f = Filters::default();
    let mut x = Extra::default();
    let some = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
    for (k, v) in pairs {
        match k.as_str() {
            "actor" => f.actor = v.trim().to_owned(),
            "token" => f.token = v.trim().to_owned(),
            "action" => f.action = v.trim().to_owned(),
            "from" => f.from = v.trim().to_owned(),
            "to" => f.to = v.trim().to_owned(),
            "cursor" => x.cursor = some(v),
            "format" => x.format = some(v),
            _ => {}
        }
    }
    (f, x)
}

/// A `from`/`to` filter: a day (`2026-06-01`, UTC; a `to` day is included whole) or an RFC 3339
/// instant.
fn bound(raw: &str, field: &str, end: bool) -> Result<Option<DateTime<Utc>>, (String, String)> {
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let day = if end { day.succ_opt() } else { Some(day) };
        if let Some(t) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(Some(Utc.from_utc_datetime(&t)));
        }
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| {
            (
                field.to_owned(),
                "use a date like 2026-06-01 (UTC) or a time like 2026-06-01T12:00:00Z".to_owned(),
            )
        })
}

impl Filters {
    /// The trail query these filters stand for, or the field they get wrong.
    fn query(&self) -> Result<AuditQuery, (String, String)> {
        let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        Ok(AuditQuery {
            actor: some(&self.actor),
            token: some(&self.token),
            action: some(&self.action),
            from: bound(&self.from, "from", false)?,
            to: bound(&self.to, "to", true)?,
            ..AuditQuery::default()
        })
    }

    /// The filters as a query string (without `?`), empty ones left out.
    fn link(&self) -> String {
        [
            ("actor", &self.actor),
            ("token", &self.token),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// `s` percent-encoded for a query string.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One event as the log and a token's activity show it.
pub(super) struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    /// The acting token's page, if the person may see tokens.
    pub actor_link: String,
    pub action: String,
    pub target: String,
    /// The target's page, for a token the person may see.
    pub target_link: String,
    pub ip: String,
    pub count: u32,
    pub before: String,
    pub after: String,
}

fn pretty(v: &Option<serde_json::Value>) -> String {
    v.as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_default()
}

/// The rows of `events`, actors named (when the person may read the trail).
pub(super) async fn rows(
    state: &AppState,
    person: &Person,
    events: &[AuditEventView],
) -> Vec<EventRow> {
    let ids: Vec<UserId> = events.iter().filter_map(|e| e.actor.user_id).collect();
    let names: BTreeMap<UserId, String> = ops::audit::user_names(state, &person.caller, ids)
        .await
        .unwrap_or_default();
    let tokens = person.may("keyward.tokens:read");
    let name = |id: UserId| names.get(&id).cloned().unwrap_or_else(|| id.to_string());
    events
        .iter()
        .map(|e| {
            let (actor, actor_link) = match (e.actor.kind, e.actor.token_id, e.actor.user_id) {
                (ActorKind::Token, Some(t), owner) => (
                    match owner {
                        Some(u) => format!("token {t} (for {})", name(u)),
                        None => format!("token {t}"),
                    },
                    if tokens {
                        format!("/ui/tokens/{t}")
                    } else {
                        String::new()
                    },
                ),
                (ActorKind::System, _, _) => ("keyward (system)".to_owned(), String::new()),
                (_, _, Some(u)) => (name(u), String::new()),
                _ => (e.actor.kind.as_str().to_owned(), String::new()),
            };
            let target_link = if tokens && e.target_kind == "token" && !e.target_id.is_empty() {
                format!("/ui/tokens/{}", e.target_id)
            } else {
                String::new()
            };
            EventRow {
                seq: e.seq,
                at: instant(e.at),
                actor,
                actor_link,
                action: e.action.clone(),
                target: format!("{} {}", e.target_kind, e.target_id),
                target_link,
                ip: e.ip.clone().unwrap_or_default(),
                count: e.count,
                before: pretty(&e.before),
                after: pretty(&e.after),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "audit.html")]
struct ListPage {
    c: Chrome,
    f: Filters,
    field: String,
    field_error: String,
    events: Vec<EventRow>,
    /// The link to the next (older) page, if there is one.
    older: String,
    /// The filters as a query string, for the export links.
    link: String,
    first_page: bool,
    cap: usize,
}

async fn list(
    State(state): State<AppState>,
    person: Person,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(e) = person.caller.require("keyward.audit:read") {
        return refused(&person, &e);
    }
    let (f, x) = filters_of(&pairs);
    let link = f.link();
    let first_page = x.cursor.is_none();
    let answer = match f.query() {
        Ok(q) => {
            let q = AuditQuery {
                order: Some("desc".into()),
                limit: Some(PAGE_SIZE),
                cursor: x.cursor,
                ..q
            };
            ops::audit::list(&state, &person.caller, &q)
                .await
                .map_err(|e| explain(&e))
        }
        Err((field, text)) => Err((Some(field), text, StatusCode::UNPROCESSABLE_ENTITY)),
    };
    let mut c = person.chrome("Audit log");
    let (page, field, field_error, status) = match answer {
        Ok(p) => (p, String::new(), String::new(), StatusCode::OK),
        Err((field, text, status)) => {
            if status == StatusCode::FORBIDDEN {
                return message(status, person.chrome("Not possible"), text, "/ui", "Back");
            }
            c.error = Some(text.clone());
            (
                Page {
                    items: vec![],
                    next_cursor: None,
                },
                field.unwrap_or_default(),
                text,
                status,
            )
        }
    };
    let older = page
        .next_cursor
        .as_deref()
        .map(|cur| {
            let sep = if link.is_empty() { "" } else { "&" };
            format!("/ui/audit?{link}{sep}cursor={}", encode(cur))
        })
        .unwrap_or_default();
    let events = rows(&state, &person, &page.items).await;
    html(
        status,
        &ListPage {
            c,
            f,
            field,
            field_error,
            events,
            older,
            link,
            first_page,
            cap: EXPORT_CAP,
        },
    )
}

#[derive(Template)]
#[template(path = "audit_verify.html")]
struct VerifyPage {
    c: Chrome,
    intact: bool,
    events_checked: u64,
    head_seq: i64,
    broken_seq: String,
    broken_reason: String,
    keyed_from: String,
}

async fn verify(State(state): State<AppState>, person: Person) -> Response {
    let v = match ops::audit::verify(&state, &person.caller).await {
        Ok(v) => v,
        Err(e) => return refused(&person, &e),
    };
    let mut c = person.chrome("Audit chain");
    if !v.intact {
        c.error = Some("The audit chain does not check: events were changed, removed or reordered since they were written.".into());
    }
    html(
        StatusCode::OK,
        &VerifyPage {
            c,
            intact: v.intact,
            events_checked: v.events_checked,
            head_seq: v.head_seq,
            broken_seq: v
                .first_broken
                .as_ref()
                .map(|b| b.seq.to_string())
                .unwrap_or_default(),
            broken_reason: v.first_broken.map(|b| b.reason).unwrap_or_default(),
            keyed_from: v.keyed_from.map(|k| k.to_string()).unwrap_or_default(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_filters_take_days_or_instants() {
        let from = bound("2026-06-01", "from", false).unwrap().unwrap();
        assert_eq!(from.to_rfc3339(), "2026-06-01T00:00:00+00:00");
        let to = bound("2026-06-01", "to", true).unwrap().unwrap();
        assert_eq!(to.to_rfc3339(), "2026-06-02T00:00:00+00:00");
        let t = bound("2026-06-01T12:30:00+02:00", "to", true)
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-06-01T10:30:00+00:00");
        assert_eq!(bound("", "from", false).unwrap(), None);
        assert_eq!(bound("yesterday", "from", false).unwrap_err().0, "from");
    }

    #[test]
    fn filter_links_are_encoded() {
        let f = Filters {
            action: "token.*".into(),
            from: "2026-06-01".into(),
            ..Filters::default()
        };
        assert_eq!(f.link(), "action=token.*&from=2026-06-01");
        assert_eq!(encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}

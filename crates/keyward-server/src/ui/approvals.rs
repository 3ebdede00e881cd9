//! The approvals inbox: pending change requests (every one for an approver, one's own
//! otherwise) with what each would change, field by field, and the latest decided ones.
//!
//! A person who may decide a request (`keyward.security:approve`, workspace scope, not the
//! requester) sees its approval code; the Approve form sends it back hidden, so approving from
//! the dashboard is the same `ops::change_requests::approve` the API calls. Rejecting and
//! cancelling (the requester's own) are `reject` and `cancel`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use keyward_core::api::IpListInput;
use keyward_core::{ApproveChange, ChangeRequest, ChangeRequestId, ChangeTarget, DecideChange};
use serde_json::Value;

use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, redirect, when, Chrome};
use crate::error::ApiError;
use crate::ops;
use crate::ops::change_requests::ChangeRequestQuery;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui/approvals", get(show))
        .route("/ui/approvals/{id}/approve", post(approve))
        .route("/ui/approvals/{id}/reject", post(reject))
        .route("/ui/approvals/{id}/cancel", post(cancel))
}

/// How many decided requests the page shows.
const DECIDED: usize = 20;

/// One field a request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDiff {
    /// The field's name (`ip_allowlist`, `name`, …).
    pub field: String,
    /// Its value before, as shown.
    pub old: String,
    /// The requested value, as shown.
    pub new: String,
}

/// The requested values of `field` among `pending` diffs, joined with " / " ("" when none):
/// what a settings or role page shows next to the field.
pub fn requested_value(pending: &[FieldDiff], field: &str) -> String {
    pending
        .iter()
        .filter(|d| d.field == field)
        .map(|d| d.new.as_str())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Whether `field` holds an IP list (shown canonically, comma-separated).
fn is_ip_list(field: &str) -> bool {
    matches!(field, "ip_allowlist" | "internal_networks")
}

/// An IP list (typed text or entries) as one canonical comma-separated line.
fn ip_line(v: &Value) -> String {
    let entries = serde_json::from_value::<IpListInput>(v.clone())
        .ok()
        .and_then(|l| l.parse("list").ok())
        .map(|l| l.entries().to_vec());
    match entries {
        Some(e) if e.is_empty() => "none".into(),
        Some(e) => e.join(", "),
        None => shown(v),
    }
}

/// A JSON value as the page shows it.
fn shown(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => items.iter().map(shown).collect::<Vec<_>>().join(", "),
        Value::Object(_) => v.to_string(),
    }
}

fn field_diff(field: &str, old: Option<&Value>, new: &Value) -> Option<FieldDiff> {
    let old = old.unwrap_or(&Value::Null);
    let (o, n) = if is_ip_list(field) {
        (ip_line(old), ip_line(new))
    } else {
        (shown(old), shown(new))
    };
    // Lists (permissions) in another order are the same list.
    let same_set = match (old, new) {
        (Value::Array(a), Value::Array(b)) => {
            let mut a: Vec<String> = a.iter().map(shown).collect();
            let mut b: Vec<String> = b.iter().map(shown).collect();
            a.sort();
            b.sort();
            a == b
        }
        _ => false,
    };
    (o != n && !same_set).then(|| FieldDiff {
        field: field.to_owned(),
        old: o,
        new: n,
    })
}

/// The fields of a request's change that differ from the target as it was. A workspace's
/// change is `{settings: {…}, name?}`; a role's or token's, its fields.
pub fn diff(r: &ChangeRequest) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    let Some(change) = r.change.as_object() else {
        return out;
    };
    for (k, new) in change {
        if k == "reason" {
            continue;
        }
        if r.target == ChangeTarget::Workspace && k == "settings" {
            if let Some(settings) = new.as_object() {
                for (s, v) in settings {
                    let old = r.before.get("settings").and_then(|b| b.get(s));
                    out.extend(field_diff(s, old, v));
                }
            }
            continue;
        }
        out.extend(field_diff(k, r.before.get(k), new));
    }
    out
}

/// One request as the page shows it.
struct Item {
    id: String,
    target: String,
    requester: String,
    reason: String,
    created: String,
    expires: String,
    approvals: usize,
    needed: u32,
    diff: Vec<FieldDiff>,
    /// The approval code, when the person may decide it.
    code: Option<String>,
    may_decide: bool,
    /// The person's own request (they may cancel it).
    own: bool,
    state: &'static str,
    decided: String,
    outcome: String,
    comment: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct InboxPage {
    c: Chrome,
    pending: Vec<Item>,
    decided: Vec<Item>,
    /// Whether the person sees every request (an approver) or only their own.
    approver: bool,
}

/// The target's words: "workspace", "role “Name”", "token “name”" (or its id).
fn target_of(r: &ChangeRequest) -> String {
    let name = r.before.get("name").and_then(Value::as_str);
    match (r.target, name) {
        (ChangeTarget::Workspace, _) => "workspace settings".into(),
        (ChangeTarget::Role(_), Some(n)) => format!("role “{n}”"),
        (ChangeTarget::Role(id), None) => format!("role {id}"),
        (ChangeTarget::Token(_), Some(n)) if !n.is_empty() => format!("token “{n}”"),
        (ChangeTarget::Token(id), _) => format!("token {id}"),
    }
}

/// A user's name by id, looked up once per page.
async fn names(
    state: &AppState,
    person: &Person,
    requests: &[&ChangeRequest],
) -> HashMap<keyward_core::UserId, String> {
    let mut out = HashMap::new();
    for r in requests {
        let Some(id) = r.requested_by.user_id else {
            continue;
        };
        if out.contains_key(&id) {
            continue;
        }
        let name = match state.store.user(person.caller.workspace_id(), id).await {
            Ok(Some(u)) => u.name,
            _ => id.to_string(),
        };
        out.insert(id, name);
    }
    out
}

fn item(
    state: &AppState,
    person: &Person,
    r: &ChangeRequest,
    names: &HashMap<keyward_core::UserId, String>,
) -> Item {
    let requester = match (r.requested_by.user_id, r.requested_by.token_id) {
        (Some(u), _) => names.get(&u).cloned().unwrap_or_else(|| u.to_string()),
        (None, Some(t)) => format!("token {t}"),
        (None, None) => "keyward".into(),
    };
    Item {
        id: r.id.to_string(),
        target: target_of(r),
        requester,
        reason: r.reason.clone(),
        created: when(r.created_at),
        expires: when(r.expires_at),
        approvals: r.approvals.len(),
        needed: r.approvals_needed,
        diff: diff(r),
        code: ops::change_requests::code_for(state, &person.caller, r),
        // Not for someone behind the request or an approval of it already (`involves`).
        may_decide: ops::change_requests::may_decide(&person.caller, r),
        own: r.requested_by.user_id == Some(person.caller.owner_id()),
        state: r.state.as_str(),
        decided: r.decided_at.map(when).unwrap_or_default(),
        outcome: r.outcome.clone().unwrap_or_default(),
        comment: r.comment.clone(),
    }
}

/// Draws the inbox with a message.
async fn render(
    state: &AppState,
    person: &Person,
    flash: Option<String>,
    error: Option<(String, StatusCode)>,
) -> Response {
    let pending_q = ChangeRequestQuery {
        state: Some("pending".into()),
        limit: Some(ops::paging::MAX_LIMIT),
        ..ChangeRequestQuery::default()
    };
    let all_q = ChangeRequestQuery {
        limit: Some(ops::paging::MAX_LIMIT),
        ..ChangeRequestQuery::default()
    };
    let pending = match ops::change_requests::list(state, &person.caller, &pending_q).await {
        Ok(p) => p.items,
        Err(e) => return person.refused(&e, "/ui", "Back to the overview"),
    };
    let decided: Vec<ChangeRequest> =
        match ops::change_requests::list(state, &person.caller, &all_q).await {
            Ok(p) => p
                .items
                .into_iter()
                .filter(|r| r.state.is_final())
                .take(DECIDED)
                .collect(),
            Err(e) => return person.refused(&e, "/ui", "Back to the overview"),
        };
    let every: Vec<&ChangeRequest> = pending.iter().chain(decided.iter()).collect();
    let names = names(state, person, &every).await;
    let mut c = person.chrome("Approvals");
    c.flash = flash;
    let status = match error {
        Some((text, status)) => {
            c.error = Some(text);
            status
        }
        None => StatusCode::OK,
    };
    let page = InboxPage {
        c,
        pending: pending
            .iter()
            .map(|r| item(state, person, r, &names))
            .collect(),
        decided: decided
            .iter()
            .map(|r| item(state, person, r, &names))
            .collect(),
        approver: person.may(ops::change_requests::APPROVE)
            && person.caller.scope() == keyward_core::model::Scope::Workspace,
    };
    html(status, &page)
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

async fn show(State(state): State<AppState>, person: Person, Query(q): Query<Done>) -> Response {
    let flash = match q.done.as_deref() {
        Some("applied") => Some("Approved and applied.".to_owned()),
        Some("approved") => Some("Approved: the request waits for further approvals.".to_owned()),
        Some("rejected") => Some("Rejected: nothing was changed.".to_owned()),
        Some("cancelled") => Some("Cancelled: nothing was changed.".to_owned()),
        _ => None,
    };
    render(&state, &person, flash, None).await
}

#[derive(serde::Deserialize)]
struct DecideForm {
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    comment: String,
}

/// What to answer after an operation: the inbox with its message, or a refusal page.
async fn after(
    state: &AppState,
    person: &Person,
    done: Result<ChangeRequest, ApiError>,
) -> Response {
    match done {
        Ok(r) => {
            let word = match r.state.as_str() {
                "pending" => "approved",
                other => other,
            };
            redirect(&format!("/ui/approvals?done={word}"), &[])
        }
        Err(e) => {
            let (_, text, status) = explain(&e);
            if matches!(e, ApiError::Conflict { .. } | ApiError::Invalid(_)) {
                render(state, person, None, Some((text, status))).await
            } else {
                person.refused(&e, "/ui/approvals", "Back to approvals")
            }
        }
    }
}

fn id_of(raw: &str) -> Result<ChangeRequestId, ApiError> {
    ChangeRequestId::parse(raw).map_err(|_| ApiError::NotFound("change request"))
}

/// What a decision form asks for.
#[derive(Clone, Copy)]
enum Decision {
    Approve,
    Reject,
    Cancel,
}

/// The three decision forms: the CSRF check, the operation, then the inbox again.
async fn decide(
    state: &AppState,
    person: &Person,
    id: &str,
    form: DecideForm,
    what: Decision,
) -> Response {
    if let Some(r) = csrf_refusal(&person.csrf, &form.csrf) {
        return r;
    }
    let caller = &person.caller;
    let done = match (id_of(id), what) {
        (Err(e), _) => Err(e),
        (Ok(id), Decision::Approve) => {
            let body = ApproveChange {
                code: form.code,
                comment: form.comment,
            };
            ops::change_requests::approve(state, caller, id, &body).await
        }
        (Ok(id), Decision::Reject) => {
            let body = DecideChange {
                comment: form.comment,
            };
            ops::change_requests::reject(state, caller, id, &body).await
        }
        (Ok(id), Decision::Cancel) => {
            let body = DecideChange {
                comment: form.comment,
            };
            ops::change_requests::cancel(state, caller, id, &body).await
        }
    };
    after(state, person, done).await
}

async fn approve(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    decide(&state, &person, &id, form, Decision::Approve).await
}

async fn reject(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    decide(&state, &person, &id, form, Decision::Reject).await
}

async fn cancel(
    State(state): State<AppState>,
    person: Person,
    Path(id): Path<String>,
    Form(form): Form<DecideForm>,
) -> Response {
    decide(&state, &person, &id, form, Decision::Cancel).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_fields_show_and_ip_lists_are_canonical() {
        let r = ChangeRequest {
            id: ChangeRequestId::random(&mut rand_core::OsRng),
            workspace_id: keyward_core::WorkspaceId::random(&mut rand_core::OsRng),
            target: ChangeTarget::Workspace,
            change: json!({"settings": {
                "ip_allowlist": "127.0.0.1\n203.0.113.5, 203.0.113.6",
                "internal_networks": ["10.0.0.0/8"],
                "require_2fa": true,
            }}),
            before: json!({"name": "Shop", "settings": {
                "ip_allowlist": ["127.0.0.1"],
                "internal_networks": ["10.0.0.0/8"],
                "require_2fa": false,
            }}),
            base_version: 1,
            requested_by: keyward_core::audit::Actor::SYSTEM,
            requested_by_maker: None,
            reason: String::new(),
            state: keyward_core::ChangeState::Pending,
            approvals_needed: 1,
            approvals: vec![],
            code_hash: String::new(),
            created_at: chrono::Utc::now(),
            expires_at: chrono::Utc::now(),
            decided_at: None,
            decided_by: None,
            comment: String::new(),
            outcome: None,
        };
        let d = diff(&r);
        assert_eq!(
            d,
            vec![
                FieldDiff {
                    field: "ip_allowlist".into(),
                    old: "127.0.0.1/32".into(),
                    new: "127.0.0.1/32, 203.0.113.5/32, 203.0.113.6/32".into(),
                },
                FieldDiff {
                    field: "require_2fa".into(),
                    old: "no".into(),
                    new: "yes".into(),
                },
            ]
        );
    }
}

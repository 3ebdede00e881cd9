//! The workspace's security settings: the IP allowlist, internal networks, two-factor and
//! IP-approval requirements, token lifetime, expiry warnings and the default rate limit.
//! Reading takes `keyward.workspace:read`; the form (and saving) `keyward.workspace:write`.
//!
//! Saving sends [`crate::ops::workspaces::update`] — what `PATCH /v1/workspace` does — only the
//! fields the person changed from the values the form showed, so a change someone else made
//! meanwhile to another field is kept. The page warns when the allowlist being saved leaves out
//! the person's own address; the operation refuses such a list (`SELF_LOCKOUT`). A form sent
//! without the approval fields (how many approvals, how long a request waits) leaves them as
//! they are. A change held for approval shows next to its field until it is decided.

use std::net::IpAddr;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use keyward_core::api::{IpListInput, SettingsPatch, WorkspacePatch};
use keyward_core::ip::IpAllowlist;
use keyward_core::model::WorkspaceSettings;
use keyward_core::ChangeTarget;

use super::approvals::{diff, requested_value, FieldDiff};
use super::auth::{csrf_refusal, Person};
use super::page::{explain, html, Chrome};
use crate::error::ApiError;
use crate::ops;
use crate::state::AppState;

/// The routes of this part.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ui/settings", get(show).post(save))
}

fn refused(person: &Person, e: &ApiError) -> Response {
    person.refused(e, "/ui", "Back to the overview")
}

/// The settings as the form shows them (also the values it was shown with, sent back hidden).
#[derive(Debug, Default, Clone, PartialEq)]
struct Values {
    ip_allowlist: String,
    internal_networks: String,
    require_2fa: bool,
    require_approval: bool,
    token_max_lifetime_days: String,
    expiry_warning_days: String,
    default_rate_limit_per_minute: String,
    /// What the default limit counts: `token` or `user`.
    default_rate_limit_per: String,
    approvals_required: String,
    approval_expiry_hours: String,
}

impl Values {
    fn of(s: &WorkspaceSettings) -> Self {
        Self {
            ip_allowlist: s.ip_allowlist.entries().join("\n"),
            internal_networks: s.internal_networks.entries().join("\n"),
            require_2fa: s.require_2fa,
            require_approval: s.require_approval,
            token_max_lifetime_days: s
                .token_max_lifetime_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            expiry_warning_days: s.expiry_warning_days.to_string(),
            default_rate_limit_per_minute: s.default_rate_limit_per_minute.to_string(),
            default_rate_limit_per: s.default_rate_limit_per.as_str().to_owned(),
            approvals_required: s.approvals_required.to_string(),
            approval_expiry_hours: s.approval_expiry_hours.to_string(),
        }
    }

    /// A list as one line, for a hidden field.
    fn line(list: &str) -> String {
        list.lines().collect::<Vec<_>>().join(", ")
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    c: Chrome,
    v: Values,
    /// The values the form was first shown with, sent back to tell what changed.
    was: Values,
    /// `was`'s lists on one line each, for hidden fields.
    was_ips: String,
    was_nets: String,
    token_prefix: String,
    may_write: bool,
    /// The person's address.
    your_ip: String,
    /// Set when the allowlist shown leaves out the person's address.
    lockout: bool,
    field: String,
    field_error: String,
    /// The fields pending change requests would change, with their requested values.
    pending: Vec<FieldDiff>,
}

impl SettingsPage {
    /// The requested value of `field` in a pending change request ("" when none).
    fn pending_of(&self, field: &str) -> String {
        requested_value(&self.pending, field)
    }
}

/// Whether `list` (as typed) parses to a non-empty allowlist without `ip`.
fn locks_out(list: &str, ip: Option<IpAddr>) -> bool {
    match IpAllowlist::parse_input(list, "ip_allowlist") {
        Ok(l) => !l.is_empty() && !ip.is_some_and(|ip| l.contains(ip)),
        Err(_) => false,
    }
}

fn page(
    person: &Person,
    s: &WorkspaceSettings,
    v: Values,
    was: Values,
    error: Option<(String, String)>,
) -> SettingsPage {
    let mut c = person.chrome("Security settings");
    let (field, field_error) = match error {
        Some((field, text)) => {
            c.error = Some(text.clone());
            (field, text)
        }
        None => (String::new(), String::new()),
    };
    SettingsPage {
        lockout: locks_out(&v.ip_allowlist, person.origin.ip),
        was_ips: Values::line(&was.ip_allowlist),
        was_nets: Values::line(&was.internal_networks),
        c,
        v,
        was,
        token_prefix: s.token_prefix.clone(),
        may_write: person.may("keyward.workspace:write"),
        your_ip: person
            .origin
            .ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "unknown".into()),
        field,
        field_error,
        pending: Vec::new(),
    }
}

/// Draws `p` with the changes pending approval marked.
async fn drawn(
    state: &AppState,
    person: &Person,
    status: StatusCode,
    mut p: SettingsPage,
) -> Response {
    let about = ops::change_requests::pending_about(state, &person.caller, ChangeTarget::Workspace);
    // The page still works if the requests cannot be read; it just marks nothing.
    if let Ok(requests) = about.await {
        p.pending = requests.iter().flat_map(diff).collect();
    }
    html(status, &p)
}

async fn show(State(state): State<AppState>, person: Person) -> Response {
    let ws = match ops::workspaces::get(&state, &person.caller).await {
        Ok(ws) => ws,
        Err(e) => return refused(&person, &e),
    };
    let v = Values::of(&ws.settings);
    let p = page(&person, &ws.settings, v.clone(), v, None);
    drawn(&state, &person, StatusCode::OK, p).await
}

/// The submitted values and the values the form was shown with (absent ones: the current).
fn read_form(fields: &[(String, String)], current: &Values) -> (String, Values, Values) {
    let mut csrf = String::new();
    // The approval fields and what the default limit counts are new to the form: absent,
    // they stay as they are.
    let mut v = Values {
        approvals_required: current.approvals_required.clone(),
        approval_expiry_hours: current.approval_expiry_hours.clone(),
        default_rate_limit_per: current.default_rate_limit_per.clone(),
        ..Values::default()
    };
    let mut was = current.clone();
    for (k, val) in fields {
        match k.as_str() {
            "csrf" => csrf = val.clone(),
            "ip_allowlist" => v.ip_allowlist = val.clone(),
            "internal_networks" => v.internal_networks = val.clone(),
            "require_2fa" => v.require_2fa = true,
            "require_approval" => v.require_approval = true,
            "token_max_lifetime_days" => v.token_max_lifetime_days = val.trim().to_owned(),
            "expiry_warning_days" => v.expiry_warning_days = val.trim().to_owned(),
            "default_rate_limit_per_minute" => {
                v.default_rate_limit_per_minute = val.trim().to_owned();
            }
            "approvals_required" => v.approvals_required = val.trim().to_owned(),
            "approval_expiry_hours" => v.approval_expiry_hours = val.trim().to_owned(),
            "was_approvals_required" => was.approvals_required = val.trim().to_owned(),
            "was_approval_expiry_hours" => was.approval_expiry_hours = val.trim().to_owned(),
            "was_ip_allowlist" => was.ip_allowlist = val.clone(),
            "was_internal_networks" => was.internal_networks = val.clone(),
            "was_require_2fa" => was.require_2fa = val == "true",
            "was_require_approval" => was.require_approval = val == "true",
            "was_token_max_lifetime_days" => was.token_max_lifetime_days = val.trim().to_owned(),
            "was_expiry_warning_days" => was.expiry_warning_days = val.trim().to_owned(),
            "was_default_rate_limit_per_minute" => {
                was.default_rate_limit_per_minute = val.trim().to_owned();
            }
            "default_rate_limit_per" => v.default_rate_limit_per = val.trim().to_owned(),
            "was_default_rate_limit_per" => was.default_rate_limit_per = val.trim().to_owned(),
            _ => {}
        }
    }
    (csrf, v, was)
}

/// Whether two typed lists say the same (compared canonically; a list that does not parse
/// differs from everything, so the operation names its bad entry).
fn same_list(a: &str, b: &str) -> bool {
    match (
        IpAllowlist::parse_input(a, "a"),
        IpAllowlist::parse_input(b, "b"),
    ) {
        (Ok(a), Ok(b)) => a.entries() == b.entries(),
        _ => false,
    }
}

fn number(raw: &str, field: &str, what: &str) -> Result<u32, (String, String)> {
    raw.parse::<u32>()
        .map_err(|_| (field.to_owned(), format!("{what}: a whole number")))
}

/// The patch of the fields changed from `was` to `v`, or the field that is not a number.
fn patch_of(v: &Values, was: &Values) -> Result<SettingsPatch, (String, String)> {
    let mut p = SettingsPatch::default();
    if !same_list(&v.ip_allowlist, &was.ip_allowlist) {
        p.ip_allowlist = Some(IpListInput::Text(v.ip_allowlist.clone()));
    }
    if !same_list(&v.internal_networks, &was.internal_networks) {
        p.internal_networks = Some(IpListInput::Text(v.internal_networks.clone()));
    }
    if v.require_2fa != was.require_2fa {
        p.require_2fa = Some(v.require_2fa);
    }
    if v.require_approval != was.require_approval {
        p.require_approval = Some(v.require_approval);
    }
    if v.token_max_lifetime_days != was.token_max_lifetime_days {
        p.token_max_lifetime_days = Some(match v.token_max_lifetime_days.as_str() {
            "" => None,
            d => Some(number(
                d,
                "token_max_lifetime_days",
                "Token max lifetime (days)",
            )?),
        });
    }
    if v.expiry_warning_days != was.expiry_warning_days {
        p.expiry_warning_days = Some(number(
            &v.expiry_warning_days,
            "expiry_warning_days",
            "Expiry warning (days)",
        )?);
    }
    if v.default_rate_limit_per_minute != was.default_rate_limit_per_minute {
        p.default_rate_limit_per_minute = Some(number(
            &v.default_rate_limit_per_minute,
            "default_rate_limit_per_minute",
            "Default rate limit (requests per minute)",
        )?);
    }
    if v.default_rate_limit_per != was.default_rate_limit_per {
        p.default_rate_limit_per = Some(
            keyward_core::RateLimitPer::parse(&v.default_rate_limit_per).ok_or_else(|| {
                (
                    "default_rate_limit_per".to_owned(),
                    "choose per token or per user".to_owned(),
                )
            })?,
        );
    }
    if v.approvals_required != was.approvals_required {
        p.approvals_required = Some(number(
            &v.approvals_required,
            "approvals_required",
            "Approvals a change needs",
        )?);
    }
    if v.approval_expiry_hours != was.approval_expiry_hours {
        p.approval_expiry_hours = Some(number(
            &v.approval_expiry_hours,
            "approval_expiry_hours",
            "Hours a change request waits",
        )?);
    }
    Ok(p)
}

/// The form field an operation's refusal is about, and its sentence.
fn refusal_field(e: &ApiError) -> (String, String, StatusCode) {
    let (field, text, status) = explain(e);
    let field = match e {
        ApiError::Conflict {
            code: "SELF_LOCKOUT",
            message,
        } if message.contains("internal") => "internal_networks".to_owned(),
        ApiError::Conflict {
            code: "SELF_LOCKOUT",
            ..
        } => "ip_allowlist".to_owned(),
        _ => field
            .map(|f| f.trim_start_matches("settings.").to_owned())
            .map(|f| f.split('[').next().unwrap_or_default().to_owned())
            .unwrap_or_default(),
    };
    (field, text, status)
}

async fn save(
    State(state): State<AppState>,
    person: Person,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if let Some(r) = csrf_refusal(&person.csrf, csrf) {
        return r;
    }
    if let Err(e) = person.caller.require("keyward.workspace:write") {
        return refused(&person, &e);
    }
    let ws = match ops::workspaces::get(&state, &person.caller).await {
        Ok(ws) => ws,
        Err(e) => return refused(&person, &e),
    };
    let current = Values::of(&ws.settings);
    let (_, v, was) = read_form(&fields, &current);
    let settings = match patch_of(&v, &was) {
        Ok(p) => p,
        Err(e) => {
            let p = page(&person, &ws.settings, v, was, Some(e));
            return drawn(&state, &person, StatusCode::UNPROCESSABLE_ENTITY, p).await;
        }
    };
    if settings == SettingsPatch::default() {
        let mut p = page(&person, &ws.settings, current.clone(), current, None);
        p.c.flash = Some("Nothing changed.".into());
        return drawn(&state, &person, StatusCode::OK, p).await;
    }
    let patch = WorkspacePatch {
        name: None,
        settings: Some(settings),
        reason: None,
    };
    match ops::workspaces::update(&state, &person.caller, &patch).await {
        Ok(ops::change_requests::Outcome::Pending(r)) => {
            let mut p = page(&person, &ws.settings, current.clone(), current, None);
            p.c.flash = Some(format!(
                "Sent for approval: change request {} waits for {} approval(s).",
                r.id, r.approvals_needed
            ));
            drawn(&state, &person, StatusCode::ACCEPTED, p).await
        }
        Ok(ops::change_requests::Outcome::Applied(ws)) => {
            let now = Values::of(&ws.settings);
            let mut p = page(&person, &ws.settings, now.clone(), now, None);
            p.c.flash = Some("Settings saved.".into());
            drawn(&state, &person, StatusCode::OK, p).await
        }
        Err(e) => {
            let (field, text, status) = refusal_field(&e);
            if status == StatusCode::FORBIDDEN && field.is_empty() {
                return refused(&person, &e);
            }
            let p = page(&person, &ws.settings, v, was, Some((field, text)));
            drawn(&state, &person, status, p).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::of(&WorkspaceSettings::default())
    }

    #[test]
    fn only_changed_fields_are_sent() {
        let was = values();
        assert_eq!(patch_of(&was, &was).unwrap(), SettingsPatch::default());
        let mut v = was.clone();
        v.require_2fa = true;
        v.ip_allowlist = "127.0.0.0/8, 203.0.113.5".into();
        let p = patch_of(&v, &was).unwrap();
        assert_eq!(p.require_2fa, Some(true));
        assert!(p.ip_allowlist.is_some());
        assert_eq!(p.internal_networks, None);
        assert_eq!(p.default_rate_limit_per_minute, None);
        // The same list written differently is no change.
        let mut w = v.clone();
        w.ip_allowlist = "203.0.113.5\n127.0.0.0/8".into();
        assert_eq!(patch_of(&w, &v).unwrap(), SettingsPatch::default());
    }

    #[test]
    fn a_blank_lifetime_removes_it_and_bad_numbers_name_their_field() {
        let mut was = values();
        was.token_max_lifetime_days = "90".into();
        let mut v = was.clone();
        v.token_max_lifetime_days = String::new();
        assert_eq!(
            patch_of(&v, &was).unwrap().token_max_lifetime_days,
            Some(None)
        );
        v.expiry_warning_days = "soon".into();
        assert_eq!(patch_of(&v, &was).unwrap_err().0, "expiry_warning_days");
    }

    #[test]
    fn the_lockout_warning_follows_the_typed_list() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!locks_out("", Some(ip)));
        assert!(!locks_out("127.0.0.0/8, 203.0.113.5", Some(ip)));
        assert!(locks_out("203.0.113.5", Some(ip)));
        assert!(locks_out("203.0.113.5", None));
        assert!(!locks_out("not an address", Some(ip)));
    }
}

//! `keyward change-request …` (alias `cr`): list, show, approve, reject and cancel the security
//! changes that wait for another person's approval; and [`show_update`], which every `update`
//! verb uses to say plainly that a change held for approval (202) was **not** applied.
//!
//! The approval code is not in any answer: approvers get it from the `change_request.created`
//! webhook (`data.approval_code`) or the dashboard's inbox, and pass it to `approve --code`
//! (`-` reads it from standard input). It is never printed, not even by `Debug`.

use std::fmt;
use std::io::BufRead;

use keyward_client::{ChangeRequestListParams, ClientError};
use keyward_core::audit::Actor;
use keyward_core::{
    ApproveChange, ChangeRequest, ChangeRequestId, ChangeState, ChangeTarget, DecideChange, UserId,
};
use serde::Serialize;

use super::table::{self, Table};
use super::{emit, print_json, Ctx, PageArgs};

/// Change-request verbs.
#[derive(clap::Subcommand, Debug)]
pub enum ChangeRequestCmd {
    /// List change requests, newest first (an approver sees all, anyone else their own).
    List(ListArgs),
    /// Show one change request: target, state, requester, reason, approvals, expiry, the
    /// requested change and the target as it was.
    #[command(alias = "get")]
    Show {
        /// Change request id (`chg_…`).
        id: ChangeRequestId,
    },
    /// Approve another person's change request with its approval code; the last approval it
    /// needs applies the change.
    Approve {
        /// Change request id (`chg_…`).
        id: ChangeRequestId,
        /// The request's approval code (`XXXXX-XXXXX`, from the `change_request.created`
        /// webhook or the dashboard's inbox); `-` reads it from standard input.
        #[arg(long, value_name = "CODE", value_parser = code)]
        code: CodeArg,
        /// What you say about it.
        #[arg(long, value_name = "TEXT", default_value = "")]
        comment: String,
    },
    /// Refuse another person's change request; nothing is applied.
    Reject {
        /// Change request id (`chg_…`).
        id: ChangeRequestId,
        /// Why.
        #[arg(long, value_name = "TEXT", default_value = "")]
        comment: String,
    },
    /// Withdraw a change request of your own.
    Cancel {
        /// Change request id (`chg_…`).
        id: ChangeRequestId,
        /// Why.
        #[arg(long, value_name = "TEXT", default_value = "")]
        comment: String,
    },
}

/// `change-request list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only requests in this state.
    #[arg(long, value_enum)]
    state: Option<StateArg>,
    /// Only requests about this kind of target.
    #[arg(long, value_enum)]
    target_kind: Option<TargetKindArg>,
    /// Only requests about this role or token (`rol_…`, `tok_…`).
    #[arg(long, value_name = "ID")]
    target_id: Option<String>,
    /// Only requests made by this user (`usr_…`).
    #[arg(long, value_name = "USER")]
    requested_by: Option<UserId>,
    #[command(flatten)]
    page: PageArgs,
}

/// A change request's state, as the command line spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum StateArg {
    /// Waiting for approvals.
    Pending,
    /// Approved and applied.
    Applied,
    /// Refused by an approver.
    Rejected,
    /// Withdrawn by its requester.
    Cancelled,
    /// Not approved in time.
    Expired,
    /// Approved but not applicable (the target changed meanwhile).
    Failed,
}

impl From<StateArg> for ChangeState {
    fn from(s: StateArg) -> Self {
        match s {
            StateArg::Pending => ChangeState::Pending,
            StateArg::Applied => ChangeState::Applied,
            StateArg::Rejected => ChangeState::Rejected,
            StateArg::Cancelled => ChangeState::Cancelled,
            StateArg::Expired => ChangeState::Expired,
            StateArg::Failed => ChangeState::Failed,
        }
    }
}

/// What a change request changes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TargetKindArg {
    /// The workspace's settings.
    Workspace,
    /// A role.
    Role,
    /// A token.
    Token,
}

impl TargetKindArg {
    fn as_str(self) -> &'static str {
        match self {
            TargetKindArg::Workspace => "workspace",
            TargetKindArg::Role => "role",
            TargetKindArg::Token => "token",
        }
    }
}

/// An approval code given on the command line; its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct CodeArg(String);

impl fmt::Debug for CodeArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeArg(<redacted>)")
    }
}

/// An approval code, or `-` to read it from the first line of standard input.
fn code(s: &str) -> Result<CodeArg, String> {
    if s != "-" {
        return Ok(CodeArg(s.trim().to_owned()));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the approval code from standard input: {e}"))?;
    match line.trim() {
        "" => Err("no approval code on standard input".to_owned()),
        code => Ok(CodeArg(code.to_owned())),
    }
}

pub(crate) async fn run(cmd: ChangeRequestCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        ChangeRequestCmd::List(a) => {
            let params = ChangeRequestListParams {
                state: a.state.map(Into::into),
                target_kind: a.target_kind.map(|k| k.as_str().to_owned()),
                target_id: a.target_id.clone(),
                requested_by: a.requested_by,
                limit: a.page.limit,
                cursor: None,
            };
            let page = a
                .page
                .fetch(|cursor| {
                    let params = ChangeRequestListParams {
                        cursor,
                        ..params.clone()
                    };
                    async move { client.list_change_requests(&params).await }
                })
                .await?;
            ctx.show_page(&page, list_table)
        }
        ChangeRequestCmd::Show { id } => show(ctx, &client.change_request(id).await?),
        ChangeRequestCmd::Approve { id, code, comment } => {
            let body = ApproveChange {
                code: code.0,
                comment,
            };
            let r = client.approve_change_request(id, &body).await?;
            decided(ctx, &r)
        }
        ChangeRequestCmd::Reject { id, comment } => {
            let r = client
                .reject_change_request(id, &DecideChange { comment })
                .await?;
            decided(ctx, &r)
        }
        ChangeRequestCmd::Cancel { id, comment } => {
            let r = client
                .cancel_change_request(id, &DecideChange { comment })
                .await?;
            decided(ctx, &r)
        }
    }
}

/// The answer of an `update` verb: the new value as `render` shows it, or, when keyward held
/// the change for approval, a plain statement that it was not applied and what it waits for.
/// Either way the command succeeds.
pub(crate) fn show_update<T: Serialize>(
    ctx: &Ctx,
    answer: Result<T, ClientError>,
    render: impl FnOnce(&T) -> Table,
) -> anyhow::Result<()> {
    match answer {
        Ok(value) => ctx.show(&value, render),
        Err(ClientError::PendingApproval(r)) => held(ctx, &r),
        Err(e) => Err(e.into()),
    }
}

/// Says that `r` was held, not applied: on standard output as text, or the request's JSON
/// with `--json` (and the sentence on standard error).
fn held(ctx: &Ctx, r: &ChangeRequest) -> anyhow::Result<()> {
    let expires = table::time(Some(r.expires_at));
    let headline = format!(
        "NOT APPLIED: this security change waits for approval as change request {} \
         ({} approval(s) needed, expires {expires}).",
        r.id, r.approvals_needed
    );
    if ctx.json {
        eprintln!("{headline}");
        return print_json(r);
    }
    emit(&headline)?;
    emit(&format!(
        "Another person holding keyward.security:approve approves it with the code from the \
         change_request.created webhook or the dashboard (/ui/approvals):\n  \
         keyward change-request approve {} --code CODE\n\
         Until then nothing changed. Withdraw it with: keyward change-request cancel {}",
        r.id, r.id
    ))
}

/// The answer to approve, reject and cancel: the request as it now stands, with a line saying
/// what happened to the change.
fn decided(ctx: &Ctx, r: &ChangeRequest) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(r);
    }
    let what = match r.state {
        ChangeState::Applied => format!("Approved: change request {} is applied.", r.id),
        ChangeState::Pending => format!(
            "Approved: change request {} has {}/{} approvals and waits for more; nothing is \
             applied yet.",
            r.id,
            r.approvals.len(),
            r.approvals_needed
        ),
        ChangeState::Rejected => format!("Rejected change request {}: nothing applied.", r.id),
        ChangeState::Cancelled => format!("Cancelled change request {}: nothing applied.", r.id),
        other => format!(
            "Change request {} is {}: nothing applied.",
            r.id,
            other.as_str()
        ),
    };
    emit(&what)?;
    emit("")?;
    emit(&details(r).render())
}

/// `workspace`, `role rol_…` or `token tok_…`.
fn target(t: &ChangeTarget) -> String {
    match t.id_string() {
        Some(id) => format!("{} {id}", t.kind()),
        None => t.kind().to_owned(),
    }
}

/// A person as `usr_…`, with the token they used: `usr_… (tok_…)`.
fn who(a: &Actor) -> String {
    match (a.user_id, a.token_id) {
        (Some(u), Some(t)) => format!("{u} ({t})"),
        (Some(u), None) => u.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => a.kind_str().to_owned(),
    }
}

fn approvals(r: &ChangeRequest) -> String {
    format!("{}/{}", r.approvals.len(), r.approvals_needed)
}

fn list_table(requests: &[ChangeRequest]) -> Table {
    let mut t = Table::new(&[
        "ID",
        "TARGET",
        "STATE",
        "APPROVALS",
        "REQUESTED BY",
        "EXPIRES",
        "REASON",
    ]);
    for r in requests {
        t.row([
            r.id.to_string(),
            target(&r.target),
            r.state.as_str().to_owned(),
            approvals(r),
            who(&r.requested_by),
            table::time(Some(r.expires_at)),
            r.reason.clone(),
        ]);
    }
    t
}

fn details(r: &ChangeRequest) -> Table {
    let approved_by: Vec<String> = r
        .approvals
        .iter()
        .map(|a| {
            let at = table::time(Some(a.at));
            match a.comment.as_str() {
                "" => format!("{} at {at}", a.user_id),
                c => format!("{} at {at}: {c}", a.user_id),
            }
        })
        .collect();
    let mut rows = vec![
        ("id", r.id.to_string()),
        ("target", target(&r.target)),
        ("state", r.state.as_str().to_owned()),
        ("requested by", who(&r.requested_by)),
        (
            "reason",
            table::or(Some(&r.reason).filter(|s| !s.is_empty()), "-"),
        ),
        ("approvals", approvals(r)),
        ("approved by", table::list(&approved_by)),
        ("created at", table::time(Some(r.created_at))),
        ("expires at", table::time(Some(r.expires_at))),
    ];
    if r.state.is_final() {
        rows.push(("decided at", table::time(r.decided_at)));
        rows.push(("decided by", table::or(r.decided_by.as_ref().map(who), "-")));
        rows.push(("outcome", table::or(r.outcome.as_ref(), "-")));
    }
    if !r.comment.is_empty() {
        rows.push(("comment", r.comment.clone()));
    }
    Table::details(rows)
}

/// `show`: the details, then the requested change and the target before it, as JSON (serde
/// escapes control characters, so the JSON cannot reach the terminal as escapes).
fn show(ctx: &Ctx, r: &ChangeRequest) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(r);
    }
    emit(&details(r).render())?;
    emit("")?;
    emit("change (as requested):")?;
    emit(&serde_json::to_string_pretty(&r.change)?)?;
    emit("")?;
    emit("before:")?;
    emit(&serde_json::to_string_pretty(&r.before)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: ChangeRequestCmd,
    }

    const CHG: &str = "chg_0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<ChangeRequestCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("change-request").chain(args.iter().copied()))
            .map(|c| c.cmd)
    }

    fn request() -> ChangeRequest {
        serde_json::from_value(serde_json::json!({
            "id": CHG,
            "workspace_id": "ws_0123456789abcdef0123456789abcdef",
            "target": {"kind": "role", "id": "rol_0123456789abcdef0123456789abcdef"},
            "change": {"ip_allowlist": "203.0.113.5"},
            "before": {"ip_allowlist": []},
            "base_version": 2,
            "requested_by": {"kind": "token", "token_id": "tok_0123456789abcdef0123456789abcdef",
                             "user_id": "usr_0123456789abcdef0123456789abcdef"},
            "reason": "office move",
            "state": "pending",
            "approvals_needed": 2,
            "approvals": [{"user_id": "usr_11111111111111111111111111111111",
                           "at": "2026-12-01T11:00:00Z", "comment": "ok"}],
            "created_at": "2026-12-01T10:00:00Z",
            "expires_at": "2026-12-04T10:00:00Z",
            "comment": ""
        }))
        .unwrap()
    }

    #[test]
    fn approve_needs_a_code_that_debug_never_shows() {
        assert!(parse(&["approve", CHG]).is_err());
        let cmd = parse(&["approve", CHG, "--code", "ABCDE-FGHJK", "--comment", "fine"]).unwrap();
        let shown = format!("{cmd:?}");
        assert!(!shown.contains("ABCDE"), "{shown}");
        let ChangeRequestCmd::Approve { code, comment, .. } = cmd else {
            unreachable!()
        };
        assert_eq!(code.0, "ABCDE-FGHJK");
        assert_eq!(comment, "fine");
        assert!(parse(&["reject", CHG]).is_ok());
        assert!(parse(&["cancel", "not-an-id"]).is_err());
    }

    #[test]
    fn list_filters_parse_to_wire_values() {
        let ChangeRequestCmd::List(a) = parse(&[
            "list",
            "--state",
            "applied",
            "--target-kind",
            "token",
            "--requested-by",
            "usr_0123456789abcdef0123456789abcdef",
        ])
        .unwrap() else {
            unreachable!()
        };
        assert_eq!(a.state.map(ChangeState::from), Some(ChangeState::Applied));
        assert_eq!(a.target_kind.map(TargetKindArg::as_str), Some("token"));
        assert!(parse(&["list", "--state", "approved"]).is_err());
    }

    #[test]
    fn tables_show_target_approvals_and_requester() {
        let r = request();
        let listed = list_table(std::slice::from_ref(&r)).render();
        assert!(
            listed.contains("role rol_0123456789abcdef0123456789abcdef"),
            "{listed}"
        );
        assert!(
            listed.contains("1/2") && listed.contains("office move"),
            "{listed}"
        );
        let shown = details(&r).render();
        assert!(
            shown.contains("usr_0123456789abcdef0123456789abcdef (tok_")
                && shown
                    .contains("usr_11111111111111111111111111111111 at 2026-12-01T11:00:00Z: ok")
                && shown.contains("2026-12-04T10:00:00Z")
                && !shown.contains("decided"),
            "{shown}"
        );
    }
}

//! `keyward workspace …`: show and change the caller's workspace; create and list workspaces
//! (operator workspace only).

use anyhow::bail;
use keyward_client::ListParams;
use keyward_core::api::{CreateWorkspace, CreatedWorkspace, SettingsPatch, WorkspacePatch};
use keyward_core::Workspace;

use super::args::{self, ip_list_or_clear};
use super::table::{self, Table};
use super::{emit, print_json, Ctx, PageArgs};

/// Workspace verbs.
#[derive(clap::Subcommand, Debug)]
pub enum WorkspaceCmd {
    /// Show the workspace of the token in use, with its settings.
    Get,
    /// Change the workspace's name, settings or access policy.
    Update(UpdateArgs),
    /// Create a workspace with its admin user, role and token (operator only).
    Create {
        /// Name.
        #[arg(long)]
        name: String,
    },
    /// List all workspaces (operator only).
    List {
        #[command(flatten)]
        page: PageArgs,
    },
}

/// `workspace update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// Prefix of new tokens' secrets.
    #[arg(long)]
    token_prefix: Option<String>,
    /// Default rate limit, in requests per minute.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// What the default rate limit counts: each token, or each owner user's tokens together.
    #[arg(long, value_enum, value_name = "PER")]
    rate_limit_per: Option<args::PerArg>,
    /// Longest lifetime of a new token, in days.
    #[arg(long, conflicts_with = "no_max_lifetime")]
    max_lifetime_days: Option<u32>,
    /// Remove the maximum token lifetime.
    #[arg(long)]
    no_max_lifetime: bool,
    /// Days before expiry at which `token.expiring` is sent.
    #[arg(long)]
    expiry_warning_days: Option<u32>,
    /// Require two-factor authentication of people.
    #[arg(long, value_name = "true|false")]
    require_2fa: Option<bool>,
    /// Require another person's approval of security changes (allowlists, internal
    /// networks, weakening these settings); `--require-ip-approval` is its earlier name.
    #[arg(long, value_name = "true|false", alias = "require-ip-approval")]
    require_approval: Option<bool>,
    /// Approvals a change request needs (1-5).
    #[arg(long, value_name = "N")]
    approvals_required: Option<u32>,
    /// Hours a change request waits for its approvals before it expires (1-720).
    #[arg(long, value_name = "HOURS")]
    approval_expiry_hours: Option<u32>,
    /// Addresses or CIDR ranges every API call of the workspace must come from (repeatable or
    /// comma-separated; replaces the old list).
    #[arg(
        long = "ip-allowlist",
        value_name = "IPS",
        conflicts_with = "clear_ip_allowlist"
    )]
    ip_allowlist: Vec<String>,
    /// Remove the workspace's allowlist.
    #[arg(long)]
    clear_ip_allowlist: bool,
    /// The workspace's internal networks: where internal-only tokens work, exempt from rate
    /// limits (repeatable or comma-separated; replaces the old list).
    #[arg(
        long = "internal-networks",
        value_name = "IPS",
        conflicts_with = "clear_internal_networks"
    )]
    internal_networks: Vec<String>,
    /// Remove the workspace's internal networks (the server's own still apply).
    #[arg(long)]
    clear_internal_networks: bool,
    /// Why: kept with the change request when the change needs another person's approval
    /// (the workspace's `require_approval`), and shown to the approvers.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

pub(crate) async fn run(cmd: WorkspaceCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        WorkspaceCmd::Get => ctx.show(&client.workspace().await?, details),
        WorkspaceCmd::Update(a) => {
            let patch = patch(a)?;
            let answer = client.update_workspace(&patch).await;
            super::change_request::show_update(ctx, answer, details)
        }
        WorkspaceCmd::Create { name } => {
            let req = CreateWorkspace {
                name,
                settings: None,
            };
            show_created(ctx, &client.create_workspace(&req).await?)
        }
        WorkspaceCmd::List { page: paging } => {
            let limit = paging.limit;
            let page = paging
                .fetch(|cursor| {
                    let params = ListParams { limit, cursor };
                    async move { client.list_workspaces(&params).await }
                })
                .await?;
            ctx.show_page(&page, list_table)
        }
    }
}

/// The PATCH body of `workspace update`; refuses an update that changes nothing.
fn patch(a: UpdateArgs) -> anyhow::Result<WorkspacePatch> {
    let settings = SettingsPatch {
        token_prefix: a.token_prefix,
        default_rate_limit_per_minute: a.rate_limit,
        default_rate_limit_per: a.rate_limit_per.map(Into::into),
        token_max_lifetime_days: args::set_or_clear(a.max_lifetime_days, a.no_max_lifetime),
        expiry_warning_days: a.expiry_warning_days,
        require_2fa: a.require_2fa,
        require_approval: a.require_approval,
        approvals_required: a.approvals_required,
        approval_expiry_hours: a.approval_expiry_hours,
        ip_allowlist: ip_list_or_clear(a.ip_allowlist, a.clear_ip_allowlist),
        internal_networks: ip_list_or_clear(a.internal_networks, a.clear_internal_networks),
    };
    let patch = WorkspacePatch {
        reason: a.reason,
        name: a.name,
        settings: (settings != SettingsPatch::default()).then_some(settings),
    };
    // A reason alone changes nothing.
    let unchanged = WorkspacePatch {
        reason: None,
        ..patch.clone()
    } == WorkspacePatch::default();
    if unchanged {
        bail!(
            "nothing to change: give at least one option (see `keyward workspace update --help`)"
        );
    }
    Ok(patch)
}

/// The answer to `workspace create`: what was made, then the admin token's secret, once.
fn show_created(ctx: &Ctx, created: &CreatedWorkspace) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(created);
    }
    let summary = Table::details([
        (
            "workspace",
            format!("{} ({})", created.workspace.id, created.workspace.name),
        ),
        (
            "admin user",
            format!("{} ({})", created.admin_user.id, created.admin_user.name),
        ),
        (
            "admin role",
            format!("{} ({})", created.admin_role.id, created.admin_role.name),
        ),
        ("admin token", created.admin_token.token.id.to_string()),
    ]);
    emit(&summary.render())?;
    emit("")?;
    emit(&format!(
        "Admin token secret (shown once, store it now): {}",
        created.admin_token.secret
    ))
}

fn list_table(workspaces: &[Workspace]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "OPERATOR", "CREATED"]);
    for w in workspaces {
        t.row([
            w.id.to_string(),
            w.name.clone(),
            table::yes_no(w.operator),
            table::time(Some(w.created_at)),
        ]);
    }
    t
}

fn details(w: &Workspace) -> Table {
    let s = &w.settings;
    Table::details([
        ("id", w.id.to_string()),
        ("name", w.name.clone()),
        ("operator", table::yes_no(w.operator)),
        ("token prefix", s.token_prefix.clone()),
        (
            "default rate limit",
            format!(
                "{}/min per {}",
                s.default_rate_limit_per_minute, s.default_rate_limit_per
            ),
        ),
        (
            "token max lifetime",
            table::or(
                s.token_max_lifetime_days.map(|d| format!("{d} days")),
                "none",
            ),
        ),
        ("expiry warning", format!("{} days", s.expiry_warning_days)),
        ("require 2fa", table::yes_no(s.require_2fa)),
        ("require approval", table::yes_no(s.require_approval)),
        ("approvals required", s.approvals_required.to_string()),
        ("approval expiry hours", s.approval_expiry_hours.to_string()),
        ("ip allowlist", table::ips(&s.ip_allowlist, "any")),
        (
            "internal networks",
            table::ips(&s.internal_networks, "none"),
        ),
        ("created at", table::time(Some(w.created_at))),
        ("updated at", table::time(Some(w.updated_at))),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;
    use keyward_core::api::IpListInput;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: WorkspaceCmd,
    }

    fn parse(args: &[&str]) -> Result<WorkspaceCmd, clap::Error> {
        let all = ["workspace", "update"].iter().chain(args).copied();
        Cli::try_parse_from(all).map(|c| c.cmd)
    }

    fn update(args: &[&str]) -> anyhow::Result<SettingsPatch> {
        match parse(args).unwrap() {
            WorkspaceCmd::Update(a) => Ok(patch(a)?.settings.unwrap_or_default()),
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn a_reason_travels_with_a_change_but_is_no_change_itself() {
        let WorkspaceCmd::Update(a) = parse(&["--reason", "office move"]).unwrap() else {
            unreachable!()
        };
        assert!(patch(a).is_err());
        let WorkspaceCmd::Update(a) =
            parse(&["--ip-allowlist", "203.0.113.5", "--reason", "office move"]).unwrap()
        else {
            unreachable!()
        };
        let p = patch(a).unwrap();
        assert_eq!(p.reason.as_deref(), Some("office move"));
        let WorkspaceCmd::Update(a) = parse(&["--require-ip-approval", "true"]).unwrap() else {
            unreachable!()
        };
        assert_eq!(
            patch(a).unwrap().settings.unwrap().require_approval,
            Some(true)
        );
    }

    #[test]
    fn update_sets_and_clears_the_access_policy() {
        let s = update(&[
            "--ip-allowlist",
            "203.0.113.0/24",
            "--internal-networks",
            "10.0.0.0/8,172.16.0.0/12",
        ])
        .unwrap();
        assert_eq!(
            s.ip_allowlist,
            Some(IpListInput::Text("203.0.113.0/24".into()))
        );
        assert_eq!(
            s.internal_networks,
            Some(IpListInput::Text("10.0.0.0/8,172.16.0.0/12".into()))
        );
        let s = update(&["--clear-ip-allowlist", "--clear-internal-networks"]).unwrap();
        assert_eq!(s.ip_allowlist, Some(IpListInput::Text(String::new())));
        assert_eq!(s.internal_networks, Some(IpListInput::Text(String::new())));
        let s = update(&["--clear-internal-networks"]).unwrap();
        assert_eq!(s.ip_allowlist, None);
        assert!(update(&[]).is_err());
        for bad in [
            &["--ip-allowlist", "::1", "--clear-ip-allowlist"][..],
            &["--internal-networks", "::1", "--clear-internal-networks"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

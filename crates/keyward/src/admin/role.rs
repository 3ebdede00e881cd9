//! `keyward role …`: create, list, get, update, delete.

use anyhow::bail;
use keyward_client::ListParams;
use keyward_core::api::{CreateRole, RolePatch};
use keyward_core::{Role, RoleId, RoleKind};

use super::args::{self, RoleKindArg, ScopeArg};
use super::table::{self, Table};
use super::{Ctx, PageArgs};

/// Role verbs.
#[derive(clap::Subcommand, Debug)]
pub enum RoleCmd {
    /// Create a role.
    Create(CreateArgs),
    /// List roles.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one role.
    Get {
        /// Role id (`rol_…`).
        id: RoleId,
    },
    /// Change a role; every token using it is affected at once.
    Update(UpdateArgs),
    /// Delete a role.
    Delete {
        /// Role id (`rol_…`).
        id: RoleId,
    },
}

/// `role create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Name, unique in the workspace.
    #[arg(long)]
    name: String,
    /// `human` (for people) or `api` (for tokens and service users).
    #[arg(long, value_enum)]
    kind: RoleKindArg,
    /// `user` (what the owner may see personally) or `workspace` (account-wide).
    #[arg(long, value_enum)]
    scope: ScopeArg,
    /// A granted permission pattern, e.g. `orders:read`, `orders:*` (repeatable).
    #[arg(long = "permission", value_name = "PERMISSION", required = true)]
    permissions: Vec<String>,
    /// Free text.
    #[arg(long, default_value = "")]
    description: String,
    /// Addresses or CIDR ranges every token acting with the role must come from (repeatable
    /// or comma-separated).
    #[arg(long = "ip-allowlist", value_name = "IPS")]
    ip_allowlist: Vec<String>,
    /// Requests per minute for tokens acting with the role (overrides the workspace default).
    #[arg(long, value_name = "PER_MINUTE", value_parser = args::rate_limit)]
    rate_limit: Option<u32>,
    /// What the role's rate limit counts: each token, or each owner user's tokens together
    /// (needs `--rate-limit`).
    #[arg(long, value_enum, value_name = "PER", requires = "rate_limit")]
    rate_limit_per: Option<args::PerArg>,
}

/// `role update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Role id (`rol_…`).
    id: RoleId,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New scope.
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// New permission patterns (repeatable; replaces all the old ones).
    #[arg(long = "permission", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// New allowlist: addresses or CIDR ranges (repeatable or comma-separated; replaces the
    /// old one).
    #[arg(
        long = "ip-allowlist",
        value_name = "IPS",
        conflicts_with = "clear_ip_allowlist"
    )]
    ip_allowlist: Vec<String>,
    /// Remove the role's allowlist.
    #[arg(long)]
    clear_ip_allowlist: bool,
    /// New rate limit, in requests per minute.
    #[arg(
        long,
        value_name = "PER_MINUTE",
        value_parser = args::rate_limit,
        conflicts_with = "no_rate_limit"
    )]
    rate_limit: Option<u32>,
    /// Remove the role's rate limit: the workspace default applies.
    #[arg(long)]
    no_rate_limit: bool,
    /// What the role's rate limit counts: each token, or each owner user's tokens together.
    #[arg(long, value_enum, value_name = "PER", conflicts_with = "no_rate_limit")]
    rate_limit_per: Option<args::PerArg>,
    /// Why: kept with the change request when the change needs another person's approval
    /// (the workspace's `require_approval`), and shown to the approvers.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

pub(crate) async fn run(cmd: RoleCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        RoleCmd::Create(a) => ctx.show(&client.create_role(&create_request(a)).await?, details),
        RoleCmd::List { page: paging } => {
            let limit = paging.limit;
            let page = paging
                .fetch(|cursor| {
                    let params = ListParams { limit, cursor };
                    async move { client.list_roles(&params).await }
                })
                .await?;
            ctx.show_page(&page, list_table)
        }
        RoleCmd::Get { id } => ctx.show(&client.role(id).await?, details),
        RoleCmd::Update(a) => {
            let id = a.id;
            let patch = patch(a)?;
            let answer = client.update_role(id, &patch).await;
            super::change_request::show_update(ctx, answer, details)
        }
        RoleCmd::Delete { id } => {
            client.delete_role(id).await?;
            ctx.done(&format!("Deleted role {id}."))
        }
    }
}

/// The body of `role create`.
fn create_request(a: CreateArgs) -> CreateRole {
    CreateRole {
        name: a.name,
        description: a.description,
        kind: a.kind.into(),
        scope: a.scope.into(),
        permissions: a.permissions,
        ip_allowlist: args::ip_list(a.ip_allowlist),
        rate_limit_per_minute: a.rate_limit,
        rate_limit_per: a.rate_limit_per.map(Into::into),
    }
}

/// The PATCH body of `role update`; refuses an update that changes nothing.
fn patch(a: UpdateArgs) -> anyhow::Result<RolePatch> {
    let patch = RolePatch {
        reason: a.reason,
        name: a.name,
        description: a.description,
        scope: a.scope.map(Into::into),
        permissions: (!a.permissions.is_empty()).then_some(a.permissions),
        ip_allowlist: args::ip_list_or_clear(a.ip_allowlist, a.clear_ip_allowlist),
        rate_limit_per_minute: args::set_or_clear(a.rate_limit, a.no_rate_limit),
        rate_limit_per: a.rate_limit_per.map(Into::into),
    };
    // A reason alone changes nothing.
    let unchanged = RolePatch {
        reason: None,
        ..patch.clone()
    } == RolePatch::default();
    if unchanged {
        bail!("nothing to change: give at least one option (see `keyward role update --help`)");
    }
    Ok(patch)
}

fn kind(k: RoleKind) -> String {
    match k {
        RoleKind::Human => "human",
        RoleKind::Api => "api",
    }
    .to_owned()
}

fn list_table(roles: &[Role]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "KIND", "SCOPE", "PERMISSIONS"]);
    for r in roles {
        t.row([
            r.id.to_string(),
            r.name.clone(),
            kind(r.kind),
            r.scope.as_str().to_owned(),
            table::list(&r.permissions),
        ]);
    }
    t
}

pub(crate) fn details(r: &Role) -> Table {
    Table::details([
        ("id", r.id.to_string()),
        ("name", r.name.clone()),
        ("kind", kind(r.kind)),
        ("scope", r.scope.as_str().to_owned()),
        ("permissions", table::list(&r.permissions)),
        ("description", r.description.clone()),
        ("ip allowlist", table::ips(&r.ip_allowlist, "any")),
        ("rate limit", table::budget(r.rate_limit(), "default")),
        ("workspace", r.workspace_id.to_string()),
        ("created at", table::time(Some(r.created_at))),
        ("updated at", table::time(Some(r.updated_at))),
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
        cmd: RoleCmd,
    }

    const ROL: &str = "rol_0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<RoleCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("role").chain(args.iter().copied())).map(|c| c.cmd)
    }

    fn create(args: &[&str]) -> CreateRole {
        let base = ["create", "--name", "ci", "--kind", "api", "--scope", "user"];
        let base = base.iter().chain(&["--permission", "orders:read"]);
        let all: Vec<&str> = base.chain(args).copied().collect();
        match parse(&all).unwrap() {
            RoleCmd::Create(a) => create_request(a),
            other => unreachable!("{other:?}"),
        }
    }

    fn update(args: &[&str]) -> anyhow::Result<RolePatch> {
        let all: Vec<&str> = ["update", ROL].iter().chain(args).copied().collect();
        match parse(&all).unwrap() {
            RoleCmd::Update(a) => patch(a),
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn create_takes_the_access_policy() {
        let plain = create(&[]);
        assert_eq!(plain.ip_allowlist, None);
        assert_eq!(plain.rate_limit_per_minute, None);
        let req = create(&["--ip-allowlist", "10.0.0.0/8, ::1", "--rate-limit", "30"]);
        assert_eq!(
            req.ip_allowlist,
            Some(IpListInput::Text("10.0.0.0/8, ::1".into()))
        );
        assert_eq!(req.rate_limit_per_minute, Some(30));
        assert_eq!(req.rate_limit_per, None);
        let req = create(&["--rate-limit", "150", "--rate-limit-per", "user"]);
        assert_eq!(req.rate_limit_per, Some(keyward_core::RateLimitPer::User));
        let per_alone = ["create", "--name", "x", "--kind", "api", "--scope", "user"];
        let per_alone: Vec<&str> = per_alone
            .iter()
            .chain(&["--rate-limit-per", "user"])
            .copied()
            .collect();
        assert!(
            parse(&per_alone).is_err(),
            "--rate-limit-per needs --rate-limit"
        );
    }

    #[test]
    fn update_sets_what_the_limit_counts() {
        let p = update(&["--rate-limit-per", "user"]).unwrap();
        assert_eq!(p.rate_limit_per, Some(keyward_core::RateLimitPer::User));
        assert_eq!(p.rate_limit_per_minute, None);
        assert!(parse(&["update", ROL, "--no-rate-limit", "--rate-limit-per", "user"]).is_err());
    }

    #[test]
    fn update_sets_and_clears_the_access_policy() {
        let p = update(&["--ip-allowlist", "10.0.0.0/8", "--ip-allowlist", "::1"]).unwrap();
        assert_eq!(
            p.ip_allowlist,
            Some(IpListInput::Text("10.0.0.0/8\n::1".into()))
        );
        assert_eq!(p.rate_limit_per_minute, None);
        let p = update(&["--clear-ip-allowlist", "--no-rate-limit"]).unwrap();
        assert_eq!(p.ip_allowlist, Some(IpListInput::Text(String::new())));
        assert_eq!(p.rate_limit_per_minute, Some(None));
        assert_eq!(
            update(&["--rate-limit", "90"])
                .unwrap()
                .rate_limit_per_minute,
            Some(Some(90))
        );
        assert!(update(&[]).is_err());
        assert!(
            update(&["--reason", "why"]).is_err(),
            "a reason alone changes nothing"
        );
        let p = update(&["--ip-allowlist", "10.0.0.0/8", "--reason", "new office"]).unwrap();
        assert_eq!(p.reason.as_deref(), Some("new office"));
        for bad in [
            &[
                "update",
                ROL,
                "--ip-allowlist",
                "::1",
                "--clear-ip-allowlist",
            ][..],
            &["update", ROL, "--rate-limit", "60", "--no-rate-limit"],
            &["update", ROL, "--rate-limit", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

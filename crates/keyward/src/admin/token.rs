//! `keyward token …`: create, list, get, update, activate, revoke, delete, usage.

use anyhow::bail;
use chrono::{DateTime, Duration, Utc};
use keyward_client::TokenQuery;
use keyward_core::api::{CreateToken, CreatedToken, TokenPatch, TokenView};
use keyward_core::model::ShownStatus;
use keyward_core::{RoleId, TokenId, UserId};

use super::args::{self, StatusArg};
use super::table::{self, Table};
use super::{emit, print_json, Ctx, PageArgs};

/// Token verbs.
#[derive(clap::Subcommand, Debug)]
pub enum TokenCmd {
    /// Create a token; its secret is shown once.
    Create(CreateArgs),
    /// List tokens.
    List(ListArgs),
    /// Show one token.
    Get {
        /// Token id (`tok_…`).
        id: TokenId,
    },
    /// Change a token's name, role, permissions, metadata, validity or access policy.
    Update(UpdateArgs),
    /// Make a pending token usable.
    Activate {
        /// Token id (`tok_…`).
        id: TokenId,
    },
    /// Revoke a token: refused from now on, for good.
    Revoke {
        /// Token id (`tok_…`).
        id: TokenId,
    },
    /// Delete a token.
    Delete {
        /// Token id (`tok_…`).
        id: TokenId,
    },
    /// Show a token's usage: requests per hour or day, codes, addresses and endpoints.
    Usage(super::usage::UsageArgs),
    /// Show a token's latest requests kept one by one (while its request log is on).
    Requests(super::usage::RequestsArgs),
    /// Rotate a token: a new secret (shown once); the old one works until the grace ends.
    Rotate(super::rotation::RotateArgs),
    /// Show a token's rotation family, oldest first.
    Family {
        /// Token id (`tok_…`).
        id: TokenId,
    },
}

/// `token create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The user the token acts for (`usr_…`).
    #[arg(long)]
    owner: UserId,
    /// Display name.
    #[arg(long)]
    name: String,
    /// The token's own `api` role (`rol_…`); without it the token uses its owner's role.
    #[arg(long)]
    role: Option<RoleId>,
    /// Narrow the role's permissions to these (repeatable).
    #[arg(long = "permission", value_name = "PERMISSION")]
    permissions: Vec<String>,
    /// Free-form JSON object returned with every verification.
    #[arg(long, value_parser = args::json_object)]
    metadata: Option<serde_json::Value>,
    /// Expiry, as an RFC 3339 time.
    #[arg(long, value_parser = args::instant, conflicts_with = "expires_in")]
    expires_at: Option<DateTime<Utc>>,
    /// Expiry, as a duration from now (30d, 12h, 2w, 1d12h…).
    #[arg(long, value_parser = args::duration)]
    expires_in: Option<Duration>,
    /// Not usable before this RFC 3339 time.
    #[arg(long, value_parser = args::instant)]
    not_before: Option<DateTime<Utc>>,
    /// Create it pending: it works only after `token activate`.
    #[arg(long)]
    pending: bool,
    /// Addresses or CIDR ranges the token may be used from (repeatable or comma-separated).
    #[arg(long = "ip-allowlist", value_name = "IPS")]
    ip_allowlist: Vec<String>,
    /// Usable only from the internal networks.
    #[arg(long)]
    internal_only: bool,
    /// Keep each verified request as a record of its own (`token requests`), not only
    /// counted per minute.
    #[arg(long)]
    request_log: bool,
    /// Requests per minute (overrides the role's and the workspace's).
    #[arg(long, value_name = "PER_MINUTE", value_parser = args::rate_limit)]
    rate_limit: Option<u32>,
    /// What the token's own rate limit counts: the token alone, or the owner user's per-user
    /// tokens together (needs `--rate-limit`).
    #[arg(long, value_enum, value_name = "PER", requires = "rate_limit")]
    rate_limit_per: Option<args::PerArg>,
}

/// `token list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only this user's tokens.
    #[arg(long)]
    owner: Option<UserId>,
    /// Only tokens with this role of their own.
    #[arg(long)]
    role: Option<RoleId>,
    /// Only tokens in this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    #[command(flatten)]
    page: PageArgs,
}

/// `token update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Token id (`tok_…`).
    id: TokenId,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New own `api` role.
    #[arg(long, conflicts_with = "no_role")]
    role: Option<RoleId>,
    /// Drop the token's own role: it then uses its owner's.
    #[arg(long)]
    no_role: bool,
    /// New narrowing of the role's permissions (repeatable; replaces the old one).
    #[arg(
        long = "permission",
        value_name = "PERMISSION",
        conflicts_with = "all_role_permissions"
    )]
    permissions: Vec<String>,
    /// Remove the narrowing: the token gets all of its role's permissions.
    #[arg(long)]
    all_role_permissions: bool,
    /// New metadata (a JSON object, replacing the old).
    #[arg(long, value_parser = args::json_object)]
    metadata: Option<serde_json::Value>,
    /// New expiry, as an RFC 3339 time.
    #[arg(long, value_parser = args::instant, conflicts_with_all = ["expires_in", "no_expiry"])]
    expires_at: Option<DateTime<Utc>>,
    /// New expiry, as a duration from now.
    #[arg(long, value_parser = args::duration, conflicts_with = "no_expiry")]
    expires_in: Option<Duration>,
    /// Remove the expiry (refused under a maximum token lifetime).
    #[arg(long)]
    no_expiry: bool,
    /// New start of validity, as an RFC 3339 time.
    #[arg(long, value_parser = args::instant, conflicts_with = "no_not_before")]
    not_before: Option<DateTime<Utc>>,
    /// Remove the start of validity.
    #[arg(long)]
    no_not_before: bool,
    /// New allowlist: addresses or CIDR ranges (repeatable or comma-separated; replaces the
    /// old one).
    #[arg(
        long = "ip-allowlist",
        value_name = "IPS",
        conflicts_with = "clear_ip_allowlist"
    )]
    ip_allowlist: Vec<String>,
    /// Remove the token's own allowlist.
    #[arg(long)]
    clear_ip_allowlist: bool,
    /// Make the token usable only from the internal networks, or from anywhere again.
    #[arg(long, value_name = "true|false")]
    internal_only: Option<bool>,
    /// Keep each verified request as a record of its own, or count requests per minute again.
    #[arg(long, value_name = "true|false")]
    request_log: Option<bool>,
    /// New rate limit, in requests per minute.
    #[arg(
        long,
        value_name = "PER_MINUTE",
        value_parser = args::rate_limit,
        conflicts_with = "no_rate_limit"
    )]
    rate_limit: Option<u32>,
    /// Remove the token's own rate limit: its role's or the workspace's applies.
    #[arg(long)]
    no_rate_limit: bool,
    /// What the token's own rate limit counts: the token alone, or the owner user's per-user
    /// tokens together.
    #[arg(long, value_enum, value_name = "PER", conflicts_with = "no_rate_limit")]
    rate_limit_per: Option<args::PerArg>,
    /// Why: kept with the change request when the change needs another person's approval
    /// (the workspace's `require_approval`), and shown to the approvers.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

pub(crate) async fn run(cmd: TokenCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        TokenCmd::Create(a) => {
            let created = client.create_token(&create_request(a)?).await?;
            show_created(ctx, &created)
        }
        TokenCmd::List(a) => {
            let query = TokenQuery {
                owner_id: a.owner,
                role_id: a.role,
                status: a.status.map(Into::into),
                limit: a.page.limit,
                cursor: None,
            };
            let page = a
                .page
                .fetch(|cursor| {
                    let query = TokenQuery {
                        cursor,
                        ..query.clone()
                    };
                    async move { client.list_tokens(&query).await }
                })
                .await?;
            ctx.show_page(&page, list_table)
        }
        TokenCmd::Get { id } => ctx.show(&client.token(id).await?, details),
        TokenCmd::Rotate(a) => super::rotation::rotate(a, ctx).await,
        TokenCmd::Family { id } => super::rotation::family(id, ctx).await,
        TokenCmd::Update(a) => {
            let id = a.id;
            let patch = patch(a)?;
            let answer = client.update_token(id, &patch).await;
            super::change_request::show_update(ctx, answer, details)
        }
        TokenCmd::Activate { id } => ctx.show(&client.activate_token(id).await?, details),
        TokenCmd::Revoke { id } => ctx.show(&client.revoke_token(id).await?, details),
        TokenCmd::Delete { id } => {
            client.delete_token(id).await?;
            ctx.done(&format!("Deleted token {id}."))
        }
        TokenCmd::Usage(a) => super::usage::run(a, ctx).await,
        TokenCmd::Requests(a) => super::usage::requests(a, ctx).await,
    }
}

/// The body of `token create`.
fn create_request(a: CreateArgs) -> anyhow::Result<CreateToken> {
    let expires_at = match a.expires_in {
        Some(d) => Some(args::from_now(d)?),
        None => a.expires_at,
    };
    Ok(CreateToken {
        owner_id: a.owner,
        name: a.name,
        role_id: a.role,
        permissions: (!a.permissions.is_empty()).then_some(a.permissions),
        metadata: a.metadata,
        not_before: a.not_before,
        expires_at,
        pending: a.pending,
        ip_allowlist: args::ip_list(a.ip_allowlist),
        internal_only: a.internal_only,
        request_log: a.request_log,
        rate_limit_per_minute: a.rate_limit,
        rate_limit_per: a.rate_limit_per.map(Into::into),
    })
}

/// The PATCH body of `token update`; refuses an update that changes nothing.
fn patch(a: UpdateArgs) -> anyhow::Result<TokenPatch> {
    let expires_at = match a.expires_in {
        Some(d) => Some(args::from_now(d)?),
        None => a.expires_at,
    };
    let permissions = (!a.permissions.is_empty()).then_some(a.permissions);
    let patch = TokenPatch {
        reason: a.reason,
        name: a.name,
        role_id: args::set_or_clear(a.role, a.no_role),
        permissions: args::set_or_clear(permissions, a.all_role_permissions),
        metadata: a.metadata,
        not_before: args::set_or_clear(a.not_before, a.no_not_before),
        expires_at: args::set_or_clear(expires_at, a.no_expiry),
        ip_allowlist: args::ip_list_or_clear(a.ip_allowlist, a.clear_ip_allowlist),
        internal_only: a.internal_only,
        request_log: a.request_log,
        rate_limit_per_minute: args::set_or_clear(a.rate_limit, a.no_rate_limit),
        rate_limit_per: a.rate_limit_per.map(Into::into),
    };
    // A reason alone changes nothing.
    let unchanged = TokenPatch {
        reason: None,
        ..patch.clone()
    } == TokenPatch::default();
    if unchanged {
        bail!("nothing to change: give at least one option (see `keyward token update --help`)");
    }
    Ok(patch)
}

/// The answer to `token create`: the token, then its secret, once.
fn show_created(ctx: &Ctx, created: &CreatedToken) -> anyhow::Result<()> {
    if ctx.json {
        return print_json(created);
    }
    emit(&details(&created.token).render())?;
    emit("")?;
    emit(&format!(
        "Secret (shown once, store it now): {}",
        created.secret
    ))
}

fn list_table(tokens: &[TokenView]) -> Table {
    let mut t = Table::new(&["ID", "NAME", "STATUS", "OWNER", "ROLE", "START", "EXPIRES"]);
    for tok in tokens {
        t.row([
            tok.id.to_string(),
            tok.name.clone(),
            status(tok),
            tok.owner_id.to_string(),
            table::or(tok.role_id, "(owner's)"),
            format!("{}…", tok.start),
            table::time(tok.expires_at),
        ]);
    }
    t
}

pub(crate) fn details(tok: &TokenView) -> Table {
    Table::details([
        ("id", tok.id.to_string()),
        ("name", tok.name.clone()),
        ("status", status(tok)),
        ("workspace", tok.workspace_id.to_string()),
        ("owner", tok.owner_id.to_string()),
        ("role", table::or(tok.role_id, "(owner's role)")),
        (
            "permissions",
            tok.permissions
                .as_deref()
                .map_or_else(|| "(all of the role's)".to_owned(), table::list),
        ),
        ("metadata", tok.metadata.to_string()),
        ("start", format!("{}…", tok.start)),
        ("last used", super::usage::last_used(tok)),
        ("not before", table::time(tok.not_before)),
        ("expires at", table::time(tok.expires_at)),
        ("ip allowlist", table::ips(&tok.ip_allowlist, "any")),
        ("internal only", table::yes_no(tok.internal_only)),
        ("request log", table::yes_no(tok.request_log)),
        (
            "rate limit",
            table::budget(
                tok.rate_limit_per_minute.map(|n| (n, tok.rate_limit_per)),
                "default",
            ),
        ),
        ("created at", table::time(Some(tok.created_at))),
        ("updated at", table::time(Some(tok.updated_at))),
        ("revoked at", table::time(tok.revoked_at)),
    ])
}

fn status(tok: &TokenView) -> String {
    match tok.status {
        ShownStatus::Pending => "pending",
        ShownStatus::Active => "active",
        ShownStatus::Revoked => "revoked",
        ShownStatus::Expired => "expired",
    }
    .to_owned()
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
        cmd: TokenCmd,
    }

    const TOK: &str = "tok_0123456789abcdef0123456789abcdef";
    const USR: &str = "usr_0123456789abcdef0123456789abcdef";

    fn parse(args: &[&str]) -> Result<TokenCmd, clap::Error> {
        Cli::try_parse_from(std::iter::once("token").chain(args.iter().copied())).map(|c| c.cmd)
    }

    fn create(args: &[&str]) -> CreateToken {
        let base = ["create", "--owner", USR, "--name", "ci"];
        let all: Vec<&str> = base.iter().chain(args).copied().collect();
        match parse(&all).unwrap() {
            TokenCmd::Create(a) => create_request(a).unwrap(),
            other => unreachable!("{other:?}"),
        }
    }

    fn update(args: &[&str]) -> anyhow::Result<TokenPatch> {
        let all: Vec<&str> = ["update", TOK].iter().chain(args).copied().collect();
        match parse(&all).unwrap() {
            TokenCmd::Update(a) => patch(a),
            other => unreachable!("{other:?}"),
        }
    }

    #[test]
    fn create_takes_the_access_policy() {
        let plain = create(&[]);
        assert_eq!(plain.ip_allowlist, None);
        assert!(!plain.internal_only);
        assert_eq!(plain.rate_limit_per_minute, None);

        let req = create(&[
            "--ip-allowlist",
            "10.0.0.0/8,192.168.1.7",
            "--ip-allowlist",
            "2001:db8::/32",
            "--internal-only",
            "--rate-limit",
            "600",
        ]);
        assert_eq!(
            req.ip_allowlist,
            Some(IpListInput::Text(
                "10.0.0.0/8,192.168.1.7\n2001:db8::/32".into()
            ))
        );
        assert!(req.internal_only);
        assert_eq!(req.rate_limit_per_minute, Some(600));
        assert_eq!(req.rate_limit_per, None);
        let req = create(&["--rate-limit", "150", "--rate-limit-per", "user"]);
        assert_eq!(req.rate_limit_per, Some(keyward_core::RateLimitPer::User));
        let per_alone = [
            "create",
            "--owner",
            USR,
            "--name",
            "ci",
            "--rate-limit-per",
            "user",
        ];
        assert!(
            parse(&per_alone).is_err(),
            "--rate-limit-per needs --rate-limit"
        );
        let base = ["create", "--owner", USR, "--name", "ci", "--rate-limit"];
        for bad in ["0", "fast"] {
            let all: Vec<&str> = base.iter().chain(&[bad]).copied().collect();
            assert!(parse(&all).is_err(), "{bad}");
        }
    }

    #[test]
    fn update_sets_and_clears_the_access_policy() {
        let p = update(&[
            "--ip-allowlist",
            "10.0.0.0/8",
            "--internal-only",
            "true",
            "--rate-limit",
            "60",
        ])
        .unwrap();
        assert_eq!(p.ip_allowlist, Some(IpListInput::Text("10.0.0.0/8".into())));
        assert_eq!(p.internal_only, Some(true));
        assert_eq!(p.rate_limit_per_minute, Some(Some(60)));

        let p = update(&["--clear-ip-allowlist", "--no-rate-limit"]).unwrap();
        assert_eq!(p.ip_allowlist, Some(IpListInput::Text(String::new())));
        assert_eq!(p.rate_limit_per_minute, Some(None));
        assert_eq!(p.internal_only, None);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ip_allowlist": "", "rate_limit_per_minute": null})
        );

        assert_eq!(
            update(&["--internal-only", "false"]).unwrap().internal_only,
            Some(false)
        );
        assert!(update(&[]).is_err());
        assert!(
            update(&["--reason", "why"]).is_err(),
            "a reason alone changes nothing"
        );
        let p = update(&["--internal-only", "false", "--reason", "moved to the cloud"]).unwrap();
        assert_eq!(p.reason.as_deref(), Some("moved to the cloud"));
        for bad in [
            &[
                "update",
                TOK,
                "--ip-allowlist",
                "10.0.0.0/8",
                "--clear-ip-allowlist",
            ][..],
            &["update", TOK, "--rate-limit", "60", "--no-rate-limit"],
            &["update", TOK, "--internal-only"],
            &["update", TOK, "--internal-only", "maybe"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! `keyward token …`: create, list, get, update, activate, revoke, delete.

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
    /// Change a token's name, role, permissions, metadata or validity.
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
}

pub(crate) async fn run(cmd: TokenCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        TokenCmd::Create(a) => {
            let expires_at = match a.expires_in {
                Some(d) => Some(args::from_now(d)?),
                None => a.expires_at,
            };
            let req = CreateToken {
                owner_id: a.owner,
                name: a.name,
                role_id: a.role,
                permissions: (!a.permissions.is_empty()).then_some(a.permissions),
                metadata: a.metadata,
                not_before: a.not_before,
                expires_at,
                pending: a.pending,
            };
            let created = client.create_token(&req).await?;
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
        TokenCmd::Update(a) => {
            let id = a.id;
            let patch = patch(a)?;
            ctx.show(&client.update_token(id, &patch).await?, details)
        }
        TokenCmd::Activate { id } => ctx.show(&client.activate_token(id).await?, details),
        TokenCmd::Revoke { id } => ctx.show(&client.revoke_token(id).await?, details),
        TokenCmd::Delete { id } => {
            client.delete_token(id).await?;
            ctx.done(&format!("Deleted token {id}."))
        }
    }
}

/// The PATCH body of `token update`; refuses an update that changes nothing.
fn patch(a: UpdateArgs) -> anyhow::Result<TokenPatch> {
    let expires_at = match a.expires_in {
        Some(d) => Some(args::from_now(d)?),
        None => a.expires_at,
    };
    let permissions = (!a.permissions.is_empty()).then_some(a.permissions);
    let patch = TokenPatch {
        name: a.name,
        role_id: args::set_or_clear(a.role, a.no_role),
        permissions: args::set_or_clear(permissions, a.all_role_permissions),
        metadata: a.metadata,
        not_before: args::set_or_clear(a.not_before, a.no_not_before),
        expires_at: args::set_or_clear(expires_at, a.no_expiry),
    };
    if patch == TokenPatch::default() {
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
        ("not before", table::time(tok.not_before)),
        ("expires at", table::time(tok.expires_at)),
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

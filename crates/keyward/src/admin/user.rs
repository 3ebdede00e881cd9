//! `keyward user …`: create, list, get, update, delete.

use anyhow::bail;
use keyward_client::UserQuery;
use keyward_core::api::{CreateUser, UserPatch};
use keyward_core::{RoleId, User, UserId, UserKind};

use super::args::UserKindArg;
use super::table::{self, Table};
use super::{Ctx, PageArgs};

/// User verbs.
#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user.
    Create(CreateArgs),
    /// List users.
    List(ListArgs),
    /// Show one user.
    Get {
        /// User id (`usr_…`).
        id: UserId,
    },
    /// Change a user's name, e-mail or role, or disable / re-enable it.
    Update(UpdateArgs),
    /// Delete a user.
    Delete {
        /// User id (`usr_…`).
        id: UserId,
    },
    /// Make a one-time invitation link with which a person sets their password (and enrols
    /// two-factor authentication) in the dashboard. Shown once.
    Invite {
        /// User id (`usr_…`) of a human user with an e-mail address.
        id: UserId,
    },
    /// Revoke every token of a user at once.
    RevokeTokens {
        /// User id (`usr_…`).
        id: UserId,
    },
}

/// `user create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// `human` (logs into the dashboard) or `service` (an integration that owns tokens).
    #[arg(long, value_enum)]
    kind: UserKindArg,
    /// Display name, unique in the workspace.
    #[arg(long)]
    name: String,
    /// E-mail address.
    #[arg(long)]
    email: Option<String>,
    /// Role, by id (`rol_…`) or by name: a human role for humans, an api role for service
    /// users.
    #[arg(long)]
    role: Option<String>,
}

/// `user list`.
#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only users of this kind.
    #[arg(long, value_enum)]
    kind: Option<UserKindArg>,
    /// Only disabled users.
    #[arg(long, conflicts_with = "enabled")]
    disabled: bool,
    /// Only enabled users.
    #[arg(long)]
    enabled: bool,
    #[command(flatten)]
    page: PageArgs,
}

/// `user update`.
#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// User id (`usr_…`).
    id: UserId,
    /// New name.
    #[arg(long)]
    name: Option<String>,
    /// New e-mail address.
    #[arg(long, conflicts_with = "no_email")]
    email: Option<String>,
    /// Remove the e-mail address.
    #[arg(long)]
    no_email: bool,
    /// New role (`rol_…`).
    #[arg(long, conflicts_with = "no_role")]
    role: Option<RoleId>,
    /// Remove the role.
    #[arg(long)]
    no_role: bool,
    /// Disable the user: its tokens stop working at once.
    #[arg(long, conflicts_with = "enable")]
    disable: bool,
    /// Re-enable the user.
    #[arg(long)]
    enable: bool,
}

pub(crate) async fn run(cmd: UserCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        UserCmd::RevokeTokens { id } => super::rotation::revoke_all(id, ctx).await,
        UserCmd::Create(a) => {
            let req = CreateUser {
                kind: a.kind.into(),
                name: a.name,
                email: a.email,
                role_id: match a.role {
                    Some(r) => Some(role_named(client, &r).await?),
                    None => None,
                },
            };
            ctx.show(&client.create_user(&req).await?, details)
        }
        UserCmd::List(a) => {
            let query = UserQuery {
                kind: a.kind.map(Into::into),
                disabled: flag(a.disabled, a.enabled),
                limit: a.page.limit,
                cursor: None,
            };
            let page = a
                .page
                .fetch(|cursor| {
                    let query = UserQuery {
                        cursor,
                        ..query.clone()
                    };
                    async move { client.list_users(&query).await }
                })
                .await?;
            ctx.show_page(&page, list_table)
        }
        UserCmd::Get { id } => ctx.show(&client.user(id).await?, details),
        UserCmd::Update(a) => {
            let patch = UserPatch {
                name: a.name,
                email: super::args::set_or_clear(a.email, a.no_email),
                role_id: super::args::set_or_clear(a.role, a.no_role),
                disabled: flag(a.disable, a.enable),
            };
            if patch == UserPatch::default() {
                bail!("nothing to change: give at least one option (see `keyward user update --help`)");
            }
            ctx.show(&client.update_user(a.id, &patch).await?, details)
        }
        UserCmd::Invite { id } => {
            let inv = client.invite_user(id).await?;
            if ctx.json {
                return super::print_json(&inv);
            }
            println!(
                "Invitation for {id} (shown once; usable once, until {}):\n\n    {}\n",
                inv.expires_at.format("%Y-%m-%d %H:%M UTC"),
                inv.url
            );
            Ok(())
        }
        UserCmd::Delete { id } => {
            client.delete_user(id).await?;
            ctx.done(&format!("Deleted user {id}."))
        }
    }
}

/// `Some(true)` for the first flag, `Some(false)` for the second, `None` for neither.
fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn kind(k: UserKind) -> String {
    match k {
        UserKind::Human => "human",
        UserKind::Service => "service",
    }
    .to_owned()
}

fn state(disabled: bool) -> String {
    if disabled { "disabled" } else { "enabled" }.to_owned()
}

fn list_table(users: &[User]) -> Table {
    let mut t = Table::new(&["ID", "KIND", "NAME", "EMAIL", "ROLE", "STATE"]);
    for u in users {
        t.row([
            u.id.to_string(),
            kind(u.kind),
            u.name.clone(),
            table::or(u.email.as_deref(), "-"),
            table::or(u.role_id, "-"),
            state(u.disabled),
        ]);
    }
    t
}

pub(crate) fn details(u: &User) -> Table {
    Table::details([
        ("id", u.id.to_string()),
        ("kind", kind(u.kind)),
        ("name", u.name.clone()),
        ("email", table::or(u.email.as_deref(), "-")),
        ("role", table::or(u.role_id, "-")),
        ("state", state(u.disabled)),
        ("workspace", u.workspace_id.to_string()),
        ("created at", table::time(Some(u.created_at))),
        ("updated at", table::time(Some(u.updated_at))),
    ])
}

/// A role named by id (`rol_…`) or by its exact name.
async fn role_named(client: &keyward_client::Client, given: &str) -> anyhow::Result<RoleId> {
    if let Ok(id) = given.parse::<RoleId>() {
        return Ok(id);
    }
    let mut cursor = None;
    loop {
        let page = client
            .list_roles(&keyward_client::ListParams {
                limit: Some(200),
                cursor: cursor.clone(),
            })
            .await?;
        if let Some(r) = page.items.iter().find(|r| r.name == given) {
            return Ok(r.id);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => bail!("no role with the id or name '{given}' (see `keyward role list`)"),
        }
    }
}

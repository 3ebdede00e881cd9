//! `keyward role …`: create, list, get, update, delete.

use anyhow::bail;
use keyward_client::ListParams;
use keyward_core::api::{CreateRole, RolePatch};
use keyward_core::{Role, RoleId, RoleKind};

use super::args::{RoleKindArg, ScopeArg};
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
}

pub(crate) async fn run(cmd: RoleCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        RoleCmd::Create(a) => {
            let req = CreateRole {
                name: a.name,
                description: a.description,
                kind: a.kind.into(),
                scope: a.scope.into(),
                permissions: a.permissions,
            };
            ctx.show(&client.create_role(&req).await?, details)
        }
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
            let patch = RolePatch {
                name: a.name,
                description: a.description,
                scope: a.scope.map(Into::into),
                permissions: (!a.permissions.is_empty()).then_some(a.permissions),
            };
            if patch == RolePatch::default() {
                bail!("nothing to change: give at least one option (see `keyward role update --help`)");
            }
            ctx.show(&client.update_role(a.id, &patch).await?, details)
        }
        RoleCmd::Delete { id } => {
            client.delete_role(id).await?;
            ctx.done(&format!("Deleted role {id}."))
        }
    }
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
        ("workspace", r.workspace_id.to_string()),
        ("created at", table::time(Some(r.created_at))),
        ("updated at", table::time(Some(r.updated_at))),
    ])
}

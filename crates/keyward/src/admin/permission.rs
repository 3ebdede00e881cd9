//! `keyward permission …`: list, put, delete entries of the permission catalogue.

use keyward_core::api::PutPermission;
use keyward_core::CatalogueEntry;

use super::table::{self, Table};
use super::Ctx;

/// Permission catalogue verbs.
#[derive(clap::Subcommand, Debug)]
pub enum PermissionCmd {
    /// List the catalogue, keyward's built-in permissions included.
    List,
    /// Add a permission, or change its description.
    Put {
        /// The permission, `resource:action` (e.g. `orders:read`).
        name: String,
        /// What it allows. Without it, an existing entry keeps its description.
        #[arg(long)]
        description: Option<String>,
    },
    /// Remove a permission from the catalogue.
    Delete {
        /// The permission, `resource:action`.
        name: String,
    },
}

pub(crate) async fn run(cmd: PermissionCmd, ctx: &Ctx) -> anyhow::Result<()> {
    let client = &ctx.client;
    match cmd {
        PermissionCmd::List => ctx.show(&client.permissions().await?, |c| list_table(&c.items)),
        PermissionCmd::Put { name, description } => {
            // PUT replaces the entry: look the old description up rather than wipe it.
            let description = match description {
                Some(d) => d,
                None => client
                    .permissions()
                    .await?
                    .items
                    .into_iter()
                    .find(|e| e.permission.as_str() == name)
                    .map(|e| e.description)
                    .unwrap_or_default(),
            };
            let entry = client
                .put_permission(&name, &PutPermission { description })
                .await?;
            ctx.show(&entry, |e| list_table(std::slice::from_ref(e)))
        }
        PermissionCmd::Delete { name } => {
            client.delete_permission(&name).await?;
            ctx.done(&format!("Deleted permission {name}."))
        }
    }
}

fn list_table(entries: &[CatalogueEntry]) -> Table {
    let mut t = Table::new(&["PERMISSION", "BUILTIN", "DESCRIPTION"]);
    for e in entries {
        t.row([
            e.permission.to_string(),
            table::yes_no(e.builtin),
            e.description.clone(),
        ]);
    }
    t
}

//! The permission matrix of the role form: the workspace's catalogue grouped as resources
//! (rows) × actions (columns), a "all actions" wildcard per resource, and the global wildcards
//! `*` and `keyward.*`; and the rule joining the "may generate API tokens" switch with its
//! matrix cell.

use keyward_core::CatalogueEntry;

/// The permission the "may generate API tokens" switch stands for.
pub const TOKENS_CREATE: &str = "keyward.tokens:create";

/// One checkbox.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The pattern it sends (`orders:read`, `orders:*`, `*`).
    pub value: String,
    /// Its accessible name.
    pub label: String,
    /// What it allows (the catalogue's description).
    pub description: String,
    /// Whether it is ticked.
    pub checked: bool,
}

/// One resource.
#[derive(Debug, Clone)]
pub struct Row {
    /// `orders`, `keyward.tokens`.
    pub resource: String,
    /// One per column; `None` where the catalogue has no such permission.
    pub cells: Vec<Option<Cell>>,
    /// `resource:*`.
    pub all: Cell,
}

/// One table of the matrix.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its caption.
    pub caption: String,
    /// The column headings.
    pub actions: Vec<String>,
    /// The rows.
    pub rows: Vec<Row>,
}

/// The whole matrix: the product's permissions, keyward's own, and the global wildcards.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// The workspace's own permissions.
    pub product: Table,
    /// keyward's administration permissions.
    pub admin: Table,
    /// `*` and `keyward.*`.
    pub globals: Vec<Cell>,
}

/// The order columns come in: the usual actions first, then the others alphabetically.
fn rank(action: &str) -> (usize, String) {
    const KNOWN: [&str; 7] = [
        "read", "create", "write", "revoke", "delete", "approve", "tokens",
    ];
    let at = KNOWN
        .iter()
        .position(|k| *k == action)
        .unwrap_or(KNOWN.len());
    (at, action.to_owned())
}

fn table(caption: &str, entries: &[&CatalogueEntry], ticked: &[String]) -> Table {
    let mut actions: Vec<String> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for e in entries {
        let a = e.permission.action().to_owned();
        if !actions.contains(&a) {
            actions.push(a);
        }
        let r = e.permission.resource().to_owned();
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    actions.sort_by_key(|a| rank(a));
    resources.sort();
    let rows = resources
        .into_iter()
        .map(|resource| {
            let cells = actions
                .iter()
                .map(|action| {
                    entries
                        .iter()
                        .find(|e| {
                            e.permission.resource() == resource && e.permission.action() == action
                        })
                        .map(|e| {
                            let value = e.permission.as_str().to_owned();
                            Cell {
                                label: value.clone(),
                                checked: ticked.contains(&value),
                                description: e.description.clone(),
                                value,
                            }
                        })
                })
                .collect();
            let value = format!("{resource}:*");
            let all = Cell {
                label: format!("{resource}: every action"),
                checked: ticked.contains(&value),
                description: format!("Every action on {resource}, including ones added later"),
                value,
            };
            Row {
                resource,
                cells,
                all,
            }
        })
        .collect();
    Table {
        caption: caption.to_owned(),
        actions,
        rows,
    }
}

impl Matrix {
    /// The matrix of `catalogue` with the patterns in `ticked` ticked.
    pub fn new(catalogue: &[CatalogueEntry], ticked: &[String]) -> Self {
        let (admin, product): (Vec<&CatalogueEntry>, Vec<&CatalogueEntry>) =
            catalogue.iter().partition(|e| e.permission.is_reserved());
        let global = |value: &str, description: &str| Cell {
            value: value.to_owned(),
            label: value.to_owned(),
            description: description.to_owned(),
            checked: ticked.iter().any(|t| t == value),
        };
        Self {
            product: table("Product permissions", &product, ticked),
            admin: table("keyward administration", &admin, ticked),
            globals: vec![
                global(
                    "*",
                    "Everything in the product: every permission outside keyward.*, including ones added later",
                ),
                global(
                    "keyward.*",
                    "All of keyward's administration (every keyward.* permission)",
                ),
            ],
        }
    }

    /// The two tables, product first.
    pub fn tables(&self) -> [&Table; 2] {
        [&self.product, &self.admin]
    }

    /// Whether the matrix has a checkbox sending `pattern`.
    pub fn offers(&self, pattern: &str) -> bool {
        self.globals.iter().any(|g| g.value == pattern)
            || self.tables().iter().any(|t| {
                t.rows.iter().any(|r| {
                    r.all.value == pattern || r.cells.iter().flatten().any(|c| c.value == pattern)
                })
            })
    }
}

/// Whether the role is to grant `keyward.tokens:create`, from the switch, the matrix cell and
/// what both showed when the form was drawn (`shown`): whichever of the two the person changed
/// decides; if neither changed, it stays as shown.
pub fn grants_token_creation(switch: bool, cell: bool, shown: bool) -> bool {
    if switch != shown {
        switch
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_core::Permission;

    fn entry(p: &str) -> CatalogueEntry {
        CatalogueEntry {
            permission: Permission::parse(p).unwrap(),
            description: format!("about {p}"),
            builtin: p.starts_with("keyward."),
        }
    }

    #[test]
    fn rows_are_resources_and_missing_cells_are_empty() {
        let cat = [
            entry("orders:write"),
            entry("orders:read"),
            entry("cart:write"),
            entry("keyward.tokens:create"),
        ];
        let m = Matrix::new(&cat, &["orders:read".into(), "cart:*".into()]);
        assert_eq!(m.product.actions, ["read", "write"]);
        let rows: Vec<_> = m.product.rows.iter().map(|r| r.resource.as_str()).collect();
        assert_eq!(rows, ["cart", "orders"]);
        assert!(m.product.rows[0].cells[0].is_none(), "no cart:read");
        assert!(m.product.rows[0].all.checked);
        assert!(m.product.rows[1].cells[0].as_ref().unwrap().checked);
        assert!(!m.product.rows[1].cells[1].as_ref().unwrap().checked);
        assert_eq!(m.admin.rows[0].resource, "keyward.tokens");
        assert!(m.offers("keyward.tokens:create") && m.offers("*") && m.offers("keyward.*"));
        assert!(m.offers("orders:*") && !m.offers("cart:read") && !m.offers("billing.*:read"));
    }

    #[test]
    fn the_control_that_changed_decides() {
        // Shown unticked (a new role): either control grants.
        assert!(grants_token_creation(true, false, false));
        assert!(grants_token_creation(false, true, false));
        assert!(!grants_token_creation(false, false, false));
        // Shown ticked: unticking either removes it, even if the other is still ticked.
        assert!(!grants_token_creation(false, true, true));
        assert!(!grants_token_creation(true, false, true));
        assert!(grants_token_creation(true, true, true));
    }
}

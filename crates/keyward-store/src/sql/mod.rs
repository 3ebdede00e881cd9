//! The SQL shared by both backends. Both accept `$n` placeholders and the same DML, so the
//! trait implementations are written once, in `sql_store!`, and instantiated by
//! `sqlite.rs` and `postgres.rs` with their pool and row types; usage, likewise, in
//! `usage_store!` (`usage_impl.rs`); the audit trail in `audit_store!` and
//! `append_audit!` (`audit_impl.rs`); events in `events_store!` (`events_impl.rs`); people's
//! credentials, invitations and sessions in `people_store!` (`people_impl.rs`); change requests
//! in `change_store!` (`change_impl.rs`). Helpers here
//! convert between domain values and column values.

mod codec;
#[macro_use]
mod audit_impl;
#[macro_use]
mod store_impl;
#[macro_use]
pub(crate) mod usage_impl;
#[macro_use]
pub(crate) mod events_impl;
#[macro_use]
pub(crate) mod people_impl;
#[macro_use]
pub(crate) mod change_impl;

pub(crate) use codec::*;

/// A value bound to a dynamically built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// Builds a `WHERE` clause and its arguments, numbering placeholders as it goes.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Filter {
    /// Starts with `column = $1`.
    pub fn new(first_column: &str, value: Arg) -> Self {
        let mut f = Self::default();
        f.eq(first_column, value);
        f
    }

    /// The next placeholder, after pushing `value`.
    pub fn arg(&mut self, value: Arg) -> String {
        self.args.push(value);
        format!("${}", self.args.len())
    }

    /// Adds `AND column = $n`.
    pub fn eq(&mut self, column: &str, value: Arg) {
        let p = self.arg(value);
        self.and(&format!("{column} = {p}"));
    }

    /// Adds `AND (condition)`.
    pub fn and(&mut self, condition: &str) {
        if self.sql.is_empty() {
            self.sql.push_str(" WHERE ");
        } else {
            self.sql.push_str(" AND ");
        }
        self.sql.push('(');
        self.sql.push_str(condition);
        self.sql.push(')');
    }

    /// Adds the keyset condition and the order and limit of a page.
    pub fn page(mut self, page: &crate::PageRequest) -> Self {
        if let Some(c) = &page.after {
            let at = self.arg(Arg::Int(c.created_at.timestamp_millis()));
            let id = self.arg(Arg::Text(c.id.to_string()));
            self.and(&format!(
                "created_at > {at} OR (created_at = {at} AND id > {id})"
            ));
        }
        let limit = self.arg(Arg::Int(i64::from(page.limit)));
        self.sql
            .push_str(&format!(" ORDER BY created_at, id LIMIT {limit}"));
        self
    }
}

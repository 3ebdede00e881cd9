//! The store's error tier. Driver errors are classified here; their text is kept for logs
//! and never shown to API callers.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row to change or delete does not exist (in that workspace).
    #[error("not found")]
    NotFound,
    /// The change conflicts with existing data (a taken name, a row still in use).
    #[error("{message}")]
    Conflict {
        /// Stable machine code, e.g. `NAME_TAKEN`.
        code: &'static str,
        /// Explanation safe to show.
        message: String,
    },
    /// The database cannot be reached or is overloaded.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store was configured wrongly.
    #[error("storage configuration: {0}")]
    Config(String),
    /// Anything else: a bug or corrupt data.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// A conflict with a stable code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    /// Classifies a driver error. `unique` is the conflict to report for a unique violation.
    pub(crate) fn from_sqlx(e: sqlx::Error, unique: Option<(&'static str, &str)>) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => match unique {
                Some((code, message)) => Self::conflict(code, message),
                None => Self::Internal(e.to_string()),
            },
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => Self::conflict(
                "REFERENCE_CONFLICT",
                "a referenced object does not exist or is still referenced",
            ),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => Self::Unavailable(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::from_sqlx(e, None)
    }
}

//! The domain's error: a refused input, naming the field and a stable machine code.

/// An input the domain refuses. `code` is stable and machine-readable (it becomes the `code` of
/// the problem+json answer); `field` names the offending input, where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    /// Stable machine code, e.g. `UNKNOWN_PERMISSION`.
    pub code: &'static str,
    /// The offending field, as a JSON path like `permissions[2]`, when there is one.
    pub field: Option<String>,
    /// A human explanation that never contains a secret.
    pub message: String,
}

impl DomainError {
    /// A refusal of one field's value.
    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// A refusal that is not about a single field.
    pub fn rule(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            field: None,
            message: message.into(),
        }
    }

    /// The same error with its field placed under `parent` (e.g. `permissions` → `role.permissions`).
    pub fn within(mut self, parent: &str) -> Self {
        self.field = Some(match self.field {
            Some(f) if f.starts_with('[') => format!("{parent}{f}"),
            Some(f) => format!("{parent}.{f}"),
            None => parent.to_owned(),
        });
        self
    }
}

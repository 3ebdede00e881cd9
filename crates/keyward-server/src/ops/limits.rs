//! Delegation of restrictions: a caller may create or change a token or a role only as
//! restricted as itself or more (internal-only, allowed addresses, rate limit, expiry), with
//! the comparison in [`keyward_core::delegation`] and the caller's own limits from
//! [`Caller::limits`]. A refusal is 403 `PRIVILEGE_ESCALATION` naming the field that would
//! loosen, never a value.

use keyward_core::delegation::{first_loosening, first_role_loosening, Limits, Restriction};
use keyward_core::model::WorkspaceSettings;
use keyward_core::{Role, Token};

use super::Caller;
use crate::error::ApiError;

/// Refuses (403) a token, as it would be stored, that is less restricted than `bound` (the
/// caller's limits, or what a rotation may renew them to).
pub fn ensure_token_within(
    bound: &Limits,
    token: &Token,
    role: Option<&Role>,
    settings: &WorkspaceSettings,
) -> Result<(), ApiError> {
    match first_loosening(bound, &Limits::of_token(token, role, settings)) {
        None => Ok(()),
        Some(r) => Err(refusal(r, "token")),
    }
}

/// Refuses (403) a role, as it would be stored, that gives its tokens fewer restrictions than
/// the caller has.
pub fn ensure_role_within(
    caller: &Caller,
    role: &Role,
    settings: &WorkspaceSettings,
) -> Result<(), ApiError> {
    match first_role_loosening(&caller.limits(), role, settings) {
        None => Ok(()),
        Some(r) => Err(refusal(r, "role")),
    }
}

fn refusal(r: Restriction, what: &str) -> ApiError {
    ApiError::ForbiddenField {
        code: "PRIVILEGE_ESCALATION",
        field: r.field(),
        message: format!(
            "the {what} would be less restricted than the calling token: {}",
            r.message()
        ),
    }
}

//! The gate's errors: what stops a decision from being made at all (as opposed to a refusal,
//! which is a decision). Front ends map them to their own answers (the server to 503/500
//! problem+json).

use keyward_core::DomainError;
use keyward_store::StoreError;

use crate::limiter::LimiterError;

/// Why the gate could not decide.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Storage failed while loading a token.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    /// The rate limiter's backend could not answer.
    #[error(transparent)]
    Limiter(#[from] LimiterError),
    /// A stored value could not be used (a rate limit out of range).
    #[error("invalid stored value: {}", .0.message)]
    Invalid(DomainError),
}

//! Read-modify-write with optimistic concurrency: an operation reads the object with its row
//! version, checks and changes it, and stores it on condition that the row is still at that
//! version. When another request changed it meanwhile the store answers `CONCURRENT_UPDATE`
//! and the whole attempt runs again on a fresh read, checks included; so a PATCH racing a
//! rotation or a revocation is applied on top of it, never over it.

use std::future::Future;

use keyward_store::CONCURRENT_UPDATE;

use crate::error::ApiError;

/// Attempts before a change gives up with 409 `CONCURRENT_UPDATE`. Each conflict means
/// another change of the same object was committed, so this many in a row is contention no
/// client should hold up.
pub const MAX_ATTEMPTS: usize = 8;

/// Runs `attempt` until it does not fail with `CONCURRENT_UPDATE`, at most [`MAX_ATTEMPTS`]
/// times.
pub async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(ApiError::Conflict {
                code: CONCURRENT_UPDATE,
                ..
            }) if tries < MAX_ATTEMPTS => {
                tries += 1;
                tracing::debug!(
                    attempt = tries,
                    "concurrent change: retrying on a fresh read"
                );
            }
            other => return other,
        }
    }
}

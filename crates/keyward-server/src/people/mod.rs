//! People: how a human user gets in and stays in — passwords (Argon2id), TOTP (RFC 6238),
//! recovery codes, invitations, sessions and the sign-in guard. What a signed-in person may
//! *do* is not decided here: the dashboard turns a session into the operations layer's
//! `Caller`, whose permissions are the person's `human` role's, exactly as for tokens.
//!
//! # Layout
//! - [`config`]: the `[dashboard]` section.
//! - [`password`], [`totp`], [`recovery`]: the secrets a person proves.
//! - [`session`]: cookie secrets, CSRF tokens, timeouts.
//! - [`guard`]: failed sign-ins, limited without letting a third party lock anyone out.
//! - [`invite`]: one-time invitation links.
//! - [`signin`]: the flows — sign in, second factor, session checks, sign out.
//! - [`twofactor`]: enrolment, recovery codes, turning 2FA off.

pub mod config;
pub mod guard;
pub mod invite;
pub mod password;
pub mod recovery;
pub mod session;
pub mod signin;
pub mod totp;
pub mod twofactor;

use chrono::{DateTime, Duration, Utc};
use keyward_core::audit::Actor;
use keyward_core::UserId;

pub use config::DashboardConfig;

/// What the flows share: the configuration and the guard.
pub struct People {
    /// `[dashboard]`.
    pub config: DashboardConfig,
    /// The sign-in guard.
    pub guard: guard::Guard,
    /// Where invitation links point: `public_url`, or `http://` + the listen address.
    pub base_url: String,
    /// The key change requests' approval codes are derived with (from the chain key, so every
    /// node derives the same codes).
    pub approval_key: [u8; 32],
}

impl People {
    /// Idle timeout.
    pub fn idle(&self) -> Duration {
        Duration::minutes(i64::from(self.config.session_idle_minutes))
    }

    /// Absolute timeout.
    pub fn absolute(&self) -> Duration {
        Duration::hours(i64::from(self.config.session_absolute_hours))
    }

    /// Whether cookies are `Secure`.
    pub fn secure(&self) -> bool {
        self.config.secure()
    }
}

/// A person acting on their own account (sign-in, 2FA changes).
pub fn person(user: UserId) -> Actor {
    Actor::person(user)
}

/// Deletes the sessions past their idle or absolute timeout as of `now` (they are refused
/// already; this only keeps the table small). Runs with the retention pass.
pub async fn prune_sessions(
    store: &dyn keyward_store::Store,
    people: &People,
    now: DateTime<Utc>,
) -> Result<u64, keyward_store::StoreError> {
    let gone = store
        .delete_stale_sessions(now - people.idle(), now - people.absolute())
        .await?;
    if gone > 0 {
        tracing::info!(sessions = gone, "stale dashboard sessions deleted");
    }
    Ok(gone)
}

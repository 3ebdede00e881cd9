//! People and the dashboard's sign-in, over HTTP as a browser does it (cookies and forms):
//! invitations, passwords, TOTP with the injected clock, recovery codes, sessions, CSRF, the
//! sign-in guard, the allowlist, and audit parity between dashboard and API.

mod approvals;
mod audit_settings;
pub mod browserless;
mod flows;
mod parity;
mod roles;
mod users;
mod webhooks;

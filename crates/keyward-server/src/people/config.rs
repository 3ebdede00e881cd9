//! `[dashboard]`: the web dashboard's sessions, invitations and sign-in guard.

use serde::{Deserialize, Serialize};

/// Dashboard settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// The address people reach keyward at, for invitation links (e.g.
    /// `https://keyward.example.com`); empty: `http://` and the listen address. An `https://`
    /// address also makes session cookies `Secure`.
    pub public_url: String,
    /// Mark cookies `Secure` even when `public_url` is not `https://` (TLS ends at a proxy).
    pub secure_cookies: bool,
    /// Minutes without a request after which a session ends.
    pub session_idle_minutes: u32,
    /// Hours after sign-in at which a session ends, however busy.
    pub session_absolute_hours: u32,
    /// Hours an invitation link stays usable.
    pub invitation_hours: u32,
    /// Failed sign-ins one address may make against one account per 15 minutes.
    pub failed_sign_ins_per_account_and_address: u32,
    /// Failed sign-ins one address may make against all accounts per 15 minutes.
    pub failed_sign_ins_per_address: u32,
    /// Failed sign-ins against one account from all addresses per 15 minutes; a browser that
    /// signed in to the account before (its device cookie) is exempt, so a third party cannot
    /// lock its owner out.
    pub failed_sign_ins_per_account: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            public_url: String::new(),
            secure_cookies: false,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            invitation_hours: 72,
            failed_sign_ins_per_account_and_address: 5,
            failed_sign_ins_per_address: 30,
            failed_sign_ins_per_account: 50,
        }
    }
}

impl DashboardConfig {
    /// Refuses values that would make the dashboard unusable.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.public_url.trim();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err("dashboard.public_url must start with http:// or https://".into());
        }
        for (name, v) in [
            ("session_idle_minutes", self.session_idle_minutes),
            ("session_absolute_hours", self.session_absolute_hours),
            ("invitation_hours", self.invitation_hours),
            (
                "failed_sign_ins_per_account_and_address",
                self.failed_sign_ins_per_account_and_address,
            ),
            (
                "failed_sign_ins_per_address",
                self.failed_sign_ins_per_address,
            ),
            (
                "failed_sign_ins_per_account",
                self.failed_sign_ins_per_account,
            ),
        ] {
            if v == 0 {
                return Err(format!("dashboard.{name} must be at least 1"));
            }
        }
        Ok(())
    }

    /// Whether cookies get `Secure`.
    pub fn secure(&self) -> bool {
        self.secure_cookies || self.public_url.trim().starts_with("https://")
    }
}

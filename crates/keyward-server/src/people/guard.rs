//! The sign-in guard: failed sign-ins are limited per account and address, per address, and
//! per account, with the same GCRA limiter as the rest of keyward (so a shared limiter makes
//! it hold across nodes). A request is checked before its password is hashed, so a refused
//! guess costs no Argon2 run, and counted only when it fails.
//!
//! A third party must not be able to lock a person out: the per-account budget, the only one
//! an attacker can spend from many addresses, does not apply to a browser holding the
//! account's device cookie (set at each successful sign-in, a MAC with a key derived from the
//! audit chain key, so every node accepts it). The owner's own browser then meets only the
//! per-address budgets, which the attacker does not share.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use keyward_core::ratelimit::Quota;
use keyward_core::UserId;
use sha2::Sha256;

use super::config::DashboardConfig;
use crate::limiter::{LimitKey, RateLimiter};

/// The guard's window.
const PERIOD_SECS: u32 = 15 * 60;
/// Seconds a device cookie lasts.
pub const DEVICE_COOKIE_SECS: i64 = 180 * 86_400;

/// Counts failed sign-ins.
pub struct Guard {
    limiter: Arc<dyn RateLimiter>,
    pair: Quota,
    source: Quota,
    account: Quota,
    device_key: [u8; 32],
}

impl Guard {
    /// A guard over `limiter` with the configured budgets.
    pub fn new(
        config: &DashboardConfig,
        limiter: Arc<dyn RateLimiter>,
        device_key: [u8; 32],
    ) -> Result<Self, String> {
        let q = |n: u32| Quota::new(n, PERIOD_SECS).map_err(|e| e.message);
        Ok(Self {
            limiter,
            pair: q(config.failed_sign_ins_per_account_and_address)?,
            source: q(config.failed_sign_ins_per_address)?,
            account: q(config.failed_sign_ins_per_account)?,
            device_key,
        })
    }

    fn keys(
        &self,
        user: Option<UserId>,
        ip: Option<IpAddr>,
        device: bool,
        source: bool,
    ) -> Vec<(LimitKey, &Quota)> {
        let mut keys = Vec::with_capacity(3);
        if let Some(ip) = ip {
            if source {
                keys.push((LimitKey::sign_in_source(ip), &self.source));
            }
            if let Some(u) = user {
                keys.push((LimitKey::account_source(u, ip), &self.pair));
            }
        }
        if let Some(u) = user {
            if !device {
                keys.push((LimitKey::Account(u), &self.account));
            }
        }
        keys
    }

    /// The account an unknown e-mail address stands for in the budgets, so that guessing at
    /// an address nobody has is limited exactly like guessing at a real one (the answers do
    /// not tell which addresses have accounts).
    pub fn unknown_account(&self, email: &str) -> UserId {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.device_key) else {
            return UserId::from_uuid(uuid::Uuid::nil());
        };
        mac.update(b"unknown account\0");
        mac.update(email.trim().to_lowercase().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        UserId::from_uuid(uuid::Uuid::from_bytes(bytes))
    }

    /// Whether an attempt may be checked now; `Err(seconds)` to wait otherwise. Counts
    /// nothing. A limiter that cannot answer refuses (for a minute): failing open would give
    /// a guesser unlimited tries.
    pub async fn admit(
        &self,
        user: Option<UserId>,
        ip: Option<IpAddr>,
        device: bool,
        now_ns: i64,
    ) -> Result<(), u64> {
        self.admit_keys(self.keys(user, ip, device, true), now_ns)
            .await
    }

    /// [`Guard::admit`] for one account's budgets only (the address's own budget was asked
    /// already for this attempt).
    pub async fn admit_account(
        &self,
        user: UserId,
        ip: Option<IpAddr>,
        device: bool,
        now_ns: i64,
    ) -> Result<(), u64> {
        self.admit_keys(self.keys(Some(user), ip, device, false), now_ns)
            .await
    }

    async fn admit_keys(&self, keys: Vec<(LimitKey, &Quota)>, now_ns: i64) -> Result<(), u64> {
        for (key, quota) in keys {
            match self.limiter.peek(key, quota, now_ns).await {
                Ok(o) if o.allowed => {}
                Ok(o) => return Err(o.retry_after_secs().unwrap_or(1).max(1)),
                Err(_) => return Err(60),
            }
        }
        Ok(())
    }

    /// Counts a failed attempt against every budget it touches.
    pub async fn failed(
        &self,
        user: Option<UserId>,
        ip: Option<IpAddr>,
        device: bool,
        now_ns: i64,
    ) {
        self.count(self.keys(user, ip, device, true), now_ns).await;
    }

    /// [`Guard::failed`] for one account's budgets only (the address's own budget was counted
    /// already for this attempt).
    pub async fn failed_account(
        &self,
        user: UserId,
        ip: Option<IpAddr>,
        device: bool,
        now_ns: i64,
    ) {
        self.count(self.keys(Some(user), ip, device, false), now_ns)
            .await;
    }

    async fn count(&self, keys: Vec<(LimitKey, &Quota)>, now_ns: i64) {
        for (key, quota) in keys {
            if let Err(e) = self.limiter.hit(key, quota, now_ns).await {
                tracing::warn!(error = %e, "sign-in guard could not count a failure");
            }
        }
    }

    fn mac(&self, user: UserId) -> String {
        // A 32-byte key is always a valid HMAC key; the fallback is unreachable.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.device_key) else {
            return String::new();
        };
        mac.update(user.uuid().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The device cookie's value for `user`.
    pub fn device_cookie(&self, user: UserId) -> String {
        format!("{}.{}", user.uuid().simple(), self.mac(user))
    }

    /// Whether a device cookie's value was given to `user`'s browser.
    pub fn is_device_of(&self, value: &str, user: UserId) -> bool {
        let Some((id, mac)) = value.split_once('.') else {
            return false;
        };
        id == user.uuid().simple().to_string() && super::session::same(mac, &self.mac(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::MemoryLimiter;

    fn guard() -> Guard {
        let config = DashboardConfig {
            failed_sign_ins_per_account_and_address: 2,
            failed_sign_ins_per_address: 4,
            failed_sign_ins_per_account: 3,
            ..DashboardConfig::default()
        };
        Guard::new(&config, Arc::new(MemoryLimiter::default()), [7; 32]).unwrap()
    }

    #[tokio::test]
    async fn an_attacker_exhausts_only_budgets_the_owner_does_not_share() {
        let g = guard();
        let ada = UserId::random(&mut rand_core::OsRng);
        let (attacker, other, owner) = (
            "192.0.2.1".parse().ok(),
            "192.0.2.2".parse().ok(),
            "198.51.100.9".parse().ok(),
        );
        let t = 1_000_000_000_000_000_000;
        g.failed(Some(ada), attacker, false, t).await;
        g.failed(Some(ada), attacker, false, t).await;
        assert!(
            g.admit(Some(ada), attacker, false, t).await.is_err(),
            "pair budget spent"
        );
        g.failed(Some(ada), other, false, t).await;
        // The account-wide budget (3) is now spent: a new browser is refused…
        assert!(g.admit(Some(ada), owner, false, t).await.is_err());
        // …but the owner's browser with its device cookie is not.
        assert!(g.admit(Some(ada), owner, true, t).await.is_ok());
        // And the budget comes back with time.
        let later = t + 15 * 60 * 1_000_000_000;
        assert!(g.admit(Some(ada), owner, false, later).await.is_ok());
    }

    #[test]
    fn a_device_cookie_is_bound_to_its_user() {
        let g = guard();
        let (a, b) = (
            UserId::random(&mut rand_core::OsRng),
            UserId::random(&mut rand_core::OsRng),
        );
        let c = g.device_cookie(a);
        assert!(g.is_device_of(&c, a));
        assert!(!g.is_device_of(&c, b));
        assert!(!g.is_device_of("garbage", a));
    }
}

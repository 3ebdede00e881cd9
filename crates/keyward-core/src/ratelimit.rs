//! Rate limiting with the generic cell rate algorithm (GCRA), as a pure function.
//!
//! GCRA keeps one number per key, the *theoretical arrival time* (`tat`), instead of a counter
//! and a window start: one integer is cheap to keep in memory and to compare-and-swap in Redis,
//! and there is no window edge at which a client can send twice its quota. Time is a parameter
//! (DESIGN §7.7): [`check`] takes the stored `tat` and `now`, in nanoseconds since the Unix
//! epoch, and returns the state to store. Where state lives (a local map, Redis) is the
//! server's business.
//!
//! Semantics of a [`Quota`] of `limit` per `period`: it behaves like a bucket of `limit` tokens
//! refilled at one per emission interval `T = period / limit`. A fresh (or long idle) key may
//! spend the whole quota at once; after that one request passes per `T`; idling never saves up
//! more than `limit`. (So a window of `period` right after a burst can see up to `2·limit − 1`
//! requests: the burst, then one per `T`. Over any longer stretch the rate is `limit/period`.)

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DomainError;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A rate limit: `limit` requests per `period_secs` seconds, with a burst of `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Quota {
    /// Requests per period (≥ 1).
    pub limit: u32,
    /// The period in seconds (≥ 1).
    pub period_secs: u32,
}

impl Quota {
    /// A workspace's default: 150 requests per minute (DESIGN §2).
    pub const DEFAULT: Quota = Quota {
        limit: 150,
        period_secs: 60,
    };

    /// A validated quota; both numbers must be at least 1.
    pub fn new(limit: u32, period_secs: u32) -> Result<Self, DomainError> {
        if limit == 0 {
            return Err(DomainError::field(
                "INVALID_RATE_LIMIT",
                "limit",
                "the limit must be at least 1 request",
            ));
        }
        if period_secs == 0 {
            return Err(DomainError::field(
                "INVALID_RATE_LIMIT",
                "period_secs",
                "the period must be at least 1 second",
            ));
        }
        Ok(Self { limit, period_secs })
    }

    /// A validated quota of `limit` requests per minute, the unit of the settings.
    pub fn per_minute(limit: u32) -> Result<Self, DomainError> {
        Self::new(limit, 60)
    }

    /// The period in nanoseconds. A zero period (the fields are public) counts as 1 s, so
    /// [`check`] never divides by zero.
    fn period_ns(&self) -> u128 {
        u128::from(self.period_secs.max(1)) * NANOS_PER_SEC
    }

    /// The burst, and the divisor of the period. A zero limit counts as 1.
    fn burst(&self) -> u128 {
        u128::from(self.limit.max(1))
    }

    /// The emission interval `T = period / limit` in nanoseconds (exact when it divides, as for
    /// 150/min → 400 ms; otherwise rounded down, at most 1 ns fast; never 0).
    pub fn emission_interval_ns(&self) -> u128 {
        (self.period_ns() / self.burst()).max(1)
    }
}

/// The result of one [`check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the request may pass.
    pub allowed: bool,
    /// The quota's limit, for the `RateLimit` headers.
    pub limit: u32,
    /// How many more requests would pass right now, after this one.
    pub remaining: u32,
    /// Until the full quota is available again.
    pub reset_after: Duration,
    /// When refused: until the next request would pass.
    pub retry_after: Option<Duration>,
    /// The state to store; `None` when refused (the state is unchanged).
    pub new_tat: Option<i64>,
}

impl Outcome {
    /// `retry_after` in whole seconds, rounded up (for `Retry-After`: never too early).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(ceil_secs)
    }

    /// `reset_after` in whole seconds, rounded up.
    pub fn reset_after_secs(&self) -> u64 {
        ceil_secs(self.reset_after)
    }
}

/// Runs GCRA for one request at `now` against the stored `tat` (`None` for a key never seen or
/// whose state was dropped). The caller stores `new_tat` when it is `Some`; the state may be
/// dropped once `reset_after` has passed, as it then means the same as `None`.
pub fn check(quota: &Quota, tat: Option<i64>, now: i64) -> Outcome {
    let t = quota.emission_interval_ns();
    // Standard GCRA with burst `limit`: tolerance τ = T·(limit − 1), which is `period − T`
    // when T divides the period; this form gives exactly `limit` at once even when it does not.
    let tau = i128::try_from(t * (quota.burst() - 1)).unwrap_or(i128::MAX);
    let t = i128::try_from(t).unwrap_or(i128::MAX);
    let now = i128::from(now);
    // A tat in the past means the bucket is full: an idle key saves up nothing beyond it.
    let tat = tat.map_or(now, |tat| i128::from(tat).max(now));
    let ahead = tat - now;
    if ahead > tau {
        return Outcome {
            allowed: false,
            limit: quota.limit,
            remaining: 0,
            reset_after: nanos_duration(ahead),
            retry_after: Some(nanos_duration(ahead - tau)),
            new_tat: None,
        };
    }
    let new_tat = tat.saturating_add(t);
    let ahead = new_tat - now;
    Outcome {
        allowed: true,
        limit: quota.limit,
        remaining: remaining(ahead, tau, t),
        reset_after: nanos_duration(ahead),
        retry_after: None,
        new_tat: Some(i64::try_from(new_tat).unwrap_or(i64::MAX)),
    }
}

/// How many requests pass now with the state `ahead` of `now`: the k ≥ 0 with `ahead + k·T ≤ τ`.
fn remaining(ahead: i128, tau: i128, t: i128) -> u32 {
    if ahead > tau {
        return 0;
    }
    let n = (tau - ahead) / t + 1;
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn nanos_duration(ns: i128) -> Duration {
    let ns = u128::try_from(ns).unwrap_or(0);
    let secs = u64::try_from(ns / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // The remainder is below 10⁹, so it fits.
    Duration::new(secs, u32::try_from(ns % NANOS_PER_SEC).unwrap_or(0))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// `t` as nanoseconds since the Unix epoch, the unit of [`check`]'s state. Saturates outside
/// 1677–2262, the range of an `i64` of nanoseconds.
pub fn to_nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// The instant `ns` nanoseconds after the Unix epoch (the inverse of [`to_nanos`]).
pub fn from_nanos(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const MS: i64 = 1_000_000;
    const SEC: i64 = 1_000 * MS;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600 * SEC;

    /// A key's state and a hand-moved clock.
    struct Key {
        quota: Quota,
        tat: Option<i64>,
    }

    impl Key {
        fn new(limit: u32, period_secs: u32) -> Self {
            Self {
                quota: Quota::new(limit, period_secs).unwrap(),
                tat: None,
            }
        }

        fn hit(&mut self, now: i64) -> Outcome {
            let o = check(&self.quota, self.tat, now);
            assert_eq!(o.allowed, o.new_tat.is_some());
            assert_eq!(o.allowed, o.retry_after.is_none());
            if let Some(tat) = o.new_tat {
                self.tat = Some(tat);
            }
            o
        }

        fn passes(&mut self, n: usize, now: i64) -> usize {
            (0..n).filter(|_| self.hit(now).allowed).count()
        }
    }

    #[test]
    fn quota_validation() {
        assert_eq!(Quota::new(0, 60).unwrap_err().code, "INVALID_RATE_LIMIT");
        assert_eq!(Quota::new(1, 0).unwrap_err().code, "INVALID_RATE_LIMIT");
        assert_eq!(Quota::new(150, 60).unwrap(), Quota::DEFAULT);
        assert_eq!(Quota::DEFAULT.emission_interval_ns(), 400_000_000);
        // Unvalidated zeros (public fields, deserialised data) do not divide by zero.
        let zero = Quota {
            limit: 0,
            period_secs: 0,
        };
        assert!(check(&zero, None, T0).allowed);
        assert!(!check(&zero, check(&zero, None, T0).new_tat, T0).allowed);
    }

    #[test]
    fn burst_of_exactly_the_limit_then_one_per_interval() {
        let mut key = Key::new(150, 60);
        assert_eq!(key.passes(400, T0), 150);
        assert_eq!(key.passes(10, T0 + 400 * MS - 1), 0);
        assert_eq!(key.passes(10, T0 + 400 * MS), 1);
        assert_eq!(key.passes(10, T0 + 800 * MS), 1);
        // 60 s after the burst, the bucket is full again.
        assert_eq!(key.passes(400, T0 + 60 * SEC + 800 * MS), 150);
    }

    #[test]
    fn remaining_counts_down_and_retry_after_is_one_interval() {
        let mut key = Key::new(150, 60);
        for want in (0..150).rev() {
            let o = key.hit(T0);
            assert!(o.allowed);
            assert_eq!((o.limit, o.remaining), (150, want));
        }
        let o = key.hit(T0);
        assert!(!o.allowed);
        assert_eq!(o.remaining, 0);
        assert_eq!(o.retry_after, Some(Duration::from_millis(400)));
        assert_eq!(o.retry_after_secs(), Some(1));
        assert_eq!(o.reset_after, Duration::from_secs(60));
        assert_eq!(o.reset_after_secs(), 60);
        // Halfway through the interval the wait has halved.
        let o = key.hit(T0 + 200 * MS);
        assert_eq!(o.retry_after, Some(Duration::from_millis(200)));
    }

    #[test]
    fn first_request_reports_reset_after_one_interval() {
        let o = check(&Quota::DEFAULT, None, T0);
        assert_eq!(o.new_tat, Some(T0 + 400 * MS));
        assert_eq!(o.reset_after, Duration::from_millis(400));
        assert_eq!(o.remaining, 149);
    }

    #[test]
    fn one_per_second() {
        let mut key = Key::new(1, 1);
        let o = key.hit(T0);
        assert!(o.allowed);
        assert_eq!(o.remaining, 0);
        let o = key.hit(T0 + 999 * MS);
        assert_eq!(o.retry_after, Some(Duration::from_millis(1)));
        for s in 1..=5 {
            assert_eq!(key.passes(3, T0 + s * SEC), 1, "second {s}");
        }
    }

    #[test]
    fn idle_keys_do_not_save_up_beyond_the_limit() {
        let mut key = Key::new(150, 60);
        assert_eq!(key.passes(20, T0), 20);
        let later = T0 + 5 * 3_600 * SEC;
        let o = check(&key.quota, key.tat, later);
        assert_eq!(o.remaining, 149);
        assert_eq!(key.passes(1_000, later), 150);
    }

    #[test]
    fn steady_rate_over_a_long_run() {
        // 7 per second does not divide a second evenly; the long-run rate must still be 7/s.
        let mut key = Key::new(7, 1);
        let passed: usize = (0..1_000).map(|ms| key.passes(1, T0 + ms * 100 * MS)).sum();
        // 100 s, one probe every 100 ms: the burst of 7 plus 7/s afterwards, at most.
        assert!((700..=707).contains(&passed), "{passed}");
        let mut fresh = Key::new(7, 1);
        assert_eq!(fresh.passes(20, T0), 7);
    }

    #[test]
    fn stale_or_extreme_state_is_handled() {
        // A tat far in the past is a full bucket; clocks near the i64 edges do not overflow.
        assert_eq!(check(&Quota::DEFAULT, Some(i64::MIN), T0).remaining, 149);
        let o = check(&Quota::DEFAULT, None, i64::MAX - 1);
        assert_eq!(o.new_tat, Some(i64::MAX));
        let big = Quota::new(u32::MAX, u32::MAX).unwrap();
        assert!(check(&big, None, T0).allowed);
    }

    #[test]
    fn datetime_conversions() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(to_nanos(t), T0);
        assert_eq!(from_nanos(T0), t);
        let far = Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(to_nanos(far), i64::MAX);
        let past = Utc.with_ymd_and_hms(1000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(to_nanos(past), i64::MIN);
    }
}

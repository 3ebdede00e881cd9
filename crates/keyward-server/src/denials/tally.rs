//! The pure part of denial aggregation: keying, the bound on keys with its overflow, taking
//! everything for a flush, merging a failed flush back, and the audit drafts a flush writes.
//! No locks, no clock, no storage: [`super::Denials`] wraps this in a mutex.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::decision::{Code, IpLevel};
use keyward_core::{TokenId, UserId, WorkspaceId};
use serde::Serialize;

/// The audit action of an aggregated denial.
pub const ACTION: &str = "security.denied";

/// One refusal as the hot path reports it. Borrowed, so nothing is copied unless its key is
/// new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial<'a> {
    /// The token's workspace.
    pub workspace: WorkspaceId,
    /// The refused token.
    pub token: TokenId,
    /// Its owner (the user the token acts for).
    pub owner: UserId,
    /// `IP_NOT_ALLOWED`, `INTERNAL_ONLY`, `RATE_LIMITED` or `INSUFFICIENT_PERMISSIONS`.
    pub code: Code,
    /// For `IP_NOT_ALLOWED`: the allowlist that refused.
    pub refused_by: Option<IpLevel>,
    /// The source address, when known.
    pub ip: Option<IpAddr>,
    /// For `INSUFFICIENT_PERMISSIONS`: the (first) permission not granted.
    pub missing_permission: Option<&'a str>,
}

/// How often a key occurred, and when first and last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Occurrences.
    pub count: u64,
    /// The first occurrence.
    pub first_at: DateTime<Utc>,
    /// The last occurrence.
    pub last_at: DateTime<Utc>,
}

impl Tally {
    fn one(at: DateTime<Utc>) -> Self {
        Self {
            count: 1,
            first_at: at,
            last_at: at,
        }
    }

    fn add(&mut self, other: &Tally) {
        self.count = self.count.saturating_add(other.count);
        self.first_at = self.first_at.min(other.first_at);
        self.last_at = self.last_at.max(other.last_at);
    }
}

/// The part of a key that is `Copy`; the missing permission is the second level, so a lookup
/// needs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Group {
    workspace: WorkspaceId,
    token: TokenId,
    code: Code,
    refused_by: Option<IpLevel>,
    ip: Option<IpAddr>,
}

#[derive(Debug)]
struct Entries {
    owner: UserId,
    /// By missing permission; `""` when there is none (a permission is never empty).
    by_permission: HashMap<String, Tally>,
}

/// The detail of a key that did not overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The refused token.
    pub token: TokenId,
    /// Its owner.
    pub owner: UserId,
    /// The refusing allowlist, for `IP_NOT_ALLOWED`.
    pub refused_by: Option<IpLevel>,
    /// The source address.
    pub ip: Option<IpAddr>,
    /// The missing permission, for `INSUFFICIENT_PERMISSIONS`.
    pub missing_permission: Option<String>,
}

/// A key with its tally, owned: what a flush writes, or merges back when writing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The code.
    pub code: Code,
    /// The key's detail; `None` for the overflow key of (workspace, code).
    pub detail: Option<Detail>,
    /// Its counts.
    pub tally: Tally,
}

/// Counts per key, at most `max_keys` keys with detail; beyond that, one overflow key per
/// (workspace, code), so no occurrence is ever dropped.
#[derive(Debug)]
pub struct Tallies {
    max_keys: usize,
    keys: usize,
    groups: HashMap<Group, Entries>,
    overflow: HashMap<(WorkspaceId, Code), Tally>,
}

impl Tallies {
    /// Empty, holding at most `max_keys` detailed keys.
    pub fn new(max_keys: usize) -> Self {
        Self {
            max_keys,
            keys: 0,
            groups: HashMap::new(),
            overflow: HashMap::new(),
        }
    }

    /// Counts one occurrence of `d` at `at`.
    pub fn add(&mut self, d: &Denial<'_>, at: DateTime<Utc>) {
        let group = Group {
            workspace: d.workspace,
            token: d.token,
            code: d.code,
            refused_by: d.refused_by,
            ip: d.ip,
        };
        let perm = d.missing_permission.unwrap_or("");
        self.add_tally(group, d.owner, perm, Tally::one(at));
    }

    fn add_tally(&mut self, group: Group, owner: UserId, perm: &str, tally: Tally) {
        let room = self.keys < self.max_keys;
        if let Some(entries) = self.groups.get_mut(&group) {
            if let Some(t) = entries.by_permission.get_mut(perm) {
                t.add(&tally);
                return;
            }
            if room {
                entries.by_permission.insert(perm.to_owned(), tally);
                self.keys += 1;
                return;
            }
        } else if room {
            let mut by_permission = HashMap::with_capacity(1);
            by_permission.insert(perm.to_owned(), tally);
            self.groups.insert(
                group,
                Entries {
                    owner,
                    by_permission,
                },
            );
            self.keys += 1;
            return;
        }
        self.overflow
            .entry((group.workspace, group.code))
            .and_modify(|t| t.add(&tally))
            .or_insert(tally);
    }

    /// Keys held, overflow keys included.
    pub fn len(&self) -> usize {
        self.keys + self.overflow.len()
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every key out (for a flush): by workspace, then oldest first occurrence first.
    pub fn take(&mut self) -> Vec<Pending> {
        let mut out = Vec::with_capacity(self.len());
        for (g, entries) in std::mem::take(&mut self.groups) {
            for (perm, tally) in entries.by_permission {
                out.push(Pending {
                    workspace: g.workspace,
                    code: g.code,
                    detail: Some(Detail {
                        token: g.token,
                        owner: entries.owner,
                        refused_by: g.refused_by,
                        ip: g.ip,
                        missing_permission: Some(perm).filter(|p| !p.is_empty()),
                    }),
                    tally,
                });
            }
        }
        for ((workspace, code), tally) in std::mem::take(&mut self.overflow) {
            out.push(Pending {
                workspace,
                code,
                detail: None,
                tally,
            });
        }
        self.keys = 0;
        // By workspace first: a flush locks each workspace's chain head in this order, so two
        // nodes flushing at once cannot take two heads in opposite orders (a deadlock).
        out.sort_by_key(|p| (p.workspace, p.tally.first_at, p.detail.is_none()));
        out
    }

    /// Adds back what a failed flush took, merged with what was counted meanwhile (and
    /// folded into overflow keys if the bound is reached now).
    pub fn merge_back(&mut self, pending: Vec<Pending>) {
        for p in pending {
            match p.detail {
                Some(d) => {
                    let group = Group {
                        workspace: p.workspace,
                        token: d.token,
                        code: p.code,
                        refused_by: d.refused_by,
                        ip: d.ip,
                    };
                    let perm = d.missing_permission.as_deref().unwrap_or("");
                    self.add_tally(group, d.owner, perm, p.tally);
                }
                None => {
                    self.overflow
                        .entry((p.workspace, p.code))
                        .and_modify(|t| t.add(&p.tally))
                        .or_insert(p.tally);
                }
            }
        }
    }
}

/// The `after` of a `security.denied` event.
#[derive(Serialize)]
struct DeniedView<'a> {
    code: Code,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused_by: Option<IpLevel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_permission: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    overflow: bool,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The audit events of a flush at `at`: one per key (a count beyond `u32::MAX` is split over
/// several). A detailed key is acted by its token on itself; an overflow key by the system on
/// the workspace, flagged `"overflow": true`.
pub fn drafts(pending: &[Pending], at: DateTime<Utc>) -> Vec<AuditDraft> {
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let view = DeniedView {
            code: p.code,
            refused_by: p.detail.as_ref().and_then(|d| d.refused_by),
            missing_permission: p
                .detail
                .as_ref()
                .and_then(|d| d.missing_permission.as_deref()),
            overflow: p.detail.is_none(),
            first_at: p.tally.first_at,
            last_at: p.tally.last_at,
        };
        let draft = match &p.detail {
            Some(d) => AuditDraft::new(
                p.workspace,
                at,
                Actor::token(d.token, d.owner),
                ACTION,
                "token",
                d.token.to_string(),
            )
            .ip(d.ip),
            None => AuditDraft::new(
                p.workspace,
                at,
                Actor::SYSTEM,
                ACTION,
                "workspace",
                p.workspace.to_string(),
            ),
        }
        .after(&view);
        let mut left = p.tally.count;
        while left > 0 {
            let n = u32::try_from(left).unwrap_or(u32::MAX);
            out.push(AuditDraft {
                count: n,
                ..draft.clone()
            });
            left -= u64::from(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand_core::OsRng;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap()
    }

    struct Ids {
        ws: WorkspaceId,
        tok: TokenId,
        owner: UserId,
    }

    fn ids() -> Ids {
        Ids {
            ws: WorkspaceId::random(&mut OsRng),
            tok: TokenId::random(&mut OsRng),
            owner: UserId::random(&mut OsRng),
        }
    }

    fn denial<'a>(i: &Ids, code: Code, ip: &str, perm: Option<&'a str>) -> Denial<'a> {
        Denial {
            workspace: i.ws,
            token: i.tok,
            owner: i.owner,
            code,
            refused_by: (code == Code::IpNotAllowed).then_some(IpLevel::Token),
            ip: Some(ip.parse().unwrap()),
            missing_permission: perm,
        }
    }

    fn total(p: &[Pending]) -> u64 {
        p.iter().map(|p| p.tally.count).sum()
    }

    #[test]
    fn one_key_per_code_level_source_and_permission() {
        let i = ids();
        let mut t = Tallies::new(100);
        for s in 0..5 {
            t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(s));
        }
        t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.2", None), at(9));
        t.add(&denial(&i, Code::RateLimited, "10.0.0.1", None), at(1));
        t.add(
            &denial(
                &i,
                Code::InsufficientPermissions,
                "10.0.0.1",
                Some("a:read"),
            ),
            at(2),
        );
        t.add(
            &denial(
                &i,
                Code::InsufficientPermissions,
                "10.0.0.1",
                Some("a:read"),
            ),
            at(3),
        );
        t.add(
            &denial(
                &i,
                Code::InsufficientPermissions,
                "10.0.0.1",
                Some("b:read"),
            ),
            at(4),
        );
        assert_eq!(t.len(), 5);
        let p = t.take();
        assert!(t.is_empty());
        assert_eq!(p.len(), 5);
        assert_eq!(total(&p), 10);
        let first = &p[0];
        assert_eq!((first.code, first.tally.count), (Code::IpNotAllowed, 5));
        assert_eq!((first.tally.first_at, first.tally.last_at), (at(0), at(4)));
        let perms: Vec<_> = p
            .iter()
            .filter_map(|p| p.detail.as_ref()?.missing_permission.clone())
            .collect();
        assert_eq!(perms, ["a:read", "b:read"]);
        assert!(p.iter().all(|p| p.detail.is_some()));
    }

    #[test]
    fn beyond_the_bound_keys_fold_into_one_overflow_key_per_workspace_and_code() {
        let (i, j) = (ids(), ids());
        let mut t = Tallies::new(3);
        for n in 1..=10 {
            let ip = format!("10.0.0.{n}");
            t.add(&denial(&i, Code::IpNotAllowed, &ip, None), at(n));
            t.add(&denial(&i, Code::IpNotAllowed, &ip, None), at(n));
        }
        t.add(&denial(&j, Code::RateLimited, "10.0.0.1", None), at(20));
        // A known key still counts in detail.
        t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(21));
        assert_eq!(t.len(), 5);
        let p = t.take();
        assert_eq!(total(&p), 22);
        let over: Vec<_> = p.iter().filter(|p| p.detail.is_none()).collect();
        assert_eq!(over.len(), 2);
        let mine = over.iter().find(|p| p.workspace == i.ws).unwrap();
        assert_eq!((mine.code, mine.tally.count), (Code::IpNotAllowed, 14));
        assert_eq!((mine.tally.first_at, mine.tally.last_at), (at(4), at(10)));
        let d = drafts(&p, at(60));
        let o = d.iter().find(|d| d.target_kind == "workspace").unwrap();
        assert_eq!(o.actor, Actor::SYSTEM);
        let after: serde_json::Value = serde_json::from_str(o.after.as_deref().unwrap()).unwrap();
        assert_eq!(after["overflow"], true);
        assert!(after.get("refused_by").is_none() && o.ip.is_none());
    }

    #[test]
    fn a_failed_flush_merges_back_with_what_came_meanwhile() {
        let i = ids();
        let mut t = Tallies::new(2);
        t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(5));
        t.add(&denial(&i, Code::RateLimited, "10.0.0.1", None), at(5));
        t.add(&denial(&i, Code::RateLimited, "10.0.0.9", None), at(5)); // overflow
        let taken = t.take();
        t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(1));
        t.add(&denial(&i, Code::InternalOnly, "10.0.0.1", None), at(7));
        t.merge_back(taken);
        let p = t.take();
        assert_eq!(total(&p), 5);
        let ip = p.iter().find(|p| p.code == Code::IpNotAllowed).unwrap();
        assert_eq!(ip.tally.count, 2);
        assert_eq!((ip.tally.first_at, ip.tally.last_at), (at(1), at(5)));
        // Two detailed keys fit; the rate-limited key merged back found no room.
        let over: u64 = p
            .iter()
            .filter(|p| p.detail.is_none())
            .map(|p| p.tally.count)
            .sum();
        assert_eq!(over, 2);
    }

    #[test]
    fn a_draft_is_the_token_acting_on_itself_with_the_count() {
        let i = ids();
        let mut t = Tallies::new(10);
        let d = denial(
            &i,
            Code::InsufficientPermissions,
            "10.0.0.1",
            Some("a:write"),
        );
        t.add(&d, at(1));
        t.add(&d, at(2));
        let drafts = drafts(&t.take(), at(60));
        assert_eq!(drafts.len(), 1);
        let e = &drafts[0];
        assert_eq!(e.actor, Actor::token(i.tok, i.owner));
        assert_eq!(
            (e.action.as_str(), e.target_kind.as_str()),
            (ACTION, "token")
        );
        assert_eq!(e.target_id, i.tok.to_string());
        assert_eq!((e.count, e.ip.as_deref()), (2, Some("10.0.0.1")));
        let after: serde_json::Value = serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
        assert_eq!(after["code"], "INSUFFICIENT_PERMISSIONS");
        assert_eq!(after["missing_permission"], "a:write");
        assert!(after.get("overflow").is_none());
    }

    #[test]
    fn a_huge_count_is_split_not_cut() {
        let i = ids();
        let p = Pending {
            workspace: i.ws,
            code: Code::RateLimited,
            detail: None,
            tally: Tally {
                count: u64::from(u32::MAX) + 5,
                first_at: at(0),
                last_at: at(1),
            },
        };
        let d = drafts(&[p], at(2));
        assert_eq!(
            d.iter().map(|d| u64::from(d.count)).sum::<u64>(),
            u64::from(u32::MAX) + 5
        );
    }
}

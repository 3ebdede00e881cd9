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

/// Counts per key, at most `max_keys` keys with detail in all and `max_per_workspace` in any
/// one workspace; beyond either, one overflow key per (workspace, code), so no occurrence is
/// ever dropped and a workspace that floods only folds its own keys.
#[derive(Debug)]
pub struct Tallies {
    max_keys: usize,
    max_per_workspace: usize,
    keys: usize,
    per_workspace: HashMap<WorkspaceId, usize>,
    groups: HashMap<Group, Entries>,
    overflow: HashMap<(WorkspaceId, Code), Tally>,
}

impl Tallies {
    /// Empty, holding at most `max_keys` detailed keys, `max_per_workspace` of them per
    /// workspace.
    pub fn new(max_keys: usize, max_per_workspace: usize) -> Self {
        Self {
            max_keys,
            max_per_workspace,
            keys: 0,
            per_workspace: HashMap::new(),
            groups: HashMap::new(),
            overflow: HashMap::new(),
        }
    }

    /// Detailed keys held for `ws`.
    pub fn keys_of(&self, ws: WorkspaceId) -> usize {
        self.per_workspace.get(&ws).copied().unwrap_or(0)
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
        let room =
            self.keys < self.max_keys && self.keys_of(group.workspace) < self.max_per_workspace;
        if let Some(entries) = self.groups.get_mut(&group) {
            if let Some(t) = entries.by_permission.get_mut(perm) {
                t.add(&tally);
                return;
            }
            if room {
                entries.by_permission.insert(perm.to_owned(), tally);
                self.keys += 1;
                *self.per_workspace.entry(group.workspace).or_insert(0) += 1;
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
            *self.per_workspace.entry(group.workspace).or_insert(0) += 1;
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
        self.per_workspace.clear();
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
mod tests;

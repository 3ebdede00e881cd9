//! The audit trail in storage. Events are appended by every mutation of the other stores, in
//! the mutation's own transaction (each mutating method takes its [`AuditDraft`]); this trait
//! appends events that accompany no change (aggregated denials, system notices) and reads the
//! trail back. Part of [`crate::Store`].
//!
//! The store holds the chain key ([`crate::StoreOptions::chain_key`]) and does every keyed
//! operation itself: sealing appended events, signing checkpoints, checking the chain. The key
//! never reaches the database. On open, the chain of every workspace written before the key
//! existed gets an `audit.chain_keyed` event, the first keyed one, recorded with an HMAC in the
//! chain head as the border between plain and keyed events.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyward_core::audit::{
    check_chain, AuditDraft, AuditEvent, AuditVerification, ChainBreak, ChainHead, ChainKey,
    ChainRules, Checkpoint,
};
use keyward_core::{TokenId, WorkspaceId};

use crate::Result;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only events by this actor: a token id or a user id (`tok_…`/`usr_…` form).
    pub actor: Option<String>,
    /// Only events about or by this token.
    pub token: Option<TokenId>,
    /// Only this action (`token.created`), or a family of them (`token.*`).
    pub action: Option<String>,
    /// Only events at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only events before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Start after this event number (ascending) or before it (descending).
    pub cursor: Option<i64>,
    /// Newest first.
    pub descending: bool,
    /// Events to return at most.
    pub limit: u32,
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends events, in order, in one transaction.
    async fn append_audit(&self, drafts: &[AuditDraft]) -> Result<()>;
    /// A page of a workspace's events.
    async fn list_audit(&self, ws: WorkspaceId, filter: &AuditFilter) -> Result<Vec<AuditEvent>>;
    /// A workspace's chain head: its last event's number and hash, and where keying began.
    async fn audit_head(&self, ws: WorkspaceId) -> Result<Option<ChainHead>>;
    /// The workspace's current head, signed with the chain key at `at`.
    async fn audit_checkpoint(&self, ws: WorkspaceId, at: DateTime<Utc>) -> Result<Checkpoint>;
    /// Whether `checkpoint` was signed with this store's chain key.
    fn checkpoint_is_authentic(&self, checkpoint: &Checkpoint) -> bool;
    /// Checks the workspace's chain up to its head, and that it passes through `checkpoint`
    /// (which must be authentic and of this workspace) unchanged.
    async fn verify_audit(
        &self,
        ws: WorkspaceId,
        checkpoint: Option<&Checkpoint>,
    ) -> Result<AuditVerification>;
}

/// Events read per query while checking a chain.
const CHECK_BATCH: u32 = 1000;

/// Checks `ws`'s chain with `key`, batch by batch, up to the head read first (events appended
/// meanwhile are beyond it and not judged). Names the first broken event: one that does not
/// check, a border between plain and keyed events that is not the key's, a tail missing
/// behind the head, or a chain that no longer reaches or matches the checkpoint.
pub(crate) async fn verify_chain<S: AuditStore + ?Sized>(
    store: &S,
    key: &ChainKey,
    ws: WorkspaceId,
    checkpoint: Option<&Checkpoint>,
) -> Result<AuditVerification> {
    let head = store.audit_head(ws).await?.unwrap_or_default();
    let keyed_from = head.authentic_keyed_from(key, ws);
    let mut out = AuditVerification {
        intact: false,
        events_checked: 0,
        head_seq: head.seq,
        first_broken: None,
        keyed_from,
        checkpoint_seq: checkpoint.map(|c| c.seq),
    };
    if let Some(cp) = checkpoint.filter(|c| c.workspace_id != ws || !c.is_authentic(key)) {
        out.first_broken = Some(ChainBreak {
            seq: cp.seq,
            reason: "the checkpoint is not signed with the chain key for this workspace".into(),
        });
        return Ok(out);
    }
    let Some(keyed_from) = keyed_from.or((head.seq == 0).then_some(1)) else {
        out.first_broken = Some(ChainBreak {
            seq: 1,
            reason: "the chain head's record of where keyed events begin is missing or not \
                     the chain key's (a wrong key, or the head was edited)"
                .into(),
        });
        return Ok(out);
    };
    let rules = ChainRules {
        key,
        keyed_from,
        checkpoint: checkpoint.map(|c| (c.seq, c.hash.as_str())),
    };
    let mut last = (0, String::new());
    let broken = loop {
        let f = AuditFilter {
            cursor: Some(last.0),
            limit: CHECK_BATCH,
            ..AuditFilter::default()
        };
        let batch = store.list_audit(ws, &f).await?;
        let batch: Vec<_> = batch.into_iter().filter(|e| e.seq <= head.seq).collect();
        if batch.is_empty() {
            break end_of_chain(&last, &head);
        }
        match check_chain(&rules, last.clone(), &batch) {
            Ok(end) => {
                out.events_checked += batch.len() as u64;
                last = end;
            }
            Err(b) => {
                out.events_checked += u64::try_from(b.seq - last.0 - 1).unwrap_or(0);
                break Some(b);
            }
        }
    };
    let broken = broken.or_else(|| {
        let cp = checkpoint?;
        (cp.seq > head.seq).then(|| ChainBreak {
            seq: cp.seq,
            reason: format!(
                "the chain ends at event {}, before the checkpoint's event {}: events were \
                 removed",
                head.seq, cp.seq
            ),
        })
    });
    if let Some(b) = &broken {
        tracing::warn!(workspace = %ws, seq = b.seq, reason = %b.reason, "audit chain broken");
    }
    out.intact = broken.is_none();
    out.first_broken = broken;
    Ok(out)
}

/// After the last event: the head must name it.
fn end_of_chain(last: &(i64, String), head: &ChainHead) -> Option<ChainBreak> {
    if last.0 == head.seq && last.1 == head.hash {
        return None;
    }
    Some(if last.0 < head.seq {
        ChainBreak {
            seq: last.0 + 1,
            reason: format!("events after {} are missing", last.0),
        }
    } else {
        ChainBreak {
            seq: head.seq,
            reason: "the last event does not match the chain head".to_owned(),
        }
    })
}

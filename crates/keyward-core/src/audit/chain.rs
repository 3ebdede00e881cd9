//! The keyed hash chain: the chain key, the two hash algorithms, and the check of a run of
//! events.
//!
//! Since schema version 7 every event's hash is HMAC-SHA256 keyed with the server's chain key
//! ([`ChainKey`]), which is kept outside the database (a key file or the configuration). Whoever
//! can write the database but not read the key cannot recompute a valid hash for an edited,
//! inserted or reordered event. Events written before the key existed keep their plain
//! SHA-256 hashes ([`plain_hash`]); each workspace's chain head records the first keyed event
//! (`keyed_from`) together with an HMAC over it ([`keyed_from_mac`]), so the border between the
//! two cannot be moved to pass keyed events off as plain ones. The first keyed event covers the
//! last plain hash, so the plain prefix is bound by the key too.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuditDraft, AuditEvent};
use crate::WorkspaceId;

type HmacSha256 = Hmac<Sha256>;

/// Bytes in a chain key.
pub const CHAIN_KEY_LEN: usize = 32;

/// The secret that keys the audit chain and signs checkpoints. Never stored in the database,
/// never printed (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct ChainKey([u8; CHAIN_KEY_LEN]);

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// A chain key that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit chain key must be {} hexadecimal digits ({CHAIN_KEY_LEN} bytes)", CHAIN_KEY_LEN * 2)]
pub struct ChainKeyError;

impl ChainKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; CHAIN_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut b = [0u8; CHAIN_KEY_LEN];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// Reads the hexadecimal form (surrounding white space ignored).
    pub fn parse_hex(text: &str) -> Result<Self, ChainKeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| ChainKeyError)?;
        let bytes: [u8; CHAIN_KEY_LEN] = bytes.try_into().map_err(|_| ChainKeyError)?;
        Ok(Self(bytes))
    }

    /// The hexadecimal form, for writing a key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A separate key for another purpose (`label` names it), derived with HMAC so that no
    /// MAC made with one can stand for the other: the dashboard's device cookies use one, so
    /// every node that shares the chain key accepts them.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"keyward derived key\0");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A MAC keyed with this key. HMAC zero-pads a key shorter than its 64-byte block
    /// (RFC 2104), so padding it here gives the same MAC through the infallible constructor.
    pub(crate) fn mac(&self) -> HmacSha256 {
        let mut block = [0u8; 64];
        block[..CHAIN_KEY_LEN].copy_from_slice(&self.0);
        <HmacSha256 as KeyInit>::new(&block.into())
    }
}

/// Feeds length-prefixed fields, so no two different field lists encode alike.
fn encode(d: &AuditDraft, prev_hash: &str, seq: i64, domain: &str, mut out: impl FnMut(&[u8])) {
    let mut field = |s: &str| {
        out(&(s.len() as u64).to_be_bytes());
        out(s.as_bytes());
    };
    field(domain);
    field(prev_hash);
    field(&seq.to_string());
    field(&d.workspace_id.to_string());
    field(&d.at.timestamp_millis().to_string());
    field(d.actor.kind.as_str());
    field(&d.actor.token_id.map(|t| t.to_string()).unwrap_or_default());
    field(&d.actor.user_id.map(|u| u.to_string()).unwrap_or_default());
    field(&d.action);
    field(&d.target_kind);
    field(&d.target_id);
    field(d.before.as_deref().unwrap_or("\u{0}none"));
    field(d.after.as_deref().unwrap_or("\u{0}none"));
    field(d.ip.as_deref().unwrap_or(""));
    field(&d.count.to_string());
}

/// The plain (version 1) hash of an event: SHA-256, hex, over the previous hash and every
/// stored field. Only events written before the chain was keyed carry it; it is kept to verify
/// them.
pub fn plain_hash(prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    let mut h = Sha256::new();
    encode(d, prev_hash, seq, "keyward.audit.v1", |b| h.update(b));
    hex::encode(h.finalize())
}

/// The keyed (version 2) hash of an event: HMAC-SHA256 with the chain key, hex, over the same
/// fields as [`plain_hash`] under another domain label.
pub fn keyed_hash(key: &ChainKey, prev_hash: &str, seq: i64, d: &AuditDraft) -> String {
    let mut m = key.mac();
    encode(d, prev_hash, seq, "keyward.audit.v2", |b| m.update(b));
    hex::encode(m.finalize().into_bytes())
}

/// The HMAC a chain head stores over its first keyed event's number: moving the border
/// between plain and keyed events needs the key.
pub fn keyed_from_mac(key: &ChainKey, ws: WorkspaceId, keyed_from: i64) -> String {
    let mut m = key.mac();
    for part in [
        "keyward.audit.keyed-from.v1",
        &ws.to_string(),
        &keyed_from.to_string(),
    ] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part.as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Compares two hex MACs in constant time.
pub(crate) fn same_mac(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A workspace chain's head as stored: its last event, and where keying began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainHead {
    /// The last event's number.
    pub seq: i64,
    /// The last event's hash.
    pub hash: String,
    /// The first keyed event's number (events before it are plain), once recorded.
    pub keyed_from: Option<i64>,
    /// [`keyed_from_mac`] over it.
    pub keyed_mac: Option<String>,
}

impl ChainHead {
    /// The first keyed event, if the head records one and its MAC checks with `key`.
    pub fn authentic_keyed_from(&self, key: &ChainKey, ws: WorkspaceId) -> Option<i64> {
        let (from, mac) = (self.keyed_from?, self.keyed_mac.as_deref()?);
        (from >= 1 && same_mac(&keyed_from_mac(key, ws, from), mac)).then_some(from)
    }
}

/// How a run of events is judged.
#[derive(Debug, Clone, Copy)]
pub struct ChainRules<'a> {
    /// The chain key.
    pub key: &'a ChainKey,
    /// Events numbered from here on must be keyed; earlier ones plain.
    pub keyed_from: i64,
    /// A checkpoint the chain must pass through: this number with this hash.
    pub checkpoint: Option<(i64, &'a str)>,
}

impl ChainRules<'_> {
    /// The hash `e` should have under these rules.
    pub fn expected_hash(&self, e: &AuditEvent) -> String {
        if e.seq >= self.keyed_from {
            keyed_hash(self.key, &e.prev_hash, e.seq, &e.draft)
        } else {
            plain_hash(&e.prev_hash, e.seq, &e.draft)
        }
    }
}

/// Where a chain is broken, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainBreak {
    /// The first event that does not check (or, for a missing tail, the head's number).
    pub seq: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks events in order, continuing a chain whose last good event was `prev` (number and
/// hash; `(0, "")` from the start). Returns the last number and hash. The first event that
/// does not check is named: a gap, a wrong previous-hash (an event moved, removed or
/// inserted), a hash that does not match its content (an edit, or a rehash without the key),
/// or a hash other than the checkpoint's.
pub fn check_chain<'a>(
    rules: &ChainRules<'_>,
    prev: (i64, String),
    events: impl IntoIterator<Item = &'a AuditEvent>,
) -> Result<(i64, String), ChainBreak> {
    let (mut seq, mut hash) = prev;
    for e in events {
        let broken = |reason: &str| ChainBreak {
            seq: e.seq,
            reason: reason.to_owned(),
        };
        if e.seq != seq + 1 {
            return Err(ChainBreak {
                seq: seq + 1,
                reason: format!("event {} is missing (next stored is {})", seq + 1, e.seq),
            });
        }
        if e.prev_hash != hash {
            return Err(broken(
                "its previous-hash does not match the event before it (moved, removed or inserted events)",
            ));
        }
        if !same_mac(&rules.expected_hash(e), &e.hash) {
            return Err(broken(if e.seq >= rules.keyed_from {
                "its content does not match its keyed hash"
            } else {
                "its content does not match its hash"
            }));
        }
        if let Some((at, want)) = rules.checkpoint {
            if at == e.seq && !same_mac(want, &e.hash) {
                return Err(broken("its hash differs from the checkpoint's"));
            }
        }
        seq = e.seq;
        hash = e.hash.clone();
    }
    Ok((seq, hash))
}

//! Checkpoints: a chain head signed with the chain key, for the operator to keep somewhere the
//! database's writers cannot reach. Checking the chain against a checkpoint later finds a chain
//! cut back past it, or rewritten before it, even by someone who can recompute every hash.
//!
//! The signature is HMAC-SHA256 with the chain key rather than a public-key signature: the
//! only party that checks a checkpoint is keyward itself, which holds the key anyway, and a
//! second kind of key would be one more secret to provision without adding a verifier.

use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::{Deserialize, Serialize};

use super::chain::{same_mac, ChainKey};
use crate::WorkspaceId;

/// A signed chain head (`GET /v1/audit/checkpoint`, `keyward audit checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The workspace whose chain it is.
    pub workspace_id: WorkspaceId,
    /// The number of the chain's last event when signed.
    pub seq: i64,
    /// That event's hash.
    pub hash: String,
    /// When it was signed (to the millisecond).
    pub at: DateTime<Utc>,
    /// HMAC-SHA256 with the chain key over the fields above, hex.
    pub signature: String,
}

impl Checkpoint {
    /// Signs a head at `at` (truncated to the millisecond, as it is signed and shown).
    pub fn sign(
        key: &ChainKey,
        workspace_id: WorkspaceId,
        seq: i64,
        hash: String,
        at: DateTime<Utc>,
    ) -> Self {
        let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
        let mut cp = Self {
            workspace_id,
            seq,
            hash,
            at,
            signature: String::new(),
        };
        cp.signature = cp.mac(key);
        cp
    }

    /// Whether the signature is the key's over these fields.
    pub fn is_authentic(&self, key: &ChainKey) -> bool {
        same_mac(&self.mac(key), &self.signature)
    }

    fn mac(&self, key: &ChainKey) -> String {
        let mut m = key.mac();
        for part in [
            "keyward.audit.checkpoint.v1",
            &self.workspace_id.to_string(),
            &self.seq.to_string(),
            &self.hash,
            &self.at.timestamp_millis().to_string(),
        ] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        hex::encode(m.finalize().into_bytes())
    }
}

//! The audit trail: `GET /v1/audit`, `GET|POST /v1/audit/verify` and
//! `GET /v1/audit/checkpoint`.

use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery, AuditVerification, Checkpoint};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `GET /v1/audit`: a page of the workspace's events.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEventView>, ClientError> {
        self.call(self.request(Method::GET, &["v1", "audit"])?.query(query))
            .await
    }

    /// `GET /v1/audit/verify`: checks the workspace's keyed hash chain.
    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.call(self.request(Method::GET, &["v1", "audit", "verify"])?)
            .await
    }

    /// `POST /v1/audit/verify`: checks the chain and that it still passes through
    /// `checkpoint` unchanged.
    pub async fn verify_audit_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> Result<AuditVerification, ClientError> {
        self.call(
            self.request(Method::POST, &["v1", "audit", "verify"])?
                .json(checkpoint),
        )
        .await
    }

    /// `GET /v1/audit/checkpoint`: the chain's head, signed, to keep elsewhere.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint, ClientError> {
        self.call(self.request(Method::GET, &["v1", "audit", "checkpoint"])?)
            .await
    }
}

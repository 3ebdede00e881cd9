//! The audit trail: `GET /v1/audit` and `GET /v1/audit/verify`.

use keyward_core::api::Page;
use keyward_core::audit::{AuditEventView, AuditQuery, AuditVerification};
use reqwest::Method;

use crate::{Client, ClientError};

impl Client {
    /// `GET /v1/audit`: a page of the workspace's events.
    pub async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEventView>, ClientError> {
        self.call(self.request(Method::GET, &["v1", "audit"])?.query(query))
            .await
    }

    /// `GET /v1/audit/verify`: checks the workspace's hash chain.
    pub async fn verify_audit(&self) -> Result<AuditVerification, ClientError> {
        self.call(self.request(Method::GET, &["v1", "audit", "verify"])?)
            .await
    }
}

//! Change requests: `/v1/change-requests`, the security changes that wait for another
//! person's approval. `PATCH` calls held for approval answer
//! [`ClientError::PendingApproval`](crate::ClientError::PendingApproval) with the request;
//! these calls list, read and decide them.
//!
//! The approval code is never in an answer: approvers get it from the
//! `change_request.created` webhook (`data.approval_code`) or the dashboard's inbox.

use keyward_core::api::Page;
use keyward_core::{ApproveChange, ChangeRequest, ChangeRequestId, DecideChange};
use reqwest::Method;

use crate::{ChangeRequestListParams, Client, ClientError};

impl Client {
    /// `GET /v1/change-requests`: newest first; every request for an approver, the caller's
    /// own otherwise.
    pub async fn list_change_requests(
        &self,
        params: &ChangeRequestListParams,
    ) -> Result<Page<ChangeRequest>, ClientError> {
        self.call(
            self.request(Method::GET, &["v1", "change-requests"])?
                .query(params),
        )
        .await
    }

    /// `GET /v1/change-requests/{id}`.
    pub async fn change_request(&self, id: ChangeRequestId) -> Result<ChangeRequest, ClientError> {
        self.call(self.request(Method::GET, &["v1", "change-requests", &id.to_string()])?)
            .await
    }

    /// `POST /v1/change-requests/{id}/approve`: with the request's code. The last approval it
    /// needs applies the change; the answer is the request as it now stands (`applied`, or
    /// still `pending` with one more approval).
    pub async fn approve_change_request(
        &self,
        id: ChangeRequestId,
        body: &ApproveChange,
    ) -> Result<ChangeRequest, ClientError> {
        self.decide(id, "approve", body).await
    }

    /// `POST /v1/change-requests/{id}/reject`: an approver refuses it; nothing is applied.
    pub async fn reject_change_request(
        &self,
        id: ChangeRequestId,
        body: &DecideChange,
    ) -> Result<ChangeRequest, ClientError> {
        self.decide(id, "reject", body).await
    }

    /// `POST /v1/change-requests/{id}/cancel`: the requester withdraws it.
    pub async fn cancel_change_request(
        &self,
        id: ChangeRequestId,
        body: &DecideChange,
    ) -> Result<ChangeRequest, ClientError> {
        self.decide(id, "cancel", body).await
    }

    async fn decide(
        &self,
        id: ChangeRequestId,
        verb: &str,
        body: &impl serde::Serialize,
    ) -> Result<ChangeRequest, ClientError> {
        let id = id.to_string();
        self.call(
            self.request(Method::POST, &["v1", "change-requests", &id, verb])?
                .json(body),
        )
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use keyward_core::api::WorkspacePatch;

    use crate::{Client, ClientError};

    /// A server on a free port that answers one request with `status` and `body`.
    fn answer_once(status: &str, body: String) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let status = status.to_owned();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the head and the (small) body: stop once the declared length has arrived.
            loop {
                let n = conn.read(&mut buf).unwrap();
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).to_lowercase();
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    if seen.len() >= head_end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(reply.as_bytes()).unwrap();
        });
        url
    }

    fn change_request_json() -> String {
        serde_json::json!({
            "id": "chg_0123456789abcdef0123456789abcdef",
            "workspace_id": "ws_0123456789abcdef0123456789abcdef",
            "target": {"kind": "workspace"},
            "change": {"settings": {"ip_allowlist": "203.0.113.5"}},
            "before": {},
            "base_version": 4,
            "requested_by": {"kind": "token", "token_id": "tok_0123456789abcdef0123456789abcdef",
                             "user_id": "usr_0123456789abcdef0123456789abcdef"},
            "reason": "office move",
            "state": "pending",
            "approvals_needed": 2,
            "approvals": [],
            "created_at": "2026-12-01T10:00:00Z",
            "expires_at": "2026-12-04T10:00:00Z",
            "comment": ""
        })
        .to_string()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_held_update_is_pending_approval_not_a_failure_to_decode() {
        let url = answer_once("202 Accepted", change_request_json());
        let client = Client::new(&url, Some("kw_x".into())).unwrap();
        let patch = WorkspacePatch {
            name: Some("x".into()),
            ..WorkspacePatch::default()
        };
        let err = runtime()
            .block_on(client.update_workspace(&patch))
            .unwrap_err();
        let ClientError::PendingApproval(r) = &err else {
            panic!("not pending: {err:?}");
        };
        assert_eq!(r.approvals_needed, 2);
        assert_eq!(r.reason, "office move");
        assert_eq!(err.status(), Some(202));
        assert_eq!(
            err.pending_approval().map(|r| r.id.to_string()),
            Some("chg_0123456789abcdef0123456789abcdef".to_owned())
        );
        let shown = err.to_string();
        assert!(
            shown.contains("not applied")
                && shown.contains("chg_0123456789abcdef0123456789abcdef")
                && shown.contains("2 approval(s)")
                && shown.contains("2026-12-04T10:00:00Z"),
            "{shown}"
        );
    }

    #[test]
    fn a_refused_update_stays_an_api_error() {
        let problem = serde_json::json!({
            "type": "urn:keyward:problem:SELF_LOCKOUT", "title": "Self lockout", "status": 422,
            "detail": "the new allowlist would lock out the calling token",
            "code": "SELF_LOCKOUT", "field": "settings.ip_allowlist"
        });
        let url = answer_once("422 Unprocessable Entity", problem.to_string());
        let client = Client::new(&url, Some("kw_x".into())).unwrap();
        let err = runtime()
            .block_on(client.update_workspace(&WorkspacePatch::default()))
            .unwrap_err();
        assert!(err.pending_approval().is_none());
        assert_eq!(err.problem().map(|p| p.code.as_str()), Some("SELF_LOCKOUT"));
    }
}

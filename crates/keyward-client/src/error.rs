//! The client's error type.

use keyward_core::api::Problem;
use keyward_core::ChangeRequest;

/// Longest part of an unexpected answer's body kept in [`ClientError::Unexpected`].
const MAX_BODY: usize = 512;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or its answer could not be read or decoded. The URL is
    /// stripped from the inner error.
    #[error("HTTP request to keyward failed")]
    Http(#[source] reqwest::Error),
    /// keyward refused the call with a problem+json document.
    #[error("{}", describe(problem))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The problem document: `code` is stable, `field` names the offending input. Boxed to
        /// keep `Result<_, ClientError>` small.
        problem: Box<Problem>,
    },
    /// A non-2xx answer that is not a problem document (a proxy's error page, say).
    #[error("unexpected answer from keyward (HTTP {status}): {body}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The base URL cannot be used.
    #[error("invalid keyward URL: {0}")]
    InvalidUrl(String),
    /// The change was **not applied**: the workspace requires another person's approval of
    /// security changes, and keyward answered 202 with the change request that now waits for
    /// it. Not a failure of the call; the request says how many approvals it needs and when it
    /// expires.
    #[error(
        "not applied: held for approval as change request {} ({} approval(s) needed, expires {})",
        .0.id,
        .0.approvals_needed,
        .0.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )]
    PendingApproval(Box<ChangeRequest>),
}

impl ClientError {
    /// The problem document, for [`ClientError::Api`].
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            ClientError::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The HTTP status of a refused call.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Unexpected { status, .. } => {
                Some(*status)
            }
            ClientError::Http(e) => e.status().map(|s| s.as_u16()),
            ClientError::PendingApproval(_) => Some(202),
            ClientError::InvalidUrl(_) => None,
        }
    }

    /// The change request an update was held as, for [`ClientError::PendingApproval`].
    pub fn pending_approval(&self) -> Option<&ChangeRequest> {
        match self {
            ClientError::PendingApproval(r) => Some(r),
            _ => None,
        }
    }

    /// The error for a non-2xx answer with this body.
    pub(crate) fn from_answer(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Problem>(body) {
            Ok(problem) => ClientError::Api {
                status,
                problem: Box::new(problem),
            },
            Err(_) => ClientError::Unexpected {
                status,
                body: truncate(&String::from_utf8_lossy(body)),
            },
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        // The URL carries no secret of ours (the token travels in a header), but a user may
        // have put credentials into the base URL: keep it out of messages either way.
        ClientError::Http(e.without_url())
    }
}

/// `<code>: <detail>` plus ` (field <field>)`.
fn describe(p: &Problem) -> String {
    match &p.field {
        Some(field) => format!("{}: {} (field {field})", p.code, p.detail),
        None => format!("{}: {}", p.code, p.detail),
    }
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_BODY) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn problem(field: Option<&str>) -> Problem {
        Problem {
            kind: "urn:keyward:problem:UNKNOWN_PERMISSION".into(),
            title: "Unknown permission".into(),
            status: 422,
            detail: "'orders:reed' is not in the catalogue".into(),
            code: "UNKNOWN_PERMISSION".into(),
            field: field.map(str::to_owned),
        }
    }

    #[test]
    fn api_errors_show_code_detail_and_field() {
        let e = ClientError::Api {
            status: 422,
            problem: Box::new(problem(Some("permissions[0]"))),
        };
        assert_eq!(
            e.to_string(),
            "UNKNOWN_PERMISSION: 'orders:reed' is not in the catalogue (field permissions[0])"
        );
        let e = ClientError::Api {
            status: 422,
            problem: Box::new(problem(None)),
        };
        assert_eq!(
            e.to_string(),
            "UNKNOWN_PERMISSION: 'orders:reed' is not in the catalogue"
        );
    }

    #[test]
    fn answers_are_classified() {
        let body = serde_json::to_vec(&problem(None)).unwrap();
        assert!(matches!(
            ClientError::from_answer(422, &body),
            ClientError::Api { status: 422, .. }
        ));
        let long = "x".repeat(2000);
        match ClientError::from_answer(502, long.as_bytes()) {
            ClientError::Unexpected { status, body } => {
                assert_eq!(status, 502);
                assert!(body.chars().count() <= MAX_BODY + 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

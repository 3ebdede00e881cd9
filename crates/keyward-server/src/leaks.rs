//! Leak response: `POST /v1/leaks/github`, compatible with GitHub's secret-scanning partner
//! alerts.
//!
//! GitHub POSTs a JSON array of `{token, type, url, source}` with the headers
//! `Github-Public-Key-Identifier` and `Github-Public-Key-Signature` (base64 of an ASN.1 DER
//! ECDSA P-256 SHA-256 signature over the raw body). The request carries no keyward
//! credential: the signature, checked against the keys configured in `[leaks]`, is its
//! authentication. Unknown key, missing or bad signature → 401; a body that is not such an
//! array → 400/422; a body over the server's limit → 413; nothing is revoked then. Every
//! refusal is problem+json with a stable code.
//!
//! Each reported string that is a keyward token of some workspace is revoked (if it was not
//! already; the cache entry is dropped), `token.leaked` is emitted (and `token.revoked` when
//! this revoked it), and it is labelled `true_positive`; anything else is `false_positive`.
//! The answer names each report by `token_hash` (hex SHA-256 of the reported string), so the
//! secret is never echoed; reported strings are never logged.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyward_core::api::{Problem, TokenView};
use keyward_core::audit::{Actor, AuditDraft};
use keyward_core::events::EventType;
use keyward_core::{DomainError, TokenSecret, TokenStatus};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{ApiError, PROBLEM_JSON};
use crate::state::AppState;

/// The `[leaks]` section of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaksConfig {
    /// GitHub's secret-scanning public keys; the endpoint refuses everything while empty.
    pub github_public_keys: Vec<GithubKey>,
}

/// One public key GitHub signs alerts with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GithubKey {
    /// The `Github-Public-Key-Identifier` it goes with.
    pub key_identifier: String,
    /// The PEM-encoded (SubjectPublicKeyInfo) P-256 public key.
    pub key: String,
}

/// The configured keys, parsed at start.
#[derive(Debug, Default)]
pub struct LeakKeys(Vec<(String, VerifyingKey)>);

impl LeakKeys {
    /// Parses the configured keys; a bad one stops the start with its identifier named.
    pub fn from_config(config: &LeaksConfig) -> Result<Self, String> {
        config
            .github_public_keys
            .iter()
            .map(|k| {
                VerifyingKey::from_public_key_pem(k.key.trim())
                    .map(|key| (k.key_identifier.clone(), key))
                    .map_err(|_| {
                        format!(
                            "leaks.github_public_keys: key {:?} is not a PEM P-256 public key",
                            k.key_identifier
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(LeakKeys)
    }

    fn find(&self, id: &str) -> Option<&VerifyingKey> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, key)| key)
    }
}

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/leaks/github", post(github))
}

/// One reported match.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Reported {
    token: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

/// The answer about one match.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Label {
    /// Hex SHA-256 of the reported string.
    pub token_hash: String,
    /// The reported type, as sent.
    pub token_type: String,
    /// `true_positive` or `false_positive`.
    pub label: String,
}

/// A 401 refusal of an alert with a stable code.
fn refused(code: &'static str, detail: &str) -> Response {
    let problem = Problem::new(401, "Unauthorized", code, detail);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, PROBLEM_JSON)],
        body,
    )
        .into_response()
}

/// Why an alert is refused: a stable code and its explanation.
type Refusal = (&'static str, &'static str);

/// Checks the signature of `body`.
fn authenticate(keys: &LeakKeys, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(sig)) = (
        text("github-public-key-identifier"),
        text("github-public-key-signature"),
    ) else {
        return Err((
            "SIGNATURE_MISSING",
            "Github-Public-Key-Identifier and Github-Public-Key-Signature are required",
        ));
    };
    let key = keys
        .find(id.trim())
        .ok_or(("UNKNOWN_KEY", "the signing key is not configured"))?;
    let bad = ("INVALID_SIGNATURE", "the signature does not match the body");
    let der = STANDARD.decode(sig.trim()).map_err(|_| bad)?;
    let signature = Signature::from_der(&der).map_err(|_| bad)?;
    key.verify(body, &signature).map_err(|_| bad)
}

async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        _ => ApiError::BadRequest {
            code: "INVALID_BODY",
            message: "the request body could not be read".into(),
        },
    })?;
    if let Err((code, detail)) = authenticate(&state.leak_keys, &headers, &body) {
        tracing::warn!(code, "secret-scanning alert refused");
        return Ok(refused(code, detail));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::BadRequest {
            code: "MALFORMED_JSON",
            message: "the body is not JSON".into(),
        })?;
    let reports: Vec<Reported> = serde_json::from_value(value).map_err(|_| {
        DomainError::rule(
            "INVALID_LEAK_REPORT",
            "the body must be an array of {token, type, url, source}",
        )
    })?;
    let mut labels = Vec::with_capacity(reports.len());
    let mut revoked = 0;
    for r in &reports {
        let leaked = handle(&state, r).await?;
        revoked += usize::from(leaked);
        labels.push(Label {
            token_hash: hex_sha256(&r.token),
            token_type: r.kind.clone(),
            label: if leaked {
                "true_positive"
            } else {
                "false_positive"
            }
            .into(),
        });
    }
    tracing::info!(
        reported = reports.len(),
        keyward_tokens = revoked,
        "secret-scanning alert handled"
    );
    Ok(Json(labels).into_response())
}

/// Revokes the token `reported` is the secret of, if any, and audits the report (where it was
/// found, never the secret). Returns whether it was a keyward token.
async fn handle(state: &AppState, reported: &Reported) -> Result<bool, ApiError> {
    let Ok(checked) = TokenSecret::check(reported.token.trim()) else {
        return Ok(false);
    };
    let hash = state.hasher.hash_checked(checked);
    let Some(mut token) = state.store.token_by_hash(&hash).await? else {
        return Ok(false);
    };
    let now = state.now();
    let newly = token.status != TokenStatus::Revoked;
    let audit = AuditDraft::new(
        token.workspace_id,
        now,
        Actor::SYSTEM,
        "token.leaked",
        "token",
        token.id.to_string(),
    )
    .before(&TokenView::of(&token, now));
    if newly {
        token.status = TokenStatus::Revoked;
        token.revoked_at = Some(now);
        token.updated_at = now;
    }
    let audit = audit.after(&serde_json::json!({
        "token": TokenView::of(&token, now),
        "revoked": newly,
        "report": {"source": &reported.source, "url": &reported.url, "type": &reported.kind},
    }));
    // The revocation changes only the status (never writing back the rest of this read);
    // if another request revoked the token first, the report is still audited.
    let revoked_now = newly
        && (state
            .store
            .revoke_token(token.workspace_id, token.id, now, &audit))
        .await?;
    if revoked_now {
        state.cache.invalidate_token(token.id);
        tracing::warn!(token = %token.id, "token revoked: reported leaked by secret scanning");
    } else {
        state.store.append_audit(&[audit]).await?;
    }
    crate::events::emit(state, EventType::TokenLeaked, &token).await?;
    if revoked_now {
        crate::events::emit(state, EventType::TokenRevoked, &token).await?;
    }
    Ok(true)
}

fn hex_sha256(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

//! Forward-auth: `/auth` and `/auth/…`, any method, for nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth` and Envoy `ext_authz` (HTTP service).
//!
//! Only a proxy may ask: a peer in `policy.trusted_proxies`, or one sending the configured
//! `X-Keyward-Proxy-Secret`. The original request is read from `X-Forwarded-Method` /
//! `X-Forwarded-Uri` (Caddy, Traefik), else `X-Original-Method` / `X-Original-URI` (nginx),
//! else it is this request itself with `/auth` taken off its path (Envoy, whose `path_prefix`
//! is put in front of the original path). The client's address comes from the proxy's
//! `X-Forwarded-For` / `X-Real-IP` by the rules of [`crate::client_ip`]. The decision is the
//! gate's [`Edge`]: 200 with the principal headers, or its refusal. nginx passes only 401 and
//! 403 on, so a request that came through nginx gets a rate-limit refusal as a 403 with
//! `X-Keyward-Code: RATE_LIMITED`, which the shipped nginx configuration turns into a 429.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use keyward_core::ip::IpAllowlist;
use keyward_gate::edge::{Admission, Edge, Original, Refusal};
use sha2::{Digest, Sha256};

use crate::client_ip::{behind_proxy, canonical};
use crate::state::AppState;

/// The header a proxy proves itself with, when `edge.proxy_secret` is set.
pub const PROXY_SECRET_HEADER: &str = "x-keyward-proxy-secret";

/// The forward-auth front end: the edge and who may ask it.
pub struct ForwardAuth {
    /// The admission shared with the gateway.
    pub edge: Arc<Edge>,
    /// SHA-256 of `edge.proxy_secret`, when one is configured (compared digest to digest, so
    /// the comparison's time says nothing about the secret).
    proxy_secret: Option<[u8; 32]>,
    /// Proxies whose forwarding headers are believed (the server's `policy.trusted_proxies`).
    trusted_proxies: Arc<IpAllowlist>,
}

impl ForwardAuth {
    /// The front end over `edge`, answering `trusted_proxies` and proxies that send
    /// `proxy_secret` (if not empty).
    pub fn new(edge: Arc<Edge>, trusted_proxies: Arc<IpAllowlist>, proxy_secret: &str) -> Self {
        let proxy_secret = (!proxy_secret.is_empty()).then(|| Sha256::digest(proxy_secret).into());
        Self {
            edge,
            proxy_secret,
            trusted_proxies,
        }
    }

    fn proves_secret(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.proxy_secret else {
            return false;
        };
        let mut values = headers.get_all(PROXY_SECRET_HEADER).iter();
        match (values.next(), values.next()) {
            (Some(v), None) => {
                let got: [u8; 32] = Sha256::digest(v.as_bytes()).into();
                // Digests of equal length: no early exit that depends on the secret.
                got.iter()
                    .zip(expected)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }
}

/// `/auth` and everything under it, every method. The routes hold only the forward-auth
/// front end as their state, so a request clones one `Arc`, not the whole [`AppState`].
pub fn routes(fa: Arc<ForwardAuth>) -> Router<AppState> {
    Router::new()
        .route("/auth", any(forward_auth))
        // Envoy's prefix before the original path `/` (the catch-all needs a non-empty rest).
        .route("/auth/", any(forward_auth))
        .route("/auth/{*rest}", any(forward_auth))
        .with_state(fa)
}

/// Which proxy's convention the request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// `X-Forwarded-Method` / `X-Forwarded-Uri`.
    Forwarded,
    /// `X-Original-Method` / `X-Original-URI`: nginx, which passes only 401 and 403.
    Nginx,
    /// The request itself, under the `/auth` prefix.
    Envoy,
}

async fn forward_auth(
    State(fa): State<Arc<ForwardAuth>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let headers = req.headers();
    let peer_ip = canonical(peer.ip());
    if !(fa.trusted_proxies.contains(peer_ip) || fa.proves_secret(headers)) {
        return crate::ApiError::forbidden(
            "PROXY_NOT_TRUSTED",
            "forward-auth answers only proxies listed in policy.trusted_proxies or sending the \
             configured X-Keyward-Proxy-Secret",
        )
        .into_response();
    }
    // Each of these once: a proxy that appends its own would otherwise lose to the client's.
    let once = [
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-original-uri",
        "x-original-method",
    ];
    if once
        .iter()
        .any(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return crate::ApiError::forbidden(
            "AMBIGUOUS_ORIGINAL_REQUEST",
            "the original request's method or URI header is repeated: configure the proxy to \
             replace, not append, it (see docs/forward-auth.md)",
        )
        .into_response();
    }
    let header = |name: &str| headers.get(name).map(|v| v.to_str().map(str::trim));
    let (convention, method, target) = match (header("x-forwarded-uri"), header("x-original-uri")) {
        // Both conventions at once: one of them was written by the client (a proxy that
        // failed to clear the other one's headers). Which one the proxy meant cannot be told.
        (Some(_), Some(_)) => {
            return crate::ApiError::forbidden(
                "AMBIGUOUS_ORIGINAL_REQUEST",
                "the request carries both X-Forwarded-Uri and X-Original-URI: configure the \
                 proxy to clear the one it does not set (see docs/forward-auth.md)",
            )
            .into_response();
        }
        (Some(uri), None) => (Convention::Forwarded, header("x-forwarded-method"), uri),
        (None, Some(uri)) => (Convention::Nginx, header("x-original-method"), uri),
        (None, None) => {
            let path = req.uri().path();
            let rest = path.strip_prefix("/auth").unwrap_or(path);
            let target = match req.uri().query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_owned(),
            };
            return decide(
                &fa,
                Convention::Envoy,
                req.method().as_str(),
                &target,
                headers,
                peer_ip,
            )
            .await;
        }
    };
    let method = match method {
        None => Ok(req.method().as_str()),
        Some(m) => m,
    };
    let (Ok(method), Ok(target)) = (method, target) else {
        return crate::ApiError::forbidden(
            "INVALID_PATH",
            "the forwarded method or URI could not be read",
        )
        .into_response();
    };
    decide(&fa, convention, method, target, headers, peer_ip).await
}

async fn decide(
    fa: &ForwardAuth,
    convention: Convention,
    method: &str,
    target: &str,
    headers: &HeaderMap,
    peer: std::net::IpAddr,
) -> Response {
    let original = Original {
        method,
        target,
        headers,
        // A proxy asks on its client's behalf, never its own: without a forwarded address the
        // client's is unknown (and every allowlist refuses), not the proxy's.
        client_ip: if headers.contains_key("x-forwarded-for") || headers.contains_key("x-real-ip") {
            behind_proxy(peer, headers, &fa.trusted_proxies)
        } else {
            None
        },
    };
    let refused = match fa.edge.admit(&original).await {
        Ok(Admission::Allowed(allowed)) => {
            let mut res = StatusCode::OK.into_response();
            allowed.write_headers(res.headers_mut());
            return res;
        }
        Ok(Admission::Refused(r)) => r,
        Err(e) => {
            tracing::warn!(error = %e, "forward-auth could not decide");
            Refusal::unavailable()
        }
    };
    let refused = match convention {
        Convention::Nginx => refused.for_nginx(),
        Convention::Forwarded | Convention::Envoy => refused,
    };
    refused.into_response::<Body>()
}

//! Gateway mode (`keyward serve --upstream URL`, section `[gateway]`): keyward itself in front
//! of an API. Every request on the gateway's own listener is admitted by the same [`Edge`] as
//! forward-auth (route table, credential, RFC 6750 refusals, answered by the gateway itself),
//! then streamed to the upstream over plain HTTP/1.1 with hyper-util's pooled client: the
//! credential taken off (unless `strip_credential = false`), the client's `X-Keyward-*`
//! principal headers replaced by the real ones, hop-by-hop headers dropped both ways,
//! `X-Forwarded-For` / `-Proto` / `-Host` set. Bodies are never buffered. An HTTP/1.1
//! `Upgrade` (WebSocket) is passed on, and on the upstream's 101 both connections are joined
//! byte for byte.
//!
//! The upstream's failures are the gateway's answers: 502 `UPSTREAM_UNAVAILABLE` when it
//! cannot be reached (or breaks off), 504 `UPSTREAM_TIMEOUT` when its response head does not
//! come within `response_timeout_secs` of the request's body having been sent.
//!
//! The gateway's listener has the main listener's header-read and idle timeouts and
//! connection cap, but no total request timeout (see [`crate::listener`]): a long upload, a
//! long download or an upgraded connection is not cut off.

mod headers;
mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::uri::{Authority, Uri};
use axum::http::HeaderName;
use axum::Router;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use keyward_core::ip::IpAllowlist;
use keyward_gate::edge::Edge;
use serde::{Deserialize, Serialize};

/// The `[gateway]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// The upstream, `http://host:port` (optionally with a path prefix); empty: no gateway.
    pub upstream: String,
    /// The gateway's own listener (the main one keeps the admin API, dashboard, verify, /auth).
    pub listen: String,
    /// Whether the credential header is taken off before the upstream.
    pub strip_credential: bool,
    /// Milliseconds to open a connection to the upstream; then 502.
    pub connect_timeout_ms: u64,
    /// Seconds to wait for the upstream's response head once the request is sent; then 504.
    pub response_timeout_secs: u64,
    /// Pass the client's `Host` on (else the upstream's own authority).
    pub preserve_host: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstream: String::new(),
            listen: "127.0.0.1:8081".into(),
            strip_credential: true,
            connect_timeout_ms: 2_000,
            response_timeout_secs: 30,
            preserve_host: true,
        }
    }
}

impl GatewayConfig {
    /// Checks the section; the upstream when the gateway is on, `None` when it is off.
    /// Errors name the key.
    pub fn validate(&self) -> Result<Option<Upstream>, String> {
        if self.upstream.trim().is_empty() {
            return Ok(None);
        }
        let upstream = Upstream::parse(&self.upstream)?;
        crate::config::check_address("gateway.listen", &self.listen)?;
        if self.connect_timeout_ms == 0 || self.connect_timeout_ms > 600_000 {
            return Err("gateway.connect_timeout_ms must be between 1 and 600000".into());
        }
        if self.response_timeout_secs == 0 || self.response_timeout_secs > 86_400 {
            return Err("gateway.response_timeout_secs must be between 1 and 86400".into());
        }
        Ok(Some(upstream))
    }
}

/// A checked upstream: an `http://` authority with a port, and a path prefix (maybe empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    authority: Authority,
    prefix: String,
}

impl Upstream {
    /// Reads `gateway.upstream`. Only `http://` is spoken: an `https://` upstream is refused
    /// (keyward would need a TLS client configuration of its own; run it next to the service
    /// or let a proxy originate TLS).
    pub fn parse(raw: &str) -> Result<Self, String> {
        const SHAPE: &str = "gateway.upstream must be an http:// URL with a host and a port, \
                             such as http://127.0.0.1:9000";
        let raw = raw.trim();
        let uri: Uri = raw.parse().map_err(|_| SHAPE.to_owned())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(s) if s.eq_ignore_ascii_case("https") => {
                return Err(
                    "gateway.upstream: https upstreams are not supported; keyward \
                            speaks plain http to its upstream (run it next to the service)"
                        .into(),
                )
            }
            _ => return Err(SHAPE.into()),
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err(SHAPE.into());
        };
        if authority.host().is_empty() || authority.port_u16().is_none() {
            return Err(SHAPE.into());
        }
        if authority.as_str().contains('@') {
            return Err("gateway.upstream must not carry a user name or password".into());
        }
        if uri.query().is_some() || raw.contains('#') {
            return Err("gateway.upstream must not have a query or fragment".into());
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { authority, prefix })
    }

    /// The upstream's authority (`host:port`).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The absolute URI of `path_and_query` at the upstream.
    fn uri_for(&self, path_and_query: &str) -> Option<Uri> {
        Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.prefix, path_and_query))
            .build()
            .ok()
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.prefix)
    }
}

/// The running gateway: the edge, the upstream and the client that reaches it.
pub struct Gateway {
    edge: Arc<Edge>,
    trusted_proxies: Arc<IpAllowlist>,
    upstream: Upstream,
    client: Client<HttpConnector, Body>,
    credential: HeaderName,
    strip_credential: bool,
    preserve_host: bool,
    response_timeout: Duration,
}

impl Gateway {
    /// The gateway to `upstream` (checked by [`GatewayConfig::validate`]), admitting with
    /// `edge`, believing `X-Forwarded-*` only from `trusted_proxies`.
    pub fn new(
        config: &GatewayConfig,
        upstream: Upstream,
        edge: Arc<Edge>,
        trusted_proxies: Arc<IpAllowlist>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(config.connect_timeout_ms)));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let credential = edge.rules().credential_header();
        Self {
            edge,
            trusted_proxies,
            upstream,
            client,
            credential,
            strip_credential: config.strip_credential,
            preserve_host: config.preserve_host,
            response_timeout: Duration::from_secs(config.response_timeout_secs),
        }
    }

    /// The upstream.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// How long the upstream's response head may take once the request is sent.
    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// Every method and path, proxied.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(proxy::handle).with_state(self)
    }
}

/// What the gateway's listener serves, and where.
pub(crate) struct Bound {
    pub listener: tokio::net::TcpListener,
    pub gateway: Arc<Gateway>,
}

impl Bound {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_is_checked_and_named() {
        let ok = Upstream::parse("http://127.0.0.1:9000").unwrap();
        assert_eq!(ok.authority().as_str(), "127.0.0.1:9000");
        assert_eq!(ok.uri_for("/a?b=1").unwrap(), "http://127.0.0.1:9000/a?b=1");
        let prefixed = Upstream::parse("http://api.internal:80/v2/").unwrap();
        assert_eq!(prefixed.to_string(), "http://api.internal:80/v2");
        assert_eq!(
            prefixed.uri_for("/orders").unwrap(),
            "http://api.internal:80/v2/orders"
        );
        for bad in [
            "127.0.0.1:9000",
            "http://127.0.0.1",
            "ftp://h:1",
            "http://:9000",
            "http://u:p@h:1",
            "http://h:1/?q",
            "not a url",
        ] {
            let e = Upstream::parse(bad).unwrap_err();
            assert!(e.starts_with("gateway.upstream"), "{bad}: {e}");
        }
        let e = Upstream::parse("https://h:443").unwrap_err();
        assert!(e.contains("https"), "{e}");
        assert_eq!(GatewayConfig::default().validate(), Ok(None));
        let bad_listen = GatewayConfig {
            upstream: "http://h:1".into(),
            listen: "nope".into(),
            ..GatewayConfig::default()
        };
        assert!(bad_listen
            .validate()
            .unwrap_err()
            .starts_with("gateway.listen"));
    }
}

//! The gateway's header rules: hop-by-hop headers (RFC 9110 §7.6.1) are the connection's, not
//! the message's, and are dropped both ways (but for the `Connection: upgrade` / `Upgrade`
//! pair of an upgrade); the `X-Forwarded-*` headers tell the upstream about the client.

use std::net::IpAddr;

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers that are always the connection's.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// The `Upgrade` value when `headers` ask for (or, on a 101, agree to) an upgrade:
/// `Connection` names `upgrade` and `Upgrade` is present.
pub fn upgrade_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let asked = connection_tokens(headers).any(|t| t == "upgrade");
    // Only WebSocket: after a switch the bytes are not HTTP requests any more, so a protocol
    // that carries several requests (h2c) would take every later one past the admission.
    asked
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
        .filter(|p| p.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Drops the hop-by-hop headers: the fixed ones and those `Connection` names (never `Host`).
/// With `upgrade`, `Connection: upgrade` and `Upgrade: <upgrade>` are put back.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, upgrade: Option<&HeaderValue>) {
    let named: Vec<String> = connection_tokens(headers).collect();
    for name in named {
        if name != "host" {
            headers.remove(name.as_str());
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }
}

const FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Sets `X-Forwarded-For` (the peer appended to the chain), `X-Forwarded-Proto` and
/// `X-Forwarded-Host`. What a client sent is kept only from a trusted proxy (`trusted`);
/// from anyone else it is replaced (and its `Forwarded` and `X-Real-IP` dropped), so the
/// upstream never reads a forged chain.
pub fn set_forwarded(headers: &mut HeaderMap, peer: IpAddr, trusted: bool) {
    let chain: Vec<String> = if trusted {
        headers
            .get_all(&FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    let mut value = chain.join(", ");
    if !value.is_empty() {
        value.push_str(", ");
    }
    value.push_str(&peer.to_string());
    headers.remove(&FORWARDED_FOR);
    if !trusted {
        // Other claims about the client, from the client itself: not passed on.
        headers.remove(header::FORWARDED);
        headers.remove("x-real-ip");
    }
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(&FORWARDED_PROTO)) {
        headers.insert(FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if !(trusted && headers.contains_key(&FORWARDED_HOST)) {
        match headers.get(header::HOST).cloned() {
            Some(host) => {
                headers.insert(FORWARDED_HOST, host);
            }
            None => {
                headers.remove(&FORWARDED_HOST);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_go_but_an_upgrade_stays() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
        ]);
        assert_eq!(upgrade_of(&h), None);
        remove_hop_by_hop(&mut h, None);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));

        let mut h = map(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        let up = upgrade_of(&h);
        assert_eq!(up.as_ref().unwrap(), "websocket");
        remove_hop_by_hop(&mut h, up.as_ref());
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["upgrade"], "websocket");
    }

    #[test]
    fn forwarded_headers_are_believed_only_from_trusted_peers() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let sent = [
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-proto", "https"),
            ("x-real-ip", "1.2.3.4"),
            ("host", "api.example"),
        ];
        let mut h = map(&sent);
        set_forwarded(&mut h, peer, false);
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example");
        assert!(!h.contains_key("x-real-ip"));
        let mut h = map(&sent);
        set_forwarded(&mut h, peer, true);
        assert_eq!(h["x-forwarded-for"], "1.2.3.4, 10.0.0.9");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-real-ip"], "1.2.3.4");
    }
}

//! The client's address. It is the TCP peer, unless the peer is a configured trusted proxy:
//! then the right-most `X-Forwarded-For` hop that is not itself a trusted proxy (hops to its
//! left could have been written by the client), else `X-Real-IP`. A header from an untrusted
//! peer is ignored, so a client cannot spoof its address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use keyward_core::ip::IpAllowlist;

/// Normalises IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack listener reports for IPv4
/// peers) to plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request that arrived from `peer`.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &IpAllowlist) -> IpAddr {
    let peer = canonical(peer.ip());
    if trusted.is_empty() || !trusted.contains(peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    if !hops.is_empty() {
        let parsed: Option<Vec<IpAddr>> = hops
            .iter()
            .map(|h| h.parse::<IpAddr>().ok().map(canonical))
            .collect();
        // A malformed chain is not trusted at all: fall back to the proxy itself.
        let Some(parsed) = parsed else { return peer };
        return parsed
            .iter()
            .rev()
            .find(|ip| !trusted.contains(**ip))
            .or(parsed.first())
            .copied()
            .unwrap_or(peer);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map(canonical)
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 4000)
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let trusted = IpAllowlist::parse_input("10.0.0.0/8", "t").unwrap();
        let xff = headers(&[("x-forwarded-for", "198.51.100.7, 10.0.0.3")]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &xff, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer the header is ignored.
        assert_eq!(
            client_ip(peer("203.0.113.5"), &xff, &trusted),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        // The right-most untrusted hop wins over a spoofed left part.
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7")]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &spoofed, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let real = headers(&[("x-real-ip", "198.51.100.9")]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &real, &trusted),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        let junk = headers(&[("x-forwarded-for", "nonsense")]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &junk, &trusted),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mapped_ipv4_is_plain_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.2".parse::<IpAddr>().unwrap());
    }
}

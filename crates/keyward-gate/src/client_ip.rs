//! The client's address. It is the TCP peer, unless the peer is a configured trusted proxy:
//! then the `X-Forwarded-For` chain is read, else `X-Real-IP`. A header from an untrusted peer
//! is ignored, so a client cannot spoof its address.
//!
//! The chain is every `X-Forwarded-For` line in order, split on commas, and read right to
//! left, as each proxy appends the address it received the request from: trusted hops are
//! skipped, and the first untrusted hop is the client (everything to its left could have been
//! written by the client). When every hop is trusted, the left-most one is the client.
//!
//! A hop that does not parse stops the walk with **no** address ([`None`]): the proxy's own
//! address is never used instead (it is often internal, and would pass an allowlist), and
//! neither is `X-Real-IP`. A hop is an IPv4 or IPv6 address, optionally with a port
//! (`1.2.3.4:5678`, `[2001:db8::1]:443`) and, for IPv6, a zone id (`fe80::1%eth0`, dropped).
//! Anything else, a non-ASCII byte included, does not parse. Hops are split on bytes, so a
//! non-ASCII hop to the left of the client's (written by the client) cannot hide the hops the
//! proxies appended.
//!
//! RFC 7239 `Forwarded` is not read: a proxy that writes only `X-Forwarded-For` passes a
//! client's `Forwarded` through unchanged, so reading both would let the client choose.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use keyward_core::ip::IpAllowlist;

/// Normalises IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack listener reports for IPv4
/// peers) to plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request that arrived from `peer`; `None` when a trusted proxy's
/// headers name it in a form that cannot be read (then nothing is known about the client, and
/// any allowlist refuses).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &IpAllowlist) -> Option<IpAddr> {
    let peer = canonical(peer.ip());
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    behind_proxy(peer, headers, trusted)
}

/// The client address of a request from `peer`, a proxy known to be one (a trusted address,
/// or one that proved itself with forward-auth's shared secret): its `X-Forwarded-For` chain,
/// else `X-Real-IP`, else the peer itself (a request the proxy made on its own behalf).
pub fn behind_proxy(peer: IpAddr, headers: &HeaderMap, trusted: &IpAllowlist) -> Option<IpAddr> {
    let peer = canonical(peer);
    let lines = headers.get_all("x-forwarded-for");
    if lines.iter().next().is_some() {
        return forwarded_for(lines.iter().map(|v| v.as_bytes()), trusted);
    }
    let mut real = headers.get_all("x-real-ip").iter();
    match (real.next(), real.next()) {
        // A request the proxy sent on its own behalf.
        (None, _) => Some(peer),
        (Some(v), None) => parse_hop(v.as_bytes()),
        // Two values: which one the proxy wrote cannot be told.
        (Some(_), Some(_)) => None,
    }
}

/// Walks the `X-Forwarded-For` lines (in header order) from the right. See the module docs.
pub fn forwarded_for<'a>(
    lines: impl DoubleEndedIterator<Item = &'a [u8]>,
    trusted: &IpAllowlist,
) -> Option<IpAddr> {
    let mut leftmost = None;
    for line in lines.rev() {
        for hop in line.rsplit(|b| *b == b',') {
            let ip = parse_hop(hop)?;
            if !trusted.contains(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

/// One hop: an address, optionally with a port or (IPv6) a zone id, spaces around it allowed.
pub fn parse_hop(raw: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(raw).ok()?;
    let hop = text.trim_matches(|c| c == ' ' || c == '\t');
    if !hop.is_ascii() || hop.is_empty() {
        return None;
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return v6_with_zone(inner).map(|v6| canonical(IpAddr::V6(v6)));
    }
    match hop.matches(':').count() {
        0 => hop.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        1 => {
            let (addr, port) = hop.split_once(':')?;
            is_port(port).then_some(())?;
            addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        }
        _ => v6_with_zone(hop).map(|v6| canonical(IpAddr::V6(v6))),
    }
}

/// An IPv6 address with an optional `%zone` (letters, digits, `-`, `_`, `.`), which is
/// dropped.
fn v6_with_zone(text: &str) -> Option<Ipv6Addr> {
    let addr = match text.split_once('%') {
        Some((addr, zone)) => {
            let ok = !zone.is_empty()
                && zone.len() <= 32
                && zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            ok.then_some(addr)?
        }
        None => text,
    };
    addr.parse().ok()
}

fn is_port(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 4000)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    fn trusted() -> IpAllowlist {
        IpAllowlist::parse_input("10.0.0.0/8", "t").unwrap()
    }

    fn from_proxy(pairs: &[(&'static str, &[u8])]) -> Option<IpAddr> {
        client_ip(peer("10.0.0.2"), &headers(pairs), &trusted())
    }

    #[test]
    fn headers_count_only_from_trusted_proxies() {
        let xff = headers(&[("x-forwarded-for", b"198.51.100.7, 10.0.0.3")]);
        assert_eq!(
            client_ip(peer("10.0.0.2"), &xff, &trusted()),
            ip("198.51.100.7")
        );
        // From an untrusted peer the header is ignored.
        assert_eq!(
            client_ip(peer("203.0.113.5"), &xff, &trusted()),
            ip("203.0.113.5")
        );
        // No proxies configured: the peer, whatever the headers say.
        assert_eq!(
            client_ip(peer("10.0.0.2"), &xff, &IpAllowlist::default()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn the_chain_is_read_right_to_left_skipping_trusted_hops() {
        // The right-most untrusted hop wins over a spoofed left part.
        assert_eq!(
            from_proxy(&[("x-forwarded-for", b"1.1.1.1, 198.51.100.7")]),
            ip("198.51.100.7")
        );
        // Several lines are one chain, in order.
        assert_eq!(
            from_proxy(&[
                ("x-forwarded-for", b"1.1.1.1"),
                ("x-forwarded-for", b"198.51.100.7, 10.1.1.1"),
            ]),
            ip("198.51.100.7")
        );
        assert_eq!(
            from_proxy(&[
                ("x-forwarded-for", b"198.51.100.7"),
                ("x-forwarded-for", b"10.1.1.1,10.2.2.2"),
            ]),
            ip("198.51.100.7")
        );
        // Every hop trusted: the left-most is the client.
        assert_eq!(
            from_proxy(&[("x-forwarded-for", b"10.9.9.9, 10.1.1.1")]),
            ip("10.9.9.9")
        );
        // Garbage to the left of the client's hop was written by the client: irrelevant.
        assert_eq!(
            from_proxy(&[("x-forwarded-for", b"nonsense, 198.51.100.7")]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_unreadable_hop_yields_no_address_never_the_proxys() {
        for bad in [
            &b"nonsense"[..],
            b"198.51.100.7, nonsense",
            b"198.51.100.7, nonsense, 10.0.0.3",
            b"198.51.100.7,,10.0.0.3",
            b"",
            b"198.51.100.7:99999",
            b"1.2.3.4%eth0",
            b"[1.2.3.4]:80",
            b"unknown",
        ] {
            assert_eq!(
                from_proxy(&[("x-forwarded-for", bad)]),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // X-Real-IP does not win over an unreadable chain.
        assert_eq!(
            from_proxy(&[
                ("x-forwarded-for", b"nonsense"),
                ("x-real-ip", b"198.51.100.9")
            ]),
            None
        );
    }

    #[test]
    fn non_ascii_is_refused_not_skipped() {
        assert_eq!(
            from_proxy(&[
                ("x-forwarded-for", "198.51.100.7, 1.2.3.4\u{e9}".as_bytes()),
                ("x-real-ip", b"198.51.100.9"),
            ]),
            None
        );
        assert_eq!(from_proxy(&[("x-forwarded-for", b"\xff\xfe")]), None);
        // Left of the client's hop it is the client's own writing, like any garbage.
        assert_eq!(
            from_proxy(&[("x-forwarded-for", "\u{e9}, 198.51.100.7".as_bytes())]),
            ip("198.51.100.7")
        );
        assert_eq!(
            from_proxy(&[("x-real-ip", "1.2.3.4\u{e9}".as_bytes())]),
            None
        );
    }

    #[test]
    fn ports_and_zone_ids_are_handled() {
        for (hop, want) in [
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("fe80::1%eth0", "fe80::1"),
            ("[fe80::1%25]:80", "fe80::1"),
            (" 1.2.3.4 ", "1.2.3.4"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
            ("[::ffff:198.51.100.7]:1", "198.51.100.7"),
        ] {
            assert_eq!(parse_hop(hop.as_bytes()), ip(want), "{hop}");
        }
        for bad in [
            "1.2.3.4:",
            "[2001:db8::1]:",
            "[2001:db8::1",
            "fe80::1%",
            "1.2.3.4:x",
        ] {
            assert_eq!(parse_hop(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn x_real_ip_is_used_without_a_chain() {
        assert_eq!(
            from_proxy(&[("x-real-ip", b"198.51.100.9")]),
            ip("198.51.100.9")
        );
        assert_eq!(from_proxy(&[("x-real-ip", b"junk")]), None);
        assert_eq!(
            from_proxy(&[("x-real-ip", b"198.51.100.9"), ("x-real-ip", b"1.1.1.1")]),
            None
        );
        // A trusted proxy's own request: the proxy is the client.
        assert_eq!(from_proxy(&[]), ip("10.0.0.2"));
    }

    #[test]
    fn mapped_ipv4_is_plain_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(canonical(mapped), "127.0.0.2".parse::<IpAddr>().unwrap());
    }

    fn any_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
            any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        ]
    }

    /// A hop as a proxy may write it: bare, with a port, bracketed, with a zone.
    fn spelled(ip: IpAddr, style: u8, port: u16) -> String {
        match (ip, style % 4) {
            (IpAddr::V4(a), 0 | 2) => a.to_string(),
            (IpAddr::V4(a), _) => format!("{a}:{port}"),
            (IpAddr::V6(a), 0) => a.to_string(),
            (IpAddr::V6(a), 1) => format!("[{a}]:{port}"),
            (IpAddr::V6(a), 2) => format!("[{a}]"),
            (IpAddr::V6(a), _) => format!("{a}%eth{}", port % 10),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_input_panics(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4)) {
            let list = trusted();
            let _ = forwarded_for(lines.iter().map(Vec::as_slice), &list);
            for l in &lines {
                let _ = parse_hop(l);
            }
        }

        #[test]
        fn text_hops_never_panic(text in "[0-9a-fA-F:.\\[\\]%, a-z]{0,60}") {
            let _ = forwarded_for(std::iter::once(text.as_bytes()), &trusted());
        }

        #[test]
        fn a_chain_of_valid_addresses_round_trips(
            hops in proptest::collection::vec((any_ip(), any::<u8>(), any::<u16>()), 1..6),
        ) {
            // Nothing trusted in the chain: the right-most hop is the client.
            let none = IpAllowlist::default();
            let chain: Vec<String> = hops.iter().map(|(ip, s, p)| spelled(*ip, *s, *p)).collect();
            let line = chain.join(", ");
            let last = hops.last().map(|(ip, _, _)| canonical(*ip));
            prop_assert_eq!(forwarded_for(std::iter::once(line.as_bytes()), &none), last);
            for (ip, s, p) in &hops {
                prop_assert_eq!(parse_hop(spelled(*ip, *s, *p).as_bytes()), Some(canonical(*ip)));
            }
            // Everything trusted: the left-most hop.
            let all = IpAllowlist::parse_input("0.0.0.0/0, ::/0", "t").unwrap();
            let first = hops.first().map(|(ip, _, _)| canonical(*ip));
            prop_assert_eq!(forwarded_for(std::iter::once(line.as_bytes()), &all), first);
        }
    }
}

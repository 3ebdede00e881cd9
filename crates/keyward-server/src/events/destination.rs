//! Where webhooks may be delivered: the destination check, run when a subscription is created
//! or updated *and* for every attempt, after DNS resolution.
//!
//! A URL is parsed with the `url` crate (`reqwest::Url`), the WHATWG host parser reqwest itself
//! uses, so every spelling of an address — `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`,
//! `[::ffff:7f00:1]` — becomes the `IpAddr` that would be connected to, and that address is
//! checked. Refused unless the operator allows them ([`Destinations::permits`]):
//! - IPv4: `0.0.0.0/8` (unspecified; Linux connects `0.0.0.0` to the host itself), loopback
//!   `127/8`, RFC 1918 `10/8`, `172.16/12`, `192.168/16`, CGNAT `100.64/10`, link-local
//!   `169.254/16` (cloud metadata), IETF protocol assignments `192.0.0/24`, benchmarking
//!   `198.18/15`, and `224/3` (multicast, reserved, broadcast);
//! - IPv6: `::` and `::1`, link-local `fe80::/10`, site-local `fec0::/10`, ULA `fc00::/7`,
//!   multicast `ff00::/8`, discard `100::/64`, local-use NAT64 `64:ff9b:1::/48`;
//! - IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped
//!   (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`),
//!   NAT64 `64:ff9b::/96` and 6to4 `2002::/16`.
//!
//! Documentation ranges (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`) are
//! not refused: nothing answers there. Host names are resolved only when sending, by
//! [`CheckedResolver`], which hands the HTTP client the checked addresses themselves, so there
//! is no window between the check and the connection (a name that resolves elsewhere a second
//! time is never looked up a second time). `localhost` and `*.localhost` (RFC 6761) are judged
//! as `127.0.0.1` already at creation.
//!
//! `[webhooks] allow_private_destinations = true` turns the check off; `allowed_destinations`
//! lists CIDRs permitted although refused above (an operator's own internal receivers).

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use keyward_core::ip::IpAllowlist;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Longest accepted URL (as typed and once normalised).
pub const MAX_URL: usize = 2_048;

/// Why a URL is not accepted as a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefusal {
    /// Not an `http(s)` URL with a host; the text says what is wrong, never echoing the URL.
    Invalid(&'static str),
    /// It carries a user name or password.
    Credentials,
    /// Its host is an address (or `localhost`) the check refuses.
    Forbidden,
}

/// The operator's destination policy.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    allow_private: bool,
    allowed: IpAllowlist,
}

impl Destinations {
    /// The policy of `[webhooks]`: `allowed` are its `allowed_destinations`, already parsed.
    pub fn new(allow_private: bool, allowed: IpAllowlist) -> Self {
        Self {
            allow_private,
            allowed,
        }
    }

    /// Whether a connection to `ip` is permitted.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_internal(ip) || self.allowed.contains(ip)
    }

    /// Parses and checks a subscription URL as it is created or updated: `http` or `https`,
    /// a host, no credentials, no whitespace or control characters, and (for an address or
    /// `localhost`) a permitted destination. Answers the normalised URL, the one stored.
    pub fn check_url(&self, raw: &str) -> Result<Url, UrlRefusal> {
        let url = self.check_send_url(raw)?;
        match url.host_str() {
            Some(host) if is_localhost(host) && !self.permits(LOOPBACK) => {
                Err(UrlRefusal::Forbidden)
            }
            _ => Ok(url),
        }
    }

    /// The check made before each attempt: like [`Destinations::check_url`], except that a
    /// name (`localhost` included) is left to [`CheckedResolver`], which checks what it
    /// resolves to.
    pub fn check_send_url(&self, raw: &str) -> Result<Url, UrlRefusal> {
        let raw = raw.trim();
        if raw.len() > MAX_URL {
            return Err(UrlRefusal::Invalid("is too long"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlRefusal::Invalid(
                "must contain no spaces or control characters",
            ));
        }
        let url = Url::parse(raw).map_err(|_| UrlRefusal::Invalid("is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlRefusal::Invalid("must start with http:// or https://"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefusal::Credentials);
        }
        if url.as_str().len() > MAX_URL {
            return Err(UrlRefusal::Invalid("is too long"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(UrlRefusal::Invalid("must name a host"))?;
        match literal_ip(host) {
            Some(ip) if !self.permits(ip) => Err(UrlRefusal::Forbidden),
            _ => Ok(url),
        }
    }
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The address a URL's normalised host spells, if it is one (`[…]` for IPv6).
fn literal_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

fn is_localhost(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// Whether `ip` is loopback, private, link-local, unspecified, multicast or otherwise not a
/// public unicast address (see the module docs for the list).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_internal(a),
        IpAddr::V6(a) => v6_internal(a),
    }
}

fn v4_internal(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 0
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
        || o[0] >= 224
}

fn v6_internal(a: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(a) {
        return v4_internal(v4);
    }
    let s = a.segments();
    a.is_unspecified()
        || a.is_loopback()
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xff00) == 0xff00
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
}

/// The IPv4 address an IPv6 address stands for, in the forms that route to it.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let zero = |r: std::ops::Range<usize>| s[r].iter().all(|x| *x == 0);
    if zero(0..5) && (s[5] == 0xffff || s[5] == 0) {
        // IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (`::` and `::1` are
        // 0.0.0.0 and 0.0.0.1 there: both refused with 0/8).
        return Some(tail);
    }
    if zero(0..4) && s[4] == 0xffff && s[5] == 0 {
        return Some(tail); // IPv4-translated `::ffff:0:a.b.c.d`
    }
    if s[0] == 0x64 && s[1] == 0xff9b && zero(2..6) {
        return Some(tail); // NAT64 well-known prefix
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])); // 6to4
    }
    None
}

/// A resolution whose every address was refused.
#[derive(Debug, thiserror::Error)]
#[error("the destination resolves only to addresses webhooks are not delivered to")]
pub struct DestinationForbidden;

/// Whether an HTTP client error was caused by [`CheckedResolver`] refusing every address.
pub fn is_forbidden(e: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<DestinationForbidden>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The delivery client's DNS resolver: resolves with the system resolver, keeps only the
/// permitted addresses, and fails with [`DestinationForbidden`] when none is left. The HTTP
/// client connects to exactly the addresses it answers.
pub struct CheckedResolver {
    policy: Arc<Destinations>,
}

impl CheckedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: Arc<Destinations>) -> Self {
        Self { policy }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let permitted: Vec<SocketAddr> = found.filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(DestinationForbidden) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Destinations {
        Destinations::default()
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        let d = strict();
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://017700000001/",
            "http://127.0.0.1.:8080/x",
            "http://0.0.0.0/",
            "http://0/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://100.127.255.255/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::1]/",
            "http://[::]/",
            "http://[0:0:0:0:0:0:0:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::127.0.0.1]/",
            "http://[::ffff:0:10.0.0.1]/",
            "http://[64:ff9b::10.0.0.1]/",
            "http://[2002:7f00:1::]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[fc00::1]/",
            "http://[ff02::1]/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "https://127.0.0.1:443/",
        ] {
            assert_eq!(
                d.check_url(url).map(|u| u.to_string()),
                Err(UrlRefusal::Forbidden),
                "{url}"
            );
        }
    }

    #[test]
    fn public_and_documentation_addresses_and_names_pass() {
        let d = strict();
        for url in [
            "https://hooks.example.com/keyward",
            "http://hooks.internal/keyward",
            "http://8.8.8.8/",
            "http://192.0.2.1:9/hook",
            "http://203.0.113.5/",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
            "http://[2001:db8::1]/",
            "http://[2606:4700::1111]/",
            "http://[2002:808:808::]/",
            "http://[::ffff:8.8.8.8]/",
        ] {
            assert!(d.check_url(url).is_ok(), "{url}");
        }
        // At send time a name is left to the resolver, `localhost` included.
        assert!(d.check_send_url("http://localhost:8080/").is_ok());
        assert_eq!(
            d.check_send_url("http://2130706433/").err(),
            Some(UrlRefusal::Forbidden)
        );
        // What is stored and sent is the normalised form.
        assert_eq!(
            d.check_url("HTTP://Hooks.Example.COM").unwrap().as_str(),
            "http://hooks.example.com/"
        );
    }

    #[test]
    fn credentials_schemes_and_junk_are_refused() {
        let d = strict();
        for url in [
            "http://user:pass@hooks.example.com/",
            "http://user@hooks.example.com/",
            "http://:pass@hooks.example.com/",
        ] {
            assert_eq!(
                d.check_url(url).err(),
                Some(UrlRefusal::Credentials),
                "{url}"
            );
        }
        for url in [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "http://",
            "not a url",
            "http://exa mple.com/",
            "http://example.com/\u{0}",
        ] {
            assert!(
                matches!(d.check_url(url), Err(UrlRefusal::Invalid(_))),
                "{url}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert!(matches!(d.check_url(&long), Err(UrlRefusal::Invalid(_))));
    }

    #[test]
    fn the_operator_can_permit_ranges_or_everything() {
        let allowed =
            IpAllowlist::from_entries(&["127.0.0.0/8".into(), "fd00::/8".into()], "x").unwrap();
        let d = Destinations::new(false, allowed);
        for url in [
            "http://127.0.0.1:9/",
            "http://2130706433/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost/",
            "http://[fd12::1]/",
        ] {
            assert!(d.check_url(url).is_ok(), "{url}");
        }
        for url in ["http://10.0.0.1/", "http://[::1]/", "http://[fc00::1]/"] {
            assert_eq!(d.check_url(url).err(), Some(UrlRefusal::Forbidden), "{url}");
        }
        let open = Destinations::new(true, IpAllowlist::default());
        assert!(open.check_url("http://169.254.169.254/").is_ok());
    }
}

#[cfg(test)]
mod resolver_tests {
    use std::str::FromStr;

    use super::*;

    async fn resolve(policy: Destinations, host: &str) -> Result<Vec<SocketAddr>, String> {
        let r = CheckedResolver::new(Arc::new(policy));
        match r.resolve(Name::from_str(host).unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn names_resolving_inside_are_refused_and_only_permitted_addresses_kept() {
        let refused = resolve(Destinations::default(), "localhost").await;
        assert_eq!(refused, Err(DestinationForbidden.to_string()));
        let v4_only = IpAllowlist::from_entries(&["127.0.0.0/8".into()], "x").unwrap();
        let kept = resolve(Destinations::new(false, v4_only), "localhost")
            .await
            .unwrap();
        assert!(!kept.is_empty());
        assert!(
            kept.iter()
                .all(|a| a.ip().is_ipv4() && a.ip().is_loopback()),
            "{kept:?}"
        );
    }
}

//! IP allowlists: sets of addresses and CIDR ranges, parsed from what users type.
//!
//! An allowlist is set on a workspace, a role or a token (DESIGN §3 step 6), and the check runs
//! on every request, so [`IpAllowlist::contains`] binary-searches precomputed, merged ranges
//! (O(log n), fine for thousands of CIDRs) instead of scanning the entries.
//!
//! Canonical form, so that stored data round-trips and equal lists compare equal:
//! - a range keeps its prefix and has its host bits cleared (`10.1.2.3/8` → `10.0.0.0/8`), as
//!   GitHub and Cloudflare do; a single address becomes `/32` or `/128`;
//! - IPv4-mapped IPv6 (`::ffff:1.2.3.4`, `::ffff:10.0.0.0/104`) is IPv4, both when stored and
//!   when checked: it is how an IPv4 client appears on a dual-stack socket. IPv4 and IPv6 are
//!   otherwise separate families: even `::/0` never admits an IPv4 client;
//! - entries are de-duplicated and sorted (IPv4 first, then by address, then by prefix). An entry
//!   inside another one is *kept* in [`IpAllowlist::entries`], so users still see what they
//!   typed; only the lookup table merges it away.
//!
//! An empty allowlist allows nothing: whether "no entries" means "no restriction" is the
//! caller's decision (store `Option<IpAllowlist>`, or check [`IpAllowlist::is_empty`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Most entries an allowlist may hold.
pub const MAX_ENTRIES: usize = 10_000;
/// Longer than any valid entry (`ffff:…:255.255.255.255/128` is 49 bytes); refused unparsed.
const MAX_ENTRY_LEN: usize = 64;

/// A set of IPv4/IPv6 addresses and CIDR ranges. See the module docs for the canonical form.
///
/// Most lists are empty (no restriction), and every cached token holds four: an empty list is
/// one null pointer, a clone of a non-empty one shares it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpAllowlist {
    /// `None` when empty.
    lists: Option<std::sync::Arc<Lists>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Lists {
    /// Canonical text, for display and storage.
    entries: Vec<String>,
    /// Sorted, merged, non-overlapping inclusive ranges, for lookup.
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

static EMPTY: Lists = Lists {
    entries: Vec::new(),
    v4: Vec::new(),
    v6: Vec::new(),
};

/// One parsed entry: network address (host bits cleared) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Net {
    V4(u32, u8),
    V6(u128, u8),
}

impl IpAllowlist {
    /// Parses a list as users type it: one entry per line, or comma-separated, or both. Spaces
    /// around entries and blank lines are ignored; an empty entry between or around commas
    /// (`a,,b`, `, a`, `a,`) is refused, as it is most likely a paste gone wrong.
    pub fn parse_input(input: &str, field: &str) -> Result<Self, DomainError> {
        let mut nets = Vec::new();
        let mut number = 0usize;
        for line in input.lines().filter(|l| !l.trim().is_empty()) {
            for piece in line.split(',') {
                number += 1;
                nets.push(parse_entry(piece.trim(), number, field, field)?);
            }
        }
        Ok(Self::build(nets))
    }

    /// Builds an allowlist from a JSON array of entries; a refusal names `field[index]`.
    pub fn from_entries(entries: &[String], field: &str) -> Result<Self, DomainError> {
        if entries.len() > MAX_ENTRIES {
            return Err(too_many(field));
        }
        let mut nets = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let path = format!("{field}[{i}]");
            nets.push(parse_entry(entry.trim(), i + 1, field, &path)?);
        }
        Ok(Self::build(nets))
    }

    /// Whether `ip` is in one of the ranges. IPv4-mapped IPv6 is checked as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical_ip(ip) {
            IpAddr::V4(a) => in_ranges(&self.l().v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.l().v6, u128::from(a)),
        }
    }

    /// The canonical entries, sorted, e.g. `["10.0.0.0/8", "2001:db8::/32"]`.
    pub fn entries(&self) -> &[String] {
        &self.l().entries
    }

    /// Whether the list has no entries (and so allows nothing).
    pub fn is_empty(&self) -> bool {
        self.l().entries.is_empty()
    }

    /// Number of canonical entries.
    pub fn len(&self) -> usize {
        self.l().entries.len()
    }

    /// Whether every address this list allows, `other` allows too (an empty list allows
    /// nothing, so it is a subset of every list). Both sides are sorted, merged ranges, so one
    /// linear pass per family decides.
    pub fn is_subset_of(&self, other: &IpAllowlist) -> bool {
        ranges_within(&self.l().v4, &other.l().v4) && ranges_within(&self.l().v6, &other.l().v6)
    }

    /// The addresses both lists allow, as a list of its own (entries: the smallest set of CIDR
    /// ranges covering exactly the intersection). Linear in the two lists' lengths.
    pub fn intersection(&self, other: &IpAllowlist) -> IpAllowlist {
        let mut nets = Vec::new();
        for (start, end) in intersect_ranges(&self.l().v4, &other.l().v4) {
            cover(u128::from(start), u128::from(end), 32, &mut nets);
        }
        for (start, end) in intersect_ranges(&self.l().v6, &other.l().v6) {
            cover(start, end, 128, &mut nets);
        }
        Self::build(nets)
    }

    fn build(mut nets: Vec<Net>) -> Self {
        nets.sort_unstable();
        nets.dedup();
        if nets.is_empty() {
            return Self::default();
        }
        let mut list = Lists {
            entries: nets.iter().map(ToString::to_string).collect(),
            v4: Vec::new(),
            v6: Vec::new(),
        };
        // Sorted by network then prefix, so range starts ascend: one merging pass suffices.
        for net in nets {
            match net {
                Net::V4(n, p) => push_merged(&mut list.v4, n, n | !mask32(p)),
                Net::V6(n, p) => push_merged(&mut list.v6, n, n | !mask128(p)),
            }
        }
        Self {
            lists: Some(std::sync::Arc::new(list)),
        }
    }

    fn l(&self) -> &Lists {
        self.lists.as_deref().unwrap_or(&EMPTY)
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Net::V4(n, p) => write!(f, "{}/{p}", Ipv4Addr::from(n)),
            Net::V6(n, p) => write!(f, "{}/{p}", Ipv6Addr::from(n)),
        }
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

fn push_merged<T: Copy + Ord + Saturating>(ranges: &mut Vec<(T, T)>, start: T, end: T) {
    match ranges.last_mut() {
        // Overlapping or adjacent (`last.end + 1 == start`): extend instead of adding.
        Some(last) if start <= last.1.saturating_inc() => last.1 = last.1.max(end),
        _ => ranges.push((start, end)),
    }
}

fn in_ranges<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    let after = ranges.partition_point(|&(start, _)| start <= x);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, end)| x <= end)
}

/// Whether each range of `inner` lies inside one range of `outer`. Both are sorted, merged
/// and non-adjacent, so a range of `inner` can only fit in a single range of `outer`.
fn ranges_within<T: Copy + Ord>(inner: &[(T, T)], outer: &[(T, T)]) -> bool {
    let mut j = 0;
    inner.iter().all(|&(start, end)| {
        while outer.get(j).is_some_and(|&(_, o_end)| o_end < start) {
            j += 1;
        }
        outer
            .get(j)
            .is_some_and(|&(o_start, o_end)| o_start <= start && end <= o_end)
    })
}

/// The overlaps of two sorted, merged range lists, sorted.
fn intersect_ranges<T: Copy + Ord>(a: &[(T, T)], b: &[(T, T)]) -> Vec<(T, T)> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while let (Some(&(a_start, a_end)), Some(&(b_start, b_end))) = (a.get(i), b.get(j)) {
        let (start, end) = (a_start.max(b_start), a_end.min(b_end));
        if start <= end {
            out.push((start, end));
        }
        if a_end < b_end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Appends the fewest CIDR blocks covering exactly `start..=end` of a `bits`-bit family
/// (32 for IPv4, whose values fit in the low bits; 128 for IPv6).
fn cover(mut start: u128, end: u128, bits: u32, nets: &mut Vec<Net>) {
    loop {
        // The largest aligned block at `start` that does not pass `end`.
        let mut size_log = start.trailing_zeros().min(bits);
        while size_log > 0 && block_end(start, size_log).is_none_or(|e| e > end) {
            size_log -= 1;
        }
        let prefix = (bits - size_log) as u8;
        nets.push(if bits == 32 {
            // Within the IPv4 range, so the cast is exact.
            Net::V4(start as u32, prefix)
        } else {
            Net::V6(start, prefix)
        });
        match block_end(start, size_log) {
            Some(last) if last < end => start = last + 1,
            _ => return,
        }
    }
}

/// The last address of the block of `2^size_log` addresses starting at `start`; `None` when
/// it would pass `u128::MAX` (only the whole IPv6 space, which ends exactly there).
fn block_end(start: u128, size_log: u32) -> Option<u128> {
    match 1u128.checked_shl(size_log) {
        Some(size) => start.checked_add(size - 1),
        None => start.checked_add(u128::MAX),
    }
}

/// `+ 1` that stops at the maximum, for the adjacency test.
trait Saturating {
    fn saturating_inc(self) -> Self;
}

impl Saturating for u32 {
    fn saturating_inc(self) -> Self {
        self.saturating_add(1)
    }
}

impl Saturating for u128 {
    fn saturating_inc(self) -> Self {
        self.saturating_add(1)
    }
}

/// Parses one trimmed entry; `number` is 1-based, `path` is the field the error names.
fn parse_entry(entry: &str, number: usize, field: &str, path: &str) -> Result<Net, DomainError> {
    if number > MAX_ENTRIES {
        return Err(too_many(field));
    }
    if entry.is_empty() {
        return Err(DomainError::field(
            "INVALID_IP_ENTRY",
            path,
            format!("entry {number} is empty (two commas in a row, or a comma at the start or end of a line)"),
        ));
    }
    // The entry itself is not repeated: a secret pasted into the wrong field would be sent
    // back (and land in logs); its number and the reason locate it.
    parse_net(entry).map_err(|reason| {
        DomainError::field(
            "INVALID_IP_ENTRY",
            path,
            format!("entry {number} is not an IP address or CIDR range: {reason}"),
        )
    })
}

fn parse_net(entry: &str) -> Result<Net, &'static str> {
    if entry.len() > MAX_ENTRY_LEN {
        return Err("it is too long");
    }
    let (addr, prefix) = match entry.split_once('/') {
        Some(("", _)) => return Err("the address before '/' is missing"),
        Some((_, "")) => return Err("the prefix length after '/' is missing"),
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| "not a valid IPv4 or IPv6 address")?;
    let prefix = match prefix {
        // Digits only: `from_str` would also take `+8`. Too many digits is simply too large.
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u32>().unwrap_or(u32::MAX),
        Some(_) => return Err("the prefix length must be a whole number"),
        None if addr.is_ipv4() => 32,
        None => 128,
    };
    match addr {
        IpAddr::V4(a) => match prefix {
            // In range, so the cast is exact.
            p @ 0..=32 => Ok(Net::V4(u32::from(a) & mask32(p as u8), p as u8)),
            _ => Err("prefix length must be at most 32"),
        },
        IpAddr::V6(a) => match prefix {
            p @ 0..=128 => {
                let p = p as u8;
                let net = u128::from(a) & mask128(p);
                // Inside ::ffff:0:0/96, the range is an IPv4 range in disguise.
                match Ipv6Addr::from(net).to_ipv4_mapped() {
                    Some(v4) if p >= 96 => Ok(Net::V4(u32::from(v4), p - 96)),
                    _ => Ok(Net::V6(net, p)),
                }
            }
            _ => Err("prefix length must be at most 128"),
        },
    }
}

fn too_many(field: &str) -> DomainError {
    DomainError::field(
        "TOO_MANY_ENTRIES",
        field,
        format!("an IP allowlist may hold at most {MAX_ENTRIES} entries"),
    )
}

impl Serialize for IpAllowlist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.l().entries.serialize(s)
    }
}

impl<'de> Deserialize<'de> for IpAllowlist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        Self::from_entries(&entries, "ip_allowlist").map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> IpAllowlist {
        IpAllowlist::parse_input(s, "ip_allowlist").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_lines_commas_mixed_and_spaces() {
        let want = ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"];
        for input in [
            "10.0.0.1\n10.0.0.2\n10.0.0.3",
            "10.0.0.1,10.0.0.2,10.0.0.3",
            "10.0.0.1, 10.0.0.2\n10.0.0.3\n",
            "  10.0.0.3 \r\n\n\t10.0.0.1 ,  10.0.0.2\n   \n",
        ] {
            assert_eq!(parse(input).entries(), want, "{input:?}");
        }
        assert!(parse("").is_empty());
        assert!(parse(" \n\n ").is_empty());
    }

    #[test]
    fn canonicalises_ipv6_mapped_and_host_bits() {
        let list = parse(
            "2001:0db8:0000::/32, 2001:DB8::1, ::ffff:1.2.3.4, ::ffff:10.9.8.7/104, \
             10.1.2.3/8, 192.168.1.7, ::1, ::ffff:0:0/95, 0.0.0.0/0",
        );
        assert_eq!(
            list.entries(),
            [
                "0.0.0.0/0",
                "1.2.3.4/32",
                "10.0.0.0/8",
                "192.168.1.7/32",
                "::1/128",
                "::fffe:0:0/95",
                "2001:db8::/32",
                "2001:db8::1/128",
            ]
        );
    }

    #[test]
    fn dedups_and_keeps_contained_entries() {
        let list = parse("10.0.0.0/8\n10.1.0.0/16, 10.255.255.255/8\n10.0.0.0/8");
        assert_eq!(list.entries(), ["10.0.0.0/8", "10.1.0.0/16"]);
        assert_eq!(list.len(), 2);
        assert_eq!(list.l().v4, [(0x0a00_0000, 0x0aff_ffff)]);
        // Adjacent ranges merge too.
        assert_eq!(parse("10.0.0.0/9, 10.128.0.0/9").l().v4.len(), 1);
    }

    #[test]
    fn refuses_bad_entries_naming_number_never_text() {
        for (input, n, text) in [
            ("10.0.0.1\n10.0.0.0/33", 2, "10.0.0.0/33"),
            ("1.2.3", 1, "1.2.3"),
            ("10.0.0.1, ::g", 2, "::g"),
            ("10.0.0.1/", 1, "10.0.0.1/"),
            ("/8", 1, "/8"),
            ("10.0.0.1/-1", 1, "10.0.0.1/-1"),
            ("10.0.0.1/+8", 1, "10.0.0.1/+8"),
            ("a\nb", 1, "a"),
            ("1.2.3.4.5", 1, "1.2.3.4.5"),
            ("::/129", 1, "::/129"),
            ("1.2.3.4/99999999999", 1, "1.2.3.4/99999999999"),
            ("[::1]", 1, "[::1]"),
            ("fe80::1%eth0", 1, "fe80::1%eth0"),
        ] {
            let e = IpAllowlist::parse_input(input, "ip_allowlist").unwrap_err();
            assert_eq!(e.code, "INVALID_IP_ENTRY", "{input:?}");
            assert_eq!(e.field.as_deref(), Some("ip_allowlist"));
            let prefix = format!("entry {n} is not an IP address or CIDR range: ");
            assert!(e.message.starts_with(&prefix), "{input:?}: {}", e.message);
            // (One-letter texts occur in any sentence.)
            assert!(
                text.len() < 3 || !e.message.contains(text),
                "{input:?}: {}",
                e.message
            );
        }
        let e = IpAllowlist::parse_input("10.0.0.0/33", "f").unwrap_err();
        assert_eq!(
            e.message,
            "entry 1 is not an IP address or CIDR range: prefix length must be at most 32"
        );
        let e = IpAllowlist::parse_input("10.0.0.1\nkw_s3cr3tS3cr3t", "f").unwrap_err();
        assert!(!e.message.contains("s3cr3t"), "{}", e.message);
        let long = "1".repeat(500);
        let e = IpAllowlist::parse_input(&long, "f").unwrap_err();
        assert!(e.message.len() < 200, "{}", e.message);
    }

    #[test]
    fn refuses_empty_entries_around_commas() {
        for (input, n) in [
            ("10.0.0.1,,10.0.0.2", 2),
            (", 10.0.0.1", 1),
            ("10.0.0.1,", 2),
            ("10.0.0.1\n , 10.0.0.2", 2),
        ] {
            let e = IpAllowlist::parse_input(input, "ip_allowlist").unwrap_err();
            assert_eq!(e.code, "INVALID_IP_ENTRY");
            assert!(
                e.message.starts_with(&format!("entry {n} is empty")),
                "{input:?}"
            );
        }
    }

    #[test]
    fn caps_the_number_of_entries() {
        let ok = vec!["10.0.0.1"; MAX_ENTRIES].join("\n");
        assert_eq!(parse(&ok).len(), 1);
        let e = IpAllowlist::parse_input(&format!("{ok},10.0.0.2"), "x").unwrap_err();
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("TOO_MANY_ENTRIES", Some("x"))
        );
        let many = vec!["10.0.0.1".to_owned(); MAX_ENTRIES + 1];
        let e = IpAllowlist::from_entries(&many, "x").unwrap_err();
        assert_eq!(e.code, "TOO_MANY_ENTRIES");
    }

    #[test]
    fn from_entries_names_the_index_and_serde_round_trips() {
        let entries: Vec<String> = ["10.0.0.0/8", "10.0.0.1", "::1", "nope"]
            .map(String::from)
            .to_vec();
        let e = IpAllowlist::from_entries(&entries, "ip_allowlist").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ip_allowlist[3]"));
        assert!(e.message.starts_with("entry 4 is not"), "{}", e.message);
        assert!(!e.message.contains("nope"), "{}", e.message);

        let list = parse("2001:db8::/32\n10.1.2.3/8, 192.168.1.7");
        let json = serde_json::to_string(&list).unwrap();
        assert_eq!(json, r#"["10.0.0.0/8","192.168.1.7/32","2001:db8::/32"]"#);
        assert_eq!(serde_json::from_str::<IpAllowlist>(&json).unwrap(), list);
        assert!(serde_json::from_str::<IpAllowlist>(r#"["1.2.3"]"#).is_err());
    }

    #[test]
    fn contains_at_range_edges() {
        let list = parse("10.0.0.0/8, 192.168.1.7, 2001:db8::/32, 0.0.0.0/32, 255.255.255.255");
        for (addr, want) in [
            ("10.0.0.0", true),
            ("10.255.255.255", true),
            ("9.255.255.255", false),
            ("11.0.0.0", false),
            ("192.168.1.7", true),
            ("192.168.1.6", false),
            ("192.168.1.8", false),
            ("0.0.0.0", true),
            ("0.0.0.1", false),
            ("255.255.255.255", true),
            ("255.255.255.254", false),
            ("2001:db8::", true),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:db9::", false),
            ("::ffff:10.1.2.3", true),
            ("::ffff:11.1.2.3", false),
        ] {
            assert_eq!(list.contains(ip(addr)), want, "{addr}");
        }
        assert!(!IpAllowlist::default().contains(ip("10.0.0.1")));
    }

    #[test]
    fn families_stay_apart() {
        let v6_all = parse("::/0");
        assert!(v6_all.contains(ip("2001:db8::1")));
        assert!(!v6_all.contains(ip("10.0.0.1")));
        assert!(!v6_all.contains(ip("::ffff:10.0.0.1")));
        let v4_all = parse("0.0.0.0/0");
        assert!(v4_all.contains(ip("::ffff:10.0.0.1")));
        assert!(!v4_all.contains(ip("::1")));
        // `::a00:1` is not IPv4-mapped: it stays IPv6.
        assert!(!parse("10.0.0.1").contains(ip("::a00:1")));
        assert!(parse("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
    }

    #[test]
    fn subset_of_ranges_in_both_families() {
        let wide = parse("10.0.0.0/8, 192.168.0.0/16, 2001:db8::/32");
        for (inner, want) in [
            ("10.1.0.0/16", true),
            ("10.0.0.0/8, 192.168.3.4", true),
            ("2001:db8:1::/48", true),
            ("", true),
            ("10.0.0.0/7", false),
            ("11.0.0.1", false),
            ("10.1.0.0/16, 172.16.0.0/12", false),
            ("2001:db9::1", false),
            ("::/0", false),
            // IPv4-mapped IPv6 is IPv4.
            ("::ffff:10.1.2.3", true),
        ] {
            assert_eq!(parse(inner).is_subset_of(&wide), want, "{inner:?}");
        }
        // Adjacent ranges merge, so a range spanning both halves still fits.
        assert!(parse("10.0.0.0/8").is_subset_of(&parse("10.0.0.0/9, 10.128.0.0/9")));
        assert!(!parse("10.0.0.0/8").is_subset_of(&parse("10.0.0.0/9, 10.129.0.0/16")));
        assert!(parse("0.0.0.0/0, ::/0").is_subset_of(&parse("0.0.0.0/0, ::/0")));
        assert!(!wide.is_subset_of(&IpAllowlist::default()));
    }

    #[test]
    fn intersection_is_exact_and_canonical() {
        let a = parse("10.0.0.0/8, 192.168.1.0/24, 2001:db8::/32");
        let b = parse("10.1.0.0/16, 10.200.0.0/16, 192.168.0.0/16, ::/0");
        assert_eq!(
            a.intersection(&b).entries(),
            [
                "10.1.0.0/16",
                "10.200.0.0/16",
                "192.168.1.0/24",
                "2001:db8::/32"
            ]
        );
        assert!(a.intersection(&parse("172.16.0.0/12")).is_empty());
        assert!(a.intersection(&IpAllowlist::default()).is_empty());
        // A range that is not one CIDR block is covered by the fewest blocks.
        let r = parse("10.0.0.0/31, 10.0.0.2/32").intersection(&parse("10.0.0.1, 10.0.0.2"));
        assert_eq!(r.entries(), ["10.0.0.1/32", "10.0.0.2/32"]);
        let all = parse("0.0.0.0/0, ::/0");
        assert_eq!(all.intersection(&all).entries(), ["0.0.0.0/0", "::/0"]);
    }

    #[test]
    fn subset_and_intersection_agree_with_probing() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..100 {
            let mut list = |n: u64| {
                let entries: Vec<String> = (0..1 + next() % n)
                    .map(|_| {
                        let (hi, lo) = (next(), next());
                        // Addresses in 10.0.0.0/16 and prefixes 16-32, so lists overlap often.
                        let a = Ipv4Addr::from(0x0a00_0000 | (hi as u32 & 0xffff));
                        format!("{a}/{}", 16 + lo % 17)
                    })
                    .collect();
                parse(&entries.join(","))
            };
            let (a, b) = (list(4), list(8));
            let both = a.intersection(&b);
            let mut a_in_b = true;
            for host in 0..=0xffff_u32 {
                let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | host));
                assert_eq!(both.contains(ip), a.contains(ip) && b.contains(ip), "{ip}");
                a_in_b &= !a.contains(ip) || b.contains(ip);
            }
            assert_eq!(
                a.is_subset_of(&b),
                a_in_b,
                "{:?} in {:?}",
                a.entries(),
                b.entries()
            );
            assert!(both.is_subset_of(&a) && both.is_subset_of(&b));
        }
    }

    #[test]
    fn contains_agrees_with_a_linear_scan_on_2000_cidrs() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut input = Vec::new();
        for i in 0..2_000 {
            let (hi, lo) = (next(), next());
            if i % 2 == 0 {
                let a = Ipv4Addr::from((hi >> 32) as u32);
                input.push(format!("{a}/{}", 8 + lo % 25));
            } else {
                let a = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
                input.push(format!("{a}/{}", 16 + lo % 113));
            }
        }
        let list = parse(&input.join("\n"));
        let nets: Vec<Net> = input.iter().map(|e| parse_net(e).unwrap()).collect();
        let naive = |addr: IpAddr| {
            nets.iter().any(|net| match (*net, canonical_ip(addr)) {
                (Net::V4(n, p), IpAddr::V4(a)) => u32::from(a) & mask32(p) == n,
                (Net::V6(n, p), IpAddr::V6(a)) => u128::from(a) & mask128(p) == n,
                _ => false,
            })
        };
        let mut hits = 0;
        for i in 0..10_000 {
            let (hi, lo) = (next(), next());
            // Bias half the probes into listed ranges' neighbourhoods, or nearly all would miss.
            let addr = match (i % 4, nets[(lo % 2_000) as usize]) {
                (0, Net::V4(n, _)) => IpAddr::V4(Ipv4Addr::from(n ^ (hi as u32 & 0xffff))),
                (1, Net::V6(n, _)) => IpAddr::V6(Ipv6Addr::from(n ^ u128::from(hi))),
                (2, _) => IpAddr::V4(Ipv4Addr::from(hi as u32)),
                _ => IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo))),
            };
            let want = naive(addr);
            hits += usize::from(want);
            assert_eq!(list.contains(addr), want, "{addr}");
        }
        assert!(hits > 1_000, "only {hits} probes hit");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn entry() -> impl Strategy<Value = String> {
            prop_oneof![
                (any::<[u8; 4]>(), 0u8..=32)
                    .prop_map(|(a, p)| format!("{}/{p}", Ipv4Addr::from(a))),
                any::<[u8; 4]>().prop_map(|a| Ipv4Addr::from(a).to_string()),
                (any::<[u8; 16]>(), 0u8..=128)
                    .prop_map(|(a, p)| format!("{}/{p}", Ipv6Addr::from(a))),
                any::<[u8; 16]>().prop_map(|a| Ipv6Addr::from(a).to_string()),
                any::<[u8; 4]>().prop_map(|a| format!("::ffff:{}", Ipv4Addr::from(a))),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn no_input_panics(text in "\\PC{0,80}", raw in "[0-9a-f:./, \n]{0,80}") {
                let _ = IpAllowlist::parse_input(&text, "f");
                let _ = IpAllowlist::parse_input(&raw, "f");
                let _ = IpAllowlist::from_entries(&[text, raw], "f");
            }

            #[test]
            fn canonical_output_re_parses_to_the_same_list(
                entries in proptest::collection::vec(entry(), 0..20),
            ) {
                let list = IpAllowlist::from_entries(&entries, "f").unwrap();
                let again = IpAllowlist::from_entries(list.entries(), "f").unwrap();
                prop_assert_eq!(&again, &list);
                let text = IpAllowlist::parse_input(&list.entries().join(", "), "f").unwrap();
                prop_assert_eq!(&text, &list);
                // Typed either way, the same list.
                let typed = IpAllowlist::parse_input(&entries.join("\n"), "f").unwrap();
                prop_assert_eq!(&typed, &list);
            }
        }
    }
}

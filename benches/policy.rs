//! Benchmarks of the per-request policy checks that run on every verified request: the IP
//! allowlist lookup (which must stay O(log n) for lists of thousands of ranges) and the GCRA
//! rate-limit step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use keyward_core::ip::IpAllowlist;
use keyward_core::ratelimit::{check, Quota};

/// Deterministic pseudo-random numbers (xorshift64), so runs are comparable.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// 1,000 CIDRs, half IPv4 (/16–/32), half IPv6 (/32–/128), as users would paste them.
fn allowlist() -> IpAllowlist {
    let mut s = 0x2545_f491_4f6c_dd1d_u64;
    let lines: Vec<String> = (0..1_000)
        .map(|i| {
            let (hi, lo) = (xorshift(&mut s), xorshift(&mut s));
            if i % 2 == 0 {
                format!("{}/{}", Ipv4Addr::from((hi >> 32) as u32), 16 + lo % 17)
            } else {
                let a = Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo));
                format!("{a}/{}", 32 + lo % 97)
            }
        })
        .collect();
    IpAllowlist::parse_input(&lines.join("\n"), "ip_allowlist").unwrap()
}

fn bench_ip(c: &mut Criterion) {
    let list = allowlist();
    let first = list.entries()[0].split('/').next().unwrap();
    let hit: IpAddr = first.parse().unwrap();
    let miss_v4 = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
    let miss_v6: IpAddr = "2001:db8::1".parse().unwrap();
    let mapped: IpAddr = format!("::ffff:{first}").parse().unwrap();
    assert!(list.contains(hit) && list.contains(mapped));

    c.bench_function("ip_allowlist_contains_1000_v4_hit", |b| {
        b.iter(|| list.contains(black_box(hit)))
    });
    c.bench_function("ip_allowlist_contains_1000_v4_miss", |b| {
        b.iter(|| list.contains(black_box(miss_v4)))
    });
    c.bench_function("ip_allowlist_contains_1000_v6_miss", |b| {
        b.iter(|| list.contains(black_box(miss_v6)))
    });
    c.bench_function("ip_allowlist_contains_1000_v4_mapped", |b| {
        b.iter(|| list.contains(black_box(mapped)))
    });
    let text: Vec<String> = list.entries().to_vec();
    c.bench_function("ip_allowlist_from_entries_1000", |b| {
        b.iter(|| IpAllowlist::from_entries(black_box(&text), "ip_allowlist").unwrap())
    });
}

fn bench_ratelimit(c: &mut Criterion) {
    let quota = Quota::new(150, 60).unwrap();
    let now = 1_767_225_600_000_000_000_i64;
    // Allowed: a key partway through its quota.
    let tat = Some(now + 20 * 400_000_000);
    c.bench_function("ratelimit_check_allowed", |b| {
        b.iter(|| check(black_box(&quota), black_box(tat), black_box(now)))
    });
    // Refused: a key that spent its whole quota.
    let spent = Some(now + 150 * 400_000_000);
    c.bench_function("ratelimit_check_refused", |b| {
        b.iter(|| check(black_box(&quota), black_box(spent), black_box(now)))
    });
}

criterion_group!(benches, bench_ip, bench_ratelimit);
criterion_main!(benches);

use super::*;
use chrono::TimeZone;
use rand_core::OsRng;

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + s, 0).unwrap()
}

struct Ids {
    ws: WorkspaceId,
    tok: TokenId,
    owner: UserId,
}

fn ids() -> Ids {
    Ids {
        ws: WorkspaceId::random(&mut OsRng),
        tok: TokenId::random(&mut OsRng),
        owner: UserId::random(&mut OsRng),
    }
}

fn denial<'a>(i: &Ids, code: Code, ip: &str, perm: Option<&'a str>) -> Denial<'a> {
    Denial {
        workspace: i.ws,
        token: i.tok,
        owner: i.owner,
        code,
        refused_by: (code == Code::IpNotAllowed).then_some(IpLevel::Token),
        ip: Some(ip.parse().unwrap()),
        missing_permission: perm,
    }
}

fn total(p: &[Pending]) -> u64 {
    p.iter().map(|p| p.tally.count).sum()
}

#[test]
fn one_key_per_code_level_source_and_permission() {
    let i = ids();
    let mut t = Tallies::new(100, 100);
    for s in 0..5 {
        t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(s));
    }
    t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.2", None), at(9));
    t.add(&denial(&i, Code::RateLimited, "10.0.0.1", None), at(1));
    t.add(
        &denial(
            &i,
            Code::InsufficientPermissions,
            "10.0.0.1",
            Some("a:read"),
        ),
        at(2),
    );
    t.add(
        &denial(
            &i,
            Code::InsufficientPermissions,
            "10.0.0.1",
            Some("a:read"),
        ),
        at(3),
    );
    t.add(
        &denial(
            &i,
            Code::InsufficientPermissions,
            "10.0.0.1",
            Some("b:read"),
        ),
        at(4),
    );
    assert_eq!(t.len(), 5);
    let p = t.take();
    assert!(t.is_empty());
    assert_eq!(p.len(), 5);
    assert_eq!(total(&p), 10);
    let first = &p[0];
    assert_eq!((first.code, first.tally.count), (Code::IpNotAllowed, 5));
    assert_eq!((first.tally.first_at, first.tally.last_at), (at(0), at(4)));
    let perms: Vec<_> = p
        .iter()
        .filter_map(|p| p.detail.as_ref()?.missing_permission.clone())
        .collect();
    assert_eq!(perms, ["a:read", "b:read"]);
    assert!(p.iter().all(|p| p.detail.is_some()));
}

#[test]
fn beyond_the_bound_keys_fold_into_one_overflow_key_per_workspace_and_code() {
    let (i, j) = (ids(), ids());
    let mut t = Tallies::new(3, 3);
    for n in 1..=10 {
        let ip = format!("10.0.0.{n}");
        t.add(&denial(&i, Code::IpNotAllowed, &ip, None), at(n));
        t.add(&denial(&i, Code::IpNotAllowed, &ip, None), at(n));
    }
    t.add(&denial(&j, Code::RateLimited, "10.0.0.1", None), at(20));
    // A known key still counts in detail.
    t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(21));
    assert_eq!(t.len(), 5);
    let p = t.take();
    assert_eq!(total(&p), 22);
    let over: Vec<_> = p.iter().filter(|p| p.detail.is_none()).collect();
    assert_eq!(over.len(), 2);
    let mine = over.iter().find(|p| p.workspace == i.ws).unwrap();
    assert_eq!((mine.code, mine.tally.count), (Code::IpNotAllowed, 14));
    assert_eq!((mine.tally.first_at, mine.tally.last_at), (at(4), at(10)));
    let d = drafts(&p, at(60));
    let o = d.iter().find(|d| d.target_kind == "workspace").unwrap();
    assert_eq!(o.actor, Actor::SYSTEM);
    let after: serde_json::Value = serde_json::from_str(o.after.as_deref().unwrap()).unwrap();
    assert_eq!(after["overflow"], true);
    assert!(after.get("refused_by").is_none() && o.ip.is_none());
}

#[test]
fn a_failed_flush_merges_back_with_what_came_meanwhile() {
    let i = ids();
    let mut t = Tallies::new(2, 2);
    t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(5));
    t.add(&denial(&i, Code::RateLimited, "10.0.0.1", None), at(5));
    t.add(&denial(&i, Code::RateLimited, "10.0.0.9", None), at(5)); // overflow
    let taken = t.take();
    t.add(&denial(&i, Code::IpNotAllowed, "10.0.0.1", None), at(1));
    t.add(&denial(&i, Code::InternalOnly, "10.0.0.1", None), at(7));
    t.merge_back(taken);
    let p = t.take();
    assert_eq!(total(&p), 5);
    let ip = p.iter().find(|p| p.code == Code::IpNotAllowed).unwrap();
    assert_eq!(ip.tally.count, 2);
    assert_eq!((ip.tally.first_at, ip.tally.last_at), (at(1), at(5)));
    // Two detailed keys fit; the rate-limited key merged back found no room.
    let over: u64 = p
        .iter()
        .filter(|p| p.detail.is_none())
        .map(|p| p.tally.count)
        .sum();
    assert_eq!(over, 2);
}

#[test]
fn a_draft_is_the_token_acting_on_itself_with_the_count() {
    let i = ids();
    let mut t = Tallies::new(10, 10);
    let d = denial(
        &i,
        Code::InsufficientPermissions,
        "10.0.0.1",
        Some("a:write"),
    );
    t.add(&d, at(1));
    t.add(&d, at(2));
    let drafts = drafts(&t.take(), at(60));
    assert_eq!(drafts.len(), 1);
    let e = &drafts[0];
    assert_eq!(e.actor, Actor::token(i.tok, i.owner));
    assert_eq!(
        (e.action.as_str(), e.target_kind.as_str()),
        (ACTION, "token")
    );
    assert_eq!(e.target_id, i.tok.to_string());
    assert_eq!((e.count, e.ip.as_deref()), (2, Some("10.0.0.1")));
    let after: serde_json::Value = serde_json::from_str(e.after.as_deref().unwrap()).unwrap();
    assert_eq!(after["code"], "INSUFFICIENT_PERMISSIONS");
    assert_eq!(after["missing_permission"], "a:write");
    assert!(after.get("overflow").is_none());
}

#[test]
fn a_huge_count_is_split_not_cut() {
    let i = ids();
    let p = Pending {
        workspace: i.ws,
        code: Code::RateLimited,
        detail: None,
        tally: Tally {
            count: u64::from(u32::MAX) + 5,
            first_at: at(0),
            last_at: at(1),
        },
    };
    let d = drafts(&[p], at(2));
    assert_eq!(
        d.iter().map(|d| u64::from(d.count)).sum::<u64>(),
        u64::from(u32::MAX) + 5
    );
}

#[test]
fn a_flooding_workspace_folds_only_into_its_own_overflow() {
    let (a, b) = (ids(), ids());
    // Room for 2,000 keys in all, 1,000 per workspace: A's flood of 5,000 distinct sources
    // would take every key under the overall bound alone.
    let mut t = Tallies::new(2_000, 1_000);
    for n in 0..5_000u32 {
        let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
        t.add(&denial(&a, Code::IpNotAllowed, &ip, None), at(1));
    }
    assert_eq!(t.keys_of(a.ws), 1_000);
    t.add(&denial(&b, Code::IpNotAllowed, "192.0.2.1", None), at(2));
    t.add(&denial(&b, Code::IpNotAllowed, "192.0.2.2", None), at(2));
    t.add(&denial(&b, Code::RateLimited, "192.0.2.1", None), at(3));
    t.add(&denial(&b, Code::RateLimited, "192.0.2.1", None), at(4));
    assert_eq!(t.keys_of(b.ws), 3);
    let p = t.take();
    assert_eq!(t.keys_of(a.ws), 0, "a flush frees the workspace's room");
    let of = |ws: WorkspaceId| p.iter().filter(move |p| p.workspace == ws);
    assert_eq!(of(b.ws).count(), 3);
    assert!(of(b.ws).all(|p| p.detail.is_some()));
    assert_eq!(of(b.ws).map(|p| p.tally.count).sum::<u64>(), 4);
    let over: Vec<_> = of(a.ws).filter(|p| p.detail.is_none()).collect();
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].tally.count, 4_000);
    assert_eq!(of(a.ws).map(|p| p.tally.count).sum::<u64>(), 5_000);
}

#[test]
fn the_overall_bound_still_holds_over_many_workspaces() {
    let mut t = Tallies::new(5, 3);
    let all: Vec<Ids> = (0..3).map(|_| ids()).collect();
    for i in &all {
        for n in 1..=3 {
            t.add(
                &denial(i, Code::RateLimited, &format!("10.0.0.{n}"), None),
                at(n),
            );
        }
    }
    let p = t.take();
    assert_eq!(p.iter().filter(|p| p.detail.is_some()).count(), 5);
    assert_eq!(p.iter().map(|p| p.tally.count).sum::<u64>(), 9);
}

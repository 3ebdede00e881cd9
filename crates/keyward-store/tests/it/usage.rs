//! `UsageStore`: batches of raw records, aggregates, each token's last use, and the roll-up
//! that lets counts outlive pruned raw records.

use std::sync::Arc;

use keyward_core::usage::Granularity;
use keyward_core::{Code, Token};
use keyward_store::{Store, UsageBatch, UsageQuery, UsageRecord};

use crate::fixtures::*;

conformance!(
    usage_batches_are_stored_as_sent,
    usage_aggregates_by_bucket_code_address_and_endpoint,
    usage_last_use_keeps_the_latest_request,
    usage_roll_up_and_pruning_keep_the_counts,
    usage_goes_with_its_token,
    usage_large_batches_are_split_into_statements,
    usage_minute_counts_read_back_like_raw_records,
    usage_minute_counts_roll_up_and_go_with_their_token,
);

/// 2026-06-01T00:00:00Z.
const DAY0: i64 = 1_780_272_000_000;
const HOUR: i64 = 3_600_000;

fn rec(
    t: &Token,
    at_ms: i64,
    ip: Option<&str>,
    method: Option<&str>,
    path: Option<&str>,
    code: Code,
) -> UsageRecord {
    UsageRecord {
        at: at(at_ms),
        token_id: t.id,
        workspace_id: t.workspace_id,
        ip: ip.map(|s| s.parse().unwrap()),
        method: method.map(Into::into),
        path: path.map(Into::into),
        code,
        latency_us: 42,
        request_log: true,
    }
}

/// `r` as the usual verify records it: counted in its minute, not kept as a row.
fn counted(mut r: UsageRecord) -> UsageRecord {
    r.request_log = false;
    r
}

/// `r` as `t`'s record.
fn of(t: &Token, mut r: UsageRecord) -> UsageRecord {
    r.token_id = t.id;
    r
}

fn query(t: &Token, from: i64, to: i64, granularity: Granularity) -> UsageQuery {
    UsageQuery {
        workspace_id: t.workspace_id,
        token_id: t.id,
        from: at(from),
        to: at(to),
        granularity,
        top: 20,
    }
}

/// (bucket start in ms, code, count) of an aggregate.
fn cells(a: &keyward_store::UsageAggregate) -> Vec<(i64, String, u64)> {
    a.cells
        .iter()
        .map(|(t, c, n)| (t.timestamp_millis(), c.clone(), *n))
        .collect()
}

fn total(a: &keyward_store::UsageAggregate) -> u64 {
    a.cells.iter().map(|c| c.2).sum()
}

async fn second_token(store: &Arc<dyn Store>, b: &keyward_store::WorkspaceBootstrap) -> Token {
    let t = token(&b.user, "second");
    store.create_token(&t, &ev(&t)).await.unwrap();
    t
}

async fn usage_batches_are_stored_as_sent(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    let mut sent = vec![
        rec(
            t,
            DAY0,
            Some("10.0.0.1"),
            Some("GET"),
            Some("/orders"),
            Code::Valid,
        ),
        rec(t, DAY0 + 1, Some("2001:db8::1"), None, None, Code::Revoked),
        rec(t, DAY0 + 2, None, None, Some("/x"), Code::RateLimited),
    ];
    sent[1].latency_us = 7;
    store.insert_usage(&sent).await.unwrap();
    // An empty batch is fine and changes nothing.
    store.insert_usage(&[]).await.unwrap();

    let mut back = store.recent_usage(t.workspace_id, t.id, 10).await.unwrap();
    assert_eq!(back.len(), 3);
    back.reverse();
    assert_eq!(back, sent, "newest first, every field as sent");
    // The limit is honoured, newest first.
    let newest = store.recent_usage(t.workspace_id, t.id, 1).await.unwrap();
    assert_eq!(newest, vec![sent[2].clone()]);
    // Another workspace's id finds nothing.
    let other = new_workspace(&store, "Other").await;
    assert!(store
        .recent_usage(other.workspace.id, t.id, 10)
        .await
        .unwrap()
        .is_empty());
    let a = store
        .usage(&UsageQuery {
            workspace_id: other.workspace.id,
            ..query(t, DAY0, DAY0 + HOUR, Granularity::Hour)
        })
        .await
        .unwrap();
    assert_eq!(total(&a), 0);
}

async fn usage_aggregates_by_bucket_code_address_and_endpoint(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    let other = second_token(&store, &b).await;
    let v = Code::Valid;
    let mut batch = vec![
        // Hour 0: three requests, two addresses.
        rec(t, DAY0, Some("10.0.0.2"), Some("GET"), Some("/a"), v),
        rec(t, DAY0 + 10, Some("10.0.0.2"), Some("GET"), Some("/a"), v),
        rec(
            t,
            DAY0 + 20,
            Some("10.0.0.1"),
            Some("POST"),
            Some("/a"),
            Code::RateLimited,
        ),
        // Hour 1.
        rec(t, DAY0 + HOUR, Some("10.0.0.1"), None, Some("/b"), v),
        // Hour 5: the last millisecond of the hour.
        rec(
            t,
            DAY0 + 6 * HOUR - 1,
            None,
            Some("GET"),
            None,
            Code::InsufficientPermissions,
        ),
        // Next day.
        rec(
            t,
            DAY0 + 24 * HOUR,
            Some("10.0.0.3"),
            Some("GET"),
            Some("/a"),
            v,
        ),
        // Another token: never counted for `t`.
        rec(&other, DAY0, Some("10.9.9.9"), Some("GET"), Some("/z"), v),
    ];
    // Out of order on purpose: aggregates do not depend on insertion order.
    batch.reverse();
    store.insert_usage(&batch).await.unwrap();

    let a = store
        .usage(&query(t, DAY0, DAY0 + 24 * HOUR, Granularity::Hour))
        .await
        .unwrap();
    assert_eq!(
        cells(&a),
        vec![
            (DAY0, "RATE_LIMITED".into(), 1),
            (DAY0, "VALID".into(), 2),
            (DAY0 + HOUR, "VALID".into(), 1),
            (DAY0 + 5 * HOUR, "INSUFFICIENT_PERMISSIONS".into(), 1),
        ],
        "the next day's request lies outside [from, to)"
    );
    assert_eq!(a.distinct_ips, 2);
    // Most first; ties broken by address.
    assert_eq!(
        a.ips,
        vec![("10.0.0.1".to_owned(), 2), ("10.0.0.2".to_owned(), 2)]
    );
    assert_eq!(
        a.endpoints,
        vec![
            ("GET /a".to_owned(), 2),
            ("/b".to_owned(), 1),
            ("POST /a".to_owned(), 1),
        ],
        "a request without a path has no endpoint; one without a method shows the path"
    );

    let days = store
        .usage(&query(t, DAY0, DAY0 + 48 * HOUR, Granularity::Day))
        .await
        .unwrap();
    assert_eq!(
        cells(&days),
        vec![
            (DAY0, "INSUFFICIENT_PERMISSIONS".into(), 1),
            (DAY0, "RATE_LIMITED".into(), 1),
            (DAY0, "VALID".into(), 3),
            (DAY0 + 24 * HOUR, "VALID".into(), 1),
        ]
    );
    assert_eq!(days.distinct_ips, 3);

    // `from` is inclusive, `to` exclusive, to the millisecond.
    let edge = store
        .usage(&query(t, DAY0 + 10, DAY0 + 20, Granularity::Hour))
        .await
        .unwrap();
    assert_eq!(cells(&edge), vec![(DAY0, "VALID".into(), 1)]);

    // `top` bounds the lists, not the distinct count.
    let top1 = store
        .usage(&UsageQuery {
            top: 1,
            ..query(t, DAY0, DAY0 + 48 * HOUR, Granularity::Day)
        })
        .await
        .unwrap();
    assert_eq!(top1.ips, vec![("10.0.0.1".to_owned(), 2)]);
    assert_eq!(top1.endpoints, vec![("GET /a".to_owned(), 3)]);
    assert_eq!(top1.distinct_ips, 3);
}

async fn usage_last_use_keeps_the_latest_request(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    let other = second_token(&store, &b).await;
    assert_eq!(store.last_use(t.workspace_id, t.id).await.unwrap(), None);

    let v = Code::Valid;
    // Within a batch the latest time wins, wherever it is in the batch.
    store
        .insert_usage(&[
            rec(
                t,
                DAY0 + 50,
                Some("10.0.0.5"),
                Some("GET"),
                Some("/late"),
                v,
            ),
            rec(
                t,
                DAY0 + 10,
                Some("10.0.0.1"),
                Some("GET"),
                Some("/early"),
                v,
            ),
            rec(&other, DAY0, Some("10.0.0.9"), None, None, v),
        ])
        .await
        .unwrap();
    let last = store.last_use(t.workspace_id, t.id).await.unwrap().unwrap();
    assert_eq!(last.at, at(DAY0 + 50));
    assert_eq!(last.ip, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(last.endpoint.as_deref(), Some("GET /late"));
    let last_other = store
        .last_use(other.workspace_id, other.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((last_other.at, last_other.endpoint), (at(DAY0), None));

    // A later batch with an older request does not move it back.
    store
        .insert_usage(&[rec(t, DAY0 + 40, Some("10.0.0.4"), None, Some("/older"), v)])
        .await
        .unwrap();
    let last = store.last_use(t.workspace_id, t.id).await.unwrap().unwrap();
    assert_eq!(last.endpoint.as_deref(), Some("GET /late"));

    // Equal times: the later batch wins, and within a batch the later record.
    store
        .insert_usage(&[
            rec(
                t,
                DAY0 + 50,
                Some("10.0.0.6"),
                Some("PUT"),
                Some("/first"),
                v,
            ),
            rec(
                t,
                DAY0 + 50,
                Some("10.0.0.7"),
                Some("PUT"),
                Some("/second"),
                v,
            ),
        ])
        .await
        .unwrap();
    let last = store.last_use(t.workspace_id, t.id).await.unwrap().unwrap();
    assert_eq!(last.ip, Some("10.0.0.7".parse().unwrap()));
    assert_eq!(last.endpoint.as_deref(), Some("PUT /second"));

    // Another workspace's id finds nothing.
    let stranger = new_workspace(&store, "Other").await;
    assert_eq!(
        store.last_use(stranger.workspace.id, t.id).await.unwrap(),
        None
    );
}

async fn usage_roll_up_and_pruning_keep_the_counts(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    let v = Code::Valid;
    let mut batch = Vec::new();
    for h in 0..4 {
        for i in 0..=h {
            let ip = format!("10.0.{h}.{i}");
            batch.push(rec(
                t,
                DAY0 + h * HOUR + i,
                Some(&ip),
                Some("GET"),
                Some("/a"),
                v,
            ));
        }
    }
    batch.push(rec(t, DAY0 + 30, None, None, None, Code::Revoked));
    store.insert_usage(&batch).await.unwrap();
    let whole = query(t, DAY0, DAY0 + 24 * HOUR, Granularity::Hour);
    let before = store.usage(&whole).await.unwrap();
    assert_eq!(total(&before), 11);
    assert_eq!(before.distinct_ips, 10);

    // Hours 0 and 1 are rolled up; roll-ups older than the whole range would go.
    let m = store
        .maintain_usage(at(DAY0 + 2 * HOUR), at(DAY0 - 24 * HOUR))
        .await
        .unwrap();
    assert_eq!(m.rolled_up, 4, "1 + 2 + 1 revoked records of hours 0 and 1");
    assert_eq!(m.pruned_rollups, 0);
    let after = store.usage(&whole).await.unwrap();
    assert_eq!(
        cells(&after),
        cells(&before),
        "counts per hour and code survive"
    );
    assert_eq!(
        after.distinct_ips, 7,
        "addresses only of raw records still kept"
    );
    let kept = store.recent_usage(t.workspace_id, t.id, 100).await.unwrap();
    assert_eq!(kept.len(), 7);
    assert!(kept.iter().all(|r| r.at >= at(DAY0 + 2 * HOUR)));

    // Days combine roll-ups and raw records too.
    let day = store
        .usage(&query(t, DAY0, DAY0 + 24 * HOUR, Granularity::Day))
        .await
        .unwrap();
    assert_eq!(
        cells(&day),
        vec![(DAY0, "REVOKED".into(), 1), (DAY0, "VALID".into(), 10)]
    );

    // A record arriving late for a rolled-up hour is added, not lost or counted twice.
    store
        .insert_usage(&[rec(t, DAY0 + 5, None, None, None, v)])
        .await
        .unwrap();
    let m = store
        .maintain_usage(at(DAY0 + 2 * HOUR), at(DAY0 - 24 * HOUR))
        .await
        .unwrap();
    assert_eq!(m.rolled_up, 1);
    let again = store.usage(&whole).await.unwrap();
    assert_eq!(total(&again), 12);
    assert_eq!(again.cells[1], (at(DAY0), "VALID".into(), 2));

    // Roll-ups older than their retention go; the rest stays.
    let m = store
        .maintain_usage(at(DAY0 + 2 * HOUR), at(DAY0 + HOUR))
        .await
        .unwrap();
    assert_eq!(m.pruned_rollups, 2, "hour 0's VALID and REVOKED rows");
    assert_eq!(total(&store.usage(&whole).await.unwrap()), 12 - 3);
}

async fn usage_goes_with_its_token(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let keep = &b.token;
    let gone = second_token(&store, &b).await;
    let v = Code::Valid;
    store
        .insert_usage(&[
            rec(&gone, DAY0, Some("10.0.0.1"), None, None, v),
            rec(&gone, DAY0 + 2 * HOUR, Some("10.0.0.1"), None, None, v),
            rec(keep, DAY0, Some("10.0.0.2"), None, None, v),
        ])
        .await
        .unwrap();
    // Hour 0 rolled up, so the deleted token has raw records, a roll-up and a last use.
    store
        .maintain_usage(at(DAY0 + HOUR), at(DAY0 - HOUR))
        .await
        .unwrap();
    store
        .delete_token(b.workspace.id, gone.id, &ev(&b.workspace.id))
        .await
        .unwrap();
    assert_eq!(store.last_use(b.workspace.id, gone.id).await.unwrap(), None);
    assert!(store
        .recent_usage(b.workspace.id, gone.id, 10)
        .await
        .unwrap()
        .is_empty());

    // A batch still holding the deleted token's records stores the others.
    store
        .insert_usage(&[
            rec(&gone, DAY0 + 3 * HOUR, None, None, None, v),
            rec(keep, DAY0 + 3 * HOUR, None, None, None, v),
        ])
        .await
        .unwrap();
    assert!(store
        .recent_usage(b.workspace.id, gone.id, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .recent_usage(b.workspace.id, keep.id, 10)
            .await
            .unwrap()
            .len(),
        1,
        "the kept token's hour-0 record was rolled up; its new one is stored"
    );

    // The orphaned roll-up is swept by the next maintenance; the kept token's stays.
    let m = store
        .maintain_usage(at(DAY0 + HOUR), at(DAY0 - HOUR))
        .await
        .unwrap();
    assert_eq!(m.pruned_rollups, 1);
    let kept = store
        .usage(&query(keep, DAY0, DAY0 + 24 * HOUR, Granularity::Day))
        .await
        .unwrap();
    assert_eq!(total(&kept), 2);
}

async fn usage_large_batches_are_split_into_statements(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    // More rows than one statement may bind on SQLite (32766 / 8 columns).
    let n: i64 = 9_000;
    let batch: Vec<UsageRecord> = (0..n)
        .map(|i| {
            let ip = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
            rec(
                t,
                DAY0 + i,
                Some(&ip),
                Some("GET"),
                Some("/bulk"),
                Code::Valid,
            )
        })
        .collect();
    store.insert_usage(&batch).await.unwrap();
    let a = store
        .usage(&query(t, DAY0, DAY0 + HOUR, Granularity::Hour))
        .await
        .unwrap();
    assert_eq!(total(&a), n as u64);
    assert_eq!(a.distinct_ips, n as u64);
    assert_eq!(a.ips.len(), 20);
    let last = store.last_use(t.workspace_id, t.id).await.unwrap().unwrap();
    assert_eq!(last.at, at(DAY0 + n - 1));
}

const MINUTE: i64 = 60_000;

async fn usage_minute_counts_read_back_like_raw_records(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let (raw, minutes) = (&b.token, second_token(&store, &b).await);
    let v = Code::Valid;
    let requests = vec![
        rec(raw, DAY0, Some("10.0.0.2"), Some("GET"), Some("/a"), v),
        rec(raw, DAY0 + 10, Some("10.0.0.2"), Some("GET"), Some("/a"), v),
        rec(
            raw,
            DAY0 + 20,
            Some("10.0.0.1"),
            Some("POST"),
            Some("/a"),
            v,
        ),
        rec(raw, DAY0 + 30, Some("10.0.0.1"), None, Some("/b"), v),
        rec(raw, DAY0 + 40, None, None, None, Code::RateLimited),
        rec(
            raw,
            DAY0 + MINUTE,
            Some("10.0.0.2"),
            Some("GET"),
            Some("/a"),
            v,
        ),
        rec(raw, DAY0 + HOUR, Some("2001:db8::1"), Some("GET"), None, v),
        rec(
            raw,
            DAY0 + 25 * HOUR,
            Some("10.0.0.3"),
            Some("GET"),
            Some("/c"),
            v,
        ),
    ];
    store.insert_usage(&requests).await.unwrap();
    // The same requests, counted per minute, in two batches that add up in storage.
    let mine: Vec<UsageRecord> = requests
        .iter()
        .map(|r| counted(of(&minutes, r.clone())))
        .collect();
    let (first, second) = mine.split_at(3);
    for batch in [first, second, &mine[..1]] {
        store
            .write_usage(&UsageBatch::aggregate(batch))
            .await
            .unwrap();
    }
    let extra = of(&minutes, requests[0].clone());
    store.insert_usage(&[extra]).await.unwrap();
    // `minutes` now has requests[0] three times: once in the first batch, once in the third,
    // once as a raw row; `raw` has it once.
    store
        .insert_usage(&[requests[0].clone(), requests[0].clone()])
        .await
        .unwrap();

    for (from, to, granularity, top) in [
        (DAY0, DAY0 + 24 * HOUR, Granularity::Hour, 20),
        (DAY0, DAY0 + 48 * HOUR, Granularity::Day, 20),
        (DAY0, DAY0 + 48 * HOUR, Granularity::Day, 1),
        (DAY0 + MINUTE, DAY0 + 2 * HOUR, Granularity::Hour, 20),
    ] {
        let q = |t: &Token| UsageQuery {
            top,
            ..query(t, from, to, granularity)
        };
        let a = store.usage(&q(raw)).await.unwrap();
        let m = store.usage(&q(&minutes)).await.unwrap();
        assert_eq!(m, a, "{granularity:?} from {from} to {to}, top {top}");
    }
    let whole = store
        .usage(&query(&minutes, DAY0, DAY0 + 24 * HOUR, Granularity::Hour))
        .await
        .unwrap();
    assert_eq!(total(&whole), 9);
    assert_eq!(whole.ips[0], ("10.0.0.2".to_owned(), 5));
    assert_eq!(whole.endpoints[0], ("GET /a".to_owned(), 5));
    // Only the request kept as a row reads back as one.
    let rows = store
        .recent_usage(minutes.workspace_id, minutes.id, 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    // The last use comes from the counted batches too.
    let last = store
        .last_use(minutes.workspace_id, minutes.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.at, at(DAY0 + 25 * HOUR));
    assert_eq!(last.endpoint.as_deref(), Some("GET /c"));
}

async fn usage_minute_counts_roll_up_and_go_with_their_token(store: Arc<dyn Store>) {
    let b = new_workspace(&store, "Acme").await;
    let t = &b.token;
    let gone = second_token(&store, &b).await;
    let v = Code::Valid;
    let mut batch = Vec::new();
    for h in 0..3 {
        for i in 0..=h {
            let ip = format!("10.0.{h}.{i}");
            let r = rec(
                t,
                DAY0 + h * HOUR + i * MINUTE,
                Some(&ip),
                None,
                Some("/a"),
                v,
            );
            batch.push(counted(r.clone()));
            batch.push(counted(r));
        }
    }
    batch.push(counted(rec(&gone, DAY0, None, None, None, v)));
    store
        .write_usage(&UsageBatch::aggregate(&batch))
        .await
        .unwrap();
    let whole = query(t, DAY0, DAY0 + 24 * HOUR, Granularity::Hour);
    let before = store.usage(&whole).await.unwrap();
    assert_eq!(total(&before), 12);
    assert_eq!(before.distinct_ips, 6);

    let m = store
        .maintain_usage(at(DAY0 + 2 * HOUR), at(DAY0 - 24 * HOUR))
        .await
        .unwrap();
    assert_eq!(m.rolled_up, 7, "2 + 4 requests of `t` and 1 of `gone`");
    let after = store.usage(&whole).await.unwrap();
    assert_eq!(cells(&after), cells(&before), "counts per hour survive");
    assert_eq!(after.distinct_ips, 3, "addresses of the minutes still kept");
    // Rolling up again moves nothing.
    let m = store
        .maintain_usage(at(DAY0 + 2 * HOUR), at(DAY0 - 24 * HOUR))
        .await
        .unwrap();
    assert_eq!(m.rolled_up, 0);

    // A deleted token's counts go; a batch still counting it stores the others.
    store
        .delete_token(b.workspace.id, gone.id, &ev(&b.workspace.id))
        .await
        .unwrap();
    store
        .write_usage(&UsageBatch::aggregate(&[
            counted(rec(&gone, DAY0 + 3 * HOUR, None, None, None, v)),
            counted(rec(t, DAY0 + 3 * HOUR, None, None, None, v)),
        ]))
        .await
        .unwrap();
    let gone_usage = store
        .usage(&query(&gone, DAY0, DAY0 + 24 * HOUR, Granularity::Day))
        .await
        .unwrap();
    let m = store
        .maintain_usage(at(DAY0), at(DAY0 - 24 * HOUR))
        .await
        .unwrap();
    assert_eq!(m.pruned_rollups, 1, "the deleted token's roll-up");
    assert_eq!(total(&gone_usage), 1, "only its roll-up was left");
    assert_eq!(total(&store.usage(&whole).await.unwrap()), 13);
}

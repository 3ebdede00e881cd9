use super::*;
use chrono::TimeZone;
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn key() -> ChainKey {
    ChainKey::from_bytes([7; 32])
}

fn rules(key: &ChainKey) -> ChainRules<'_> {
    ChainRules {
        key,
        keyed_from: 1,
        checkpoint: None,
    }
}

fn start() -> (i64, String) {
    (0, String::new())
}

fn draft(ws: WorkspaceId, action: &str) -> AuditDraft {
    let at = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
    AuditDraft::new(ws, at, Actor::SYSTEM, action, "token", "tok_x").after(&"x")
}

/// `n` events, the first `plain` of them with legacy plain hashes.
fn mixed_chain(n: usize, plain: usize) -> Vec<AuditEvent> {
    let ws = WorkspaceId::random(&mut rand_core::OsRng);
    let mut out: Vec<AuditEvent> = Vec::new();
    for i in 0..n {
        let prev = out.last().map(|e| e.hash.clone()).unwrap_or_default();
        let seq = i as i64 + 1;
        let d = draft(ws, &format!("a{i}"));
        out.push(if i < plain {
            let hash = plain_hash(&prev, seq, &d);
            AuditEvent {
                seq,
                draft: d,
                prev_hash: prev,
                hash,
            }
        } else {
            d.seal(&key(), seq, prev)
        });
    }
    out
}

fn chain(n: usize) -> Vec<AuditEvent> {
    mixed_chain(n, 0)
}

/// What someone with write access to the database but not the key can do: recompute every
/// hash from `from` on with the only algorithm they can compute.
fn rehash_plain(c: &mut [AuditEvent], from: usize) {
    for i in from..c.len() {
        let prev = if i == 0 {
            String::new()
        } else {
            c[i - 1].hash.clone()
        };
        c[i].prev_hash = prev;
        c[i].hash = plain_hash(&c[i].prev_hash, c[i].seq, &c[i].draft);
    }
}

#[test]
fn an_intact_chain_checks() {
    let k = key();
    let c = chain(5);
    let (seq, hash) = check_chain(&rules(&k), start(), &c).unwrap();
    assert_eq!((seq, hash.as_str()), (5, c[4].hash.as_str()));
    // Continuing from the middle works too.
    assert!(check_chain(&rules(&k), (2, c[1].hash.clone()), &c[2..]).is_ok());
    // Another key finds nothing right.
    let other = ChainKey::from_bytes([8; 32]);
    assert_eq!(check_chain(&rules(&other), start(), &c).unwrap_err().seq, 1);
}

#[test]
fn an_edit_a_gap_or_a_rehash_is_named() {
    let k = key();
    let mut c = chain(5);
    c[2].draft.after = Some("\"y\"".into());
    assert_eq!(check_chain(&rules(&k), start(), &c).unwrap_err().seq, 3);

    let mut c = chain(5);
    c.remove(1);
    let b = check_chain(&rules(&k), start(), &c).unwrap_err();
    assert_eq!(b.seq, 2);

    let mut c = chain(5);
    c[3].draft.count = 7;
    c[3].hash = keyed_hash(&k, &c[3].prev_hash, 4, &c[3].draft); // rehashed, but the next
    assert_eq!(check_chain(&rules(&k), start(), &c).unwrap_err().seq, 5); // links to the old
}

#[test]
fn a_reordering_of_two_events_is_named_at_the_first_moved() {
    let k = key();
    let mut c = chain(6);
    // Events 3 and 4 trade places, each keeping its own content, hashes and links; only their
    // numbers are swapped so the sequence still counts 1, 2, 3…
    c.swap(2, 3);
    c[2].seq = 3;
    c[3].seq = 4;
    let b = check_chain(&rules(&k), start(), &c).unwrap_err();
    assert_eq!(b.seq, 3, "{b:?}");
    assert!(b.reason.contains("previous-hash"), "{b:?}");
    // Relinking them does not help without the key: the numbers are under the MAC.
    c[2].prev_hash = c[1].hash.clone();
    c[3].prev_hash = c[2].hash.clone();
    c[4].prev_hash = c[3].hash.clone();
    let b = check_chain(&rules(&k), start(), &c).unwrap_err();
    assert_eq!(b.seq, 3, "{b:?}");
    assert!(b.reason.contains("keyed hash"), "{b:?}");
}

#[test]
fn recomputing_plain_hashes_without_the_key_is_found() {
    let k = key();
    let mut c = chain(5);
    c[1].draft.action = "token.viewed".into();
    rehash_plain(&mut c, 1);
    // Every link and every plain hash is consistent now, yet the keyed check names event 2.
    let b = check_chain(&rules(&k), start(), &c).unwrap_err();
    assert_eq!(b.seq, 2, "{b:?}");
}

#[test]
fn a_legacy_plain_prefix_checks_and_is_bound_by_the_first_keyed_event() {
    let k = key();
    let c = mixed_chain(6, 3);
    let legacy = ChainRules {
        keyed_from: 4,
        ..rules(&k)
    };
    assert!(check_chain(&legacy, start(), &c).is_ok());
    // All keyed is wrong for this chain: its first events are plain.
    assert_eq!(check_chain(&rules(&k), start(), &c).unwrap_err().seq, 1);
    // Rewriting a plain event and rehashing the plain prefix breaks the first keyed event,
    // whose MAC covers the last plain hash.
    let mut t = c.clone();
    t[0].draft.action = "forged".into();
    rehash_plain(&mut t, 0);
    t.truncate(3);
    assert!(
        check_chain(&legacy, start(), &t).is_ok(),
        "the prefix alone"
    );
    let mut t2 = c.clone();
    t2[0].draft.action = "forged".into();
    rehash_plain(&mut t2[..3], 0);
    assert_eq!(check_chain(&legacy, start(), &t2).unwrap_err().seq, 4);
    // Passing keyed events off as plain ones needs the border moved, which needs the key.
    let mut t3 = c.clone();
    t3[4].draft.action = "forged".into();
    rehash_plain(&mut t3, 3);
    let moved = ChainRules {
        keyed_from: 7,
        ..legacy
    };
    assert!(check_chain(&moved, start(), &t3).is_ok());
    let ws = c[0].draft.workspace_id;
    let head = ChainHead {
        seq: 6,
        hash: t3[5].hash.clone(),
        keyed_from: Some(7),
        keyed_mac: Some(keyed_from_mac(&k, ws, 4)),
    };
    assert_eq!(head.authentic_keyed_from(&k, ws), None);
    let honest = ChainHead {
        keyed_from: Some(4),
        ..head
    };
    assert_eq!(honest.authentic_keyed_from(&k, ws), Some(4));
    let other_ws = WorkspaceId::random(&mut rand_core::OsRng);
    assert_eq!(honest.authentic_keyed_from(&k, other_ws), None);
}

#[test]
fn a_checkpoint_pins_its_event() {
    let k = key();
    let c = chain(5);
    let pinned = ChainRules {
        checkpoint: Some((3, c[2].hash.as_str())),
        ..rules(&k)
    };
    assert!(check_chain(&pinned, start(), &c).is_ok());
    let wrong = ChainRules {
        checkpoint: Some((3, c[3].hash.as_str())),
        ..rules(&k)
    };
    let b = check_chain(&wrong, start(), &c).unwrap_err();
    assert_eq!(b.seq, 3);
    assert!(b.reason.contains("checkpoint"), "{b:?}");
}

#[test]
fn a_checkpoint_signature_covers_every_field() {
    let k = key();
    let ws = WorkspaceId::random(&mut rand_core::OsRng);
    let at = Utc.timestamp_nanos(1_700_000_000_123_456_789);
    let cp = Checkpoint::sign(&k, ws, 42, "ab".repeat(32), at);
    assert_eq!(
        cp.at.timestamp_subsec_nanos(),
        123_000_000,
        "millisecond precision"
    );
    assert!(cp.is_authentic(&k));
    let line = serde_json::to_string(&cp).unwrap();
    let back: Checkpoint = serde_json::from_str(&line).unwrap();
    assert!(back.is_authentic(&k), "{line}");
    assert!(!cp.is_authentic(&ChainKey::from_bytes([9; 32])));
    let mut seq = cp.clone();
    seq.seq = 41;
    let mut hash = cp.clone();
    hash.hash = "cd".repeat(32);
    let mut when = cp.clone();
    when.at += chrono::TimeDelta::milliseconds(1);
    let mut whose = cp.clone();
    whose.workspace_id = WorkspaceId::random(&mut rand_core::OsRng);
    let mut sig = cp.clone();
    sig.signature = "00".repeat(32);
    for forged in [seq, hash, when, whose, sig] {
        assert!(!forged.is_authentic(&k), "{forged:?}");
    }
    assert!(serde_json::from_str::<Checkpoint>(&line.replace("\"seq\"", "\"sek\"")).is_err());
}

#[test]
fn the_padded_key_gives_the_standard_hmac() {
    let k = key();
    let mut standard = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
    standard.update(b"x");
    let mut ours = k.mac();
    ours.update(b"x");
    assert_eq!(
        ours.finalize().into_bytes(),
        standard.finalize().into_bytes()
    );
}

#[test]
fn keys_read_from_hex_and_never_print() {
    let k = ChainKey::generate(&mut rand_core::OsRng);
    assert_eq!(
        ChainKey::parse_hex(&format!(" {}\n", k.to_hex())),
        Ok(k.clone())
    );
    assert!(ChainKey::parse_hex("abcd").is_err());
    assert!(ChainKey::parse_hex(&"zz".repeat(32)).is_err());
    assert!(!format!("{k:?}").contains(&k.to_hex()));
}

#[test]
fn absent_and_empty_before_hash_differently() {
    let ws = WorkspaceId::random(&mut rand_core::OsRng);
    let mut a = draft(ws, "x");
    a.before = None;
    let mut b = a.clone();
    b.before = Some(String::new());
    assert_ne!(plain_hash("", 1, &a), plain_hash("", 1, &b));
    assert_ne!(keyed_hash(&key(), "", 1, &a), keyed_hash(&key(), "", 1, &b));
    assert_ne!(plain_hash("", 1, &a), keyed_hash(&key(), "", 1, &a));
}

//! Transactions: isolation, conflicts (EAGAIN) and retry, abort, quotas, events on commit.

use xen_abi::xs_wire::*;

use super::{error_name, ev, H};
use crate::{Config, Quotas};

#[test]
fn isolation_and_commit() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/t/a", "old");
    let tx = h.tx_start(d);
    assert!(tx != 0);
    assert_eq!(h.write(d, tx, "/t/a", "new").reply.payload, b"OK\0");
    assert_eq!(h.write(d, tx, "/t/b/c", "created").reply.payload, b"OK\0");
    assert_eq!(h.read(d, tx, "/t/a").unwrap(), "new");
    assert_eq!(h.read(d, 0, "/t/a").unwrap(), "old");
    assert_eq!(h.read(d, 0, "/t/b/c").unwrap_err(), "ENOENT");
    assert_eq!(h.dir(d, tx, "/t").unwrap(), ["a", "b"]);
    assert_eq!(h.dir(d, 0, "/t").unwrap(), ["a"]);
    let part = h.ok(d, XS_DIRECTORY_PART, tx, &[b"/t", b"0"]);
    assert!(part.ends_with(b"\0a\0b\0\0"));
    h.ok(d, XS_RM, tx, &[b"/t/a"]);
    assert_eq!(h.read(d, tx, "/t/a").unwrap_err(), "ENOENT");
    assert_eq!(h.read(d, 0, "/t/a").unwrap(), "old");
    h.set_perms_tx(d, tx, "/t/b", &["n0", "r5"]);
    assert_eq!(h.get_perms(d, "/t/b").unwrap_err(), "ENOENT");
    let got = h.tx_end(d, tx, true);
    assert_eq!(got.reply.payload, b"OK\0");
    assert_eq!(h.read(d, 0, "/t/a").unwrap_err(), "ENOENT");
    assert_eq!(h.read(d, 0, "/t/b/c").unwrap(), "created");
    assert_eq!(h.dir(d, 0, "/t").unwrap(), ["b"]);
    assert_eq!(h.get_perms(d, "/t/b").unwrap(), ["n0", "r5"]);
    // The transaction is gone.
    assert_eq!(h.read(d, tx, "/t/b/c").unwrap_err(), "ENOENT");
}

#[test]
fn conflict_gives_eagain_then_retry_succeeds() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.home(5);
    h.write_ok(c5, "data/counter", "1");
    let tx = h.tx_start(c5);
    assert_eq!(h.read(c5, tx, "data/counter").unwrap(), "1");
    // Somebody else changes what the transaction read.
    h.write_ok(h.dom0, "/local/domain/5/data/counter", "5");
    // Repeatable read inside the transaction.
    assert_eq!(h.read(c5, tx, "data/counter").unwrap(), "1");
    assert_eq!(h.write(c5, tx, "data/counter", "2").reply.payload, b"OK\0");
    assert_eq!(h.write(c5, tx, "data/other", "x").reply.payload, b"OK\0");
    let got = h.tx_end(c5, tx, true);
    assert_eq!(error_name(&got.reply), "EAGAIN");
    assert_eq!(h.read(c5, 0, "data/counter").unwrap(), "5");
    assert_eq!(h.read(c5, 0, "data/other").unwrap_err(), "ENOENT");
    assert_eq!(h.s.transaction_count(5), 0);
    // Retry: read-modify-write again, nobody interferes.
    let tx = h.tx_start(c5);
    let v: u32 = h.read(c5, tx, "data/counter").unwrap().parse().unwrap();
    h.write(c5, tx, "data/counter", &(v + 1).to_string());
    assert_eq!(h.tx_end(c5, tx, true).reply.payload, b"OK\0");
    assert_eq!(h.read(c5, 0, "data/counter").unwrap(), "6");
}

#[test]
fn conflict_on_creation_and_deletion() {
    let mut h = H::new();
    let d = h.dom0;
    // The transaction saw /n missing; somebody creates it.
    let tx = h.tx_start(d);
    assert_eq!(h.read(d, tx, "/n").unwrap_err(), "ENOENT");
    h.write_ok(d, "/n", "");
    assert_eq!(error_name(&h.tx_end(d, tx, true).reply), "EAGAIN");
    // The transaction read /n; somebody deletes it.
    let tx = h.tx_start(d);
    h.read(d, tx, "/n").unwrap();
    h.ok(d, XS_RM, 0, &[b"/n"]);
    assert_eq!(error_name(&h.tx_end(d, tx, true).reply), "EAGAIN");
    // Both create the same node: the second commit fails.
    let t1 = h.tx_start(d);
    let t2 = h.tx_start(d);
    assert_ne!(t1, t2);
    h.write(d, t1, "/same", "1");
    h.write(d, t2, "/same", "2");
    assert_eq!(h.tx_end(d, t1, true).reply.payload, b"OK\0");
    assert_eq!(error_name(&h.tx_end(d, t2, true).reply), "EAGAIN");
    assert_eq!(h.read(d, 0, "/same").unwrap(), "1");
}

#[test]
fn interleaved_transactions() {
    // xenstored's transaction.c example 4: TA1 reads A writes B, TA2 reads B writes A.
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/A", "a");
    h.write_ok(d, "/B", "b");
    let t1 = h.tx_start(d);
    let t2 = h.tx_start(d);
    h.read(d, t1, "/A").unwrap();
    h.read(d, t2, "/B").unwrap();
    h.write(d, t1, "/B", "b1");
    h.write(d, t2, "/A", "a2");
    assert_eq!(h.tx_end(d, t1, true).reply.payload, b"OK\0");
    assert_eq!(error_name(&h.tx_end(d, t2, true).reply), "EAGAIN");
    assert_eq!(h.read(d, 0, "/A").unwrap(), "a");
    assert_eq!(h.read(d, 0, "/B").unwrap(), "b1");
    // Disjoint transactions both commit.
    let t1 = h.tx_start(d);
    let t2 = h.tx_start(d);
    h.write(d, t1, "/A", "x");
    h.write(d, t2, "/B", "y");
    assert_eq!(h.tx_end(d, t2, true).reply.payload, b"OK\0");
    assert_eq!(h.tx_end(d, t1, true).reply.payload, b"OK\0");
    assert_eq!((h.read(d, 0, "/A").unwrap(), h.read(d, 0, "/B").unwrap()), ("x".into(), "y".into()));
}

#[test]
fn abort_discards() {
    let mut h = H::new();
    let d = h.dom0;
    h.watch(d, "/ab", "w");
    let tx = h.tx_start(d);
    assert!(h.write(d, tx, "/ab/x", "1").events.is_empty());
    let got = h.tx_end(d, tx, false);
    assert_eq!(got.reply.payload, b"OK\0");
    assert!(got.events.is_empty());
    assert_eq!(h.read(d, 0, "/ab/x").unwrap_err(), "ENOENT");
    assert_eq!(h.s.node_count(0), 5);
}

#[test]
fn transaction_request_errors() {
    let mut h = H::new();
    let d = h.dom0;
    let tx = h.tx_start(d);
    // Bad TRANSACTION_END argument: EINVAL, the transaction stays.
    for bad in [&b"X"[..], b"TT", b""] {
        assert_eq!(h.err(d, XS_TRANSACTION_END, tx, &[bad]), "EINVAL");
    }
    assert_eq!(error_name(&h.req_payload(d, XS_TRANSACTION_END, tx, b"T").reply), "EINVAL");
    assert_eq!(error_name(&h.req_payload(d, XS_TRANSACTION_END, tx, b"T\0F\0").reply), "EINVAL");
    h.write(d, tx, "/still", "there");
    // Unknown ids.
    assert_eq!(h.read(d, tx + 100, "/").unwrap_err(), "ENOENT");
    assert_eq!(h.write_err(d, tx + 100, "/x", ""), "ENOENT");
    assert_eq!(h.err(d, XS_TRANSACTION_END, tx + 100, &[b"T"]), "ENOENT");
    assert_eq!(h.err(d, XS_TRANSACTION_END, 0, &[b"T"]), "ENOENT");
    // No nesting.
    assert_eq!(h.err(d, XS_TRANSACTION_START, tx, &[b""]), "EBUSY");
    assert_eq!(h.err(d, XS_TRANSACTION_START, tx + 100, &[b""]), "ENOENT");
    // Transactions belong to their connection.
    let c5 = h.introduce(5);
    assert_eq!(h.read(c5, tx, "/").unwrap_err(), "ENOENT");
    let t5 = h.tx_start(c5);
    assert_eq!(t5, tx, "ids are per connection");
    assert_eq!(h.tx_end(d, tx, true).reply.payload, b"OK\0");
    assert_eq!(h.read(d, 0, "/still").unwrap(), "there");
    // Releasing a domain drops its transactions.
    h.ok(d, XS_RELEASE, 0, &[b"5"]);
    assert_eq!(h.s.transaction_count(5), 0);
}

#[test]
fn transaction_quota() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    let ids: Vec<u32> = (0..10).map(|_| h.tx_start(c5)).collect();
    assert_eq!(h.err(c5, XS_TRANSACTION_START, 0, &[b""]), "ENOSPC");
    h.tx_end(c5, ids[3], false);
    let again = h.tx_start(c5);
    assert!(!ids[..3].contains(&again) && !ids[4..].contains(&again));
    for _ in 0..20 {
        h.tx_start(h.dom0);
    }
}

#[test]
fn nodes_per_transaction_quota() {
    let quotas = Quotas { transaction_nodes: 6, ..Quotas::default() };
    let mut h = H::with_config(Config { priv_domid: 0, quotas });
    let c5 = h.introduce(5);
    h.home(5);
    for i in 0..6 {
        h.write_ok(c5, &format!("data/k{i}"), "");
    }
    let tx = h.tx_start(c5);
    for i in 0..5 {
        h.read(c5, tx, &format!("data/k{i}")).unwrap();
    }
    // data/k0..k4 recorded; writing data/x needs data/x and data: over the quota.
    assert_eq!(h.write_err(c5, tx, "data/x", "1"), "ENOSPC");
    // Nothing was half-done: the transaction still works and commits.
    assert_eq!(h.write(c5, tx, "data/k0", "v").reply.payload, b"OK\0");
    // The failed write recorded data/x (a read, as in xenstored): the quota is now full.
    assert_eq!(h.read(c5, tx, "data/k5").unwrap_err(), "ENOSPC");
    assert_eq!(h.read(c5, tx, "data/k4").unwrap(), "");
    assert_eq!(h.tx_end(c5, tx, true).reply.payload, b"OK\0");
    assert_eq!(h.read(c5, 0, "data/k0").unwrap(), "v");
    // An RM touching too many nodes fails whole.
    let tx = h.tx_start(c5);
    assert_eq!(h.err(c5, XS_RM, tx, &[b"data"]), "ENOSPC");
    assert_eq!(h.tx_end(c5, tx, true).reply.payload, b"OK\0");
    assert_eq!(h.dir(c5, 0, "data").unwrap().len(), 6);
    // dom0 is not limited.
    let tx = h.tx_start(h.dom0);
    h.ok(h.dom0, XS_RM, tx, &[b"/local/domain/5/data"]);
    assert_eq!(h.tx_end(h.dom0, tx, true).reply.payload, b"OK\0");
    assert_eq!(h.s.node_count(5), 0);
}

#[test]
fn node_quota_in_transactions() {
    let quotas = Quotas { nodes: 8, ..Quotas::default() };
    let mut h = H::with_config(Config { priv_domid: 0, quotas });
    let c5 = h.introduce(5);
    h.home(5);
    h.write_ok(c5, "data/a", "");
    h.write_ok(c5, "data/b", "");
    assert_eq!(h.s.node_count(5), 3);
    // Inside a transaction the transaction's own new nodes count.
    let tx = h.tx_start(c5);
    for i in 0..5 {
        h.write(c5, tx, &format!("data/a/{i}"), "");
    }
    assert_eq!(h.write_err(c5, tx, "data/a/5", ""), "ENOSPC");
    h.tx_end(c5, tx, false);
    // Two transactions that fit alone but not together: the second commit is ENOSPC.
    let t1 = h.tx_start(c5);
    let t2 = h.tx_start(c5);
    for i in 0..3 {
        h.write(c5, t1, &format!("data/a/{i}"), "");
        h.write(c5, t2, &format!("data/b/{i}"), "");
    }
    assert_eq!(h.tx_end(c5, t1, true).reply.payload, b"OK\0");
    assert_eq!(error_name(&h.tx_end(c5, t2, true).reply), "ENOSPC");
    assert_eq!(h.s.node_count(5), 6);
    assert_eq!(h.dir(c5, 0, "data/b").unwrap(), Vec::<String>::new());
}

#[test]
fn events_fire_on_commit_with_committed_permissions() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    let c6 = h.introduce(6);
    h.home(5);
    h.write_ok(c5, "data/pub", "");
    h.set_perms(c5, "/local/domain/5/data/pub", &["n5", "r6"]).unwrap();
    h.write_ok(c5, "data/priv", "");
    h.watch(c6, "/local/domain/5/data", "six");
    h.watch(c5, "data", "five");
    let tx = h.tx_start(c5);
    assert!(h.write(c5, tx, "data/pub", "1").events.is_empty());
    assert!(h.write(c5, tx, "data/priv", "1").events.is_empty());
    assert!(h.req(c5, XS_RM, tx, &[b"data/pub"]).events.is_empty());
    assert!(h.write(c5, tx, "data/new", "1").events.is_empty());
    let got = h.tx_end(c5, tx, true);
    assert_eq!(got.reply.payload, b"OK\0");
    let mut five = got.events_for(c5);
    five.sort();
    assert_eq!(five, [ev("data/new", "five"), ev("data/priv", "five"), ev("data/pub", "five")]);
    // Domain 6 could read data/pub before it was removed: it hears of the removal only.
    assert_eq!(got.events_for(c6), [ev("/local/domain/5/data/pub", "six")]);
    // Events come before the reply, like xenstored.
    assert!(matches!(got.all.last(), Some(crate::Output::Send { msg, .. }) if msg.type_ == XS_TRANSACTION_END));
}

impl H {
    fn set_perms_tx(&mut self, conn: crate::ConnId, tx: u32, path: &str, perms: &[&str]) {
        let mut parts: Vec<&[u8]> = vec![path.as_bytes()];
        parts.extend(perms.iter().map(|p| p.as_bytes()));
        assert_eq!(self.ok(conn, XS_SET_PERMS, tx, &parts), b"OK\0");
    }
}

//! Watches: initial fire, matching, permissions, relative paths, quotas, special watches.

use xen_abi::xs_wire::*;

use super::{error_name, ev, H};
use crate::{Config, Message, Output, Quotas};

#[test]
fn initial_fire_after_the_reply() {
    let mut h = H::new();
    let got = h.watch(h.dom0, "/w", "tok");
    // The node need not exist; the event follows the reply.
    match &got.all[..] {
        [Output::Send { msg: reply, .. }, Output::Send { conn, msg: event }] => {
            assert_eq!(reply.payload, b"OK\0");
            assert_eq!(*conn, h.dom0);
            assert_eq!(*event, Message::watch_event(b"/w", b"tok"));
            assert_eq!(event.to_bytes()[..16], [15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0]);
        }
        other => panic!("{other:?}"),
    }
    // tx_id of a WATCH is ignored, even a bogus one.
    let got = h.req(h.dom0, XS_WATCH, 77, &[b"/w2", b"t"]);
    assert_eq!(got.reply.payload, b"OK\0");
    assert_eq!(got.events_for(h.dom0), [ev("/w2", "t")]);
}

#[test]
fn fires_for_path_and_descendants_only() {
    let mut h = H::new();
    let d = h.dom0;
    h.watch(d, "/a/b", "t");
    assert_eq!(h.write(d, 0, "/a/b", "1").events_for(d), [ev("/a/b", "t")]);
    assert_eq!(h.write(d, 0, "/a/b/c/d", "1").events_for(d), [ev("/a/b/c/d", "t")]);
    assert!(h.write(d, 0, "/a/bc", "1").events_for(d).is_empty());
    assert!(h.write(d, 0, "/a", "1").events_for(d).is_empty());
    assert_eq!(h.req(d, XS_MKDIR, 0, &[b"/a/b/m"]).events_for(d), [ev("/a/b/m", "t")]);
    // MKDIR of an existing node changes nothing and fires nothing.
    assert!(h.req(d, XS_MKDIR, 0, &[b"/a/b/m"]).events_for(d).is_empty());
    assert_eq!(h.set_perms(d, "/a/b/m", &["n0", "r3"]), Ok(()));
    // Reads fire nothing.
    assert!(h.req(d, XS_READ, 0, &[b"/a/b"]).events.is_empty());
    // A watch on / sees everything.
    h.watch(d, "/", "root");
    let got = h.write(d, 0, "/z", "");
    assert_eq!(got.events_for(d), [ev("/z", "root")]);
    // Two watches, one event each.
    h.watch(d, "/a", "t2");
    assert_eq!(
        h.write(d, 0, "/a/b/x", "").events_for(d),
        [ev("/a/b/x", "t"), ev("/a/b/x", "root"), ev("/a/b/x", "t2")]
    );
}

#[test]
fn rm_fires_for_every_removed_node() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/r/a/b", "");
    h.write_ok(d, "/r/a/c", "");
    h.watch(d, "/r", "parent");
    h.watch(d, "/r/a/b", "deep");
    h.watch(d, "/r/a/b/not-there", "deeper");
    let got = h.req(d, XS_RM, 0, &[b"/r/a"]);
    let mut events = got.events_for(d);
    events.sort();
    // The parent's watch sees the removed subtree root once; a watch on a removed
    // descendant sees its own path; nothing below.
    assert_eq!(events, [ev("/r/a", "parent"), ev("/r/a/b", "deep")]);
    // Removing a missing node fires nothing.
    assert!(h.req(d, XS_RM, 0, &[b"/r/a"]).events.is_empty());
}

#[test]
fn no_event_without_read_permission() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    let c6 = h.introduce(6);
    h.home(5);
    h.home(6);
    // dom6 watches domain 5's data: it may set the watch (and gets the initial event)...
    let got = h.watch(c6, "/local/domain/5/data", "spy");
    assert_eq!(got.events_for(c6), [ev("/local/domain/5/data", "spy")]);
    h.watch(h.dom0, "/local/domain/5/data", "tools");
    // ...but no events for nodes it cannot read.
    let got = h.write(c5, 0, "data/secret", "x");
    assert!(got.events_for(c6).is_empty());
    assert_eq!(got.events_for(h.dom0), [ev("/local/domain/5/data/secret", "tools")]);
    // Readable node: event.
    h.write_ok(c5, "data/public", "");
    h.set_perms(c5, "/local/domain/5/data/public", &["n5", "r6"]).unwrap();
    let got = h.write(c5, 0, "data/public", "y");
    assert_eq!(got.events_for(c6), [ev("/local/domain/5/data/public", "spy")]);
    // An unreadable child of a readable node is permitted through its parent
    // (watch_permitted).
    h.write_ok(c5, "data/public/kid", "");
    assert_eq!(h.get_perms(c5, "data/public/kid").unwrap(), ["n5", "r6"]);
    h.set_perms(c5, "/local/domain/5/data/public/kid", &["n5"]).unwrap();
    assert_eq!(h.read(c6, 0, "/local/domain/5/data/public/kid").unwrap_err(), "EACCES");
    let got = h.write(c5, 0, "data/public/kid", "k");
    assert_eq!(got.events_for(c6), [ev("/local/domain/5/data/public/kid", "spy")]);
    // Losing read permission still reports that change (old permissions count)...
    let got = h.req(c5, XS_SET_PERMS, 0, &[b"data/public", b"n5"]);
    assert_eq!(got.events_for(c6), [ev("/local/domain/5/data/public", "spy")]);
    // ...but not later ones.
    assert!(h.write(c5, 0, "data/public", "z").events_for(c6).is_empty());
}

#[test]
fn relative_watch_reports_relative_paths() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.home(5);
    let got = h.watch(c5, "data", "rel");
    assert_eq!(got.events_for(c5), [ev("data", "rel")]);
    h.watch(c5, "/local/domain/5/data", "abs");
    let got = h.write(c5, 0, "data/k", "v");
    assert_eq!(got.events_for(c5), [ev("data/k", "rel"), ev("/local/domain/5/data/k", "abs")]);
    let got = h.write(h.dom0, 0, "/local/domain/5/data/k", "w");
    assert_eq!(got.events_for(c5), [ev("data/k", "rel"), ev("/local/domain/5/data/k", "abs")]);
    // UNWATCH accepts the relative form (same canonical path).
    h.ok(c5, XS_UNWATCH, 0, &[b"/local/domain/5/data", b"rel"]);
    h.ok(c5, XS_UNWATCH, 0, &[b"data", b"abs"]);
    assert!(h.write(c5, 0, "data/k", "x").events_for(c5).is_empty());
}

#[test]
fn watch_errors_and_unwatch() {
    let mut h = H::new();
    let d = h.dom0;
    h.watch(d, "/w", "t");
    assert_eq!(h.err(d, XS_WATCH, 0, &[b"/w", b"t"]), "EEXIST");
    h.watch(d, "/w", "other-token");
    assert_eq!(h.err(d, XS_WATCH, 0, &[b"/w"]), "EINVAL");
    // A depth argument needs XENSTORE_SERVER_FEATURE_WATCHDEPTH (not offered).
    assert_eq!(h.err(d, XS_WATCH, 0, &[b"/w", b"t", b"1"]), "EINVAL");
    assert_eq!(h.err(d, XS_WATCH, 0, &[b"/bad/", b"t"]), "EINVAL");
    assert_eq!(error_name(&h.req_payload(d, XS_WATCH, 0, b"/w\0t").reply), "EINVAL");
    assert_eq!(h.err(d, XS_UNWATCH, 0, &[b"/w", b"nope"]), "ENOENT");
    assert_eq!(h.err(d, XS_UNWATCH, 0, &[b"/w"]), "EINVAL");
    assert_eq!(h.err(d, XS_UNWATCH, 0, &[b"/w//", b"t"]), "EINVAL");
    h.ok(d, XS_UNWATCH, 0, &[b"/w", b"t"]);
    assert_eq!(h.write(d, 0, "/w", "").events_for(d), [ev("/w", "other-token")]);
    // Tokens are opaque bytes.
    let got = h.req(d, XS_WATCH, 0, &[b"/bin", b"\x01\xff tok"]);
    assert_eq!(got.events[0].1.payload, b"/bin\0\x01\xff tok\0");
}

#[test]
fn reset_watches() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.home(5);
    h.watch(c5, "data", "a");
    h.watch(c5, "data/x", "b");
    let tx = h.tx_start(c5);
    assert_eq!(h.s.watch_count(5), 2);
    assert_eq!(h.ok(c5, XS_RESET_WATCHES, 0, &[b""]), b"OK\0");
    assert_eq!(h.s.watch_count(5), 0);
    assert_eq!(h.s.transaction_count(5), 0);
    assert!(h.write(c5, 0, "data/x", "").events.is_empty());
    assert_eq!(h.tx_end(c5, tx, true).reply.type_, XS_ERROR);
    // Inside a transaction works too (and ends it).
    let tx = h.tx_start(c5);
    h.ok(c5, XS_RESET_WATCHES, tx, &[b""]);
    assert_eq!(h.s.transaction_count(5), 0);
}

#[test]
fn watch_quota() {
    let quotas = Quotas { watches: 3, ..Quotas::default() };
    let mut h = H::with_config(Config { priv_domid: 0, quotas });
    let c5 = h.introduce(5);
    for i in 0..3 {
        h.watch(c5, &format!("w{i}"), "t");
    }
    assert_eq!(h.err(c5, XS_WATCH, 0, &[b"w3", b"t"]), "ENOSPC");
    h.ok(c5, XS_UNWATCH, 0, &[b"w0", b"t"]);
    h.watch(c5, "w3", "t");
    // dom0 has no watch quota.
    for i in 0..10 {
        h.watch(h.dom0, &format!("/w{i}"), "t");
    }
}

#[test]
fn overlong_events_are_dropped() {
    let mut h = H::new();
    let d = h.dom0;
    let token = "t".repeat(2000);
    h.watch(d, "/", &token);
    // Event payload: path, NUL, token, NUL.
    let fits = format!("/{}", "q".repeat(XENSTORE_PAYLOAD_MAX - 2000 - 3));
    let got = h.write(d, 0, &fits, "");
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.events[0].1.payload.len(), XENSTORE_PAYLOAD_MAX);
    let too_long = format!("{fits}q");
    let got = h.write(d, 0, &too_long, "");
    assert_eq!(got.reply.payload, b"OK\0");
    assert!(got.events.is_empty());
}

#[test]
fn introduce_and_release_fire_special_watches() {
    let mut h = H::new();
    let d = h.dom0;
    let c9 = h.introduce(9);
    h.watch(d, "@introduceDomain", "intro");
    h.watch(d, "@releaseDomain", "rel");
    h.watch(d, "@releaseDomain/5", "rel5");
    h.watch(c9, "@introduceDomain", "intro9");
    h.watch(c9, "@releaseDomain", "rel9");
    // Ordinary writes never match special watches.
    assert!(h.write(d, 0, "/x", "").events.is_empty());

    let got = h.req(d, XS_INTRODUCE, 0, &[b"5", b"123", b"4"]);
    assert_eq!(got.events_for(d), [ev("@introduceDomain", "intro")]);
    // Domain 9 has no permission on @introduceDomain.
    assert!(got.events_for(c9).is_empty());
    // Introducing again resets the connection; no event.
    let got = h.req(d, XS_INTRODUCE, 0, &[b"5", b"123", b"4"]);
    assert!(got.events.is_empty());
    assert!(matches!(got.other[..], [Output::Introduce { domid: 5, gfn: 123, port: 4, .. }]));

    // Granting read on @introduceDomain lets domain 9 see it.
    h.set_perms(d, "@introduceDomain", &["n0", "r9"]).unwrap();
    let got = h.req(d, XS_INTRODUCE, 0, &[b"6", b"1", b"1"]);
    assert_eq!(got.events_for(c9), [ev("@introduceDomain", "intro9")]);

    let got = h.req(d, XS_RELEASE, 0, &[b"5"]);
    assert_eq!(got.events_for(d), [ev("@releaseDomain", "rel"), ev("@releaseDomain/5", "rel5")]);
    assert!(got.events_for(c9).is_empty());
    let got = h.req(d, XS_RELEASE, 0, &[b"6"]);
    assert_eq!(got.events_for(d), [ev("@releaseDomain", "rel")]);
}

#[test]
fn shutdown_fires_release_once_until_resume() {
    let mut h = H::new();
    let d = h.dom0;
    h.introduce(5);
    h.watch(d, "@releaseDomain", "rel");
    assert!(h.s.domain_shutdown(5));
    let outs = h.s.take_outputs();
    assert_eq!(outs, [Output::Send { conn: d, msg: Message::watch_event(b"@releaseDomain", b"rel") }]);
    assert!(!h.s.domain_shutdown(5));
    assert!(h.s.take_outputs().is_empty());
    assert!(!h.s.domain_shutdown(42));
    h.ok(d, XS_RESUME, 0, &[b"5"]);
    assert!(h.s.domain_shutdown(5));
    assert_eq!(h.s.take_outputs().len(), 1);
}

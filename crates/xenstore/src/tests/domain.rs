//! Domain management: INTRODUCE, RELEASE, GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, RESUME.

use xen_abi::xs_wire::*;

use super::{ev, H};
use crate::{ConnKind, Output};

#[test]
fn introduce_over_the_wire() {
    let mut h = H::new();
    let d = h.dom0;
    let got = h.req(d, XS_INTRODUCE, 0, &[b"7", b"305419896", b"12"]);
    assert_eq!(got.reply.payload, b"OK\0");
    let conn = match got.other[..] {
        [Output::Introduce { domid: 7, conn, gfn: 305_419_896, port: 12 }] => conn,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(h.s.domain_conn(7), Some(conn));
    assert_eq!(h.s.conn_domid(conn), Some(7));
    assert_eq!(h.s.conn_kind(conn), Some(ConnKind::Domain));
    assert!(h.s.is_introduced(7));
    assert_eq!(h.s.domains().collect::<Vec<_>>(), [7]);
    // The new connection works (it cannot read much, but it is served).
    assert_eq!(h.read(conn, 0, "/").unwrap_err(), "EACCES");
    // A negative gfn is accepted ("signed decimal"), a trailing reserved argument too.
    let got = h.req(d, XS_INTRODUCE, 0, &[b"8", b"-1", b"3", b""]);
    assert!(matches!(got.other[..], [Output::Introduce { domid: 8, gfn: u64::MAX, port: 3, .. }]));
}

#[test]
fn introduce_errors() {
    let mut h = H::new();
    let d = h.dom0;
    let c5 = h.introduce(5);
    let bad: [&[&[u8]]; 11] = [
        &[b"6", b"1"],
        &[b"0", b"1", b"1"],
        &[b"32752", b"1", b"1"],
        &[b"65536", b"1", b"1"],
        &[b"x", b"1", b"1"],
        &[b"", b"1", b"1"],
        &[b"6", b"1", b"0"],
        &[b"6", b"1", b"-3"],
        &[b"6", b"1", b"abc"],
        &[b"6", b"zz", b"1"],
        &[],
    ];
    for args in bad {
        assert_eq!(h.err(d, XS_INTRODUCE, 0, args), "EINVAL", "{args:?}");
    }
    assert!(!h.s.is_introduced(6));
    // Only the privileged domain.
    assert_eq!(h.err(c5, XS_INTRODUCE, 0, &[b"6", b"1", b"1"]), "EACCES");
    assert_eq!(h.err(c5, XS_RELEASE, 0, &[b"5"]), "EACCES");
    assert_eq!(h.err(c5, XS_IS_DOMAIN_INTRODUCED, 0, &[b"5"]), "EACCES");
    assert_eq!(h.err(c5, XS_RESUME, 0, &[b"5"]), "EACCES");
    // A local connection acting as a domU is not privileged either.
    let local5 = h.s.connect(5);
    assert_eq!(h.err(local5, XS_INTRODUCE, 0, &[b"6", b"1", b"1"]), "EACCES");
    assert!(!h.s.is_introduced(6));
}

#[test]
fn reintroduce_resets_the_connection() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.watch(c5, "w", "t");
    h.tx_start(c5);
    assert_eq!(h.introduce(5), c5);
    assert_eq!(h.s.watch_count(5), 0);
    assert_eq!(h.s.transaction_count(5), 0);
}

#[test]
fn release_removes_the_domains_nodes_and_connection() {
    let mut h = H::new();
    let d = h.dom0;
    let c5 = h.introduce(5);
    let c6 = h.introduce(6);
    h.home(5);
    h.home(6);
    h.write_ok(c5, "data/a/b", "1");
    // A node of dom6 granting dom5 access, a dom0 node granting it, and a node owned by
    // dom5 inside dom0's area.
    h.write_ok(c6, "data/for5", "");
    h.set_perms(c6, "/local/domain/6/data/for5", &["n6", "r5"]).unwrap();
    h.write_ok(d, "/backend/vbd/5/0/state", "4");
    h.set_perms(d, "/backend/vbd/5/0", &["n0", "b5"]).unwrap();
    h.write_ok(d, "/backend/vbd/5/1", "");
    h.set_perms(d, "/backend/vbd/5/1", &["n5"]).unwrap();
    h.write_ok(d, "/backend/vbd/5/1/kid", "");
    h.watch(d, "/local/domain/5", "home5");
    h.watch(d, "/backend/vbd/5/1/kid", "kid");
    h.watch(c5, "data", "own");
    // data, data/a, data/a/b, /backend/vbd/5/1 and its kid (created by dom0, inherits).
    assert_eq!(h.s.node_count(5), 5);

    let got = h.req(d, XS_RELEASE, 0, &[b"5"]);
    assert_eq!(got.reply.payload, b"OK\0");
    assert!(matches!(got.other[..], [Output::Release { domid: 5, conn }] if conn == c5));
    assert!(!h.s.is_introduced(5));
    assert_eq!(h.s.domain_conn(5), None);
    // Its connection is gone: nothing is processed on it and it gets no events.
    assert!(h.s.handle(c5, &crate::Message::with_strings(XS_READ, 1, 0, &[b"data"]).to_bytes()).is_empty());
    assert!(got.events_for(c5).is_empty());
    // Its nodes are removed, with watch events; others lose their entries for it.
    assert_eq!(h.s.node_count(5), 0);
    assert_eq!(h.read(d, 0, "/local/domain/5/data").unwrap_err(), "ENOENT");
    assert_eq!(h.read(d, 0, "/backend/vbd/5/1").unwrap_err(), "ENOENT");
    assert_eq!(h.read(d, 0, "/local/domain/5").unwrap(), "");
    assert_eq!(h.get_perms(d, "/local/domain/5").unwrap(), ["n0"]);
    assert_eq!(h.get_perms(d, "/backend/vbd/5/0").unwrap(), ["n0"]);
    assert_eq!(h.get_perms(d, "/local/domain/6/data/for5").unwrap(), ["n6"]);
    let mut events = got.events_for(d);
    events.sort();
    assert_eq!(events, [ev("/backend/vbd/5/1/kid", "kid"), ev("/local/domain/5/data", "home5")]);
    // Unaffected: domain 6.
    assert_eq!(h.read(c6, 0, "data/for5").unwrap(), "");
    // A new domain 5 inherits nothing.
    let c5b = h.introduce(5);
    assert_eq!(h.read(c5b, 0, "/local/domain/6/data/for5").unwrap_err(), "EACCES");
    assert_eq!(h.read(c5b, 0, "/backend/vbd/5/0/state").unwrap_err(), "EACCES");
}

#[test]
fn release_errors_and_direct_api() {
    let mut h = H::new();
    let d = h.dom0;
    assert_eq!(h.err(d, XS_RELEASE, 0, &[b"5"]), "ENOENT");
    assert_eq!(h.err(d, XS_RELEASE, 0, &[b"0"]), "EINVAL");
    assert_eq!(h.err(d, XS_RELEASE, 0, &[b"five"]), "EINVAL");
    assert_eq!(h.err(d, XS_RELEASE, 0, &[b"5", b"6"]), "EINVAL");
    h.introduce(5);
    assert_eq!(h.s.release_domain(5), Ok(()));
    assert_eq!(h.s.release_domain(5), Err(crate::Error::NoEnt));
    assert_eq!(h.s.release_domain(0), Err(crate::Error::Inval));
    assert!(matches!(h.s.take_outputs()[..], [Output::Release { domid: 5, .. }]));
    // Direct introduction.
    assert_eq!(h.s.introduce_domain(0, 1, 1), Err(crate::Error::Inval));
    assert_eq!(h.s.introduce_domain(3, 1, 0), Err(crate::Error::Inval));
    let c3 = h.s.introduce_domain(3, 1, 2).unwrap();
    assert_eq!(h.s.take_outputs(), [Output::Introduce { domid: 3, conn: c3, gfn: 1, port: 2 }]);
    // Local connections are closed with disconnect, domain ones are not.
    assert!(!h.s.disconnect(c3));
    assert!(h.s.reset_connection(c3));
    assert!(!h.s.reset_connection(crate::ConnId(9999)));
}

#[test]
fn release_of_a_domain_owning_the_root_keeps_the_root() {
    let mut h = H::new();
    let d = h.dom0;
    h.introduce(5);
    h.set_perms(d, "/", &["n5"]).unwrap();
    h.set_perms(d, "@releaseDomain", &["n5"]).unwrap();
    h.ok(d, XS_RELEASE, 0, &[b"5"]);
    assert_eq!(h.get_perms(d, "/").unwrap(), ["n0"]);
    assert_eq!(h.get_perms(d, "@releaseDomain").unwrap(), ["n0"]);
    assert_eq!(h.dir(d, 0, "/").unwrap(), ["tool"]);
}

#[test]
fn domain_queries() {
    let mut h = H::new();
    let d = h.dom0;
    let c5 = h.introduce(5);
    assert_eq!(h.ok(d, XS_GET_DOMAIN_PATH, 0, &[b"7"]), b"/local/domain/7\0");
    assert_eq!(h.ok(c5, XS_GET_DOMAIN_PATH, 0, &[b"0"]), b"/local/domain/0\0");
    assert_eq!(h.ok(d, XS_GET_DOMAIN_PATH, 0, &[b"65535"]), b"/local/domain/65535\0");
    for bad in [&b"x"[..], b"", b"65536", b"-1", b"1 "] {
        assert_eq!(h.err(d, XS_GET_DOMAIN_PATH, 0, &[bad]), "EINVAL", "{bad:?}");
    }
    assert_eq!(h.ok(d, XS_IS_DOMAIN_INTRODUCED, 0, &[b"5"]), b"T\0");
    assert_eq!(h.ok(d, XS_IS_DOMAIN_INTRODUCED, 0, &[b"6"]), b"F\0");
    assert_eq!(h.ok(d, XS_IS_DOMAIN_INTRODUCED, 0, &[b"0"]), b"T\0");
    assert_eq!(h.ok(d, XS_IS_DOMAIN_INTRODUCED, 0, &[b"32752"]), b"T\0");
    assert_eq!(h.err(d, XS_IS_DOMAIN_INTRODUCED, 0, &[b"x"]), "EINVAL");
    assert_eq!(h.ok(d, XS_RESUME, 0, &[b"5"]), b"OK\0");
    assert_eq!(h.err(d, XS_RESUME, 0, &[b"6"]), "ENOENT");
    assert_eq!(h.err(d, XS_RESUME, 0, &[b"0"]), "EINVAL");
    assert_eq!(h.err(d, XS_RESUME, 0, &[]), "EINVAL");
}

//! Xen's permission model.

use xen_abi::xs_wire::*;

use super::H;
use crate::{Access, Perm};

fn two_domains() -> (H, crate::ConnId, crate::ConnId) {
    let mut h = H::new();
    let c5 = h.introduce(5);
    let c6 = h.introduce(6);
    h.home(5);
    h.home(6);
    (h, c5, c6)
}

#[test]
fn domu_cannot_touch_another_domus_keys() {
    let (mut h, c5, c6) = two_domains();
    h.write_ok(c5, "data/secret", "s3cr3t");
    let p = "/local/domain/5/data/secret";
    assert_eq!(h.read(c6, 0, p).unwrap_err(), "EACCES");
    // Nothing is revealed about what exists below an unreadable parent.
    assert_eq!(h.read(c6, 0, "/local/domain/5/data/missing").unwrap_err(), "EACCES");
    assert_eq!(h.dir(c6, 0, "/local/domain/5/data").unwrap_err(), "EACCES");
    assert_eq!(h.write_err(c6, 0, p, "x"), "EACCES");
    assert_eq!(h.write_err(c6, 0, "/local/domain/5/data/new", "x"), "EACCES");
    assert_eq!(h.err(c6, XS_MKDIR, 0, &[b"/local/domain/5/data/new"]), "EACCES");
    assert_eq!(h.err(c6, XS_RM, 0, &[p.as_bytes()]), "EACCES");
    assert_eq!(h.get_perms(c6, p).unwrap_err(), "EACCES");
    assert_eq!(h.set_perms(c6, p, &["b6"]).unwrap_err(), "EACCES");
    assert_eq!(h.err(c6, XS_DIRECTORY_PART, 0, &[p.as_bytes(), b"0"]), "EACCES");
    // Nor the root, /local, or the other domain's home.
    assert_eq!(h.dir(c6, 0, "/").unwrap_err(), "EACCES");
    assert_eq!(h.dir(c6, 0, "/local/domain/5").unwrap_err(), "EACCES");
    // Its own home is readable, not writable (owned by dom0, r6).
    assert_eq!(h.dir(c6, 0, "/local/domain/6").unwrap(), ["data"]);
    assert_eq!(h.write_err(c6, 0, "/local/domain/6/x", "1"), "EACCES");
    // dom0 sees everything.
    assert_eq!(h.read(h.dom0, 0, p).unwrap(), "s3cr3t");
    assert_eq!(h.read(c5, 0, p).unwrap(), "s3cr3t");
}

#[test]
fn granted_access() {
    let (mut h, c5, c6) = two_domains();
    h.write_ok(c5, "data/shared", "v");
    let p = "/local/domain/5/data/shared";
    h.set_perms(c5, p, &["n5", "r6"]).unwrap();
    assert_eq!(h.read(c6, 0, p).unwrap(), "v");
    assert_eq!(h.write_err(c6, 0, p, "w"), "EACCES");
    // Reading a missing child of a readable node is ENOENT.
    assert_eq!(h.read(c6, 0, &format!("{p}/missing")).unwrap_err(), "ENOENT");
    h.set_perms(c5, p, &["n5", "b6"]).unwrap();
    h.write_ok(c6, p, "w");
    assert_eq!(h.read(c5, 0, p).unwrap(), "w");
    assert_eq!(h.get_perms(c6, p).unwrap(), ["n5", "b6"]);
    // A node created by dom6 copies the parent's permissions with dom6 as owner.
    h.write_ok(c6, &format!("{p}/kid"), "k");
    assert_eq!(h.get_perms(c6, &format!("{p}/kid")).unwrap(), ["n6", "b6"]);
    assert_eq!(h.s.node_count(6), 2);
    // The owner has full access whatever the entries say.
    h.set_perms(c5, p, &["n5", "n6"]).unwrap();
    assert_eq!(h.read(c6, 0, p).unwrap_err(), "EACCES");
    assert_eq!(h.read(c6, 0, &format!("{p}/kid")).unwrap(), "k");
    // A domain's own entry beats the default.
    h.set_perms(c5, p, &["r5", "n6"]).unwrap();
    assert_eq!(h.read(c6, 0, p).unwrap_err(), "EACCES");
    let c7 = h.introduce(7);
    assert_eq!(h.read(c7, 0, p).unwrap(), "w");
    assert_eq!(h.write_err(c7, 0, p, "x"), "EACCES");
    // The first entry's access is the default for everyone else.
    h.set_perms(c5, p, &["b5"]).unwrap();
    h.write_ok(c7, p, "by7");
}

#[test]
fn nodes_created_by_dom0_keep_the_parents_owner() {
    let (mut h, c5, _c6) = two_domains();
    h.write_ok(h.dom0, "/local/domain/5/data/from-dom0", "");
    assert_eq!(h.get_perms(c5, "data/from-dom0").unwrap(), ["n5"]);
    assert_eq!(h.s.node_count(5), 2);
    h.write_ok(h.dom0, "/fresh/node", "");
    assert_eq!(h.get_perms(h.dom0, "/fresh/node").unwrap(), ["n0"]);
}

#[test]
fn set_perms_rules() {
    let (mut h, c5, c6) = two_domains();
    h.write_ok(c5, "data/n", "");
    let p = "/local/domain/5/data/n";
    h.set_perms(c5, p, &["n5", "b6"]).unwrap();
    // Write access is not ownership.
    assert_eq!(h.set_perms(c6, p, &["n5", "b6", "r7"]).unwrap_err(), "EACCES");
    // Only the privileged domain changes the owner.
    assert_eq!(h.set_perms(c5, p, &["n6"]).unwrap_err(), "EPERM");
    h.set_perms(h.dom0, p, &["n6"]).unwrap();
    assert_eq!(h.get_perms(h.dom0, p).unwrap(), ["n6"]);
    assert_eq!(h.s.node_count(5), 1);
    assert_eq!(h.s.node_count(6), 2);
    h.set_perms(h.dom0, p, &["n5"]).unwrap();
    // Entries per node: 5 for domUs (inclusive), unlimited for dom0.
    h.set_perms(c5, p, &["n5", "r1", "r2", "r3", "r4"]).unwrap();
    assert_eq!(h.set_perms(c5, p, &["n5", "r1", "r2", "r3", "r4", "r6"]).unwrap_err(), "ENOSPC");
    h.set_perms(h.dom0, p, &["n5", "r1", "r2", "r3", "r4", "r6", "r7"]).unwrap();
    // Malformed entries.
    for bad in ["x5", "r", "r-1", "r65536", "r5a", "", "R5", "r 5", "r0x5"] {
        assert_eq!(h.set_perms(h.dom0, p, &["n5", bad]).unwrap_err(), "EINVAL", "{bad:?}");
    }
    assert_eq!(h.set_perms(h.dom0, p, &[]).unwrap_err(), "EINVAL");
    assert_eq!(h.set_perms(h.dom0, "/bad//path", &["n0"]).unwrap_err(), "EINVAL");
    assert_eq!(h.set_perms(c5, "data/missing", &["n5"]).unwrap_err(), "ENOENT");
    assert_eq!(h.set_perms(c5, "/local/domain/6/data/missing", &["n5"]).unwrap_err(), "EACCES");
    // All entries round-trip, including 65535.
    h.set_perms(h.dom0, p, &["w5", "b65535", "n0"]).unwrap();
    assert_eq!(h.get_perms(h.dom0, p).unwrap(), ["w5", "b65535", "n0"]);
    assert_eq!(h.s.perms(p).unwrap()[0], Perm::new(5, Access::Write));
    // Perms of special nodes can be set (and read) by dom0.
    h.set_perms(h.dom0, "@introduceDomain", &["n0", "r5"]).unwrap();
    assert_eq!(h.get_perms(c5, "@introduceDomain").unwrap(), ["n0", "r5"]);
    assert_eq!(h.get_perms(c6, "@introduceDomain").unwrap_err(), "EACCES");
}

#[test]
fn set_target_acts_for_the_target() {
    let (mut h, c5, _c6) = two_domains();
    let c7 = h.introduce(7);
    h.write_ok(c5, "data/dm", "x");
    assert_eq!(h.read(c7, 0, "/local/domain/5/data/dm").unwrap_err(), "EACCES");
    assert_eq!(h.err(c5, XS_SET_TARGET, 0, &[b"7", b"5"]), "EACCES");
    assert_eq!(h.err(h.dom0, XS_SET_TARGET, 0, &[b"7", b"9"]), "ENOENT");
    assert_eq!(h.err(h.dom0, XS_SET_TARGET, 0, &[b"9", b"5"]), "ENOENT");
    assert_eq!(h.err(h.dom0, XS_SET_TARGET, 0, &[b"7"]), "EINVAL");
    assert_eq!(h.err(h.dom0, XS_SET_TARGET, 0, &[b"7", b"x"]), "EINVAL");
    h.ok(h.dom0, XS_SET_TARGET, 0, &[b"7", b"5"]);
    assert_eq!(h.read(c7, 0, "/local/domain/5/data/dm").unwrap(), "x");
    h.write_ok(c7, "/local/domain/5/data/dm", "by7");
    // Releasing the target ends it.
    h.ok(h.dom0, XS_RELEASE, 0, &[b"5"]);
    h.home(5);
    let _c5 = h.introduce(5);
    h.write_ok(h.dom0, "/local/domain/5/data/again", "");
    assert_eq!(h.read(c7, 0, "/local/domain/5/data/again").unwrap_err(), "EACCES");
}

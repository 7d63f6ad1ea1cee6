//! Tree operations, paths, DIRECTORY_PART, quotas, CONTROL, errors, framing and the typed
//! helpers.

use xen_abi::xs_wire::*;

use super::{error_name, H};
use crate::error::ALL;
use crate::{frame_len, Access, Config, Error, FrameError, Message, Output, Perm, Quotas, Store};

#[test]
fn initial_tree() {
    let mut h = H::new();
    assert_eq!(h.dir(h.dom0, 0, "/").unwrap(), ["tool"]);
    assert_eq!(h.dir(h.dom0, 0, "/tool").unwrap(), ["xenstored"]);
    assert_eq!(h.dir(h.dom0, 0, "/tool/xenstored").unwrap(), Vec::<String>::new());
    assert_eq!(h.get_perms(h.dom0, "/").unwrap(), ["n0"]);
    assert_eq!(h.get_perms(h.dom0, "@introduceDomain").unwrap(), ["n0"]);
    assert_eq!(h.get_perms(h.dom0, "@releaseDomain").unwrap(), ["n0"]);
    assert_eq!(h.s.node_count(0), 5);
    assert_eq!(h.s.node_total(), 5);
}

#[test]
fn write_read_overwrite() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/a", "one");
    assert_eq!(h.read(d, 0, "/a").unwrap(), "one");
    h.write_ok(d, "/a", "two");
    assert_eq!(h.read(d, 0, "/a").unwrap(), "two");
    h.write_ok(d, "/a", "");
    assert_eq!(h.read(d, 0, "/a").unwrap(), "");
    assert_eq!(h.read(d, 0, "/missing").unwrap_err(), "ENOENT");
    // The reply of READ is the raw value, no NUL.
    let got = h.req(d, XS_READ, 0, &[b"/a"]);
    assert!(got.reply.payload.is_empty());
}

#[test]
fn write_binary_value_with_nuls() {
    let mut h = H::new();
    let got = h.req_payload(h.dom0, XS_WRITE, 0, b"/bin\0a\0b\0\xff");
    assert_eq!(got.reply.payload, b"OK\0");
    let got = h.req(h.dom0, XS_READ, 0, &[b"/bin"]);
    assert_eq!(got.reply.payload, b"a\0b\0\xff");
}

#[test]
fn write_creates_parents_with_empty_values() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/x/y/z", "v");
    assert_eq!(h.read(d, 0, "/x").unwrap(), "");
    assert_eq!(h.read(d, 0, "/x/y").unwrap(), "");
    assert_eq!(h.dir(d, 0, "/").unwrap(), ["tool", "x"]);
    assert_eq!(h.dir(d, 0, "/x").unwrap(), ["y"]);
    // New nodes copy their parent's permissions.
    assert_eq!(h.get_perms(d, "/x/y/z").unwrap(), ["n0"]);
}

#[test]
fn directory_keeps_creation_order() {
    let mut h = H::new();
    let d = h.dom0;
    for name in ["c", "a", "b"] {
        h.write_ok(d, &format!("/dir/{name}"), "");
    }
    assert_eq!(h.dir(d, 0, "/dir").unwrap(), ["c", "a", "b"]);
    assert_eq!(h.dir(d, 0, "/nope").unwrap_err(), "ENOENT");
    // A leaf: empty payload.
    let got = h.req(d, XS_DIRECTORY, 0, &[b"/dir/a"]);
    assert!(got.reply.payload.is_empty());
}

#[test]
fn mkdir_creates_and_keeps_existing() {
    let mut h = H::new();
    let d = h.dom0;
    h.ok(d, XS_MKDIR, 0, &[b"/m/n"]);
    assert_eq!(h.read(d, 0, "/m/n").unwrap(), "");
    h.write_ok(d, "/m/n", "keep");
    assert_eq!(h.ok(d, XS_MKDIR, 0, &[b"/m/n"]), b"OK\0");
    assert_eq!(h.read(d, 0, "/m/n").unwrap(), "keep");
    assert_eq!(h.err(d, XS_MKDIR, 0, &[b"/bad//path"]), "EINVAL");
    assert_eq!(h.err(d, XS_MKDIR, 0, &[b"@introduceDomain"]), "EINVAL");
}

#[test]
fn rm_is_recursive() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/r/a/b/c", "1");
    h.write_ok(d, "/r/a/d", "2");
    h.write_ok(d, "/r/e", "3");
    let before = h.s.node_count(0);
    h.ok(d, XS_RM, 0, &[b"/r/a"]);
    assert_eq!(h.s.node_count(0), before - 4);
    assert_eq!(h.read(d, 0, "/r/a/b/c").unwrap_err(), "ENOENT");
    assert_eq!(h.read(d, 0, "/r/a").unwrap_err(), "ENOENT");
    assert_eq!(h.dir(d, 0, "/r").unwrap(), ["e"]);
    // Missing node with an existing parent: fine. Missing parent too: ENOENT.
    assert_eq!(h.ok(d, XS_RM, 0, &[b"/r/a"]), b"OK\0");
    assert_eq!(h.err(d, XS_RM, 0, &[b"/r/a/b"]), "ENOENT");
    // The root cannot go.
    assert_eq!(h.err(d, XS_RM, 0, &[b"/"]), "EINVAL");
    assert_eq!(h.err(d, XS_RM, 0, &[b"@releaseDomain"]), "EINVAL");
    assert_eq!(h.dir(d, 0, "/").unwrap(), ["tool", "r"]);
}

#[test]
fn special_paths_only_for_watches_and_perms() {
    let mut h = H::new();
    let d = h.dom0;
    assert_eq!(h.read(d, 0, "@introduceDomain").unwrap_err(), "EINVAL");
    assert_eq!(h.write_err(d, 0, "@introduceDomain", "x"), "EINVAL");
    assert_eq!(h.dir(d, 0, "@releaseDomain").unwrap_err(), "EINVAL");
    assert_eq!(h.get_perms(d, "@other").unwrap_err(), "ENOENT");
    h.watch(d, "@anything", "t");
}

#[test]
fn relative_paths() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.home(5);
    h.write_ok(c5, "data/x", "rel");
    assert_eq!(h.read(h.dom0, 0, "/local/domain/5/data/x").unwrap(), "rel");
    assert_eq!(h.read(c5, 0, "data/x").unwrap(), "rel");
    assert_eq!(h.read(c5, 0, "/local/domain/5/data/x").unwrap(), "rel");
    // dom0's relative paths are under /local/domain/0.
    h.write_ok(h.dom0, "own", "0");
    assert_eq!(h.read(h.dom0, 0, "/local/domain/0/own").unwrap(), "0");
    // GET_DOMAIN_PATH agrees.
    assert_eq!(h.ok(c5, XS_GET_DOMAIN_PATH, 0, &[b"5"]), b"/local/domain/5\0");
}

#[test]
fn path_validation() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    h.home(5);
    let d = h.dom0;
    for bad in ["/a b", "/a/", "//a", "/a//b", "", "/a.b", "/a\\b", "/\u{e9}", "/a:b"] {
        assert_eq!(h.write_err(d, 0, bad, "x"), "EINVAL", "{bad:?}");
    }
    // Non-UTF-8 bytes.
    let got = h.req_payload(d, XS_WRITE, 0, b"/a\xff\0x");
    assert_eq!(error_name(&got.reply), "EINVAL");
    // Allowed characters.
    h.write_ok(d, "/Az09-_@x", "ok");
    // XENSTORE_ABS_PATH_MAX for everyone.
    let long = format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX - 1));
    assert_eq!(h.ok(d, XS_MKDIR, 0, &[long.as_bytes()]), b"OK\0");
    let too_long = format!("/{}", "a".repeat(XENSTORE_ABS_PATH_MAX));
    assert_eq!(h.err(d, XS_MKDIR, 0, &[too_long.as_bytes()]), "EINVAL");
    // path-max (2048) for domUs, counted after /local/domain/<id>/.
    // (Two long components: one name must also fit its parent's node-size quota.)
    let mid = "b".repeat(1000);
    let rel_ok = format!("data/{mid}/{}", "c".repeat(XENSTORE_REL_PATH_MAX - 5 - 1001));
    assert_eq!(rel_ok.len(), XENSTORE_REL_PATH_MAX);
    assert_eq!(h.ok(c5, XS_MKDIR, 0, &[rel_ok.as_bytes()]), b"OK\0");
    let rel_long = format!("{rel_ok}c");
    assert_eq!(h.err(c5, XS_MKDIR, 0, &[rel_long.as_bytes()]), "EINVAL");
    let abs_long = format!("/local/domain/5/{rel_long}");
    assert_eq!(h.err(c5, XS_MKDIR, 0, &[abs_long.as_bytes()]), "EINVAL");
    // dom0 is not limited by path-max.
    assert_eq!(h.ok(d, XS_MKDIR, 0, &[abs_long.as_bytes()]), b"OK\0");
}

#[test]
fn directory_part_small_and_chunked() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/p/one", "");
    h.write_ok(d, "/p/two", "");
    let gen = h.s.db.get("/p").unwrap().generation;
    let reply = h.ok(d, XS_DIRECTORY_PART, 0, &[b"/p", b"0"]);
    assert_eq!(reply, format!("{gen}\0one\0two\0\0").into_bytes());
    // Offset past the end: generation and an empty string.
    let reply = h.ok(d, XS_DIRECTORY_PART, 0, &[b"/p", b"8"]);
    assert_eq!(reply, format!("{gen}\0\0").into_bytes());
    let reply = h.ok(d, XS_DIRECTORY_PART, 0, &[b"/p", b"4"]);
    assert_eq!(reply, format!("{gen}\0two\0\0").into_bytes());
    // Needs exactly two strings.
    assert_eq!(h.err(d, XS_DIRECTORY_PART, 0, &[b"/p"]), "EINVAL");
    assert_eq!(h.err(d, XS_DIRECTORY_PART, 0, &[b"/p", b"0", b"1"]), "EINVAL");
    assert_eq!(h.err(d, XS_DIRECTORY_PART, 0, &[b"/nope", b"0"]), "ENOENT");
    // A change bumps the generation.
    h.write_ok(d, "/p/three", "");
    let reply = h.ok(d, XS_DIRECTORY_PART, 0, &[b"/p", b"0"]);
    assert!(!reply.starts_with(format!("{gen}\0").as_bytes()));

    // A directory too big for one payload: DIRECTORY is E2BIG, DIRECTORY_PART in chunks.
    for i in 0..300 {
        h.s.mkdir(d, 0, &format!("/big/child-with-a-longish-name-{i:04}")).unwrap();
    }
    assert_eq!(h.err(d, XS_DIRECTORY, 0, &[b"/big"]), "E2BIG");
    let mut all = Vec::new();
    let mut offset = 0usize;
    let mut chunks = 0;
    let mut gens = std::collections::BTreeSet::new();
    loop {
        let off = offset.to_string();
        let reply = h.ok(d, XS_DIRECTORY_PART, 0, &[b"/big", off.as_bytes()]);
        assert!(reply.len() <= XENSTORE_PAYLOAD_MAX);
        chunks += 1;
        let nul = reply.iter().position(|&b| b == 0).unwrap();
        gens.insert(reply[..nul].to_vec());
        let body = &reply[nul + 1..];
        if body.ends_with(b"\0\0") || body == b"\0" {
            let body = &body[..body.len() - 1];
            all.extend_from_slice(body);
            break;
        }
        all.extend_from_slice(body);
        offset += body.len();
    }
    assert!(chunks >= 3, "{chunks}");
    assert_eq!(gens.len(), 1);
    assert_eq!(all, h.s.db.get("/big").unwrap().children_bytes());
}

#[test]
fn node_quota_and_size_quota() {
    let quotas = Quotas { nodes: 10, node_size: 200, ..Quotas::default() };
    let mut h = H::with_config(Config { priv_domid: 0, quotas });
    let c5 = h.introduce(5);
    h.home(5);
    // Nodes count per owner; domain 5 owns data (1).
    assert_eq!(h.s.node_count(5), 1);
    for i in 0..9 {
        h.write_ok(c5, &format!("data/n{i}"), "");
    }
    assert_eq!(h.s.node_count(5), 10);
    assert_eq!(h.write_err(c5, 0, "data/n9", ""), "ENOSPC");
    // Several new nodes at once are all counted.
    h.ok(c5, XS_RM, 0, &[b"data/n8"]);
    assert_eq!(h.write_err(c5, 0, "data/deep/er", ""), "ENOSPC");
    assert_eq!(h.read(c5, 0, "data/deep").unwrap_err(), "ENOENT");
    h.write_ok(c5, "data/n8", "");
    // dom0 is not limited, even for nodes it creates for domain 5.
    h.write_ok(h.dom0, "/local/domain/5/data/by-dom0", "");
    assert_eq!(h.s.node_count(5), 11);

    // Node size: 16 + 8 per permission + value + children; limit 200 inclusive.
    h.ok(c5, XS_RM, 0, &[b"data/n0"]);
    h.ok(c5, XS_RM, 0, &[b"data/n1"]);
    let fits = "v".repeat(200 - 16 - 8);
    h.write_ok(c5, "data/n0", &fits);
    assert_eq!(h.write_err(c5, 0, "data/n0", &format!("{fits}v")), "ENOSPC");
    assert_eq!(h.read(c5, 0, "data/n0").unwrap(), fits);
    assert_eq!(h.write_err(c5, 0, "data/n1", &format!("{fits}v")), "ENOSPC");
    // Adding a child grows the parent's children list.
    h.ok(c5, XS_RM, 0, &[b"data/n2"]);
    assert_eq!(h.write_err(c5, 0, "data/n0/child", ""), "ENOSPC");
    // dom0 may write big values.
    h.write_ok(h.dom0, "/local/domain/5/data/n0", &"x".repeat(3000));
}

#[test]
fn quotas_named_and_control() {
    let mut h = H::new();
    let d = h.dom0;
    let text = String::from_utf8(h.ok(d, XS_CONTROL, 0, &[b"quota"])).unwrap();
    assert!(text.starts_with("Quota settings:\n"));
    assert!(text.contains("nodes") && text.contains("1000"), "{text}");
    assert_eq!(h.ok(d, XS_CONTROL, 0, &[b"quota", b"set", b"nodes", b"7"]), b"OK\0");
    assert_eq!(h.s.config().quotas.nodes, 7);
    assert_eq!(h.ok(d, XS_CONTROL, 0, &[b"quota", b"set", b"permissions", b"3"]), b"OK\0");
    assert_eq!(h.s.config().quotas.permissions, 3);
    assert_eq!(h.err(d, XS_CONTROL, 0, &[b"quota", b"set", b"nodes", b"0"]), "EINVAL");
    assert_eq!(h.err(d, XS_CONTROL, 0, &[b"quota", b"set", b"bogus", b"5"]), "EINVAL");
    assert_eq!(h.err(d, XS_CONTROL, 0, &[b"quota", b"set", b"nodes"]), "EINVAL");
    let text = String::from_utf8(h.ok(d, XS_CONTROL, 0, &[b"quota", b"0"])).unwrap();
    assert!(text.starts_with("Domain 0:\n") && text.contains("5\n"), "{text}");
    assert_eq!(h.err(d, XS_CONTROL, 0, &[b"quota", b"x"]), "EINVAL");
}

#[test]
fn control_commands() {
    let mut h = H::new();
    let d = h.dom0;
    let help = String::from_utf8(h.ok(d, XS_CONTROL, 0, &[b"help"])).unwrap();
    for cmd in ["check", "log", "print", "quota", "help"] {
        assert!(help.contains(cmd), "{help}");
    }
    assert_eq!(h.ok(d, XS_CONTROL, 0, &[b"check"]), b"OK\0");
    let got = h.req(d, XS_CONTROL, 0, &[b"print", b"hello"]);
    assert_eq!(got.reply.payload, b"OK\0");
    assert_eq!(got.other, [Output::Log("control: hello".into())]);
    assert!(String::from_utf8(h.ok(d, XS_CONTROL, 0, &[b"log"])).unwrap().contains("off"));
    h.ok(d, XS_CONTROL, 0, &[b"log", b"on"]);
    let got = h.req(d, XS_READ, 0, &[b"/tool"]);
    assert!(matches!(&got.other[..], [Output::Log(l)] if l.contains("XS_READ")), "{:?}", got.other);
    h.ok(d, XS_CONTROL, 0, &[b"log", b"off"]);
    assert!(h.req(d, XS_READ, 0, &[b"/tool"]).other.is_empty());
    let bads: [&[&[u8]]; 6] = [&[b"nope"], &[b"print"], &[b"check", b"x"], &[b"log", b"maybe"], &[b"help", b"x"], &[]];
    for bad in bads {
        assert_eq!(h.err(d, XS_CONTROL, 0, bad), "EINVAL", "{bad:?}");
    }
    assert_eq!(h.err(d, XS_DEBUG, 0, &[b"live-update"]), "EINVAL");
    let c5 = h.introduce(5);
    assert_eq!(h.err(c5, XS_CONTROL, 0, &[b"help"]), "EACCES");
}

#[test]
fn error_names_come_from_xsd_errors() {
    for e in ALL {
        assert_eq!(xen_abi::xs_wire::xsd_error_string(e.errnum()), Some(e.name()));
        assert_eq!(Error::from_name(e.name().as_bytes()), Some(e));
        let mut with_nul = e.name().as_bytes().to_vec();
        with_nul.push(0);
        assert_eq!(Error::from_name(&with_nul), Some(e));
    }
    assert_eq!(Error::from_name(b"EQUOTA"), None);
    assert_eq!(Error::NoSpc.to_string(), "ENOSPC");
    let m = Message::error(7, 9, Error::Again);
    assert_eq!((m.type_, m.req_id, m.tx_id, &m.payload[..]), (XS_ERROR, 7, 9, &b"EAGAIN\0"[..]));
}

#[test]
fn framing_helper() {
    let m = Message::with_strings(XS_READ, 1, 0, &[b"/a"]);
    let bytes = m.to_bytes();
    assert_eq!(bytes.len(), 16 + 3);
    assert_eq!(frame_len(&bytes[..10]), Ok(None));
    assert_eq!(frame_len(&bytes[..18]), Ok(None));
    assert_eq!(frame_len(&bytes), Ok(Some(19)));
    let mut two = bytes.clone();
    two.extend_from_slice(&bytes);
    assert_eq!(frame_len(&two), Ok(Some(19)));
    assert_eq!(Message::parse(&bytes).unwrap(), m);
    let mut big = m.clone();
    big.payload = vec![0; XENSTORE_PAYLOAD_MAX + 1];
    assert_eq!(frame_len(&big.to_bytes()), Err(FrameError::TooLong(4097)));
    assert_eq!(Message::parse(&bytes[..5]), Err(FrameError::ShortHeader));
    assert_eq!(Message::parse(&bytes[..18]), Err(FrameError::LengthMismatch { len: 3, actual: 2 }));
}

#[test]
fn typed_helpers() {
    let mut s = Store::new(Config::default());
    let d = s.connect(0);
    s.write(d, 0, "/local/domain/3/name", b"three").unwrap();
    s.mkdir(d, 0, "/local/domain/3/device").unwrap();
    assert_eq!(s.read(d, 0, "/local/domain/3/name").unwrap(), b"three");
    assert_eq!(s.directory(d, 0, "/local/domain/3").unwrap(), ["name", "device"]);
    s.set_perms(d, 0, "/local/domain/3", &[Perm::new(3, Access::None), Perm::new(0, Access::Read)]).unwrap();
    assert_eq!(s.get_perms(d, 0, "/local/domain/3").unwrap(), [Perm::new(3, Access::None), Perm::new(0, Access::Read)]);
    s.watch(d, "/local/domain/3", b"tok").unwrap();
    let outs = s.take_outputs();
    assert_eq!(outs, [Output::Send { conn: d, msg: Message::watch_event(b"/local/domain/3", b"tok") }]);
    let tx = s.transaction_start(d).unwrap();
    s.write(d, tx, "/local/domain/3/name", b"new").unwrap();
    assert_eq!(s.read(d, 0, "/local/domain/3/name").unwrap(), b"three");
    assert!(s.take_outputs().is_empty());
    s.transaction_end(d, tx, true).unwrap();
    assert_eq!(s.read(d, 0, "/local/domain/3/name").unwrap(), b"new");
    assert_eq!(s.take_outputs().len(), 1);
    s.unwatch(d, "/local/domain/3", b"tok").unwrap();
    s.rm(d, 0, "/local/domain/3").unwrap();
    assert_eq!(s.read(d, 0, "/local/domain/3/name"), Err(Error::NoEnt));
    assert_eq!(s.transaction_end(d, 99, true), Err(Error::NoEnt));
    assert!(s.disconnect(d));
    assert!(!s.disconnect(d));
    assert_eq!(s.read(d, 0, "/"), Err(Error::Inval));
    s.check().unwrap();
}

#[test]
fn control_check_reports_corruption() {
    let mut h = H::new();
    let d = h.dom0;
    h.write_ok(d, "/c/d", "");
    // Corrupt the tree behind the store's back: /c lists a child that is gone.
    h.s.db.nodes.remove("/c/d");
    assert!(h.s.check().unwrap_err().contains("/c lists missing child d"));
    let outs = h.s.handle(d, &Message::with_strings(XS_CONTROL, 3, 0, &[b"check"]).to_bytes());
    match &outs[..] {
        [Output::Log(line), Output::Send { msg, .. }] => {
            assert!(line.contains("check failed"), "{line}");
            assert_eq!(error_name(msg), "EIO");
        }
        other => panic!("{other:?}"),
    }
}

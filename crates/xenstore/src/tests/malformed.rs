//! Malformed and oversized messages: an EINVAL/ENOSYS reply, nothing else changes.

use xen_abi::xs_wire::*;

use super::{error_name, ev, H};
use crate::{ConnId, Message, Output};

fn header(ty: u32, req: u32, tx: u32, len: u32) -> Vec<u8> {
    [ty, req, tx, len].iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn short_header() {
    let mut h = H::new();
    let full = header(XS_READ, 0x0102_0304, 0, 0);
    for n in 0..16 {
        let got = h.bytes(h.dom0, &full[..n]);
        assert_eq!(error_name(&got.reply), "EINVAL");
        // What is there of req_id is echoed.
        let mut expect = [0u8; 4];
        let have = n.saturating_sub(4).min(4);
        expect[..have].copy_from_slice(&full[4..4 + have]);
        assert_eq!(got.reply.req_id, u32::from_le_bytes(expect), "{n}");
    }
}

#[test]
fn oversized_and_mismatched_lengths() {
    let mut h = H::new();
    let d = h.dom0;
    // len over XENSTORE_PAYLOAD_MAX, with the bytes present or not.
    let mut msg = header(XS_WRITE, 9, 0, XENSTORE_PAYLOAD_MAX as u32 + 1);
    msg.extend_from_slice(b"/big\0");
    msg.resize(16 + XENSTORE_PAYLOAD_MAX + 1, b'x');
    let got = h.bytes(d, &msg);
    assert_eq!((error_name(&got.reply).as_str(), got.reply.req_id), ("EINVAL", 9));
    let got = h.bytes(d, &header(XS_READ, 10, 3, u32::MAX));
    assert_eq!((error_name(&got.reply).as_str(), got.reply.req_id, got.reply.tx_id), ("EINVAL", 10, 3));
    assert_eq!(h.read(d, 0, "/big").unwrap_err(), "ENOENT");
    // Exactly XENSTORE_PAYLOAD_MAX is fine.
    let mut msg = header(XS_WRITE, 11, 0, XENSTORE_PAYLOAD_MAX as u32);
    msg.extend_from_slice(b"/max\0");
    msg.resize(16 + XENSTORE_PAYLOAD_MAX, b'x');
    assert_eq!(h.bytes(d, &msg).reply.payload, b"OK\0");
    assert_eq!(h.s.value("/max").unwrap().len(), XENSTORE_PAYLOAD_MAX - 5);
    // Fewer or more bytes than len.
    let mut msg = header(XS_READ, 12, 0, 10);
    msg.extend_from_slice(b"/tool\0");
    assert_eq!(error_name(&h.bytes(d, &msg).reply), "EINVAL");
    let mut msg = header(XS_READ, 13, 0, 2);
    msg.extend_from_slice(b"/tool\0");
    assert_eq!(error_name(&h.bytes(d, &msg).reply), "EINVAL");
}

#[test]
fn unknown_and_reply_only_types() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    for ty in [XS_WATCH_EVENT, XS_ERROR, 20, XS_TYPE_COUNT, 24, 25, 26, 100, XS_INVALID, u32::MAX] {
        for conn in [h.dom0, c5] {
            let got = h.raw(conn, &Message::with_strings(ty, 5, 0, &[b"/tool"]));
            assert_eq!(error_name(&got.reply), "ENOSYS", "type {ty}");
        }
    }
    // Privileged types from a domU are refused before their payload is looked at.
    for ty in [XS_CONTROL, XS_INTRODUCE, XS_RELEASE, XS_IS_DOMAIN_INTRODUCED, XS_RESUME, XS_SET_TARGET] {
        let got = h.raw(c5, &Message::new(ty, 6, 0, b"\xff\xfe".to_vec()));
        assert_eq!(error_name(&got.reply), "EACCES", "type {ty}");
    }
}

#[test]
fn bad_payloads() {
    let mut h = H::new();
    let d = h.dom0;
    let onearg_types = [
        XS_READ,
        XS_MKDIR,
        XS_RM,
        XS_DIRECTORY,
        XS_GET_PERMS,
        XS_GET_DOMAIN_PATH,
        XS_RELEASE,
        XS_IS_DOMAIN_INTRODUCED,
        XS_RESUME,
    ];
    for ty in onearg_types {
        for payload in [&b""[..], b"/tool", b"/tool\0/x\0", b"/tool\0x", b"\0"] {
            let got = h.req_payload(d, ty, 0, payload);
            assert_eq!(error_name(&got.reply), "EINVAL", "type {ty} payload {payload:?}");
        }
    }
    for ty in [XS_WRITE, XS_SET_PERMS, XS_WATCH, XS_UNWATCH, XS_DIRECTORY_PART, XS_INTRODUCE, XS_SET_TARGET, XS_CONTROL]
    {
        for payload in [&b""[..], b"/no-nul"] {
            let got = h.req_payload(d, ty, 0, payload);
            assert_eq!(error_name(&got.reply), "EINVAL", "type {ty} payload {payload:?}");
        }
    }
    // Non-UTF-8 and control characters in paths.
    for path in [&b"/\xc3\xa9"[..], b"/a\x01", b"/a\n", b"\xff"] {
        let got = h.req(d, XS_READ, 0, &[path]);
        assert_eq!(error_name(&got.reply), "EINVAL");
        let got = h.req(d, XS_WATCH, 0, &[path, b"t"]);
        assert_eq!(error_name(&got.reply), "EINVAL");
    }
    h.s.check().unwrap();
    assert_eq!(h.s.node_total(), 5);
}

#[test]
fn garbage_does_not_disturb_other_connections() {
    let mut h = H::new();
    let c5 = h.introduce(5);
    let c6 = h.introduce(6);
    h.home(5);
    h.home(6);
    h.watch(c6, "data", "w");
    let tx = h.tx_start(c6);
    h.write(c6, tx, "data/pending", "1");
    h.write_ok(c5, "data/mine", "1");
    let before: Vec<_> = h.s.db.nodes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut seed = 0x1234_5678_9abc_def0u64;
    for i in 0..2000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 40) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|j| (seed >> (j % 8 * 8)) as u8 ^ j as u8).collect();
        if i % 3 == 0 && bytes.len() >= 16 {
            // A plausible header with a wrong length.
            bytes[12..16].copy_from_slice(&((len as u32) + 1).to_le_bytes());
        }
        let outs = h.s.handle(c5, &bytes);
        // Only a reply to the sender (an error for anything that is not a valid request).
        assert!(outs.len() <= 2, "{outs:?}");
        for o in &outs {
            match o {
                Output::Send { conn, msg } => {
                    assert_eq!(*conn, c5, "{o:?}");
                    assert!(msg.type_ == XS_ERROR || msg.type_ == XS_WATCH_EVENT || msg.type_ < XS_TYPE_COUNT);
                }
                other => panic!("{other:?}"),
            }
        }
        h.s.check().unwrap();
    }
    let after: Vec<_> = h.s.db.nodes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(before, after, "random bytes changed the store");
    // Domain 6's transaction and watch are intact.
    let got = h.tx_end(c6, tx, true);
    assert_eq!(got.reply.payload, b"OK\0");
    assert_eq!(got.events_for(c6), [ev("data/pending", "w")]);
    // Messages on unknown connections are dropped.
    assert!(h.s.handle(ConnId(4242), &Message::with_strings(XS_READ, 1, 0, &[b"/"]).to_bytes()).is_empty());
}

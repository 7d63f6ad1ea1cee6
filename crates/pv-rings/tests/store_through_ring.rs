//! A real `xenstore::Store` served through the ring: the agent's loop in miniature.

mod common;

use std::collections::BTreeMap;

use common::*;
use pv_rings::{MemPage, SharedPage, XenstoreConfig, XenstoreConnection};
use xen_abi::xs_wire::*;
use xenstore::{Access, Config, ConnId, Message, Output, Perm, Store};

/// One pass of the agent: reconnect check, read and handle requests, write responses.
/// Returns whether the guest would be signalled.
fn serve(
    store: &mut Store,
    rings: &mut BTreeMap<ConnId, XenstoreConnection>,
    pages: &BTreeMap<ConnId, MemPage>,
) -> bool {
    for (&id, conn) in rings.iter_mut() {
        if conn.handle_reconnect(&pages[&id]) {
            store.reset_connection(id);
        }
    }
    let ids: Vec<ConnId> = rings.keys().copied().collect();
    for id in &ids {
        loop {
            let msg = match rings.get_mut(id).unwrap().read_message(&pages[id]) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => panic!("fatal ring error: {e}"),
            };
            for out in store.handle(*id, &msg) {
                if let Output::Send { conn, msg } = out {
                    rings.get_mut(&conn).unwrap().queue(msg.to_bytes()).unwrap();
                }
            }
        }
    }
    let mut notify = false;
    for (id, conn) in rings.iter_mut() {
        conn.write_responses(&pages[id]).unwrap();
        notify |= conn.take_notify();
    }
    notify
}

/// Parses complete messages off the front of `buf`.
fn parse_all(buf: &mut Vec<u8>) -> Vec<Message> {
    let mut msgs = Vec::new();
    while let Ok(Some(n)) = xenstore::frame_len(buf) {
        msgs.push(Message::parse(&buf[..n]).unwrap());
        buf.drain(..n);
    }
    msgs
}

#[test]
fn write_and_read_through_the_ring() {
    let mut store = Store::new(Config::default());
    let tools = store.connect(0);
    store.mkdir(tools, 0, "/local/domain/5").unwrap();
    store.set_perms(tools, 0, "/local/domain/5", &[Perm::new(5, Access::None)]).unwrap();
    let dom5 = store.introduce_domain(5, 0x1234, 7).unwrap();
    store.take_outputs();

    let page = MemPage::new();
    let mut conn = XenstoreConnection::new(XenstoreConfig::default());
    conn.introduce(&page);
    let mut rings = BTreeMap::from([(dom5, conn)]);
    let pages = BTreeMap::from([(dom5, page)]);
    let page = &pages[&dom5];

    // The guest (like Linux's xenbus) puts a watch, a write and a read in the ring at once.
    let watch = Message::with_strings(XS_WATCH, 1, 0, &[b"name", b"tok"]).to_bytes();
    let write = Message::new(XS_WRITE, 2, 0, b"name\0guest".to_vec()).to_bytes();
    let read = Message::with_strings(XS_READ, 3, 0, &[b"name"]).to_bytes();
    let batch = [watch, write, read].concat();
    assert_eq!(xs_send(page, &batch), batch.len());

    assert!(serve(&mut store, &mut rings, &pages));
    let mut rx = xs_recv(page, 4096);
    let msgs = parse_all(&mut rx);
    assert!(rx.is_empty());
    let summary: Vec<(u32, u32, Vec<u8>)> = msgs.iter().map(|m| (m.type_, m.req_id, m.payload.clone())).collect();
    assert_eq!(
        summary,
        vec![
            (XS_WATCH, 1, b"OK\0".to_vec()),
            (XS_WATCH_EVENT, 0, b"name\0tok\0".to_vec()),
            // As in C xenstored, the write fires the watch before its reply goes out.
            (XS_WATCH_EVENT, 0, b"name\0tok\0".to_vec()),
            (XS_WRITE, 2, b"OK\0".to_vec()),
            (XS_READ, 3, b"guest".to_vec()),
        ]
    );
    assert_eq!(store.value("/local/domain/5/name"), Some(&b"guest"[..]));

    // A large value makes a reply that must wait for the guest to make room.
    let big = vec![b'v'; 2000];
    let mut w = b"big\0".to_vec();
    w.extend_from_slice(&big);
    // The 2020-byte request does not fit the 1024-byte ring either: the guest sends it in
    // pieces as the server consumes.
    let mut tx = Message::new(XS_WRITE, 4, 0, w).to_bytes();
    tx.extend(Message::with_strings(XS_READ, 5, 0, &[b"big"]).to_bytes());
    let mut rx = Vec::new();
    let mut msgs = Vec::new();
    for _ in 0..20 {
        let n = xs_send(page, &tx);
        tx.drain(..n);
        serve(&mut store, &mut rings, &pages);
        rx.extend(xs_recv(page, 300));
        msgs.extend(parse_all(&mut rx));
    }
    let summary: Vec<(u32, u32, usize)> = msgs.iter().map(|m| (m.type_, m.req_id, m.payload.len())).collect();
    assert_eq!(summary, vec![(XS_WRITE, 4, 3), (XS_READ, 5, 2000)]);
    assert_eq!(msgs[1].payload, big);
    assert!(tx.is_empty());

    // The guest reconnects: its watch is gone afterwards.
    page.write_u32(CONNECTION, XENSTORE_RECONNECT);
    serve(&mut store, &mut rings, &pages);
    assert_eq!(store.watch_count(5), 0);
    xs_send(page, &Message::new(XS_WRITE, 6, 0, b"name\0again".to_vec()).to_bytes());
    serve(&mut store, &mut rings, &pages);
    let mut rx = xs_recv(page, 4096);
    let summary: Vec<(u32, u32)> = parse_all(&mut rx).iter().map(|m| (m.type_, m.req_id)).collect();
    assert_eq!(summary, vec![(XS_WRITE, 6)], "no watch event after the reset");
}

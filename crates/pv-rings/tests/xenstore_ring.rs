//! The xenstore ring server against a rule-abiding (and a misbehaving) guest.

mod common;

use common::*;
use pv_rings::{MemPage, QueueError, SharedPage, XenstoreConfig, XenstoreConnection, XsRingError, MAX_MESSAGE_SIZE};
use xen_abi::xs_wire::*;

fn setup() -> (MemPage, XenstoreConnection) {
    let page = MemPage::new();
    let mut conn = XenstoreConnection::new(XenstoreConfig::default());
    conn.introduce(&page);
    assert!(conn.take_notify());
    (page, conn)
}

fn read_all(page: &MemPage, conn: &mut XenstoreConnection) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    while let Some(m) = conn.read_message(page).unwrap() {
        v.push(m);
    }
    v
}

#[test]
fn introduce_advertises_features_and_empties_the_rings() {
    let page = MemPage::new();
    for (off, v) in [(REQ_CONS, 7), (REQ_PROD, 9), (RSP_CONS, 100), (RSP_PROD, 3000), (ERROR, 2), (CONNECTION, 1)] {
        page.write_u32(off, v);
    }
    let mut conn = XenstoreConnection::new(XenstoreConfig::default());
    assert_eq!(conn.read_message(&page), Ok(None), "nothing is served before introduce");
    conn.introduce(&page);
    assert_eq!(page.read_u32(FEATURES), XENSTORE_SERVER_FEATURE_ERROR | XENSTORE_SERVER_FEATURE_RECONNECTION);
    for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD, ERROR, CONNECTION] {
        assert_eq!(page.read_u32(off), 0, "offset {off}");
    }
    assert!(conn.is_serving());
}

#[test]
fn several_messages_in_one_batch() {
    let (page, mut conn) = setup();
    let a = msg(XS_READ, 1, b"a\0");
    let b = msg(XS_DIRECTORY, 2, b"");
    let c = msg(XS_WRITE, 3, b"x\0value");
    let all = [a.clone(), b.clone(), c.clone()].concat();
    assert_eq!(xs_send(&page, &all), all.len());
    assert_eq!(read_all(&page, &mut conn), vec![a, b, c]);
    assert_eq!(page.read_u32(REQ_CONS), all.len() as u32);
    assert!(conn.take_notify());
}

#[test]
fn message_split_across_the_ring_wrap() {
    let (page, mut conn) = setup();
    // A 1016-byte message moves the indices to 8 bytes before the end of the ring.
    let first = msg(XS_WRITE, 1, &[b'x'; 1000]);
    xs_send(&page, &first);
    assert_eq!(read_all(&page, &mut conn), vec![first]);
    // The next header itself straddles offset 1024.
    let second = msg(XS_WRITE, 2, &[b'y'; 200]);
    xs_send(&page, &second);
    assert_eq!(read_all(&page, &mut conn), vec![second]);
    assert_eq!(page.read_u32(REQ_CONS), 1016 + 216);
}

#[test]
fn indices_wrapping_around_u32() {
    let (page, mut conn) = setup();
    page.write_u32(REQ_CONS, u32::MAX - 5);
    page.write_u32(REQ_PROD, u32::MAX - 5);
    let m = msg(XS_READ, 9, b"some/path\0");
    xs_send(&page, &m);
    assert_eq!(read_all(&page, &mut conn), vec![m.clone()]);
    assert_eq!(page.read_u32(REQ_CONS), (u32::MAX - 5).wrapping_add(m.len() as u32));

    page.write_u32(RSP_CONS, u32::MAX - 3);
    page.write_u32(RSP_PROD, u32::MAX - 3);
    conn.queue(m.clone()).unwrap();
    assert_eq!(conn.write_responses(&page), Ok(m.len()));
    assert_eq!(xs_recv(&page, 4096), m);
}

#[test]
fn partial_header_then_rest() {
    let (page, mut conn) = setup();
    let m = msg(XS_READ, 5, b"name\0");
    xs_send(&page, &m[..10]);
    assert_eq!(conn.read_message(&page), Ok(None));
    assert_eq!(page.read_u32(REQ_CONS), 10, "partial header consumed");
    xs_send(&page, &m[10..18]);
    assert_eq!(conn.read_message(&page), Ok(None));
    xs_send(&page, &m[18..]);
    assert_eq!(conn.read_message(&page), Ok(Some(m)));
    assert_eq!(conn.read_message(&page), Ok(None));
}

#[test]
fn reads_no_further_than_the_current_message() {
    let (page, mut conn) = setup();
    let a = msg(XS_READ, 1, b"a\0");
    let b = msg(XS_READ, 2, b"b\0");
    xs_send(&page, &[a.clone(), b.clone()].concat());
    assert_eq!(conn.read_message(&page), Ok(Some(a.clone())));
    assert_eq!(page.read_u32(REQ_CONS), a.len() as u32, "the second message stays in the ring");
}

#[test]
fn empty_payload_message() {
    let (page, mut conn) = setup();
    let m = msg(XS_TRANSACTION_START, 3, b"");
    xs_send(&page, &m);
    assert_eq!(read_all(&page, &mut conn), vec![m]);
}

#[test]
fn oversized_length_is_a_protocol_error() {
    let (page, mut conn) = setup();
    let mut m = msg(XS_WRITE, 1, b"x\0y");
    m[12..16].copy_from_slice(&(XENSTORE_PAYLOAD_MAX as u32 + 1).to_le_bytes());
    xs_send(&page, &m);
    assert_eq!(conn.read_message(&page), Err(XsRingError::PayloadTooLong { len: 4097 }));
    assert_eq!(page.read_u32(ERROR), XENSTORE_ERROR_PROTO);
    assert_eq!(conn.failed(), Some(XsRingError::PayloadTooLong { len: 4097 }));
    // The connection is ignored from now on.
    xs_send(&page, &msg(XS_READ, 2, b"a\0"));
    assert_eq!(conn.read_message(&page), Ok(None));
    assert_eq!(conn.queue(msg(XS_READ, 1, b"")), Err(QueueError::NotServing));
    assert_eq!(conn.write_responses(&page), Ok(0));
    // Exactly the maximum is fine.
    let (page, mut conn) = setup();
    let m = msg(XS_WRITE, 1, &vec![b'z'; XENSTORE_PAYLOAD_MAX]);
    let mut sent = 0;
    let mut got = None;
    while got.is_none() {
        sent += xs_send(&page, &m[sent..]);
        got = conn.read_message(&page).unwrap();
    }
    assert_eq!(got, Some(m));
}

#[test]
fn garbage_request_indices_are_fatal_not_a_panic() {
    let (page, mut conn) = setup();
    page.write_u32(REQ_CONS, 10);
    page.write_u32(REQ_PROD, 10 + 1025);
    assert_eq!(conn.read_message(&page), Err(XsRingError::BadRequestIndexes { cons: 10, prod: 1035 }));
    assert_eq!(page.read_u32(ERROR), XENSTORE_ERROR_RINGIDX);
    assert_eq!(page.read_u32(REQ_CONS), 10, "nothing consumed");
    assert!(!conn.is_serving());
    // prod behind cons is garbage too.
    let (page, mut conn) = setup();
    page.write_u32(REQ_CONS, 100);
    page.write_u32(REQ_PROD, 99);
    assert!(matches!(conn.read_message(&page), Err(XsRingError::BadRequestIndexes { .. })));
    // A full ring (exactly 1024) is not.
    let (page, mut conn) = setup();
    page.write_u32(REQ_CONS, 5);
    page.write_u32(REQ_PROD, 5 + 1024);
    assert!(conn.read_message(&page).is_ok());
}

#[test]
fn garbage_response_indices_are_fatal() {
    let (page, mut conn) = setup();
    conn.queue(msg(XS_READ, 1, b"v")).unwrap();
    page.write_u32(RSP_CONS, 0);
    page.write_u32(RSP_PROD, 2000);
    assert_eq!(conn.write_responses(&page), Err(XsRingError::BadResponseIndexes { cons: 0, prod: 2000 }));
    assert_eq!(page.read_u32(ERROR), XENSTORE_ERROR_RINGIDX);
    assert_eq!(page.read_u32(RSP_PROD), 2000, "nothing published");
    assert!(!conn.has_output(), "queued output dropped");
}

#[test]
fn random_page_contents_never_panic() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u32
    };
    for round in 0..2000 {
        let (page, mut conn) = setup();
        for i in 0..(4096 / 4) {
            page.write_u32(i * 4, next());
        }
        if round % 2 == 0 {
            // Plausible indices, random data: headers with random lengths.
            let c = next();
            page.write_u32(REQ_CONS, c);
            page.write_u32(REQ_PROD, c.wrapping_add(next() % 1025));
            page.write_u32(RSP_CONS, c);
            page.write_u32(RSP_PROD, c.wrapping_add(next() % 1025));
            page.write_u32(CONNECTION, 0);
        }
        conn.handle_reconnect(&page);
        for _ in 0..4 {
            if conn.read_message(&page).is_err() {
                break;
            }
        }
        let _ = conn.queue(msg(XS_READ, 1, &[0; 100]));
        let _ = conn.write_responses(&page);
    }
}

#[test]
fn reply_larger_than_free_space_goes_in_pieces() {
    let (page, mut conn) = setup();
    // The guest leaves 300 bytes of unread responses in the ring.
    conn.queue(msg(XS_READ, 1, &[b'a'; 284])).unwrap();
    assert_eq!(conn.write_responses(&page), Ok(300));
    let big = msg(XS_READ, 2, &(0..3000).map(|i| i as u8).collect::<Vec<_>>());
    conn.queue(big.clone()).unwrap();
    assert_eq!(conn.write_responses(&page), Ok(724), "only the free space");
    assert_eq!(conn.write_responses(&page), Ok(0), "ring full");
    assert!(conn.has_output());
    let mut got = xs_recv(&page, 4096);
    assert_eq!(got.len(), 1024);
    got.drain(..300);
    let mut calls = 1;
    while conn.has_output() {
        let n = conn.write_responses(&page).unwrap();
        assert!(n > 0 && n <= 1024);
        got.extend(xs_recv(&page, 500));
        calls += 1;
    }
    got.extend(xs_recv(&page, 4096));
    assert_eq!(got, big);
    assert!(calls > 4);
    assert_eq!(conn.queued_bytes(), 0);
}

#[test]
fn output_queue_is_bounded_and_applies_back_pressure() {
    let page = MemPage::new();
    let mut conn = XenstoreConnection::new(XenstoreConfig { max_queued_bytes: 1, ..XenstoreConfig::default() });
    assert_eq!(conn.config().max_queued_bytes, 2 * MAX_MESSAGE_SIZE, "raised to the minimum");
    conn.introduce(&page);
    let event = msg(XS_WATCH_EVENT, 0, &[b'e'; 4096]);
    conn.queue(event.clone()).unwrap();
    assert!(conn.can_read());
    // Watch events cannot take the room kept for a reply...
    assert_eq!(
        conn.queue(msg(XS_WATCH_EVENT, 0, b"p\0t\0")),
        Err(QueueError::Full { queued: MAX_MESSAGE_SIZE, len: 20, limit: MAX_MESSAGE_SIZE })
    );
    // ...a reply can.
    conn.queue(msg(XS_READ, 7, &[b'r'; 4096])).unwrap();
    assert_eq!(
        conn.queue(msg(XS_READ, 8, b"")),
        Err(QueueError::Full { queued: 2 * MAX_MESSAGE_SIZE, len: 16, limit: 2 * MAX_MESSAGE_SIZE })
    );
    // No room for a reply: requests stay in the ring.
    assert!(!conn.can_read());
    let req = msg(XS_READ, 1, b"a\0");
    xs_send(&page, &req);
    assert_eq!(conn.read_message(&page), Ok(None));
    assert_eq!(page.read_u32(REQ_CONS), 0);
    // The guest consumes responses: room again.
    while conn.queued_bytes() > MAX_MESSAGE_SIZE {
        conn.write_responses(&page).unwrap();
        xs_recv(&page, 4096);
    }
    assert!(conn.can_read());
    assert_eq!(conn.read_message(&page), Ok(Some(req)));
}

#[test]
fn malformed_output_is_refused() {
    let (_page, mut conn) = setup();
    assert_eq!(conn.queue(vec![0; 15]), Err(QueueError::Malformed { len: 15 }));
    let mut m = msg(XS_READ, 1, b"abc");
    m[12] = 4;
    assert_eq!(conn.queue(m), Err(QueueError::Malformed { len: 19 }));
    assert_eq!(conn.queue(msg(XS_READ, 1, &[0; 4097])), Err(QueueError::Malformed { len: 16 + 4097 }));
    assert!(!conn.has_output());
}

#[test]
fn reconnection_resets_the_ring() {
    let (page, mut conn) = setup();
    let m = msg(XS_READ, 5, b"name\0");
    xs_send(&page, &m[..7]);
    assert_eq!(conn.read_message(&page), Ok(None));
    conn.queue(msg(XS_READ, 4, &[1; 2000])).unwrap();
    conn.write_responses(&page).unwrap();
    conn.take_notify();
    assert!(!conn.handle_reconnect(&page), "nothing requested");
    // The guest asks for a reconnection: the rings are not touched until it is served.
    page.write_u32(CONNECTION, XENSTORE_RECONNECT);
    xs_send(&page, &m);
    assert_eq!(conn.read_message(&page), Ok(None));
    assert_eq!(conn.write_responses(&page), Ok(0));
    assert!(conn.handle_reconnect(&page));
    assert!(conn.take_notify());
    for off in [REQ_CONS, REQ_PROD, RSP_CONS, RSP_PROD, CONNECTION, ERROR] {
        assert_eq!(page.read_u32(off), 0, "offset {off}");
    }
    assert!(!conn.has_output(), "queued output dropped");
    // The partial request is gone: a new one starts on a packet boundary.
    xs_send(&page, &m);
    assert_eq!(read_all(&page, &mut conn), vec![m]);
}

#[test]
fn reconnection_revives_a_failed_connection() {
    let (page, mut conn) = setup();
    page.write_u32(REQ_PROD, 5000);
    assert!(conn.read_message(&page).is_err());
    page.write_u32(CONNECTION, XENSTORE_RECONNECT);
    assert!(conn.handle_reconnect(&page));
    assert!(conn.is_serving());
    assert_eq!(page.read_u32(ERROR), XENSTORE_ERROR_NONE);
}

#[test]
fn without_the_feature_the_connection_field_is_ignored() {
    let page = MemPage::new();
    let mut conn = XenstoreConnection::new(XenstoreConfig { features: 0, ..XenstoreConfig::default() });
    conn.introduce(&page);
    assert_eq!(page.read_u32(FEATURES), 0);
    page.write_u32(CONNECTION, XENSTORE_RECONNECT);
    assert!(!conn.handle_reconnect(&page));
    let m = msg(XS_READ, 1, b"a\0");
    xs_send(&page, &m);
    assert_eq!(read_all(&page, &mut conn), vec![m]);
    // No error feature: the error field stays untouched on failure.
    page.write_u32(REQ_PROD, 9999);
    assert!(conn.read_message(&page).is_err());
    assert_eq!(page.read_u32(ERROR), 0);
}

#[test]
fn indices_are_read_once_and_fenced_like_xenstored() {
    let page = RecordingPage::default();
    let mut conn = XenstoreConnection::new(XenstoreConfig { features: 0, ..XenstoreConfig::default() });
    conn.introduce(&page);
    xs_send(&page.page, &msg(XS_READ, 1, b"a\0"));
    page.log.borrow_mut().clear();
    assert!(conn.read_message(&page).unwrap().is_some());
    let log = page.log.borrow().clone();
    let expect: Vec<String> =
        [format!("r32 {REQ_CONS}"), format!("r32 {REQ_PROD}"), "fence".into(), "rd".into(), "rd".into()]
            .into_iter()
            .chain(["fence".into(), format!("w32 {REQ_CONS}")])
            .collect();
    assert_eq!(log, expect);

    conn.queue(msg(XS_READ, 1, b"value")).unwrap();
    page.log.borrow_mut().clear();
    conn.write_responses(&page).unwrap();
    let log = page.log.borrow().clone();
    assert_eq!(
        log,
        vec![
            format!("r32 {RSP_CONS}"),
            format!("r32 {RSP_PROD}"),
            "fence".into(),
            "wr".into(),
            "fence".into(),
            format!("w32 {RSP_PROD}")
        ]
    );
}

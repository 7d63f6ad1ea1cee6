//! The console backend against a guest frontend.

mod common;

use common::*;
use pv_rings::{ConsoleBackend, ConsoleConfig, ConsoleIndexError, History, LineAssembler, MemPage, SharedPage};
use xen_abi::console::{XENCONSOLE_CONNECTED, XENCONSOLE_DISCONNECTED, XENCONS_CONNECTION_OFFSET};

fn guest_write(page: &MemPage, bytes: &[u8]) -> usize {
    produce(page, C_OUT, 2048, OUT_CONS, OUT_PROD, bytes)
}

fn guest_read(page: &MemPage, max: usize) -> Vec<u8> {
    consume(page, C_IN, 1024, IN_CONS, IN_PROD, max)
}

fn drain(be: &mut ConsoleBackend, page: &MemPage) -> (usize, Vec<Vec<u8>>) {
    let mut lines = Vec::new();
    let n = be.drain_output(page, |l| lines.push(l.to_vec())).unwrap();
    (n, lines)
}

#[test]
fn drains_output_into_history_and_lines() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    guest_write(&page, b"Linux version 6.1\r\nBooting");
    let (n, lines) = drain(&mut be, &page);
    assert_eq!(n, 26);
    assert_eq!(lines, vec![b"Linux version 6.1".to_vec()]);
    assert_eq!(page.read_u32(OUT_CONS), 26);
    assert!(be.take_notify());
    assert!(!be.take_notify());
    guest_write(&page, b" paravirtualized kernel\r\n\n");
    let (_, lines) = drain(&mut be, &page);
    assert_eq!(lines, vec![b"Booting paravirtualized kernel".to_vec(), Vec::new()]);
    assert_eq!(be.history().to_vec(), b"Linux version 6.1\r\nBooting paravirtualized kernel\r\n\n".to_vec());
    assert!(be.take_notify());
    assert_eq!(drain(&mut be, &page), (0, vec![]));
    assert!(!be.take_notify(), "nothing consumed, no notification");
}

#[test]
fn output_wraps_around_the_ring_and_u32() {
    for start in [2000u32, u32::MAX - 10] {
        let page = MemPage::new();
        let mut be = ConsoleBackend::new(ConsoleConfig::default());
        page.write_u32(OUT_CONS, start);
        page.write_u32(OUT_PROD, start);
        let text: Vec<u8> = (0..2048).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(guest_write(&page, &text), 2048, "a full ring");
        let (n, _) = drain(&mut be, &page);
        assert_eq!(n, 2048);
        assert_eq!(be.history().to_vec(), text);
        assert_eq!(page.read_u32(OUT_CONS), start.wrapping_add(2048));
    }
}

#[test]
fn garbage_output_indices_consume_nothing() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    page.write_u32(OUT_CONS, 100);
    page.write_u32(OUT_PROD, 100 + 2049);
    assert_eq!(be.drain_output(&page, |_| panic!()), Err(ConsoleIndexError { cons: 100, prod: 2149 }));
    assert_eq!(page.read_u32(OUT_CONS), 100);
    assert!(be.history().is_empty());
    // Once the guest fixes its indices, output flows again.
    page.write_u32(OUT_PROD, 100);
    guest_write(&page, b"ok\n");
    assert_eq!(drain(&mut be, &page), (3, vec![b"ok".to_vec()]));
}

#[test]
fn history_is_bounded() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig { history_bytes: 100, max_line: 1024 });
    let mut all = Vec::new();
    for round in 0..10u8 {
        let chunk: Vec<u8> = (0..37).map(|i| b'0' + (round + i) % 10).collect();
        guest_write(&page, &chunk);
        drain(&mut be, &page);
        all.extend(chunk);
    }
    assert_eq!(be.history().len(), 100);
    assert_eq!(be.history().to_vec(), all[all.len() - 100..].to_vec());
    assert_eq!(be.history().dropped(), 270);

    let mut h = History::new(8);
    h.push(b"0123456789abc");
    assert_eq!(h.to_vec(), b"56789abc".to_vec());
    assert_eq!(h.dropped(), 5);
    h.push(b"XY");
    let (a, b) = h.as_slices();
    assert_eq!([a, b].concat(), b"789abcXY");
    let mut z = History::new(0);
    z.push(b"abc");
    assert!(z.is_empty());
}

#[test]
fn input_when_full() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    page.write_u32(IN_CONS, 1000);
    page.write_u32(IN_PROD, 1000);
    let input: Vec<u8> = (0..1100).map(|i| i as u8).collect();
    assert_eq!(be.input_space(&page), 1024);
    assert_eq!(be.write_input(&page, &input), 1024);
    assert!(be.take_notify());
    assert_eq!(be.write_input(&page, b"more"), 0, "full");
    assert!(!be.take_notify());
    assert_eq!(guest_read(&page, 24), input[..24].to_vec());
    assert_eq!(be.write_input(&page, &input[1024..]), 24);
    let mut got = guest_read(&page, 2000);
    assert_eq!(got.len(), 1024);
    got.splice(0..0, input[..24].iter().copied());
    assert_eq!(got, input[..1048].to_vec());
    assert_eq!(page.read_u32(IN_PROD), 1000 + 1048);
}

#[test]
fn garbage_input_indices_write_nothing() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    page.write_u32(IN_CONS, 500);
    page.write_u32(IN_PROD, 10);
    assert_eq!(be.input_space(&page), 0);
    assert_eq!(be.write_input(&page, b"abc"), 0);
    assert_eq!(page.read_u32(IN_PROD), 10);
}

#[test]
fn line_assembly() {
    let mut la = LineAssembler::new(8);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    la.push(b"one\r", |l| lines.push(l.to_vec()));
    la.push(b"\ntw", |l| lines.push(l.to_vec()));
    la.push(b"o\r\r\nkeep\rcr\n", |l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"one".to_vec(), b"two".to_vec(), b"keep\rcr".to_vec()]);
    lines.clear();
    // Long lines come in bounded pieces.
    la.push(b"0123456789abcdefXYZ\n", |l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"01234567".to_vec(), b"89abcdef".to_vec(), b"XYZ".to_vec()]);
    lines.clear();
    la.push(b"tail\r", |l| lines.push(l.to_vec()));
    assert_eq!(la.pending(), b"tail\r");
    la.flush(|l| lines.push(l.to_vec()));
    la.flush(|l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"tail".to_vec()]);
}

#[test]
fn backend_flushes_the_last_line() {
    let page = MemPage::new();
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    guest_write(&page, b"Kernel panic - not syncing");
    assert_eq!(drain(&mut be, &page).1, Vec::<Vec<u8>>::new());
    let mut lines = Vec::new();
    be.flush_line(|l| lines.push(l.to_vec()));
    assert_eq!(lines, vec![b"Kernel panic - not syncing".to_vec()]);
}

#[test]
fn connect_sets_the_connection_flag_only() {
    let page = MemPage::new();
    page.write_bytes(XENCONS_CONNECTION_OFFSET, &[XENCONSOLE_DISCONNECTED]);
    page.write_u32(OUT_CONS, 3);
    page.write_u32(OUT_PROD, 7);
    let mut be = ConsoleBackend::new(ConsoleConfig::default());
    let before = page.snapshot();
    be.connect(&page);
    let after = page.snapshot();
    assert_eq!(after[XENCONS_CONNECTION_OFFSET], XENCONSOLE_CONNECTED);
    let diff: Vec<usize> = (0..4096).filter(|&i| before[i] != after[i]).collect();
    assert_eq!(diff, vec![XENCONS_CONNECTION_OFFSET]);
    assert!(be.take_notify());
}

#[test]
fn random_indices_never_panic() {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u32
    };
    let mut be = ConsoleBackend::new(ConsoleConfig { history_bytes: 4096, max_line: 80 });
    let page = MemPage::new();
    for _ in 0..5000 {
        for off in [IN_CONS, IN_PROD, OUT_CONS, OUT_PROD] {
            let v = if next() % 2 == 0 { next() } else { page.read_u32(off).wrapping_add(next() % 2100) };
            page.write_u32(off, v);
        }
        let _ = be.drain_output(&page, |l| assert!(l.len() <= 80));
        be.write_input(&page, &[b'k'; 300]);
        assert!(be.history().len() <= 4096);
    }
}

//! Feeds arbitrary bytes as xenstore messages from several connections through
//! `Store::handle` and checks the store's invariants after each message.
//!
//! Input: records of `[connection selector: u8][length: u16 le][message bytes]`; the message
//! bytes go to `handle` as they are (header and payload, possibly malformed).

#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_abi::xs_wire::{XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_WATCH_EVENT};
use xenstore::{Access, Config, ConnId, Output, Perm, Quotas, Store};

fn setup() -> (Store, Vec<ConnId>) {
    let quotas = Quotas { nodes: 40, watches: 8, transactions: 4, transaction_nodes: 64, ..Quotas::default() };
    let mut s = Store::new(Config { priv_domid: 0, quotas });
    let dom0 = s.connect(0);
    let mut conns = vec![dom0];
    for d in 1..=2u16 {
        let home = format!("/local/domain/{d}");
        s.mkdir(dom0, 0, &home).unwrap();
        s.set_perms(dom0, 0, &home, &[Perm::new(0, Access::None), Perm::new(d, Access::Read)]).unwrap();
        s.mkdir(dom0, 0, &format!("{home}/data")).unwrap();
        s.set_perms(dom0, 0, &format!("{home}/data"), &[Perm::new(d, Access::None)]).unwrap();
        conns.push(s.introduce_domain(d, 1, 1).unwrap());
    }
    conns.push(s.connect(1));
    s.take_outputs();
    (s, conns)
}

fuzz_target!(|data: &[u8]| {
    let (mut s, mut conns) = setup();
    let mut rest = data;
    while let [sel, lo, hi, tail @ ..] = rest {
        let n = usize::from(u16::from_le_bytes([*lo, *hi])).min(tail.len());
        let (msg, next) = tail.split_at(n);
        rest = next;
        let Some(&conn) = conns.get(usize::from(*sel) % conns.len().max(1)) else { break };
        let outs = s.handle(conn, msg);
        let mut replies = 0;
        for o in &outs {
            match o {
                Output::Send { conn: c, msg: m } => {
                    assert!(m.payload.len() <= XENSTORE_PAYLOAD_MAX);
                    assert!(s.conn_domid(*c).is_some());
                    if m.type_ == XS_WATCH_EVENT {
                        assert_eq!((m.req_id, m.tx_id), (0, 0));
                        assert_eq!(m.strings().len(), 2);
                    } else {
                        assert_eq!(*c, conn);
                        if m.type_ == XS_ERROR {
                            assert_eq!(m.payload.last(), Some(&0));
                        }
                        replies += 1;
                    }
                }
                Output::Introduce { conn: c, .. } => {
                    if !conns.contains(c) {
                        conns.push(*c);
                    }
                }
                Output::Release { conn: c, .. } => conns.retain(|x| x != c),
                Output::Log(_) => {}
            }
        }
        assert_eq!(replies, 1);
        if let Err(e) = s.check() {
            panic!("store inconsistent: {e}");
        }
    }
});

//! Fuzz-style test: thousands of random and mutated messages from several connections
//! (fixed xorshift seeds), checking after every message that nothing panicked, the tree is
//! consistent, quotas hold and every output is well-formed.

use std::collections::{BTreeMap, BTreeSet};

use xen_abi::xs_wire::*;

use crate::{Config, ConnId, DomId, Message, Output, Quotas, Store};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const QUOTAS: Quotas = Quotas {
    nodes: 25,
    node_size: 300,
    watches: 6,
    transactions: 3,
    transaction_nodes: 40,
    permissions: 4,
    path_max: 120,
};

const DOMUS: [DomId; 3] = [1, 2, 3];

struct Fuzz {
    s: Store,
    rng: Rng,
    /// Connections that may send, with their domid.
    conns: Vec<(ConnId, DomId)>,
    /// Transaction ids seen per connection.
    txs: BTreeMap<ConnId, Vec<u32>>,
    /// Paths each domain wrote successfully (reused to hit existing nodes).
    known: BTreeMap<DomId, Vec<Vec<u8>>>,
    /// Outcomes seen: (type, error or "OK").
    seen: BTreeSet<(u32, String)>,
    events: usize,
    next_req: u32,
}

impl Fuzz {
    fn new(seed: u64) -> Fuzz {
        let mut s = Store::new(Config { priv_domid: 0, quotas: QUOTAS });
        let dom0 = s.connect(0);
        s.write(dom0, 0, "/shared", b"").unwrap();
        s.set_perms(dom0, 0, "/shared", &[crate::Perm::new(0, crate::Access::Both)]).unwrap();
        let mut conns = vec![(dom0, 0)];
        for d in DOMUS {
            let home = format!("/local/domain/{d}");
            s.write(dom0, 0, &format!("{home}/data"), b"").unwrap();
            s.set_perms(
                dom0,
                0,
                &home,
                &[crate::Perm::new(0, crate::Access::None), crate::Perm::new(d, crate::Access::Read)],
            )
            .unwrap();
            s.set_perms(dom0, 0, &format!("{home}/data"), &[crate::Perm::new(d, crate::Access::None)]).unwrap();
            conns.push((s.introduce_domain(d, 100 + u64::from(d), 5).unwrap(), d));
        }
        // A second, local, unprivileged connection of domain 2 (quotas are per domain).
        conns.push((s.connect(2), 2));
        s.take_outputs();
        Fuzz {
            s,
            rng: Rng(seed),
            conns,
            txs: BTreeMap::new(),
            known: BTreeMap::new(),
            seen: BTreeSet::new(),
            events: 0,
            next_req: 1,
        }
    }

    fn component(&mut self) -> String {
        let names = ["a", "b", "c", "data", "x", "y", "long-name_0", "@at", "1", "2", "3", "shared"];
        String::from(*self.rng.pick(&names))
    }

    fn path(&mut self, domid: DomId) -> Vec<u8> {
        if self.rng.chance(35) {
            if let Some(known) = self.known.get(&domid).filter(|k| !k.is_empty()).cloned() {
                return self.rng.pick(&known).clone();
            }
        }
        let depth = 1 + self.rng.below(4);
        let mut rel = self.component();
        for _ in 1..depth {
            rel = format!("{rel}/{}", self.component());
        }
        let d = *self.rng.pick(&[1, 2, 3, domid]);
        let p = match self.rng.below(12) {
            0..=3 => format!("/local/domain/{d}/data/{rel}"),
            4 | 5 => format!("data/{rel}"),
            6 | 7 => format!("/shared/{rel}"),
            8 => format!("/local/domain/{d}"),
            9 => {
                String::from(*self.rng.pick(&["@introduceDomain", "@releaseDomain", "/", "/tool", "@releaseDomain/2"]))
            }
            10 => format!("/{rel}"),
            _ => {
                // Junk: invalid characters, slashes, long.
                let junk = ["", "/", "//", "/a/", "a b", "/\u{e9}", "/x.y", "../x"];
                let mut j = String::from(*self.rng.pick(&junk));
                if self.rng.chance(20) {
                    j = format!("/{}", "z".repeat(self.rng.below(200)));
                }
                j
            }
        };
        p.into_bytes()
    }

    fn perm_strings(&mut self, domid: DomId) -> Vec<Vec<u8>> {
        let n = self.rng.below(6);
        let mut out = Vec::new();
        for i in 0..n {
            let letter = *self.rng.pick(b"nrwbx");
            let id: DomId = if i == 0 && self.rng.chance(70) { domid } else { *self.rng.pick(&[0, 1, 2, 3, 9]) };
            let mut s = vec![letter];
            s.extend_from_slice(id.to_string().as_bytes());
            if self.rng.chance(3) {
                s.push(b'?');
            }
            out.push(s);
        }
        out
    }

    fn request(&mut self, conn: ConnId, domid: DomId) -> Message {
        let types = [
            XS_READ,
            XS_WRITE,
            XS_WRITE,
            XS_WRITE,
            XS_MKDIR,
            XS_RM,
            XS_DIRECTORY,
            XS_DIRECTORY_PART,
            XS_GET_PERMS,
            XS_SET_PERMS,
            XS_WATCH,
            XS_UNWATCH,
            XS_TRANSACTION_START,
            XS_TRANSACTION_END,
            XS_TRANSACTION_END,
            XS_INTRODUCE,
            XS_RELEASE,
            XS_GET_DOMAIN_PATH,
            XS_IS_DOMAIN_INTRODUCED,
            XS_RESUME,
            XS_SET_TARGET,
            XS_RESET_WATCHES,
            XS_CONTROL,
            XS_WATCH_EVENT,
            20,
            99,
        ];
        let ty = *self.rng.pick(&types);
        let open = self.txs.get(&conn).cloned().unwrap_or_default();
        let tx = match self.rng.below(100) {
            0..=54 => 0,
            55..=94 if !open.is_empty() => *self.rng.pick(&open),
            _ => self.rng.below(6) as u32,
        };
        let dom_arg = |rng: &mut Rng| rng.pick(&["1", "2", "3", "0", "4", "x", "65536"]).as_bytes().to_vec();
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut raw_tail: Vec<u8> = Vec::new();
        match ty {
            XS_WRITE => {
                parts.push(self.path(domid));
                let len = if self.rng.chance(5) { 250 + self.rng.below(100) } else { self.rng.below(12) };
                raw_tail = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            }
            XS_DIRECTORY_PART => {
                parts.push(self.path(domid));
                parts.push(self.rng.below(40).to_string().into_bytes());
            }
            XS_SET_PERMS => {
                parts.push(self.path(domid));
                parts.extend(self.perm_strings(domid));
            }
            XS_WATCH | XS_UNWATCH => {
                parts.push(self.path(domid));
                parts.push(self.rng.pick(&[&b"t1"[..], b"t2", b"\x01tok"]).to_vec());
            }
            XS_TRANSACTION_START | XS_RESET_WATCHES => parts.push(Vec::new()),
            XS_TRANSACTION_END => parts.push(self.rng.pick(&[&b"T"[..], b"T", b"F", b"X"]).to_vec()),
            XS_INTRODUCE => {
                parts.push(dom_arg(&mut self.rng));
                parts.push(b"4096".to_vec());
                parts.push(self.rng.pick(&[&b"3"[..], b"0", b"7"]).to_vec());
            }
            XS_SET_TARGET => {
                parts.push(dom_arg(&mut self.rng));
                parts.push(dom_arg(&mut self.rng));
            }
            XS_RELEASE | XS_GET_DOMAIN_PATH | XS_IS_DOMAIN_INTRODUCED | XS_RESUME => {
                parts.push(dom_arg(&mut self.rng));
            }
            XS_CONTROL => {
                let cmds: [&[&[u8]]; 6] =
                    [&[b"check"], &[b"help"], &[b"print", b"hi"], &[b"quota"], &[b"quota", b"1"], &[b"nope"]];
                parts.extend(self.rng.pick(&cmds).iter().map(|p| p.to_vec()));
            }
            _ => parts.push(self.path(domid)),
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut msg = Message::with_strings(ty, self.next_req, tx, &refs);
        msg.payload.extend_from_slice(&raw_tail);
        self.next_req = self.next_req.wrapping_add(1);
        msg
    }

    fn mutate(&mut self, bytes: &mut Vec<u8>) {
        match self.rng.below(6) {
            0 => {
                for _ in 0..1 + self.rng.below(4) {
                    if !bytes.is_empty() {
                        let i = self.rng.below(bytes.len());
                        bytes[i] ^= 1 << self.rng.below(8);
                    }
                }
            }
            1 => {
                let n = self.rng.below(bytes.len() + 1);
                bytes.truncate(n);
            }
            2 => {
                for _ in 0..self.rng.below(8) {
                    bytes.push(self.rng.next() as u8);
                }
            }
            3 if bytes.len() >= 16 => {
                let len = *self.rng.pick(&[0u32, 1, 4096, 4097, u32::MAX, (bytes.len() - 16) as u32 + 1]);
                bytes[12..16].copy_from_slice(&len.to_le_bytes());
            }
            4 => {
                // Drop the payload's last byte (its NUL) and fix the length.
                if bytes.len() > 16 {
                    bytes.pop();
                    let len = (bytes.len() - 16) as u32;
                    bytes[12..16].copy_from_slice(&len.to_le_bytes());
                }
            }
            _ => {
                let n = self.rng.below(64);
                *bytes = (0..n).map(|_| self.rng.next() as u8).collect();
            }
        }
    }

    fn step(&mut self) {
        // Occasional domain life-cycle events from the agent.
        if self.rng.chance(1) {
            let d = *self.rng.pick(&DOMUS);
            if self.s.is_introduced(d) {
                if self.rng.chance(50) {
                    self.s.domain_shutdown(d);
                } else {
                    self.s.release_domain(d).unwrap();
                }
            } else {
                self.s.introduce_domain(d, 1, 2).unwrap();
            }
            let outs = self.s.take_outputs();
            self.apply_domain_outputs(&outs);
            self.check_outputs(&outs);
            self.s.check().unwrap();
        }

        let (conn, domid) = *self.rng.pick(&self.conns);
        let msg = self.request(conn, domid);
        let mut bytes = msg.to_bytes();
        let mutated = self.rng.chance(25);
        if mutated {
            self.mutate(&mut bytes);
        }
        let before: BTreeMap<DomId, u32> = DOMUS.iter().map(|&d| (d, self.s.node_count(d))).collect();
        let outs = self.s.handle(conn, &bytes);

        // Exactly one reply, to the sender, echoing req_id and tx_id.
        let replies: Vec<&Message> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Send { conn: c, msg } if *c == conn && msg.type_ != XS_WATCH_EVENT => Some(msg),
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 1, "{outs:?}");
        let reply = replies[0];
        let mut raw = [0u8; 16];
        let n = bytes.len().min(16);
        raw[..n].copy_from_slice(&bytes[..n]);
        let hdr = crate::parse_header(&raw).unwrap();
        assert_eq!((reply.req_id, reply.tx_id), (hdr.req_id, hdr.tx_id));
        assert!(reply.type_ == hdr.type_ || reply.type_ == XS_ERROR, "{reply:?}");
        let outcome = if reply.type_ == XS_ERROR {
            let name = reply.payload.strip_suffix(b"\0").expect("error without NUL");
            let name = String::from_utf8(name.to_vec()).unwrap();
            assert!(XSD_ERRORS.iter().any(|e| e.errstring == name), "{name}");
            name
        } else {
            String::from("OK")
        };
        if !mutated {
            self.seen.insert((hdr.type_, outcome.clone()));
        }

        if !mutated && outcome == "OK" && (hdr.type_ == XS_WRITE || hdr.type_ == XS_MKDIR) {
            let path = msg.strings()[0].to_vec();
            let known = self.known.entry(domid).or_default();
            if !known.contains(&path) {
                known.push(path);
                if known.len() > 40 {
                    known.remove(0);
                }
            }
        }

        // Track transaction ids.
        if reply.type_ == XS_TRANSACTION_START {
            let id = String::from_utf8(reply.payload[..reply.payload.len() - 1].to_vec()).unwrap();
            self.txs.entry(conn).or_default().push(id.parse().unwrap());
        }
        if hdr.type_ == XS_TRANSACTION_END && outcome != "EINVAL" {
            if let Some(v) = self.txs.get_mut(&conn) {
                v.retain(|&t| t != hdr.tx_id);
            }
        }
        if hdr.type_ == XS_RESET_WATCHES && outcome == "OK" {
            self.txs.remove(&conn);
        }

        self.apply_domain_outputs(&outs);
        self.check_outputs(&outs);
        self.s.check().unwrap();

        // Quotas: an unprivileged request never takes a domain over its node quota, and
        // per-domain watch and transaction counts stay within theirs.
        let privileged = domid == 0;
        for &d in &DOMUS {
            let after = self.s.node_count(d);
            if !privileged {
                assert!(after <= QUOTAS.nodes.max(before[&d]), "dom{d}: {} -> {after}", before[&d]);
            }
            assert!(self.s.watch_count(d) <= QUOTAS.watches as usize);
            assert!(self.s.transaction_count(d) <= QUOTAS.transactions as usize);
        }
    }

    /// Follows introductions and releases (the connection list changes).
    fn apply_domain_outputs(&mut self, outs: &[Output]) {
        for o in outs {
            match o {
                Output::Introduce { domid, conn, .. } if !self.conns.contains(&(*conn, *domid)) => {
                    self.conns.push((*conn, *domid));
                }
                Output::Release { conn, .. } => {
                    self.conns.retain(|(c, _)| c != conn);
                    self.txs.remove(conn);
                }
                _ => {}
            }
        }
    }

    fn check_outputs(&mut self, outs: &[Output]) {
        for o in outs {
            if let Output::Send { conn, msg } = o {
                assert!(msg.payload.len() <= XENSTORE_PAYLOAD_MAX);
                assert!(self.s.conn_domid(*conn).is_some(), "output to a closed connection: {o:?}");
                assert_eq!(msg.header().len as usize, msg.payload.len());
                if msg.type_ == XS_WATCH_EVENT {
                    self.events += 1;
                    assert_eq!((msg.req_id, msg.tx_id), (0, 0));
                    assert_eq!(crate::wire::count_nuls(&msg.payload), 2, "{msg:?}");
                    assert_eq!(msg.payload.last(), Some(&0));
                    assert!(msg.strings().len() == 2 && !msg.strings()[0].is_empty());
                }
            }
        }
    }
}

#[test]
fn random_messages_keep_the_store_consistent() {
    let mut seen = BTreeSet::new();
    let mut events = 0;
    for seed in [0x9e37_79b9_7f4a_7c15u64, 1, 0xdead_beef, 0x0123_4567_89ab_cdef] {
        let mut f = Fuzz::new(seed);
        for _ in 0..6000 {
            f.step();
        }
        seen.extend(f.seen);
        events += f.events;
    }
    // The run exercised the interesting outcomes, not just errors.
    let want = [
        (XS_WRITE, "OK"),
        (XS_WRITE, "EACCES"),
        (XS_WRITE, "ENOSPC"),
        (XS_WRITE, "EINVAL"),
        (XS_READ, "OK"),
        (XS_READ, "ENOENT"),
        (XS_RM, "OK"),
        (XS_MKDIR, "OK"),
        (XS_DIRECTORY, "OK"),
        (XS_DIRECTORY_PART, "OK"),
        (XS_SET_PERMS, "OK"),
        (XS_SET_PERMS, "EPERM"),
        (XS_GET_PERMS, "OK"),
        (XS_WATCH, "OK"),
        (XS_WATCH, "ENOSPC"),
        (XS_UNWATCH, "OK"),
        (XS_TRANSACTION_START, "OK"),
        (XS_TRANSACTION_START, "ENOSPC"),
        (XS_TRANSACTION_END, "OK"),
        (XS_TRANSACTION_END, "EAGAIN"),
        (XS_INTRODUCE, "OK"),
        (XS_RELEASE, "OK"),
        (XS_CONTROL, "OK"),
        (20, "ENOSYS"),
    ];
    let missing: Vec<_> = want.iter().filter(|(t, o)| !seen.contains(&(*t, String::from(*o)))).collect();
    assert!(missing.is_empty(), "outcomes never seen: {missing:?}");
    assert!(events > 500, "{events} events");
}

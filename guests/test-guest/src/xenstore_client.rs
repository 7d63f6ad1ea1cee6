//! `test=xenstore [peer=D] [abuse=1] [delay_ms=N]`: a xenstore client on the domain's own
//! ring (`HVM_PARAM_STORE_PFN`/`EVTCHN`, `struct xenstore_domain_interface`), checking what
//! the store answers. Each check prints `GUEST xenstore <check>=pass|fail ...`.
//!
//! With `abuse=1` it finally sends a message longer than `XENSTORE_PAYLOAD_MAX`: the server
//! must stop serving this ring and say why in its `error` field (`XENSTORE_ERROR_PROTO`),
//! and nobody else may notice (the test runs a second, well-behaved domain).

use xen_abi::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen_abi::xs_wire::*;
use xen_abi::DomId;

use crate::shared_page::{offset_of, SharedPage};
use crate::{events, println, xen};

const RING: u32 = XENSTORE_RING_SIZE as u32;
/// How long one reply may take.
const REPLY_NS: u64 = 5_000_000_000;
/// Longest reply payload kept.
const PAYLOAD_MAX: usize = 512;

fn offset(field: &str) -> usize {
    offset_of(XenstoreDomainInterface::FIELDS, field)
}

struct Client {
    page: SharedPage,
    port: u32,
    next_id: u32,
    /// Watch events received (while waiting for replies).
    watch_events: u32,
}

/// A reply: its type and payload (cut at [`PAYLOAD_MAX`]).
struct Reply {
    type_: u32,
    req_id: u32,
    payload: [u8; PAYLOAD_MAX],
    len: usize,
}

impl Reply {
    fn text(&self) -> &str {
        let bytes = &self.payload[..self.len];
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        core::str::from_utf8(bytes).unwrap_or("<not UTF-8>")
    }

    /// `XS_ERROR` with errno name `name`.
    fn is_error(&self, name: &str) -> bool {
        self.type_ == XS_ERROR && self.text() == name
    }
}

impl Client {
    /// Writes `bytes` into the request ring (waiting for room) and notifies the server.
    fn send_raw(&self, bytes: &[u8]) -> bool {
        let deadline = xen::now_ns() + REPLY_NS;
        let mut sent = 0;
        while sent < bytes.len() {
            let (cons, mut prod) = (self.page.read_u32(offset("req_cons")), self.page.read_u32(offset("req_prod")));
            self.page.fence();
            while sent < bytes.len() && prod.wrapping_sub(cons) < RING {
                self.page.write_byte(offset("req"), RING, prod, bytes[sent]);
                prod = prod.wrapping_add(1);
                sent += 1;
            }
            self.page.fence();
            self.page.write_u32(offset("req_prod"), prod);
            xen::evtchn_send(self.port);
            if sent < bytes.len() {
                if xen::now_ns() > deadline {
                    return false;
                }
                events::halt_until(xen::now_ns() + 1_000_000);
            }
        }
        true
    }

    /// Reads `out.len()` bytes from the response ring, waiting for them until `deadline`.
    fn recv_exact(&self, out: &mut [u8], deadline: u64) -> bool {
        let mut got = 0;
        while got < out.len() {
            let (mut cons, prod) = (self.page.read_u32(offset("rsp_cons")), self.page.read_u32(offset("rsp_prod")));
            self.page.fence();
            while got < out.len() && cons != prod {
                out[got] = self.page.read_byte(offset("rsp"), RING, cons);
                cons = cons.wrapping_add(1);
                got += 1;
            }
            self.page.fence();
            self.page.write_u32(offset("rsp_cons"), cons);
            xen::evtchn_send(self.port);
            if got < out.len() {
                if xen::now_ns() > deadline {
                    return false;
                }
                events::halt_until(xen::now_ns() + 1_000_000);
            }
        }
        true
    }

    /// The next message from the server (reply or watch event).
    fn recv(&self) -> Option<Reply> {
        let deadline = xen::now_ns() + REPLY_NS;
        let mut header = [0u8; XsdSockmsg::SIZE];
        if !self.recv_exact(&mut header, deadline) {
            return None;
        }
        let h = XsdSockmsg::from_bytes(&header);
        let len = h.len as usize;
        if len > XENSTORE_PAYLOAD_MAX {
            return None;
        }
        let mut all = [0u8; XENSTORE_PAYLOAD_MAX];
        if !self.recv_exact(&mut all[..len], deadline) {
            return None;
        }
        let mut reply =
            Reply { type_: h.type_, req_id: h.req_id, payload: [0; PAYLOAD_MAX], len: len.min(PAYLOAD_MAX) };
        reply.payload[..reply.len].copy_from_slice(&all[..reply.len]);
        Some(reply)
    }

    /// Sends a request whose payload is `parts`, each NUL-terminated unless it is the
    /// last of an `XS_WRITE` (whose value has no NUL), and returns the reply to it
    /// (skipping watch events).
    fn call(&mut self, type_: u32, tx_id: u32, parts: &[&[u8]]) -> Option<Reply> {
        let mut payload = [0u8; 256];
        let mut len = 0;
        for (i, part) in parts.iter().enumerate() {
            payload[len..len + part.len()].copy_from_slice(part);
            len += part.len();
            if !(type_ == XS_WRITE && i == parts.len() - 1) {
                len += 1; // the NUL (already zero)
            }
        }
        self.next_id += 1;
        let header = XsdSockmsg { type_, req_id: self.next_id, tx_id, len: len as u32 };
        if !self.send_raw(&header.to_bytes()) || !self.send_raw(&payload[..len]) {
            return None;
        }
        loop {
            let reply = self.recv()?;
            if reply.type_ == XS_WATCH_EVENT {
                self.watch_events += 1;
            } else if reply.req_id == self.next_id {
                return Some(reply);
            }
        }
    }
}

struct Checks {
    all_ok: bool,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, details: core::fmt::Arguments<'_>) {
        self.all_ok &= ok;
        println!("GUEST xenstore {name}={} {details}", if ok { "pass" } else { "fail" });
    }

    /// Checks that `reply` is of type `type_` with payload `text`.
    fn reply(&mut self, name: &str, reply: Option<Reply>, type_: u32, text: &str) {
        match reply {
            Some(r) => {
                let ok = r.type_ == type_ && r.text() == text;
                self.check(name, ok, format_args!("type={} payload={:?}", r.type_, r.text()));
            }
            None => self.check(name, false, format_args!("no reply")),
        }
    }

    fn error(&mut self, name: &str, reply: Option<Reply>, errno: &str) {
        match reply {
            Some(r) => {
                let ok = r.is_error(errno);
                self.check(name, ok, format_args!("type={} payload={:?} expected {errno}", r.type_, r.text()));
            }
            None => self.check(name, false, format_args!("no reply")),
        }
    }
}

fn fail(why: core::fmt::Arguments<'_>) -> ! {
    println!("GUEST xenstore result=fail {why}");
    xen::shutdown(test_guest::abi::ShutdownReason::Crash)
}

pub fn run(peer: Option<DomId>, abuse: bool, delay_ms: u64) -> ! {
    let (pfn, port) = match (xen::hvm_get_param(HVM_PARAM_STORE_PFN), xen::hvm_get_param(HVM_PARAM_STORE_EVTCHN)) {
        (Ok(pfn), Ok(port)) if pfn != 0 && port != 0 => (pfn, port as u32),
        other => fail(format_args!("no xenstore ring in the HVM parameters: {other:?}")),
    };
    let Some(page) = SharedPage::at_gfn(pfn) else { fail(format_args!("cannot map the ring at frame {pfn:#x}")) };
    if let Err((step, rc)) = events::setup() {
        fail(format_args!("event setup: {step} returned {rc}"));
    }
    let start = xen::now_ns() + delay_ms * 1_000_000;
    while xen::now_ns() < start {
        events::halt_until(start);
    }
    let me = xen::domid().unwrap_or(0);
    let mut c = Checks { all_ok: true };
    let mut x = Client { page, port, next_id: 0, watch_events: 0 };
    let mut num = [0u8; 8];
    let me_text = decimal(me as u64, &mut num);

    c.reply("read_domid", x.call(XS_READ, 0, &[b"domid"]), XS_READ, me_text);
    let path = x.call(XS_GET_DOMAIN_PATH, 0, &[me_text.as_bytes()]);
    match &path {
        Some(r) => c.check(
            "get_domain_path",
            r.type_ == XS_GET_DOMAIN_PATH && r.text().ends_with(me_text),
            format_args!("{:?}", r.text()),
        ),
        None => c.check("get_domain_path", false, format_args!("no reply")),
    }
    c.reply("write_data", x.call(XS_WRITE, 0, &[b"data/greeting", b"hello"]), XS_WRITE, "OK");
    c.reply("read_back", x.call(XS_READ, 0, &[b"data/greeting"]), XS_READ, "hello");
    c.reply("directory", x.call(XS_DIRECTORY, 0, &[b"data"]), XS_DIRECTORY, "greeting");
    c.error("read_missing", x.call(XS_READ, 0, &[b"data/missing"]), "ENOENT");
    c.error("write_read_only_node", x.call(XS_WRITE, 0, &[b"name", b"renamed"]), "EACCES");
    // C xenstored answers an unknown message type with ENOSYS.
    c.error("unknown_message_type", x.call(999, 0, &[b"x"]), "ENOSYS");
    c.reply("watch", x.call(XS_WATCH, 0, &[b"data/greeting", b"tok"]), XS_WATCH, "OK");
    // The watch fires once when set, and again for a write (events come before replies).
    c.reply("write_watched", x.call(XS_WRITE, 0, &[b"data/greeting", b"again"]), XS_WRITE, "OK");
    let _ = x.call(XS_READ, 0, &[b"data/greeting"]);
    c.check("watch_fires", x.watch_events == 2, format_args!("events={}", x.watch_events));
    match x.call(XS_TRANSACTION_START, 0, &[b""]) {
        Some(r) if r.type_ == XS_TRANSACTION_START => {
            let tx: u32 = r.text().parse().unwrap_or(0);
            c.reply("tx_write", x.call(XS_WRITE, tx, &[b"data/tx", b"inside"]), XS_WRITE, "OK");
            c.error("tx_invisible_outside", x.call(XS_READ, 0, &[b"data/tx"]), "ENOENT");
            c.reply("tx_commit", x.call(XS_TRANSACTION_END, tx, &[b"T"]), XS_TRANSACTION_END, "OK");
            c.reply("tx_visible_after_commit", x.call(XS_READ, 0, &[b"data/tx"]), XS_READ, "inside");
        }
        other => c.check("transaction_start", false, format_args!("type={:?}", other.map(|r| r.type_))),
    }
    if let Some(peer) = peer {
        let mut buf = [0u8; 48];
        let other = other_path(peer, &mut buf);
        c.error("read_other_domain", x.call(XS_READ, 0, &[other.as_bytes()]), "EACCES");
    }
    if abuse {
        let features = x.page.read_u32(offset("server_features"));
        c.check(
            "server_has_error_feature",
            features & XENSTORE_SERVER_FEATURE_ERROR != 0,
            format_args!("features={features:#x}"),
        );
        let huge = XsdSockmsg { type_: XS_READ, req_id: 9999, tx_id: 0, len: XENSTORE_PAYLOAD_MAX as u32 + 1 };
        x.send_raw(&huge.to_bytes());
        let deadline = xen::now_ns() + REPLY_NS;
        let mut error = 0;
        while xen::now_ns() < deadline {
            error = x.page.read_u32(offset("error"));
            if error != 0 {
                break;
            }
            events::halt_until(xen::now_ns() + 1_000_000);
        }
        c.check("oversized_message_stops_the_ring", error == XENSTORE_ERROR_PROTO, format_args!("error={error}"));
    }
    println!("GUEST xenstore result={}", if c.all_ok { "pass" } else { "fail" });
    xen::shutdown(if c.all_ok {
        test_guest::abi::ShutdownReason::Poweroff
    } else {
        test_guest::abi::ShutdownReason::Crash
    })
}

/// `n` in decimal, in `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 8]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    core::str::from_utf8(&buf[i..]).unwrap_or("?")
}

/// `/local/domain/<peer>/name`.
fn other_path(peer: DomId, buf: &mut [u8; 48]) -> &str {
    let prefix = b"/local/domain/";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut num = [0u8; 8];
    let id = decimal(u64::from(peer), &mut num);
    let mut len = prefix.len();
    buf[len..len + id.len()].copy_from_slice(id.as_bytes());
    len += id.len();
    buf[len..len + 5].copy_from_slice(b"/name");
    len += 5;
    core::str::from_utf8(&buf[..len]).unwrap_or("?")
}

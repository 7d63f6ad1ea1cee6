//! Unit tests. Requests go through [`Store::handle`] as ring bytes unless a test is about
//! the typed helpers.

mod basic;
mod domain;
mod fuzz;
mod malformed;
mod perms;
mod transaction;
mod watch;

use alloc::vec::Vec;

use xen_abi::xs_wire::*;

use crate::{Config, ConnId, Message, Output, Store};

/// What one request produced.
#[derive(Debug)]
pub(crate) struct Got {
    /// The reply to the requester.
    pub reply: Message,
    /// Watch events, to any connection, in order.
    pub events: Vec<(ConnId, Message)>,
    /// Everything else (domain actions, log lines).
    pub other: Vec<Output>,
    /// All outputs in order.
    pub all: Vec<Output>,
}

impl Got {
    /// The events sent to `conn` as (path, token) strings.
    pub fn events_for(&self, conn: ConnId) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, m)| {
                let s = m.strings();
                assert_eq!(s.len(), 2, "event {m:?}");
                (String::from_utf8(s[0].to_vec()).unwrap(), String::from_utf8(s[1].to_vec()).unwrap())
            })
            .collect()
    }
}

pub(crate) struct H {
    pub s: Store,
    pub dom0: ConnId,
    next_req: u32,
}

pub(crate) fn ev(path: &str, token: &str) -> (String, String) {
    (String::from(path), String::from(token))
}

impl H {
    pub fn new() -> H {
        H::with_config(Config::default())
    }

    pub fn with_config(cfg: Config) -> H {
        let mut s = Store::new(cfg);
        let dom0 = s.connect(cfg.priv_domid);
        H { s, dom0, next_req: 100 }
    }

    /// Introduces `domid` over the wire from dom0 and returns its connection.
    pub fn introduce(&mut self, domid: u16) -> ConnId {
        let d = alloc::format!("{domid}");
        let got = self.raw(self.dom0, &Message::with_strings(XS_INTRODUCE, 1, 0, &[d.as_bytes(), b"4096", b"3"]));
        assert_eq!(got.reply.payload, b"OK\0", "introduce {domid}: {:?}", got.reply);
        got.other
            .iter()
            .find_map(|o| match o {
                Output::Introduce { domid: d, conn, .. } if *d == domid => Some(*conn),
                _ => None,
            })
            .expect("Introduce output")
    }

    /// Feeds raw bytes and splits the outputs; asserts there is exactly one reply to `conn`.
    pub fn bytes(&mut self, conn: ConnId, bytes: &[u8]) -> Got {
        let all = self.s.handle(conn, bytes);
        let mut reply = None;
        let mut events = Vec::new();
        let mut other = Vec::new();
        for o in &all {
            match o {
                Output::Send { conn: c, msg } if msg.type_ == XS_WATCH_EVENT => {
                    assert_eq!((msg.req_id, msg.tx_id), (0, 0));
                    events.push((*c, msg.clone()));
                }
                Output::Send { conn: c, msg } => {
                    assert_eq!(*c, conn, "reply to another connection: {o:?}");
                    assert!(reply.is_none(), "two replies: {all:?}");
                    reply = Some(msg.clone());
                }
                o => other.push(o.clone()),
            }
        }
        self.s.check().unwrap();
        Got { reply: reply.expect("no reply"), events, other, all }
    }

    /// Sends `msg` from `conn`; checks the reply echoes req_id and tx_id.
    pub fn raw(&mut self, conn: ConnId, msg: &Message) -> Got {
        let got = self.bytes(conn, &msg.to_bytes());
        assert_eq!(got.reply.req_id, msg.req_id);
        assert_eq!(got.reply.tx_id, msg.tx_id);
        assert!(got.reply.type_ == msg.type_ || got.reply.type_ == XS_ERROR, "{:?}", got.reply);
        got
    }

    /// Sends a request with NUL-terminated string arguments.
    pub fn req(&mut self, conn: ConnId, ty: u32, tx: u32, parts: &[&[u8]]) -> Got {
        self.next_req += 1;
        self.raw(conn, &Message::with_strings(ty, self.next_req, tx, parts))
    }

    /// Sends a request with a raw payload.
    pub fn req_payload(&mut self, conn: ConnId, ty: u32, tx: u32, payload: &[u8]) -> Got {
        self.next_req += 1;
        self.raw(conn, &Message::new(ty, self.next_req, tx, payload.to_vec()))
    }

    /// A request that must succeed; returns the reply payload.
    pub fn ok(&mut self, conn: ConnId, ty: u32, tx: u32, parts: &[&[u8]]) -> Vec<u8> {
        let got = self.req(conn, ty, tx, parts);
        assert_eq!(got.reply.type_, ty, "{:?} failed: {}", parts, String::from_utf8_lossy(&got.reply.payload));
        got.reply.payload
    }

    /// A request that must fail; returns the error name.
    pub fn err(&mut self, conn: ConnId, ty: u32, tx: u32, parts: &[&[u8]]) -> String {
        let got = self.req(conn, ty, tx, parts);
        error_name(&got.reply)
    }

    pub fn write(&mut self, conn: ConnId, tx: u32, path: &str, value: &str) -> Got {
        let mut payload = path.as_bytes().to_vec();
        payload.push(0);
        payload.extend_from_slice(value.as_bytes());
        self.req_payload(conn, XS_WRITE, tx, &payload)
    }

    pub fn write_ok(&mut self, conn: ConnId, path: &str, value: &str) {
        let got = self.write(conn, 0, path, value);
        assert_eq!(got.reply.payload, b"OK\0", "write {path}: {}", String::from_utf8_lossy(&got.reply.payload));
    }

    pub fn write_err(&mut self, conn: ConnId, tx: u32, path: &str, value: &str) -> String {
        error_name(&self.write(conn, tx, path, value).reply)
    }

    pub fn read(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<String, String> {
        let got = self.req(conn, XS_READ, tx, &[path.as_bytes()]);
        if got.reply.type_ == XS_ERROR {
            Err(error_name(&got.reply))
        } else {
            Ok(String::from_utf8(got.reply.payload).unwrap())
        }
    }

    pub fn dir(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<Vec<String>, String> {
        let got = self.req(conn, XS_DIRECTORY, tx, &[path.as_bytes()]);
        if got.reply.type_ == XS_ERROR {
            Err(error_name(&got.reply))
        } else {
            Ok(got.reply.strings().iter().map(|s| String::from_utf8(s.to_vec()).unwrap()).collect())
        }
    }

    pub fn set_perms(&mut self, conn: ConnId, path: &str, perms: &[&str]) -> Result<(), String> {
        let mut parts: Vec<&[u8]> = vec![path.as_bytes()];
        parts.extend(perms.iter().map(|p| p.as_bytes()));
        let got = self.req(conn, XS_SET_PERMS, 0, &parts);
        if got.reply.type_ == XS_ERROR {
            Err(error_name(&got.reply))
        } else {
            Ok(())
        }
    }

    pub fn get_perms(&mut self, conn: ConnId, path: &str) -> Result<Vec<String>, String> {
        let got = self.req(conn, XS_GET_PERMS, 0, &[path.as_bytes()]);
        if got.reply.type_ == XS_ERROR {
            Err(error_name(&got.reply))
        } else {
            Ok(got.reply.strings().iter().map(|s| String::from_utf8(s.to_vec()).unwrap()).collect())
        }
    }

    pub fn tx_start(&mut self, conn: ConnId) -> u32 {
        let reply = self.ok(conn, XS_TRANSACTION_START, 0, &[b""]);
        assert_eq!(reply.last(), Some(&0));
        core::str::from_utf8(&reply[..reply.len() - 1]).unwrap().parse().unwrap()
    }

    pub fn tx_end(&mut self, conn: ConnId, tx: u32, commit: bool) -> Got {
        self.req(conn, XS_TRANSACTION_END, tx, &[if commit { b"T" } else { b"F" }])
    }

    pub fn watch(&mut self, conn: ConnId, path: &str, token: &str) -> Got {
        let got = self.req(conn, XS_WATCH, 0, &[path.as_bytes(), token.as_bytes()]);
        assert_eq!(got.reply.payload, b"OK\0", "watch {path}: {}", String::from_utf8_lossy(&got.reply.payload));
        got
    }

    /// Sets up /local/domain/<d> owned by dom0, readable by d, with a writable `data` dir
    /// owned by d (like a toolstack does).
    pub fn home(&mut self, d: u16) {
        let home = alloc::format!("/local/domain/{d}");
        let data = alloc::format!("{home}/data");
        self.write_ok(self.dom0, &home, "");
        self.set_perms(self.dom0, &home, &["n0", &alloc::format!("r{d}")]).unwrap();
        self.write_ok(self.dom0, &data, "");
        self.set_perms(self.dom0, &data, &[&alloc::format!("n{d}")]).unwrap();
    }
}

/// The error name of an `XS_ERROR` reply.
pub(crate) fn error_name(reply: &Message) -> String {
    assert_eq!(reply.type_, XS_ERROR, "not an error: {reply:?} ({})", String::from_utf8_lossy(&reply.payload));
    assert_eq!(reply.payload.last(), Some(&0));
    let name = String::from_utf8(reply.payload[..reply.payload.len() - 1].to_vec()).unwrap();
    assert!(XSD_ERRORS.iter().any(|e| e.errstring == name), "unknown error {name}");
    name
}

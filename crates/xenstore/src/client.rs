//! Typed requests for the agent's own clients (domain builder, backends): each runs one
//! request through [`Store::call`] from a connection, exactly as if it came over the wire,
//! so permissions, quotas, transactions and watches behave the same. Watch events and
//! other side effects are queued for [`Store::take_outputs`].

use alloc::string::String;
use alloc::vec::Vec;

use xen_abi::xs_wire::*;

use crate::perms::Perm;
use crate::wire::strings;
use crate::{ConnId, Error, Store};

fn with_nul(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(p);
        out.push(0);
    }
    out
}

impl Store {
    /// `XS_READ`.
    pub fn read(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<Vec<u8>, Error> {
        self.call(conn, XS_READ, tx, &with_nul(&[path.as_bytes()]))
    }

    /// `XS_WRITE` (creates missing parents).
    pub fn write(&mut self, conn: ConnId, tx: u32, path: &str, value: &[u8]) -> Result<(), Error> {
        let mut payload = with_nul(&[path.as_bytes()]);
        payload.extend_from_slice(value);
        self.call(conn, XS_WRITE, tx, &payload).map(drop)
    }

    /// `XS_MKDIR`.
    pub fn mkdir(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<(), Error> {
        self.call(conn, XS_MKDIR, tx, &with_nul(&[path.as_bytes()])).map(drop)
    }

    /// `XS_RM` (recursive).
    pub fn rm(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<(), Error> {
        self.call(conn, XS_RM, tx, &with_nul(&[path.as_bytes()])).map(drop)
    }

    /// `XS_DIRECTORY`: the children's names.
    pub fn directory(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<Vec<String>, Error> {
        let reply = self.call(conn, XS_DIRECTORY, tx, &with_nul(&[path.as_bytes()]))?;
        Ok(strings(&reply).into_iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect())
    }

    /// `XS_GET_PERMS`.
    pub fn get_perms(&mut self, conn: ConnId, tx: u32, path: &str) -> Result<Vec<Perm>, Error> {
        let reply = self.call(conn, XS_GET_PERMS, tx, &with_nul(&[path.as_bytes()]))?;
        strings(&reply).into_iter().map(Perm::parse).collect()
    }

    /// `XS_SET_PERMS`: `perms[0]` is the owner and the default for other domains.
    pub fn set_perms(&mut self, conn: ConnId, tx: u32, path: &str, perms: &[Perm]) -> Result<(), Error> {
        let mut payload = with_nul(&[path.as_bytes()]);
        for p in perms {
            p.write_to(&mut payload);
            payload.push(0);
        }
        self.call(conn, XS_SET_PERMS, tx, &payload).map(drop)
    }

    /// `XS_WATCH` (the initial event is queued).
    pub fn watch(&mut self, conn: ConnId, path: &str, token: &[u8]) -> Result<(), Error> {
        self.call(conn, XS_WATCH, 0, &with_nul(&[path.as_bytes(), token])).map(drop)
    }

    /// `XS_UNWATCH`.
    pub fn unwatch(&mut self, conn: ConnId, path: &str, token: &[u8]) -> Result<(), Error> {
        self.call(conn, XS_UNWATCH, 0, &with_nul(&[path.as_bytes(), token])).map(drop)
    }

    /// `XS_TRANSACTION_START`: the new transaction's id.
    pub fn transaction_start(&mut self, conn: ConnId) -> Result<u32, Error> {
        let reply = self.call(conn, XS_TRANSACTION_START, 0, b"\0")?;
        let id = strings(&reply).first().copied().unwrap_or_default();
        crate::perms::parse_decimal(id).ok_or(Error::Io)
    }

    /// `XS_TRANSACTION_END`: commit (`EAGAIN` on conflict: start over) or abort.
    pub fn transaction_end(&mut self, conn: ConnId, tx: u32, commit: bool) -> Result<(), Error> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.call(conn, XS_TRANSACTION_END, tx, arg).map(drop)
    }
}

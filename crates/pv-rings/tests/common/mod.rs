//! The guest side of the rings, for tests: a frontend that plays by the rules, written
//! against the page layout of `xen-abi` (not this crate's code).
#![allow(dead_code)]

use core::mem::offset_of;
use std::cell::RefCell;

use pv_rings::{MemPage, SharedPage};
use xen_abi::console::XenconsInterface as Cons;
use xen_abi::xs_wire::XenstoreDomainInterface as Xs;

pub const REQ: usize = offset_of!(Xs, req);
pub const RSP: usize = offset_of!(Xs, rsp);
pub const REQ_CONS: usize = offset_of!(Xs, req_cons);
pub const REQ_PROD: usize = offset_of!(Xs, req_prod);
pub const RSP_CONS: usize = offset_of!(Xs, rsp_cons);
pub const RSP_PROD: usize = offset_of!(Xs, rsp_prod);
pub const FEATURES: usize = offset_of!(Xs, server_features);
pub const CONNECTION: usize = offset_of!(Xs, connection);
pub const ERROR: usize = offset_of!(Xs, error);

pub const C_IN: usize = offset_of!(Cons, in_);
pub const C_OUT: usize = offset_of!(Cons, out);
pub const IN_CONS: usize = offset_of!(Cons, in_cons);
pub const IN_PROD: usize = offset_of!(Cons, in_prod);
pub const OUT_CONS: usize = offset_of!(Cons, out_cons);
pub const OUT_PROD: usize = offset_of!(Cons, out_prod);

/// Producer side of a ring at `base` of `size` bytes: writes what fits, returns how much.
pub fn produce(page: &MemPage, base: usize, size: usize, cons_off: usize, prod_off: usize, bytes: &[u8]) -> usize {
    let cons = page.read_u32(cons_off);
    let prod = page.read_u32(prod_off);
    let free = size - prod.wrapping_sub(cons) as usize;
    let n = bytes.len().min(free);
    for (i, &b) in bytes[..n].iter().enumerate() {
        let pos = prod.wrapping_add(i as u32) as usize % size;
        page.write_bytes(base + pos, &[b]);
    }
    page.write_u32(prod_off, prod.wrapping_add(n as u32));
    n
}

/// Consumer side: takes up to `max` bytes.
pub fn consume(page: &MemPage, base: usize, size: usize, cons_off: usize, prod_off: usize, max: usize) -> Vec<u8> {
    let cons = page.read_u32(cons_off);
    let prod = page.read_u32(prod_off);
    let n = (prod.wrapping_sub(cons) as usize).min(max);
    let mut out = vec![0u8; n];
    for (i, b) in out.iter_mut().enumerate() {
        let pos = cons.wrapping_add(i as u32) as usize % size;
        let mut one = [0u8];
        page.read_bytes(base + pos, &mut one);
        *b = one[0];
    }
    page.write_u32(cons_off, cons.wrapping_add(n as u32));
    out
}

/// Guest writes request bytes into the xenstore `req` ring.
pub fn xs_send(page: &MemPage, bytes: &[u8]) -> usize {
    produce(page, REQ, 1024, REQ_CONS, REQ_PROD, bytes)
}

/// Guest reads up to `max` response bytes.
pub fn xs_recv(page: &MemPage, max: usize) -> Vec<u8> {
    consume(page, RSP, 1024, RSP_CONS, RSP_PROD, max)
}

/// A raw xenstore message: header (type, req_id, tx_id, len) and payload.
pub fn msg(type_: u32, req_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [type_, req_id, 0, payload.len() as u32] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// A page that records the order of accesses.
#[derive(Default)]
pub struct RecordingPage {
    pub page: MemPage,
    pub log: RefCell<Vec<String>>,
}

impl SharedPage for RecordingPage {
    fn read_u32(&self, offset: usize) -> u32 {
        self.log.borrow_mut().push(format!("r32 {offset}"));
        self.page.read_u32(offset)
    }
    fn write_u32(&self, offset: usize, v: u32) {
        self.log.borrow_mut().push(format!("w32 {offset}"));
        self.page.write_u32(offset, v)
    }
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        self.log.borrow_mut().push("rd".into());
        self.page.read_bytes(offset, out)
    }
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        self.log.borrow_mut().push("wr".into());
        self.page.write_bytes(offset, bytes)
    }
    fn fence(&self) {
        self.log.borrow_mut().push("fence".into());
    }
}

//! The server side of a domain's xenstore ring (`struct xenstore_domain_interface`).
//!
//! Behaviour follows C xenstored (`tools/xenstored/core.c` `handle_input`/`handle_output`/
//! `write_messages`, `domain.c` `readchn`/`writechn`/`check_indexes`/`ignore_connection`/
//! `do_introduce`) and, for ring reconnection, which C xenstored does not offer, oxenstored
//! (`tools/ocaml/libs/xb/xs_ring_stubs.c`, `xb.ml`) and `docs/misc/xenstore-ring.txt`.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use core::mem::offset_of;

use xen_abi::xs_wire::{
    XenstoreDomainInterface as Intf, XsdSockmsg, XENSTORE_CONNECTED, XENSTORE_ERROR_NONE, XENSTORE_ERROR_PROTO,
    XENSTORE_ERROR_RINGIDX, XENSTORE_PAYLOAD_MAX, XENSTORE_RING_SIZE, XENSTORE_SERVER_FEATURE_ERROR,
    XENSTORE_SERVER_FEATURE_RECONNECTION, XS_WATCH_EVENT,
};

use crate::page::{Ring, SharedPage};

const HDR: usize = XsdSockmsg::SIZE;
const REQ: Ring = Ring { base: offset_of!(Intf, req), size: XENSTORE_RING_SIZE };
const RSP: Ring = Ring { base: offset_of!(Intf, rsp), size: XENSTORE_RING_SIZE };
const REQ_CONS: usize = offset_of!(Intf, req_cons);
const REQ_PROD: usize = offset_of!(Intf, req_prod);
const RSP_CONS: usize = offset_of!(Intf, rsp_cons);
const RSP_PROD: usize = offset_of!(Intf, rsp_prod);
const SERVER_FEATURES: usize = offset_of!(Intf, server_features);
const CONNECTION: usize = offset_of!(Intf, connection);
const ERROR: usize = offset_of!(Intf, error);

/// Bytes of the largest message: header plus `XENSTORE_PAYLOAD_MAX`.
pub const MAX_MESSAGE_SIZE: usize = HDR + XENSTORE_PAYLOAD_MAX;
/// Default bound of a connection's output queue ([`XenstoreConfig::max_queued_bytes`]).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 64 * 1024;

/// Settings of one xenstore ring connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenstoreConfig {
    /// Bound on the bytes of queued, not yet written output (replies and watch events).
    /// Requests are only read while at least [`MAX_MESSAGE_SIZE`] bytes of it are free, and
    /// watch events may not use those last bytes, so the one reply to a request always fits
    /// (even after watch events the request fired on the same connection);
    /// [`XenstoreConnection::queue`] refuses what does not fit. Values below
    /// `2 * MAX_MESSAGE_SIZE` are raised to it.
    pub max_queued_bytes: usize,
    /// `XENSTORE_SERVER_FEATURE_*` bits written to `server_features` at
    /// [`XenstoreConnection::introduce`]. Of the ring-level ones, `ERROR` makes a fatal error
    /// show in the `error` field, `RECONNECTION` enables [`XenstoreConnection::handle_reconnect`].
    /// Store-level bits (`WATCHDEPTH` 4, `DOMID_ANY` 8 in newer headers) are the store's to
    /// claim. Default: `ERROR | RECONNECTION`.
    pub features: u32,
}

impl Default for XenstoreConfig {
    fn default() -> XenstoreConfig {
        XenstoreConfig {
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            features: XENSTORE_SERVER_FEATURE_ERROR | XENSTORE_SERVER_FEATURE_RECONNECTION,
        }
    }
}

/// A fatal error of a connection: the guest broke the ring protocol. As C xenstored's
/// `ignore_connection`, the connection stops serving the guest (later calls do nothing), its
/// buffered input and output are dropped, and the `error` field is set if
/// `XENSTORE_SERVER_FEATURE_ERROR` was advertised. The agent should drop the connection's
/// watches and transactions (`Store::reset_connection`) and log it; the domain stays
/// introduced (so `@releaseDomain` still fires) until released or until the guest reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsRingError {
    /// `req_prod - req_cons > XENSTORE_RING_SIZE` (`XENSTORE_ERROR_RINGIDX`).
    BadRequestIndexes {
        /// `req_cons` as read.
        cons: u32,
        /// `req_prod` as read.
        prod: u32,
    },
    /// `rsp_prod - rsp_cons > XENSTORE_RING_SIZE` (`XENSTORE_ERROR_RINGIDX`).
    BadResponseIndexes {
        /// `rsp_cons` as read.
        cons: u32,
        /// `rsp_prod` as read.
        prod: u32,
    },
    /// A request header announced more than `XENSTORE_PAYLOAD_MAX` bytes
    /// (`XENSTORE_ERROR_PROTO`).
    PayloadTooLong {
        /// The header's `len`.
        len: u32,
    },
}

impl XsRingError {
    /// The `XENSTORE_ERROR_*` value written to the ring's `error` field.
    pub fn error_code(&self) -> u32 {
        match self {
            XsRingError::BadRequestIndexes { .. } | XsRingError::BadResponseIndexes { .. } => XENSTORE_ERROR_RINGIDX,
            XsRingError::PayloadTooLong { .. } => XENSTORE_ERROR_PROTO,
        }
    }
}

impl fmt::Display for XsRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsRingError::BadRequestIndexes { cons, prod } => {
                write!(f, "bad request ring indexes (cons {cons:#x}, prod {prod:#x})")
            }
            XsRingError::BadResponseIndexes { cons, prod } => {
                write!(f, "bad response ring indexes (cons {cons:#x}, prod {prod:#x})")
            }
            XsRingError::PayloadTooLong { len } => {
                write!(f, "request payload of {len} bytes exceeds {XENSTORE_PAYLOAD_MAX}")
            }
        }
    }
}

/// Why [`XenstoreConnection::queue`] refused a message (nothing was queued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The output queue bound would be exceeded: the guest is not consuming its responses.
    /// Only watch events hit this if the agent queues at most one reply per request read;
    /// the agent decides (drop the event and log, or stop serving the domain).
    Full {
        /// Bytes already queued.
        queued: usize,
        /// The message's size.
        len: usize,
        /// The bound that applied: [`XenstoreConfig::max_queued_bytes`], less
        /// [`MAX_MESSAGE_SIZE`] for a watch event.
        limit: usize,
    },
    /// Not one well-formed message: shorter than a header, `len` not matching the bytes, or a
    /// payload above `XENSTORE_PAYLOAD_MAX` (C xenstored replies `E2BIG` instead).
    Malformed {
        /// The message's size.
        len: usize,
    },
    /// The connection had a fatal error (or was never introduced); output is discarded.
    NotServing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before [`XenstoreConnection::introduce`]: the page has not been set up.
    New,
    Serving,
    Failed(XsRingError),
}

/// The server side of one domain's xenstore ring.
///
/// Per event-channel notification (and whenever output was queued), the agent:
/// 1. calls [`handle_reconnect`](Self::handle_reconnect); on `true` it drops the store
///    connection's watches and transactions;
/// 2. loops on [`read_message`](Self::read_message), handing each message to the store and
///    [`queue`](Self::queue)ing each `Output::Send` on its connection;
/// 3. calls [`write_responses`](Self::write_responses) on each connection with
///    [`has_output`](Self::has_output);
/// 4. signals the domain's event channel if [`take_notify`](Self::take_notify).
///
/// An `Err` from step 2 or 3 is fatal for the connection (see [`XsRingError`]).
#[derive(Debug)]
pub struct XenstoreConnection {
    cfg: XenstoreConfig,
    state: State,
    /// The request being assembled: header then payload.
    input: Vec<u8>,
    /// Payload length once the header is complete.
    want: Option<usize>,
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out.front()` already in the ring.
    sent: usize,
    queued: usize,
    notify: bool,
}

impl XenstoreConnection {
    /// A connection that serves nothing until [`introduce`](Self::introduce).
    pub fn new(mut cfg: XenstoreConfig) -> XenstoreConnection {
        cfg.max_queued_bytes = cfg.max_queued_bytes.max(2 * MAX_MESSAGE_SIZE);
        XenstoreConnection {
            cfg,
            state: State::New,
            input: Vec::new(),
            want: None,
            out: VecDeque::new(),
            sent: 0,
            queued: 0,
            notify: false,
        }
    }

    /// The settings in force (after raising a too small bound).
    pub fn config(&self) -> &XenstoreConfig {
        &self.cfg
    }

    /// Sets the page up and starts serving, as C xenstored's `XS_INTRODUCE` does
    /// (`introduce_domain` + `domain_conn_reset`): advertises the features in
    /// `server_features`, clears `error`, empties both rings by zeroing the four indices, and
    /// if the guest was waiting in `XENSTORE_RECONNECT`, sets `connection` back to
    /// `XENSTORE_CONNECTED`. Also resets this connection's buffers (a re-introduction).
    /// Signal the guest afterwards ([`take_notify`](Self::take_notify) is set).
    pub fn introduce<P: SharedPage + ?Sized>(&mut self, page: &P) {
        self.reset_buffers();
        page.write_u32(SERVER_FEATURES, self.cfg.features);
        if self.cfg.features & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            page.write_u32(ERROR, XENSTORE_ERROR_NONE);
        }
        page.write_u32(REQ_CONS, 0);
        page.write_u32(REQ_PROD, 0);
        page.write_u32(RSP_CONS, 0);
        page.write_u32(RSP_PROD, 0);
        page.fence();
        if page.read_u32(CONNECTION) != XENSTORE_CONNECTED {
            page.write_u32(CONNECTION, XENSTORE_CONNECTED);
        }
        self.state = State::Serving;
        self.notify = true;
    }

    /// Serves a guest's reconnection request, if `XENSTORE_SERVER_FEATURE_RECONNECTION` was
    /// advertised and `connection` is not `XENSTORE_CONNECTED` (any other value counts, as in
    /// oxenstored): drops partial and queued messages, clears the error state (a failed
    /// connection is served again), empties both rings, then sets `connection` to
    /// `XENSTORE_CONNECTED` and asks for a notification. Returns `true` if it did so; the agent
    /// must then discard the store connection's watches and transactions
    /// (`Store::reset_connection`) and any reply still being computed.
    pub fn handle_reconnect<P: SharedPage + ?Sized>(&mut self, page: &P) -> bool {
        if self.state == State::New
            || self.cfg.features & XENSTORE_SERVER_FEATURE_RECONNECTION == 0
            || page.read_u32(CONNECTION) == XENSTORE_CONNECTED
        {
            return false;
        }
        page.fence();
        self.reset_buffers();
        page.write_u32(REQ_CONS, 0);
        page.write_u32(REQ_PROD, 0);
        page.write_u32(RSP_CONS, 0);
        page.write_u32(RSP_PROD, 0);
        if self.cfg.features & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            page.write_u32(ERROR, XENSTORE_ERROR_NONE);
        }
        page.fence();
        page.write_u32(CONNECTION, XENSTORE_CONNECTED);
        self.state = State::Serving;
        self.notify = true;
        true
    }

    /// Whether the guest is in a reconnection (so the rings must not be touched).
    fn reconnecting<P: SharedPage + ?Sized>(&self, page: &P) -> bool {
        self.cfg.features & XENSTORE_SERVER_FEATURE_RECONNECTION != 0 && page.read_u32(CONNECTION) != XENSTORE_CONNECTED
    }

    fn reset_buffers(&mut self) {
        self.input = Vec::new();
        self.want = None;
        self.out.clear();
        self.sent = 0;
        self.queued = 0;
    }

    fn fail<P: SharedPage + ?Sized>(&mut self, page: &P, err: XsRingError) -> XsRingError {
        self.reset_buffers();
        if self.cfg.features & XENSTORE_SERVER_FEATURE_ERROR != 0 {
            page.write_u32(ERROR, err.error_code());
            self.notify = true;
        }
        self.state = State::Failed(err);
        err
    }

    /// Whether requests are read: the connection is serving and the output queue has room for
    /// a maximal reply (back-pressure on a guest that does not consume its responses, as C
    /// xenstored's quota check in `domain_can_read`).
    pub fn can_read(&self) -> bool {
        self.state == State::Serving && self.queued.saturating_add(MAX_MESSAGE_SIZE) <= self.cfg.max_queued_bytes
    }

    /// Takes bytes of the request ring (at most up to the end of the current message) and
    /// returns the next complete message (header and payload, for `Store::handle`) once it is
    /// all there. `Ok(None)`: no complete message yet, or nothing is read (not serving, output
    /// queue too full, reconnection in progress). Call until `Ok(None)`.
    ///
    /// Errors (fatal, see [`XsRingError`]): inconsistent request indices, or a header with
    /// `len > XENSTORE_PAYLOAD_MAX` (detected as soon as the header is complete; the header's
    /// bytes have been consumed).
    pub fn read_message<P: SharedPage + ?Sized>(&mut self, page: &P) -> Result<Option<Vec<u8>>, XsRingError> {
        if !self.can_read() || self.reconnecting(page) {
            return Ok(None);
        }
        // Indices read once, before anything else, then verified (readchn).
        let cons = page.read_u32(REQ_CONS);
        let prod = page.read_u32(REQ_PROD);
        page.fence();
        let Some(mut avail) = REQ.used(cons, prod) else {
            return Err(self.fail(page, XsRingError::BadRequestIndexes { cons, prod }));
        };
        let mut taken = 0usize;
        let mut result = Ok(None);
        loop {
            let target = HDR + self.want.unwrap_or(0);
            let n = (target - self.input.len()).min(avail);
            if n > 0 {
                let start = self.input.len();
                self.input.resize(start + n, 0);
                REQ.read(page, cons.wrapping_add(taken as u32), &mut self.input[start..]);
                taken += n;
                avail -= n;
            }
            if self.input.len() < target {
                break;
            }
            match self.want {
                None => {
                    let len = u32::from_le_bytes([self.input[12], self.input[13], self.input[14], self.input[15]]);
                    if len as usize > XENSTORE_PAYLOAD_MAX {
                        result = Err(XsRingError::PayloadTooLong { len });
                        break;
                    }
                    self.want = Some(len as usize);
                    self.input.reserve_exact(len as usize);
                }
                Some(_) => {
                    self.want = None;
                    result = Ok(Some(core::mem::take(&mut self.input)));
                    break;
                }
            }
        }
        if taken > 0 {
            page.fence();
            page.write_u32(REQ_CONS, cons.wrapping_add(taken as u32));
            self.notify = true;
        }
        result.map_err(|e| self.fail(page, e))
    }

    /// Queues one message (e.g. `Message::to_bytes()` of an `Output::Send`) for the response
    /// ring; [`write_responses`](Self::write_responses) sends it. Refused, and not queued, if it
    /// would exceed the bound, is malformed, or the connection is not serving.
    pub fn queue(&mut self, msg: Vec<u8>) -> Result<(), QueueError> {
        if self.state != State::Serving {
            return Err(QueueError::NotServing);
        }
        let len = msg.len();
        let well_formed = len >= HDR
            && u32::from_le_bytes([msg[12], msg[13], msg[14], msg[15]]) as usize == len - HDR
            && len <= MAX_MESSAGE_SIZE;
        if !well_formed {
            return Err(QueueError::Malformed { len });
        }
        // Watch events may not use the last MAX_MESSAGE_SIZE bytes: they are kept for the
        // reply to the request being handled (see `can_read`), so a reply always fits.
        let is_event = u32::from_le_bytes([msg[0], msg[1], msg[2], msg[3]]) == XS_WATCH_EVENT;
        let limit = if is_event { self.cfg.max_queued_bytes - MAX_MESSAGE_SIZE } else { self.cfg.max_queued_bytes };
        if self.queued.saturating_add(len) > limit {
            return Err(QueueError::Full { queued: self.queued, len, limit });
        }
        self.queued += len;
        self.out.push_back(msg);
        Ok(())
    }

    /// Whether output is waiting for ring space.
    pub fn has_output(&self) -> bool {
        self.queued > 0
    }

    /// Bytes queued and not yet in the ring.
    pub fn queued_bytes(&self) -> usize {
        self.queued
    }

    /// Writes as much queued output as fits into the response ring (messages may be split
    /// across calls; the guest reassembles the stream). Returns the bytes written.
    /// Error (fatal): inconsistent response indices.
    pub fn write_responses<P: SharedPage + ?Sized>(&mut self, page: &P) -> Result<usize, XsRingError> {
        if self.state != State::Serving || self.queued == 0 || self.reconnecting(page) {
            return Ok(0);
        }
        // Indices read once, before anything else, then verified (writechn).
        let cons = page.read_u32(RSP_CONS);
        let prod = page.read_u32(RSP_PROD);
        page.fence();
        let Some(used) = RSP.used(cons, prod) else {
            return Err(self.fail(page, XsRingError::BadResponseIndexes { cons, prod }));
        };
        let mut free = XENSTORE_RING_SIZE - used;
        let mut written = 0usize;
        while free > 0 {
            let Some(front) = self.out.front() else {
                break;
            };
            let chunk = &front[self.sent..];
            let n = chunk.len().min(free);
            RSP.write(page, prod.wrapping_add(written as u32), &chunk[..n]);
            written += n;
            free -= n;
            self.sent += n;
            if self.sent == front.len() {
                self.out.pop_front();
                self.sent = 0;
            }
        }
        if written > 0 {
            self.queued -= written;
            page.fence();
            page.write_u32(RSP_PROD, prod.wrapping_add(written as u32));
            self.notify = true;
        }
        Ok(written)
    }

    /// The fatal error that stopped this connection, if any.
    pub fn failed(&self) -> Option<XsRingError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the connection serves the guest (introduced, no fatal error).
    pub fn is_serving(&self) -> bool {
        self.state == State::Serving
    }

    /// Whether an index or field changed since the last call, so the guest's event channel
    /// should be signalled (C xenstored signals after every ring read or write); clears it.
    pub fn take_notify(&mut self) -> bool {
        core::mem::take(&mut self.notify)
    }
}

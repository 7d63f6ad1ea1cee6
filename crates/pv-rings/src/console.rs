//! The backend side of a domain's PV console ring (`struct xencons_interface`).
//!
//! Behaviour follows xenconsoled (`tools/console/daemon/io.c`): `buffer_append` drains `out`,
//! consuming nothing when `out_prod - out_cons` is larger than the ring (the ring is left as
//! it is and tried again at the next event); `ring_free_bytes`/`handle_tty_read` fill `in`,
//! treating inconsistent `in` indices as a full ring.

use core::fmt;
use core::mem::offset_of;

use xen_abi::console::{
    XenconsInterface as Intf, XENCONSOLE_CONNECTED, XENCONS_CONNECTION_OFFSET, XENCONS_IN_SIZE, XENCONS_OUT_SIZE,
};

use crate::history::{History, LineAssembler};
use crate::page::{Ring, SharedPage};

const IN: Ring = Ring { base: offset_of!(Intf, in_), size: XENCONS_IN_SIZE };
const OUT: Ring = Ring { base: offset_of!(Intf, out), size: XENCONS_OUT_SIZE };
const IN_CONS: usize = offset_of!(Intf, in_cons);
const IN_PROD: usize = offset_of!(Intf, in_prod);
const OUT_CONS: usize = offset_of!(Intf, out_cons);
const OUT_PROD: usize = offset_of!(Intf, out_prod);

/// Settings of one console backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Bytes of output history kept (oldest dropped). Default 64 KiB.
    pub history_bytes: usize,
    /// Longest line handed to the logger; longer lines come in pieces. Default 1024.
    pub max_line: usize,
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig { history_bytes: 64 * 1024, max_line: 1024 }
    }
}

/// The guest's `out` indices were inconsistent (`out_prod - out_cons > 2048`): nothing was
/// consumed, as in xenconsoled. Not fatal; the agent may log it (rate-limited: the guest can
/// cause it at every event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleIndexError {
    /// `out_cons` as read.
    pub cons: u32,
    /// `out_prod` as read.
    pub prod: u32,
}

impl fmt::Display for ConsoleIndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad console ring indexes (out_cons {:#x}, out_prod {:#x})", self.cons, self.prod)
    }
}

/// The backend of one domain's console ring: output history, line assembly, input.
#[derive(Debug)]
pub struct ConsoleBackend {
    history: History,
    lines: LineAssembler,
    notify: bool,
}

impl ConsoleBackend {
    /// A backend with an empty history.
    pub fn new(cfg: ConsoleConfig) -> ConsoleBackend {
        ConsoleBackend {
            history: History::new(cfg.history_bytes),
            lines: LineAssembler::new(cfg.max_line),
            notify: false,
        }
    }

    /// Marks the ring as serviced: writes `XENCONSOLE_CONNECTED` to the `connection` byte that
    /// newer `io/console.h` appends after `out_prod` (xenconsoled does when it connects; older
    /// guests ignore the byte). Indices are left alone: the guest may already have written.
    pub fn connect<P: SharedPage + ?Sized>(&mut self, page: &P) {
        page.fence();
        page.write_bytes(XENCONS_CONNECTION_OFFSET, &[XENCONSOLE_CONNECTED]);
        self.notify = true;
    }

    /// Consumes everything in the `out` ring: appends it to the history and feeds the line
    /// assembler, calling `line` with each completed line (the caller adds the domain prefix).
    /// Returns the bytes consumed.
    pub fn drain_output<P: SharedPage + ?Sized>(
        &mut self,
        page: &P,
        line: impl FnMut(&[u8]),
    ) -> Result<usize, ConsoleIndexError> {
        let cons = page.read_u32(OUT_CONS);
        let prod = page.read_u32(OUT_PROD);
        page.fence();
        let Some(size) = OUT.used(cons, prod) else {
            return Err(ConsoleIndexError { cons, prod });
        };
        if size == 0 {
            return Ok(0);
        }
        let mut buf = [0u8; XENCONS_OUT_SIZE];
        let bytes = &mut buf[..size];
        OUT.read(page, cons, bytes);
        page.fence();
        page.write_u32(OUT_CONS, cons.wrapping_add(size as u32));
        self.notify = true;
        self.history.push(bytes);
        self.lines.push(bytes, line);
        Ok(size)
    }

    /// Bytes the `in` ring can take now (0 if its indices are inconsistent).
    pub fn input_space<P: SharedPage + ?Sized>(&self, page: &P) -> usize {
        let cons = page.read_u32(IN_CONS);
        let prod = page.read_u32(IN_PROD);
        IN.used(cons, prod).map_or(0, |used| XENCONS_IN_SIZE - used)
    }

    /// Writes as much of `bytes` into the `in` ring as fits; returns how many. Inconsistent
    /// indices count as a full ring (0), as in xenconsoled's `ring_free_bytes`.
    pub fn write_input<P: SharedPage + ?Sized>(&mut self, page: &P, bytes: &[u8]) -> usize {
        let cons = page.read_u32(IN_CONS);
        let prod = page.read_u32(IN_PROD);
        page.fence();
        let Some(used) = IN.used(cons, prod) else {
            return 0;
        };
        let n = bytes.len().min(XENCONS_IN_SIZE - used);
        if n == 0 {
            return 0;
        }
        IN.write(page, prod, &bytes[..n]);
        page.fence();
        page.write_u32(IN_PROD, prod.wrapping_add(n as u32));
        self.notify = true;
        n
    }

    /// The output history.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// Emits the incomplete last line (e.g. when the domain dies).
    pub fn flush_line(&mut self, line: impl FnMut(&[u8])) {
        self.lines.flush(line);
    }

    /// Whether an index changed since the last call, so the guest's console event channel
    /// should be signalled; clears it.
    pub fn take_notify(&mut self) -> bool {
        core::mem::take(&mut self.notify)
    }
}

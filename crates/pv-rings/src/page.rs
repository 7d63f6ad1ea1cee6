//! Access to a page shared with an untrusted guest, and copies in and out of a byte ring
//! inside it.

use core::cell::RefCell;
use core::sync::atomic::{fence, Ordering};

/// Bytes of a shared page.
pub const PAGE_SIZE: usize = 4096;

/// A 4 KiB page shared with a guest that may change any byte at any time.
///
/// Offsets are relative to the start of the page; this crate only passes ranges inside the
/// page (`offset + len <= PAGE_SIZE`). Integers are little-endian.
///
/// The agent implements it over the mapped frame with volatile accesses (one 32-bit load or
/// store per `read_u32`/`write_u32`, so an index is never torn); the `unsafe` lives there.
/// Implementations must not assume the bytes stay the same between two calls.
pub trait SharedPage {
    /// Reads the aligned little-endian `u32` at `offset` (one access).
    fn read_u32(&self, offset: usize) -> u32;
    /// Writes the aligned little-endian `u32` at `offset` (one access).
    fn write_u32(&self, offset: usize, v: u32);
    /// Copies `out.len()` bytes starting at `offset` into `out`.
    fn read_bytes(&self, offset: usize, out: &mut [u8]);
    /// Copies `bytes` into the page starting at `offset`.
    fn write_bytes(&self, offset: usize, bytes: &[u8]);
    /// A full memory barrier (Xen's `xen_mb()`), ordering the page accesses before it against
    /// those after it, as seen by the guest's CPUs. Called after an operation has read a
    /// ring's indices and before it touches the data, and after the data and before the new
    /// index is published. The default is a sequentially consistent fence (`mfence` on
    /// x86), which also keeps the compiler from moving accesses across it.
    fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

impl<P: SharedPage + ?Sized> SharedPage for &P {
    fn read_u32(&self, offset: usize) -> u32 {
        (**self).read_u32(offset)
    }
    fn write_u32(&self, offset: usize, v: u32) {
        (**self).write_u32(offset, v)
    }
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        (**self).read_bytes(offset, out)
    }
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        (**self).write_bytes(offset, bytes)
    }
    fn fence(&self) {
        (**self).fence()
    }
}

/// A [`SharedPage`] in ordinary memory: for tests (the test plays the guest through the same
/// trait) and for loopback use. Accesses outside the page panic (a bug in the caller).
#[derive(Debug, Clone)]
pub struct MemPage {
    bytes: RefCell<[u8; PAGE_SIZE]>,
}

impl Default for MemPage {
    fn default() -> MemPage {
        MemPage::new()
    }
}

impl MemPage {
    /// A zeroed page.
    pub fn new() -> MemPage {
        MemPage { bytes: RefCell::new([0; PAGE_SIZE]) }
    }

    /// A copy of the page's bytes.
    pub fn snapshot(&self) -> [u8; PAGE_SIZE] {
        *self.bytes.borrow()
    }
}

impl SharedPage for MemPage {
    fn read_u32(&self, offset: usize) -> u32 {
        let b = self.bytes.borrow();
        u32::from_le_bytes([b[offset], b[offset + 1], b[offset + 2], b[offset + 3]])
    }
    fn write_u32(&self, offset: usize, v: u32) {
        self.bytes.borrow_mut()[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.bytes.borrow()[offset..offset + out.len()]);
    }
    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        self.bytes.borrow_mut()[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

/// A byte ring of `size` (a power of two) bytes at `base` in a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ring {
    pub base: usize,
    pub size: usize,
}

impl Ring {
    /// Copies `out.len()` (at most `size`) bytes starting at free-running index `idx` out of
    /// the ring: at most two contiguous reads.
    pub fn read<P: SharedPage + ?Sized>(&self, page: &P, idx: u32, out: &mut [u8]) {
        debug_assert!(out.len() <= self.size);
        let pos = idx as usize & (self.size - 1);
        let first = out.len().min(self.size - pos);
        let (a, b) = out.split_at_mut(first);
        page.read_bytes(self.base + pos, a);
        if !b.is_empty() {
            page.read_bytes(self.base, b);
        }
    }

    /// Copies `bytes` (at most `size`) into the ring starting at free-running index `idx`.
    pub fn write<P: SharedPage + ?Sized>(&self, page: &P, idx: u32, bytes: &[u8]) {
        debug_assert!(bytes.len() <= self.size);
        let pos = idx as usize & (self.size - 1);
        let first = bytes.len().min(self.size - pos);
        let (a, b) = bytes.split_at(first);
        page.write_bytes(self.base + pos, a);
        if !b.is_empty() {
            page.write_bytes(self.base, b);
        }
    }

    /// Bytes queued between `cons` and `prod`, or `None` if the indices are inconsistent
    /// (`prod - cons > size`, wrapping).
    pub fn used(&self, cons: u32, prod: u32) -> Option<usize> {
        let used = prod.wrapping_sub(cons) as usize;
        (used <= self.size).then_some(used)
    }
}

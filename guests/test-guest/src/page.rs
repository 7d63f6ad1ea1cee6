//! Page-aligned static pages the guest hands to Xen by frame number (grant frames, granted
//! and copied pages, a page to balloon out and back in). The guest is identity-mapped, so a
//! page's address is its guest-physical address and `address >> 12` its frame.
//!
//! Xen (or another domain, through a grant) may write these pages at any time, so they are
//! only accessed through volatile reads and writes of whole words.

use core::cell::UnsafeCell;

/// Bytes in a page.
pub const PAGE_SIZE: usize = 4096;
/// 64-bit words in a page.
pub const PAGE_WORDS: usize = PAGE_SIZE / 8;

/// One page of guest memory shared with the hypervisor or another domain.
#[repr(C, align(4096))]
pub struct Page(UnsafeCell<[u64; PAGE_WORDS]>);

// SAFETY: the pages are only accessed through volatile word reads and writes (`read`,
// `write`) or handed to the hypervisor by address; the guest runs on one vCPU.
unsafe impl Sync for Page {}

impl Page {
    /// A zeroed page (for statics, which land in `.bss`).
    pub const fn new() -> Self {
        Page(UnsafeCell::new([0; PAGE_WORDS]))
    }

    /// Its guest-physical (= virtual) address.
    pub fn addr(&self) -> u64 {
        self.0.get() as u64
    }

    /// Its guest frame number.
    pub fn gfn(&self) -> u64 {
        self.addr() >> 12
    }

    /// Word `i` (< [`PAGE_WORDS`]).
    pub fn read(&self, i: usize) -> u64 {
        assert!(i < PAGE_WORDS);
        // SAFETY: in bounds of this page, which lives for the guest's lifetime and is mapped
        // (identity) as long as the guest has not ballooned it out.
        unsafe { core::ptr::read_volatile((self.0.get() as *const u64).add(i)) }
    }

    /// Sets word `i` (< [`PAGE_WORDS`]).
    pub fn write(&self, i: usize, value: u64) {
        assert!(i < PAGE_WORDS);
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.0.get() as *mut u64).add(i), value) }
    }

    /// Fills the page with `pattern(i)` for word `i`.
    pub fn fill(&self, pattern: impl Fn(usize) -> u64) {
        (0..PAGE_WORDS).for_each(|i| self.write(i, pattern(i)));
    }

    /// The first word `i` where the page differs from `pattern(i)`, with what it holds.
    pub fn mismatch(&self, pattern: impl Fn(usize) -> u64) -> Option<(usize, u64)> {
        (0..PAGE_WORDS).map(|i| (i, self.read(i))).find(|&(i, v)| v != pattern(i))
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the word at guest-physical `addr` (a page mapped by the boot stub's identity map).
///
/// # Safety
/// `addr` must be 8-byte aligned, identity-mapped by the guest's page tables and backed by
/// memory in the guest-physical space (RAM or a page the hypervisor mapped there).
pub unsafe fn read_phys(addr: u64) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// Writes the word at guest-physical `addr`.
///
/// # Safety
/// As for [`read_phys`], and the memory must be writable by the guest.
pub unsafe fn write_phys(addr: u64, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe { core::ptr::write_volatile(addr as *mut u64, value) }
}

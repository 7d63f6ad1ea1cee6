//! The 2-level event-channel ABI: pending and mask bitmaps in `shared_info`, a per-vCPU
//! selector word and upcall flag in `vcpu_info`. These live in memory the guest writes
//! concurrently, so every access is an atomic read-modify-write, exactly as Xen's
//! `event_2l.c` does it.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Byte offsets in `struct shared_info` (`public/xen.h`, x86_64).
pub const SHARED_INFO_PENDING: usize = 2048;
pub const SHARED_INFO_MASK: usize = 2560;
pub const SHARED_INFO_WC_VERSION: usize = 3072;
pub const VCPU_INFO_SIZE: usize = 64;
/// `struct vcpu_info`: upcall_pending u8 @0, upcall_mask u8 @1, pending_sel u64 @8,
/// arch @16, time (vcpu_time_info) @32.
pub const VCPU_INFO_UPCALL_PENDING: usize = 0;
pub const VCPU_INFO_PENDING_SEL: usize = 8;
pub const VCPU_INFO_TIME: usize = 32;
/// Ports per selector bit on 64-bit guests.
pub const BITS_PER_WORD: u32 = 64;
/// `EVTCHN_2L_NR_CHANNELS` for 64-bit guests.
pub const NR_CHANNELS: u32 = BITS_PER_WORD * BITS_PER_WORD;

/// A page of hypervisor-visible guest memory: the base address of a mapped page, through
/// which aligned fields are reached atomically. The page must stay allocated (and mapped
/// in the direct map) for as long as the view is used; the domain guarantees that by
/// keeping every page it may point at until it is destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageView(pub u64);

impl PageView {
    fn u64_at(self, offset: usize) -> &'static AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= 4096, "unaligned or out-of-page u64 at {offset:#x}");
        // SAFETY: the address lies in a live page owned by the domain (see the type's
        // contract), is 8-byte aligned, and the guest may only race with atomic accesses.
        unsafe { &*((self.0 + offset as u64) as *const AtomicU64) }
    }

    fn u8_at(self, offset: usize) -> &'static AtomicU8 {
        assert!(offset < 4096, "byte at {offset:#x} outside the page");
        // SAFETY: as in `u64_at`; bytes have no alignment requirement.
        unsafe { &*((self.0 + offset as u64) as *const AtomicU8) }
    }

    pub fn read_u64(self, offset: usize) -> u64 {
        self.u64_at(offset).load(Ordering::Acquire)
    }

    pub fn write_u64(self, offset: usize, value: u64) {
        self.u64_at(offset).store(value, Ordering::Release);
    }

    pub fn write_u32(self, offset: usize, value: u32) {
        let word = self.u64_at(offset & !7);
        let shift = (offset & 7) * 8;
        let mask = 0xffff_ffffu64 << shift;
        let _ =
            word.fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| Some((w & !mask) | (u64::from(value) << shift)));
    }

    pub fn write_u8(self, offset: usize, value: u8) {
        self.u8_at(offset).store(value, Ordering::Release);
    }

    pub fn read_u8(self, offset: usize) -> u8 {
        self.u8_at(offset).load(Ordering::Acquire)
    }

    pub fn add(self, offset: usize) -> PageView {
        PageView(self.0 + offset as u64)
    }
}

/// Where a vCPU's `vcpu_info` is: inside shared_info, or wherever the guest registered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VcpuInfoView(pub PageView);

impl VcpuInfoView {
    pub fn upcall_pending(self) -> bool {
        self.0.read_u8(VCPU_INFO_UPCALL_PENDING) != 0
    }

    /// Sets the upcall flag; true if it was clear (the vCPU needs a kick).
    fn mark_upcall(self) -> bool {
        self.0.u8_at(VCPU_INFO_UPCALL_PENDING).fetch_or(1, Ordering::AcqRel) & 1 == 0
    }

    fn set_selector_bit(self, bit: u32) -> bool {
        let b = 1u64 << bit;
        self.0.u64_at(VCPU_INFO_PENDING_SEL).fetch_or(b, Ordering::AcqRel) & b == 0
    }

    pub fn time(self) -> PageView {
        self.0.add(VCPU_INFO_TIME)
    }
}

/// The event bitmaps of one domain's shared_info page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBitmaps(pub PageView);

impl EventBitmaps {
    fn word(port: u32) -> (usize, u64) {
        ((port / BITS_PER_WORD) as usize * 8, 1u64 << (port % BITS_PER_WORD))
    }

    pub fn is_pending(self, port: u32) -> bool {
        let (w, b) = Self::word(port);
        self.0.read_u64(SHARED_INFO_PENDING + w) & b != 0
    }

    pub fn is_masked(self, port: u32) -> bool {
        let (w, b) = Self::word(port);
        self.0.read_u64(SHARED_INFO_MASK + w) & b != 0
    }

    pub fn clear_pending(self, port: u32) {
        let (w, b) = Self::word(port);
        self.0.u64_at(SHARED_INFO_PENDING + w).fetch_and(!b, Ordering::AcqRel);
    }

    /// Marks `port` pending for `vcpu`; true if the vCPU's upcall flag went from clear to
    /// set (so the vCPU must be kicked).
    pub fn set_pending(self, port: u32, vcpu: Option<VcpuInfoView>) -> bool {
        let (w, b) = Self::word(port);
        if self.0.u64_at(SHARED_INFO_PENDING + w).fetch_or(b, Ordering::AcqRel) & b != 0 {
            return false;
        }
        self.notify_if_unmasked(port, vcpu)
    }

    /// Unmasks `port`; if it is pending, notifies `vcpu` as a fresh event would.
    pub fn unmask(self, port: u32, vcpu: Option<VcpuInfoView>) -> bool {
        let (w, b) = Self::word(port);
        let was_masked = self.0.u64_at(SHARED_INFO_MASK + w).fetch_and(!b, Ordering::AcqRel) & b != 0;
        was_masked && self.is_pending(port) && self.notify_if_unmasked(port, vcpu)
    }

    /// Re-delivers a pending, unmasked port to a (new) vCPU.
    pub fn redeliver(self, port: u32, vcpu: Option<VcpuInfoView>) -> bool {
        self.is_pending(port) && self.notify_if_unmasked(port, vcpu)
    }

    fn notify_if_unmasked(self, port: u32, vcpu: Option<VcpuInfoView>) -> bool {
        if self.is_masked(port) {
            return false;
        }
        match vcpu {
            Some(info) => info.set_selector_bit(port / BITS_PER_WORD) && info.mark_upcall(),
            None => false,
        }
    }
}

//! A page shared with a backend in another domain (a PV ring), seen at its guest-physical
//! address through the identity map: 32-bit indices read and written once (volatile), byte
//! arrays addressed with their ring size as mask, and the barriers the ring protocols put
//! between the two.

use core::sync::atomic::{fence, Ordering};

use crate::paging;

/// A shared page at guest-physical `base` (identity-mapped).
pub struct SharedPage {
    base: u64,
}

impl SharedPage {
    /// The page at guest frame `gfn`, if the identity map reaches it.
    pub fn at_gfn(gfn: u64) -> Option<SharedPage> {
        let base = gfn.checked_mul(4096)?;
        paging::identity_map(base).then_some(SharedPage { base })
    }

    fn at(&self, offset: usize) -> u64 {
        assert!(offset < 4096, "offset {offset:#x} outside the shared page");
        self.base + offset as u64
    }

    /// The u32 at `offset` (4-byte aligned), read once.
    pub fn read_u32(&self, offset: usize) -> u32 {
        // SAFETY: inside the identity-mapped page (checked); aligned by the ring layouts;
        // the backend writes it concurrently, hence one volatile read.
        unsafe { core::ptr::read_volatile(self.at(offset) as *const u32) }
    }

    pub fn write_u32(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_u32`.
        unsafe { core::ptr::write_volatile(self.at(offset) as *mut u32, value) }
    }

    /// Byte `index` (wrapped to `size`, a power of two) of the array at `array`.
    pub fn read_byte(&self, array: usize, size: u32, index: u32) -> u8 {
        // SAFETY: as in `read_u32`; the masked index stays inside the array.
        unsafe { core::ptr::read_volatile(self.at(array + (index & (size - 1)) as usize) as *const u8) }
    }

    pub fn write_byte(&self, array: usize, size: u32, index: u32, value: u8) {
        // SAFETY: as in `read_byte`.
        unsafe { core::ptr::write_volatile(self.at(array + (index & (size - 1)) as usize) as *mut u8, value) }
    }

    /// The full barrier the ring protocols put between indices and data (`xen_mb`).
    pub fn fence(&self) {
        fence(Ordering::SeqCst);
    }
}

/// The offset of `field` in a `xen_abi` structure's layout table.
pub fn offset_of(fields: &[xen_abi::FieldInfo], field: &str) -> usize {
    xen_abi::field(fields, field).unwrap_or_else(|| panic!("no field {field}")).offset
}

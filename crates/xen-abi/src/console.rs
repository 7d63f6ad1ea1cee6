//! The console: `HYPERVISOR_console_io(cmd, count, buffer)` (`CONSOLEIO_*` of `xen.h`) and the
//! PV console ring `struct xencons_interface` (`io/console.h`) that `HVM_PARAM_CONSOLE_PFN`
//! names.
//!
//! The ring indexes are free-running `u32` counters; a byte at index `i` lives at
//! `i % ring size` ([`mask_xencons_in`], [`mask_xencons_out`]). `in` carries bytes to the
//! guest (the backend produces, the guest consumes), `out` bytes from the guest.

use crate::wire::xen_struct;

/// `CONSOLEIO_write`: write `count` bytes from `buffer` to the hypervisor console.
pub const CONSOLEIO_WRITE: u64 = 0;
/// `CONSOLEIO_read`: read up to `count` bytes into `buffer` (dom0).
pub const CONSOLEIO_READ: u64 = 1;

/// `XENCONS_RING_IDX`: a free-running ring index.
pub type XenconsRingIdx = u32;

/// Bytes of the `in` ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Bytes of the `out` ring.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `MASK_XENCONS_IDX(idx, ring)`: the position of index `idx` in a ring of `ring_size` bytes (a
/// power of two).
pub const fn mask_xencons_idx(idx: XenconsRingIdx, ring_size: usize) -> usize {
    idx as usize & (ring_size - 1)
}

/// The position of `idx` in the `in` ring.
pub const fn mask_xencons_in(idx: XenconsRingIdx) -> usize {
    mask_xencons_idx(idx, XENCONS_IN_SIZE)
}

/// The position of `idx` in the `out` ring.
pub const fn mask_xencons_out(idx: XenconsRingIdx) -> usize {
    mask_xencons_idx(idx, XENCONS_OUT_SIZE)
}

xen_struct! {
    /// `struct xencons_interface`: the console ring page.
    pub struct XenconsInterface: 3088 bytes {
        /// `in`: backend to guest.
        pub in_ @ 0: [u8; 1024],
        /// `out`: guest to backend.
        pub out @ 1024: [u8; 2048],
        /// Consumer index of `in` (the guest advances it).
        pub in_cons @ 3072: XenconsRingIdx,
        /// Producer index of `in` (the backend advances it).
        pub in_prod @ 3076: XenconsRingIdx,
        /// Consumer index of `out` (the backend advances it).
        pub out_cons @ 3080: XenconsRingIdx,
        /// Producer index of `out` (the guest advances it).
        pub out_prod @ 3084: XenconsRingIdx,
    }
}

const _: () = assert!(XENCONS_IN_SIZE.is_power_of_two() && XENCONS_OUT_SIZE.is_power_of_two());

/// `XENCONSOLE_CONNECTED`: value of the console page's `connection` byte once the backend
/// services the ring (xenconsoled writes it when it connects).
///
/// `uint8_t connection` was appended to `struct xencons_interface` after Xen 4.17 (2025); it
/// is not a field of [`XenconsInterface`], which keeps the 4.17 layout, but lives at
/// [`XENCONS_CONNECTION_OFFSET`] in the page. Older guests ignore it.
pub const XENCONSOLE_CONNECTED: u8 = 0;
/// `XENCONSOLE_DISCONNECTED`: the `connection` byte's value before a backend connects.
pub const XENCONSOLE_DISCONNECTED: u8 = 1;
/// Offset of the `connection` byte in the console page (right after `out_prod`).
pub const XENCONS_CONNECTION_OFFSET: usize = 3088;

const _: () = assert!(XENCONS_CONNECTION_OFFSET == XenconsInterface::SIZE);

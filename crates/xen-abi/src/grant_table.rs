//! `grant_table.h`: grant entries (v1 and v2) and `HYPERVISOR_grant_table_op(cmd, arg, count)`.
//! Most operations take an array of `count` structures and report per-element results in
//! their `status` field (`GNTST_*`).

use crate::wire::xen_struct;
use crate::DomId;

/// `grant_ref_t`: an index into a domain's grant table.
pub type GrantRef = u32;
/// `grant_handle_t`: a handle for a mapping made with `GNTTABOP_map_grant_ref`.
pub type GrantHandle = u32;
/// `grant_status_t`: an entry of a v2 status frame.
pub type GrantStatus = u16;

/// `GNTTAB_NR_RESERVED_ENTRIES`: entries reserved for the toolstack at the start of a table.
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`: reserved entry granting the console ring to the backend.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`: reserved entry granting the xenstore ring to xenstored.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

// `GTF_*`: the `flags` of a grant entry. Bits 0-1 are the type.

/// `GTF_invalid`: the entry grants nothing.
pub const GTF_INVALID: u16 = 0;
/// `GTF_permit_access`: `domid` may map or copy `frame`.
pub const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_accept_transfer`: `domid` may transfer a page into `frame`.
pub const GTF_ACCEPT_TRANSFER: u16 = 2;
/// `GTF_transitive` (v2): `domid` may use grant `gref` of `trans_domid`.
pub const GTF_TRANSITIVE: u16 = 3;
/// `GTF_type_mask`.
pub const GTF_TYPE_MASK: u16 = 3;
/// `GTF_readonly`: access is read-only.
pub const GTF_READONLY: u16 = 1 << 2;
/// `GTF_reading`: set by the hypervisor while the grant is mapped or copied from.
pub const GTF_READING: u16 = 1 << 3;
/// `GTF_writing`: set by the hypervisor while the grant is mapped writable or copied to.
pub const GTF_WRITING: u16 = 1 << 4;
/// `GTF_PWT`: map with write-through caching.
pub const GTF_PWT: u16 = 1 << 5;
/// `GTF_PCD`: map uncached.
pub const GTF_PCD: u16 = 1 << 6;
/// `GTF_PAT`: PAT bit of the mapping.
pub const GTF_PAT: u16 = 1 << 7;
/// `GTF_sub_page` (v2): only `[page_off, page_off + length)` is granted.
pub const GTF_SUB_PAGE: u16 = 1 << 8;
/// `GTF_transfer_committed` (accept-transfer entries): a transfer is in progress.
pub const GTF_TRANSFER_COMMITTED: u16 = 1 << 2;
/// `GTF_transfer_completed` (accept-transfer entries): the transfer finished.
pub const GTF_TRANSFER_COMPLETED: u16 = 1 << 3;

/// `GNTTABOP_map_grant_ref`: argument array of [`GnttabMapGrantRef`].
pub const GNTTABOP_MAP_GRANT_REF: u64 = 0;
/// `GNTTABOP_unmap_grant_ref`: argument array of [`GnttabUnmapGrantRef`].
pub const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
/// `GNTTABOP_setup_table`: argument [`GnttabSetupTable`].
pub const GNTTABOP_SETUP_TABLE: u64 = 2;
/// `GNTTABOP_dump_table`: argument [`GnttabDumpTable`].
pub const GNTTABOP_DUMP_TABLE: u64 = 3;
/// `GNTTABOP_transfer`: argument array of [`GnttabTransfer`].
pub const GNTTABOP_TRANSFER: u64 = 4;
/// `GNTTABOP_copy`: argument array of [`GnttabCopy`].
pub const GNTTABOP_COPY: u64 = 5;
/// `GNTTABOP_query_size`: argument [`GnttabQuerySize`].
pub const GNTTABOP_QUERY_SIZE: u64 = 6;
/// `GNTTABOP_unmap_and_replace`: argument array of [`GnttabUnmapAndReplace`].
pub const GNTTABOP_UNMAP_AND_REPLACE: u64 = 7;
/// `GNTTABOP_set_version`: argument [`GnttabSetVersion`].
pub const GNTTABOP_SET_VERSION: u64 = 8;
/// `GNTTABOP_get_status_frames`: argument [`GnttabGetStatusFrames`].
pub const GNTTABOP_GET_STATUS_FRAMES: u64 = 9;
/// `GNTTABOP_get_version`: argument [`GnttabGetVersion`].
pub const GNTTABOP_GET_VERSION: u64 = 10;
/// `GNTTABOP_swap_grant_ref`: argument array of [`GnttabSwapGrantRef`].
pub const GNTTABOP_SWAP_GRANT_REF: u64 = 11;
/// `GNTTABOP_cache_flush`: argument array of [`GnttabCacheFlush`].
pub const GNTTABOP_CACHE_FLUSH: u64 = 12;

/// `GNTCOPY_source_gref` in [`GnttabCopy::flags`]: `source.u` is a grant reference of
/// `source.domid` (else a frame of the caller).
pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`: `dest.u` is a grant reference.
pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;

/// `GNTTAB_CACHE_CLEAN` in [`GnttabCacheFlush::op`].
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `GNTTAB_CACHE_INVAL`.
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `GNTTAB_CACHE_SOURCE_GREF`: `a` is a grant reference (else a bus address).
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

/// `GNTMAP_device_map` in [`GnttabMapGrantRef::flags`]: map for device (I/O) access.
pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
/// `GNTMAP_host_map`: map for CPU access at `host_addr`.
pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
/// `GNTMAP_readonly`: read-only mapping.
pub const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTMAP_application_map`: the host mapping is usable by applications too (PV).
pub const GNTMAP_APPLICATION_MAP: u32 = 1 << 3;
/// `GNTMAP_contains_pte`: `host_addr` is the machine address of a PTE to update (PV).
pub const GNTMAP_CONTAINS_PTE: u32 = 1 << 4;
/// `GNTMAP_guest_avail_mask`: bits left to the guest (from bit 16).
pub const GNTMAP_GUEST_AVAIL_MASK: u32 = !0 << 16;

// `GNTST_*`: per-operation status codes.

/// `GNTST_okay`.
pub const GNTST_OKAY: i16 = 0;
/// `GNTST_general_error`.
pub const GNTST_GENERAL_ERROR: i16 = -1;
/// `GNTST_bad_domain`: unknown domain id.
pub const GNTST_BAD_DOMAIN: i16 = -2;
/// `GNTST_bad_gntref`: unknown or unusable grant reference.
pub const GNTST_BAD_GNTREF: i16 = -3;
/// `GNTST_bad_handle`: unknown or unusable mapping handle.
pub const GNTST_BAD_HANDLE: i16 = -4;
/// `GNTST_bad_virt_addr`: unusable virtual address to map at.
pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
/// `GNTST_bad_dev_addr`: unusable device address to unmap.
pub const GNTST_BAD_DEV_ADDR: i16 = -6;
/// `GNTST_no_device_space`: no room in the I/O MMU.
pub const GNTST_NO_DEVICE_SPACE: i16 = -7;
/// `GNTST_permission_denied`.
pub const GNTST_PERMISSION_DENIED: i16 = -8;
/// `GNTST_bad_page`: the page is not valid for the operation.
pub const GNTST_BAD_PAGE: i16 = -9;
/// `GNTST_bad_copy_arg`: copy arguments cross a page boundary.
pub const GNTST_BAD_COPY_ARG: i16 = -10;
/// `GNTST_address_too_big`: transfer page address too large.
pub const GNTST_ADDRESS_TOO_BIG: i16 = -11;
/// `GNTST_eagain`: not done; try again.
pub const GNTST_EAGAIN: i16 = -12;
/// `GNTST_no_space`: out of space (handles, maptrack entries).
pub const GNTST_NO_SPACE: i16 = -13;

/// The names of `GNTST_*` in order: entry `i` is the name of status `-i`.
pub const GNTST_NAMES: [&str; 14] = [
    "GNTST_okay",
    "GNTST_general_error",
    "GNTST_bad_domain",
    "GNTST_bad_gntref",
    "GNTST_bad_handle",
    "GNTST_bad_virt_addr",
    "GNTST_bad_dev_addr",
    "GNTST_no_device_space",
    "GNTST_permission_denied",
    "GNTST_bad_page",
    "GNTST_bad_copy_arg",
    "GNTST_address_too_big",
    "GNTST_eagain",
    "GNTST_no_space",
];

/// The name of a `GNTST_*` status (e.g. `"GNTST_bad_gntref"` for -3), for logs.
pub fn gntst_name(status: i16) -> Option<&'static str> {
    let index = usize::try_from(-i32::from(status)).ok()?;
    GNTST_NAMES.get(index).copied()
}

xen_struct! {
    /// `struct grant_entry_v1`: one entry of a v1 grant table (512 per 4 KiB frame).
    pub struct GrantEntryV1: 8 bytes {
        /// `GTF_*` (type and flags); the granting guest writes the type last.
        pub flags @ 0: u16,
        /// The domain being granted access.
        pub domid @ 2: DomId,
        /// The guest frame granted (or that receives a transfer).
        pub frame @ 4: u32,
    }

    /// `struct grant_entry_header`: the first 4 bytes of a v2 entry.
    pub struct GrantEntryHeader: 4 bytes {
        /// `GTF_*`.
        pub flags @ 0: u16,
        /// The domain being granted access.
        pub domid @ 2: DomId,
    }

    /// `union grant_entry_v2` (16 bytes), as raw bytes: see the accessors.
    #[repr(align(8))]
    pub struct GrantEntryV2: 16 bytes {
        /// The union's bytes.
        pub raw @ 0: [u8; 16],
    }

    /// `struct gnttab_map_grant_ref`.
    pub struct GnttabMapGrantRef: 32 bytes {
        /// IN: where to map (guest address; with `GNTMAP_contains_pte` a PTE address).
        pub host_addr @ 0: u64,
        /// IN: `GNTMAP_*`.
        pub flags @ 8: u32,
        /// IN: the grant reference.
        pub ref_ @ 12: GrantRef,
        /// IN: the granting domain.
        pub dom @ 16: DomId,
        /// OUT: `GNTST_*`.
        pub status @ 18: i16,
        /// OUT: handle for the unmap.
        pub handle @ 20: GrantHandle,
        /// OUT: bus address for device mappings.
        pub dev_bus_addr @ 24: u64,
    }

    /// `struct gnttab_unmap_grant_ref`.
    pub struct GnttabUnmapGrantRef: 24 bytes {
        /// IN: the host mapping to remove (0: none).
        pub host_addr @ 0: u64,
        /// IN: the device mapping to remove (0: none).
        pub dev_bus_addr @ 8: u64,
        /// IN: the handle from the map.
        pub handle @ 16: GrantHandle,
        /// OUT: `GNTST_*`.
        pub status @ 20: i16,
    }

    /// `struct gnttab_setup_table`.
    pub struct GnttabSetupTable: 24 bytes {
        /// IN: the domain.
        pub dom @ 0: DomId,
        /// IN: frames wanted.
        pub nr_frames @ 4: u32,
        /// OUT: `GNTST_*`.
        pub status @ 8: i16,
        /// Guest address of a `xen_pfn_t` array (OUT: the table's frames).
        pub frame_list @ 16: u64,
    }

    /// `struct gnttab_dump_table`.
    pub struct GnttabDumpTable: 4 bytes {
        /// IN: the domain.
        pub dom @ 0: DomId,
        /// OUT: `GNTST_*`.
        pub status @ 2: i16,
    }

    /// `struct gnttab_transfer`.
    pub struct GnttabTransfer: 24 bytes {
        /// IN: the frame to give away.
        pub mfn @ 0: u64,
        /// IN: the receiving domain.
        pub domid @ 8: DomId,
        /// IN: its accept-transfer grant.
        pub ref_ @ 12: GrantRef,
        /// OUT: `GNTST_*`.
        pub status @ 16: i16,
    }

    /// The union `u` of `struct gnttab_copy_ptr` (`ref` or `gmfn`), as raw bytes.
    #[repr(align(8))]
    pub struct GnttabCopyPtrU: 8 bytes {
        /// The union's bytes.
        pub raw @ 0: [u8; 8],
    }

    /// `struct gnttab_copy_ptr`: one side of a copy.
    pub struct GnttabCopyPtr: 16 bytes {
        /// A grant reference (with `GNTCOPY_*_gref`) or a frame of the caller.
        pub u @ 0: GnttabCopyPtrU,
        /// The domain owning the page.
        pub domid @ 8: DomId,
        /// Byte offset in the page.
        pub offset @ 10: u16,
    }

    /// `struct gnttab_copy`.
    pub struct GnttabCopy: 40 bytes {
        /// IN: the source.
        pub source @ 0: GnttabCopyPtr,
        /// IN: the destination.
        pub dest @ 16: GnttabCopyPtr,
        /// IN: bytes to copy (neither side may cross its page).
        pub len @ 32: u16,
        /// IN: `GNTCOPY_*`.
        pub flags @ 34: u16,
        /// OUT: `GNTST_*`.
        pub status @ 36: i16,
    }

    /// `struct gnttab_query_size`.
    pub struct GnttabQuerySize: 16 bytes {
        /// IN: the domain.
        pub dom @ 0: DomId,
        /// OUT: frames in use.
        pub nr_frames @ 4: u32,
        /// OUT: the limit.
        pub max_nr_frames @ 8: u32,
        /// OUT: `GNTST_*`.
        pub status @ 12: i16,
    }

    /// `struct gnttab_unmap_and_replace`.
    pub struct GnttabUnmapAndReplace: 24 bytes {
        /// IN: the mapping to remove.
        pub host_addr @ 0: u64,
        /// IN: the address whose mapping replaces it.
        pub new_addr @ 8: u64,
        /// IN: the handle from the map.
        pub handle @ 16: GrantHandle,
        /// OUT: `GNTST_*`.
        pub status @ 20: i16,
    }

    /// `struct gnttab_set_version`.
    pub struct GnttabSetVersion: 4 bytes {
        /// IN: 1 or 2; OUT: the version in force.
        pub version @ 0: u32,
    }

    /// `struct gnttab_get_status_frames`.
    pub struct GnttabGetStatusFrames: 16 bytes {
        /// IN: frames wanted.
        pub nr_frames @ 0: u32,
        /// IN: the domain.
        pub dom @ 4: DomId,
        /// OUT: `GNTST_*`.
        pub status @ 6: i16,
        /// Guest address of a `uint64_t` array (OUT: the status frames).
        pub frame_list @ 8: u64,
    }

    /// `struct gnttab_get_version`.
    pub struct GnttabGetVersion: 8 bytes {
        /// IN: the domain.
        pub dom @ 0: DomId,
        /// Padding.
        pub pad @ 2: u16,
        /// OUT: the version.
        pub version @ 4: u32,
    }

    /// `struct gnttab_swap_grant_ref`.
    pub struct GnttabSwapGrantRef: 12 bytes {
        /// IN: the first entry.
        pub ref_a @ 0: GrantRef,
        /// IN: the second entry.
        pub ref_b @ 4: GrantRef,
        /// OUT: `GNTST_*`.
        pub status @ 8: i16,
    }

    /// The union `a` of `struct gnttab_cache_flush` (`dev_bus_addr` or `ref`), as raw bytes.
    #[repr(align(8))]
    pub struct GnttabCacheFlushA: 8 bytes {
        /// The union's bytes.
        pub raw @ 0: [u8; 8],
    }

    /// `struct gnttab_cache_flush`.
    pub struct GnttabCacheFlush: 16 bytes {
        /// A bus address, or a grant reference with `GNTTAB_CACHE_SOURCE_GREF`.
        pub a @ 0: GnttabCacheFlushA,
        /// Offset in the page.
        pub offset @ 8: u16,
        /// Bytes.
        pub length @ 10: u16,
        /// `GNTTAB_CACHE_*`.
        pub op @ 12: u32,
    }
}

fn u16_at(raw: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([raw[at], raw[at + 1]])
}

fn u32_at(raw: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]])
}

fn u64_at(raw: &[u8], at: usize) -> u64 {
    (u64::from(u32_at(raw, at + 4)) << 32) | u64::from(u32_at(raw, at))
}

impl GrantEntryV2 {
    /// `hdr`: flags and domain, common to every form.
    pub fn hdr(&self) -> GrantEntryHeader {
        GrantEntryHeader { flags: u16_at(&self.raw, 0), domid: u16_at(&self.raw, 2) }
    }

    /// `full_page.frame` (`GTF_permit_access` without `GTF_sub_page`, `GTF_accept_transfer`).
    pub fn full_page_frame(&self) -> u64 {
        u64_at(&self.raw, 8)
    }

    /// `sub_page`: `(page_off, length, frame)` (`GTF_permit_access | GTF_sub_page`).
    pub fn sub_page(&self) -> (u16, u16, u64) {
        (u16_at(&self.raw, 4), u16_at(&self.raw, 6), u64_at(&self.raw, 8))
    }

    /// `transitive`: `(trans_domid, gref)` (`GTF_transitive`).
    pub fn transitive(&self) -> (DomId, GrantRef) {
        (u16_at(&self.raw, 4), u32_at(&self.raw, 8))
    }

    /// A full-page entry.
    pub fn from_full_page(hdr: GrantEntryHeader, frame: u64) -> Self {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&hdr.to_bytes());
        raw[8..].copy_from_slice(&frame.to_le_bytes());
        GrantEntryV2 { raw }
    }

    /// A sub-page entry.
    pub fn from_sub_page(hdr: GrantEntryHeader, page_off: u16, length: u16, frame: u64) -> Self {
        let mut raw = Self::from_full_page(hdr, frame).raw;
        raw[4..6].copy_from_slice(&page_off.to_le_bytes());
        raw[6..8].copy_from_slice(&length.to_le_bytes());
        GrantEntryV2 { raw }
    }

    /// A transitive entry.
    pub fn from_transitive(hdr: GrantEntryHeader, trans_domid: DomId, gref: GrantRef) -> Self {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&hdr.to_bytes());
        raw[4..6].copy_from_slice(&trans_domid.to_le_bytes());
        raw[8..12].copy_from_slice(&gref.to_le_bytes());
        GrantEntryV2 { raw }
    }
}

impl GnttabCopyPtrU {
    /// `u.ref`: the grant reference (with `GNTCOPY_*_gref`).
    pub fn gref(&self) -> GrantRef {
        u32_at(&self.raw, 0)
    }

    /// `u.gmfn`: the caller's frame (without `GNTCOPY_*_gref`).
    pub fn gmfn(&self) -> u64 {
        u64_at(&self.raw, 0)
    }

    /// The union holding `ref`.
    pub fn from_gref(gref: GrantRef) -> Self {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&gref.to_le_bytes());
        GnttabCopyPtrU { raw }
    }

    /// The union holding `gmfn`.
    pub fn from_gmfn(gmfn: u64) -> Self {
        GnttabCopyPtrU { raw: gmfn.to_le_bytes() }
    }
}

impl GnttabCacheFlushA {
    /// `a.dev_bus_addr`.
    pub fn dev_bus_addr(&self) -> u64 {
        u64_at(&self.raw, 0)
    }

    /// `a.ref` (with `GNTTAB_CACHE_SOURCE_GREF`).
    pub fn gref(&self) -> GrantRef {
        u32_at(&self.raw, 0)
    }

    /// The union holding `dev_bus_addr`.
    pub fn from_dev_bus_addr(addr: u64) -> Self {
        GnttabCacheFlushA { raw: addr.to_le_bytes() }
    }

    /// The union holding `ref`.
    pub fn from_gref(gref: GrantRef) -> Self {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&gref.to_le_bytes());
        GnttabCacheFlushA { raw }
    }
}

//! `memory.h`: `HYPERVISOR_memory_op(cmd, arg)`.
//!
//! The reservation operations take a [`XenMemoryReservation`]; the reservation queries
//! (`XENMEM_current_reservation`, `XENMEM_maximum_reservation`, `XENMEM_maximum_gpfn`) take a
//! pointer to a `domid_t` (`struct xen_memory_domain`) and return the number of pages;
//! `XENMEM_maximum_ram_page` takes no argument.

use crate::wire::xen_struct;
use crate::DomId;

/// `XENMEM_increase_reservation`: allocate extents to a domain; argument
/// [`XenMemoryReservation`] (OUT: the frames allocated). Returns the number of extents done.
pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
/// `XENMEM_decrease_reservation`: free the extents listed; argument [`XenMemoryReservation`].
pub const XENMEM_DECREASE_RESERVATION: u64 = 1;
/// `XENMEM_maximum_ram_page`: highest machine frame of RAM. No argument.
pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
/// `XENMEM_current_reservation`: pages a domain has; argument `domid_t`.
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
/// `XENMEM_maximum_reservation`: pages a domain may have; argument `domid_t`.
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
/// `XENMEM_machphys_mfn_list`: argument [`XenMachphysMfnList`] (PV).
pub const XENMEM_MACHPHYS_MFN_LIST: u64 = 5;
/// `XENMEM_populate_physmap`: populate guest frames with new memory; argument
/// [`XenMemoryReservation`] (IN: guest frame bases of the extents).
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
/// `XENMEM_add_to_physmap`: map a page of some space at a guest frame; argument
/// [`XenAddToPhysmap`].
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
/// `XENMEM_memory_map`: the calling domain's E820 map; argument [`XenMemoryMap`] with
/// [`E820Entry`] entries.
pub const XENMEM_MEMORY_MAP: u64 = 9;
/// `XENMEM_machine_memory_map`: the host's E820 map (privileged); argument [`XenMemoryMap`].
pub const XENMEM_MACHINE_MEMORY_MAP: u64 = 10;
/// `XENMEM_exchange`: exchange extents for others of a different size; argument
/// [`XenMemoryExchange`].
pub const XENMEM_EXCHANGE: u64 = 11;
/// `XENMEM_machphys_mapping`: argument [`XenMachphysMapping`] (PV).
pub const XENMEM_MACHPHYS_MAPPING: u64 = 12;
/// `XENMEM_set_memory_map`: set a domain's E820 map (toolstack); argument
/// [`XenForeignMemoryMap`].
pub const XENMEM_SET_MEMORY_MAP: u64 = 13;
/// `XENMEM_maximum_gpfn`: highest guest frame in use; argument `domid_t`.
pub const XENMEM_MAXIMUM_GPFN: u64 = 14;
/// `XENMEM_remove_from_physmap`: unmap a guest frame; argument [`XenRemoveFromPhysmap`].
pub const XENMEM_REMOVE_FROM_PHYSMAP: u64 = 15;
/// `XENMEM_set_pod_target`: argument [`XenPodTarget`].
pub const XENMEM_SET_POD_TARGET: u64 = 16;
/// `XENMEM_get_pod_target`: argument [`XenPodTarget`].
pub const XENMEM_GET_POD_TARGET: u64 = 17;
/// `XENMEM_get_sharing_freed_pages` (tools).
pub const XENMEM_GET_SHARING_FREED_PAGES: u64 = 18;
/// `XENMEM_get_sharing_shared_pages` (tools).
pub const XENMEM_GET_SHARING_SHARED_PAGES: u64 = 19;
/// `XENMEM_paging_op` (tools).
pub const XENMEM_PAGING_OP: u64 = 20;
/// `XENMEM_access_op` (tools).
pub const XENMEM_ACCESS_OP: u64 = 21;
/// `XENMEM_sharing_op` (tools).
pub const XENMEM_SHARING_OP: u64 = 22;
/// `XENMEM_add_to_physmap_batch`: map several pages; argument [`XenAddToPhysmapBatch`].
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u64 = 23;
/// `XENMEM_claim_pages` (tools): argument [`XenMemoryReservation`] with `extent_start` 0.
pub const XENMEM_CLAIM_PAGES: u64 = 24;
/// `XENMEM_machphys_compat_mfn_list` (PV).
pub const XENMEM_MACHPHYS_COMPAT_MFN_LIST: u64 = 25;
/// `XENMEM_get_vnumainfo`: virtual NUMA topology.
pub const XENMEM_GET_VNUMAINFO: u64 = 26;
/// `XENMEM_reserved_device_memory_map` (tools).
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u64 = 27;
/// `XENMEM_acquire_resource`: map a resource of a domain; argument [`XenMemAcquireResource`].
pub const XENMEM_ACQUIRE_RESOURCE: u64 = 28;

/// `XENMEMF_address_bits(bits)`: in `mem_flags`, restrict allocations below `2^bits` (0: no
/// restriction).
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits
}

/// `XENMEMF_get_address_bits(flags)`.
pub const fn xenmemf_get_address_bits(flags: u32) -> u32 {
    flags & 0xff
}

/// `XENMEMF_node(node)`: in `mem_flags`, prefer NUMA node `node`.
pub const fn xenmemf_node(node: u32) -> u32 {
    (node + 1) << 8
}

/// `XENMEMF_get_node(flags)` (`0xff` when no node was given).
pub const fn xenmemf_get_node(flags: u32) -> u32 {
    ((flags >> 8).wrapping_sub(1)) & 0xff
}

/// `XENMEMF_populate_on_demand`.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
/// `XENMEMF_exact_node_request`: the node is a requirement, not a preference.
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// `XENMEMF_vnode`: the node is a virtual node of the domain.
pub const XENMEMF_VNODE: u32 = 1 << 18;

/// `XENMAPSPACE_shared_info`: the shared-info page ([`crate::xen::SharedInfo`]); `idx` 0.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: grant-table frame `idx` (with [`XENMAPIDX_GRANT_TABLE_STATUS`]:
/// a v2 status frame).
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPSPACE_gmfn`: move the domain's own frame `idx`.
pub const XENMAPSPACE_GMFN: u32 = 2;
/// `XENMAPSPACE_gmfn_range`: `size` frames from `idx` (`XENMEM_add_to_physmap` only).
pub const XENMAPSPACE_GMFN_RANGE: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign`: frames of another domain (`XENMEM_add_to_physmap_batch` only).
pub const XENMAPSPACE_GMFN_FOREIGN: u32 = 4;
/// `XENMAPSPACE_dev_mmio`: device MMIO (Arm only).
pub const XENMAPSPACE_DEV_MMIO: u32 = 5;

/// `XENMAPIDX_grant_table_status`: in `idx` with `XENMAPSPACE_grant_table`, selects status
/// frames.
pub const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 0x8000_0000;

/// `XENMEM_resource_ioreq_server` (`xen_mem_acquire_resource.type`).
pub const XENMEM_RESOURCE_IOREQ_SERVER: u16 = 0;
/// `XENMEM_resource_grant_table`.
pub const XENMEM_RESOURCE_GRANT_TABLE: u16 = 1;
/// `XENMEM_resource_vmtrace_buf`.
pub const XENMEM_RESOURCE_VMTRACE_BUF: u16 = 2;
/// `XENMEM_resource_grant_table_id_shared` (`id` of a grant-table resource).
pub const XENMEM_RESOURCE_GRANT_TABLE_ID_SHARED: u32 = 0;
/// `XENMEM_resource_grant_table_id_status`.
pub const XENMEM_RESOURCE_GRANT_TABLE_ID_STATUS: u32 = 1;

xen_struct! {
    /// `struct xen_memory_reservation`.
    pub struct XenMemoryReservation: 32 bytes {
        /// Guest address of an array of frame numbers (`xen_pfn_t`, u64): IN or OUT depending on
        /// the operation.
        pub extent_start @ 0: u64,
        /// Number of extents.
        pub nr_extents @ 8: u64,
        /// Each extent is `2^extent_order` pages.
        pub extent_order @ 16: u32,
        /// `XENMEMF_*`.
        pub mem_flags @ 20: u32,
        /// The domain (unprivileged callers: `DOMID_SELF` only).
        pub domid @ 24: DomId,
    }

    /// `struct xen_memory_exchange`.
    pub struct XenMemoryExchange: 72 bytes {
        /// IN: the extents given up.
        pub in_ @ 0: XenMemoryReservation,
        /// IN/OUT: the extents wanted.
        pub out @ 32: XenMemoryReservation,
        /// OUT: input extents exchanged (must be 0 on entry).
        pub nr_exchanged @ 64: u64,
    }

    /// `struct xen_machphys_mfn_list`.
    pub struct XenMachphysMfnList: 24 bytes {
        /// Entries the buffer has room for.
        pub max_extents @ 0: u32,
        /// Guest address of the `xen_pfn_t` buffer.
        pub extent_start @ 8: u64,
        /// OUT: entries written.
        pub nr_extents @ 16: u32,
    }

    /// `struct xen_machphys_mapping`.
    pub struct XenMachphysMapping: 24 bytes {
        /// Start of the machine-to-physical table (virtual).
        pub v_start @ 0: u64,
        /// Its end.
        pub v_end @ 8: u64,
        /// Highest MFN that can be looked up.
        pub max_mfn @ 16: u64,
    }

    /// `struct xen_add_to_physmap`.
    pub struct XenAddToPhysmap: 24 bytes {
        /// The domain whose physmap changes.
        pub domid @ 0: DomId,
        /// Pages, for `XENMAPSPACE_gmfn_range`.
        pub size @ 2: u16,
        /// `XENMAPSPACE_*`.
        pub space @ 4: u32,
        /// Index into the space.
        pub idx @ 8: u64,
        /// Guest frame where the page appears.
        pub gpfn @ 16: u64,
    }

    /// `struct xen_add_to_physmap_batch`.
    pub struct XenAddToPhysmapBatch: 32 bytes {
        /// The domain whose physmap changes.
        pub domid @ 0: DomId,
        /// `XENMAPSPACE_*`.
        pub space @ 2: u16,
        /// Number of pages.
        pub size @ 4: u16,
        /// The union `u`: `foreign_domid` for `XENMAPSPACE_gmfn_foreign`, else `res0` (0).
        pub foreign_domid @ 6: DomId,
        /// Guest address of `size` indexes (`xen_ulong_t`).
        pub idxs @ 8: u64,
        /// Guest address of `size` guest frames (`xen_pfn_t`).
        pub gpfns @ 16: u64,
        /// Guest address of `size` per-page error codes (`int`, OUT).
        pub errs @ 24: u64,
    }

    /// `struct xen_remove_from_physmap`.
    pub struct XenRemoveFromPhysmap: 16 bytes {
        /// The domain.
        pub domid @ 0: DomId,
        /// The guest frame to unmap.
        pub gpfn @ 8: u64,
    }

    /// `struct xen_memory_map`.
    pub struct XenMemoryMap: 16 bytes {
        /// IN: entries `buffer` has room for; OUT: entries written.
        pub nr_entries @ 0: u32,
        /// Guest address of an array of [`E820Entry`].
        pub buffer @ 8: u64,
    }

    /// `struct xen_foreign_memory_map` (`XENMEM_set_memory_map`).
    pub struct XenForeignMemoryMap: 24 bytes {
        /// The domain.
        pub domid @ 0: DomId,
        /// Its map.
        pub map @ 8: XenMemoryMap,
    }

    /// `struct xen_pod_target`.
    pub struct XenPodTarget: 40 bytes {
        /// IN: target pages.
        pub target_pages @ 0: u64,
        /// OUT: pages the domain has.
        pub tot_pages @ 8: u64,
        /// OUT: pages in the PoD cache.
        pub pod_cache_pages @ 16: u64,
        /// OUT: PoD entries.
        pub pod_entries @ 24: u64,
        /// IN: the domain.
        pub domid @ 32: DomId,
    }

    /// `struct xen_mem_acquire_resource`.
    pub struct XenMemAcquireResource: 32 bytes {
        /// The domain owning the resource.
        pub domid @ 0: DomId,
        /// `XENMEM_resource_*`.
        pub type_ @ 2: u16,
        /// Type-specific id (`XENMEM_resource_grant_table_id_*`, ioreq server id).
        pub id @ 4: u32,
        /// IN/OUT: frames to map (0 with `frame_list` 0: query the size).
        pub nr_frames @ 8: u32,
        /// Must be zero.
        pub pad @ 12: u32,
        /// First frame of the resource to map.
        pub frame @ 16: u64,
        /// Guest address of the `xen_pfn_t` list.
        pub frame_list @ 24: u64,
    }

    /// One entry of an E820 memory map, as the BIOS returns it (INT 15h, EAX=E820h): 20 bytes,
    /// packed. This is the element of `xen_memory_map.buffer`; the type values are the
    /// `XEN_HVM_MEMMAP_TYPE_*` of [`crate::start_info`] (1 RAM, 2 reserved, 3 ACPI, …).
    #[repr(packed)]
    pub struct E820Entry: 20 bytes {
        /// Start address.
        pub addr @ 0: u64,
        /// Size in bytes.
        pub size @ 8: u64,
        /// Type.
        pub type_ @ 16: u32,
    }
}

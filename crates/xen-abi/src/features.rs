//! `features.h`: feature bits reported by `XENVER_get_features` (bit `n` of submap `n / 32`).

/// `XENFEAT_writable_page_tables`: the guest may write its page tables directly.
pub const XENFEAT_WRITABLE_PAGE_TABLES: u32 = 0;
/// `XENFEAT_writable_descriptor_tables`: the guest may write its descriptor tables directly.
pub const XENFEAT_WRITABLE_DESCRIPTOR_TABLES: u32 = 1;
/// `XENFEAT_auto_translated_physmap`: the hypervisor translates guest frames (HVM/PVH);
/// grant frames are mapped with `XENMEM_add_to_physmap`.
pub const XENFEAT_AUTO_TRANSLATED_PHYSMAP: u32 = 2;
/// `XENFEAT_supervisor_mode_kernel`: the guest kernel runs in ring 0.
pub const XENFEAT_SUPERVISOR_MODE_KERNEL: u32 = 3;
/// `XENFEAT_pae_pgdir_above_4gb`: PAE page directories may live above 4 GiB.
pub const XENFEAT_PAE_PGDIR_ABOVE_4GB: u32 = 4;
/// `XENFEAT_mmu_pt_update_preserve_ad`: `MMU_PT_UPDATE_PRESERVE_AD` is supported (PV).
pub const XENFEAT_MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
/// `XENFEAT_highmem_assist`: `MMUEXT_CLEAR_PAGE` / `MMUEXT_COPY_PAGE` are supported (PV).
pub const XENFEAT_HIGHMEM_ASSIST: u32 = 6;
/// `XENFEAT_gnttab_map_avail_bits`: `GNTMAP_guest_avail_mask` bits are honoured.
pub const XENFEAT_GNTTAB_MAP_AVAIL_BITS: u32 = 7;
/// `XENFEAT_hvm_callback_vector`: `HVM_PARAM_CALLBACK_TYPE_VECTOR` is available.
pub const XENFEAT_HVM_CALLBACK_VECTOR: u32 = 8;
/// `XENFEAT_hvm_safe_pvclock`: the pvclock algorithm is safe for HVM guests (else Linux
/// disables its PV timer).
pub const XENFEAT_HVM_SAFE_PVCLOCK: u32 = 9;
/// `XENFEAT_hvm_pirqs`: PCI interrupts are delivered as event channels.
pub const XENFEAT_HVM_PIRQS: u32 = 10;
/// `XENFEAT_dom0`: operation as dom0 is supported.
pub const XENFEAT_DOM0: u32 = 11;
/// `XENFEAT_grant_map_identity`: deprecated (commented out in the header); never set.
pub const XENFEAT_GRANT_MAP_IDENTITY: u32 = 12;
/// `XENFEAT_memory_op_vnode_supported`: `XENMEMF_vnode` is understood.
pub const XENFEAT_MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
/// `XENFEAT_ARM_SMCCC_supported` (Arm).
pub const XENFEAT_ARM_SMCCC_SUPPORTED: u32 = 14;
/// `XENFEAT_linux_rsdp_unrestricted` (PVH): the RSDP may be anywhere, not only below 1 MiB.
pub const XENFEAT_LINUX_RSDP_UNRESTRICTED: u32 = 15;
/// `XENFEAT_not_direct_mapped`: the domain's memory is not 1:1 mapped.
pub const XENFEAT_NOT_DIRECT_MAPPED: u32 = 16;
/// `XENFEAT_direct_mapped`: the domain's memory is 1:1 mapped.
pub const XENFEAT_DIRECT_MAPPED: u32 = 17;

/// `XENFEAT_NR_SUBMAPS`: number of 32-bit submaps.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

/// The submap index holding `feature` (`xen_feature_info.submap_idx`).
pub const fn feature_submap(feature: u32) -> u32 {
    feature / 32
}

/// The bit of `feature` in its submap.
pub const fn feature_mask(feature: u32) -> u32 {
    1 << (feature % 32)
}

//! `arch-x86/hvm/start_info.h`: the start-of-day structure a PVH (or HVM) guest finds at the
//! physical address in `ebx`, its module list and memory map; and the `SIF_*` flags of `xen.h`.
//!
//! Nothing is loaded at physical address 0, so a 0 address field means "absent". Version 0 of
//! `hvm_start_info` ends after `rsdp_paddr` ([`HVM_START_INFO_V0_SIZE`] bytes); version 1 adds
//! the memory map fields. Xen places everything below 4 GiB.

use crate::wire::xen_struct;

/// `XEN_HVM_START_MAGIC_VALUE`: `hvm_start_info.magic` ("xEn3" with the 0x80 bit of "E" set).
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;

/// Bytes of a version-0 `hvm_start_info` (up to and including `rsdp_paddr`).
pub const HVM_START_INFO_V0_SIZE: usize = 40;

/// `XEN_HVM_MEMMAP_TYPE_RAM` (`hvm_memmap_table_entry.type`; the ACPI address range types,
/// the same numbers as E820).
pub const XEN_HVM_MEMMAP_TYPE_RAM: u32 = 1;
/// `XEN_HVM_MEMMAP_TYPE_RESERVED`.
pub const XEN_HVM_MEMMAP_TYPE_RESERVED: u32 = 2;
/// `XEN_HVM_MEMMAP_TYPE_ACPI`: ACPI reclaimable.
pub const XEN_HVM_MEMMAP_TYPE_ACPI: u32 = 3;
/// `XEN_HVM_MEMMAP_TYPE_NVS`: ACPI NVS.
pub const XEN_HVM_MEMMAP_TYPE_NVS: u32 = 4;
/// `XEN_HVM_MEMMAP_TYPE_UNUSABLE`.
pub const XEN_HVM_MEMMAP_TYPE_UNUSABLE: u32 = 5;
/// `XEN_HVM_MEMMAP_TYPE_DISABLED`.
pub const XEN_HVM_MEMMAP_TYPE_DISABLED: u32 = 6;
/// `XEN_HVM_MEMMAP_TYPE_PMEM`: persistent memory.
pub const XEN_HVM_MEMMAP_TYPE_PMEM: u32 = 7;

// `SIF_*` (`xen.h`): `hvm_start_info.flags`.

/// `SIF_PRIVILEGED`: the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: the domain is the initial control domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: the module is a multiboot module list (PV).
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN`: the module start is a frame number (PV).
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: the tools understand a virtually mapped p2m (PV).
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: a byte reserved for power-management options.
pub const SIF_PM_MASK: u32 = 0xff << 8;

xen_struct! {
    /// `struct hvm_start_info` (version 1).
    pub struct HvmStartInfo: 56 bytes {
        /// [`XEN_HVM_START_MAGIC_VALUE`].
        pub magic @ 0: u32,
        /// Version of the structure (1 has the memory map).
        pub version @ 4: u32,
        /// `SIF_*`.
        pub flags @ 8: u32,
        /// Entries of the module list.
        pub nr_modules @ 12: u32,
        /// Physical address of an array of [`HvmModlistEntry`] (module 0 is Linux's initrd).
        pub modlist_paddr @ 16: u64,
        /// Physical address of the NUL-terminated command line.
        pub cmdline_paddr @ 24: u64,
        /// Physical address of the ACPI RSDP.
        pub rsdp_paddr @ 32: u64,
        /// Version 1: physical address of an array of [`HvmMemmapTableEntry`].
        pub memmap_paddr @ 40: u64,
        /// Version 1: entries of the memory map (0: none given).
        pub memmap_entries @ 48: u32,
        /// Version 1: must be zero.
        pub reserved @ 52: u32,
    }

    /// `struct hvm_modlist_entry`.
    pub struct HvmModlistEntry: 32 bytes {
        /// Physical address of the module.
        pub paddr @ 0: u64,
        /// Bytes of the module.
        pub size @ 8: u64,
        /// Physical address of its NUL-terminated command line.
        pub cmdline_paddr @ 16: u64,
        /// Reserved.
        pub reserved @ 24: u64,
    }

    /// `struct hvm_memmap_table_entry`.
    pub struct HvmMemmapTableEntry: 24 bytes {
        /// Start address.
        pub addr @ 0: u64,
        /// Bytes.
        pub size @ 8: u64,
        /// `XEN_HVM_MEMMAP_TYPE_*`.
        pub type_ @ 16: u32,
        /// Must be zero.
        pub reserved @ 20: u32,
    }
}

const _: () = assert!(core::mem::offset_of!(HvmStartInfo, memmap_paddr) == HVM_START_INFO_V0_SIZE);

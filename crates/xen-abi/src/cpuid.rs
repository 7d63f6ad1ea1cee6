//! `arch-x86/cpuid.h`: the hypervisor CPUID leaves. They start at `0x40000000` (or at
//! `0x40000100` and up, in steps of 0x100, when another hypervisor's leaves come first):
//!
//! | leaf | contents |
//! | --- | --- |
//! | base + 0 | `eax` = highest Xen leaf; `ebx`, `ecx`, `edx` = "XenVMMXenVMM" |
//! | base + 1 | `eax` = `major << 16 \| minor` |
//! | base + 2 | `eax` = hypercall pages (1); `ebx` = MSR that installs the hypercall page |
//! | base + 3 | time: sub-leaf 0 `ecx` = TSC kHz; sub-leaf 1 = TSC offset, mul, shift |
//! | base + 4 | HVM features (`XEN_HVM_CPUID_*`); `ebx` = vCPU id, `ecx` = domain id |
//! | base + 5 | PV parameters |

/// `XEN_CPUID_FIRST_LEAF`.
pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;

/// `XEN_CPUID_LEAF(i)`: leaf `i` counted from the first leaf.
pub const fn xen_cpuid_leaf(i: u32) -> u32 {
    XEN_CPUID_FIRST_LEAF + i
}

/// `XEN_CPUID_SIGNATURE_EBX`: "XenV".
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
/// `XEN_CPUID_SIGNATURE_ECX`: "MMXe".
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
/// `XEN_CPUID_SIGNATURE_EDX`: "nVMM".
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;
/// The signature as the 12 bytes `ebx`, `ecx`, `edx` spell (little-endian).
pub const XEN_CPUID_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";

/// `XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD` (base + 2 `ecx`).
pub const XEN_CPUID_FEAT1_MMU_PT_UPDATE_PRESERVE_AD: u32 = 1 << 0;

/// `XEN_HVM_CPUID_APIC_ACCESS_VIRT` (base + 4 `eax`): APIC register accesses are virtualised.
pub const XEN_HVM_CPUID_APIC_ACCESS_VIRT: u32 = 1 << 0;
/// `XEN_HVM_CPUID_X2APIC_VIRT`: x2APIC accesses are virtualised.
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
/// `XEN_HVM_CPUID_IOMMU_MAPPINGS`: memory mapped from other domains has valid IOMMU entries.
pub const XEN_HVM_CPUID_IOMMU_MAPPINGS: u32 = 1 << 2;
/// `XEN_HVM_CPUID_VCPU_ID_PRESENT`: `ebx` holds the vCPU id.
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// `XEN_HVM_CPUID_DOMID_PRESENT`: `ecx` holds the domain id.
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;
/// `XEN_HVM_CPUID_EXT_DEST_ID`: MSI / IO-APIC extended destination id (15-bit APIC ids).
pub const XEN_HVM_CPUID_EXT_DEST_ID: u32 = 1 << 5;
/// `XEN_HVM_CPUID_UPCALL_VECTOR`: `HVMOP_set_evtchn_upcall_vector` works (per-vCPU upcalls,
/// acknowledged through the local APIC).
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;

/// `XEN_CPUID_MACHINE_ADDRESS_WIDTH_MASK` (base + 5 `ebx`).
pub const XEN_CPUID_MACHINE_ADDRESS_WIDTH_MASK: u32 = 0xff;

/// `XEN_CPUID_MAX_NUM_LEAVES`: base + 0 `eax` is at most base + this.
pub const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;

//! `hvm/hvm_op.h` and `hvm/params.h`: `HYPERVISOR_hvm_op(cmd, arg)` and the HVM parameters.

use crate::wire::xen_struct;
use crate::DomId;

/// `HVMOP_set_param`: argument [`XenHvmParam`].
pub const HVMOP_SET_PARAM: u64 = 0;
/// `HVMOP_get_param`: argument [`XenHvmParam`] (OUT: `value`).
pub const HVMOP_GET_PARAM: u64 = 1;
/// `HVMOP_set_pci_intx_level` (interface < 4.9; now a `dm_op`).
pub const HVMOP_SET_PCI_INTX_LEVEL: u64 = 2;
/// `HVMOP_set_isa_irq_level` (interface < 4.9; now a `dm_op`).
pub const HVMOP_SET_ISA_IRQ_LEVEL: u64 = 3;
/// `HVMOP_set_pci_link_route` (interface < 4.9; now a `dm_op`).
pub const HVMOP_SET_PCI_LINK_ROUTE: u64 = 4;
/// `HVMOP_flush_tlbs`: flush all vCPUs' TLBs. Argument must be NULL.
pub const HVMOP_FLUSH_TLBS: u64 = 5;
/// `HVMOP_pagetable_dying`: argument [`XenHvmPagetableDying`].
pub const HVMOP_PAGETABLE_DYING: u64 = 9;
/// `HVMOP_get_time`: argument [`XenHvmGetTime`].
pub const HVMOP_GET_TIME: u64 = 10;
/// `HVMOP_xentrace`: write a trace record.
pub const HVMOP_XENTRACE: u64 = 11;
/// `HVMOP_set_mem_access` (tools).
pub const HVMOP_SET_MEM_ACCESS: u64 = 12;
/// `HVMOP_get_mem_access` (tools).
pub const HVMOP_GET_MEM_ACCESS: u64 = 13;
/// `HVMOP_get_mem_type`: argument [`XenHvmGetMemType`].
pub const HVMOP_GET_MEM_TYPE: u64 = 15;
/// `HVMOP_set_evtchn_upcall_vector`: per-vCPU upcall vector (acknowledged through the local
/// APIC); argument [`XenHvmEvtchnUpcallVector`].
pub const HVMOP_SET_EVTCHN_UPCALL_VECTOR: u64 = 23;
/// `HVMOP_guest_request_vm_event`. Argument must be NULL.
pub const HVMOP_GUEST_REQUEST_VM_EVENT: u64 = 24;
/// `HVMOP_altp2m`: alternate p2m operations.
pub const HVMOP_ALTP2M: u64 = 25;

/// `HVMMEM_ram_rw` (`xen_hvm_get_mem_type.mem_type`): normal RAM.
pub const HVMMEM_RAM_RW: u16 = 0;
/// `HVMMEM_ram_ro`: read-only; writes are discarded.
pub const HVMMEM_RAM_RO: u16 = 1;
/// `HVMMEM_mmio_dm`: reads and writes go to the device model.
pub const HVMMEM_MMIO_DM: u16 = 2;
/// `HVMMEM_unused` (was `HVMMEM_mmio_write_dm`).
pub const HVMMEM_UNUSED: u16 = 3;
/// `HVMMEM_ioreq_server`: claimed by an ioreq server.
pub const HVMMEM_IOREQ_SERVER: u16 = 4;

// HVM parameters (`HVM_PARAM_*`, the `index` of `xen_hvm_param`). Those marked (tools) are
// only visible to Xen and the toolstack in the C headers.

/// `HVM_PARAM_CALLBACK_IRQ`: how event upcalls are delivered; the type is in bits 63:56
/// (`HVM_PARAM_CALLBACK_TYPE_*`, see [`callback_irq`]). 0 disables upcalls.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_STORE_PFN`: guest frame of the xenstore ring.
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// `HVM_PARAM_STORE_EVTCHN`: event channel of the xenstore ring.
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// `HVM_PARAM_PAE_ENABLED` (tools).
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
/// `HVM_PARAM_IOREQ_PFN`: guest frame of the synchronous ioreq page.
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
/// `HVM_PARAM_BUFIOREQ_PFN`: guest frame of the buffered ioreq page.
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
/// `HVM_PARAM_VIRIDIAN`: Hyper-V enlightenments (`HVMPV_*` bits).
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
/// `HVM_PARAM_TIMER_MODE`: `HVMPTM_*`.
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
/// `HVM_PARAM_HPET_ENABLED`: whether the HPET is emulated.
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
/// `HVM_PARAM_IDENT_PT`: identity-map page table for unpaged real mode (VMX without
/// unrestricted guest).
pub const HVM_PARAM_IDENT_PT: u32 = 12;
/// `HVM_PARAM_DM_DOMAIN` (tools): the device-model domain.
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
/// `HVM_PARAM_ACPI_S_STATE`: the ACPI sleep state the guest is in.
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
/// `HVM_PARAM_VM86_TSS`: TSS for virtual-8086 real-mode emulation.
pub const HVM_PARAM_VM86_TSS: u32 = 15;
/// `HVM_PARAM_VPT_ALIGN`: align virtual timer interrupts.
pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
/// `HVM_PARAM_CONSOLE_PFN`: guest frame of the PV console ring.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// `HVM_PARAM_CONSOLE_EVTCHN`: event channel of the PV console ring.
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// `HVM_PARAM_ACPI_IOPORTS_LOCATION`: 0 for the old PM1a block at 0x1f40, 1 for 0xb000.
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
/// `HVM_PARAM_MEMORY_EVENT_CR0` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_CR0: u32 = 20;
/// `HVM_PARAM_MEMORY_EVENT_CR3` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_CR3: u32 = 21;
/// `HVM_PARAM_MEMORY_EVENT_CR4` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_CR4: u32 = 22;
/// `HVM_PARAM_MEMORY_EVENT_INT3` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_INT3: u32 = 23;
/// `HVM_PARAM_NESTEDHVM` (tools): nested virtualisation enabled.
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
/// `HVM_PARAM_MEMORY_EVENT_SINGLE_STEP` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_SINGLE_STEP: u32 = 25;
/// `HVM_PARAM_BUFIOREQ_EVTCHN` (tools): event channel of the buffered ioreq page.
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
/// `HVM_PARAM_PAGING_RING_PFN`: guest frame of the paging ring.
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
/// `HVM_PARAM_MONITOR_RING_PFN`: guest frame of the monitor ring.
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
/// `HVM_PARAM_SHARING_RING_PFN`: guest frame of the sharing ring.
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
/// `HVM_PARAM_MEMORY_EVENT_MSR` (tools; obsolete).
pub const HVM_PARAM_MEMORY_EVENT_MSR: u32 = 30;
/// `HVM_PARAM_TRIPLE_FAULT_REASON`: `SHUTDOWN_*` reason used on a triple fault.
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
/// `HVM_PARAM_IOREQ_SERVER_PFN`: first guest frame reserved for ioreq servers.
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
/// `HVM_PARAM_NR_IOREQ_SERVER_PAGES`: frames reserved for ioreq servers.
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
/// `HVM_PARAM_VM_GENERATION_ID_ADDR`: guest address of the VM generation id.
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
/// `HVM_PARAM_ALTP2M`: altp2m mode.
pub const HVM_PARAM_ALTP2M: u32 = 35;
/// `HVM_PARAM_X87_FIP_WIDTH`: width of the x87 FIP/FDP saved (0, 4 or 8).
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
/// `HVM_PARAM_VM86_TSS_SIZED`: `HVM_PARAM_VM86_TSS` with its size in bits 63:32.
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
/// `HVM_PARAM_MCA_CAP`: machine-check capabilities offered to the guest.
pub const HVM_PARAM_MCA_CAP: u32 = 38;
/// `HVM_NR_PARAMS`: parameter indices are below this.
pub const HVM_NR_PARAMS: u32 = 39;

/// `HVM_PARAM_CALLBACK_IRQ_TYPE_MASK`: the type bits of a `HVM_PARAM_CALLBACK_IRQ` value.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xff00_0000_0000_0000;
/// The shift of the type in a `HVM_PARAM_CALLBACK_IRQ` value (bit 56, from the mask).
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT: u32 = 56;
/// `HVM_PARAM_CALLBACK_TYPE_GSI`: bits 55:0 are a GSI (GSI 0 cannot be used).
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u64 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_PCI_INTX`: bits 55:0 are a PCI INTx line (domain 47:32, bus 31:16,
/// devfn 15:8, INTx 1:0).
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u64 = 1;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR` (x86): bits 7:0 are the vector, delivered to every vCPU
/// without a local APIC EOI (needs `XENFEAT_hvm_callback_vector`).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;

/// A `HVM_PARAM_CALLBACK_IRQ` value: type `kind` (`HVM_PARAM_CALLBACK_TYPE_*`) in bits 63:56,
/// `via` in bits 55:0.
pub const fn callback_irq(kind: u64, via: u64) -> u64 {
    (kind << HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT) | (via & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK)
}

/// The `HVM_PARAM_CALLBACK_IRQ` value that delivers upcalls on `vector`.
pub const fn callback_via_vector(vector: u8) -> u64 {
    callback_irq(HVM_PARAM_CALLBACK_TYPE_VECTOR, vector as u64)
}

/// The type (`HVM_PARAM_CALLBACK_TYPE_*`) of a `HVM_PARAM_CALLBACK_IRQ` value.
pub const fn callback_irq_type(value: u64) -> u64 {
    value >> HVM_PARAM_CALLBACK_IRQ_TYPE_SHIFT
}

/// Bits 55:0 of a `HVM_PARAM_CALLBACK_IRQ` value (the GSI, INTx or vector).
pub const fn callback_irq_via(value: u64) -> u64 {
    value & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK
}

/// `HVMPTM_delay_for_missed_ticks` (`HVM_PARAM_TIMER_MODE`).
pub const HVMPTM_DELAY_FOR_MISSED_TICKS: u64 = 0;
/// `HVMPTM_no_delay_for_missed_ticks`.
pub const HVMPTM_NO_DELAY_FOR_MISSED_TICKS: u64 = 1;
/// `HVMPTM_no_missed_ticks_pending`.
pub const HVMPTM_NO_MISSED_TICKS_PENDING: u64 = 2;
/// `HVMPTM_one_missed_tick_pending`.
pub const HVMPTM_ONE_MISSED_TICK_PENDING: u64 = 3;

xen_struct! {
    /// `struct xen_hvm_param` (`HVMOP_set_param`, `HVMOP_get_param`).
    pub struct XenHvmParam: 16 bytes {
        /// IN: the domain (`DOMID_SELF`).
        pub domid @ 0: DomId,
        /// Padding.
        pub pad @ 2: u16,
        /// IN: `HVM_PARAM_*`.
        pub index @ 4: u32,
        /// IN (set) / OUT (get): the value.
        pub value @ 8: u64,
    }

    /// `struct xen_hvm_pagetable_dying`.
    pub struct XenHvmPagetableDying: 16 bytes {
        /// The domain.
        pub domid @ 0: DomId,
        /// Padding.
        pub pad @ 2: [u16; 3],
        /// Guest-physical address of the top-level page table about to be released.
        pub gpa @ 8: u64,
    }

    /// `struct xen_hvm_get_time`.
    pub struct XenHvmGetTime: 8 bytes {
        /// OUT: system time in ns.
        pub now @ 0: u64,
    }

    /// `struct xen_hvm_get_mem_type`.
    pub struct XenHvmGetMemType: 16 bytes {
        /// IN: the domain.
        pub domid @ 0: DomId,
        /// OUT: `HVMMEM_*`.
        pub mem_type @ 2: u16,
        /// Padding.
        pub pad @ 4: [u16; 2],
        /// IN: the guest frame.
        pub pfn @ 8: u64,
    }

    /// `struct xen_hvm_evtchn_upcall_vector` (`HVMOP_set_evtchn_upcall_vector`).
    pub struct XenHvmEvtchnUpcallVector: 8 bytes {
        /// The vCPU.
        pub vcpu @ 0: u32,
        /// The vector.
        pub vector @ 4: u8,
    }
}

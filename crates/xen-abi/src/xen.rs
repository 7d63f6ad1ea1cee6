//! `xen.h` with its x86 parts (`arch-x86/xen.h`, `arch-x86/xen-x86_64.h`): hypercall numbers,
//! VIRQs, `vm_assist` commands, reserved domain ids, and the shared-info page with its
//! per-vCPU `vcpu_info` and pvclock `vcpu_time_info`.

use crate::wire::xen_struct;

pub use crate::event_channel::EVTCHN_2L_NR_CHANNELS;

// Hypercall numbers (`__HYPERVISOR_*`, in `rax`).

/// `__HYPERVISOR_set_trap_table` (PV only).
pub const HYPERVISOR_SET_TRAP_TABLE: u64 = 0;
/// `__HYPERVISOR_mmu_update` (PV only).
pub const HYPERVISOR_MMU_UPDATE: u64 = 1;
/// `__HYPERVISOR_set_gdt` (PV only).
pub const HYPERVISOR_SET_GDT: u64 = 2;
/// `__HYPERVISOR_stack_switch` (PV only).
pub const HYPERVISOR_STACK_SWITCH: u64 = 3;
/// `__HYPERVISOR_set_callbacks` (PV only).
pub const HYPERVISOR_SET_CALLBACKS: u64 = 4;
/// `__HYPERVISOR_fpu_taskswitch` (PV only).
pub const HYPERVISOR_FPU_TASKSWITCH: u64 = 5;
/// `__HYPERVISOR_sched_op_compat` (superseded by [`HYPERVISOR_SCHED_OP`]).
pub const HYPERVISOR_SCHED_OP_COMPAT: u64 = 6;
/// `__HYPERVISOR_platform_op` (dom0; [`crate::platform`]).
pub const HYPERVISOR_PLATFORM_OP: u64 = 7;
/// `__HYPERVISOR_set_debugreg` (PV only).
pub const HYPERVISOR_SET_DEBUGREG: u64 = 8;
/// `__HYPERVISOR_get_debugreg` (PV only).
pub const HYPERVISOR_GET_DEBUGREG: u64 = 9;
/// `__HYPERVISOR_update_descriptor` (PV only).
pub const HYPERVISOR_UPDATE_DESCRIPTOR: u64 = 10;
/// `__HYPERVISOR_memory_op` ([`crate::memory`]).
pub const HYPERVISOR_MEMORY_OP: u64 = 12;
/// `__HYPERVISOR_multicall` (an array of [`MulticallEntry`]).
pub const HYPERVISOR_MULTICALL: u64 = 13;
/// `__HYPERVISOR_update_va_mapping` (PV only).
pub const HYPERVISOR_UPDATE_VA_MAPPING: u64 = 14;
/// `__HYPERVISOR_set_timer_op`: one-shot timer at an absolute system time in ns (0 cancels).
pub const HYPERVISOR_SET_TIMER_OP: u64 = 15;
/// `__HYPERVISOR_event_channel_op_compat` (superseded by [`HYPERVISOR_EVENT_CHANNEL_OP`]).
pub const HYPERVISOR_EVENT_CHANNEL_OP_COMPAT: u64 = 16;
/// `__HYPERVISOR_xen_version` ([`crate::version`]).
pub const HYPERVISOR_XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_console_io` ([`crate::console`]).
pub const HYPERVISOR_CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_physdev_op_compat` (superseded by [`HYPERVISOR_PHYSDEV_OP`]).
pub const HYPERVISOR_PHYSDEV_OP_COMPAT: u64 = 19;
/// `__HYPERVISOR_grant_table_op` ([`crate::grant_table`]).
pub const HYPERVISOR_GRANT_TABLE_OP: u64 = 20;
/// `__HYPERVISOR_vm_assist` (`VMASST_CMD_*`, `VMASST_TYPE_*`).
pub const HYPERVISOR_VM_ASSIST: u64 = 21;
/// `__HYPERVISOR_update_va_mapping_otherdomain` (PV only).
pub const HYPERVISOR_UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
/// `__HYPERVISOR_iret` (x86 PV only).
pub const HYPERVISOR_IRET: u64 = 23;
/// `__HYPERVISOR_vcpu_op` ([`crate::vcpu`]).
pub const HYPERVISOR_VCPU_OP: u64 = 24;
/// `__HYPERVISOR_set_segment_base` (x86-64 PV only).
pub const HYPERVISOR_SET_SEGMENT_BASE: u64 = 25;
/// `__HYPERVISOR_mmuext_op` (PV only).
pub const HYPERVISOR_MMUEXT_OP: u64 = 26;
/// `__HYPERVISOR_xsm_op`.
pub const HYPERVISOR_XSM_OP: u64 = 27;
/// `__HYPERVISOR_nmi_op`.
pub const HYPERVISOR_NMI_OP: u64 = 28;
/// `__HYPERVISOR_sched_op` ([`crate::sched`]).
pub const HYPERVISOR_SCHED_OP: u64 = 29;
/// `__HYPERVISOR_callback_op`.
pub const HYPERVISOR_CALLBACK_OP: u64 = 30;
/// `__HYPERVISOR_xenoprof_op`.
pub const HYPERVISOR_XENOPROF_OP: u64 = 31;
/// `__HYPERVISOR_event_channel_op` ([`crate::event_channel`]).
pub const HYPERVISOR_EVENT_CHANNEL_OP: u64 = 32;
/// `__HYPERVISOR_physdev_op` ([`crate::physdev`]).
pub const HYPERVISOR_PHYSDEV_OP: u64 = 33;
/// `__HYPERVISOR_hvm_op` ([`crate::hvm`]).
pub const HYPERVISOR_HVM_OP: u64 = 34;
/// `__HYPERVISOR_sysctl`.
pub const HYPERVISOR_SYSCTL: u64 = 35;
/// `__HYPERVISOR_domctl`.
pub const HYPERVISOR_DOMCTL: u64 = 36;
/// `__HYPERVISOR_kexec_op`.
pub const HYPERVISOR_KEXEC_OP: u64 = 37;
/// `__HYPERVISOR_tmem_op` (removed from Xen; always `-ENOSYS`).
pub const HYPERVISOR_TMEM_OP: u64 = 38;
/// `__HYPERVISOR_argo_op`.
pub const HYPERVISOR_ARGO_OP: u64 = 39;
/// `__HYPERVISOR_xenpmu_op`.
pub const HYPERVISOR_XENPMU_OP: u64 = 40;
/// `__HYPERVISOR_dm_op`.
pub const HYPERVISOR_DM_OP: u64 = 41;
/// `__HYPERVISOR_hypfs_op`.
pub const HYPERVISOR_HYPFS_OP: u64 = 42;
/// `__HYPERVISOR_arch_0`: architecture-specific (x86: `mca`).
pub const HYPERVISOR_ARCH_0: u64 = 48;
/// `__HYPERVISOR_arch_1`: architecture-specific (x86: `paging_domctl_cont`).
pub const HYPERVISOR_ARCH_1: u64 = 49;
/// `__HYPERVISOR_arch_2`: architecture-specific.
pub const HYPERVISOR_ARCH_2: u64 = 50;
/// `__HYPERVISOR_arch_3`: architecture-specific.
pub const HYPERVISOR_ARCH_3: u64 = 51;
/// `__HYPERVISOR_arch_4`: architecture-specific.
pub const HYPERVISOR_ARCH_4: u64 = 52;
/// `__HYPERVISOR_arch_5`: architecture-specific.
pub const HYPERVISOR_ARCH_5: u64 = 53;
/// `__HYPERVISOR_arch_6`: architecture-specific.
pub const HYPERVISOR_ARCH_6: u64 = 54;
/// `__HYPERVISOR_arch_7`: architecture-specific.
pub const HYPERVISOR_ARCH_7: u64 = 55;

// Virtual interrupts (`VIRQ_*`, the `virq` of `evtchn_bind_virq`). "Per vCPU" ones are bound
// on each vCPU; "global" ones once per domain.

/// `VIRQ_TIMER` (per vCPU): the one-shot / periodic timer fired.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG` (per vCPU): dump debug information.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE` (global, dom0): bytes arrived on the emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC` (global, dom0): some domain needs attention (e.g. it shut down).
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF` (global, dom0): trace buffer records available.
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER` (global, dom0): a domain paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF` (per vCPU): new profiling sample.
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING` (global, dom0): bytes arrived on the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE` (global, dom0): a physical CPU changed state.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT` (global, dom0): a memory event happened.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO` (global): Argo message notification.
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM` (global, dom0): the hypervisor is low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU` (per vCPU): PMC interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_ARCH_0`: architecture-specific.
pub const VIRQ_ARCH_0: u32 = 16;
/// `VIRQ_ARCH_1`: architecture-specific.
pub const VIRQ_ARCH_1: u32 = 17;
/// `VIRQ_ARCH_2`: architecture-specific.
pub const VIRQ_ARCH_2: u32 = 18;
/// `VIRQ_ARCH_3`: architecture-specific.
pub const VIRQ_ARCH_3: u32 = 19;
/// `VIRQ_ARCH_4`: architecture-specific.
pub const VIRQ_ARCH_4: u32 = 20;
/// `VIRQ_ARCH_5`: architecture-specific.
pub const VIRQ_ARCH_5: u32 = 21;
/// `VIRQ_ARCH_6`: architecture-specific.
pub const VIRQ_ARCH_6: u32 = 22;
/// `VIRQ_ARCH_7`: architecture-specific.
pub const VIRQ_ARCH_7: u32 = 23;
/// `NR_VIRQS`: VIRQ numbers are below this.
pub const NR_VIRQS: u32 = 24;

// `vm_assist` (`HYPERVISOR_vm_assist(cmd, type)`).

/// `VMASST_CMD_enable`.
pub const VMASST_CMD_ENABLE: u64 = 0;
/// `VMASST_CMD_disable`.
pub const VMASST_CMD_DISABLE: u64 = 1;
/// `VMASST_TYPE_4gb_segments` (x86-32 PV).
pub const VMASST_TYPE_4GB_SEGMENTS: u64 = 0;
/// `VMASST_TYPE_4gb_segments_notify` (x86-32 PV).
pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u64 = 1;
/// `VMASST_TYPE_writable_pagetables` (PV).
pub const VMASST_TYPE_WRITABLE_PAGETABLES: u64 = 2;
/// `VMASST_TYPE_pae_extended_cr3` (x86-32 PV).
pub const VMASST_TYPE_PAE_EXTENDED_CR3: u64 = 3;
/// `VMASST_TYPE_architectural_iopl` (PV).
pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u64 = 4;
/// `VMASST_TYPE_runstate_update_flag`: set [`crate::vcpu::XEN_RUNSTATE_UPDATE`] in the guest's
/// runstate area while it is being updated.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;
/// `VMASST_TYPE_m2p_strict` (x86-64 PV).
pub const VMASST_TYPE_M2P_STRICT: u64 = 32;

// Domain ids (`domid_t`). Ids from DOMID_FIRST_RESERVED up are not real domains.

/// `DOMID_FIRST_RESERVED`: the first id that is not a real domain.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
/// `DOMID_SELF`: the calling domain.
pub const DOMID_SELF: u16 = 0x7ff0;
/// `DOMID_IO`: owner of I/O memory (MMIO pages given to privileged domains).
pub const DOMID_IO: u16 = 0x7ff1;
/// `DOMID_XEN`: owner of the hypervisor's own pages shared with guests.
pub const DOMID_XEN: u16 = 0x7ff2;
/// `DOMID_COW`: owner of shared copy-on-write pages.
pub const DOMID_COW: u16 = 0x7ff3;
/// `DOMID_INVALID`: "no domain".
pub const DOMID_INVALID: u16 = 0x7ff4;
/// `DOMID_IDLE`: the idle domain.
pub const DOMID_IDLE: u16 = 0x7fff;
/// `DOMID_MASK`: the bits of a domain id.
pub const DOMID_MASK: u16 = 0x7fff;

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in [`SharedInfo`]. vCPUs beyond these need
/// `VCPUOP_register_vcpu_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// `XEN_HVM_DEBUGCONS_IOPORT`: the I/O port an HVM/PVH guest may write debug bytes to.
pub const XEN_HVM_DEBUGCONS_IOPORT: u16 = 0xe9;

/// `XEN_PVCLOCK_TSC_STABLE_BIT` in [`VcpuTimeInfo::flags`]: the TSC is synchronised across
/// vCPUs, so readings from different vCPUs are comparable.
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED` in [`VcpuTimeInfo::flags`]: the guest was paused.
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

xen_struct! {
    /// `struct vcpu_time_info`: the pvclock parameters of one vCPU. The guest computes
    /// `system_time + ((((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32)`
    /// (a negative `tsc_shift` shifts right). `version` is odd while an update is in progress.
    pub struct VcpuTimeInfo: 32 bytes {
        /// Incremented before and after each update (odd: update in progress).
        pub version @ 0: u32,
        /// Padding.
        pub pad0 @ 4: u32,
        /// TSC at the last update.
        pub tsc_timestamp @ 8: u64,
        /// System time (ns since the domain's boot) at the last update.
        pub system_time @ 16: u64,
        /// 32.32 fixed-point multiplier from (shifted) TSC ticks to ns.
        pub tsc_to_system_mul @ 24: u32,
        /// Shift applied to the TSC delta before the multiplication.
        pub tsc_shift @ 28: i8,
        /// `XEN_PVCLOCK_*`.
        pub flags @ 29: u8,
        /// Padding.
        pub pad1 @ 30: [u8; 2],
    }

    /// `struct arch_vcpu_info` (x86-64).
    pub struct ArchVcpuInfo: 16 bytes {
        /// Faulting address of the last page fault (PV).
        pub cr2 @ 0: u64,
        /// Padding (makes `vcpu_info` 64 bytes).
        pub pad @ 8: u64,
    }

    /// `struct vcpu_info`: per-vCPU event and time state, in [`SharedInfo`] for the first 32
    /// vCPUs or wherever the guest registered it (`VCPUOP_register_vcpu_info`).
    pub struct VcpuInfo: 64 bytes {
        /// Set non-zero by the hypervisor when an event is pending for this vCPU; cleared by the
        /// guest before it scans the selector.
        pub evtchn_upcall_pending @ 0: u8,
        /// Non-zero: the guest masked upcalls (x86 has the mask, `XEN_HAVE_PV_UPCALL_MASK`).
        pub evtchn_upcall_mask @ 1: u8,
        /// 2-level selector: bit `i` set means word `i` of `evtchn_pending` may have bits set.
        pub evtchn_pending_sel @ 8: u64,
        /// Architecture-specific part.
        pub arch @ 16: ArchVcpuInfo,
        /// pvclock parameters.
        pub time @ 32: VcpuTimeInfo,
    }

    /// `struct arch_shared_info` (x86-64); PV p2m information, unused by HVM/PVH guests.
    pub struct ArchSharedInfo: 48 bytes {
        /// Valid entries of the p2m table.
        pub max_pfn @ 0: u64,
        /// Frame of the p2m frame-list list (0: not set up, !0: invalid).
        pub pfn_to_mfn_frame_list_list @ 8: u64,
        /// NMI reason bits.
        pub nmi_reason @ 16: u64,
        /// CR3 of the address space where `p2m_vaddr` is valid (0: the p2m fields are unused).
        pub p2m_cr3 @ 24: u64,
        /// Virtual address of the linear p2m list.
        pub p2m_vaddr @ 32: u64,
        /// Incremented around p2m changes (odd: change in progress).
        pub p2m_generation @ 40: u64,
    }

    /// `struct shared_info`: the page a guest maps with `XENMAPSPACE_shared_info`.
    pub struct SharedInfo: 3136 bytes {
        /// `vcpu_info` of vCPUs 0..32 (until they register their own).
        pub vcpu_info @ 0: [VcpuInfo; 32],
        /// 2-level pending bits: port `p` is bit `p % 64` of word `p / 64`.
        pub evtchn_pending @ 2048: [u64; 64],
        /// 2-level mask bits, same layout; only the guest writes them.
        pub evtchn_mask @ 2560: [u64; 64],
        /// Wallclock version (odd: update in progress), as `vcpu_time_info.version`.
        pub wc_version @ 3072: u32,
        /// Wallclock seconds since the Unix epoch at system time 0 (low 32 bits).
        pub wc_sec @ 3076: u32,
        /// Wallclock nanoseconds.
        pub wc_nsec @ 3080: u32,
        /// Wallclock seconds, high 32 bits.
        pub wc_sec_hi @ 3084: u32,
        /// Architecture-specific part.
        pub arch @ 3088: ArchSharedInfo,
    }

    /// `struct multicall_entry`: one call of `HYPERVISOR_multicall`.
    pub struct MulticallEntry: 64 bytes {
        /// Hypercall number.
        pub op @ 0: u64,
        /// OUT: its result.
        pub result @ 8: u64,
        /// Its arguments.
        pub args @ 16: [u64; 6],
    }
}

const _: () = assert!(XEN_LEGACY_MAX_VCPUS * VcpuInfo::SIZE == 2048);

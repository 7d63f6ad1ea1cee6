//! `vcpu.h`: `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)`, and the HVM start context of
//! `VCPUOP_initialise` from `hvm/hvm_vcpu.h`.

use crate::wire::xen_struct;

/// `VCPUOP_initialise`: set the initial state of a vCPU that is down; for HVM/PVH guests the
/// argument is a [`VcpuHvmContext`].
pub const VCPUOP_INITIALISE: u64 = 0;
/// `VCPUOP_up`: start an initialised vCPU.
pub const VCPUOP_UP: u64 = 1;
/// `VCPUOP_down`: stop a vCPU.
pub const VCPUOP_DOWN: u64 = 2;
/// `VCPUOP_is_up`: 1 if the vCPU is up, 0 if not.
pub const VCPUOP_IS_UP: u64 = 3;
/// `VCPUOP_get_runstate_info`: fill a [`VcpuRunstateInfo`].
pub const VCPUOP_GET_RUNSTATE_INFO: u64 = 4;
/// `VCPUOP_register_runstate_memory_area`: keep a [`VcpuRunstateInfo`] up to date at a guest
/// address; argument [`VcpuRegisterRunstateMemoryArea`].
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
/// `VCPUOP_set_periodic_timer`: argument [`VcpuSetPeriodicTimer`].
pub const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
/// `VCPUOP_stop_periodic_timer`: no argument.
pub const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
/// `VCPUOP_set_singleshot_timer`: argument [`VcpuSetSingleshotTimer`].
pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// `VCPUOP_stop_singleshot_timer`: no argument.
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
/// `VCPUOP_register_vcpu_info`: move the vCPU's `vcpu_info` to a guest page; argument
/// [`VcpuRegisterVcpuInfo`].
pub const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
/// `VCPUOP_send_nmi`: send an NMI to the vCPU. No argument.
pub const VCPUOP_SEND_NMI: u64 = 11;
/// `VCPUOP_get_physid`: argument [`VcpuGetPhysid`] (dom0).
pub const VCPUOP_GET_PHYSID: u64 = 12;
/// `VCPUOP_register_vcpu_time_memory_area`: keep a copy of the vCPU's `vcpu_time_info` at a
/// guest address; argument [`VcpuRegisterTimeMemoryArea`].
pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;

/// `RUNSTATE_running`: running on a physical CPU.
pub const RUNSTATE_RUNNING: i32 = 0;
/// `RUNSTATE_runnable`: ready to run, waiting for a CPU.
pub const RUNSTATE_RUNNABLE: i32 = 1;
/// `RUNSTATE_blocked`: blocked (idle), waiting for an event.
pub const RUNSTATE_BLOCKED: i32 = 2;
/// `RUNSTATE_offline`: neither runnable nor blocked (hot-unplugged, paused by the toolstack, …).
pub const RUNSTATE_OFFLINE: i32 = 3;

/// `XEN_RUNSTATE_UPDATE`: set in `state_entry_time` while the hypervisor updates a registered
/// runstate area (only with `VMASST_TYPE_runstate_update_flag`).
pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;

/// `VCPU_SSHOTTMR_future` in [`VcpuSetSingleshotTimer::flags`]: fail with `-ETIME` if the
/// timeout has already passed (the hypervisor may ignore the flag).
pub const VCPU_SSHOTTMR_FUTURE: u32 = 1 << 0;

/// `VCPU_HVM_MODE_32B`: [`VcpuHvmContext`] holds a [`VcpuHvmX86_32`] state.
pub const VCPU_HVM_MODE_32B: u32 = 0;
/// `VCPU_HVM_MODE_64B`: [`VcpuHvmContext`] holds a [`VcpuHvmX86_64`] state (long mode).
pub const VCPU_HVM_MODE_64B: u32 = 1;

xen_struct! {
    /// `struct vcpu_runstate_info`.
    pub struct VcpuRunstateInfo: 48 bytes {
        /// `RUNSTATE_*`.
        pub state @ 0: i32,
        /// System time (ns) when `state` was entered; bit 63 is [`XEN_RUNSTATE_UPDATE`].
        pub state_entry_time @ 8: u64,
        /// Time (ns) spent in each `RUNSTATE_*`.
        pub time @ 16: [u64; 4],
    }

    /// `struct vcpu_register_runstate_memory_area`. The C union `addr` (handle, pointer or
    /// `uint64_t`) is 8 bytes: a guest virtual address.
    pub struct VcpuRegisterRunstateMemoryArea: 8 bytes {
        /// Guest address of a [`VcpuRunstateInfo`].
        pub addr @ 0: u64,
    }

    /// `struct vcpu_set_periodic_timer`.
    pub struct VcpuSetPeriodicTimer: 8 bytes {
        /// Period in ns.
        pub period_ns @ 0: u64,
    }

    /// `struct vcpu_set_singleshot_timer`.
    pub struct VcpuSetSingleshotTimer: 16 bytes {
        /// Absolute system time (ns) of expiry.
        pub timeout_abs_ns @ 0: u64,
        /// `VCPU_SSHOTTMR_*`.
        pub flags @ 8: u32,
    }

    /// `struct vcpu_register_vcpu_info`.
    pub struct VcpuRegisterVcpuInfo: 16 bytes {
        /// Guest frame number of the page that will hold the `vcpu_info`.
        pub mfn @ 0: u64,
        /// Byte offset of the `vcpu_info` in that page.
        pub offset @ 8: u32,
        /// Unused.
        pub rsvd @ 12: u32,
    }

    /// `struct vcpu_get_physid`.
    pub struct VcpuGetPhysid: 8 bytes {
        /// x86: APIC id in bits 31:0, ACPI id in bits 63:32.
        pub phys_id @ 0: u64,
    }

    /// `struct vcpu_register_time_memory_area`. The C union `addr` is 8 bytes: a guest virtual
    /// address.
    pub struct VcpuRegisterTimeMemoryArea: 8 bytes {
        /// Guest address of a [`crate::xen::VcpuTimeInfo`].
        pub addr @ 0: u64,
    }

    /// `struct vcpu_hvm_x86_32`: 32-bit (or compatibility mode, with `efer`) start state.
    ///
    /// The `*_ar` attributes are the descriptor's access bits: bits 0-3 type, 4 S, 5-6 DPL,
    /// 7 P, 8 AVL, 9 L, 10 D/B, 11 G; bits 12-15 must be zero.
    pub struct VcpuHvmX86_32: 120 bytes {
        /// EAX.
        pub eax @ 0: u32,
        /// ECX.
        pub ecx @ 4: u32,
        /// EDX.
        pub edx @ 8: u32,
        /// EBX.
        pub ebx @ 12: u32,
        /// ESP.
        pub esp @ 16: u32,
        /// EBP.
        pub ebp @ 20: u32,
        /// ESI.
        pub esi @ 24: u32,
        /// EDI.
        pub edi @ 28: u32,
        /// EIP.
        pub eip @ 32: u32,
        /// EFLAGS.
        pub eflags @ 36: u32,
        /// CR0.
        pub cr0 @ 40: u32,
        /// CR3.
        pub cr3 @ 44: u32,
        /// CR4.
        pub cr4 @ 48: u32,
        /// Padding.
        pub pad1 @ 52: u32,
        /// EFER (only NXE, or LME/LMA to start in compatibility mode).
        pub efer @ 56: u64,
        /// CS base.
        pub cs_base @ 64: u32,
        /// DS base.
        pub ds_base @ 68: u32,
        /// SS base.
        pub ss_base @ 72: u32,
        /// ES base.
        pub es_base @ 76: u32,
        /// TR base.
        pub tr_base @ 80: u32,
        /// CS limit.
        pub cs_limit @ 84: u32,
        /// DS limit.
        pub ds_limit @ 88: u32,
        /// SS limit.
        pub ss_limit @ 92: u32,
        /// ES limit.
        pub es_limit @ 96: u32,
        /// TR limit.
        pub tr_limit @ 100: u32,
        /// CS access rights.
        pub cs_ar @ 104: u16,
        /// DS access rights.
        pub ds_ar @ 106: u16,
        /// SS access rights.
        pub ss_ar @ 108: u16,
        /// ES access rights.
        pub es_ar @ 110: u16,
        /// TR access rights.
        pub tr_ar @ 112: u16,
        /// Padding.
        pub pad2 @ 114: [u16; 3],
    }

    /// `struct vcpu_hvm_x86_64`: long-mode start state (segment caches are set to flat 64-bit).
    pub struct VcpuHvmX86_64: 112 bytes {
        /// RAX.
        pub rax @ 0: u64,
        /// RCX.
        pub rcx @ 8: u64,
        /// RDX.
        pub rdx @ 16: u64,
        /// RBX.
        pub rbx @ 24: u64,
        /// RSP.
        pub rsp @ 32: u64,
        /// RBP.
        pub rbp @ 40: u64,
        /// RSI.
        pub rsi @ 48: u64,
        /// RDI.
        pub rdi @ 56: u64,
        /// RIP.
        pub rip @ 64: u64,
        /// RFLAGS.
        pub rflags @ 72: u64,
        /// CR0.
        pub cr0 @ 80: u64,
        /// CR3.
        pub cr3 @ 88: u64,
        /// CR4.
        pub cr4 @ 96: u64,
        /// EFER.
        pub efer @ 104: u64,
    }

    /// The `cpu_regs` union of `struct vcpu_hvm_context`: a [`VcpuHvmX86_32`] or a
    /// [`VcpuHvmX86_64`] (the first 112 bytes), as raw bytes.
    #[repr(align(8))]
    pub struct VcpuHvmCpuRegs: 120 bytes {
        /// The union's bytes.
        pub raw @ 0: [u8; 120],
    }

    /// `struct vcpu_hvm_context`: the `VCPUOP_initialise` argument for HVM/PVH guests.
    pub struct VcpuHvmContext: 128 bytes {
        /// `VCPU_HVM_MODE_*`: which member of `cpu_regs` is used.
        pub mode @ 0: u32,
        /// Padding.
        pub pad @ 4: u32,
        /// The register state.
        pub cpu_regs @ 8: VcpuHvmCpuRegs,
    }
}

impl VcpuHvmX86_32 {
    /// The PVH entry state Xen's toolstack gives a guest's first vCPU: 32-bit protected
    /// mode with paging off (CR0 = PE | ET), flat 4 GiB code and data segments, a 32-bit
    /// TSS, `eip` the entry point and `ebx` the start info.
    pub fn pvh_entry(eip: u32, ebx: u32) -> Self {
        VcpuHvmX86_32 {
            eip,
            ebx,
            eflags: 0x2,
            cr0: 0x11,
            cs_limit: u32::MAX,
            ds_limit: u32::MAX,
            ss_limit: u32::MAX,
            es_limit: u32::MAX,
            tr_limit: 0x67,
            cs_ar: 0xc9b,
            ds_ar: 0xc93,
            ss_ar: 0xc93,
            es_ar: 0xc93,
            tr_ar: 0x8b,
            ..Self::default()
        }
    }
}

impl VcpuHvmContext {
    /// A context holding a 32-bit state ([`VCPU_HVM_MODE_32B`]).
    pub fn x86_32(regs: &VcpuHvmX86_32) -> Self {
        VcpuHvmContext { mode: VCPU_HVM_MODE_32B, pad: 0, cpu_regs: VcpuHvmCpuRegs { raw: regs.to_bytes() } }
    }

    /// A context holding a 64-bit state ([`VCPU_HVM_MODE_64B`]; the union's tail is zero).
    pub fn x86_64(regs: &VcpuHvmX86_64) -> Self {
        let mut raw = [0u8; VcpuHvmCpuRegs::SIZE];
        raw[..VcpuHvmX86_64::SIZE].copy_from_slice(&regs.to_bytes());
        VcpuHvmContext { mode: VCPU_HVM_MODE_64B, pad: 0, cpu_regs: VcpuHvmCpuRegs { raw } }
    }
}

impl VcpuHvmCpuRegs {
    /// The union read as its `x86_32` member.
    pub fn x86_32(&self) -> VcpuHvmX86_32 {
        VcpuHvmX86_32::from_bytes(&self.raw)
    }

    /// The union read as its `x86_64` member.
    pub fn x86_64(&self) -> VcpuHvmX86_64 {
        let mut b = [0u8; VcpuHvmX86_64::SIZE];
        b.copy_from_slice(&self.raw[..VcpuHvmX86_64::SIZE]);
        VcpuHvmX86_64::from_bytes(&b)
    }

    /// The union holding `regs` as its `x86_32` member.
    pub fn from_x86_32(regs: &VcpuHvmX86_32) -> Self {
        VcpuHvmCpuRegs { raw: regs.to_bytes() }
    }

    /// The union holding `regs` as its `x86_64` member (the last 8 bytes zero).
    pub fn from_x86_64(regs: &VcpuHvmX86_64) -> Self {
        let mut raw = [0u8; 120];
        raw[..VcpuHvmX86_64::SIZE].copy_from_slice(&regs.to_bytes());
        VcpuHvmCpuRegs { raw }
    }
}

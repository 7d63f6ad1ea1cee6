//! The VMCS and the VMX instructions that manage it (Intel SDM Vol. 3C, chapters 25 and 31,
//! Appendix B): typed field encodings grouped by width, `VMREAD`/`VMWRITE` accessors that
//! return decoded VM-instruction errors, `VMXON`/`VMPTRLD`/`VMCLEAR`, `INVEPT`/`INVVPID`,
//! and the bit layouts of the execution, exit and entry controls, segment access rights
//! and event information fields.
//!
//! A VMCS is an opaque 4 KiB region: software reaches its fields only through
//! `VMREAD`/`VMWRITE` on the *current* VMCS of the executing CPU, by encoding. Each width
//! has its own enum ([`Vmcs16`], [`Vmcs32`], [`Vmcs64`], [`VmcsNatural`]) whose width bits
//! (14:13 of the encoding) are checked at compile time, so a value of the wrong width can
//! never be written to a field.

use bitflags::bitflags;
use core::fmt;

/// Declares one enum of VMCS fields of a single width, with a compile-time check that every
/// encoding carries that width in bits 14:13.
macro_rules! vmcs_fields {
    ($(#[$meta:meta])* $name:ident, width $width:literal, $value:ty {
        $($(#[$vmeta:meta])* $variant:ident = $encoding:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $encoding,)*
        }

        impl $name {
            /// Every field of this width.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
        }

        impl Field for $name {
            type Value = $value;

            fn encoding(self) -> u32 {
                self as u32
            }

            fn from_raw(raw: u64) -> $value {
                raw as $value
            }

            fn to_raw(value: $value) -> u64 {
                value as u64
            }
        }

        const _: () = {
            let all = $name::ALL;
            let mut i = 0;
            while i < all.len() {
                assert!((all[i] as u32 >> 13) & 3 == $width, "VMCS field in the enum of the wrong width");
                assert!(all[i] as u32 & 1 == 0, "VMCS field encodings name the full field (access type 0)");
                i += 1;
            }
        };
    };
}

/// A VMCS field of a known width.
pub trait Field: Copy + fmt::Debug {
    type Value: Copy;
    fn encoding(self) -> u32;
    fn from_raw(raw: u64) -> Self::Value;
    fn to_raw(value: Self::Value) -> u64;
}

vmcs_fields! {
    /// 16-bit fields (width 0).
    Vmcs16, width 0, u16 {
        /// Virtual-processor identifier (control).
        Vpid = 0x0000,
        GuestEsSelector = 0x0800,
        GuestCsSelector = 0x0802,
        GuestSsSelector = 0x0804,
        GuestDsSelector = 0x0806,
        GuestFsSelector = 0x0808,
        GuestGsSelector = 0x080a,
        GuestLdtrSelector = 0x080c,
        GuestTrSelector = 0x080e,
        HostEsSelector = 0x0c00,
        HostCsSelector = 0x0c02,
        HostSsSelector = 0x0c04,
        HostDsSelector = 0x0c06,
        HostFsSelector = 0x0c08,
        HostGsSelector = 0x0c0a,
        HostTrSelector = 0x0c0c,
    }
}

vmcs_fields! {
    /// 64-bit fields (width 1). One `VMREAD`/`VMWRITE` in 64-bit mode moves all 64 bits.
    Vmcs64, width 1, u64 {
        IoBitmapA = 0x2000,
        IoBitmapB = 0x2002,
        MsrBitmap = 0x2004,
        ExitMsrStoreAddress = 0x2006,
        ExitMsrLoadAddress = 0x2008,
        EntryMsrLoadAddress = 0x200a,
        TscOffset = 0x2010,
        /// EPT pointer.
        Eptp = 0x201a,
        /// Read-only: the guest-physical address of an EPT violation or misconfiguration.
        GuestPhysicalAddress = 0x2400,
        /// Must be all ones unless VMCS shadowing is used.
        VmcsLinkPointer = 0x2800,
        GuestDebugCtl = 0x2802,
        GuestPat = 0x2804,
        GuestEfer = 0x2806,
        GuestPdpte0 = 0x280a,
        GuestPdpte1 = 0x280c,
        GuestPdpte2 = 0x280e,
        GuestPdpte3 = 0x2810,
        HostPat = 0x2c00,
        HostEfer = 0x2c02,
    }
}

vmcs_fields! {
    /// 32-bit fields (width 2).
    Vmcs32, width 2, u32 {
        PinBasedControls = 0x4000,
        PrimaryProcessorControls = 0x4002,
        ExceptionBitmap = 0x4004,
        PageFaultErrorCodeMask = 0x4006,
        PageFaultErrorCodeMatch = 0x4008,
        Cr3TargetCount = 0x400a,
        ExitControls = 0x400c,
        ExitMsrStoreCount = 0x400e,
        ExitMsrLoadCount = 0x4010,
        EntryControls = 0x4012,
        EntryMsrLoadCount = 0x4014,
        EntryInterruptionInfo = 0x4016,
        EntryExceptionErrorCode = 0x4018,
        EntryInstructionLength = 0x401a,
        TprThreshold = 0x401c,
        SecondaryProcessorControls = 0x401e,
        /// Read-only: why the last VMX instruction failed (VMfailValid).
        VmInstructionError = 0x4400,
        /// Read-only.
        ExitReason = 0x4402,
        /// Read-only.
        ExitInterruptionInfo = 0x4404,
        /// Read-only.
        ExitInterruptionErrorCode = 0x4406,
        /// Read-only: the event whose delivery the exit interrupted.
        IdtVectoringInfo = 0x4408,
        /// Read-only.
        IdtVectoringErrorCode = 0x440a,
        /// Read-only.
        ExitInstructionLength = 0x440c,
        /// Read-only.
        ExitInstructionInfo = 0x440e,
        GuestEsLimit = 0x4800,
        GuestCsLimit = 0x4802,
        GuestSsLimit = 0x4804,
        GuestDsLimit = 0x4806,
        GuestFsLimit = 0x4808,
        GuestGsLimit = 0x480a,
        GuestLdtrLimit = 0x480c,
        GuestTrLimit = 0x480e,
        GuestGdtrLimit = 0x4810,
        GuestIdtrLimit = 0x4812,
        GuestEsAccessRights = 0x4814,
        GuestCsAccessRights = 0x4816,
        GuestSsAccessRights = 0x4818,
        GuestDsAccessRights = 0x481a,
        GuestFsAccessRights = 0x481c,
        GuestGsAccessRights = 0x481e,
        GuestLdtrAccessRights = 0x4820,
        GuestTrAccessRights = 0x4822,
        GuestInterruptibility = 0x4824,
        GuestActivityState = 0x4826,
        GuestSysenterCs = 0x482a,
        GuestPreemptionTimer = 0x482e,
        HostSysenterCs = 0x4c00,
    }
}

vmcs_fields! {
    /// Natural-width fields (width 3): 64 bits on a 64-bit host.
    VmcsNatural, width 3, u64 {
        Cr0GuestHostMask = 0x6000,
        Cr4GuestHostMask = 0x6002,
        Cr0ReadShadow = 0x6004,
        Cr4ReadShadow = 0x6006,
        /// Read-only.
        ExitQualification = 0x6400,
        /// Read-only.
        GuestLinearAddress = 0x640a,
        GuestCr0 = 0x6800,
        GuestCr3 = 0x6802,
        GuestCr4 = 0x6804,
        GuestEsBase = 0x6806,
        GuestCsBase = 0x6808,
        GuestSsBase = 0x680a,
        GuestDsBase = 0x680c,
        GuestFsBase = 0x680e,
        GuestGsBase = 0x6810,
        GuestLdtrBase = 0x6812,
        GuestTrBase = 0x6814,
        GuestGdtrBase = 0x6816,
        GuestIdtrBase = 0x6818,
        GuestDr7 = 0x681a,
        GuestRsp = 0x681c,
        GuestRip = 0x681e,
        GuestRflags = 0x6820,
        GuestPendingDebugExceptions = 0x6822,
        GuestSysenterEsp = 0x6824,
        GuestSysenterEip = 0x6826,
        HostCr0 = 0x6c00,
        HostCr3 = 0x6c02,
        HostCr4 = 0x6c04,
        HostFsBase = 0x6c06,
        HostGsBase = 0x6c08,
        HostTrBase = 0x6c0a,
        HostGdtrBase = 0x6c0c,
        HostIdtrBase = 0x6c0e,
        HostSysenterEsp = 0x6c10,
        HostSysenterEip = 0x6c12,
        HostRsp = 0x6c14,
        HostRip = 0x6c16,
    }
}

/// A VM-instruction error number (SDM Vol. 3C §31.4), read from
/// [`Vmcs32::VmInstructionError`] after a VMfailValid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstructionError(pub u32);

impl InstructionError {
    /// What the error number means.
    pub fn message(self) -> &'static str {
        match self.0 {
            1 => "VMCALL executed in VMX root operation",
            2 => "VMCLEAR with invalid physical address",
            3 => "VMCLEAR with VMXON pointer",
            4 => "VMLAUNCH with non-clear VMCS",
            5 => "VMRESUME with non-launched VMCS",
            6 => "VMRESUME after VMXOFF",
            7 => "VM entry with invalid control field(s)",
            8 => "VM entry with invalid host-state field(s)",
            9 => "VMPTRLD with invalid physical address",
            10 => "VMPTRLD with VMXON pointer",
            11 => "VMPTRLD with incorrect VMCS revision identifier",
            12 => "VMREAD/VMWRITE from/to unsupported VMCS component",
            13 => "VMWRITE to read-only VMCS component",
            15 => "VMXON executed in VMX root operation",
            16 => "VM entry with invalid executive-VMCS pointer",
            17 => "VM entry with non-launched executive VMCS",
            18 => "VM entry with executive-VMCS pointer not VMXON pointer",
            19 => "VMCALL with non-clear VMCS",
            20 => "VMCALL with invalid VM-exit control fields",
            22 => "VMCALL with incorrect MSEG revision identifier",
            23 => "VMXOFF under dual-monitor treatment of SMIs and SMM",
            24 => "VMCALL with invalid SMM-monitor features",
            25 => "VM entry with invalid VM-execution control fields in executive VMCS",
            26 => "VM entry with events blocked by MOV SS",
            28 => "invalid operand to INVEPT/INVVPID",
            _ => "unknown VM-instruction error number",
        }
    }
}

/// How a VMX instruction failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmxError {
    /// VMfailInvalid (CF=1): there is no current VMCS (or the operand was unusable).
    FailInvalid,
    /// VMfailValid (ZF=1): the error number is in the current VMCS.
    FailValid(InstructionError),
}

impl VmxError {
    /// A fixed description, for places that need a `&'static str`.
    pub fn message(self) -> &'static str {
        match self {
            VmxError::FailInvalid => "VMfailInvalid (no current VMCS or invalid operand)",
            VmxError::FailValid(e) => e.message(),
        }
    }

    /// Decodes the RFLAGS a VMX instruction left: `Ok` unless CF or ZF is set.
    pub fn from_rflags(rflags: u64) -> Result<(), VmxError> {
        const CF: u64 = 1 << 0;
        const ZF: u64 = 1 << 6;
        if rflags & CF != 0 {
            Err(VmxError::FailInvalid)
        } else if rflags & ZF != 0 {
            Err(VmxError::FailValid(InstructionError(
                vmread_raw(Vmcs32::VmInstructionError.encoding()).unwrap_or(0) as u32
            )))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for VmxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmxError::FailInvalid => f.write_str(self.message()),
            VmxError::FailValid(e) => write!(f, "VM-instruction error {}: {}", e.0, e.message()),
        }
    }
}

/// Turns the CF/ZF outcome of a VMX instruction (captured with SETC/SETZ) into a result.
fn outcome(cf: u8, zf: u8) -> Result<(), VmxError> {
    VmxError::from_rflags(u64::from(cf) | (u64::from(zf) << 6))
}

/// VMREAD of an encoding, without the typed wrapper (also used to fetch the error number).
fn vmread_raw(encoding: u32) -> Result<u64, VmxError> {
    let value: u64;
    let (cf, zf): (u8, u8);
    // SAFETY: VMREAD only reads the current VMCS into a register. It is used only on CPUs in
    // VMX root operation (the backend enables VMX before any VMCS exists); without a current
    // VMCS it fails with CF=1, which is reported, not undefined.
    unsafe {
        core::arch::asm!(
            "vmread {value}, {encoding}",
            "setc {cf}",
            "setz {zf}",
            value = out(reg) value,
            encoding = in(reg) u64::from(encoding),
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack),
        );
    }
    match outcome(cf, zf) {
        Ok(()) => Ok(value),
        Err(VmxError::FailValid(_)) if encoding == Vmcs32::VmInstructionError.encoding() => {
            Err(VmxError::FailValid(InstructionError(0)))
        }
        Err(e) => Err(e),
    }
}

/// Reads a field of the current VMCS.
pub fn read<F: Field>(field: F) -> Result<F::Value, VmxError> {
    vmread_raw(field.encoding()).map(F::from_raw)
}

/// Writes a field of the current VMCS.
///
/// # Safety
/// The CPU must be in VMX root operation, and the value must keep the host safe: host-state
/// fields must describe this CPU's real host state, and every address field (bitmaps, MSR
/// areas, EPT pointer) must name memory owned for that purpose for as long as the VMCS uses
/// it. Guest-state fields and event/exiting controls only affect the guest.
pub unsafe fn write<F: Field>(field: F, value: F::Value) -> Result<(), VmxError> {
    let (cf, zf): (u8, u8);
    // SAFETY: the caller guarantees VMX root operation and a value safe for the host; VMWRITE
    // changes nothing but the current VMCS.
    unsafe {
        core::arch::asm!(
            "vmwrite {encoding}, {value}",
            "setc {cf}",
            "setz {zf}",
            encoding = in(reg) u64::from(field.encoding()),
            value = in(reg) F::to_raw(value),
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack),
        );
    }
    outcome(cf, zf)
}

/// Enters VMX root operation with the VMXON region at `region`.
///
/// # Safety
/// CR4.VMXE and the CR0/CR4 fixed bits must be set, IA32_FEATURE_CONTROL must allow VMXON,
/// and `region` must be a zeroed 4 KiB frame holding the VMCS revision identifier that this
/// CPU owns for as long as VMX operation lasts.
pub unsafe fn vmxon(region: u64) -> Result<(), VmxError> {
    let (cf, zf): (u8, u8);
    // SAFETY: forwarded from the caller's contract; VMXON reads its operand from memory.
    unsafe {
        core::arch::asm!(
            "vmxon [{region}]",
            "setc {cf}",
            "setz {zf}",
            region = in(reg) &region,
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack),
        );
    }
    outcome(cf, zf)
}

/// Makes the VMCS at `vmcs` current (and active) on this CPU.
///
/// # Safety
/// VMX root operation; `vmcs` is a VMCS region (revision identifier written) owned by the
/// caller and not active on another CPU.
pub unsafe fn vmptrld(vmcs: u64) -> Result<(), VmxError> {
    let (cf, zf): (u8, u8);
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        core::arch::asm!(
            "vmptrld [{vmcs}]",
            "setc {cf}",
            "setz {zf}",
            vmcs = in(reg) &vmcs,
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack),
        );
    }
    outcome(cf, zf)
}

/// Writes the VMCS at `vmcs` back to memory and makes it inactive (launch state clear).
///
/// # Safety
/// VMX root operation; `vmcs` is a VMCS region owned by the caller (active on this CPU or on
/// none).
pub unsafe fn vmclear(vmcs: u64) -> Result<(), VmxError> {
    let (cf, zf): (u8, u8);
    // SAFETY: forwarded from the caller's contract; VMCLEAR writes only the VMCS region.
    unsafe {
        core::arch::asm!(
            "vmclear [{vmcs}]",
            "setc {cf}",
            "setz {zf}",
            vmcs = in(reg) &vmcs,
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack),
        );
    }
    outcome(cf, zf)
}

/// INVEPT/INVVPID invalidation types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Invalidation {
    SingleContext = 1,
    AllContexts = 2,
}

/// Invalidates cached EPT translations: those derived from `eptp` (single context) or all.
pub fn invept(kind: Invalidation, eptp: u64) -> Result<(), VmxError> {
    let descriptor: [u64; 2] = [eptp, 0];
    let (cf, zf): (u8, u8);
    // SAFETY: INVEPT only drops TLB and paging-structure cache entries; it reads its 16-byte
    // descriptor from our stack. It is used only in VMX root operation.
    unsafe {
        core::arch::asm!(
            "invept {kind}, [{descriptor}]",
            "setc {cf}",
            "setz {zf}",
            kind = in(reg) kind as u64,
            descriptor = in(reg) descriptor.as_ptr(),
            cf = out(reg_byte) cf,
            zf = out(reg_byte) zf,
            options(nostack, readonly),
        );
    }
    outcome(cf, zf)
}

bitflags! {
    /// Pin-based VM-execution controls (SDM Vol. 3C §25.6.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PinControls: u32 {
        const EXTERNAL_INTERRUPT_EXITING = 1 << 0;
        const NMI_EXITING = 1 << 3;
        const VIRTUAL_NMIS = 1 << 5;
        const PREEMPTION_TIMER = 1 << 6;
        const POSTED_INTERRUPTS = 1 << 7;
    }

    /// Primary processor-based VM-execution controls (§25.6.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct PrimaryControls: u32 {
        const INTERRUPT_WINDOW_EXITING = 1 << 2;
        const USE_TSC_OFFSETTING = 1 << 3;
        const HLT_EXITING = 1 << 7;
        const INVLPG_EXITING = 1 << 9;
        const MWAIT_EXITING = 1 << 10;
        const RDPMC_EXITING = 1 << 11;
        const RDTSC_EXITING = 1 << 12;
        const CR3_LOAD_EXITING = 1 << 15;
        const CR3_STORE_EXITING = 1 << 16;
        const CR8_LOAD_EXITING = 1 << 19;
        const CR8_STORE_EXITING = 1 << 20;
        const USE_TPR_SHADOW = 1 << 21;
        const NMI_WINDOW_EXITING = 1 << 22;
        const MOV_DR_EXITING = 1 << 23;
        const UNCONDITIONAL_IO_EXITING = 1 << 24;
        const USE_IO_BITMAPS = 1 << 25;
        const MONITOR_TRAP_FLAG = 1 << 27;
        const USE_MSR_BITMAPS = 1 << 28;
        const MONITOR_EXITING = 1 << 29;
        const PAUSE_EXITING = 1 << 30;
        const ACTIVATE_SECONDARY_CONTROLS = 1 << 31;
    }

    /// Secondary processor-based VM-execution controls (§25.6.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SecondaryControls: u32 {
        const VIRTUALIZE_APIC_ACCESSES = 1 << 0;
        const ENABLE_EPT = 1 << 1;
        const DESCRIPTOR_TABLE_EXITING = 1 << 2;
        const ENABLE_RDTSCP = 1 << 3;
        const VIRTUALIZE_X2APIC = 1 << 4;
        const ENABLE_VPID = 1 << 5;
        const WBINVD_EXITING = 1 << 6;
        const UNRESTRICTED_GUEST = 1 << 7;
        const PAUSE_LOOP_EXITING = 1 << 10;
        const RDRAND_EXITING = 1 << 11;
        const ENABLE_INVPCID = 1 << 12;
        const ENABLE_VM_FUNCTIONS = 1 << 13;
        const VMCS_SHADOWING = 1 << 14;
        const RDSEED_EXITING = 1 << 16;
        const ENABLE_PML = 1 << 17;
        const EPT_VIOLATION_VE = 1 << 18;
        const ENABLE_XSAVES = 1 << 20;
    }

    /// VM-exit controls (§25.7.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ExitControls: u32 {
        const SAVE_DEBUG_CONTROLS = 1 << 2;
        /// The host runs in 64-bit mode after the exit.
        const HOST_ADDRESS_SPACE_SIZE = 1 << 9;
        const LOAD_PERF_GLOBAL_CTRL = 1 << 12;
        const ACKNOWLEDGE_INTERRUPT_ON_EXIT = 1 << 15;
        const SAVE_PAT = 1 << 18;
        const LOAD_PAT = 1 << 19;
        const SAVE_EFER = 1 << 20;
        const LOAD_EFER = 1 << 21;
        const SAVE_PREEMPTION_TIMER = 1 << 22;
    }

    /// VM-entry controls (§25.8.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct EntryControls: u32 {
        const LOAD_DEBUG_CONTROLS = 1 << 2;
        /// The guest runs in IA-32e mode after the entry (must equal guest EFER.LMA).
        const IA32E_MODE_GUEST = 1 << 9;
        const ENTRY_TO_SMM = 1 << 10;
        const LOAD_PERF_GLOBAL_CTRL = 1 << 13;
        const LOAD_PAT = 1 << 14;
        const LOAD_EFER = 1 << 15;
    }

    /// Guest interruptibility state (§25.4.2).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Interruptibility: u32 {
        const BLOCKING_BY_STI = 1 << 0;
        const BLOCKING_BY_MOV_SS = 1 << 1;
        const BLOCKING_BY_SMI = 1 << 2;
        const BLOCKING_BY_NMI = 1 << 3;
    }
}

/// Segment access rights as the VMCS holds them (§25.4.1): the descriptor's attribute bits,
/// with bit 16 meaning "unusable".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessRights(pub u32);

impl AccessRights {
    pub const UNUSABLE: AccessRights = AccessRights(1 << 16);
    const DPL_SHIFT: u32 = 5;
    const LONG_MODE: u32 = 1 << 13;

    pub fn dpl(self) -> u8 {
        ((self.0 >> Self::DPL_SHIFT) & 3) as u8
    }

    pub fn long_mode(self) -> bool {
        self.0 & Self::LONG_MODE != 0
    }
}

/// Interruption-information fields: VM-entry injection, VM-exit interruption information and
/// IDT-vectoring information share this layout (§25.8.3, §25.9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInfo(pub u32);

/// The type of an event in [`EventInfo`] (bits 10:8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ExternalInterrupt,
    Nmi,
    HardwareException,
    SoftwareInterrupt,
    PrivilegedSoftwareException,
    SoftwareException,
    Other(u8),
}

impl EventInfo {
    const VALID: u32 = 1 << 31;
    const DELIVER_ERROR_CODE: u32 = 1 << 11;
    /// Bits meaningful for injection: vector, type, error-code flag (and valid).
    const INJECTABLE: u32 = 0x0fff;

    pub fn external_interrupt(vector: u8) -> Self {
        EventInfo(Self::VALID | u32::from(vector))
    }

    pub fn hardware_exception(vector: u8, deliver_error_code: bool) -> Self {
        let flag = if deliver_error_code { Self::DELIVER_ERROR_CODE } else { 0 };
        EventInfo(Self::VALID | (3 << 8) | flag | u32::from(vector))
    }

    pub fn is_valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    pub fn has_error_code(self) -> bool {
        self.0 & Self::DELIVER_ERROR_CODE != 0
    }

    pub fn event_type(self) -> EventType {
        match ((self.0 >> 8) & 7) as u8 {
            0 => EventType::ExternalInterrupt,
            2 => EventType::Nmi,
            3 => EventType::HardwareException,
            4 => EventType::SoftwareInterrupt,
            5 => EventType::PrivilegedSoftwareException,
            6 => EventType::SoftwareException,
            other => EventType::Other(other),
        }
    }

    /// The same event as a VM-entry injection (reserved bits of the exit-side layout, such
    /// as "NMI unblocking due to IRET", cleared).
    pub fn for_reinjection(self) -> Self {
        EventInfo(Self::VALID | (self.0 & Self::INJECTABLE))
    }

    /// Software interrupts and exceptions need the instruction length to be re-delivered.
    pub fn needs_instruction_length(self) -> bool {
        matches!(
            self.event_type(),
            EventType::SoftwareInterrupt | EventType::PrivilegedSoftwareException | EventType::SoftwareException
        )
    }
}

/// Whether exception `vector` pushes an error code (and so may be injected with one).
pub fn exception_has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

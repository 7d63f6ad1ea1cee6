//! VM-exit reasons (Intel SDM Vol. 3C, Appendix C) and their translation into the
//! vendor-neutral [`VmExit`]. Every basic exit reason has a name; the ones the backend
//! handles map onto `VmExit`, a few are handled inside the backend ([`Handling`]), and all
//! others become an explicit `VmExit::Unhandled` that names them.

use super::vmcs::{self, EventInfo, EventType, Field, Vmcs32, Vmcs64, VmcsNatural};
use crate::virt::{GuestRegs, IoAccess, VmExit};

/// Bit 31 of the exit-reason field: the VM entry failed (the guest never ran).
pub const ENTRY_FAILURE: u32 = 1 << 31;

/// Basic exit reasons (bits 15:0 of the exit-reason field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    ExceptionOrNmi,
    ExternalInterrupt,
    TripleFault,
    InitSignal,
    StartupIpi,
    IoSmi,
    OtherSmi,
    InterruptWindow,
    NmiWindow,
    TaskSwitch,
    Cpuid,
    Getsec,
    Hlt,
    Invd,
    Invlpg,
    Rdpmc,
    Rdtsc,
    Rsm,
    Vmcall,
    Vmclear,
    Vmlaunch,
    Vmptrld,
    Vmptrst,
    Vmread,
    Vmresume,
    Vmwrite,
    Vmxoff,
    Vmxon,
    ControlRegisterAccess,
    MovDr,
    IoInstruction,
    Rdmsr,
    Wrmsr,
    EntryFailureGuestState,
    EntryFailureMsrLoading,
    Mwait,
    MonitorTrapFlag,
    Monitor,
    Pause,
    EntryFailureMachineCheck,
    TprBelowThreshold,
    ApicAccess,
    VirtualizedEoi,
    GdtrIdtrAccess,
    LdtrTrAccess,
    EptViolation,
    EptMisconfiguration,
    Invept,
    Rdtscp,
    PreemptionTimer,
    Invvpid,
    Wbinvd,
    Xsetbv,
    ApicWrite,
    Rdrand,
    Invpcid,
    Vmfunc,
    Encls,
    Rdseed,
    PmlFull,
    Xsaves,
    Xrstors,
    Pconfig,
    SppEvent,
    Umwait,
    Tpause,
    Loadiwkey,
    Enclv,
    EnqcmdPasidFailure,
    EnqcmdsPasidFailure,
    BusLock,
    InstructionTimeout,
    Seamcall,
    Tdcall,
    /// A number this table does not know.
    Unknown(u16),
}

impl ExitReason {
    pub fn from_basic(basic: u16) -> Self {
        use ExitReason::*;
        match basic {
            0 => ExceptionOrNmi,
            1 => ExternalInterrupt,
            2 => TripleFault,
            3 => InitSignal,
            4 => StartupIpi,
            5 => IoSmi,
            6 => OtherSmi,
            7 => InterruptWindow,
            8 => NmiWindow,
            9 => TaskSwitch,
            10 => Cpuid,
            11 => Getsec,
            12 => Hlt,
            13 => Invd,
            14 => Invlpg,
            15 => Rdpmc,
            16 => Rdtsc,
            17 => Rsm,
            18 => Vmcall,
            19 => Vmclear,
            20 => Vmlaunch,
            21 => Vmptrld,
            22 => Vmptrst,
            23 => Vmread,
            24 => Vmresume,
            25 => Vmwrite,
            26 => Vmxoff,
            27 => Vmxon,
            28 => ControlRegisterAccess,
            29 => MovDr,
            30 => IoInstruction,
            31 => Rdmsr,
            32 => Wrmsr,
            33 => EntryFailureGuestState,
            34 => EntryFailureMsrLoading,
            36 => Mwait,
            37 => MonitorTrapFlag,
            39 => Monitor,
            40 => Pause,
            41 => EntryFailureMachineCheck,
            43 => TprBelowThreshold,
            44 => ApicAccess,
            45 => VirtualizedEoi,
            46 => GdtrIdtrAccess,
            47 => LdtrTrAccess,
            48 => EptViolation,
            49 => EptMisconfiguration,
            50 => Invept,
            51 => Rdtscp,
            52 => PreemptionTimer,
            53 => Invvpid,
            54 => Wbinvd,
            55 => Xsetbv,
            56 => ApicWrite,
            57 => Rdrand,
            58 => Invpcid,
            59 => Vmfunc,
            60 => Encls,
            61 => Rdseed,
            62 => PmlFull,
            63 => Xsaves,
            64 => Xrstors,
            65 => Pconfig,
            66 => SppEvent,
            67 => Umwait,
            68 => Tpause,
            69 => Loadiwkey,
            70 => Enclv,
            72 => EnqcmdPasidFailure,
            73 => EnqcmdsPasidFailure,
            74 => BusLock,
            75 => InstructionTimeout,
            76 => Seamcall,
            77 => Tdcall,
            other => Unknown(other),
        }
    }

    /// The SDM's name for the exit reason.
    pub fn name(self) -> &'static str {
        use ExitReason::*;
        match self {
            ExceptionOrNmi => "exception or NMI",
            ExternalInterrupt => "external interrupt",
            TripleFault => "triple fault",
            InitSignal => "INIT signal",
            StartupIpi => "start-up IPI",
            IoSmi => "I/O SMI",
            OtherSmi => "other SMI",
            InterruptWindow => "interrupt window",
            NmiWindow => "NMI window",
            TaskSwitch => "task switch",
            Cpuid => "CPUID",
            Getsec => "GETSEC",
            Hlt => "HLT",
            Invd => "INVD",
            Invlpg => "INVLPG",
            Rdpmc => "RDPMC",
            Rdtsc => "RDTSC",
            Rsm => "RSM",
            Vmcall => "VMCALL",
            Vmclear => "VMCLEAR",
            Vmlaunch => "VMLAUNCH",
            Vmptrld => "VMPTRLD",
            Vmptrst => "VMPTRST",
            Vmread => "VMREAD",
            Vmresume => "VMRESUME",
            Vmwrite => "VMWRITE",
            Vmxoff => "VMXOFF",
            Vmxon => "VMXON",
            ControlRegisterAccess => "control-register access",
            MovDr => "MOV DR",
            IoInstruction => "I/O instruction",
            Rdmsr => "RDMSR",
            Wrmsr => "WRMSR",
            EntryFailureGuestState => "VM-entry failure: invalid guest state",
            EntryFailureMsrLoading => "VM-entry failure: MSR loading",
            Mwait => "MWAIT",
            MonitorTrapFlag => "monitor trap flag",
            Monitor => "MONITOR",
            Pause => "PAUSE",
            EntryFailureMachineCheck => "VM-entry failure: machine-check event",
            TprBelowThreshold => "TPR below threshold",
            ApicAccess => "APIC access",
            VirtualizedEoi => "virtualized EOI",
            GdtrIdtrAccess => "access to GDTR or IDTR",
            LdtrTrAccess => "access to LDTR or TR",
            EptViolation => "EPT violation",
            EptMisconfiguration => "EPT misconfiguration",
            Invept => "INVEPT",
            Rdtscp => "RDTSCP",
            PreemptionTimer => "VMX-preemption timer expired",
            Invvpid => "INVVPID",
            Wbinvd => "WBINVD or WBNOINVD",
            Xsetbv => "XSETBV",
            ApicWrite => "APIC write",
            Rdrand => "RDRAND",
            Invpcid => "INVPCID",
            Vmfunc => "VMFUNC",
            Encls => "ENCLS",
            Rdseed => "RDSEED",
            PmlFull => "page-modification log full",
            Xsaves => "XSAVES",
            Xrstors => "XRSTORS",
            Pconfig => "PCONFIG",
            SppEvent => "SPP-related event",
            Umwait => "UMWAIT",
            Tpause => "TPAUSE",
            Loadiwkey => "LOADIWKEY",
            Enclv => "ENCLV",
            EnqcmdPasidFailure => "ENQCMD PASID translation failure",
            EnqcmdsPasidFailure => "ENQCMDS PASID translation failure",
            BusLock => "bus lock",
            InstructionTimeout => "instruction timeout",
            Seamcall => "SEAMCALL",
            Tdcall => "TDCALL",
            Unknown(_) => "unknown exit reason",
        }
    }
}

/// Exit qualification of an I/O instruction (SDM Vol. 3C Table 28-5).
mod io {
    pub const SIZE_MASK: u64 = 0x7;
    pub const IN: u64 = 1 << 3;
    pub const STRING: u64 = 1 << 4;
    pub const REP: u64 = 1 << 5;
    pub const PORT_SHIFT: u32 = 16;
}

/// Exit qualification of an EPT violation (Table 28-7).
mod ept_violation {
    pub const WRITE: u64 = 1 << 1;
    pub const FETCH: u64 = 1 << 2;
}

/// A control-register access (exit qualification, Table 28-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrAccess(pub u64);

/// What a control-register access does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrAccessKind {
    MovToCr { cr: u8, gpr: u8 },
    MovFromCr { cr: u8, gpr: u8 },
    Clts,
    Lmsw { source: u16 },
}

impl CrAccess {
    pub fn kind(self) -> CrAccessKind {
        let cr = (self.0 & 0xf) as u8;
        let gpr = ((self.0 >> 8) & 0xf) as u8;
        match (self.0 >> 4) & 3 {
            0 => CrAccessKind::MovToCr { cr, gpr },
            1 => CrAccessKind::MovFromCr { cr, gpr },
            2 => CrAccessKind::Clts,
            _ => CrAccessKind::Lmsw { source: (self.0 >> 16) as u16 },
        }
    }
}

/// What the backend does with an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Hand it to the generic code.
    Exit(VmExit),
    /// Emulate a control-register access and re-enter.
    ControlRegister(CrAccess),
    /// RDMSR/WRMSR of CSTAR, which the backend emulates.
    Cstar { write: bool },
    /// A host NMI arrived while the guest ran: run the host's NMI handler.
    HostNmi,
}

/// Reads a field of the current VMCS, which must be readable right after an exit.
pub fn field<F: Field>(f: F) -> F::Value {
    vmcs::read(f).unwrap_or_else(|e| panic!("VMREAD {f:?} after a VM exit: {e}"))
}

fn unhandled(reason: ExitReason, basic: u16, qualification: u64, extra: u64) -> Handling {
    Handling::Exit(VmExit::Unhandled {
        code: u64::from(basic),
        info1: qualification,
        info2: extra,
        what: reason.name(),
    })
}

/// Translates the exit that just happened (`basic` = bits 15:0 of the exit reason; entry
/// failures are handled by the caller) into what to do with it.
pub fn decode(basic: u16, regs: &GuestRegs) -> Handling {
    let reason = ExitReason::from_basic(basic);
    let qualification = || field(VmcsNatural::ExitQualification);
    let next_rip = || regs.rip + u64::from(field(Vmcs32::ExitInstructionLength));
    match reason {
        ExitReason::ExternalInterrupt | ExitReason::InitSignal | ExitReason::IoSmi | ExitReason::OtherSmi => {
            Handling::Exit(VmExit::ExternalInterrupt)
        }
        ExitReason::ExceptionOrNmi => {
            let info = EventInfo(field(Vmcs32::ExitInterruptionInfo));
            if info.event_type() == EventType::Nmi {
                Handling::HostNmi
            } else {
                Handling::Exit(VmExit::Unhandled {
                    code: u64::from(basic),
                    info1: u64::from(info.0),
                    info2: u64::from(field(Vmcs32::ExitInterruptionErrorCode)),
                    what: "intercepted exception",
                })
            }
        }
        // The backend's preemption timer (one host tick): like an interrupt, a chance for
        // the generic loop to end the slice.
        ExitReason::PreemptionTimer => Handling::Exit(VmExit::ExternalInterrupt),
        ExitReason::InterruptWindow => Handling::Exit(VmExit::InterruptWindow),
        ExitReason::TripleFault => Handling::Exit(VmExit::TripleFault),
        ExitReason::Cpuid => Handling::Exit(VmExit::Cpuid),
        ExitReason::Hlt => Handling::Exit(VmExit::Hlt),
        ExitReason::Vmcall => Handling::Exit(VmExit::Hypercall),
        ExitReason::ControlRegisterAccess => Handling::ControlRegister(CrAccess(qualification())),
        ExitReason::Rdmsr | ExitReason::Wrmsr if regs.rcx as u32 == super::msr::IA32_CSTAR => {
            Handling::Cstar { write: reason == ExitReason::Wrmsr }
        }
        ExitReason::Rdmsr => Handling::Exit(VmExit::MsrRead { msr: regs.rcx as u32 }),
        ExitReason::Wrmsr => Handling::Exit(VmExit::MsrWrite {
            msr: regs.rcx as u32,
            value: (regs.rdx << 32) | (regs.rax & 0xffff_ffff),
        }),
        ExitReason::IoInstruction => {
            let q = qualification();
            let size = match q & io::SIZE_MASK {
                0 => 1,
                1 => 2,
                3 => 4,
                _ => 0, // reserved encodings: the generic handler rejects size 0
            };
            Handling::Exit(VmExit::Io(IoAccess {
                port: (q >> io::PORT_SHIFT) as u16,
                size,
                write: q & io::IN == 0,
                string: q & io::STRING != 0,
                rep: q & io::REP != 0,
                next_rip: next_rip(),
            }))
        }
        ExitReason::EptViolation => {
            let q = qualification();
            Handling::Exit(VmExit::NestedPageFault {
                gpa: field(Vmcs64::GuestPhysicalAddress),
                write: q & ept_violation::WRITE != 0,
                fetch: q & ept_violation::FETCH != 0,
            })
        }
        ExitReason::EptMisconfiguration => Handling::Exit(VmExit::Unhandled {
            code: u64::from(basic),
            info1: field(Vmcs64::GuestPhysicalAddress),
            info2: 0,
            what: "EPT misconfiguration (an invalid nested page-table entry)",
        }),
        // Entry failures carry bit 31 and are reported before decoding; should one arrive
        // here, it is as fatal for the guest as any other unhandled exit.
        other => unhandled(other, basic, qualification(), field(VmcsNatural::GuestLinearAddress)),
    }
}

//! #VMEXIT codes (APM Vol. 2, Appendix C) and their translation into the vendor-neutral
//! [`VmExit`].

use super::vmcb::ControlArea;
use crate::virt::{GuestRegs, IoAccess, VmExit};

/// The exit codes the hypervisor distinguishes; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Exception(u8),
    Intr,
    Nmi,
    Smi,
    Init,
    Vintr,
    Cpuid,
    Hlt,
    Ioio,
    Msr,
    Shutdown,
    Vmmcall,
    NestedPageFault,
    Invalid,
    Other(u64),
}

impl From<u64> for ExitCode {
    fn from(code: u64) -> Self {
        match code {
            0x40..=0x5f => ExitCode::Exception((code - 0x40) as u8),
            0x60 => ExitCode::Intr,
            0x61 => ExitCode::Nmi,
            0x62 => ExitCode::Smi,
            0x63 => ExitCode::Init,
            0x64 => ExitCode::Vintr,
            0x72 => ExitCode::Cpuid,
            0x78 => ExitCode::Hlt,
            0x7b => ExitCode::Ioio,
            0x7c => ExitCode::Msr,
            0x7f => ExitCode::Shutdown,
            0x81 => ExitCode::Vmmcall,
            0x400 => ExitCode::NestedPageFault,
            u64::MAX => ExitCode::Invalid,
            other => ExitCode::Other(other),
        }
    }
}

/// EXITINFO1 of an IOIO intercept (APM Vol. 2 §15.10.2).
mod ioio {
    pub const IN: u64 = 1 << 0;
    pub const STRING: u64 = 1 << 2;
    pub const REP: u64 = 1 << 3;
    pub const SIZE8: u64 = 1 << 4;
    pub const SIZE16: u64 = 1 << 5;
    pub const SIZE32: u64 = 1 << 6;
}

/// EXITINFO1 of a nested page fault: the page-fault error code.
mod npf {
    pub const WRITE: u64 = 1 << 1;
    pub const FETCH: u64 = 1 << 4;
}

pub fn decode(c: &ControlArea, regs: &GuestRegs) -> VmExit {
    match ExitCode::from(c.exit_code) {
        ExitCode::Intr | ExitCode::Nmi | ExitCode::Smi | ExitCode::Init => VmExit::ExternalInterrupt,
        ExitCode::Vintr => VmExit::InterruptWindow,
        ExitCode::Cpuid => VmExit::Cpuid,
        ExitCode::Hlt => VmExit::Hlt,
        ExitCode::Vmmcall => VmExit::Hypercall,
        ExitCode::Msr if c.exit_info1 == 0 => VmExit::MsrRead { msr: regs.rcx as u32 },
        ExitCode::Msr => VmExit::MsrWrite { msr: regs.rcx as u32, value: (regs.rdx << 32) | (regs.rax & 0xffff_ffff) },
        ExitCode::Ioio => {
            let info = c.exit_info1;
            let size = if info & ioio::SIZE32 != 0 {
                4
            } else if info & ioio::SIZE16 != 0 {
                2
            } else if info & ioio::SIZE8 != 0 {
                1
            } else {
                0
            };
            VmExit::Io(IoAccess {
                port: (info >> 16) as u16,
                size,
                write: info & ioio::IN == 0,
                string: info & ioio::STRING != 0,
                rep: info & ioio::REP != 0,
                next_rip: c.exit_info2,
            })
        }
        ExitCode::NestedPageFault => VmExit::NestedPageFault {
            gpa: c.exit_info2,
            write: c.exit_info1 & npf::WRITE != 0,
            fetch: c.exit_info1 & npf::FETCH != 0,
        },
        ExitCode::Shutdown => VmExit::TripleFault,
        ExitCode::Invalid => VmExit::EntryFailed { reason: "VMRUN refused the VMCB (VMEXIT_INVALID)" },
        ExitCode::Exception(_) => VmExit::Unhandled {
            code: c.exit_code,
            info1: c.exit_info1,
            info2: c.exit_info2,
            what: "intercepted exception",
        },
        ExitCode::Other(code) => VmExit::Unhandled {
            code,
            info1: c.exit_info1,
            info2: c.exit_info2,
            what: "intercepted instruction or event",
        },
    }
}

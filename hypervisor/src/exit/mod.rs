//! Generic handling of VM exits, one module per kind. A handler either finishes the
//! instruction (advancing RIP by its length, which it knows: QEMU's SVM has no NRIP-save)
//! or injects the fault the instruction raises, or ends the domain. Nothing a guest does
//! here can take the host down.

mod cpuid;
mod io;
mod mmio;
mod msr;

use crate::hypercall;
use crate::vcpu::{Exec, Vcpu};
use crate::virt::{VmExit, RFLAGS_IF};
use alloc::format;

/// What the vCPU loop does after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Sleep until an event (HLT, SCHEDOP_block).
    Block,
    Yield,
    /// The vCPU is down for good.
    Down,
    /// The domain has ended (shutdown or crash).
    Stop,
}

/// Exceptions a handler may inject.
pub const GP_FAULT: u8 = 13;

/// Instruction lengths of the intercepted instructions (identical on SVM and VMX).
const CPUID_LEN: u64 = 2;
const HLT_LEN: u64 = 1;
const MSR_LEN: u64 = 2;
/// VMCALL and VMMCALL are both 3 bytes.
pub const HYPERCALL_LEN: u64 = 3;

pub fn handle(vcpu: &Vcpu, exec: &mut Exec, exit: VmExit) -> Action {
    match exit {
        VmExit::ExternalInterrupt => Action::Continue,
        VmExit::InterruptWindow => {
            exec.hw.set_interrupt_window_exiting(false);
            Action::Continue
        }
        VmExit::Cpuid => {
            cpuid::emulate(vcpu, &mut exec.regs);
            exec.regs.rip += CPUID_LEN;
            Action::Continue
        }
        VmExit::Hlt => {
            exec.regs.rip += HLT_LEN;
            if exec.regs.rflags & RFLAGS_IF != 0 {
                Action::Block
            } else {
                // Xen takes a vCPU that halts with interrupts off down: nothing can wake it.
                log::info!("d{}v{}: HLT with interrupts disabled; vCPU down", vcpu.domain.id, vcpu.id);
                Action::Down
            }
        }
        VmExit::Hypercall => {
            exec.regs.rip += HYPERCALL_LEN;
            hypercall::dispatch(vcpu, exec)
        }
        VmExit::MsrRead { msr } => {
            match msr::read(vcpu, exec, msr) {
                Some(value) => {
                    exec.regs.rax = value & 0xffff_ffff;
                    exec.regs.rdx = value >> 32;
                    exec.regs.rip += MSR_LEN;
                }
                None => exec.hw.inject_exception(GP_FAULT, Some(0)),
            }
            Action::Continue
        }
        VmExit::MsrWrite { msr, value } => {
            if msr::write(vcpu, exec, msr, value) {
                exec.regs.rip += MSR_LEN;
            } else {
                exec.hw.inject_exception(GP_FAULT, Some(0));
            }
            Action::Continue
        }
        VmExit::Io(access) => io::emulate(vcpu, exec, access),
        VmExit::NestedPageFault { gpa, fetch: false, .. } if gpa & !0xfff == mmio::LAPIC_PAGE => {
            mmio::emulate_lapic(vcpu, exec, gpa)
        }
        VmExit::NestedPageFault { gpa, write, fetch } => {
            let access = if fetch {
                "instruction fetch from"
            } else if write {
                "write to"
            } else {
                "read from"
            };
            vcpu.domain.crash(
                "memory",
                format!(
                    "{access} guest-physical {gpa:#x}, outside its {} MiB of RAM (RIP {:#x}, RSP {:#x}, CR3 {:#x})",
                    vcpu.domain.ram.size() >> 20,
                    exec.regs.rip,
                    exec.regs.rsp,
                    exec.hw.paging_state().cr3
                ),
            );
            Action::Stop
        }
        VmExit::TripleFault => {
            let paging = exec.hw.paging_state();
            let walk = |gva| crate::guest_access::describe_walk(&vcpu.domain.ram, &paging, gva);
            vcpu.domain.crash(
                "triple-fault",
                format!(
                    "vCPU {} triple-faulted at RIP {:#x} (CR3 {:#x}); walks: RIP {}; RSP {}",
                    vcpu.id,
                    exec.regs.rip,
                    paging.cr3,
                    walk(exec.regs.rip),
                    walk(exec.regs.rsp)
                ),
            );
            Action::Stop
        }
        VmExit::EntryFailed { reason } => {
            vcpu.domain.crash("entry-failed", format!("vCPU {}: {reason}", vcpu.id));
            Action::Stop
        }
        VmExit::Unhandled { code, info1, info2, what } => {
            log::error!(
                "d{}v{}: unhandled exit {code:#x} ({what}), info {info1:#x}/{info2:#x}, RIP {:#x}",
                vcpu.domain.id,
                vcpu.id,
                exec.regs.rip
            );
            vcpu.domain.crash("unhandled-exit", format!("exit code {code:#x} ({what}) at RIP {:#x}", exec.regs.rip));
            Action::Stop
        }
    }
}

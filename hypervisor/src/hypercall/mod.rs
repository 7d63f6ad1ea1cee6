//! Xen hypercalls: the entry (numbers, calling convention, privilege check) and one module
//! per family. Numbers, arguments and error codes are Xen's (`public/xen.h`, `errno.h`).
//!
//! 64-bit guests pass the arguments in RDI, RSI, RDX, R10, R8; 32-bit guests in EBX, ECX,
//! EDX, ESI, EDI. The result goes to RAX: 0 or a positive value, or a negative errno.

mod console;
mod hvm;
mod sched;

use crate::exit::Action;
use crate::vcpu::{Exec, Vcpu};
use alloc::vec::Vec;

/// Xen's errno values (`xen/include/public/errno.h`).
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const EFAULT: i64 = 14;
    pub const EINVAL: i64 = 22;
    pub const ENOSYS: i64 = 38;
}

/// Hypercall numbers (`public/xen.h`).
mod nr {
    pub const SET_TIMER_OP: u64 = 15;
    pub const CONSOLE_IO: u64 = 18;
    pub const IRET: u64 = 23;
    pub const SCHED_OP: u64 = 29;
    pub const HVM_OP: u64 = 34;
}

/// A hypercall's outcome: the value for RAX and what the vCPU does next.
pub struct Outcome {
    pub result: i64,
    pub action: Action,
}

impl Outcome {
    pub fn done(result: i64) -> Self {
        Outcome { result, action: Action::Continue }
    }

    pub fn error(errno: i64) -> Self {
        Outcome::done(-errno)
    }
}

/// The hypercall's arguments in the guest's calling convention.
fn arguments(exec: &Exec) -> [u64; 5] {
    let r = &exec.regs;
    if exec.hw.in_64bit_mode() {
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8]
    } else {
        [r.rbx, r.rcx, r.rdx, r.rsi, r.rdi].map(|v| v & 0xffff_ffff)
    }
}

pub fn dispatch(vcpu: &Vcpu, exec: &mut Exec) -> Action {
    let number = exec.regs.rax;
    // Hypercalls are for the guest kernel only, as on Xen.
    let outcome = if exec.hw.cpl() != 0 {
        Outcome::error(errno::EPERM)
    } else {
        let args = arguments(exec);
        match number {
            nr::SET_TIMER_OP => {
                vcpu.set_timer(args[0]);
                Outcome::done(0)
            }
            nr::CONSOLE_IO => console::console_io(vcpu, exec, args),
            nr::SCHED_OP => sched::sched_op(vcpu, exec, args),
            nr::HVM_OP => hvm::hvm_op(vcpu, exec, args),
            _ => {
                log::debug!("d{}v{}: hypercall {number} not implemented", vcpu.domain.id, vcpu.id);
                Outcome::error(errno::ENOSYS)
            }
        }
    };
    exec.regs.rax = outcome.result as u64;
    outcome.action
}

/// Writes Xen's hypercall page at guest-physical `value & !0xfff` (the guest wrote `value`
/// to the hypercall-page MSR): 32-byte stubs `mov eax, N; vmmcall|vmcall; ret`, with `ud2`
/// for the PV-only `iret`. Returns false (#GP) for a bad page number or address.
pub fn install_page(vcpu: &Vcpu, exec: &mut Exec, value: u64) -> bool {
    const STUB: usize = 32;
    if value & 0xfff != 0 {
        return false; // only page 0 exists
    }
    let instruction = exec.hw.hypercall_instruction();
    let mut page = Vec::with_capacity(4096);
    for number in 0..(4096 / STUB) as u32 {
        let mut stub = [0xccu8; STUB];
        if u64::from(number) == nr::IRET {
            stub[..2].copy_from_slice(&[0x0f, 0x0b]);
        } else {
            stub[0] = 0xb8;
            stub[1..5].copy_from_slice(&number.to_le_bytes());
            stub[5..8].copy_from_slice(&instruction);
            stub[8] = 0xc3;
        }
        page.extend_from_slice(&stub);
    }
    let ok = vcpu.domain.ram.write(value & !0xfff, &page).is_ok();
    if ok {
        log::debug!("d{}v{}: hypercall page at {:#x}", vcpu.domain.id, vcpu.id, value);
    }
    ok
}

//! Xen hypercalls: the entry (numbers, calling convention, privilege check) and one module
//! per family. Numbers, arguments and error codes are Xen's (`public/xen.h`, `errno.h`).
//!
//! 64-bit guests pass the arguments in RDI, RSI, RDX, R10, R8; 32-bit guests in EBX, ECX,
//! EDX, ESI, EDI. The result goes to RAX: 0 or a positive value, or a negative errno.

mod console;
pub use console::poll_serial_input;
mod domctl;
mod event_channel;
mod grant_table;
mod hvm;
mod memory;
mod sched;
mod vcpu;
mod vcpu_context;
mod version;

use crate::exit::Action;
use crate::vcpu::{Exec, Vcpu};
use alloc::vec::Vec;
use xen_abi::XenStruct;

/// Xen's errno values, as hypercalls return them (negated).
pub use xen_abi::errno;

/// Hypercall numbers (`public/xen.h`).
mod nr {
    pub use xen_abi::xen::{
        HYPERVISOR_CONSOLE_IO as CONSOLE_IO, HYPERVISOR_DOMCTL as DOMCTL,
        HYPERVISOR_EVENT_CHANNEL_OP as EVENT_CHANNEL_OP, HYPERVISOR_GRANT_TABLE_OP as GRANT_TABLE_OP,
        HYPERVISOR_HVM_OP as HVM_OP, HYPERVISOR_IRET as IRET, HYPERVISOR_MEMORY_OP as MEMORY_OP,
        HYPERVISOR_PHYSDEV_OP as PHYSDEV_OP, HYPERVISOR_PLATFORM_OP as PLATFORM_OP, HYPERVISOR_SCHED_OP as SCHED_OP,
        HYPERVISOR_SET_TIMER_OP as SET_TIMER_OP, HYPERVISOR_SYSCTL as SYSCTL, HYPERVISOR_VCPU_OP as VCPU_OP,
        HYPERVISOR_VM_ASSIST as VM_ASSIST, HYPERVISOR_XEN_VERSION as XEN_VERSION,
    };
}

/// Copies a Xen argument structure in from guest-virtual `gva` (-EFAULT if unreadable).
pub fn read_struct<T: XenStruct>(vcpu: &Vcpu, exec: &Exec, gva: u64) -> Result<T, i64> {
    let mut buf = [0u8; MAX_STRUCT];
    let bytes = &mut buf[..T::SIZE];
    crate::guest_access::copy_from_guest(&vcpu.domain.ram, exec, gva, bytes).map_err(|_| errno::EFAULT)?;
    T::read_from(bytes).map_err(|_| errno::EFAULT)
}

/// Copies a Xen argument structure back out to guest-virtual `gva` (-EFAULT if unwritable).
pub fn write_struct<T: XenStruct>(vcpu: &Vcpu, exec: &Exec, gva: u64, value: &T) -> Result<(), i64> {
    let mut buf = [0u8; MAX_STRUCT];
    let bytes = &mut buf[..T::SIZE];
    value.write_to(bytes).map_err(|_| errno::EFAULT)?;
    write_arg(vcpu, exec, gva, bytes)
}

/// The largest argument structure copied whole (vcpu_hvm_context is 128 bytes).
const MAX_STRUCT: usize = 256;

/// Reads a `N`-byte argument structure from guest-virtual `gva` (-EFAULT if unreadable).
pub fn read_arg<const N: usize>(vcpu: &Vcpu, exec: &Exec, gva: u64) -> Result<[u8; N], i64> {
    let mut buf = [0u8; N];
    crate::guest_access::copy_from_guest(&vcpu.domain.ram, exec, gva, &mut buf).map_err(|_| errno::EFAULT)?;
    Ok(buf)
}

/// Writes `bytes` back to guest-virtual `gva` (-EFAULT if unwritable).
pub fn write_arg(vcpu: &Vcpu, exec: &Exec, gva: u64, bytes: &[u8]) -> Result<(), i64> {
    crate::guest_access::copy_to_guest(&vcpu.domain.ram, exec, gva, bytes).map_err(|_| errno::EFAULT)
}

pub fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Turns a `Result` of a hypercall body into its outcome.
impl From<Result<i64, i64>> for Outcome {
    fn from(r: Result<i64, i64>) -> Self {
        match r {
            Ok(v) => Outcome::done(v),
            Err(e) => Outcome::error(e),
        }
    }
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

/// Xen's internal `ERESTART`: the hypercall did part of its work and wants to be called
/// again (a continuation). The handler has already put the progress into the guest's first
/// argument ([`set_first_argument`]); the guest re-executes the same VMCALL, so a long
/// operation is done in pieces between which the vCPU can be preempted.
pub const ERESTART: i64 = 85;

/// Sets the guest's first hypercall argument (RDI, or EBX for a 32-bit guest), for a
/// continuation.
pub fn set_first_argument(exec: &mut Exec, value: u64) {
    if exec.hw.in_64bit_mode() {
        exec.regs.rdi = value;
    } else {
        exec.regs.rbx = value & 0xffff_ffff;
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
        let mut args = arguments(exec);
        // Families whose command is a C `int`/`unsigned int` see only its low 32 bits
        // (`xen/include/hypercall-defs.c`); memory_op and hvm_op take an `unsigned long`,
        // domctl and sysctl a pointer.
        if !matches!(number, nr::MEMORY_OP | nr::HVM_OP | nr::SET_TIMER_OP | nr::DOMCTL | nr::SYSCTL) {
            args[0] &= 0xffff_ffff;
        }
        // vcpu_op's vCPU id, grant_table_op's count and console_io's count are `unsigned int`.
        if matches!(number, nr::VCPU_OP | nr::GRANT_TABLE_OP | nr::CONSOLE_IO | nr::VM_ASSIST) {
            args[1] &= 0xffff_ffff;
            if number == nr::GRANT_TABLE_OP {
                args[2] &= 0xffff_ffff;
            }
        }
        match number {
            nr::SET_TIMER_OP => {
                vcpu.set_singleshot(args[0]);
                Outcome::done(0)
            }
            nr::CONSOLE_IO => console::console_io(vcpu, exec, args),
            nr::SCHED_OP => sched::sched_op(vcpu, exec, args),
            nr::HVM_OP => hvm::hvm_op(vcpu, exec, args),
            nr::XEN_VERSION => version::xen_version(vcpu, exec, args).into(),
            nr::MEMORY_OP => memory::memory_op(vcpu, exec, args).into(),
            nr::VCPU_OP => vcpu::vcpu_op(vcpu, exec, args),
            nr::EVENT_CHANNEL_OP => event_channel::event_channel_op(vcpu, exec, args).into(),
            nr::GRANT_TABLE_OP => grant_table::grant_table_op(vcpu, exec, args).into(),
            nr::VM_ASSIST => vm_assist(vcpu, args).into(),
            nr::DOMCTL => domctl::domctl(vcpu, exec, args[0]).into(),
            nr::SYSCTL => domctl::sysctl(vcpu, exec, args[0]).into(),
            // Physical devices and the platform are the privileged domain's business.
            nr::PHYSDEV_OP => Outcome::error(errno::ENOSYS),
            nr::PLATFORM_OP => platform_op(vcpu, exec, args[0]).into(),
            _ => {
                log::debug!("d{}v{}: hypercall {number} not implemented", vcpu.domain.id, vcpu.id);
                Outcome::error(errno::ENOSYS)
            }
        }
    };
    if outcome.result == -ERESTART {
        // RAX still holds the hypercall number: the guest's next instruction is the same call.
        exec.regs.rip -= crate::exit::HYPERCALL_LEN;
    } else {
        exec.regs.rax = outcome.result as u64;
    }
    outcome.action
}

/// `platform_op` is the privileged domain's: Xen still reads the argument (-EFAULT) and
/// checks its interface version (-EACCES) before refusing a domU.
fn platform_op(vcpu: &Vcpu, exec: &Exec, arg: u64) -> Result<i64, i64> {
    let header: [u8; 8] = read_arg(vcpu, exec, arg)?;
    if u32_at(&header, 4) != xen_abi::platform::XENPF_INTERFACE_VERSION {
        return Err(errno::EACCES);
    }
    Err(errno::EPERM)
}

/// `vm_assist`: HVM guests may only toggle the run-state update flag.
fn vm_assist(vcpu: &Vcpu, args: [u64; 5]) -> Result<i64, i64> {
    const VMASST_CMD_ENABLE: u64 = 0;
    const VMASST_CMD_DISABLE: u64 = 1;
    let kind = args[1];
    if kind != u64::from(crate::vcpu::VMASST_TYPE_RUNSTATE_UPDATE_FLAG) {
        return Err(errno::EINVAL);
    }
    let bit = 1u64 << kind;
    match args[0] {
        VMASST_CMD_ENABLE => vcpu.domain.vm_assist.fetch_or(bit, core::sync::atomic::Ordering::AcqRel),
        VMASST_CMD_DISABLE => vcpu.domain.vm_assist.fetch_and(!bit, core::sync::atomic::Ordering::AcqRel),
        _ => return Err(errno::ENOSYS),
    };
    Ok(0)
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

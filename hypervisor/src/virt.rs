//! The vendor-neutral virtualization interface: what generic code (domains, scheduler,
//! exit handlers, hypercalls) may know about a hardware vCPU. The AMD-V backend lives in
//! `arch::x86_64::svm`; an Intel VT-x backend plugs in behind the same trait.

use crate::arch::x86_64::svm;
use alloc::boxed::Box;
use spin::Once;
use x86_64::PhysAddr;

/// Guest general-purpose registers plus RIP and RFLAGS. Backends keep whatever their
/// hardware holds elsewhere (the VMCB's RAX/RSP/RIP/RFLAGS) in sync with this copy.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct GuestRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

pub const RFLAGS_IF: u64 = 1 << 9;

/// A port I/O instruction the guest executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoAccess {
    pub port: u16,
    /// 1, 2 or 4 bytes.
    pub size: u8,
    pub write: bool,
    pub string: bool,
    pub rep: bool,
    /// Address of the instruction after the IN/OUT.
    pub next_rip: u64,
}

/// Why the guest stopped running. Exhaustive: anything a backend does not recognise is
/// `Unhandled` and crashes the guest (never the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmExit {
    /// A physical interrupt (or NMI/SMI/INIT) arrived while the guest ran.
    ExternalInterrupt,
    /// The guest can now take the interrupt we are holding for it.
    InterruptWindow,
    /// CPUID (2 bytes).
    Cpuid,
    /// HLT (1 byte).
    Hlt,
    /// VMMCALL / VMCALL (3 bytes).
    Hypercall,
    /// RDMSR (2 bytes).
    MsrRead {
        msr: u32,
    },
    /// WRMSR (2 bytes).
    MsrWrite {
        msr: u32,
        value: u64,
    },
    Io(IoAccess),
    /// An access to guest-physical memory the domain does not have.
    NestedPageFault {
        gpa: u64,
        write: bool,
        fetch: bool,
    },
    /// The guest triple-faulted (SVM: shutdown intercept).
    TripleFault,
    /// The hardware refused to enter the guest.
    EntryFailed {
        reason: &'static str,
    },
    Unhandled {
        code: u64,
        info1: u64,
        info2: u64,
        what: &'static str,
    },
}

/// Guest paging controls, for walking the guest's page tables.
#[derive(Debug, Clone, Copy)]
pub struct PagingState {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

/// One hardware vCPU. Generic code drives it; only the backend touches VMCB/VMCS.
pub trait HardwareVcpu: Send {
    /// Puts the vCPU in the PVH entry state: 32-bit protected mode, paging off, flat
    /// segments, a 32-bit TSS. (RIP, RBX and RFLAGS are in `GuestRegs`.)
    fn reset_to_pvh_entry_state(&mut self);
    /// Enters the guest and returns at its next exit. Interrupts must be disabled.
    fn run(&mut self, regs: &mut GuestRegs) -> VmExit;
    fn paging_state(&self) -> PagingState;
    fn guest_efer(&self) -> u64;
    /// Current privilege level of the guest.
    fn cpl(&self) -> u8;
    /// The guest executes 64-bit code (long mode, CS.L set).
    fn in_64bit_mode(&self) -> bool;
    fn set_guest_efer(&mut self, value: u64);
    /// The guest is in an interrupt shadow (after STI or MOV SS).
    fn interrupt_shadow(&self) -> bool;
    /// An event is already queued for the next entry (e.g. re-delivery after an exit).
    fn event_pending(&self) -> bool;
    fn inject_interrupt(&mut self, vector: u8);
    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>);
    /// Exit as soon as the guest can take an external interrupt.
    fn set_interrupt_window_exiting(&mut self, enabled: bool);
    /// The instruction a hypercall-page stub uses on this CPU.
    fn hypercall_instruction(&self) -> [u8; 3];
}

/// Page-table entry formats for nested paging (AMD NPT or Intel EPT).
pub trait NestedFormat: Sync {
    fn table(&self, pa: u64) -> u64;
    fn leaf_4k(&self, pa: u64) -> u64;
    fn leaf_2m(&self, pa: u64) -> u64;
}

/// The backend this machine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Svm,
}

static BACKEND: Once<Result<Backend, &'static str>> = Once::new();

/// Decides, on the BSP, whether guests can run here. Returns why not otherwise.
pub fn detect() -> Result<Backend, &'static str> {
    *BACKEND.call_once(|| {
        svm::detect().map(|caps| {
            log::info!(
                "virtualization: AMD-V with nested paging, {} ASIDs, NRIP-save {}",
                caps.asids,
                caps.next_rip_save
            );
            Backend::Svm
        })
    })
}

/// The backend, if this machine can run guests.
pub fn backend() -> Option<Backend> {
    BACKEND.get().and_then(|b| b.ok())
}

/// Enables the backend on the calling CPU (every CPU, after its per-CPU setup).
pub fn enable_this_cpu() {
    if let Some(Backend::Svm) = backend() {
        svm::enable_this_cpu();
    }
}

pub fn nested_format() -> &'static dyn NestedFormat {
    match backend().expect("nested paging used without a virtualization backend") {
        Backend::Svm => &svm::NPT_FORMAT,
    }
}

/// Creates a hardware vCPU whose guest-physical memory is described by `nested_root`.
pub fn new_vcpu(nested_root: PhysAddr, unique_id: usize) -> Option<Box<dyn HardwareVcpu>> {
    match backend()? {
        Backend::Svm => svm::SvmVcpu::new(nested_root, unique_id).map(|v| Box::new(v) as Box<dyn HardwareVcpu>),
    }
}

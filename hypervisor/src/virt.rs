//! The vendor-neutral virtualization interface: what generic code (domains, scheduler,
//! exit handlers, hypercalls) may know about a hardware vCPU, and the choice of backend at
//! boot: AMD-V (`arch::x86_64::svm`) on AMD processors, Intel VT-x (`arch::x86_64::vmx`) on
//! Intel ones, from the CPUID vendor. Nothing outside `arch/` and this module knows which
//! one runs.

use crate::arch::x86_64::cpu::{self, Vendor};
use crate::arch::x86_64::{svm, vmx};
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

impl GuestRegs {
    /// The general register with x86 encoding `n` (0 = RAX, 1 = RCX, 2 = RDX, 3 = RBX,
    /// 4 = RSP, 5 = RBP, 6 = RSI, 7 = RDI, 8-15 = R8-R15), as instruction encodings and VMX
    /// exit information number them.
    pub fn gpr_mut(&mut self, n: u8) -> &mut u64 {
        match n & 0xf {
            0 => &mut self.rax,
            1 => &mut self.rcx,
            2 => &mut self.rdx,
            3 => &mut self.rbx,
            4 => &mut self.rsp,
            5 => &mut self.rbp,
            6 => &mut self.rsi,
            7 => &mut self.rdi,
            8 => &mut self.r8,
            9 => &mut self.r9,
            10 => &mut self.r10,
            11 => &mut self.r11,
            12 => &mut self.r12,
            13 => &mut self.r13,
            14 => &mut self.r14,
            _ => &mut self.r15,
        }
    }
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
    /// A physical interrupt (or NMI/SMI/INIT) arrived while the guest ran, or the
    /// backend's own preemption timer fired: nothing to do but check the slice.
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

/// A segment register's cached state. `attributes` is the packed 12-bit form the VMCB and
/// Xen's `vcpu_hvm_context` use: type, S, DPL and P in bits 0-7; AVL, L, D/B and G in 8-11.
/// Zero attributes mean an unusable (null) segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentState {
    pub selector: u16,
    pub attributes: u16,
    pub limit: u32,
    pub base: u64,
}

/// The control state `VCPUOP_initialise` starts a vCPU in (general registers are in
/// `GuestRegs`). FS, GS, LDTR, GDTR and IDTR start as in the PVH entry state.
#[derive(Clone, Copy, Debug, Default)]
pub struct StartState {
    pub cs: SegmentState,
    pub ds: SegmentState,
    pub ss: SegmentState,
    pub es: SegmentState,
    pub tr: SegmentState,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    /// Consistent with CR0.PG: LMA is set exactly when LME and PG are.
    pub efer: u64,
}

/// One hardware vCPU. Generic code drives it; only the backend touches VMCB/VMCS.
pub trait HardwareVcpu: Send {
    /// Puts the vCPU in the PVH entry state: 32-bit protected mode, paging off, flat
    /// segments, a 32-bit TSS. (RIP, RBX and RFLAGS are in `GuestRegs`.)
    fn reset_to_pvh_entry_state(&mut self);
    /// Puts the vCPU in the state a STARTUP IPI leaves it in: real mode, CS selector
    /// `vector << 8` (base `vector << 12`), IP 0. (RIP and RFLAGS are in `GuestRegs`.)
    fn reset_to_real_mode(&mut self, vector: u8);
    /// Puts the vCPU in a state validated by `VCPUOP_initialise`.
    fn load_start_state(&mut self, state: &StartState);
    /// Enters the guest and returns at its next exit. Interrupts must be disabled.
    fn run(&mut self, regs: &mut GuestRegs) -> VmExit;
    fn paging_state(&self) -> PagingState;
    fn guest_efer(&self) -> u64;
    /// The base of the guest's code segment (to turn RIP into a linear address).
    fn code_segment_base(&self) -> u64;
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
    /// Drop cached guest-physical translations before the next entry (the nested page
    /// tables changed).
    fn flush_nested_tlb(&mut self);
    /// Exit as soon as the guest can take an external interrupt.
    fn set_interrupt_window_exiting(&mut self, enabled: bool);
    /// The vCPU stops running on this CPU (its slice ended). Backends with per-CPU
    /// hardware state release it here (VMX: VMCLEAR of the VMCS, lazily switched MSRs
    /// saved), so that the vCPU may run on any CPU next. Called on the CPU that ran it,
    /// before its execution state is given up.
    fn leave_cpu(&mut self) {}
    /// The instruction a hypercall-page stub uses on this CPU.
    fn hypercall_instruction(&self) -> [u8; 3];
}

/// Page-table entry formats for nested paging (AMD NPT or Intel EPT).
pub trait NestedFormat: Sync {
    fn table(&self, pa: u64) -> u64;
    fn leaf_4k(&self, pa: u64) -> u64;
    /// A 4 KiB leaf the guest may read and execute but not write.
    fn leaf_4k_readonly(&self, pa: u64) -> u64;
    fn leaf_2m(&self, pa: u64) -> u64;
    /// Whether `leaf_2m` may be used (EPT on some CPUs has 4 KiB pages only).
    fn supports_2m(&self) -> bool {
        true
    }
}

/// The backend this machine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Svm,
    Vmx,
}

static BACKEND: Once<Result<Backend, &'static str>> = Once::new();

/// Decides, on the BSP, whether guests can run here: SVM on AMD, VMX on Intel (other
/// vendors: whichever the CPU reports). Returns why not otherwise.
pub fn detect() -> Result<Backend, &'static str> {
    *BACKEND.call_once(|| match cpu::features().vendor {
        Vendor::Amd => detect_svm(),
        Vendor::Intel => detect_vmx(),
        Vendor::Other => detect_vmx().or_else(|vmx_why| {
            detect_svm().map_err(|_| {
                log::warn!("{vmx_why}");
                "neither VMX nor SVM available (unknown CPU vendor)"
            })
        }),
    })
}

fn detect_svm() -> Result<Backend, &'static str> {
    svm::detect().map(|caps| {
        log::info!("virtualization: AMD-V with nested paging, {} ASIDs, NRIP-save {}", caps.asids, caps.next_rip_save);
        Backend::Svm
    })
}

fn detect_vmx() -> Result<Backend, &'static str> {
    vmx::detect().map(|caps| {
        log::info!(
            "virtualization: Intel VT-x with EPT and unrestricted guest, VPID {}, 2 MiB EPT pages {}, preemption timer {}, {} control MSRs",
            caps.vpid,
            caps.ept_2m_pages,
            caps.preemption_timer.is_some(),
            if caps.cr3_exiting { "plain" } else { "TRUE" }
        );
        Backend::Vmx
    })
}

/// The backend, if this machine can run guests.
pub fn backend() -> Option<Backend> {
    BACKEND.get().and_then(|b| b.ok())
}

/// Enables the backend on the calling CPU (every CPU, after its per-CPU setup).
pub fn enable_this_cpu() {
    match backend() {
        Some(Backend::Svm) => svm::enable_this_cpu(),
        Some(Backend::Vmx) => vmx::enable_this_cpu(),
        None => {}
    }
}

pub fn nested_format() -> &'static dyn NestedFormat {
    match backend().expect("nested paging used without a virtualization backend") {
        Backend::Svm => &svm::NPT_FORMAT,
        Backend::Vmx => vmx::ept::format(),
    }
}

/// Creates a hardware vCPU whose guest-physical memory is described by `nested_root`.
pub fn new_vcpu(nested_root: PhysAddr, unique_id: usize) -> Option<Box<dyn HardwareVcpu>> {
    match backend()? {
        Backend::Svm => svm::SvmVcpu::new(nested_root, unique_id).map(|v| Box::new(v) as Box<dyn HardwareVcpu>),
        Backend::Vmx => vmx::VmxVcpu::new(nested_root, unique_id).map(|v| Box::new(v) as Box<dyn HardwareVcpu>),
    }
}

//! AMD-V (SVM) with nested paging: the [`HardwareVcpu`](crate::virt::HardwareVcpu)
//! backend for AMD processors.
//!
//! Per physical CPU: EFER.SVME, a host-save area (VM_HSAVE_PA) and a host VMCB that holds
//! the state VMRUN does not switch (FS/GS/TR/LDTR, KernelGsBase, SYSCALL MSRs): the world
//! switch VMLOADs the guest's copy before VMRUN and restores the host's after.
//! Per vCPU: one VMCB. Shared by all vCPUs: the I/O and MSR permission maps.
//!
//! QEMU's TCG emulates SVM with NPT but without NRIP-save, so exit handlers advance RIP
//! themselves (the generic code knows each instruction's length).

pub mod exit;
pub mod vmcb;

use self::vmcb::{EventInjection, Intercept1, Intercept2, InterruptControl, Segment, TlbControl, Vmcb};
use crate::arch::x86_64::percpu::{self, MAX_CPUS};
use crate::mm::{frames, paging, phys_to_virt};
use crate::virt::{GuestRegs, HardwareVcpu, NestedFormat, PagingState, SegmentState, StartState, VmExit};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use raw_cpuid::cpuid;
use spin::Once;
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};
use x86_64::PhysAddr;

const MSR_VM_CR: u32 = 0xc001_0114;
const VM_CR_SVMDIS: u64 = 1 << 4;
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
const EFER_SVME: u64 = 1 << 12;

/// What the processor's SVM offers (CPUID 8000_000Ah).
#[derive(Debug, Clone, Copy)]
pub struct SvmCapabilities {
    pub asids: u32,
    pub next_rip_save: bool,
}

/// Checks that this CPU can run guests with SVM and nested paging; says why not otherwise.
pub fn detect() -> Result<SvmCapabilities, &'static str> {
    let extended_max = cpuid!(0x8000_0000).eax;
    if extended_max < 0x8000_000a || cpuid!(0x8000_0001).ecx & (1 << 2) == 0 {
        return Err("SVM not available (CPUID 8000_0001h:ECX.SVM is clear)");
    }
    // SAFETY: VM_CR exists on every CPU that reports SVM; reading it has no side effects.
    if unsafe { Msr::new(MSR_VM_CR).read() } & VM_CR_SVMDIS != 0 {
        return Err("SVM not available (disabled by the firmware: VM_CR.SVMDIS is set)");
    }
    let features = cpuid!(0x8000_000a);
    if features.edx & 1 == 0 {
        return Err("SVM present but no nested paging (CPUID 8000_000Ah:EDX.NP is clear)");
    }
    Ok(SvmCapabilities { asids: features.ebx, next_rip_save: features.edx & (1 << 3) != 0 })
}

/// Per-CPU host areas: physical addresses of the host-save area and the host VMCB.
static HOST_VMCB: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Permission maps shared by every vCPU.
static PERMISSION_MAPS: Once<(PhysAddr, PhysAddr)> = Once::new();

/// Turns SVM on for the calling CPU. Runs after the CPU's GS base and TR are final: the
/// host VMCB snapshots them (VMSAVE) for the world switch to restore.
pub fn enable_this_cpu() {
    let cpu = percpu::current_index();
    // SAFETY: detect() succeeded on the BSP and every CPU of the machine is the same model;
    // setting SVME only makes the SVM instructions usable.
    unsafe { Efer::update(|e| e.insert(EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE)) };
    let hsave = frames::alloc_zeroed().expect("out of memory for the SVM host-save area");
    let host_vmcb = frames::alloc_zeroed().expect("out of memory for the host VMCB");
    frames::pin(hsave);
    frames::pin(host_vmcb);
    log::info!("CPU{cpu}: SVM host-save area {:#x}, host VMCB {:#x}", hsave.as_u64(), host_vmcb.as_u64());
    // SAFETY: VM_HSAVE_PA takes the physical address of a 4 KiB page the CPU owns for good.
    unsafe { Msr::new(MSR_VM_HSAVE_PA).write(hsave.as_u64()) };
    // SAFETY: the host VMCB is a page owned by this CPU; VMSAVE stores the current FS, GS,
    // TR, LDTR and system-call MSRs into it and changes nothing else.
    unsafe { core::arch::asm!("vmsave rax", in("rax") host_vmcb.as_u64(), options(nostack, preserves_flags)) };
    HOST_VMCB[cpu].store(host_vmcb.as_u64(), Ordering::Release);
    PERMISSION_MAPS.call_once(build_permission_maps);
}

/// MSRs the guest reaches directly: they live in the VMCB and are switched by VMLOAD/VMSAVE
/// (or are the guest PAT under nested paging).
const PASSTHROUGH_MSRS: &[u32] = &[
    0x174,       // SYSENTER_CS
    0x175,       // SYSENTER_ESP
    0x176,       // SYSENTER_EIP
    0x277,       // PAT (G_PAT)
    0xc000_0081, // STAR
    0xc000_0082, // LSTAR
    0xc000_0083, // CSTAR
    0xc000_0084, // SFMASK
    0xc000_0100, // FS_BASE
    0xc000_0101, // GS_BASE
    0xc000_0102, // KERNEL_GS_BASE
];

/// The MSR permission map's 2-bit slot (read, write) for `msr`, as a bit index.
fn msrpm_bit(msr: u32) -> Option<usize> {
    let (base, first) = match msr {
        0..=0x1fff => (0, 0),
        0xc000_0000..=0xc000_1fff => (0x800 * 8, 0xc000_0000),
        0xc001_0000..=0xc001_1fff => (0x1000 * 8, 0xc001_0000),
        _ => return None,
    };
    Some(base + 2 * (msr - first) as usize)
}

/// Every I/O port and every MSR not in [`PASSTHROUGH_MSRS`] is intercepted.
fn build_permission_maps() -> (PhysAddr, PhysAddr) {
    let iopm = frames::alloc_contiguous(3, 1).expect("out of memory for the I/O permission map");
    let msrpm = frames::alloc_contiguous(2, 1).expect("out of memory for the MSR permission map");
    // SAFETY: both runs were just allocated and are only reached through these slices,
    // which exist only while the maps are built.
    let (io, msr) = unsafe {
        (
            core::slice::from_raw_parts_mut(phys_to_virt(iopm).as_mut_ptr::<u8>(), 3 * 4096),
            core::slice::from_raw_parts_mut(phys_to_virt(msrpm).as_mut_ptr::<u8>(), 2 * 4096),
        )
    };
    io.fill(0xff);
    msr.fill(0xff);
    for &m in PASSTHROUGH_MSRS {
        let bit = msrpm_bit(m).expect("pass-through MSR outside the permission map");
        // Clear both the read and the write bit.
        msr[bit / 8] &= !(0b11 << (bit % 8));
    }
    (iopm, msrpm)
}

/// Nested page-table entries for AMD: ordinary long-mode entries, with U set because
/// nested walks are user accesses.
pub struct NptFormat;

impl NestedFormat for NptFormat {
    fn table(&self, pa: u64) -> u64 {
        pa | 0x7 // present, writable, user
    }

    fn leaf_4k(&self, pa: u64) -> u64 {
        pa | 0x7
    }

    fn leaf_4k_readonly(&self, pa: u64) -> u64 {
        pa | 0x5 // present, user
    }

    fn leaf_2m(&self, pa: u64) -> u64 {
        pa | 0x7 | 0x80 // + page size
    }
}

pub static NPT_FORMAT: NptFormat = NptFormat;

/// `VMEXIT_SHUTDOWN`.
const SHUTDOWN_EXIT_CODE: u64 = 0x7f;

/// Which vCPU (by unique id) last ran on each CPU, to know when the TLB must be flushed.
static LAST_VCPU_ON_CPU: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];

/// One vCPU's SVM state.
pub struct SvmVcpu {
    vmcb: PhysAddr,
    unique_id: usize,
    /// An exception whose delivery a #VMEXIT interrupted: it must be delivered first.
    reinject: Option<EventInjection>,
    /// The CPU this vCPU last ran on.
    last_cpu: Option<usize>,
}

// SAFETY: the VMCB page is owned by this structure and only touched by whichever CPU
// currently runs the vCPU (the scheduler hands a vCPU to one CPU at a time).
unsafe impl Send for SvmVcpu {}

impl SvmVcpu {
    pub fn new(nested_root: PhysAddr, unique_id: usize) -> Option<Self> {
        let vmcb = frames::alloc_zeroed()?;
        let mut vcpu = SvmVcpu { vmcb, unique_id, reinject: None, last_cpu: None };
        vcpu.init_vmcb(nested_root);
        Some(vcpu)
    }

    fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: the frame holds this vCPU's VMCB, is 4 KiB aligned and exclusively ours.
        unsafe { &mut *phys_to_virt(self.vmcb).as_mut_ptr::<Vmcb>() }
    }

    fn vmcb_ref(&self) -> &Vmcb {
        // SAFETY: as in `vmcb`.
        unsafe { &*phys_to_virt(self.vmcb).as_ptr::<Vmcb>() }
    }

    fn init_vmcb(&mut self, nested_root: PhysAddr) {
        let (iopm, msrpm) = *PERMISSION_MAPS.get().expect("SVM used before svm::enable_this_cpu");
        let c = &mut self.vmcb().control;
        c.intercept1 = Intercept1::INTR
            | Intercept1::NMI
            | Intercept1::SMI
            | Intercept1::INIT
            | Intercept1::CPUID
            | Intercept1::INVD
            | Intercept1::HLT
            | Intercept1::INVLPGA
            | Intercept1::IOIO_PROT
            | Intercept1::MSR_PROT
            | Intercept1::TASK_SWITCH
            | Intercept1::SHUTDOWN;
        c.intercept2 = Intercept2::VMRUN
            | Intercept2::VMMCALL
            | Intercept2::VMLOAD
            | Intercept2::VMSAVE
            | Intercept2::STGI
            | Intercept2::CLGI
            | Intercept2::SKINIT
            | Intercept2::ICEBP
            | Intercept2::MONITOR
            | Intercept2::MWAIT
            | Intercept2::MWAIT_CONDITIONAL
            | Intercept2::XSETBV;
        c.iopm_base_pa = iopm.as_u64();
        c.msrpm_base_pa = msrpm.as_u64();
        c.guest_asid = 1;
        c.tlb_control = TlbControl::FlushAll as u8;
        c.interrupt_control = InterruptControl::V_INTR_MASKING;
        c.nested_control = 1; // NP_ENABLE
        c.nested_cr3 = nested_root.as_u64();
    }

    /// Whether V_IRQ holds an interrupt for the guest that it has not taken yet (the CPU
    /// clears V_IRQ when it takes it). V_IRQ with the VINTR intercept is only the
    /// interrupt-window request.
    fn virtual_interrupt_pending(&self) -> bool {
        let c = &self.vmcb_ref().control;
        c.interrupt_control.contains(InterruptControl::V_IRQ) && !c.intercept1.contains(Intercept1::VINTR)
    }

    /// Clears V_IRQ, whether it held an interrupt or an interrupt-window request.
    fn withdraw_virtual_interrupt(&mut self) {
        let c = &mut self.vmcb().control;
        c.interrupt_control &=
            !(InterruptControl::V_IRQ | InterruptControl::V_IGN_TPR | InterruptControl::V_INTR_VECTOR);
        c.intercept1 &= !Intercept1::VINTR;
    }
}

impl HardwareVcpu for SvmVcpu {
    fn reset_to_pvh_entry_state(&mut self) {
        let s = &mut self.vmcb().save;
        // Flat 32-bit code and data, a 32-bit TSS: the state the PVH ABI defines.
        let code = Segment::new(0x10, 0xc9b, 0xffff_ffff, 0);
        let data = Segment::new(0x18, 0xc93, 0xffff_ffff, 0);
        s.cs = code;
        s.ds = data;
        s.es = data;
        s.ss = data;
        s.fs = data;
        s.gs = data;
        s.tr = Segment::new(0x20, 0x8b, 0x67, 0);
        s.ldtr = Segment::new(0, 0x82, 0, 0);
        s.gdtr = Segment::new(0, 0, 0, 0);
        s.idtr = Segment::new(0, 0, 0, 0);
        s.cpl = 0;
        s.cr0 = 0x11; // PE | ET
        s.cr3 = 0;
        s.cr4 = 0;
        s.efer = EFER_SVME;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = 0x0007_0406_0007_0406;
    }

    fn reset_to_real_mode(&mut self, vector: u8) {
        self.reinject = None;
        self.withdraw_virtual_interrupt();
        let c = &mut self.vmcb().control;
        c.event_injection = 0;
        c.interrupt_shadow = 0;
        let s = &mut self.vmcb().save;
        let data = Segment::new(0, 0x93, 0xffff, 0);
        s.cs = Segment::new(u16::from(vector) << 8, 0x9b, 0xffff, u64::from(vector) << 12);
        s.ds = data;
        s.es = data;
        s.ss = data;
        s.fs = data;
        s.gs = data;
        s.tr = Segment::new(0, 0x8b, 0xffff, 0);
        s.ldtr = Segment::new(0, 0x82, 0xffff, 0);
        s.gdtr = Segment::new(0, 0, 0xffff, 0);
        s.idtr = Segment::new(0, 0, 0xffff, 0);
        s.cpl = 0;
        s.cr0 = 0x10; // ET; caches enabled (NW without CD is refused by VMRUN)
        s.cr2 = 0;
        s.cr3 = 0;
        s.cr4 = 0;
        s.efer = EFER_SVME;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = 0x0007_0406_0007_0406;
    }

    fn load_start_state(&mut self, state: &StartState) {
        // FS, GS, LDTR and the descriptor tables as a vCPU is created (as on Xen).
        self.reset_to_real_mode(0);
        let segment = |seg: &SegmentState| Segment::new(seg.selector, seg.attributes, seg.limit, seg.base);
        let s = &mut self.vmcb().save;
        s.cs = segment(&state.cs);
        s.ds = segment(&state.ds);
        s.ss = segment(&state.ss);
        s.es = segment(&state.es);
        s.tr = segment(&state.tr);
        s.cpl = ((state.ss.attributes >> 5) & 3) as u8;
        s.cr0 = state.cr0;
        s.cr3 = state.cr3;
        s.cr4 = state.cr4;
        s.efer = state.efer | EFER_SVME;
    }

    fn run(&mut self, regs: &mut GuestRegs) -> VmExit {
        let cpu = percpu::current_index();
        let host_vmcb = HOST_VMCB[cpu].load(Ordering::Acquire);
        assert!(host_vmcb != 0, "SVM not enabled on CPU{cpu}");
        // Every vCPU uses ASID 1: flush if another vCPU ran here since, or this one ran on
        // another CPU since it was last here (what this CPU cached for it may be stale: the
        // guest changed its page tables, or its nested ones changed, meanwhile).
        let another_ran_here = LAST_VCPU_ON_CPU[cpu].swap(self.unique_id, Ordering::Relaxed) != self.unique_id;
        let flush = another_ran_here || self.last_cpu.replace(cpu) != Some(cpu);
        let reinject = self.reinject.take();
        {
            let vmcb = self.vmcb();
            vmcb.save.rax = regs.rax;
            vmcb.save.rsp = regs.rsp;
            vmcb.save.rip = regs.rip;
            vmcb.save.rflags = regs.rflags;
            if flush {
                vmcb.control.tlb_control = TlbControl::FlushAll as u8;
            }
            // (A flush requested by flush_nested_tlb is already in tlb_control.)
            if let Some(event) = reinject {
                vmcb.control.event_injection = event.0;
            }
            vmcb.control.clean_bits = 0;
        }
        let injected = self.vmcb().control.event_injection;
        let unique_id = self.unique_id;
        let vmcb_pa = self.vmcb.as_u64();
        // Interrupts are disabled by the caller; GIF is handled inside the routine.
        // SAFETY: the VMCB is initialised and this vCPU's, the host VMCB this CPU's, `regs` exclusively borrowed.
        unsafe { world_switch(regs, vmcb_pa, host_vmcb) };
        let vmcb = self.vmcb_ref();
        if holds_host_state(&vmcb.save) {
            log::error!(
                "vCPU #{unique_id} (VMCB {vmcb_pa:#x}) on CPU{cpu}: the #VMEXIT saved the host's state (RIP {:#x}, RSP {:#x}, \
                 CR3 {:#x}) as the guest's; exit code {:#x} info {:#x}/{:#x} exitintinfo {:#x}; injected {injected:#x}",
                vmcb.save.rip,
                vmcb.save.rsp,
                vmcb.save.cr3,
                vmcb.control.exit_code,
                vmcb.control.exit_info1,
                vmcb.control.exit_info2,
                vmcb.control.exit_int_info
            );
            return VmExit::EntryFailed { reason: "the #VMEXIT saved the host's own state as the guest's" };
        }
        let vmcb = self.vmcb();
        vmcb.control.tlb_control = TlbControl::DoNothing as u8;
        vmcb.control.event_injection = 0;
        regs.rax = vmcb.save.rax;
        regs.rsp = vmcb.save.rsp;
        regs.rip = vmcb.save.rip;
        regs.rflags = vmcb.save.rflags;
        let interrupted = EventInjection(vmcb.control.exit_int_info);
        if vmcb.control.exit_code == SHUTDOWN_EXIT_CODE {
            // What the guest's state was when it shut down, for the crash report's reader.
            log::warn!(
                "vCPU #{} (VMCB {vmcb_pa:#x}) shutdown on CPU{cpu}: injected {injected:#x} exitintinfo {:#x} rsp {:#x} rflags {:#x} \
                 cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x} idtr {:#x}/{:#x} cs {:#x}/{:#x} tlb_flushed {flush}",
                unique_id,
                vmcb.control.exit_int_info,
                vmcb.save.rsp,
                vmcb.save.rflags,
                vmcb.save.cr0,
                vmcb.save.cr2,
                vmcb.save.cr3,
                vmcb.save.cr4,
                vmcb.save.efer,
                vmcb.save.idtr.base,
                vmcb.save.idtr.limit,
                vmcb.save.cs.selector,
                vmcb.save.cs.attributes
            );
        }
        let exit = exit::decode(&vmcb.control, regs);
        if interrupted.is_external_interrupt() {
            // Taken, but its delivery did not finish: offer it again.
            self.inject_interrupt(interrupted.vector());
        } else if interrupted.is_valid() {
            self.reinject = Some(interrupted);
        }
        exit
    }

    fn paging_state(&self) -> PagingState {
        let s = &self.vmcb_ref().save;
        PagingState { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer & !EFER_SVME }
    }

    fn guest_efer(&self) -> u64 {
        self.vmcb_ref().save.efer & !EFER_SVME
    }

    fn code_segment_base(&self) -> u64 {
        self.vmcb_ref().save.cs.base
    }

    fn cpl(&self) -> u8 {
        self.vmcb_ref().save.cpl
    }

    fn in_64bit_mode(&self) -> bool {
        const EFER_LMA: u64 = 1 << 10;
        const CS_LONG: u16 = 1 << 9;
        let s = &self.vmcb_ref().save;
        s.efer & EFER_LMA != 0 && s.cs.attributes & CS_LONG != 0
    }

    fn set_guest_efer(&mut self, value: u64) {
        // SVME must stay set in the VMCB for VMRUN; the guest never sees it.
        self.vmcb().save.efer = value | EFER_SVME;
    }

    fn interrupt_shadow(&self) -> bool {
        self.vmcb_ref().control.interrupt_shadow & 1 != 0
    }

    fn event_pending(&self) -> bool {
        self.reinject.is_some() || self.virtual_interrupt_pending()
    }

    /// Interrupts go in as virtual interrupts (V_IRQ), which the CPU delivers when the
    /// guest can take them, rather than through EVENTINJ: QEMU (7.2 to at least 10.0)
    /// delivers an interrupt injected with EVENTINJ a second time, on the handler's first
    /// instruction, whenever its CPU loop is kicked before the guest's next exit, and a
    /// Linux guest interrupted in user mode then runs its handler with the user's GS.
    fn inject_interrupt(&mut self, vector: u8) {
        let c = &mut self.vmcb().control;
        c.interrupt_control &= !InterruptControl::V_INTR_VECTOR;
        c.interrupt_control |= InterruptControl::V_IRQ
            | InterruptControl::V_IGN_TPR
            | InterruptControl::from_bits_retain(u64::from(vector) << 32);
        c.intercept1 &= !Intercept1::VINTR;
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        self.vmcb().control.event_injection = EventInjection::exception(vector, error_code).0;
    }

    fn flush_nested_tlb(&mut self) {
        self.vmcb().control.tlb_control = TlbControl::FlushAll as u8;
    }

    fn set_interrupt_window_exiting(&mut self, enabled: bool) {
        if self.virtual_interrupt_pending() {
            // V_IRQ carries an interrupt already; the next exit after the guest takes it
            // offers the next one.
            return;
        }
        if enabled {
            // A virtual interrupt that ignores the TPR: the CPU exits (VINTR) as soon as
            // the guest can take an interrupt; the real one is then injected.
            let c = &mut self.vmcb().control;
            c.interrupt_control |= InterruptControl::V_IRQ | InterruptControl::V_IGN_TPR;
            c.intercept1 |= Intercept1::VINTR;
        } else {
            self.withdraw_virtual_interrupt();
        }
    }

    fn hypercall_instruction(&self) -> [u8; 3] {
        [0x0f, 0x01, 0xd9] // vmmcall
    }
}

impl Drop for SvmVcpu {
    fn drop(&mut self) {
        frames::free(self.vmcb);
    }
}

/// General-purpose registers the VMCB does not hold, as `world_switch` lays them out.
const _: () = assert!(core::mem::offset_of!(GuestRegs, rbx) == 8);

extern "C" {
    /// Runs the guest until its next #VMEXIT (`boot`-style routine in the asm below).
    fn svm_world_switch(regs: *mut GuestRegs, guest_vmcb: u64, host_vmcb: u64);
    /// Where the host resumes after VMRUN (the RIP VMRUN saves as the host's).
    static svm_world_switch_resume: u8;
}

/// Whether a VMCB's state-save area holds this host's state at the point it resumes after
/// VMRUN, instead of the guest's: a #VMEXIT taken in host mode saved it there, which QEMU's
/// TCG does on CPU 0 when another CPU undid that CPU's leaving nested paging
/// ([`crate::arch::x86_64::cpu::cpu0_svm_state_unreliable`]; guests keep off CPU 0 there,
/// unless pinned to it). Resuming the guest from it would run hypervisor code with the
/// hypervisor's page tables as the guest.
fn holds_host_state(save: &vmcb::StateSaveArea) -> bool {
    save.rip == core::ptr::addr_of!(svm_world_switch_resume) as u64 && save.cr3 == paging::kernel_pml4()
}

/// # Safety
/// `guest_vmcb` must be a valid, initialised VMCB owned by the caller, `host_vmcb` this
/// CPU's host VMCB, SVM enabled on this CPU and interrupts disabled.
unsafe fn world_switch(regs: &mut GuestRegs, guest_vmcb: u64, host_vmcb: u64) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { svm_world_switch(regs, guest_vmcb, host_vmcb) }
}

// The world switch. RAX, RSP, RIP and RFLAGS travel in the VMCB; the other general
// registers are loaded from and saved to `GuestRegs` here. Host callee-saved registers
// are preserved on the stack; everything else the guest may clobber. With V_INTR_MASKING,
// physical interrupts stay masked by the host's IF, so IF is set (with GIF clear) around
// VMRUN to make them cause an INTR #VMEXIT; the interrupt is taken by the host once the
// caller re-enables interrupts.
core::arch::global_asm!(
    r#"
.section .text
.global svm_world_switch
svm_world_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdx
    push rdi
    mov rax, rsi
    mov rbx, [rdi + 8]
    mov rcx, [rdi + 16]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8,  [rdi + 64]
    mov r9,  [rdi + 72]
    mov r10, [rdi + 80]
    mov r11, [rdi + 88]
    mov r12, [rdi + 96]
    mov r13, [rdi + 104]
    mov r14, [rdi + 112]
    mov r15, [rdi + 120]
    mov rdi, [rdi + 40]
    clgi
    sti
    vmload rax
    vmrun rax
.global svm_world_switch_resume
svm_world_switch_resume:
    vmsave rax
    mov rax, [rsp]
    mov [rax + 8], rbx
    mov [rax + 16], rcx
    mov [rax + 24], rdx
    mov [rax + 32], rsi
    mov [rax + 40], rdi
    mov [rax + 48], rbp
    mov [rax + 64], r8
    mov [rax + 72], r9
    mov [rax + 80], r10
    mov [rax + 88], r11
    mov [rax + 96], r12
    mov [rax + 104], r13
    mov [rax + 112], r14
    mov [rax + 120], r15
    add rsp, 8
    pop rax
    vmload rax
    cli
    stgi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
"#
);

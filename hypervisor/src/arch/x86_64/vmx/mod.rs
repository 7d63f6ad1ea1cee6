//! Intel VT-x (VMX) with EPT: the [`HardwareVcpu`](crate::virt::HardwareVcpu) backend for
//! Intel processors.
//!
//! This module owns detection (CPUID, IA32_FEATURE_CONTROL and the VMX capability MSRs,
//! reduced to one [`VmxCapabilities`] on the boot CPU), per-CPU enabling (CR0/CR4 fixed
//! bits, the VMXON region, a snapshot of the host state every VM exit restores), and the
//! I/O and MSR bitmaps every vCPU shares. The vCPU itself ([`VmxVcpu`]: one VMCS, the world
//! switch, event injection, control-register emulation) is in [`vcpu`], the exit reasons in
//! [`exit`], the EPT entry format in [`ept`], typed VMCS access in [`vmcs`].
//!
//! What the VMCS switches on every entry and exit: control registers, segment registers
//! with their bases (so FS/GS base), SYSENTER MSRs, EFER and PAT ("load/save IA32_EFER"
//! and "load/save IA32_PAT" controls), DR7. The host's GS base is the per-CPU pointer and is
//! restored from the host-state area on every exit. KERNEL_GS_BASE, STAR, LSTAR and SFMASK
//! are not in the VMCS: the guest reaches them directly, and they are switched lazily when
//! a vCPU starts and ends a slice on a CPU (the host never uses them while a guest is
//! loaded: it has no user mode, SYSCALL or SWAPGS). CSTAR is unused on Intel and emulated.
//!
//! Guests start in 32-bit protected mode with paging off (the PVH entry state), which needs
//! "unrestricted guest". The guest owns CR0.PE/PG and CR4 except for the bits VMX fixes
//! (CR0.NE, CR4.VMXE): those are host-owned through the guest/host masks and read shadows,
//! and a guest write that changes them exits and is emulated. CR8 accesses exit too (there
//! is no TPR shadow): the guest's CR8 lives in the vCPU, never in the physical TPR.

pub mod ept;
pub mod exit;
pub mod vcpu;
pub mod vmcs;

pub use self::vcpu::VmxVcpu;

use self::vmcs::{EntryControls, ExitControls, PinControls, PrimaryControls, SecondaryControls};
use crate::arch::x86_64::percpu::{self, MAX_CPUS};
use crate::mm::{frames, phys_to_virt};
use raw_cpuid::cpuid;
use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, FS, GS, SS};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr3, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;
use x86_64::PhysAddr;

/// Architectural MSRs this module reads or writes.
pub mod msr {
    pub const IA32_FEATURE_CONTROL: u32 = 0x3a;
    pub const IA32_SYSENTER_CS: u32 = 0x174;
    pub const IA32_SYSENTER_ESP: u32 = 0x175;
    pub const IA32_SYSENTER_EIP: u32 = 0x176;
    pub const IA32_PAT: u32 = 0x277;
    pub const IA32_VMX_BASIC: u32 = 0x480;
    pub const IA32_VMX_PINBASED_CTLS: u32 = 0x481;
    pub const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
    pub const IA32_VMX_EXIT_CTLS: u32 = 0x483;
    pub const IA32_VMX_ENTRY_CTLS: u32 = 0x484;
    pub const IA32_VMX_MISC: u32 = 0x485;
    pub const IA32_VMX_CR0_FIXED0: u32 = 0x486;
    pub const IA32_VMX_CR0_FIXED1: u32 = 0x487;
    pub const IA32_VMX_CR4_FIXED0: u32 = 0x488;
    pub const IA32_VMX_CR4_FIXED1: u32 = 0x489;
    pub const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
    pub const IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
    pub const IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
    pub const IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
    pub const IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
    pub const IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
    pub const IA32_EFER: u32 = 0xc000_0080;
    pub const IA32_STAR: u32 = 0xc000_0081;
    pub const IA32_LSTAR: u32 = 0xc000_0082;
    pub const IA32_CSTAR: u32 = 0xc000_0083;
    pub const IA32_FMASK: u32 = 0xc000_0084;
    pub const IA32_FS_BASE: u32 = 0xc000_0100;
    pub const IA32_GS_BASE: u32 = 0xc000_0101;
    pub const IA32_KERNEL_GS_BASE: u32 = 0xc000_0102;
}

/// IA32_FEATURE_CONTROL bits.
const FEATURE_CONTROL_LOCK: u64 = 1 << 0;
const FEATURE_CONTROL_VMXON_OUTSIDE_SMX: u64 = 1 << 2;

/// IA32_VMX_BASIC fields.
const BASIC_REGION_SIZE_SHIFT: u32 = 32;
const BASIC_32BIT_ADDRESSES: u64 = 1 << 48;
const BASIC_MEMORY_TYPE_SHIFT: u32 = 50;
const BASIC_TRUE_CONTROLS: u64 = 1 << 55;
const MEMORY_TYPE_WB: u64 = 6;

/// IA32_VMX_MISC: VM exits store EFER.LMA into the "IA-32e mode guest" entry control.
const MISC_STORES_LMA: u64 = 1 << 5;
/// IA32_VMX_MISC bits 4:0: the preemption timer counts every 2^n TSC ticks.
const MISC_PREEMPTION_TIMER_RATE: u64 = 0x1f;

/// Longest uninterrupted stay in the guest: one host timer tick.
const PREEMPTION_TIMER_US: u64 = 1000;

/// IA32_VMX_EPT_VPID_CAP bits.
mod ept_cap {
    pub const WALK_LENGTH_4: u64 = 1 << 6;
    pub const MEMORY_TYPE_WB: u64 = 1 << 14;
    pub const PAGES_2M: u64 = 1 << 16;
    pub const INVEPT: u64 = 1 << 20;
    pub const INVEPT_SINGLE_CONTEXT: u64 = 1 << 25;
    pub const INVEPT_ALL_CONTEXTS: u64 = 1 << 26;
}

const CPUID_1_ECX_VMX: u32 = 1 << 5;

/// MSRs the guest reaches without exits. Their values live in the VMCS (SYSENTER, FS/GS
/// base, PAT) or are switched lazily per slice ([`LAZY_MSRS`]). The same set the SVM
/// backend passes through, less CSTAR, which Intel CPUs do not use and the backend emulates.
const PASSTHROUGH_MSRS: &[u32] = &[
    msr::IA32_SYSENTER_CS,
    msr::IA32_SYSENTER_ESP,
    msr::IA32_SYSENTER_EIP,
    msr::IA32_PAT,
    msr::IA32_STAR,
    msr::IA32_LSTAR,
    msr::IA32_FMASK,
    msr::IA32_FS_BASE,
    msr::IA32_GS_BASE,
    msr::IA32_KERNEL_GS_BASE,
];

/// Pass-through MSRs the VMCS does not switch: loaded when a vCPU starts a slice on a CPU,
/// saved (and the host's values restored) when it leaves.
pub const LAZY_MSRS: [u32; 4] = [msr::IA32_KERNEL_GS_BASE, msr::IA32_STAR, msr::IA32_LSTAR, msr::IA32_FMASK];

/// How INVEPT is issued to flush one vCPU's guest-physical translations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EptFlush {
    SingleContext,
    AllContexts,
}

/// What this machine's VMX offers, and the control settings every VMCS uses.
#[derive(Debug, Clone, Copy)]
pub struct VmxCapabilities {
    pub revision_id: u32,
    pub pin: PinControls,
    pub primary: PrimaryControls,
    pub secondary: SecondaryControls,
    pub exit: ExitControls,
    /// Entry controls without "IA-32e mode guest", which follows the guest's EFER.LMA.
    pub entry: EntryControls,
    pub cr0_fixed0: u64,
    pub cr0_fixed1: u64,
    pub cr4_fixed0: u64,
    pub cr4_fixed1: u64,
    pub vpid: bool,
    pub ept_2m_pages: bool,
    pub ept_flush: EptFlush,
    /// VM exits keep "IA-32e mode guest" equal to EFER.LMA by themselves.
    pub stores_lma: bool,
    /// CR3 loads and stores exit (forced on CPUs without the TRUE control MSRs).
    pub cr3_exiting: bool,
    /// The VMX-preemption timer value (ticks of [`PREEMPTION_TIMER_US`]), if the CPU has
    /// the timer.
    pub preemption_timer: Option<u32>,
}

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;

impl VmxCapabilities {
    /// CR0 bits the host owns: fixed to 1 in VMX operation (except PE and PG, which
    /// unrestricted guest frees) or fixed to 0.
    pub fn cr0_mask(&self) -> u64 {
        (self.cr0_fixed0 & !(CR0_PE | CR0_PG)) | !self.cr0_fixed1
    }

    pub fn cr4_mask(&self) -> u64 {
        self.cr4_fixed0 | !self.cr4_fixed1
    }

    /// The real CR0 for a guest that wants to see `view`.
    pub fn cr0_actual(&self, view: u64) -> u64 {
        (view & !self.cr0_mask()) | (self.cr0_fixed0 & !(CR0_PE | CR0_PG) & self.cr0_mask())
    }

    /// The real CR4 for a guest that wants to see `view`.
    pub fn cr4_actual(&self, view: u64) -> u64 {
        (view & !self.cr4_mask()) | (self.cr4_fixed0 & self.cr4_mask())
    }
}

static CAPS: Once<Result<VmxCapabilities, &'static str>> = Once::new();

/// The capabilities found by [`detect`]; panics if VMX is not usable.
pub fn caps() -> &'static VmxCapabilities {
    match CAPS.get() {
        Some(Ok(caps)) => caps,
        _ => panic!("VMX used without a successful vmx::detect()"),
    }
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: only MSRs that exist on every CPU reporting VMX are read here (the VMX
    // capability MSRs are architectural once CPUID.1:ECX.VMX is set); reads have no effects.
    unsafe { Msr::new(msr).read() }
}

/// The allowed settings of a control field: bits that must be 1 (low half of the
/// capability MSR) and bits that may be 1 (high half).
#[derive(Debug, Clone, Copy)]
struct Allowed {
    must_be_one: u32,
    may_be_one: u32,
}

impl Allowed {
    fn read(msr: u32) -> Self {
        let value = rdmsr(msr);
        Allowed { must_be_one: value as u32, may_be_one: (value >> 32) as u32 }
    }

    /// `required` plus whatever the CPU forces on, plus the `optional` bits it allows;
    /// `None` if a required bit is not allowed.
    fn choose(self, required: u32, optional: u32) -> Option<u32> {
        (required & !self.may_be_one == 0)
            .then_some(self.must_be_one | required | (optional & self.may_be_one))
            .filter(|v| v & !self.may_be_one == 0)
    }

    fn allows(self, bits: u32) -> bool {
        bits & !self.may_be_one == 0
    }

    fn can_clear(self, bits: u32) -> bool {
        bits & self.must_be_one == 0
    }
}

/// Decides, on the boot CPU, whether guests can run with VMX and EPT; says why not
/// otherwise. Every message names VMX (or EPT) so an operator knows what is missing.
pub fn detect() -> Result<VmxCapabilities, &'static str> {
    *CAPS.call_once(probe)
}

fn probe() -> Result<VmxCapabilities, &'static str> {
    if cpuid!(1).ecx & CPUID_1_ECX_VMX == 0 {
        return Err("VMX not available (CPUID.1:ECX.VMX is clear)");
    }
    let feature_control = rdmsr(msr::IA32_FEATURE_CONTROL);
    if feature_control & FEATURE_CONTROL_LOCK != 0 && feature_control & FEATURE_CONTROL_VMXON_OUTSIDE_SMX == 0 {
        return Err(
            "VMX not available (disabled by the firmware: IA32_FEATURE_CONTROL is locked without VMXON outside SMX)",
        );
    }
    let basic = rdmsr(msr::IA32_VMX_BASIC);
    if (basic >> BASIC_MEMORY_TYPE_SHIFT) & 0xf != MEMORY_TYPE_WB {
        return Err("VMX not usable (IA32_VMX_BASIC: VMCS memory type is not write-back)");
    }
    if basic & BASIC_32BIT_ADDRESSES != 0 || (basic >> BASIC_REGION_SIZE_SHIFT) & 0x1fff > 4096 {
        return Err("VMX not usable (IA32_VMX_BASIC: 32-bit VMCS addresses or a VMCS larger than 4 KiB)");
    }
    let true_controls = basic & BASIC_TRUE_CONTROLS != 0;
    let pick = |plain, true_msr| Allowed::read(if true_controls { true_msr } else { plain });
    let pin_allowed = pick(msr::IA32_VMX_PINBASED_CTLS, msr::IA32_VMX_TRUE_PINBASED_CTLS);
    let primary_allowed = pick(msr::IA32_VMX_PROCBASED_CTLS, msr::IA32_VMX_TRUE_PROCBASED_CTLS);
    let exit_allowed = pick(msr::IA32_VMX_EXIT_CTLS, msr::IA32_VMX_TRUE_EXIT_CTLS);
    let entry_allowed = pick(msr::IA32_VMX_ENTRY_CTLS, msr::IA32_VMX_TRUE_ENTRY_CTLS);

    // The preemption timer bounds every stay in the guest to one host tick even where an
    // external interrupt does not make a guest with RFLAGS.IF = 0 exit: Bochs 2.7 (and
    // later) re-evaluates interrupt masking on VM entry before it considers itself in the
    // guest, so pending host interrupts stay masked until the guest changes IF.
    let pin = pin_allowed
        .choose(
            (PinControls::EXTERNAL_INTERRUPT_EXITING | PinControls::NMI_EXITING).bits(),
            PinControls::PREEMPTION_TIMER.bits(),
        )
        .ok_or("VMX lacks external-interrupt or NMI exiting")?;
    let pin = PinControls::from_bits_retain(pin);
    let preemption_timer = pin.contains(PinControls::PREEMPTION_TIMER).then(|| {
        let rate = rdmsr(msr::IA32_VMX_MISC) & MISC_PREEMPTION_TIMER_RATE;
        let ticks = (crate::arch::x86_64::time::tsc_hz() / 1_000_000 * PREEMPTION_TIMER_US) >> rate;
        ticks.clamp(1, u64::from(u32::MAX)) as u32
    });
    // CR8 accesses exit: without a TPR shadow, MOV to CR8 in the guest would write the
    // physical TPR and mask the host's interrupts. The backend keeps the guest's CR8.
    let required_primary = PrimaryControls::HLT_EXITING
        | PrimaryControls::MWAIT_EXITING
        | PrimaryControls::MONITOR_EXITING
        | PrimaryControls::CR8_LOAD_EXITING
        | PrimaryControls::CR8_STORE_EXITING
        | PrimaryControls::USE_IO_BITMAPS
        | PrimaryControls::USE_MSR_BITMAPS
        | PrimaryControls::ACTIVATE_SECONDARY_CONTROLS;
    let primary = primary_allowed.choose(required_primary.bits(), 0).ok_or(
        "VMX present but no EPT (no secondary controls), or it lacks HLT/MONITOR/MWAIT/CR8 exiting or I/O and MSR bitmaps",
    )?;
    if !primary_allowed.allows(PrimaryControls::INTERRUPT_WINDOW_EXITING.bits()) {
        return Err("VMX lacks interrupt-window exiting");
    }
    let forced_off = PrimaryControls::INTERRUPT_WINDOW_EXITING
        | PrimaryControls::USE_TSC_OFFSETTING
        | PrimaryControls::RDTSC_EXITING
        | PrimaryControls::UNCONDITIONAL_IO_EXITING
        | PrimaryControls::MOV_DR_EXITING
        | PrimaryControls::USE_TPR_SHADOW
        | PrimaryControls::NMI_WINDOW_EXITING
        | PrimaryControls::MONITOR_TRAP_FLAG;
    if !primary_allowed.can_clear(forced_off.bits()) {
        return Err("VMX forces on a processor-based control the backend does not handle");
    }
    let cr3_exiting =
        !primary_allowed.can_clear((PrimaryControls::CR3_LOAD_EXITING | PrimaryControls::CR3_STORE_EXITING).bits());

    let secondary_allowed = Allowed::read(msr::IA32_VMX_PROCBASED_CTLS2);
    if !secondary_allowed.allows(SecondaryControls::ENABLE_EPT.bits()) {
        return Err("VMX present but no EPT (secondary control \"enable EPT\" unsupported)");
    }
    if !secondary_allowed.allows(SecondaryControls::UNRESTRICTED_GUEST.bits()) {
        return Err("VMX present but no unrestricted guest (needed for the 32-bit PVH entry with paging off)");
    }
    let optional_secondary = SecondaryControls::ENABLE_VPID | SecondaryControls::ENABLE_RDTSCP;
    let secondary = secondary_allowed
        .choose(
            (SecondaryControls::ENABLE_EPT | SecondaryControls::UNRESTRICTED_GUEST).bits(),
            optional_secondary.bits(),
        )
        .ok_or("VMX secondary controls unusable")?;

    let ept = rdmsr(msr::IA32_VMX_EPT_VPID_CAP);
    if ept & ept_cap::WALK_LENGTH_4 == 0 {
        return Err("VMX present but EPT lacks 4-level page walks (IA32_VMX_EPT_VPID_CAP)");
    }
    if ept & ept_cap::MEMORY_TYPE_WB == 0 {
        return Err("VMX present but EPT lacks the write-back memory type (IA32_VMX_EPT_VPID_CAP)");
    }
    let ept_flush = if ept & ept_cap::INVEPT == 0 {
        return Err("VMX present but no INVEPT (IA32_VMX_EPT_VPID_CAP)");
    } else if ept & ept_cap::INVEPT_SINGLE_CONTEXT != 0 {
        EptFlush::SingleContext
    } else if ept & ept_cap::INVEPT_ALL_CONTEXTS != 0 {
        EptFlush::AllContexts
    } else {
        return Err("VMX present but INVEPT supports neither single- nor all-context invalidation");
    };

    let required_exit = ExitControls::HOST_ADDRESS_SPACE_SIZE
        | ExitControls::SAVE_EFER
        | ExitControls::LOAD_EFER
        | ExitControls::SAVE_PAT
        | ExitControls::LOAD_PAT;
    let exit = exit_allowed
        .choose(required_exit.bits(), 0)
        .ok_or("VMX lacks the VM-exit controls to switch EFER and PAT (save/load IA32_EFER, IA32_PAT)")?;
    if !exit_allowed.can_clear(ExitControls::ACKNOWLEDGE_INTERRUPT_ON_EXIT.bits()) {
        return Err("VMX forces \"acknowledge interrupt on exit\"");
    }
    let entry = entry_allowed
        .choose((EntryControls::LOAD_EFER | EntryControls::LOAD_PAT).bits(), 0)
        .ok_or("VMX lacks the VM-entry controls to load EFER and PAT (load IA32_EFER, IA32_PAT)")?;
    if !entry_allowed.allows(EntryControls::IA32E_MODE_GUEST.bits())
        || !entry_allowed.can_clear(EntryControls::IA32E_MODE_GUEST.bits())
    {
        return Err("VMX cannot switch the \"IA-32e mode guest\" entry control");
    }

    let secondary = SecondaryControls::from_bits_retain(secondary);
    Ok(VmxCapabilities {
        revision_id: basic as u32 & 0x7fff_ffff,
        pin,
        primary: PrimaryControls::from_bits_retain(primary),
        secondary,
        exit: ExitControls::from_bits_retain(exit),
        entry: EntryControls::from_bits_retain(entry) - EntryControls::IA32E_MODE_GUEST,
        cr0_fixed0: rdmsr(msr::IA32_VMX_CR0_FIXED0),
        cr0_fixed1: rdmsr(msr::IA32_VMX_CR0_FIXED1),
        cr4_fixed0: rdmsr(msr::IA32_VMX_CR4_FIXED0),
        cr4_fixed1: rdmsr(msr::IA32_VMX_CR4_FIXED1),
        vpid: secondary.contains(SecondaryControls::ENABLE_VPID),
        ept_2m_pages: ept & ept_cap::PAGES_2M != 0,
        ept_flush,
        stores_lma: rdmsr(msr::IA32_VMX_MISC) & MISC_STORES_LMA != 0,
        cr3_exiting,
        preemption_timer,
    })
}

/// The host state a VM exit restores, captured per CPU once its descriptor tables, GS base
/// and control registers are final.
#[derive(Debug, Clone, Copy)]
pub struct HostState {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cs: u16,
    pub ss: u16,
    pub ds: u16,
    pub es: u16,
    pub fs: u16,
    pub gs: u16,
    pub tr: u16,
    pub fs_base: u64,
    /// The per-CPU pointer.
    pub gs_base: u64,
    pub tr_base: u64,
    pub gdtr_base: u64,
    pub idtr_base: u64,
    pub sysenter_cs: u32,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub efer: u64,
    pub pat: u64,
    /// The host's values of [`LAZY_MSRS`], put back when a vCPU leaves the CPU.
    pub lazy_msrs: [u64; LAZY_MSRS.len()],
}

/// A CPU in VMX root operation: its VMXON region and host state.
#[derive(Debug)]
pub struct CpuState {
    pub vmxon_region: PhysAddr,
    pub host: HostState,
}

static CPUS: [Once<CpuState>; MAX_CPUS] = [const { Once::new() }; MAX_CPUS];

/// The VMX state of CPU `cpu`, if VMX operation is on there.
pub fn cpu_state(cpu: usize) -> Option<&'static CpuState> {
    CPUS.get(cpu).and_then(|s| s.get())
}

/// Shared by every vCPU: I/O bitmaps A and B and the MSR bitmap (physical addresses).
#[derive(Debug, Clone, Copy)]
pub struct Bitmaps {
    pub io_a: PhysAddr,
    pub io_b: PhysAddr,
    pub msr: PhysAddr,
}

static BITMAPS: Once<Bitmaps> = Once::new();

pub fn bitmaps() -> Bitmaps {
    *BITMAPS.get().expect("VMX bitmaps used before vmx::enable_this_cpu")
}

/// Turns VMX operation on for the calling CPU. Runs after the CPU's GS base, GDT, TSS and
/// IDT are final: their addresses become the host state every VM exit restores.
pub fn enable_this_cpu() {
    let cpu = percpu::current_index();
    let caps = caps();
    if let Err(why) = enter_vmx_operation(caps) {
        log::error!("CPU{cpu}: cannot enable VMX: {why}; guests will not run on this CPU");
        return;
    }
    BITMAPS.call_once(build_bitmaps);
}

fn enter_vmx_operation(caps: &VmxCapabilities) -> Result<(), &'static str> {
    let cpu = percpu::current_index();
    let mut feature_control = Msr::new(msr::IA32_FEATURE_CONTROL);
    // SAFETY: IA32_FEATURE_CONTROL exists on every CPU with VMX; reading it has no effects.
    let current = unsafe { feature_control.read() };
    if current & FEATURE_CONTROL_LOCK == 0 {
        // SAFETY: while unlocked the MSR may be written; enabling VMXON outside SMX and
        // locking is what firmware normally does, and affects nothing but VMXON.
        unsafe { feature_control.write(current | FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMXON_OUTSIDE_SMX) };
    } else if current & FEATURE_CONTROL_VMXON_OUTSIDE_SMX == 0 {
        return Err("IA32_FEATURE_CONTROL is locked without VMXON outside SMX");
    }
    let cr0 = (Cr0::read_raw() | caps.cr0_fixed0) & caps.cr0_fixed1;
    // SAFETY: the fixed-1 bits of CR0 in VMX operation (PE, NE, PG) are compatible with how
    // the hypervisor runs (protected mode, paging, native x87 error reporting); no bit the
    // hypervisor relies on is fixed to 0.
    unsafe { Cr0::write_raw(cr0) };
    let cr4 = (Cr4::read_raw() | caps.cr4_fixed0 | Cr4Flags::VIRTUAL_MACHINE_EXTENSIONS.bits()) & caps.cr4_fixed1;
    // SAFETY: CR4.VMXE only enables VMXON; the other fixed bits are already set by a 64-bit
    // kernel (PAE) or harmless.
    unsafe { Cr4::write_raw(cr4) };
    if !Cr0::read().contains(Cr0Flags::NUMERIC_ERROR) {
        return Err("CR0.NE did not stick");
    }
    let region = frames::alloc_zeroed().ok_or("out of memory for the VMXON region")?;
    // SAFETY: the frame was just allocated for this CPU and is reached only here.
    unsafe { phys_to_virt(region).as_mut_ptr::<u32>().write(caps.revision_id) };
    // SAFETY: CR4.VMXE and the fixed bits are set, IA32_FEATURE_CONTROL allows VMXON, and
    // the region is a zeroed frame with the revision identifier, owned by this CPU for good.
    if let Err(e) = unsafe { vmcs::vmxon(region.as_u64()) } {
        frames::free(region);
        log::error!("CPU{cpu}: VMXON failed: {e}");
        return Err("VMXON failed");
    }
    // Nothing this CPU cached before belongs to a guest of ours.
    if let Err(e) = vmcs::invept(vmcs::Invalidation::AllContexts, 0) {
        log::warn!("CPU{cpu}: INVEPT (all contexts) failed: {e}");
    }
    let host = capture_host_state();
    let state = CPUS[cpu].call_once(|| CpuState { vmxon_region: region, host });
    log::debug!("CPU{cpu}: VMX operation on (VMXON region {:#x})", state.vmxon_region.as_u64());
    Ok(())
}

/// Reads the state a VM exit must restore on this CPU.
fn capture_host_state() -> HostState {
    let gdt = x86_64::instructions::tables::sgdt();
    let idt = x86_64::instructions::tables::sidt();
    let tr = read_tr();
    let tr_base = descriptor_base(gdt.base.as_u64(), tr);
    HostState {
        cr0: Cr0::read_raw(),
        cr3: Cr3::read_raw().0.start_address().as_u64(),
        cr4: Cr4::read_raw(),
        cs: CS::get_reg().0,
        ss: SS::get_reg().0,
        ds: DS::get_reg().0,
        es: ES::get_reg().0,
        fs: FS::get_reg().0,
        gs: GS::get_reg().0,
        tr,
        fs_base: rdmsr(msr::IA32_FS_BASE),
        gs_base: rdmsr(msr::IA32_GS_BASE),
        tr_base,
        gdtr_base: gdt.base.as_u64(),
        idtr_base: idt.base.as_u64(),
        sysenter_cs: rdmsr(msr::IA32_SYSENTER_CS) as u32,
        sysenter_esp: rdmsr(msr::IA32_SYSENTER_ESP),
        sysenter_eip: rdmsr(msr::IA32_SYSENTER_EIP),
        efer: rdmsr(msr::IA32_EFER),
        pat: rdmsr(msr::IA32_PAT),
        lazy_msrs: LAZY_MSRS.map(rdmsr),
    }
}

fn read_tr() -> u16 {
    let tr: u16;
    // SAFETY: STR only reads the task register's selector.
    unsafe { core::arch::asm!("str {0:x}", out(reg) tr, options(nomem, nostack, preserves_flags)) };
    tr
}

/// The base address of the 16-byte system descriptor (the TSS) at `selector` in the GDT at
/// `gdt_base`.
fn descriptor_base(gdt_base: u64, selector: u16) -> u64 {
    let at = gdt_base + u64::from(selector & !7);
    // SAFETY: the GDT is live and mapped (this CPU runs on it) and TR selects a 16-byte TSS
    // descriptor inside it.
    let (low, high) = unsafe { ((at as *const u64).read_unaligned(), ((at + 8) as *const u64).read_unaligned()) };
    ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | ((high & 0xffff_ffff) << 32)
}

/// I/O bitmaps with every port intercepted, and an MSR bitmap intercepting every MSR but
/// [`PASSTHROUGH_MSRS`].
fn build_bitmaps() -> Bitmaps {
    let io_a = frames::alloc().expect("out of memory for the VMX I/O bitmaps");
    let io_b = frames::alloc().expect("out of memory for the VMX I/O bitmaps");
    let msr_bitmap = frames::alloc().expect("out of memory for the VMX MSR bitmap");
    // SAFETY: the three frames were just allocated and are only reached through these
    // slices, which exist only while the bitmaps are built.
    let (a, b, m) = unsafe {
        (
            core::slice::from_raw_parts_mut(phys_to_virt(io_a).as_mut_ptr::<u8>(), 4096),
            core::slice::from_raw_parts_mut(phys_to_virt(io_b).as_mut_ptr::<u8>(), 4096),
            core::slice::from_raw_parts_mut(phys_to_virt(msr_bitmap).as_mut_ptr::<u8>(), 4096),
        )
    };
    a.fill(0xff);
    b.fill(0xff);
    m.fill(0xff);
    for &msr in PASSTHROUGH_MSRS {
        for bit in msr_bitmap_bits(msr).expect("pass-through MSR outside the MSR bitmap") {
            m[bit / 8] &= !(1 << (bit % 8));
        }
    }
    Bitmaps { io_a, io_b, msr: msr_bitmap }
}

/// The read and write bits of `msr` in the MSR bitmap (SDM Vol. 3C §25.6.9): read-low at
/// byte 0, read-high at 1024, write-low at 2048, write-high at 3072, one bit per MSR.
fn msr_bitmap_bits(msr: u32) -> Option<[usize; 2]> {
    let (base, index) = match msr {
        0..=0x1fff => (0, msr),
        0xc000_0000..=0xc000_1fff => (1024 * 8, msr - 0xc000_0000),
        _ => return None,
    };
    let read = base + index as usize;
    Some([read, read + 2048 * 8])
}

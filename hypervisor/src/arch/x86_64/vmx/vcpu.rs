//! One VMX vCPU: its VMCS, the world switch, event injection and re-injection, and the
//! exits handled inside the backend (control-register accesses, CSTAR, host NMIs).
//!
//! # Where the VMCS lives
//!
//! A VMCS may be active on one CPU at a time, and moving it to another CPU needs a VMCLEAR
//! on the first. A vCPU becomes *resident* on a CPU when `run` first enters it there in a
//! slice: its VMCS is loaded (VMPTRLD), the host state of that CPU is written into it, and
//! its lazily switched MSRs are loaded. [`HardwareVcpu::leave_cpu`] at the end of the slice
//! undoes all of that (VMCLEAR), so between slices the VMCS is inactive and any CPU may
//! pick the vCPU up. Accessors used outside the vCPU's slice (building a domain, one vCPU
//! initialising another) load the VMCS just for the access and clear it again.
//!
//! # TLB
//!
//! Guest translations are tagged with the EPT pointer (and the VPID, when the CPU has
//! VPIDs): INVEPT for this vCPU's EPT pointer drops all of them. It is issued before entry
//! when the nested page tables changed, when the guest's paging mode was changed by an
//! emulated CR write, and when the vCPU arrives on a CPU where something else ran since it
//! last ran there.

use super::exit::{self, field, CrAccess, CrAccessKind, Handling, ENTRY_FAILURE};
use super::vmcs::{
    self, AccessRights, EntryControls, EventInfo, Field, Interruptibility, PrimaryControls, Vmcs16, Vmcs32, Vmcs64,
    VmcsNatural, VmxError,
};
use super::{caps, cpu_state, ept, EptFlush, HostState, VmxCapabilities, LAZY_MSRS};
use crate::arch::x86_64::percpu::{self, MAX_CPUS};
use crate::mm::{frames, phys_to_virt};
use crate::virt::{GuestRegs, HardwareVcpu, PagingState, StartState, VmExit};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use x86_64::registers::model_specific::Msr;
use x86_64::PhysAddr;

/// Physical address of the VMCS current on each CPU (0: none).
static CURRENT_VMCS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The vCPU (by unique id) resident on each CPU, `usize::MAX` for none.
static RESIDENT: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];
/// The vCPU (by unique id) that was last resident on each CPU, for TLB flush decisions.
static LAST_RESIDENT: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(usize::MAX) }; MAX_CPUS];

const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const CR0_PE: u64 = 1 << 0;
const CR0_TS: u64 = 1 << 3;
const CR0_WP: u64 = 1 << 16;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_VMXE: u64 = 1 << 13;
const RFLAGS_IF: u64 = 1 << 9;
const GP_FAULT: u8 = 13;
/// The power-on PAT (WB, WT, UC-, UC, repeated).
const DEFAULT_PAT: u64 = 0x0007_0406_0007_0406;

/// One vCPU's VMX state.
pub struct VmxVcpu {
    /// The VMCS region (one frame, owned).
    vmcs: PhysAddr,
    unique_id: usize,
    eptp: u64,
    /// The CPU this vCPU is resident on (see the module documentation).
    resident_on: Option<usize>,
    /// The VMCS has been launched since it was last cleared (VMRESUME, not VMLAUNCH).
    launched: bool,
    /// The CPU whose host state the VMCS holds.
    host_state_cpu: Option<usize>,
    /// The CPU this vCPU was last resident on.
    last_cpu: Option<usize>,
    /// Flush this vCPU's guest translations before the next entry.
    flush_pending: bool,
    /// An event is in the VM-entry interruption-information field.
    event_pending: bool,
    /// Guest RIP when the guest last exited: a different RIP at entry means the instruction
    /// was completed by the hypervisor, which ends any STI/MOV-SS interrupt shadow.
    exit_rip: u64,
    /// The primary processor-based controls currently in the VMCS.
    primary: PrimaryControls,
    /// Guest values of [`LAZY_MSRS`] while the vCPU is not resident.
    lazy_msrs: [u64; LAZY_MSRS.len()],
    /// CSTAR, which Intel CPUs do not use: kept here for the guest.
    cstar: u64,
    /// CR8 (the task-priority class), kept here: CR8 accesses exit so that the guest never
    /// reaches the physical TPR.
    cr8: u64,
}

// SAFETY: the VMCS frame is owned by this structure; the generic code hands a vCPU to one
// CPU at a time (under its exec lock), and the residency rules keep the VMCS active on at
// most that CPU.
unsafe impl Send for VmxVcpu {}

fn rdmsr(index: u32) -> u64 {
    // SAFETY: only the architectural MSRs of LAZY_MSRS are read through here; they exist on
    // every 64-bit CPU with VMX, and reading them has no side effects.
    unsafe { Msr::new(index).read() }
}

fn wrmsr(index: u32, value: u64) {
    // SAFETY: only LAZY_MSRS are written through here, with the guest's values (which the
    // guest could have written itself, they pass through) or the host's saved ones. The
    // hypervisor does not use them while a guest is resident: it has no SYSCALL or SWAPGS.
    unsafe { Msr::new(index).write(value) }
}

/// Writes a guest-state or guest-facing control field of the current VMCS.
fn set<F: Field>(f: F, value: F::Value) {
    // SAFETY: used only for guest-state fields and for controls that affect only the guest
    // (event injection, exiting controls, CR masks and shadows); the host-facing fields are
    // written in `write_host_state` and `init_vmcs`.
    if let Err(e) = unsafe { vmcs::write(f, value) } {
        panic!("VMWRITE {f:?}: {e}");
    }
}

impl VmxVcpu {
    pub fn new(nested_root: PhysAddr, unique_id: usize) -> Option<Self> {
        let caps = caps();
        let vmcs = frames::alloc_zeroed()?;
        // SAFETY: the frame was just allocated for this VMCS and nothing else refers to it.
        unsafe { phys_to_virt(vmcs).as_mut_ptr::<u32>().write(caps.revision_id) };
        let mut vcpu = VmxVcpu {
            vmcs,
            unique_id,
            eptp: ept::pointer(nested_root.as_u64()),
            resident_on: None,
            launched: false,
            host_state_cpu: None,
            last_cpu: None,
            flush_pending: true,
            event_pending: false,
            exit_rip: 0,
            primary: caps.primary,
            lazy_msrs: [0; LAZY_MSRS.len()],
            cstar: 0,
            cr8: 0,
        };
        // A new VMCS starts with a VMCLEAR (SDM Vol. 3C §25.11.3).
        // SAFETY: VMX operation is on (domains exist only after enabling), and the region
        // is ours and active nowhere.
        if let Err(e) = unsafe { vmcs::vmclear(vmcs.as_u64()) } {
            log::error!("VMCLEAR of a new VMCS failed: {e}");
            frames::free(vmcs);
            return None;
        }
        let vpid = (unique_id % 0xffff) as u16 + 1;
        let eptp = vcpu.eptp;
        match vcpu.access(|| init_vmcs(caps, eptp, vpid)) {
            Ok(()) => {
                vcpu.reset_software_state();
                Some(vcpu)
            }
            Err(e) => {
                log::error!("cannot initialise a VMCS: {e}");
                None
            }
        }
    }

    /// Resets what this structure keeps of the guest's state to the PVH entry state.
    fn reset_software_state(&mut self) {
        self.event_pending = false;
        self.lazy_msrs = [0; LAZY_MSRS.len()];
        self.cstar = 0;
        self.cr8 = 0;
        if self.resident_on == Some(percpu::current_index()) {
            LAZY_MSRS.iter().for_each(|&index| wrmsr(index, 0));
        }
        self.flush_pending = true;
    }

    /// Runs `f` with this vCPU's VMCS current on this CPU, loading it just for `f` when the
    /// vCPU is not resident anywhere (its launch state is clear then and stays clear).
    fn access<R>(&self, f: impl FnOnce() -> R) -> R {
        let cpu = percpu::current_index();
        match self.resident_on {
            Some(resident) if resident == cpu => {
                self.make_current(cpu).unwrap_or_else(|e| panic!("VMPTRLD of a resident VMCS: {e}"));
                f()
            }
            Some(resident) => panic!(
                "VMCS of vCPU #{} used on CPU{cpu} while resident on CPU{resident} (leave_cpu not called?)",
                self.unique_id
            ),
            None => {
                assert!(cpu_state(cpu).is_some(), "VMX is not enabled on CPU{cpu}");
                self.make_current(cpu).unwrap_or_else(|e| panic!("VMPTRLD: {e}"));
                let result = f();
                // SAFETY: the VMCS is ours and current on this CPU only; VMCLEAR writes it
                // back and leaves it inactive, as it was.
                if let Err(e) = unsafe { vmcs::vmclear(self.vmcs.as_u64()) } {
                    panic!("VMCLEAR: {e}");
                }
                CURRENT_VMCS[cpu].store(0, Ordering::Relaxed);
                result
            }
        }
    }

    /// Reads a VMCS field of this vCPU, from its slice or from outside it.
    fn read<F: Field>(&self, f: F) -> F::Value {
        self.access(|| field(f))
    }

    fn make_current(&self, cpu: usize) -> Result<(), VmxError> {
        if CURRENT_VMCS[cpu].load(Ordering::Relaxed) != self.vmcs.as_u64() {
            // SAFETY: VMX operation is on here; the VMCS is ours and active on this CPU or
            // on none (the residency rules).
            unsafe { vmcs::vmptrld(self.vmcs.as_u64()) }?;
            CURRENT_VMCS[cpu].store(self.vmcs.as_u64(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes this vCPU resident on `cpu` (its VMCS current, host state and MSRs loaded).
    fn enter_cpu(&mut self, cpu: usize, host: &HostState) -> Result<(), VmxError> {
        match self.resident_on {
            Some(resident) if resident == cpu => return self.make_current(cpu),
            Some(resident) => panic!(
                "vCPU #{} entered on CPU{cpu} while resident on CPU{resident} (leave_cpu not called?)",
                self.unique_id
            ),
            None => {}
        }
        let previous = RESIDENT[cpu].load(Ordering::Relaxed);
        assert!(
            previous == usize::MAX,
            "vCPU #{} entered on CPU{cpu} while vCPU #{previous} is resident there (leave_cpu not called?)",
            self.unique_id
        );
        self.make_current(cpu)?;
        if self.host_state_cpu != Some(cpu) {
            // SAFETY: `host` is this CPU's state, captured when VMX was enabled here.
            unsafe { write_host_state(host) }?;
            self.host_state_cpu = Some(cpu);
        }
        for (&index, &value) in LAZY_MSRS.iter().zip(&self.lazy_msrs) {
            wrmsr(index, value);
        }
        RESIDENT[cpu].store(self.unique_id, Ordering::Relaxed);
        self.resident_on = Some(cpu);
        self.launched = false;
        // Another vCPU ran here since, or this one ran elsewhere: this CPU's cached
        // translations for our EPT pointer may be stale.
        let last = LAST_RESIDENT[cpu].swap(self.unique_id, Ordering::Relaxed);
        if last != self.unique_id || self.last_cpu != Some(cpu) {
            self.flush_pending = true;
        }
        self.last_cpu = Some(cpu);
        Ok(())
    }

    fn flush_if_pending(&mut self) {
        if !self.flush_pending {
            return;
        }
        let result = match caps().ept_flush {
            EptFlush::SingleContext => vmcs::invept(vmcs::Invalidation::SingleContext, self.eptp),
            EptFlush::AllContexts => vmcs::invept(vmcs::Invalidation::AllContexts, 0),
        };
        if let Err(e) = result {
            panic!("INVEPT failed: {e}");
        }
        self.flush_pending = false;
    }

    /// CR0 as the guest sees it.
    fn cr0_view(&self) -> u64 {
        let mask = caps().cr0_mask();
        (self.read(VmcsNatural::GuestCr0) & !mask) | (self.read(VmcsNatural::Cr0ReadShadow) & mask)
    }

    /// CR4 as the guest sees it.
    fn cr4_view(&self) -> u64 {
        let mask = caps().cr4_mask();
        (self.read(VmcsNatural::GuestCr4) & !mask) | (self.read(VmcsNatural::Cr4ReadShadow) & mask)
    }

    /// The event whose delivery the exit interrupted is delivered again on the next entry
    /// (as SVM's EXITINTINFO).
    fn requeue_interrupted_event(&mut self) {
        let info = EventInfo(field(Vmcs32::IdtVectoringInfo));
        if !info.is_valid() {
            return;
        }
        let event = info.for_reinjection();
        set(Vmcs32::EntryInterruptionInfo, event.0);
        if event.has_error_code() {
            set(Vmcs32::EntryExceptionErrorCode, field(Vmcs32::IdtVectoringErrorCode));
        }
        if event.needs_instruction_length() {
            set(Vmcs32::EntryInstructionLength, field(Vmcs32::ExitInstructionLength));
        }
        self.event_pending = true;
    }

    /// Explains a VM entry that failed after the VMCS checks (exit reason bit 31 set).
    fn report_entry_failure(&self, raw: u32) -> &'static str {
        let basic = raw as u16;
        let reason = exit::ExitReason::from_basic(basic);
        let qualification = field(VmcsNatural::ExitQualification);
        let detail = match (reason, qualification) {
            (exit::ExitReason::EntryFailureGuestState, 2) => "PDPTE loading failed",
            (exit::ExitReason::EntryFailureGuestState, 3) => "NMI injection blocked",
            (exit::ExitReason::EntryFailureGuestState, 4) => "invalid VMCS link pointer",
            (exit::ExitReason::EntryFailureGuestState, _) => "a guest-state check failed",
            (exit::ExitReason::EntryFailureMsrLoading, _) => "entry MSR-load area (qualification = failing entry)",
            (exit::ExitReason::EntryFailureMachineCheck, _) => "machine check during VM entry",
            _ => "unexpected",
        };
        log::error!(
            "VM entry failed: exit reason {raw:#x} ({}), qualification {qualification:#x}: {detail}",
            reason.name()
        );
        log::error!(
            "  guest CR0 {:#x} (shadow {:#x}) CR3 {:#x} CR4 {:#x} (shadow {:#x}) EFER {:#x} entry controls {:#x}",
            field(VmcsNatural::GuestCr0),
            field(VmcsNatural::Cr0ReadShadow),
            field(VmcsNatural::GuestCr3),
            field(VmcsNatural::GuestCr4),
            field(VmcsNatural::Cr4ReadShadow),
            field(Vmcs64::GuestEfer),
            field(Vmcs32::EntryControls),
        );
        log::error!(
            "  guest RIP {:#x} RSP {:#x} RFLAGS {:#x} CS {:#x}/{:#x} SS {:#x}/{:#x} TR {:#x}/{:#x} interruptibility {:#x} activity {} event {:#x}",
            field(VmcsNatural::GuestRip),
            field(VmcsNatural::GuestRsp),
            field(VmcsNatural::GuestRflags),
            field(Vmcs16::GuestCsSelector),
            field(Vmcs32::GuestCsAccessRights),
            field(Vmcs16::GuestSsSelector),
            field(Vmcs32::GuestSsAccessRights),
            field(Vmcs16::GuestTrSelector),
            field(Vmcs32::GuestTrAccessRights),
            field(Vmcs32::GuestInterruptibility),
            field(Vmcs32::GuestActivityState),
            field(Vmcs32::EntryInterruptionInfo),
        );
        match reason {
            exit::ExitReason::EntryFailureGuestState => "VM entry failed: invalid guest state (exit reason 33)",
            exit::ExitReason::EntryFailureMsrLoading => "VM entry failed: MSR loading (exit reason 34)",
            exit::ExitReason::EntryFailureMachineCheck => "VM entry failed: machine-check event (exit reason 41)",
            _ => "VM entry failed",
        }
    }

    /// Emulates a control-register access. `None`: done, re-enter the guest.
    fn emulate_cr_access(&mut self, access: CrAccess, regs: &mut GuestRegs) -> Option<VmExit> {
        let caps = caps();
        let wide = self.in_64bit_mode();
        let length = u64::from(field(Vmcs32::ExitInstructionLength));
        let result = match access.kind() {
            CrAccessKind::MovToCr { cr, gpr } => {
                let value = gpr_value(regs, gpr, wide);
                match cr {
                    0 => self.write_cr0(value, caps),
                    3 => {
                        set(VmcsNatural::GuestCr3, value & !(1 << 63));
                        self.flush_pending = true;
                        Ok(())
                    }
                    4 => self.write_cr4(value, caps),
                    8 if value >> 4 != 0 => Err(GP_FAULT),
                    8 => {
                        self.cr8 = value;
                        Ok(())
                    }
                    _ => return Some(unhandled_cr(access)),
                }
            }
            CrAccessKind::MovFromCr { cr: 3, gpr } => {
                set_gpr(regs, gpr, self.read(VmcsNatural::GuestCr3), wide);
                Ok(())
            }
            CrAccessKind::MovFromCr { cr: 8, gpr } => {
                set_gpr(regs, gpr, self.cr8, wide);
                Ok(())
            }
            CrAccessKind::MovFromCr { .. } => return Some(unhandled_cr(access)),
            CrAccessKind::Clts => self.write_cr0(self.cr0_view() & !CR0_TS, caps),
            CrAccessKind::Lmsw { source } => {
                // LMSW loads PE, MP, EM and TS, and cannot clear PE.
                let old = self.cr0_view();
                let value = (old & !0xe) | (u64::from(source) & 0xf) | (old & CR0_PE);
                self.write_cr0(value, caps)
            }
        };
        match result {
            Ok(()) => regs.rip += length,
            Err(vector) => self.inject_exception(vector, Some(0)),
        }
        None
    }

    /// MOV to CR0 with the checks the CPU would make; long mode follows PG when EFER.LME is
    /// set. `Err` carries the exception to raise.
    fn write_cr0(&mut self, value: u64, caps: &VmxCapabilities) -> Result<(), u8> {
        let old = self.cr0_view();
        let mut efer = self.read(Vmcs64::GuestEfer);
        if value >> 32 != 0
            || (value & CR0_PG != 0 && value & CR0_PE == 0)
            || (value & CR0_NW != 0 && value & CR0_CD == 0)
        {
            return Err(GP_FAULT);
        }
        if old & CR0_PG == 0 && value & CR0_PG != 0 && efer & EFER_LME != 0 {
            if self.cr4_view() & CR4_PAE == 0 {
                return Err(GP_FAULT);
            }
            efer |= EFER_LMA;
        }
        if old & CR0_PG != 0 && value & CR0_PG == 0 && efer & EFER_LMA != 0 {
            if self.in_64bit_mode() {
                return Err(GP_FAULT);
            }
            efer &= !EFER_LMA;
        }
        set(Vmcs64::GuestEfer, efer);
        set_long_mode_control(efer);
        set(VmcsNatural::Cr0ReadShadow, value);
        set(VmcsNatural::GuestCr0, caps.cr0_actual(value));
        if (old ^ value) & (CR0_PG | CR0_PE | CR0_WP | CR0_CD) != 0 {
            self.flush_pending = true;
        }
        Ok(())
    }

    /// MOV to CR4: VMXE stays hidden (the guest sees no VMX), unsupported bits fault.
    fn write_cr4(&mut self, value: u64, caps: &VmxCapabilities) -> Result<(), u8> {
        let supported = caps.cr4_fixed1 & !CR4_VMXE;
        let long_mode = self.read(Vmcs64::GuestEfer) & EFER_LMA != 0;
        if value & !supported != 0 || (long_mode && value & CR4_PAE == 0) {
            return Err(GP_FAULT);
        }
        set(VmcsNatural::Cr4ReadShadow, value);
        set(VmcsNatural::GuestCr4, caps.cr4_actual(value));
        self.flush_pending = true;
        Ok(())
    }

    /// Enters the guest once and decodes the exit; internal exits are handled by the loop
    /// in `run`.
    fn enter(&mut self, regs: &mut GuestRegs) -> Result<Handling, &'static str> {
        set(VmcsNatural::GuestRsp, regs.rsp);
        set(VmcsNatural::GuestRip, regs.rip);
        set(VmcsNatural::GuestRflags, regs.rflags);
        if regs.rip != self.exit_rip {
            // The hypervisor completed the instruction that exited: its interrupt shadow
            // (STI; HLT) is over.
            let state = Interruptibility::from_bits_retain(field(Vmcs32::GuestInterruptibility));
            let shadow = Interruptibility::BLOCKING_BY_STI | Interruptibility::BLOCKING_BY_MOV_SS;
            if state.intersects(shadow) {
                set(Vmcs32::GuestInterruptibility, (state - shadow).bits());
            }
        }
        self.flush_if_pending();
        // SAFETY: the VMCS is current and complete (controls, guest state, this CPU's host
        // state with HOST_RIP = vmx_vm_exit); interrupts are disabled by the caller; `regs`
        // is exclusively borrowed for the duration of the call.
        let rflags = unsafe { vmx_world_switch(regs, u64::from(self.launched)) };
        if rflags != 0 {
            let error = VmxError::from_rflags(rflags).err().unwrap_or(VmxError::FailInvalid);
            log::error!("{} failed: {error}", if self.launched { "VMRESUME" } else { "VMLAUNCH" });
            return Err(error.message());
        }
        self.event_pending = false;
        let raw = field(Vmcs32::ExitReason);
        if raw & ENTRY_FAILURE != 0 {
            return Err(self.report_entry_failure(raw));
        }
        self.launched = true;
        regs.rip = field(VmcsNatural::GuestRip);
        regs.rsp = field(VmcsNatural::GuestRsp);
        regs.rflags = field(VmcsNatural::GuestRflags);
        self.exit_rip = regs.rip;
        if !caps().stores_lma {
            set_long_mode_control(field(Vmcs64::GuestEfer));
        }
        self.requeue_interrupted_event();
        Ok(exit::decode(raw as u16, regs))
    }
}

/// Keeps the "IA-32e mode guest" entry control of the current VMCS equal to the guest's
/// EFER.LMA (VM entry requires it with "load IA32_EFER").
fn set_long_mode_control(efer: u64) {
    let mut entry = caps().entry;
    if efer & EFER_LMA != 0 {
        entry |= EntryControls::IA32E_MODE_GUEST;
    }
    set(Vmcs32::EntryControls, entry.bits());
}

fn unhandled_cr(access: CrAccess) -> VmExit {
    VmExit::Unhandled {
        code: 28,
        info1: access.0,
        info2: 0,
        what: "control-register access the backend does not emulate",
    }
}

fn gpr_value(regs: &mut GuestRegs, n: u8, wide: bool) -> u64 {
    let value = *regs.gpr_mut(n);
    if wide {
        value
    } else {
        value & 0xffff_ffff
    }
}

fn set_gpr(regs: &mut GuestRegs, n: u8, value: u64, wide: bool) {
    *regs.gpr_mut(n) = if wide { value } else { value & 0xffff_ffff };
}

/// Writes the control fields and the PVH entry state of a new VMCS (current on this CPU).
fn init_vmcs(caps: &VmxCapabilities, eptp: u64, vpid: u16) -> Result<(), VmxError> {
    let bitmaps = super::bitmaps();
    // SAFETY: the bitmaps are shared frames owned by the backend for good; the EPT
    // pointer names this domain's nested table, which outlives its vCPUs; the MSR areas
    // are unused (counts 0).
    unsafe {
        vmcs::write(Vmcs32::PinBasedControls, caps.pin.bits())?;
        vmcs::write(Vmcs32::PrimaryProcessorControls, caps.primary.bits())?;
        vmcs::write(Vmcs32::SecondaryProcessorControls, caps.secondary.bits())?;
        vmcs::write(Vmcs32::ExitControls, caps.exit.bits())?;
        vmcs::write(Vmcs32::EntryControls, caps.entry.bits())?;
        vmcs::write(Vmcs32::ExceptionBitmap, 0)?;
        vmcs::write(Vmcs32::PageFaultErrorCodeMask, 0)?;
        vmcs::write(Vmcs32::PageFaultErrorCodeMatch, 0)?;
        vmcs::write(Vmcs32::Cr3TargetCount, 0)?;
        vmcs::write(Vmcs32::ExitMsrStoreCount, 0)?;
        vmcs::write(Vmcs32::ExitMsrLoadCount, 0)?;
        vmcs::write(Vmcs32::EntryMsrLoadCount, 0)?;
        vmcs::write(Vmcs32::EntryInterruptionInfo, 0)?;
        vmcs::write(Vmcs64::IoBitmapA, bitmaps.io_a.as_u64())?;
        vmcs::write(Vmcs64::IoBitmapB, bitmaps.io_b.as_u64())?;
        vmcs::write(Vmcs64::MsrBitmap, bitmaps.msr.as_u64())?;
        vmcs::write(Vmcs64::TscOffset, 0)?;
        vmcs::write(Vmcs64::Eptp, eptp)?;
        vmcs::write(Vmcs64::VmcsLinkPointer, u64::MAX)?;
        vmcs::write(VmcsNatural::Cr0GuestHostMask, caps.cr0_mask())?;
        vmcs::write(VmcsNatural::Cr4GuestHostMask, caps.cr4_mask())?;
        if let Some(ticks) = caps.preemption_timer {
            // Reloaded on every entry (its value is not saved on exit).
            vmcs::write(Vmcs32::GuestPreemptionTimer, ticks)?;
        }
        if caps.vpid {
            // VPIDs are 16-bit and never 0 (the host's); sharing one between vCPUs is
            // harmless because translations are flushed whenever vCPUs change CPUs.
            vmcs::write(Vmcs16::Vpid, vpid)?;
        }
    }
    write_initial_state(caps, InitialState::Pvh);
    Ok(())
}

/// The two states a vCPU starts in: the PVH entry (32-bit flat protected mode, paging off,
/// a 32-bit TSS), or real mode at `vector << 12` after a STARTUP IPI.
#[derive(Clone, Copy)]
enum InitialState {
    Pvh,
    RealMode { vector: u8 },
}

/// The four VMCS fields of one guest segment register.
struct SegmentFields {
    selector: Vmcs16,
    limit: Vmcs32,
    rights: Vmcs32,
    base: VmcsNatural,
}

impl SegmentFields {
    fn set(&self, selector: u16, base: u64, limit: u32, rights: u32) {
        set(self.selector, selector);
        set(self.base, base);
        set(self.limit, limit);
        set(self.rights, rights);
    }
}

const GUEST_CS: SegmentFields = SegmentFields {
    selector: Vmcs16::GuestCsSelector,
    limit: Vmcs32::GuestCsLimit,
    rights: Vmcs32::GuestCsAccessRights,
    base: VmcsNatural::GuestCsBase,
};
const GUEST_TR: SegmentFields = SegmentFields {
    selector: Vmcs16::GuestTrSelector,
    limit: Vmcs32::GuestTrLimit,
    rights: Vmcs32::GuestTrAccessRights,
    base: VmcsNatural::GuestTrBase,
};

/// The VMCS access-rights form of packed 12-bit segment attributes: bits 8-11 move to 12-15,
/// and an empty descriptor becomes "unusable".
fn vmx_access_rights(attributes: u16) -> u32 {
    if attributes == 0 {
        return AccessRights::UNUSABLE.0;
    }
    let attributes = u32::from(attributes);
    (attributes & 0xff) | ((attributes & 0xf00) << 4)
}

/// DS, ES, SS, FS and GS, which start out alike.
const GUEST_DATA_SEGMENTS: [SegmentFields; 5] = [
    SegmentFields {
        selector: Vmcs16::GuestDsSelector,
        limit: Vmcs32::GuestDsLimit,
        rights: Vmcs32::GuestDsAccessRights,
        base: VmcsNatural::GuestDsBase,
    },
    SegmentFields {
        selector: Vmcs16::GuestEsSelector,
        limit: Vmcs32::GuestEsLimit,
        rights: Vmcs32::GuestEsAccessRights,
        base: VmcsNatural::GuestEsBase,
    },
    SegmentFields {
        selector: Vmcs16::GuestSsSelector,
        limit: Vmcs32::GuestSsLimit,
        rights: Vmcs32::GuestSsAccessRights,
        base: VmcsNatural::GuestSsBase,
    },
    SegmentFields {
        selector: Vmcs16::GuestFsSelector,
        limit: Vmcs32::GuestFsLimit,
        rights: Vmcs32::GuestFsAccessRights,
        base: VmcsNatural::GuestFsBase,
    },
    SegmentFields {
        selector: Vmcs16::GuestGsSelector,
        limit: Vmcs32::GuestGsLimit,
        rights: Vmcs32::GuestGsAccessRights,
        base: VmcsNatural::GuestGsBase,
    },
];

fn write_initial_state(caps: &VmxCapabilities, state: InitialState) {
    const CODE32: u32 = 0xc09b; // present, DPL 0, execute/read accessed, 32-bit, 4 KiB granular
    const DATA32: u32 = 0xc093; // present, DPL 0, read/write accessed, 32-bit, 4 KiB granular
    const CODE16: u32 = 0x9b; // present, execute/read accessed, 16-bit, byte granular
    const DATA16: u32 = 0x93;
    const TSS32_BUSY: u32 = 0x8b;
    // (code selector, code base, data selector, limit, code rights, data rights, TR limit, CR0)
    let (cs, cs_base, ds, limit, code, data, tr_limit, cr0) = match state {
        InitialState::Pvh => (0x10, 0, 0x18, 0xffff_ffff, CODE32, DATA32, 0x67, CR0_PE | (1 << 4)),
        InitialState::RealMode { vector } => {
            (u16::from(vector) << 8, u64::from(vector) << 12, 0, 0xffff, CODE16, DATA16, 0xffff, 1 << 4)
        }
    };
    GUEST_CS.set(cs, cs_base, limit, code);
    for segment in &GUEST_DATA_SEGMENTS {
        segment.set(ds, 0, limit, data);
    }
    set(Vmcs16::GuestTrSelector, if matches!(state, InitialState::Pvh) { 0x20 } else { 0 });
    set(Vmcs32::GuestTrLimit, tr_limit);
    set(Vmcs32::GuestTrAccessRights, TSS32_BUSY);
    set(VmcsNatural::GuestTrBase, 0);
    set(Vmcs16::GuestLdtrSelector, 0);
    set(Vmcs32::GuestLdtrLimit, 0);
    set(Vmcs32::GuestLdtrAccessRights, AccessRights::UNUSABLE.0);
    set(VmcsNatural::GuestLdtrBase, 0);
    set(Vmcs32::GuestGdtrLimit, 0);
    set(VmcsNatural::GuestGdtrBase, 0);
    set(Vmcs32::GuestIdtrLimit, 0);
    set(VmcsNatural::GuestIdtrBase, 0);
    set(VmcsNatural::Cr0ReadShadow, cr0);
    set(VmcsNatural::GuestCr0, caps.cr0_actual(cr0));
    set(VmcsNatural::Cr4ReadShadow, 0);
    set(VmcsNatural::GuestCr4, caps.cr4_actual(0));
    set(VmcsNatural::GuestCr3, 0);
    set(Vmcs64::GuestEfer, 0);
    set(Vmcs32::EntryControls, caps.entry.bits());
    set(Vmcs64::GuestPat, DEFAULT_PAT);
    set(Vmcs64::GuestDebugCtl, 0);
    set(VmcsNatural::GuestDr7, 0x400);
    set(Vmcs32::GuestSysenterCs, 0);
    set(VmcsNatural::GuestSysenterEsp, 0);
    set(VmcsNatural::GuestSysenterEip, 0);
    set(Vmcs32::GuestInterruptibility, 0);
    set(Vmcs32::GuestActivityState, 0);
    set(VmcsNatural::GuestPendingDebugExceptions, 0);
    set(Vmcs32::EntryInterruptionInfo, 0);
}

/// Writes this CPU's host state into the current VMCS.
///
/// # Safety
/// `host` must be the state captured on the executing CPU, and the VMCS current here.
unsafe fn write_host_state(host: &HostState) -> Result<(), VmxError> {
    // SAFETY: the values describe this CPU exactly (captured when VMX was enabled on it, and
    // the hypervisor never changes them afterwards); HOST_RIP is the exit path of the world
    // switch below, which expects HOST_RSP to be written right before entry.
    unsafe {
        vmcs::write(VmcsNatural::HostCr0, host.cr0)?;
        vmcs::write(VmcsNatural::HostCr3, host.cr3)?;
        vmcs::write(VmcsNatural::HostCr4, host.cr4)?;
        vmcs::write(Vmcs16::HostCsSelector, host.cs & !7)?;
        vmcs::write(Vmcs16::HostSsSelector, host.ss & !7)?;
        vmcs::write(Vmcs16::HostDsSelector, host.ds & !7)?;
        vmcs::write(Vmcs16::HostEsSelector, host.es & !7)?;
        vmcs::write(Vmcs16::HostFsSelector, host.fs & !7)?;
        vmcs::write(Vmcs16::HostGsSelector, host.gs & !7)?;
        vmcs::write(Vmcs16::HostTrSelector, host.tr & !7)?;
        vmcs::write(VmcsNatural::HostFsBase, host.fs_base)?;
        vmcs::write(VmcsNatural::HostGsBase, host.gs_base)?;
        vmcs::write(VmcsNatural::HostTrBase, host.tr_base)?;
        vmcs::write(VmcsNatural::HostGdtrBase, host.gdtr_base)?;
        vmcs::write(VmcsNatural::HostIdtrBase, host.idtr_base)?;
        vmcs::write(Vmcs32::HostSysenterCs, host.sysenter_cs)?;
        vmcs::write(VmcsNatural::HostSysenterEsp, host.sysenter_esp)?;
        vmcs::write(VmcsNatural::HostSysenterEip, host.sysenter_eip)?;
        vmcs::write(Vmcs64::HostEfer, host.efer)?;
        vmcs::write(Vmcs64::HostPat, host.pat)?;
        vmcs::write(VmcsNatural::HostRip, vmx_vm_exit as *const () as u64)?;
    }
    Ok(())
}

impl HardwareVcpu for VmxVcpu {
    fn reset_to_pvh_entry_state(&mut self) {
        let caps = caps();
        self.access(|| write_initial_state(caps, InitialState::Pvh));
        self.reset_software_state();
    }

    fn code_segment_base(&self) -> u64 {
        self.access(|| field(VmcsNatural::GuestCsBase))
    }

    fn reset_to_real_mode(&mut self, vector: u8) {
        let caps = caps();
        self.access(|| write_initial_state(caps, InitialState::RealMode { vector }));
        self.reset_software_state();
    }

    fn load_start_state(&mut self, state: &StartState) {
        let caps = caps();
        self.access(|| {
            // FS, GS, LDTR and the descriptor tables as a vCPU is created (as on Xen).
            write_initial_state(caps, InitialState::RealMode { vector: 0 });
            for (fields, segment) in [
                (&GUEST_CS, &state.cs),
                (&GUEST_DATA_SEGMENTS[0], &state.ds),
                (&GUEST_DATA_SEGMENTS[1], &state.es),
                (&GUEST_DATA_SEGMENTS[2], &state.ss),
                (&GUEST_TR, &state.tr),
            ] {
                fields.set(segment.selector, segment.base, segment.limit, vmx_access_rights(segment.attributes));
            }
            set(VmcsNatural::Cr0ReadShadow, state.cr0);
            set(VmcsNatural::GuestCr0, caps.cr0_actual(state.cr0));
            set(VmcsNatural::Cr4ReadShadow, state.cr4);
            set(VmcsNatural::GuestCr4, caps.cr4_actual(state.cr4));
            set(VmcsNatural::GuestCr3, state.cr3);
            set(Vmcs64::GuestEfer, state.efer);
            set_long_mode_control(state.efer);
        });
        self.reset_software_state();
    }

    fn run(&mut self, regs: &mut GuestRegs) -> VmExit {
        let cpu = percpu::current_index();
        let Some(state) = cpu_state(cpu) else {
            return VmExit::EntryFailed { reason: "VMX is not enabled on this CPU" };
        };
        if let Err(e) = self.enter_cpu(cpu, &state.host) {
            log::error!("CPU{cpu}: cannot load the VMCS of vCPU #{}: {e}", self.unique_id);
            return VmExit::EntryFailed { reason: e.message() };
        }
        loop {
            match self.enter(regs) {
                Err(reason) => return VmExit::EntryFailed { reason },
                Ok(Handling::Exit(exit)) => return exit,
                Ok(Handling::ControlRegister(access)) => {
                    if let Some(exit) = self.emulate_cr_access(access, regs) {
                        return exit;
                    }
                }
                Ok(Handling::Cstar { write }) => {
                    if write {
                        self.cstar = (regs.rdx << 32) | (regs.rax & 0xffff_ffff);
                    } else {
                        regs.rax = self.cstar & 0xffff_ffff;
                        regs.rdx = self.cstar >> 32;
                    }
                    regs.rip += u64::from(field(Vmcs32::ExitInstructionLength));
                }
                Ok(Handling::HostNmi) => {
                    // SAFETY: vector 2 is the host's NMI handler, which runs on its own IST
                    // stack; invoking it by INT is how the NMI this exit consumed reaches it.
                    unsafe { core::arch::asm!("int 2") };
                    return VmExit::ExternalInterrupt;
                }
            }
        }
    }

    fn leave_cpu(&mut self) {
        let cpu = percpu::current_index();
        match self.resident_on {
            None => return,
            Some(resident) if resident != cpu => {
                panic!("vCPU #{} left CPU{cpu} but is resident on CPU{resident}", self.unique_id)
            }
            Some(_) => {}
        }
        let host = cpu_state(cpu).expect("a vCPU is resident on a CPU without VMX").host;
        for (i, &index) in LAZY_MSRS.iter().enumerate() {
            self.lazy_msrs[i] = rdmsr(index);
            wrmsr(index, host.lazy_msrs[i]);
        }
        // SAFETY: the VMCS is ours and active on this CPU; VMCLEAR writes it back to its
        // region so that any CPU can load it next.
        if let Err(e) = unsafe { vmcs::vmclear(self.vmcs.as_u64()) } {
            panic!("VMCLEAR of vCPU #{} on CPU{cpu}: {e}", self.unique_id);
        }
        let _ = CURRENT_VMCS[cpu].compare_exchange(self.vmcs.as_u64(), 0, Ordering::Relaxed, Ordering::Relaxed);
        RESIDENT[cpu].store(usize::MAX, Ordering::Relaxed);
        self.resident_on = None;
        self.launched = false;
    }

    fn paging_state(&self) -> PagingState {
        PagingState {
            cr0: self.cr0_view(),
            cr3: self.read(VmcsNatural::GuestCr3),
            cr4: self.cr4_view(),
            efer: self.read(Vmcs64::GuestEfer),
        }
    }

    fn guest_efer(&self) -> u64 {
        self.read(Vmcs64::GuestEfer)
    }

    fn cpl(&self) -> u8 {
        AccessRights(self.read(Vmcs32::GuestSsAccessRights)).dpl()
    }

    fn in_64bit_mode(&self) -> bool {
        self.read(Vmcs64::GuestEfer) & EFER_LMA != 0 && AccessRights(self.read(Vmcs32::GuestCsAccessRights)).long_mode()
    }

    fn set_guest_efer(&mut self, value: u64) {
        self.access(|| {
            set(Vmcs64::GuestEfer, value);
            set_long_mode_control(value);
        });
    }

    fn interrupt_shadow(&self) -> bool {
        let state = Interruptibility::from_bits_retain(self.read(Vmcs32::GuestInterruptibility));
        state.intersects(Interruptibility::BLOCKING_BY_STI | Interruptibility::BLOCKING_BY_MOV_SS)
    }

    fn event_pending(&self) -> bool {
        self.event_pending
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.access(|| set(Vmcs32::EntryInterruptionInfo, EventInfo::external_interrupt(vector).0));
        self.event_pending = true;
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        self.access(|| {
            // Real-mode guests (unrestricted guest with CR0.PE clear) get no error codes,
            // and only the exceptions that push one may carry it.
            let protected = field(VmcsNatural::GuestCr0) & CR0_PE != 0;
            let code = error_code.filter(|_| protected && vmcs::exception_has_error_code(vector));
            set(Vmcs32::EntryInterruptionInfo, EventInfo::hardware_exception(vector, code.is_some()).0);
            if let Some(code) = code {
                set(Vmcs32::EntryExceptionErrorCode, code);
            }
        });
        self.event_pending = true;
    }

    fn flush_nested_tlb(&mut self) {
        self.flush_pending = true;
    }

    fn set_interrupt_window_exiting(&mut self, enabled: bool) {
        let mut primary = self.primary;
        primary.set(PrimaryControls::INTERRUPT_WINDOW_EXITING, enabled);
        if primary == self.primary {
            return;
        }
        self.access(|| set(Vmcs32::PrimaryProcessorControls, primary.bits()));
        self.primary = primary;
    }

    fn hypercall_instruction(&self) -> [u8; 3] {
        [0x0f, 0x01, 0xc1] // vmcall
    }
}

impl Drop for VmxVcpu {
    fn drop(&mut self) {
        if let Some(cpu) = self.resident_on {
            if cpu == percpu::current_index() {
                self.leave_cpu();
            } else {
                // The VMCS may still be written back by that CPU: never reuse the frame.
                log::error!("vCPU #{} dropped while resident on CPU{cpu}; leaking its VMCS", self.unique_id);
                return;
            }
        }
        frames::free(self.vmcs);
    }
}

const _: () = assert!(RFLAGS_IF == crate::virt::RFLAGS_IF);
/// General-purpose registers as `vmx_world_switch` lays them out.
const _: () = {
    assert!(core::mem::offset_of!(GuestRegs, rax) == 0);
    assert!(core::mem::offset_of!(GuestRegs, rbx) == 8);
    assert!(core::mem::offset_of!(GuestRegs, rdi) == 40);
    assert!(core::mem::offset_of!(GuestRegs, rbp) == 48);
    assert!(core::mem::offset_of!(GuestRegs, r8) == 64);
    assert!(core::mem::offset_of!(GuestRegs, r15) == 120);
};

extern "C" {
    /// Enters the guest (VMLAUNCH if `launched` is 0, else VMRESUME) and returns at its
    /// next VM exit with 0, or at once with the RFLAGS of the failed instruction.
    fn vmx_world_switch(regs: *mut GuestRegs, launched: u64) -> u64;
    /// HOST_RIP: where every VM exit lands (the second half of `vmx_world_switch`).
    fn vmx_vm_exit();
}

// The world switch. RSP, RIP and RFLAGS travel in the VMCS; the other general registers are
// loaded from and saved to `GuestRegs` here. HOST_RSP is written just before entry, pointing
// at the saved `regs` pointer; host callee-saved registers are on the stack below it.
// Interrupts stay disabled (RFLAGS.IF = 0) on both sides: an external interrupt makes the
// guest exit without being acknowledged, and the host takes it when the caller enables
// interrupts.
core::arch::global_asm!(
    r#"
.section .text
.global vmx_world_switch
vmx_world_switch:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi
    mov rax, {host_rsp}
    vmwrite rax, rsp
    test rsi, rsi
    mov rax, [rdi + 0]
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
    jnz 2f
    vmlaunch
    jmp 3f
2:
    vmresume
3:
    pushfq
    pop rax
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

.global vmx_vm_exit
vmx_vm_exit:
    push rax
    mov rax, [rsp + 8]
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
    pop rbx
    mov [rax + 0], rbx
    add rsp, 8
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    xor eax, eax
    ret
"#,
    host_rsp = const 0x6c14,
);

const _: () = assert!(VmcsNatural::HostRsp as u32 == 0x6c14);

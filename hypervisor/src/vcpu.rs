//! Generic virtual CPUs: the register state and hardware vCPU of one guest CPU, its timer
//! and pending upcall, and the loop that runs it for one scheduler time slice.

use crate::arch::x86_64::time;
use crate::domain::Domain;
use crate::exit::{self, Action};
use crate::sched::SchedData;
use crate::virt::{self, GuestRegs, HardwareVcpu, RFLAGS_IF};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

/// x87/SSE state (FXSAVE format). The hypervisor itself never touches these registers,
/// so a vCPU's values stay in the CPU for its whole slice and are saved when it leaves.
#[repr(C, align(16))]
struct FpuState([u8; 512]);

impl FpuState {
    fn initial() -> Box<Self> {
        let mut state = Box::new(FpuState([0; 512]));
        state.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW after FNINIT
        state.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR at reset
        state
    }

    fn save(&mut self) {
        // SAFETY: the area is 512 bytes, 16-byte aligned and ours; CR4.OSFXSR is set on
        // every CPU, so FXSAVE64 is valid in ring 0.
        unsafe { core::arch::asm!("fxsave64 [{}]", in(reg) self.0.as_mut_ptr(), options(nostack, preserves_flags)) };
    }

    fn restore(&self) {
        // SAFETY: as in `save`; the area holds a valid FXSAVE image (initial or saved).
        unsafe { core::arch::asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags)) };
    }
}

/// State touched only by the CPU currently running the vCPU.
pub struct Exec {
    pub hw: Box<dyn HardwareVcpu>,
    pub regs: GuestRegs,
    fpu: Box<FpuState>,
}

pub struct Vcpu {
    pub domain: Arc<Domain>,
    pub id: u32,
    pub sched: SchedData,
    /// Xen system time (ns) at which the one-shot timer fires; 0 = not armed.
    timer_deadline_ns: AtomicU64,
    /// An upcall (event) waits to be delivered.
    upcall_pending: AtomicBool,
    exec: Mutex<Exec>,
}

/// Why a slice ended, for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    Preempted,
    Yielded,
    Blocked,
    /// The vCPU went down (HLT with interrupts off, as on Xen) and runs no more.
    Down,
    DomainEnded,
}

static NEXT_UNIQUE: AtomicUsize = AtomicUsize::new(0);

impl Vcpu {
    pub fn new(domain: &Arc<Domain>, id: u32) -> Option<Arc<Vcpu>> {
        let unique = NEXT_UNIQUE.fetch_add(1, Ordering::Relaxed);
        let hw = virt::new_vcpu(domain.ram.nested_root(), unique)?;
        Some(Arc::new(Vcpu {
            domain: domain.clone(),
            id,
            sched: SchedData::new(domain.weight, domain.affinity, id == 0),
            timer_deadline_ns: AtomicU64::new(0),
            upcall_pending: AtomicBool::new(false),
            exec: Mutex::new(Exec { hw, regs: GuestRegs::default(), fpu: FpuState::initial() }),
        }))
    }

    /// Starts the vCPU at a PVH entry point with `start_info` in EBX.
    pub fn set_pvh_entry(&self, entry: u32, start_info: u32) {
        let mut exec = self.exec.lock();
        exec.hw.reset_to_pvh_entry_state();
        exec.regs =
            GuestRegs { rip: u64::from(entry), rbx: u64::from(start_info), rflags: 0x2, ..GuestRegs::default() };
    }

    /// Arms (or with 0, cancels) the one-shot timer.
    pub fn set_timer(&self, deadline_ns: u64) {
        self.timer_deadline_ns.store(deadline_ns, Ordering::Release);
    }

    fn timer_expired(&self, now: u64) -> bool {
        let deadline = self.timer_deadline_ns.load(Ordering::Acquire);
        deadline != 0 && now >= deadline
    }

    /// Whether a blocked vCPU has something to wake up for.
    pub fn has_wake_event(&self) -> bool {
        self.upcall_pending.load(Ordering::Acquire) || self.timer_expired(time::system_time_ns())
    }

    /// Turns an expired timer into a pending upcall and delivers the upcall if the guest
    /// can take it now (otherwise asks to exit when it can).
    fn deliver_events(&self, exec: &mut Exec) {
        let now = time::system_time_ns();
        let deadline = self.timer_deadline_ns.load(Ordering::Acquire);
        if deadline != 0
            && now >= deadline
            && self.timer_deadline_ns.compare_exchange(deadline, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.upcall_pending.store(true, Ordering::Release);
        }
        if !self.upcall_pending.load(Ordering::Acquire) {
            return;
        }
        let Some(vector) = self.domain.callback_vector() else {
            // No upcall vector: the event's only effect is to wake the vCPU, done.
            self.upcall_pending.store(false, Ordering::Release);
            return;
        };
        if exec.hw.event_pending() {
            return;
        }
        if exec.regs.rflags & RFLAGS_IF != 0 && !exec.hw.interrupt_shadow() {
            exec.hw.inject_interrupt(vector);
            exec.hw.set_interrupt_window_exiting(false);
            self.upcall_pending.store(false, Ordering::Release);
        } else {
            exec.hw.set_interrupt_window_exiting(true);
        }
    }

    /// Runs the vCPU on this CPU until it blocks, yields, ends, or `slice_end_tsc` passes.
    pub fn run_slice(&self, slice_end_tsc: u64) -> SliceEnd {
        let mut guard = self.exec.lock();
        let exec = &mut *guard;
        exec.fpu.restore();
        let end = loop {
            if self.domain.is_dying() {
                break SliceEnd::DomainEnded;
            }
            self.deliver_events(exec);
            x86_64::instructions::interrupts::disable();
            let exit = exec.hw.run(&mut exec.regs);
            // A physical interrupt that caused the exit is taken here.
            x86_64::instructions::interrupts::enable();
            match exit::handle(self, exec, exit) {
                Action::Continue => {}
                Action::Block if self.has_wake_event() => {}
                Action::Block => break SliceEnd::Blocked,
                Action::Yield => break SliceEnd::Yielded,
                Action::Down => break SliceEnd::Down,
                Action::Stop => break SliceEnd::DomainEnded,
            }
            if time::rdtsc() >= slice_end_tsc {
                break SliceEnd::Preempted;
            }
        };
        exec.fpu.save();
        end
    }
}

//! Generic virtual CPUs: the register state and hardware vCPU of one guest CPU, its Xen
//! timers and event upcall, the time and run-state areas Xen keeps current for the guest,
//! and the loop that runs it for one scheduler time slice.

use crate::arch::x86_64::time;
use crate::domain::Domain;
use crate::evtchn::{
    self,
    two_level::{PageView, VcpuInfoView, VCPU_INFO_PENDING_SEL, VCPU_INFO_SIZE, VCPU_INFO_UPCALL_PENDING},
};
use crate::exit::{self, Action};
use crate::guest_access::{copy_from_guest, copy_to_guest};
use crate::sched;
use crate::sched::SchedData;
use crate::virt::{self, GuestRegs, HardwareVcpu, StartState, RFLAGS_IF};
use crate::vlapic::VLapic;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
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
    /// The guest-RAM generation this vCPU's TLB reflects.
    nested_generation: u64,
}

/// `PVCLOCK_TSC_STABLE_BIT` in `vcpu_time_info.flags`.
const PVCLOCK_TSC_STABLE: u64 = 1;
/// `VMASST_TYPE_runstate_update_flag`.
pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u32 = 5;

pub struct Vcpu {
    pub id: u32,
    pub sched: SchedData,
    /// Host address of this vCPU's `vcpu_info` (0: none yet).
    vcpu_info: AtomicU64,
    /// Xen system time (ns) of the one-shot timer (`VCPUOP_set_singleshot_timer`,
    /// `set_timer_op`); 0 = not armed.
    singleshot_ns: AtomicU64,
    /// Periodic timer (`VCPUOP_set_periodic_timer`): period and next expiry, 0 = off.
    periodic_period_ns: AtomicU64,
    periodic_next_ns: AtomicU64,
    /// Ports this vCPU waits for in `SCHEDOP_poll`, with the poll's deadline.
    poll: Mutex<Option<Poll>>,
    pub lapic: Mutex<VLapic>,
    /// Set by INIT to a running vCPU: it leaves the CPU and waits for STARTUP.
    stop_requested: AtomicBool,
    /// Guest-virtual addresses of the areas Xen keeps current for the guest.
    areas: Mutex<GuestAreas>,
    exec: Mutex<Exec>,
    /// Declared last so it is dropped last: the hardware vCPU (and its frames) must be
    /// gone before the domain's own `Drop` reports the domain's memory returned.
    pub domain: Arc<Domain>,
}

#[derive(Debug, Clone, Default)]
struct Poll {
    ports: Vec<u32>,
    deadline_ns: u64,
    /// The guest polled with interrupts enabled: then any upcall also ends the poll.
    interruptible: bool,
}

/// `VCPUOP_register_runstate_memory_area` / `register_vcpu_time_memory_area` targets and
/// the run-state accounting reported through them.
#[derive(Debug, Default)]
struct GuestAreas {
    vcpu_info_registered: bool,
    runstate: Option<u64>,
    time: Option<u64>,
    state: u32,
    state_entry_ns: u64,
    state_time: [u64; 4],
}

/// `RUNSTATE_*` (`public/vcpu.h`).
pub mod runstate {
    pub const RUNNING: u32 = 0;
    pub const RUNNABLE: u32 = 1;
    pub const BLOCKED: u32 = 2;
    pub const OFFLINE: u32 = 3;
    /// Set in `state_entry_time` while an update is in progress (VMASST runstate_update_flag).
    pub const UPDATE_FLAG: u64 = 1 << 63;
}

/// Why a slice ended, for the scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    Preempted,
    Yielded,
    Blocked,
    /// The vCPU went down (HLT with interrupts off, VCPUOP_down) and waits to be brought up.
    Down,
    DomainEnded,
}

static NEXT_UNIQUE: AtomicUsize = AtomicUsize::new(0);

impl Vcpu {
    /// A vCPU of `domain`; `started` gives it the domain builder's context (vCPU 0 of a
    /// domain the hypervisor builds) and makes it runnable, else it waits down for one.
    pub fn new(domain: &Arc<Domain>, id: u32, started: bool) -> Option<Arc<Vcpu>> {
        let unique = NEXT_UNIQUE.fetch_add(1, Ordering::Relaxed);
        let hw = virt::new_vcpu(domain.ram.nested_root(), unique)?;
        let vcpu_info = domain.default_vcpu_info(id).map(|v| v.0 .0).unwrap_or(0);
        Some(Arc::new(Vcpu {
            domain: domain.clone(),
            id,
            sched: SchedData::new(domain.weight, domain.affinity, started),
            vcpu_info: AtomicU64::new(vcpu_info),
            singleshot_ns: AtomicU64::new(0),
            periodic_period_ns: AtomicU64::new(0),
            periodic_next_ns: AtomicU64::new(0),
            poll: Mutex::new(None),
            lapic: Mutex::new({
                let mut lapic = VLapic::new(id);
                lapic.wait_for_sipi = !started;
                lapic
            }),
            stop_requested: AtomicBool::new(false),
            areas: Mutex::new(GuestAreas { state: runstate::OFFLINE, ..GuestAreas::default() }),
            exec: Mutex::new(Exec {
                hw,
                regs: GuestRegs::default(),
                fpu: FpuState::initial(),
                nested_generation: u64::MAX,
            }),
        }))
    }

    /// Starts the vCPU at a PVH entry point with `start_info` in EBX.
    pub fn set_pvh_entry(&self, entry: u32, start_info: u32) {
        let mut exec = self.exec.lock();
        exec.hw.reset_to_pvh_entry_state();
        exec.regs =
            GuestRegs { rip: u64::from(entry), rbx: u64::from(start_info), rflags: 0x2, ..GuestRegs::default() };
    }

    /// VCPUOP_initialise: gives a vCPU without a context (one still waiting for its STARTUP
    /// IPI) the one `build` makes; it stays down until VCPUOP_up. `already` is returned for
    /// a vCPU that has a context. Under the local APIC lock, as a STARTUP IPI, so the two
    /// cannot both start the vCPU.
    pub fn initialise<E>(
        &self,
        already: E,
        build: impl FnOnce() -> Result<(StartState, GuestRegs), E>,
    ) -> Result<(), E> {
        let mut lapic = self.lapic.lock();
        if !lapic.wait_for_sipi {
            return Err(already);
        }
        let (state, regs) = build()?;
        let mut exec = self.exec.lock();
        exec.hw.load_start_state(&state);
        exec.regs = regs;
        lapic.wait_for_sipi = false;
        Ok(())
    }

    /// STARTUP IPI: real mode at `vector` << 12.
    pub fn reset_to_real_mode(&self, vector: u8) {
        let mut exec = self.exec.lock();
        exec.hw.reset_to_real_mode(vector);
        exec.regs = GuestRegs { rflags: 0x2, ..GuestRegs::default() };
    }

    /// Asks a running vCPU to leave the CPU and go down (INIT).
    pub fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
    }

    /// Withdraws a stop the vCPU has not acted on yet (VCPUOP_up right after VCPUOP_down).
    pub fn cancel_stop(&self) {
        self.stop_requested.store(false, Ordering::Release);
    }

    /// Whether the vCPU has a register context to run: vCPU 0 from the domain builder, the
    /// others from a STARTUP IPI. INIT takes it away again.
    pub fn is_initialised(&self) -> bool {
        !self.lapic.lock().wait_for_sipi
    }

    pub fn vcpu_info(&self) -> Option<VcpuInfoView> {
        let va = self.vcpu_info.load(Ordering::Acquire);
        (va != 0).then_some(VcpuInfoView(PageView(va)))
    }

    pub fn has_registered_vcpu_info(&self) -> bool {
        self.areas.lock().vcpu_info_registered
    }

    /// Moves `vcpu_info` to `new` (VCPUOP_register_vcpu_info): the old contents are carried
    /// over and, as Xen does, every selector bit and the upcall flag are set so no event
    /// raised meanwhile is lost.
    pub fn register_vcpu_info(&self, new: PageView) {
        if let Some(old) = self.vcpu_info() {
            for offset in (0..VCPU_INFO_SIZE).step_by(8) {
                new.write_u64(offset, old.0.read_u64(offset));
            }
        }
        new.write_u64(VCPU_INFO_PENDING_SEL, u64::MAX);
        new.write_u8(VCPU_INFO_UPCALL_PENDING, 1);
        self.vcpu_info.store(new.0, Ordering::Release);
        self.areas.lock().vcpu_info_registered = true;
        self.update_time_info(None);
        sched::kick(self);
    }

    /// The guest's view of its run state (`struct vcpu_runstate_info`).
    pub fn runstate_record(&self) -> [u8; 48] {
        let areas = self.areas.lock();
        let now = time::system_time_ns();
        let mut record = [0u8; 48];
        record[0..4].copy_from_slice(&areas.state.to_le_bytes());
        record[8..16].copy_from_slice(&areas.state_entry_ns.to_le_bytes());
        for (i, t) in areas.state_time.iter().enumerate() {
            let mut total = *t;
            if i == areas.state as usize && areas.state_entry_ns != 0 {
                total += now.saturating_sub(areas.state_entry_ns);
            }
            record[16 + i * 8..24 + i * 8].copy_from_slice(&total.to_le_bytes());
        }
        record
    }

    /// Arms (or with 0, cancels) the one-shot timer.
    pub fn set_singleshot(&self, deadline_ns: u64) {
        self.singleshot_ns.store(deadline_ns, Ordering::Release);
    }

    pub fn set_periodic(&self, period_ns: u64) {
        self.periodic_period_ns.store(period_ns, Ordering::Release);
        let next = if period_ns == 0 { 0 } else { time::system_time_ns() + period_ns };
        self.periodic_next_ns.store(next, Ordering::Release);
    }

    /// Fires due timers as VIRQ_TIMER events.
    fn fire_timers(&self, now: u64) {
        let deadline = self.singleshot_ns.load(Ordering::Acquire);
        if deadline != 0
            && now >= deadline
            && self.singleshot_ns.compare_exchange(deadline, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            evtchn::send_virq(&self.domain, self.id, evtchn::virq::TIMER);
        }
        let next = self.periodic_next_ns.load(Ordering::Acquire);
        let period = self.periodic_period_ns.load(Ordering::Acquire);
        if next != 0 && period != 0 && now >= next {
            // Missed periods collapse into one event, as with Xen's periodic timer.
            let missed = (now - next) / period + 1;
            if self
                .periodic_next_ns
                .compare_exchange(next, next + missed * period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                evtchn::send_virq(&self.domain, self.id, evtchn::virq::TIMER);
            }
        }
    }

    fn upcall_pending(&self) -> bool {
        self.vcpu_info().is_some_and(|v| v.upcall_pending())
    }

    /// Starts `SCHEDOP_poll`: returns false if one of `ports` is already pending.
    pub fn start_poll(&self, ports: Vec<u32>, deadline_ns: u64, interruptible: bool) -> bool {
        let bitmaps = self.domain.event_bitmaps();
        if ports.iter().any(|&p| bitmaps.is_pending(p)) || (interruptible && self.upcall_pending()) {
            return false;
        }
        *self.poll.lock() = Some(Poll { ports, deadline_ns, interruptible });
        true
    }

    pub fn polling(&self, port: u32) -> bool {
        self.poll.lock().as_ref().is_some_and(|p| p.ports.contains(&port))
    }

    fn poll_done(&self, now: u64) -> bool {
        let mut poll = self.poll.lock();
        let done = match poll.as_ref() {
            None => return false,
            Some(p) => {
                let bitmaps = self.domain.event_bitmaps();
                p.ports.iter().any(|&port| bitmaps.is_pending(port)) || (p.deadline_ns != 0 && now >= p.deadline_ns)
            }
        };
        if done {
            *poll = None;
        }
        done
    }

    /// Whether a blocked vCPU has something to wake up for (fires due timers first).
    pub fn has_wake_event(&self) -> bool {
        let now = time::system_time_ns();
        self.fire_timers(now);
        let lapic_ready = {
            let mut lapic = self.lapic.lock();
            lapic.check_timer(now);
            lapic.has_deliverable()
        };
        let polling_masked = self.poll.lock().as_ref().is_some_and(|p| !p.interruptible);
        // A poll with interrupts off ends only for its ports or its timeout (Xen checks
        // `local_events_need_delivery`, which needs IF); any other block ends on an upcall.
        (!polling_masked && (self.upcall_pending() || lapic_ready)) || self.poll_done(now)
    }

    /// Delivers the event upcall on the domain's callback vector if the guest can take it
    /// now; otherwise asks to exit as soon as it can.
    fn deliver_events(&self, exec: &mut Exec) {
        let now = time::system_time_ns();
        self.fire_timers(now);
        let upcall = self.upcall_pending() && self.domain.callback_vector().is_some();
        let lapic_ready = {
            let mut lapic = self.lapic.lock();
            lapic.check_timer(now);
            lapic.has_deliverable()
        };
        let wanted = upcall || lapic_ready;
        if !wanted || exec.hw.event_pending() {
            exec.hw.set_interrupt_window_exiting(wanted);
            return;
        }
        if exec.regs.rflags & RFLAGS_IF == 0 || exec.hw.interrupt_shadow() {
            exec.hw.set_interrupt_window_exiting(true);
            return;
        }
        // The event upcall first (it bypasses the APIC), then the APIC's best vector.
        let vector = if upcall { self.domain.callback_vector() } else { self.lapic.lock().take_deliverable() };
        if let Some(vector) = vector {
            exec.hw.inject_interrupt(vector);
        }
        exec.hw.set_interrupt_window_exiting(false);
    }

    /// Publishes the current system time in the vCPU's `vcpu_time_info` (Xen's pvclock:
    /// version odd while writing, even when done) and in the guest's time area, if any.
    fn update_time_info(&self, exec: Option<&Exec>) {
        let tsc = time::rdtsc();
        let system_ns = time::system_time_at(tsc);
        let scale = time::time_scale();
        let flags: u64 = if crate::arch::x86_64::cpu::features().invariant_tsc { PVCLOCK_TSC_STABLE } else { 0 };
        let mut record = [0u8; 32];
        record[8..16].copy_from_slice(&tsc.to_le_bytes());
        record[16..24].copy_from_slice(&system_ns.to_le_bytes());
        record[24..28].copy_from_slice(&scale.mul_frac.to_le_bytes());
        record[28] = scale.shift as u8;
        record[29] = flags as u8;
        if let Some(info) = self.vcpu_info() {
            let t = info.time();
            let version = (t.read_u64(0) as u32).wrapping_add(1) | 1;
            t.write_u64(0, u64::from(version));
            t.write_u64(8, tsc);
            t.write_u64(16, system_ns);
            t.write_u64(24, u64::from(scale.mul_frac) | (u64::from(scale.shift as u8) << 32) | (flags << 40));
            t.write_u64(0, u64::from(version.wrapping_add(1)));
        }
        let (Some(exec), Some(gva)) = (exec, self.areas.lock().time) else {
            return;
        };
        // The guest's copy: same protocol, written through its own page tables.
        let ram = &self.domain.ram;
        let mut version = [0u8; 4];
        if copy_from_guest(ram, exec, gva, &mut version).is_err() {
            return;
        }
        let odd = (u32::from_le_bytes(version).wrapping_add(1) | 1).to_le_bytes();
        record[0..4].copy_from_slice(&odd);
        let _ = copy_to_guest(ram, exec, gva, &record);
        let even = u32::from_le_bytes(odd).wrapping_add(1).to_le_bytes();
        let _ = copy_to_guest(ram, exec, gva, &even);
    }

    pub fn set_time_area(&self, gva: Option<u64>) {
        self.areas.lock().time = gva;
    }

    pub fn set_runstate_area(&self, gva: Option<u64>) {
        self.areas.lock().runstate = gva;
    }

    /// Enters run state `state`, charging the time since the last change to the old one,
    /// and writes the guest's runstate area if it registered one.
    fn set_runstate(&self, exec: &Exec, state: u32) {
        let now = time::system_time_ns();
        let mut areas = self.areas.lock();
        let old = areas.state as usize;
        if areas.state_entry_ns != 0 {
            areas.state_time[old] += now.saturating_sub(areas.state_entry_ns);
        }
        areas.state = state;
        areas.state_entry_ns = now;
        let Some(gva) = areas.runstate else {
            return;
        };
        // struct vcpu_runstate_info { int state; uint64_t state_entry_time; uint64_t time[4]; }
        let mut record = [0u8; 48];
        record[0..4].copy_from_slice(&state.to_le_bytes());
        for (i, t) in areas.state_time.iter().enumerate() {
            record[16 + i * 8..24 + i * 8].copy_from_slice(&t.to_le_bytes());
        }
        drop(areas);
        let ram = &self.domain.ram;
        let flagged = self.domain.vm_assist.load(Ordering::Relaxed) & (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG) != 0;
        if flagged {
            let _ = copy_to_guest(ram, exec, gva + 8, &(now | runstate::UPDATE_FLAG).to_le_bytes());
        }
        record[8..16].copy_from_slice(&(now | if flagged { runstate::UPDATE_FLAG } else { 0 }).to_le_bytes());
        let _ = copy_to_guest(ram, exec, gva, &record);
        if flagged {
            let _ = copy_to_guest(ram, exec, gva + 8, &now.to_le_bytes());
        }
    }

    /// Runs the vCPU on this CPU until it blocks, yields, ends, or `slice_end_tsc` passes.
    pub fn run_slice(&self, slice_end_tsc: u64) -> SliceEnd {
        let mut guard = self.exec.lock();
        let exec = &mut *guard;
        exec.fpu.restore();
        // Whatever the vCPU slept in (block or poll) is over once it runs again.
        *self.poll.lock() = None;
        self.set_runstate(exec, runstate::RUNNING);
        self.update_time_info(Some(exec));
        let end = loop {
            // A dying domain has ended too (`Domain::destroy` ends it first).
            if self.domain.has_ended() {
                break SliceEnd::DomainEnded;
            }
            if self.stop_requested.swap(false, Ordering::AcqRel) {
                break SliceEnd::Down;
            }
            if self.domain.is_paused() {
                break SliceEnd::Preempted;
            }
            let generation = self.domain.ram.generation();
            if generation != exec.nested_generation {
                exec.hw.flush_nested_tlb();
                exec.nested_generation = generation;
            }
            self.deliver_events(exec);
            x86_64::instructions::interrupts::disable();
            let exit = exec.hw.run(&mut exec.regs);
            // A physical interrupt that caused the exit is taken here.
            x86_64::instructions::interrupts::enable();
            match exit::handle(self, exec, exit) {
                Action::Continue => {}
                // An interrupt the hardware still holds for the guest ends the block too.
                Action::Block if exec.hw.event_pending() || self.has_wake_event() => {}
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
        self.set_runstate(
            exec,
            match end {
                SliceEnd::Preempted | SliceEnd::Yielded => runstate::RUNNABLE,
                SliceEnd::Blocked => runstate::BLOCKED,
                SliceEnd::Down | SliceEnd::DomainEnded => runstate::OFFLINE,
            },
        );
        // The vCPU may run on another CPU next: release this CPU's hardware state.
        exec.hw.leave_cpu();
        end
    }
}

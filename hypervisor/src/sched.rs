//! The vCPU scheduler: every CPU picks from one run queue the runnable vCPU with the least
//! weighted virtual time, runs it for up to a time slice, and charges it
//! `run time × 256 / weight`. Over any busy period, vCPUs competing for the same CPUs get
//! CPU time in proportion to their weights (Xen's credit-scheduler weights: default 256),
//! a vCPU only runs on CPUs in its affinity mask, and a vCPU waking from sleep starts at
//! the current virtual time, so sleeping earns no burst.
//!
//! Preemption: the local APIC timer interrupts a running guest every millisecond; the
//! vCPU loop returns here once its slice is used up.
//!
//! Under QEMU's TCG with more than one CPU, CPU 0 runs only vCPUs that may run nowhere
//! else: QEMU corrupts CPU 0's SVM state from the other CPUs' threads
//! ([`cpu::cpu0_svm_state_unreliable`]).

use crate::arch::x86_64::{apic, cpu, percpu, smp, time, traps};
use crate::domain::{self, DEFAULT_WEIGHT};
use crate::vcpu::{SliceEnd, Vcpu};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use spin::Mutex;

/// Longest uninterrupted run of one vCPU when others wait.
pub const SLICE_NS: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum RunState {
    Runnable = 0,
    Running = 1,
    Blocked = 2,
    Down = 3,
}

impl RunState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => RunState::Runnable,
            1 => RunState::Running,
            2 => RunState::Blocked,
            _ => RunState::Down,
        }
    }
}

/// A vCPU's scheduling state.
pub struct SchedData {
    state: AtomicU8,
    /// The CPU running the vCPU, `NOT_RUNNING` otherwise.
    running_on: AtomicUsize,
    vtime: AtomicU64,
    runtime_ns: AtomicU64,
    weight: u32,
    affinity: u64,
}

impl SchedData {
    pub fn new(weight: u32, affinity: u64, runnable: bool) -> Self {
        SchedData {
            state: AtomicU8::new(if runnable { RunState::Runnable } else { RunState::Down } as u8),
            running_on: AtomicUsize::new(NOT_RUNNING),
            vtime: AtomicU64::new(0),
            runtime_ns: AtomicU64::new(0),
            weight: weight.max(1),
            affinity,
        }
    }

    fn state(&self) -> RunState {
        RunState::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: RunState) {
        self.state.store(state as u8, Ordering::Release);
    }

    #[allow(dead_code)]
    pub fn runtime_ns(&self) -> u64 {
        self.runtime_ns.load(Ordering::Relaxed)
    }
}

const NOT_RUNNING: usize = usize::MAX;

static QUEUE: Mutex<Vec<Arc<Vcpu>>> = Mutex::new(Vec::new());

/// Makes `vcpu` notice new events: a running vCPU is interrupted (it re-checks on its way
/// back into the guest); a blocked one is found runnable by the next pick.
pub fn kick(vcpu: &Vcpu) {
    let cpu = vcpu.sched.running_on.load(Ordering::Acquire);
    if cpu != NOT_RUNNING && cpu != percpu::current_index() {
        if let Some(target) = percpu::get(cpu) {
            apic::send_ipi(target.apic_id, apic::icr::FIXED | u32::from(traps::WAKEUP_VECTOR));
        }
    }
}

/// Brings a down vCPU into the run queue (VCPUOP_up, INIT/SIPI).
pub fn make_runnable(vcpu: &Vcpu) {
    if vcpu.sched.state() == RunState::Down {
        vcpu.sched.vtime.store(VTIME_FLOOR.load(Ordering::Relaxed), Ordering::Relaxed);
        vcpu.sched.set_state(RunState::Runnable);
    }
}

/// Takes a vCPU down (INIT): it stops running and waits to be started again.
pub fn take_down(vcpu: &Vcpu) {
    match vcpu.sched.state() {
        RunState::Running => vcpu.request_stop(),
        _ => vcpu.sched.set_state(RunState::Down),
    }
    kick(vcpu);
}

/// Whether the vCPU is down (not started, or taken down).
pub fn is_down(vcpu: &Vcpu) -> bool {
    vcpu.sched.state() == RunState::Down
}

/// Whether the vCPU is on a CPU now.
pub fn is_running(vcpu: &Vcpu) -> bool {
    vcpu.sched.state() == RunState::Running
}

/// Whether the vCPU waits for an event (blocked) or is down.
pub fn is_idle(vcpu: &Vcpu) -> bool {
    matches!(vcpu.sched.state(), RunState::Blocked | RunState::Down)
}

/// Virtual time of the vCPU picked last: where waking and new vCPUs start.
static VTIME_FLOOR: AtomicU64 = AtomicU64::new(0);

/// Hands a new vCPU to the scheduler.
pub fn add(vcpu: Arc<Vcpu>) {
    vcpu.sched.vtime.store(VTIME_FLOOR.load(Ordering::Relaxed), Ordering::Relaxed);
    QUEUE.lock().push(vcpu);
}

/// Makes every other CPU leave its guest promptly (e.g. its domain just died).
pub fn kick_all_cpus() {
    if smp::online() > 1 {
        apic::send_ipi(0, apic::icr::FIXED | apic::icr::ALL_EXCLUDING_SELF | u32::from(traps::WAKEUP_VECTOR));
    }
}

/// The online CPUs other than CPU 0 when CPU 0 should run no guest that can run on them
/// ([`cpu::cpu0_svm_state_unreliable`]); 0 otherwise.
pub fn cpus_preferred_over_cpu0() -> u64 {
    if smp::online() < 2 || !cpu::cpu0_svm_state_unreliable() {
        return 0;
    }
    smp::online_mask() & !1
}

/// Picks the next vCPU for `cpu`, marking it running; drops vCPUs of dead domains.
fn pick(cpu: usize) -> Option<Arc<Vcpu>> {
    let mut queue = QUEUE.lock();
    let mut gone = Vec::new();
    queue.retain(|v| {
        let dead = v.domain.is_dying() && v.sched.state() != RunState::Running;
        if dead && !gone.contains(&v.domain.id) {
            gone.push(v.domain.id);
        }
        !dead
    });
    for id in gone {
        if !queue.iter().any(|v| v.domain.id == id) {
            domain::reap(id);
        }
    }
    let floor = VTIME_FLOOR.load(Ordering::Relaxed);
    let elsewhere = if cpu == 0 { cpus_preferred_over_cpu0() } else { 0 };
    let mut best: Option<(usize, u64)> = None;
    for (i, v) in queue.iter().enumerate() {
        if v.sched.affinity & (1 << cpu) == 0 || v.sched.affinity & elsewhere != 0 || v.domain.is_paused() {
            continue;
        }
        match v.sched.state() {
            RunState::Runnable => {}
            RunState::Blocked if v.has_wake_event() => {
                v.sched.vtime.fetch_max(floor, Ordering::Relaxed);
                v.sched.set_state(RunState::Runnable);
            }
            _ => continue,
        }
        let vtime = v.sched.vtime.load(Ordering::Relaxed);
        if best.is_none_or(|(_, b)| vtime < b) {
            best = Some((i, vtime));
        }
    }
    let (index, vtime) = best?;
    let vcpu = queue[index].clone();
    vcpu.sched.set_state(RunState::Running);
    vcpu.sched.running_on.store(cpu, Ordering::Release);
    VTIME_FLOOR.fetch_max(vtime, Ordering::Relaxed);
    Some(vcpu)
}

/// Charges a finished slice and decides the vCPU's next state.
fn finish(vcpu: &Vcpu, cpu: usize, end: SliceEnd, ran_ns: u64) {
    let s = &vcpu.sched;
    s.running_on.store(NOT_RUNNING, Ordering::Release);
    s.vtime.fetch_add(ran_ns * u64::from(DEFAULT_WEIGHT) / u64::from(s.weight), Ordering::Relaxed);
    s.runtime_ns.fetch_add(ran_ns, Ordering::Relaxed);
    vcpu.domain.account(cpu, ran_ns);
    crate::console_ring::drain(&vcpu.domain);
    s.set_state(match end {
        SliceEnd::Preempted | SliceEnd::Yielded => RunState::Runnable,
        SliceEnd::Blocked => RunState::Blocked,
        SliceEnd::Down | SliceEnd::DomainEnded => RunState::Down,
    });
    if end == SliceEnd::Down && (0..vcpu.domain.vcpu_count).all(|id| vcpu.domain.vcpu(id).is_none_or(|v| is_down(&v))) {
        // Xen powers a domain off when all its vCPUs are down (`hvm_hlt`).
        let waiting = (0..vcpu.domain.vcpu_count)
            .any(|id| vcpu.domain.vcpu(id).is_some_and(|v| v.lapic.lock().wait_for_sipi && id != 0));
        if !waiting || vcpu.id == 0 {
            log::info!("domain {}: all vCPUs are down; powering off", vcpu.domain.id);
            vcpu.domain.shutdown(crate::domain::ShutdownReason::Poweroff);
        }
    }
}

fn tsc_to_ns(ticks: u64) -> u64 {
    (u128::from(ticks) * 1_000_000_000 / u128::from(time::tsc_hz().max(1))) as u64
}

/// Runs one slice of some vCPU on this CPU; false if there was nothing to run.
pub fn run_once(cpu: usize) -> bool {
    let Some(vcpu) = pick(cpu) else {
        return false;
    };
    let start = time::rdtsc();
    let slice_end = start + time::tsc_hz() * SLICE_NS / 1_000_000_000;
    let end = vcpu.run_slice(slice_end);
    finish(&vcpu, cpu, end, tsc_to_ns(time::rdtsc() - start));
    true
}

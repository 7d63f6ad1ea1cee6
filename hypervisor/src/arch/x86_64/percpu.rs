//! Per-CPU data, reached through the GS base: `gs:[0]` holds a pointer to this CPU's
//! [`PerCpu`], so finding it costs one load and no lock.

use crate::mm::stacks::CpuStacks;
use alloc::boxed::Box;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use x86_64::registers::model_specific::GsBase;
use x86_64::VirtAddr;

/// The most CPUs Ferrovisor drives; more in the MADT are reported and left parked.
pub const MAX_CPUS: usize = 64;

/// Per-CPU state. `#[repr(C)]` because the first two fields are read by offset from GS.
#[repr(C)]
pub struct PerCpu {
    self_ptr: *const PerCpu,
    /// Dense index 0..n in bring-up order; the BSP is 0.
    pub index: usize,
    pub apic_id: u32,
    pub stacks: CpuStacks,
    /// Local APIC timer interrupts taken on this CPU.
    pub timer_ticks: AtomicU64,
}

// SAFETY: `self_ptr` is written once before the structure is published and never again;
// every other field is immutable after creation or atomic.
unsafe impl Sync for PerCpu {}

static CPUS: [AtomicPtr<PerCpu>; MAX_CPUS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];
/// Set once the BSP has a GS base; before that every log line is from CPU 0.
static BSP_READY: AtomicBool = AtomicBool::new(false);

/// Creates the per-CPU area of CPU `index` (the BSP does this for every CPU it starts).
pub fn create(index: usize, apic_id: u32, stacks: CpuStacks) -> &'static PerCpu {
    assert!(index < MAX_CPUS, "CPU index {index} beyond MAX_CPUS");
    let area: &'static mut PerCpu =
        Box::leak(Box::new(PerCpu { self_ptr: ptr::null(), index, apic_id, stacks, timer_ticks: AtomicU64::new(0) }));
    area.self_ptr = area;
    let area: &'static PerCpu = area;
    let previous = CPUS[index].swap(area as *const PerCpu as *mut PerCpu, Ordering::AcqRel);
    assert!(previous.is_null(), "per-CPU area for CPU {index} created twice");
    area
}

/// Points the calling CPU's GS base at the per-CPU area of CPU `index`.
pub fn install(index: usize) -> &'static PerCpu {
    let area = get(index).unwrap_or_else(|| panic!("CPU{index} has no per-CPU area"));
    GsBase::write(VirtAddr::from_ptr(area as *const PerCpu));
    if index == 0 {
        BSP_READY.store(true, Ordering::Release);
    }
    area
}

/// This CPU's per-CPU area.
pub fn current() -> &'static PerCpu {
    let area: *const PerCpu;
    // SAFETY: reads gs:[0], which init_this_cpu set to a leaked PerCpu for this CPU
    // before any caller can run on it.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) area, options(nostack, preserves_flags, readonly)) };
    // SAFETY: the pointer came from Box::leak, so it is valid for 'static.
    unsafe { &*area }
}

/// This CPU's index, safe to call at any time (0 before per-CPU data exists).
pub fn current_index() -> usize {
    if !BSP_READY.load(Ordering::Acquire) {
        return 0;
    }
    current().index
}

/// The per-CPU area of CPU `index`, if that CPU has been brought up.
pub fn get(index: usize) -> Option<&'static PerCpu> {
    let p = CPUS.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null entries point at leaked, never-freed PerCpu areas.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Every CPU brought up so far.
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn all() -> impl Iterator<Item = &'static PerCpu> {
    (0..MAX_CPUS).filter_map(get)
}

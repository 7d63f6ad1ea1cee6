//! Bringing up the application processors, and the few cross-CPU operations the
//! foundation needs: running a job on every CPU, and stopping them all.
//!
//! APs start one at a time through the real-mode trampoline (`boot/ap_trampoline.S`),
//! copied to a free page below 1 MiB, with INIT-SIPI-SIPI (Intel SDM Vol. 3 §8.4.4), check in
//! as soon as they reach Rust (the trampoline page is then free for the next one), and
//! count themselves online once their descriptor tables, APIC and timer are up.

use super::{apic, cpu, gdt, idt, percpu, time, traps};
use crate::acpi::Processor;
use crate::mm::{self, paging, stacks};
use bootinfo::{BootInfo, MemoryKind};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;
use x86_64::registers::model_specific::EferFlags;
use x86_64::PhysAddr;

const AP_CHECK_IN_TIMEOUT_US: u64 = 2_000_000;
const AP_ONLINE_TIMEOUT_US: u64 = 5_000_000;

extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_params: u8;
    static boot_pml4: u8;
}

/// Mirrors the parameter block at the end of `ap_trampoline.S`.
#[repr(C)]
struct TrampolineParams {
    boot_cr3: u64,
    efer_bits: u64,
    cr3: u64,
    stack_top: u64,
    entry: u64,
    cpu_index: u64,
}

static ONLINE: AtomicUsize = AtomicUsize::new(0);
/// Index of the last AP that reached Rust (it has read its parameters).
static CHECKED_IN: AtomicU64 = AtomicU64::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// How many CPUs are running (the BSP included).
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// The online CPUs as a mask (bit N: CPU N), the form of domain affinities.
pub fn online_mask() -> u64 {
    match online() {
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

/// Sets up per-CPU state on the calling CPU and counts it online.
fn bring_this_cpu_online(index: usize) {
    let area = percpu::install(index);
    let code_selector = gdt::load_for_this_cpu(&area.stacks);
    idt::load(code_selector.0);
    if index != 0 {
        apic::init_this_cpu();
        let actual = apic::id();
        assert_eq!(actual, area.apic_id, "CPU{index} has APIC id {actual}, the MADT said {}", area.apic_id);
    }
    apic::start_periodic_timer();
    crate::virt::enable_this_cpu();
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// The BSP's share of per-CPU setup (its APIC is already enabled).
pub fn init_bsp(apic_id: u32, stacks: stacks::CpuStacks) {
    percpu::create(0, apic_id, stacks);
    bring_this_cpu_online(0);
}

/// Starts every usable AP in `processors` (the BSP, first in the list, is skipped).
/// Returns how many came online.
pub fn start_application_processors(processors: &[Processor], info: &BootInfo) -> usize {
    let Some(trampoline) = choose_trampoline_page(info) else {
        log::error!("no free page below 1 MiB for the AP trampoline; running on the boot CPU only");
        return online();
    };
    install_trampoline(trampoline);
    let mut next_index = 1;
    for p in processors.iter().skip(1) {
        if !p.usable {
            log::info!("CPU with APIC id {} is disabled in the MADT; not starting it", p.apic_id);
            continue;
        }
        if next_index >= percpu::MAX_CPUS {
            log::warn!("more than {} CPUs: APIC id {} stays parked", percpu::MAX_CPUS, p.apic_id);
            continue;
        }
        if start_one(trampoline, next_index, p.apic_id) {
            next_index += 1;
        } else {
            log::error!("CPU with APIC id {} did not start; continuing without it", p.apic_id);
        }
    }
    let deadline = time::deadline_after_us(AP_ONLINE_TIMEOUT_US);
    while online() < next_index && !time::passed(deadline) {
        core::hint::spin_loop();
    }
    if online() < next_index {
        log::error!("only {} of {} started CPUs finished coming online", online(), next_index);
    }
    online()
}

/// A page below 1 MiB (SIPI can only start CPUs there) that the memory map calls usable
/// and no boot module occupies. The allocator never hands out the first MiB, so it stays
/// ours.
fn choose_trampoline_page(info: &BootInfo) -> Option<u64> {
    const PAGE: u64 = 4096;
    (1..0x100).map(|n| n * PAGE).find(|&page| {
        let end = page + PAGE;
        let usable =
            info.memory_map().iter().any(|r| r.kind == MemoryKind::Usable && r.start <= page && end <= r.end());
        let occupied = info.modules().iter().any(|m| m.start < end && page < m.end);
        usable && !occupied
    })
}

fn install_trampoline(page: u64) {
    let (start, end, params) = (
        core::ptr::addr_of!(ap_trampoline_start),
        core::ptr::addr_of!(ap_trampoline_end),
        core::ptr::addr_of!(ap_params) as usize,
    );
    let len = end as usize - start as usize;
    assert!(len <= 4096, "AP trampoline is {len} bytes, more than a page");
    assert_eq!(params - start as usize + core::mem::size_of::<TrampolineParams>(), len);
    let target = mm::phys_to_virt(PhysAddr::new(page)).as_mut_ptr::<u8>();
    // SAFETY: the trampoline page lies in the reserved first MiB, which nothing else uses,
    // and the direct map covers it; source and destination do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(start, target, len) };
}

fn params(page: u64) -> &'static mut TrampolineParams {
    let offset = core::ptr::addr_of!(ap_params) as u64 - core::ptr::addr_of!(ap_trampoline_start) as u64;
    let va = mm::phys_to_virt(PhysAddr::new(page + offset));
    // SAFETY: the parameter block sits in the installed trampoline page, 8-byte aligned;
    // only the BSP writes it, and only while no AP is reading it (one AP at a time).
    unsafe { &mut *va.as_mut_ptr::<TrampolineParams>() }
}

fn start_one(trampoline: u64, index: usize, apic_id: u32) -> bool {
    let stacks = stacks::allocate(index);
    percpu::create(index, apic_id, stacks);
    let efer_bits = if cpu::features().no_execute { EferFlags::NO_EXECUTE_ENABLE.bits() } else { 0 };
    let boot_cr3 = core::ptr::addr_of!(boot_pml4) as u64;
    *params(trampoline) = TrampolineParams {
        boot_cr3,
        efer_bits,
        cr3: paging::kernel_pml4(),
        stack_top: stacks.kernel_top.as_u64(),
        entry: ap_main as *const () as u64,
        cpu_index: index as u64,
    };
    CHECKED_IN.store(0, Ordering::Release);

    apic::send_ipi(apic_id, apic::icr::INIT | apic::icr::LEVEL_ASSERT);
    time::delay_us(10_000);
    for _ in 0..2 {
        apic::send_ipi(apic_id, apic::icr::STARTUP | (trampoline >> 12) as u32);
        let deadline = time::deadline_after_us(AP_CHECK_IN_TIMEOUT_US / 2);
        while !time::passed(deadline) {
            if CHECKED_IN.load(Ordering::Acquire) == index as u64 {
                return true;
            }
            core::hint::spin_loop();
        }
    }
    false
}

/// Rust entry of an AP, on its own stack and the hypervisor's page tables.
extern "C" fn ap_main(index: u64) -> ! {
    CHECKED_IN.store(index, Ordering::Release);
    cpu::init_control_registers();
    bring_this_cpu_online(index as usize);
    log::debug!("CPU{index} online (APIC id {})", apic::id());
    idle_loop()
}

/// A job every CPU runs once, with its CPU index.
pub type Job = fn(usize);

static JOB: Mutex<Option<Job>> = Mutex::new(None);
static JOB_GENERATION: AtomicU64 = AtomicU64::new(0);
static JOB_DONE: AtomicUsize = AtomicUsize::new(0);

/// Runs `job` on every online CPU at once (this one included) and waits for all of them.
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn run_on_all_cpus(job: Job) {
    *JOB.lock() = Some(job);
    JOB_DONE.store(0, Ordering::Release);
    JOB_GENERATION.fetch_add(1, Ordering::AcqRel);
    apic::send_ipi(0, apic::icr::FIXED | apic::icr::ALL_EXCLUDING_SELF | u32::from(traps::WAKEUP_VECTOR));
    job(percpu::current_index());
    let others = online() - 1;
    while JOB_DONE.load(Ordering::Acquire) < others {
        core::hint::spin_loop();
    }
}

/// Every CPU's main loop once it is up: run guests, run jobs, otherwise sleep until the
/// next interrupt (the APIC timer ticks every millisecond).
pub fn idle_loop() -> ! {
    let me = percpu::current_index();
    // The BSP joins after it ran the jobs it started, so it starts at the current generation.
    let mut seen = if me == 0 { JOB_GENERATION.load(Ordering::Acquire) } else { 0 };
    loop {
        x86_64::instructions::interrupts::enable();
        if me == 0 {
            crate::hypercall::poll_serial_input();
        }
        if crate::sched::run_once(me) {
            continue;
        }
        if me == 0 {
            crate::bootdomains::poll();
        }
        x86_64::instructions::interrupts::disable();
        let generation = JOB_GENERATION.load(Ordering::Acquire);
        if generation != seen && me != 0 {
            seen = generation;
            x86_64::instructions::interrupts::enable();
            if let Some(job) = *JOB.lock() {
                job(me);
            }
            JOB_DONE.fetch_add(1, Ordering::AcqRel);
            continue;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// True once the machine is being stopped (an NMI then means "halt").
pub fn stopping() -> bool {
    STOPPING.load(Ordering::Acquire)
}

/// Halts every other CPU (NMI, which even a CPU spinning with interrupts off takes).
pub fn stop_other_cpus() {
    if STOPPING.swap(true, Ordering::AcqRel) {
        return;
    }
    if online() > 1 {
        apic::send_ipi(0, apic::icr::NMI | apic::icr::ALL_EXCLUDING_SELF);
        time::delay_us(10_000);
    }
}

//! Built-in tests, compiled only into the self-test image (`--features selftest`) and
//! chosen with `selftest=NAME`. qemu-tests boots that image and judges each test by the
//! exit status and by the `SELFTEST` lines, which carry values measured here.

use crate::arch::x86_64::{percpu, smp, time};
use crate::mm::{frames, phys_to_virt};
use crate::power::{self, Outcome};
use crate::{boot, cmdline, console};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::PhysAddr;

pub fn run(name: &str) -> ! {
    log::info!("running self-test \"{name}\"");
    match name {
        "boot" => boot_report(),
        "fault" => deliberate_page_fault(),
        "panic" => panic!("selftest: deliberate panic"),
        "frames" => frame_stress(),
        "domains" => domain_churn(),
        "stack-overflow" => {
            log::info!("recursing until the stack runs into its guard page");
            let depth = recurse(0);
            panic!("recursion returned at depth {depth} without overflowing the stack");
        }
        other => {
            log::error!("unknown self-test \"{other}\" (known: boot, fault, panic, frames, stack-overflow, domains)");
            power::stop(Outcome::Failure)
        }
    }
}

fn selftest_line(args: core::fmt::Arguments<'_>) {
    console::write_fmt(format_args!("SELFTEST {args}\n"));
}

/// Waits until every online CPU's timer has ticked a few times; returns how many did.
fn cpus_with_ticking_timers() -> usize {
    const TICKS: u64 = 3;
    let deadline = time::deadline_after_us(2_000_000);
    loop {
        let ticking = percpu::all().filter(|c| c.timer_ticks.load(Ordering::Relaxed) >= TICKS).count();
        if ticking == smp::online() || time::passed(deadline) {
            return ticking;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn boot_report() -> ! {
    let ticking = cpus_with_ticking_timers();
    let stats = frames::stats();
    let platform = boot::platform();
    selftest_line(format_args!(
        "boot cpus_online={} cpus_in_madt={} timers_ticking={} free_frames={} used_frames={}",
        smp::online(),
        platform.processors.iter().filter(|p| p.usable).count(),
        ticking,
        stats.free,
        stats.used
    ));
    for (index, module) in boot::info().modules().iter().enumerate() {
        // SAFETY: boot modules are reserved from the allocator, so nothing has written
        // over them, and the direct map covers them.
        let bytes = unsafe {
            core::slice::from_raw_parts(phys_to_virt(PhysAddr::new(module.start)).as_ptr::<u8>(), module.len() as usize)
        };
        selftest_line(format_args!(
            "module index={index} size={} fnv1a64={:#018x} cmdline=\"{}\"",
            module.len(),
            fnv1a64(bytes),
            module.cmdline.as_str()
        ));
    }
    selftest_line(format_args!("cmdline=\"{}\"", cmdline::full()));
    power::stop(Outcome::Success)
}

/// The address `selftest=fault` writes to: canonical, in the lower half, never mapped.
const UNMAPPED: u64 = 0x0000_7fff_dead_b000;

fn deliberate_page_fault() -> ! {
    log::info!("writing to unmapped address {UNMAPPED:#x}");
    // SAFETY: deliberately unsound: nothing is mapped there, and the point of this test is
    // that the resulting page fault is reported and stops the machine.
    unsafe { (UNMAPPED as *mut u64).write_volatile(0x5afe) };
    unreachable!("write to an unmapped address did not fault");
}

/// Eats 1 KiB of stack per level; the stack is 64 KiB, so this never returns normally.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 1024];
    frame[0] = depth as u8;
    let frame = core::hint::black_box(frame);
    if depth > 1_000_000 {
        return depth;
    }
    recurse(depth + 1) + u64::from(frame[1023])
}

/// Domains `selftest=domains` builds, runs to their end and destroys, one after another.
const CHURN_DOMAINS: usize = 200;

/// Creates, runs and destroys a domain (built from the first boot module, which must be a
/// `domain ...` module) many times, checking that every frame comes back.
fn domain_churn() -> ! {
    let info = boot::info();
    let domains = match crate::bootdomains::from_modules(info) {
        Ok(d) if !d.is_empty() => d,
        Ok(_) => {
            log::error!("selftest=domains needs a domain module");
            power::stop(Outcome::Failure)
        }
        Err(e) => {
            log::error!("selftest=domains: {e}");
            power::stop(Outcome::Failure)
        }
    };
    let spec = &domains[0];
    let kernel = crate::bootdomains::module_bytes(spec.kernel);
    let initrd = spec.initrd.map(crate::bootdomains::module_bytes);
    let before = frames::stats().free;
    let (mut shutdown, mut crashed, mut min_free) = (0, 0, before);
    for round in 0..CHURN_DOMAINS {
        let domain = match crate::domain::create(&spec.config, kernel, initrd) {
            Ok(d) => d,
            Err(e) => {
                log::error!("round {round}: domain not created: {e}");
                power::stop(Outcome::Failure)
            }
        };
        min_free = min_free.min(frames::stats().free);
        drop(domain);
        // Run guests on this CPU too until the domain is gone and its memory returned.
        let deadline = time::deadline_after_us(10_000_000);
        loop {
            let released = crate::domain::take_released();
            if let Some(summary) = released.first() {
                match summary.state {
                    crate::domain::DomainState::Crashed(_) => crashed += 1,
                    _ => shutdown += 1,
                }
                break;
            }
            if time::passed(deadline) {
                log::error!("round {round}: domain still alive after 10 s");
                power::stop(Outcome::Failure);
            }
            if !crate::sched::run_once(0) {
                x86_64::instructions::interrupts::enable_and_hlt();
            }
        }
    }
    let after = frames::stats().free;
    selftest_line(format_args!(
        "domains rounds={CHURN_DOMAINS} shutdown={shutdown} crashed={crashed} alive={} free_before={before} \
         free_after={after} min_free_during={min_free}",
        crate::domain::count()
    ));
    let ok = after == before && shutdown == CHURN_DOMAINS && min_free < before;
    power::stop(if ok { Outcome::Success } else { Outcome::Failure })
}

const STRESS_ROUNDS: usize = 1000;
const STRESS_BATCH: usize = 64;

/// One bit per frame: set while some CPU holds the frame. A second setter is a duplicate.
static CLAIMED: spin::Once<Vec<AtomicU64>> = spin::Once::new();
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static DUPLICATES: AtomicU64 = AtomicU64::new(0);

fn claim(pa: PhysAddr, set: bool) -> bool {
    let frame = pa.as_u64() / 4096;
    let word = &CLAIMED.get().expect("claim map")[(frame / 64) as usize];
    let bit = 1u64 << (frame % 64);
    if set {
        word.fetch_or(bit, Ordering::AcqRel) & bit == 0
    } else {
        word.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }
}

/// Every CPU allocates batches of frames, stamps each with its owner, checks that no other
/// CPU holds (or scribbled on) them, and frees them again.
fn stress_job(cpu: usize) {
    let mut held = [PhysAddr::zero(); STRESS_BATCH];
    for round in 0..STRESS_ROUNDS {
        let stamp = ((cpu as u64) << 32) | round as u64;
        for slot in held.iter_mut() {
            let pa = frames::alloc().expect("frame stress ran out of memory");
            if !claim(pa, true) {
                DUPLICATES.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: the frame was just handed to this CPU; the direct map covers it.
            unsafe { phys_to_virt(pa).as_mut_ptr::<u64>().write_volatile(stamp) };
            *slot = pa;
        }
        ALLOCATIONS.fetch_add(STRESS_BATCH as u64, Ordering::Relaxed);
        for &pa in held.iter() {
            // SAFETY: as above; this CPU still owns the frame.
            let seen = unsafe { phys_to_virt(pa).as_ptr::<u64>().read_volatile() };
            if seen != stamp || !claim(pa, false) {
                DUPLICATES.fetch_add(1, Ordering::Relaxed);
            }
            frames::free(pa);
        }
    }
}

fn frame_stress() -> ! {
    let before = frames::stats().free;
    let frames_tracked = frames::tracked_frames();
    CLAIMED.call_once(|| (0..frames_tracked.div_ceil(64)).map(|_| AtomicU64::new(0)).collect());
    smp::run_on_all_cpus(stress_job);
    let after = frames::stats().free;
    let duplicates = DUPLICATES.load(Ordering::Relaxed);
    selftest_line(format_args!(
        "frames cpus={} allocations={} duplicates={duplicates} free_before={before} free_after={after}",
        smp::online(),
        ALLOCATIONS.load(Ordering::Relaxed)
    ));
    let ok = duplicates == 0 && before == after;
    power::stop(if ok { Outcome::Success } else { Outcome::Failure })
}

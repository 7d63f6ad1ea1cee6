//! Domain UUIDs (`xen_domain_handle_t`): random version-4 UUIDs from RDRAND when the CPU
//! has it, else from the TSC mixed through SplitMix64 (unique per boot, not secret).

use core::sync::atomic::{AtomicU64, Ordering};
pub use domain_config::uuid_string as to_string;
use domain_config::{splitmix64, uuid_v4, Uuid};

static STATE: AtomicU64 = AtomicU64::new(0);

fn rdrand() -> Option<u64> {
    let has = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
    if !has {
        return None;
    }
    let mut value = 0u64;
    for _ in 0..10 {
        // SAFETY: RDRAND exists (CPUID.1:ECX.30); it only writes the register.
        if unsafe { core::arch::x86_64::_rdrand64_step(&mut value) } == 1 {
            return Some(value);
        }
    }
    None
}

fn next() -> u64 {
    if let Some(v) = rdrand() {
        return v;
    }
    // SAFETY: RDTSC only reads the time-stamp counter.
    let mut state = STATE.fetch_add(1, Ordering::Relaxed) ^ unsafe { core::arch::x86_64::_rdtsc() };
    splitmix64(&mut state)
}

/// A new version-4 (random) UUID.
pub fn new_v4() -> Uuid {
    uuid_v4(next(), next())
}

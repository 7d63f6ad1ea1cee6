//! Domain UUIDs (`xen_domain_handle_t`): random version-4 UUIDs from RDRAND when the CPU
//! has it, else from the TSC mixed through SplitMix64 (unique per boot, not secret).

use core::sync::atomic::{AtomicU64, Ordering};

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
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let mut z = STATE.fetch_add(0x9e37_79b9_7f4a_7c15 ^ tsc, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A new version-4 (random) UUID.
pub fn new_v4() -> [u8; 16] {
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&next().to_le_bytes());
    uuid[8..].copy_from_slice(&next().to_le_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The usual text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn to_string(uuid: &[u8; 16]) -> alloc::string::String {
    use core::fmt::Write;
    let mut s = alloc::string::String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

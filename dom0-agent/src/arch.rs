//! The few CPU and memory primitives the agent needs: CPUID, halting, and access to
//! physical memory through the boot stub's identity map of the first 4 GiB (start info,
//! modules, and other domains' pages mapped into our physical space).

use core::arch::asm;

/// Top of the boot stub's identity map.
pub const IDENTITY_LIMIT: u64 = 4 << 30;

/// The CPUID vendor string.
pub fn vendor() -> [u8; 12] {
    let r = core::arch::x86_64::__cpuid(0);
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// Halts this vCPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` only stops this vCPU; it touches no memory.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Checks that `[pa, pa + len)` lies in the identity map.
fn identity(pa: u64, len: usize) -> *mut u8 {
    let end = pa.checked_add(len as u64);
    assert!(end.is_some_and(|e| e <= IDENTITY_LIMIT), "physical range {pa:#x}+{len:#x} is outside the identity map");
    pa as *mut u8
}

/// Copies `out.len()` bytes from physical address `pa`.
///
/// The range must be memory the agent may read: its own RAM, boot data the loader put
/// there, or pages mapped into its physical space. The identity map covers it (checked).
pub fn read_phys(pa: u64, out: &mut [u8]) {
    let src = identity(pa, out.len());
    // SAFETY: the range is identity-mapped (checked above) and, by the caller's contract,
    // backed by memory we may read; other domains may write shared pages concurrently,
    // which only makes the bytes read unpredictable, never unsafe for a byte copy.
    unsafe { core::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), out.len()) };
}

/// Copies `bytes` to physical address `pa` (same contract as [`read_phys`], writable).
pub fn write_phys(pa: u64, bytes: &[u8]) {
    let dst = identity(pa, bytes.len());
    // SAFETY: as in `read_phys`; the range is ours to write (a page mapped for building a
    // domain, or a shared ring).
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
}

/// Sets `len` bytes at physical address `pa` to `byte`.
pub fn fill_phys(pa: u64, len: usize, byte: u8) {
    let dst = identity(pa, len);
    // SAFETY: as in `write_phys`.
    unsafe { core::ptr::write_bytes(dst, byte, len) };
}

/// The 64-bit word at physical address `pa` (8-byte aligned), as an atomic.
pub fn atomic_u64(pa: u64) -> &'static core::sync::atomic::AtomicU64 {
    assert!(pa % 8 == 0, "unaligned atomic at {pa:#x}");
    let p = identity(pa, 8) as *const core::sync::atomic::AtomicU64;
    // SAFETY: aligned (checked), identity-mapped (checked); the caller names a page that
    // stays mapped for the agent's lifetime (shared_info); AtomicU64 has u64's layout.
    unsafe { &*p }
}

/// The 32-bit word at physical address `pa` (4-byte aligned), read once.
pub fn read_u32_volatile(pa: u64) -> u32 {
    assert!(pa % 4 == 0, "unaligned read at {pa:#x}");
    let p = identity(pa, 4) as *const u32;
    // SAFETY: aligned and identity-mapped (checked); a volatile read of a shared word.
    unsafe { core::ptr::read_volatile(p) }
}

/// Writes the 32-bit word at physical address `pa` (4-byte aligned) once.
pub fn write_u32_volatile(pa: u64, value: u32) {
    assert!(pa % 4 == 0, "unaligned write at {pa:#x}");
    let p = identity(pa, 4) as *mut u32;
    // SAFETY: aligned and identity-mapped (checked); a volatile write of a shared word.
    unsafe { core::ptr::write_volatile(p, value) }
}

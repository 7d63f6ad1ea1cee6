//! Thin wrappers around the x86 instructions the guest uses.

use core::arch::asm;

/// The four registers CPUID returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidResult {
    /// `eax`.
    pub eax: u32,
    /// `ebx`.
    pub ebx: u32,
    /// `ecx`.
    pub ecx: u32,
    /// `edx`.
    pub edx: u32,
}

/// CPUID leaf `leaf`, sub-leaf `subleaf`.
pub fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let (eax, ebx, ecx, edx): (u32, u32, u32, u32);
    // SAFETY: CPUID exists on every x86-64 CPU and touches no memory. LLVM reserves rbx, so
    // it is saved in a scratch register around the instruction.
    unsafe {
        asm!(
            "mov {tmp:r}, rbx",
            "cpuid",
            "xchg {tmp:r}, rbx",
            tmp = out(reg) ebx,
            inout("eax") leaf => eax,
            inout("ecx") subleaf => ecx,
            out("edx") edx,
            options(nomem, nostack, preserves_flags),
        )
    };
    CpuidResult { eax, ebx, ecx, edx }
}

/// An x87/SSE state image in FXSAVE format.
#[repr(C, align(16))]
pub struct FxsaveArea([u8; 512]);

impl FxsaveArea {
    /// The state the CPU holds now.
    pub fn current() -> FxsaveArea {
        let mut area = FxsaveArea([0; 512]);
        // SAFETY: FXSAVE64 writes exactly the 512 bytes of the 16-byte-aligned area we own.
        unsafe { asm!("fxsave64 [{}]", in(reg) area.0.as_mut_ptr(), options(nostack, preserves_flags)) };
        area
    }

    /// Loads this state into the CPU.
    pub fn restore(&self) {
        // FXRSTOR64 only reads the area.
        // SAFETY: the area holds an image FXSAVE64 wrote, so every field is valid to load.
        unsafe { asm!("fxrstor64 [{}]", in(reg) self.0.as_ptr(), options(nostack, preserves_flags, readonly)) };
    }
}

/// Writes a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the ports the guest writes (0xE9, COM1, isa-debug-exit) are consoles or the
    // emulator's exit device; a port write touches no memory of this program.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) };
}

/// Reads a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading COM1's line status register has no side effect on this program's memory.
    unsafe { asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags)) };
    value
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter (CR4.TSD is clear: we never set it).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Reads MSR `msr`. An MSR that does not exist raises #GP: use
/// [`crate::traps::rdmsr_checked`] unless the MSR is known to exist.
///
/// # Safety
/// The MSR must exist, or the caller must have armed the #GP recovery of
/// [`crate::traps`] (which skips this two-byte `rdmsr`).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists or that a #GP is recovered from; RDMSR
    // reads no memory. eax/edx are zeroed first so a skipped RDMSR reads as 0.
    unsafe {
        asm!(
            "xor eax, eax",
            "xor edx, edx",
            "rdmsr",
            in("ecx") msr,
            out("eax") lo,
            out("edx") hi,
            options(nostack, preserves_flags),
        )
    };
    u64::from(lo) | (u64::from(hi) << 32)
}

/// Enables interrupts and halts until one arrives (`sti; hlt`: the interrupt shadow of STI
/// makes the pair atomic), then disables them again.
pub fn wait_for_interrupt() {
    // SAFETY: the IDT is loaded before any code path calls this, so the interrupt that ends
    // the halt is handled; IF is cleared again before returning.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Disables interrupts and halts for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: `cli; hlt` stops this CPU; it touches no memory.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// CR2: the address of the last page fault.
pub fn cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 at CPL 0 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// CR0, CR3 and CR4, for starting another vCPU in the same paging mode.
pub fn control_registers() -> (u64, u64, u64) {
    let (cr0, cr3, cr4): (u64, u64, u64);
    // SAFETY: reading control registers at CPL 0 has no side effects.
    unsafe {
        asm!(
            "mov {0}, cr0", "mov {1}, cr3", "mov {2}, cr4",
            out(reg) cr0, out(reg) cr3, out(reg) cr4,
            options(nomem, nostack, preserves_flags)
        )
    };
    (cr0, cr3, cr4)
}

/// Flushes the whole TLB by reloading CR3.
pub fn flush_tlb() {
    // SAFETY: writing CR3 with its current value keeps the same page tables and only drops
    // cached translations.
    unsafe { asm!("mov {tmp}, cr3", "mov cr3, {tmp}", tmp = out(reg) _, options(nostack, preserves_flags)) };
}

/// The CPU vendor string of leaf 0 (`ebx`, `edx`, `ecx`).
pub fn vendor() -> [u8; 12] {
    let r = cpuid(0, 0);
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

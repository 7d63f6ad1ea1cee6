//! The local APIC, in x2APIC mode (MSRs) when the CPU has it and xAPIC mode (MMIO)
//! otherwise; all CPUs use the mode the BSP chose. Owns the APIC timer and IPIs.

use super::{time, traps};
use core::sync::atomic::{AtomicU32, Ordering};
use spin::Once;
use x86_64::registers::model_specific::Msr;
use x86_64::VirtAddr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
const X2APIC_MSR_BASE: u32 = 0x800;

/// Local APIC registers, by their xAPIC MMIO offset (x2APIC MSR = 0x800 + offset / 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Register {
    Id = 0x20,
    TaskPriority = 0x80,
    EndOfInterrupt = 0xb0,
    SpuriousVector = 0xf0,
    ErrorStatus = 0x280,
    InterruptCommand = 0x300,
    InterruptCommandHigh = 0x310,
    LvtTimer = 0x320,
    LvtLint0 = 0x350,
    LvtLint1 = 0x360,
    LvtError = 0x370,
    TimerInitialCount = 0x380,
    TimerCurrentCount = 0x390,
    TimerDivide = 0x3e0,
}

const SPURIOUS_APIC_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
const TIMER_DIVIDE_BY_16: u32 = 0b0011;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;

/// Interrupt-command delivery modes and flags (SDM Vol. 3 §11.6.1).
pub mod icr {
    pub const FIXED: u32 = 0b000 << 8;
    pub const NMI: u32 = 0b100 << 8;
    pub const INIT: u32 = 0b101 << 8;
    pub const STARTUP: u32 = 0b110 << 8;
    pub const LEVEL_ASSERT: u32 = 1 << 14;
    pub const ALL_EXCLUDING_SELF: u32 = 0b11 << 18;
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    X2Apic,
    XApic { base: VirtAddr },
}

static MODE: Once<Mode> = Once::new();
/// Timer ticks (divide-by-16) per millisecond, measured by the BSP.
static TIMER_TICKS_PER_MS: AtomicU32 = AtomicU32::new(0);

/// The APIC timer's rate: interrupts per second on every CPU.
pub const TIMER_HZ: u32 = 1000;

fn mode() -> Mode {
    *MODE.get().expect("local APIC used before apic::init_bsp")
}

fn read(reg: Register) -> u32 {
    match mode() {
        // SAFETY: x2APIC mode is enabled on this CPU and the MSR is the architectural
        // alias of `reg`; reading it has no side effects.
        Mode::X2Apic => unsafe { Msr::new(X2APIC_MSR_BASE + reg as u32 / 16).read() as u32 },
        // SAFETY: `base` maps this CPU's xAPIC page uncached; `reg` is a valid register offset.
        Mode::XApic { base } => unsafe { ((base.as_u64() + reg as u64) as *const u32).read_volatile() },
    }
}

fn write(reg: Register, value: u32) {
    match mode() {
        // SAFETY: as in `read`; the callers write values valid for the register.
        Mode::X2Apic => unsafe { Msr::new(X2APIC_MSR_BASE + reg as u32 / 16).write(u64::from(value)) },
        // SAFETY: as in `read`.
        Mode::XApic { base } => unsafe { ((base.as_u64() + reg as u64) as *mut u32).write_volatile(value) },
    }
}

/// Chooses the APIC mode and enables this (the boot) CPU's local APIC.
///
/// `mmio_base` maps the xAPIC register page (used only without x2APIC).
pub fn init_bsp(x2apic: bool, map_mmio: impl FnOnce(u64) -> VirtAddr) {
    let mode = *MODE.call_once(|| {
        if x2apic {
            Mode::X2Apic
        } else {
            // SAFETY: IA32_APIC_BASE exists on every x86-64 CPU; reading it is harmless.
            let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & APIC_BASE_ADDRESS_MASK;
            Mode::XApic { base: map_mmio(base) }
        }
    });
    log::info!(
        "local APIC: {} mode",
        match mode {
            Mode::X2Apic => "x2APIC",
            Mode::XApic { .. } => "xAPIC",
        }
    );
    init_this_cpu();
}

/// Enables the local APIC on the calling CPU, in the mode the BSP chose.
pub fn init_this_cpu() {
    let mut base_msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: setting EN (and EXTD in x2APIC mode) on IA32_APIC_BASE is the documented way
    // to enable the local APIC; the base address bits are preserved.
    unsafe {
        let mut base = base_msr.read() | APIC_BASE_ENABLE;
        if matches!(mode(), Mode::X2Apic) {
            base |= APIC_BASE_X2APIC;
        }
        base_msr.write(base);
    }
    write(Register::TaskPriority, 0);
    write(Register::LvtLint0, LVT_MASKED);
    write(Register::LvtLint1, LVT_MASKED);
    write(Register::LvtError, u32::from(traps::APIC_ERROR_VECTOR));
    write(Register::ErrorStatus, 0);
    write(Register::SpuriousVector, SPURIOUS_APIC_ENABLE | u32::from(traps::SPURIOUS_VECTOR));
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    let raw = read(Register::Id);
    match mode() {
        Mode::X2Apic => raw,
        Mode::XApic { .. } => raw >> 24,
    }
}

pub fn end_of_interrupt() {
    write(Register::EndOfInterrupt, 0);
}

pub fn read_and_clear_error() -> u32 {
    write(Register::ErrorStatus, 0);
    read(Register::ErrorStatus)
}

/// Sends an inter-processor interrupt. `command` is the ICR low word; the destination is
/// ignored when `command` carries a shorthand.
pub fn send_ipi(destination: u32, command: u32) {
    match mode() {
        Mode::X2Apic => {
            let value = (u64::from(destination) << 32) | u64::from(command);
            // SAFETY: writing the x2APIC ICR sends the IPI described by `value`; callers
            // pick the delivery mode and vector.
            unsafe { Msr::new(X2APIC_MSR_BASE + Register::InterruptCommand as u32 / 16).write(value) };
        }
        Mode::XApic { .. } => {
            write(Register::InterruptCommandHigh, destination << 24);
            write(Register::InterruptCommand, command);
            while read(Register::InterruptCommand) & ICR_DELIVERY_PENDING != 0 {
                core::hint::spin_loop();
            }
        }
    }
}

/// Measures the APIC timer against the TSC (the BSP does this once; rates are shared).
pub fn calibrate_timer() {
    const WINDOW_US: u64 = 10_000;
    write(Register::TimerDivide, TIMER_DIVIDE_BY_16);
    write(Register::LvtTimer, LVT_MASKED);
    write(Register::TimerInitialCount, u32::MAX);
    time::delay_us(WINDOW_US);
    let elapsed = u32::MAX - read(Register::TimerCurrentCount);
    write(Register::TimerInitialCount, 0);
    let per_ms = (u64::from(elapsed) * 1000 / WINDOW_US).max(1) as u32;
    TIMER_TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    log::info!("APIC timer: {} kHz (after divide-by-16)", per_ms);
}

/// Starts this CPU's periodic timer at [`TIMER_HZ`].
pub fn start_periodic_timer() {
    let per_ms = TIMER_TICKS_PER_MS.load(Ordering::Relaxed);
    assert!(per_ms != 0, "APIC timer started before calibration");
    write(Register::TimerDivide, TIMER_DIVIDE_BY_16);
    write(Register::LvtTimer, LVT_TIMER_PERIODIC | u32::from(traps::TIMER_VECTOR));
    write(Register::TimerInitialCount, per_ms * (1000 / TIMER_HZ));
}

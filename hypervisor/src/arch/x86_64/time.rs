//! Time: the TSC, calibrated once against the PIT, is the hypervisor's monotonic clock.
//!
//! Calibration uses PIT channel 2 in one-shot mode (gated through port 0x61), which needs
//! no interrupts and no memory beyond this module, so it runs before anything logs and
//! every log line gets a real timestamp.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// The PIT's input clock.
const PIT_HZ: u64 = 1_193_182;
const CALIBRATION_MS: u64 = 50;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the time-stamp counter; CR4.TSD is clear in ring 0 anyway.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures the TSC frequency. Called once on the BSP before logging starts.
pub fn calibrate_tsc() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    let ticks = PIT_HZ * CALIBRATION_MS / 1000;
    let mut gate = Port::<u8>::new(0x61);
    let mut command = Port::<u8>::new(0x43);
    let mut channel2 = Port::<u8>::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT's channel 2 and its gate; nothing else in
    // the hypervisor uses them, and channel 2 drives only the (disconnected) speaker.
    let elapsed = unsafe {
        let old = gate.read();
        gate.write((old & !0x02) | 0x01); // gate on, speaker off
        command.write(0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        channel2.write((ticks & 0xff) as u8);
        channel2.write((ticks >> 8) as u8);
        let start = rdtsc();
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let end = rdtsc();
        gate.write(old);
        end - start
    };
    TSC_HZ.store(elapsed * 1000 / CALIBRATION_MS, Ordering::Relaxed);
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Microseconds since calibration (0 before it).
pub fn micros_since_boot() -> u64 {
    let hz = tsc_hz();
    if hz == 0 {
        return 0;
    }
    let delta = rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed));
    (u128::from(delta) * 1_000_000 / u128::from(hz)) as u64
}

/// Busy-waits for `micros` microseconds.
pub fn delay_us(micros: u64) {
    let target = rdtsc() + tsc_hz() * micros / 1_000_000;
    while rdtsc() < target {
        core::hint::spin_loop();
    }
}

/// A deadline `micros` from now, for bounded waits.
pub fn deadline_after_us(micros: u64) -> u64 {
    rdtsc() + tsc_hz() * micros / 1_000_000
}

pub fn passed(deadline: u64) -> bool {
    rdtsc() >= deadline
}

/// The TSC value at which system time (Xen's "system time": ns since boot) is zero.
pub fn boot_tsc() -> u64 {
    BOOT_TSC.load(Ordering::Relaxed)
}

/// The pvclock scale Xen publishes for TSC -> ns: `ns = ((tsc << shift) * mul_frac) >> 32`
/// (shift may be negative). Computed the way Xen's `set_time_scale` does, so guests that
/// read it from CPUID or (later) `vcpu_time_info` agree with us to the nanosecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeScale {
    pub mul_frac: u32,
    pub shift: i8,
}

impl TimeScale {
    pub fn for_frequency(hz: u64) -> TimeScale {
        const NS_PER_SEC: u64 = 1_000_000_000;
        let mut ticks = hz.max(1);
        let mut shift: i8 = 0;
        while ticks > 2 * NS_PER_SEC {
            ticks >>= 1;
            shift -= 1;
        }
        while ticks <= NS_PER_SEC {
            ticks <<= 1;
            shift += 1;
        }
        TimeScale { mul_frac: ((NS_PER_SEC << 32) / ticks) as u32, shift }
    }

    pub fn apply(self, delta: u64) -> u64 {
        let shifted = if self.shift >= 0 { delta << self.shift } else { delta >> -self.shift };
        ((u128::from(shifted) * u128::from(self.mul_frac)) >> 32) as u64
    }
}

pub fn time_scale() -> TimeScale {
    TimeScale::for_frequency(tsc_hz())
}

/// Xen system time: nanoseconds since boot, from the TSC.
pub fn system_time_ns() -> u64 {
    system_time_at(rdtsc())
}

/// System time at TSC value `tsc`.
pub fn system_time_at(tsc: u64) -> u64 {
    time_scale().apply(tsc.saturating_sub(boot_tsc()))
}

static WALLCLOCK_AT_BOOT: AtomicU64 = AtomicU64::new(0);

/// Seconds since the Unix epoch at system time 0, from the CMOS clock (read at boot).
pub fn wallclock_at_boot() -> u64 {
    WALLCLOCK_AT_BOOT.load(Ordering::Relaxed)
}

/// Reads the CMOS real-time clock (UTC, as servers keep it) once, at boot.
pub fn read_rtc() {
    fn cmos(reg: u8) -> u8 {
        let mut index = Port::<u8>::new(0x70);
        let mut data = Port::<u8>::new(0x71);
        // SAFETY: 0x70/0x71 are the CMOS index and data ports; reading a clock register
        // has no side effects (bit 7 of the index keeps NMIs enabled as they are).
        unsafe {
            index.write(reg);
            data.read()
        }
    }
    let read = || {
        while cmos(0x0a) & 0x80 != 0 {
            core::hint::spin_loop();
        }
        [cmos(0x00), cmos(0x02), cmos(0x04), cmos(0x07), cmos(0x08), cmos(0x09), cmos(0x32)]
    };
    // Read until two reads agree, so an update in between cannot tear the value.
    let mut values = read();
    loop {
        let again = read();
        if again == values {
            break;
        }
        values = again;
    }
    let status_b = cmos(0x0b);
    let bcd = status_b & 0x04 == 0;
    let decode = |v: u8| if bcd { (v & 0x0f) + (v >> 4) * 10 } else { v };
    let [sec, min, hour_raw, day, month, year, century] = values;
    let pm = status_b & 0x02 == 0 && hour_raw & 0x80 != 0;
    let mut hour = decode(hour_raw & 0x7f);
    if status_b & 0x02 == 0 {
        hour = (hour % 12) + if pm { 12 } else { 0 };
    }
    let century = if century == 0 { 20 } else { u64::from(decode(century)) };
    let year = century * 100 + u64::from(decode(year));
    let days = days_from_civil(year, u64::from(decode(month)), u64::from(decode(day)));
    let secs = days * 86_400 + u64::from(hour) * 3600 + u64::from(decode(min)) * 60 + u64::from(decode(sec));
    let elapsed = system_time_ns() / 1_000_000_000;
    WALLCLOCK_AT_BOOT.store(secs.saturating_sub(elapsed), Ordering::Relaxed);
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian calendar).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let (y, m) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}

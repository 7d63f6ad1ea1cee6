//! Xen system time from the TSC: the parameters of CPUID leaf base + 3, sub-leaf 1, and the
//! pvclock scaling `ns = ((tsc - offset) << shift) * mul >> 32` (a negative shift shifts right).

/// The scale the Xen time leaf reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeScale {
    /// TSC value at system time 0 (`eax` low, `ebx` high).
    pub tsc_offset: u64,
    /// `tsc_to_system_mul` (`ecx`): a 32.32 fixed-point multiplier.
    pub mul: u32,
    /// `tsc_shift` (`edx`, signed 8-bit).
    pub shift: i8,
}

impl TimeScale {
    /// From the registers of CPUID base + 3, sub-leaf 1.
    pub fn from_cpuid(eax: u32, ebx: u32, ecx: u32, edx: u32) -> TimeScale {
        TimeScale { tsc_offset: u64::from(eax) | (u64::from(ebx) << 32), mul: ecx, shift: (edx & 0xff) as u8 as i8 }
    }

    /// The scale of a TSC running at `khz` kHz with offset 0 (a fallback when there is no
    /// Xen time leaf): `mul = 10^6 / khz * 2^32`, normalised so that `mul` fits 32 bits.
    pub fn for_khz(khz: u64) -> TimeScale {
        let khz = khz.max(1);
        // ns per tick = 10^6 / khz; as 32.32 fixed point with a shift so that mul < 2^32.
        let mut num: u128 = 1_000_000u128 << 32;
        let mut shift: i8 = 0;
        while num / u128::from(khz) >= 1u128 << 32 {
            num >>= 1;
            shift += 1;
        }
        TimeScale { tsc_offset: 0, mul: (num / u128::from(khz)) as u32, shift }
    }

    /// System time in ns at TSC value `tsc`.
    pub fn ns(&self, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(self.tsc_offset);
        if self.shift >= 0 {
            delta = delta.checked_shl(self.shift as u32).unwrap_or(0);
        } else {
            delta = delta.checked_shr(u32::from(self.shift.unsigned_abs())).unwrap_or(0);
        }
        ((u128::from(delta) * u128::from(self.mul)) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers() {
        let s = TimeScale::from_cpuid(0x89ab_cdef, 0x0123_4567, 0x8000_0000, 0xff);
        assert_eq!(s.tsc_offset, 0x0123_4567_89ab_cdef);
        assert_eq!(s.mul, 0x8000_0000);
        assert_eq!(s.shift, -1);
        let s = TimeScale::from_cpuid(0, 0, 1, 0xffff_ff02);
        assert_eq!(s.shift, 2);
    }

    #[test]
    fn scaling() {
        // 2 GHz: 0.5 ns per tick = mul 2^31, shift 0.
        let s = TimeScale { tsc_offset: 1000, mul: 0x8000_0000, shift: 0 };
        assert_eq!(s.ns(1000), 0);
        assert_eq!(s.ns(3000), 1000);
        // Negative shift halves the delta first.
        let s = TimeScale { tsc_offset: 0, mul: 0x8000_0000, shift: -1 };
        assert_eq!(s.ns(4000), 1000);
        // Positive shift doubles it.
        let s = TimeScale { tsc_offset: 0, mul: 0x8000_0000, shift: 1 };
        assert_eq!(s.ns(4000), 4000);
        // Big deltas do not overflow.
        let s = TimeScale { tsc_offset: 0, mul: u32::MAX, shift: 3 };
        assert_eq!(s.ns(1 << 60), (((1u128 << 63) * u128::from(u32::MAX)) >> 32) as u64);
        // Absurd shifts give 0 rather than panicking.
        let s = TimeScale { tsc_offset: 0, mul: 1, shift: 100 };
        assert_eq!(s.ns(5), 0);
        let s = TimeScale { tsc_offset: 0, mul: 1, shift: -100 };
        assert_eq!(s.ns(5), 0);
    }

    #[test]
    fn for_khz() {
        for khz in [1_000u64, 1_000_000, 2_000_000, 3_456_789, 25_000] {
            let s = TimeScale::for_khz(khz);
            // One second of ticks is one second (within 1 ppm).
            let ns = s.ns(khz * 1000);
            assert!(ns.abs_diff(1_000_000_000) <= 1000, "{khz} kHz: {ns} ns");
        }
        // 1 MHz (1000 ns per tick) needs a positive shift.
        assert!(TimeScale::for_khz(1_000).shift > 0);
    }
}

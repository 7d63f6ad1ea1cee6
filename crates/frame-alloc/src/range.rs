//! Half-open physical byte ranges and the frame size they are cut into.

/// Size in bytes of one physical frame, the unit [`crate::FrameBitmap`] hands out.
pub const FRAME_SIZE: u64 = 4096;

/// A half-open range `[start, end)` of physical byte addresses.
///
/// The fields are public because memory maps and boot protocols hand ranges
/// around as plain pairs; every method tolerates `start > end` and treats such
/// a range as empty rather than trusting firmware-supplied data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhysRange {
    /// First byte address in the range.
    pub start: u64,
    /// One past the last byte address in the range.
    pub end: u64,
}

impl PhysRange {
    /// The empty range at address 0.
    pub const EMPTY: PhysRange = PhysRange { start: 0, end: 0 };

    /// Creates `[start, end)`.
    ///
    /// # Panics
    /// If `end < start`: an inverted range is always a caller bug here, unlike
    /// ranges read from firmware, which should go through [`Self::from_base_len`].
    pub const fn new(start: u64, end: u64) -> Self {
        assert!(start <= end, "PhysRange::new: end is below start");
        Self { start, end }
    }

    /// Creates `[base, base + len)` from a memory-map style (base, length)
    /// pair. The end saturates at `u64::MAX` so a bogus length cannot wrap
    /// around and alias low memory.
    pub const fn from_base_len(base: u64, len: u64) -> Self {
        Self { start: base, end: base.saturating_add(len) }
    }

    /// Number of bytes in the range (0 if empty or inverted).
    pub const fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range holds no bytes.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `addr` lies inside the range.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the two ranges share at least one byte. Merely touching
    /// (`a.end == b.start`) is not overlapping, and empty ranges overlap nothing.
    pub const fn overlaps(&self, other: &PhysRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// The largest frame-aligned sub-range: `start` rounded up and `end`
    /// rounded down to [`FRAME_SIZE`].
    ///
    /// Rounding inward is the safe direction for memory we want to *use*: a
    /// partial frame at either edge may share its page with something else.
    /// The result may be empty (then it is `[end', end')` with `end'` aligned).
    pub const fn frames_inward(&self) -> PhysRange {
        let end = self.end & !(FRAME_SIZE - 1);
        let start = match self.start.checked_add(FRAME_SIZE - 1) {
            Some(s) => s & !(FRAME_SIZE - 1),
            // Rounding up past the top of the address space: nothing is left.
            None => return PhysRange { start: end, end },
        };
        if start >= end {
            PhysRange { start: end, end }
        } else {
            PhysRange { start, end }
        }
    }

    /// Number of whole frames inside the range (see [`Self::frames_inward`]).
    pub const fn frame_count(&self) -> u64 {
        self.frames_inward().len() / FRAME_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        let r = PhysRange::new(0x1000, 0x3000);
        assert_eq!(r.len(), 0x2000);
        assert!(!r.is_empty());
        assert!(r.contains(0x1000));
        assert!(r.contains(0x2fff));
        assert!(!r.contains(0x3000));
        assert!(!r.contains(0xfff));
        assert!(PhysRange::new(5, 5).is_empty());
        assert_eq!(PhysRange::EMPTY.len(), 0);
    }

    #[test]
    fn inverted_ranges_are_empty() {
        let r = PhysRange { start: 10, end: 5 };
        assert!(r.is_empty());
        assert_eq!(r.len(), 0);
        assert!(!r.contains(7));
        assert!(!r.overlaps(&PhysRange::new(0, 20)));
        assert!(r.frames_inward().is_empty());
    }

    #[test]
    #[should_panic(expected = "end is below start")]
    fn new_rejects_inverted() {
        let _ = PhysRange::new(2, 1);
    }

    #[test]
    fn from_base_len_saturates() {
        assert_eq!(PhysRange::from_base_len(0x1000, 0x1000), PhysRange::new(0x1000, 0x2000));
        assert_eq!(PhysRange::from_base_len(u64::MAX - 1, 10).end, u64::MAX);
    }

    #[test]
    fn overlaps() {
        let a = PhysRange::new(0, 100);
        assert!(a.overlaps(&PhysRange::new(99, 200)));
        assert!(!a.overlaps(&PhysRange::new(100, 200)));
        assert!(PhysRange::new(100, 200).overlaps(&PhysRange::new(0, 101)));
        assert!(a.overlaps(&PhysRange::new(10, 20)));
        assert!(PhysRange::new(10, 20).overlaps(&a));
        assert!(!a.overlaps(&PhysRange::new(50, 50)));
    }

    #[test]
    fn frames_inward() {
        let f = FRAME_SIZE;
        assert_eq!(PhysRange::new(0, 3 * f).frames_inward(), PhysRange::new(0, 3 * f));
        assert_eq!(PhysRange::new(1, 3 * f - 1).frames_inward(), PhysRange::new(f, 2 * f));
        assert!(PhysRange::new(1, 2 * f - 1).frames_inward().is_empty());
        assert!(PhysRange::new(f + 1, f + 2).frames_inward().is_empty());
        assert_eq!(PhysRange::new(1, 2 * f - 1).frame_count(), 0);
        assert_eq!(PhysRange::new(0x9_fc00, 0x20_0123).frame_count(), 0x200 - 0xa0);
        // Near the top of the address space rounding up must not wrap to 0.
        let top = PhysRange::new(u64::MAX - 10, u64::MAX).frames_inward();
        assert!(top.is_empty());
        assert_eq!(top.start % f, 0);
        let r = PhysRange::new(u64::MAX - 3 * f, u64::MAX).frames_inward();
        assert_eq!(r.len(), 2 * f);
        assert_eq!(r.end, !(f - 1));
    }
}

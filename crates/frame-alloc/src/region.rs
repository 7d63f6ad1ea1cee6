//! Fixed-capacity sets of physical ranges, used to compute usable memory.
//!
//! At boot there is no heap yet, so the "RAM from the firmware map minus
//! everything already claimed" arithmetic is done on a [`RegionList`] that
//! lives on the stack or in a static.

use core::fmt;

use crate::range::PhysRange;

/// A [`RegionList`] operation needed more slots than the list has.
///
/// The list is left exactly as it was before the failing call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("region list capacity exceeded")
    }
}

impl core::error::Error for CapacityError {}

/// A set of physical byte ranges with room for at most `N` disjoint ranges.
///
/// Invariant: the live ranges are non-empty, sorted by address, and neither
/// overlap nor touch (touching ranges are coalesced). Keeping the list
/// coalesced is what makes the capacity meaningful: `N` bounds the number of
/// holes, not the number of `add` calls.
#[derive(Clone)]
pub struct RegionList<const N: usize> {
    ranges: [PhysRange; N],
    len: usize,
}

impl<const N: usize> Default for RegionList<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for RegionList<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the live prefix means anything; the tail is stale scratch.
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<const N: usize> PartialEq for RegionList<N> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<const N: usize> Eq for RegionList<N> {}

impl<const N: usize> RegionList<N> {
    /// An empty list.
    pub const fn new() -> Self {
        Self { ranges: [PhysRange::EMPTY; N], len: 0 }
    }

    /// Maximum number of disjoint ranges the list can hold.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of disjoint ranges currently held.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the list holds no ranges.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ranges, sorted by address, non-empty and pairwise non-touching.
    pub fn as_slice(&self) -> &[PhysRange] {
        &self.ranges[..self.len]
    }

    /// Iterates over the ranges in ascending address order.
    pub fn iter(&self) -> core::slice::Iter<'_, PhysRange> {
        self.as_slice().iter()
    }

    /// Sum of the lengths of all ranges.
    pub fn total_bytes(&self) -> u64 {
        self.iter().map(PhysRange::len).sum()
    }

    /// End address of the highest range, or 0 if the list is empty.
    ///
    /// This is what sizes a [`crate::FrameBitmap`]: frames above it are
    /// never usable.
    pub fn highest_end(&self) -> u64 {
        self.as_slice().last().map_or(0, |r| r.end)
    }

    /// Adds `range` to the set, merging it with every range it overlaps or
    /// touches. Adding an empty range does nothing.
    ///
    /// # Errors
    /// [`CapacityError`] if `range` merges with nothing and the list is full;
    /// the list is then unchanged.
    pub fn add(&mut self, range: PhysRange) -> Result<(), CapacityError> {
        if range.is_empty() {
            return Ok(());
        }
        let live = self.as_slice();
        // [i, j) is the block of ranges that overlap or touch `range`; it is
        // contiguous because the list is sorted and disjoint.
        let i = live.partition_point(|r| r.end < range.start);
        let j = live.partition_point(|r| r.start <= range.end);
        if i == j {
            if self.len == N {
                return Err(CapacityError);
            }
            self.ranges.copy_within(i..self.len, i + 1);
            self.ranges[i] = range;
            self.len += 1;
        } else {
            let merged =
                PhysRange { start: range.start.min(self.ranges[i].start), end: range.end.max(self.ranges[j - 1].end) };
            self.ranges[i] = merged;
            self.ranges.copy_within(j..self.len, i + 1);
            self.len -= j - i - 1;
        }
        Ok(())
    }

    /// Removes every byte of `range` from the set. A range that straddles a
    /// removal is trimmed, and one that strictly contains it is split in two.
    /// Removing bytes that are not in the set is not an error.
    ///
    /// # Errors
    /// [`CapacityError`] if a split needs one more slot than the list has;
    /// the list is then unchanged.
    pub fn remove(&mut self, range: PhysRange) -> Result<(), CapacityError> {
        if range.is_empty() {
            return Ok(());
        }
        let live = self.as_slice();
        // [i, j) is the block of ranges sharing at least one byte with `range`.
        let i = live.partition_point(|r| r.end <= range.start);
        let j = live.partition_point(|r| r.start < range.end);
        if i >= j {
            return Ok(());
        }
        let first = self.ranges[i];
        let last = self.ranges[j - 1];
        let left = (first.start < range.start).then_some(PhysRange { start: first.start, end: range.start });
        let right = (last.end > range.end).then_some(PhysRange { start: range.end, end: last.end });
        let keep = usize::from(left.is_some()) + usize::from(right.is_some());
        let new_len = self.len - (j - i) + keep;
        // Check before touching anything so a failed split leaves no trace.
        if new_len > N {
            return Err(CapacityError);
        }
        self.ranges.copy_within(j..self.len, i + keep);
        let pieces = [left, right].into_iter().flatten();
        for (slot, piece) in self.ranges[i..i + keep].iter_mut().zip(pieces) {
            *slot = piece;
        }
        self.len = new_len;
        Ok(())
    }

    /// Shrinks every range inward to [`crate::FRAME_SIZE`] boundaries (see
    /// [`PhysRange::frames_inward`]) and drops ranges left empty.
    ///
    /// Shrinking only widens the gaps between ranges, so the list stays
    /// sorted and coalesced without re-merging.
    pub fn align_to_frames(&mut self) {
        let mut kept = 0;
        for idx in 0..self.len {
            let aligned = self.ranges[idx].frames_inward();
            if !aligned.is_empty() {
                self.ranges[kept] = aligned;
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// Lowest address `a` such that `[a, a + size)` lies entirely inside one
    /// range of the set, `a` is a multiple of `align`, and `a + size <= below`.
    ///
    /// Used to place boot-time structures (such as the frame bitmap itself)
    /// before any allocator exists; `below` keeps them inside whatever is
    /// identity-mapped at that point. `align` need not be a power of two; 0 is
    /// treated as 1. Returns `None` if `size` is 0 or nothing fits.
    pub fn find_fit(&self, size: u64, align: u64, below: u64) -> Option<u64> {
        if size == 0 {
            return None;
        }
        let align = align.max(1);
        for r in self.iter() {
            if r.start >= below {
                break;
            }
            let limit = r.end.min(below);
            let Some(start) = align_up(r.start, align) else {
                // Every later range starts higher and would overflow too.
                break;
            };
            if let Some(end) = start.checked_add(size) {
                if end <= limit {
                    return Some(start);
                }
            }
        }
        None
    }
}

/// Rounds `x` up to a multiple of `align` (`align > 0`), or `None` on overflow.
fn align_up(x: u64, align: u64) -> Option<u64> {
    match x % align {
        0 => Some(x),
        rem => x.checked_add(align - rem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::XorShift;
    use crate::FRAME_SIZE;

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange::new(start, end)
    }

    fn list<const N: usize>(ranges: &[(u64, u64)]) -> RegionList<N> {
        let mut l = RegionList::new();
        for &(s, e) in ranges {
            l.add(r(s, e)).unwrap();
        }
        l
    }

    fn pairs<const N: usize>(l: &RegionList<N>) -> Vec<(u64, u64)> {
        l.iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn add_keeps_sorted_disjoint() {
        let l: RegionList<8> = list(&[(300, 400), (100, 200), (500, 600)]);
        assert_eq!(pairs(&l), [(100, 200), (300, 400), (500, 600)]);
        assert_eq!(l.len(), 3);
        assert_eq!(l.total_bytes(), 300);
        assert_eq!(l.highest_end(), 600);
    }

    #[test]
    fn add_empty_is_noop() {
        let mut l: RegionList<1> = list(&[(0, 10)]);
        l.add(r(50, 50)).unwrap();
        assert_eq!(pairs(&l), [(0, 10)]);
        let empty: RegionList<4> = RegionList::default();
        assert!(empty.is_empty());
        assert_eq!(empty.highest_end(), 0);
        assert_eq!(empty.total_bytes(), 0);
    }

    #[test]
    fn add_merges_overlap_and_adjacent() {
        let mut l: RegionList<8> = list(&[(100, 200), (300, 400)]);
        l.add(r(150, 250)).unwrap();
        assert_eq!(pairs(&l), [(100, 250), (300, 400)]);
        // Touching on the right.
        l.add(r(250, 260)).unwrap();
        assert_eq!(pairs(&l), [(100, 260), (300, 400)]);
        // Touching on the left.
        l.add(r(90, 100)).unwrap();
        assert_eq!(pairs(&l), [(90, 260), (300, 400)]);
        // Contained: no change.
        l.add(r(310, 320)).unwrap();
        assert_eq!(pairs(&l), [(90, 260), (300, 400)]);
        // Bridges the gap exactly, touching both.
        l.add(r(260, 300)).unwrap();
        assert_eq!(pairs(&l), [(90, 400)]);
    }

    #[test]
    fn add_swallows_many() {
        let mut l: RegionList<8> = list(&[(0, 5), (10, 20), (30, 40), (50, 60), (70, 80)]);
        l.add(r(15, 55)).unwrap();
        assert_eq!(pairs(&l), [(0, 5), (10, 60), (70, 80)]);
        l.add(r(0, 1000)).unwrap();
        assert_eq!(pairs(&l), [(0, 1000)]);
    }

    #[test]
    fn remove_trims_and_splits() {
        let mut l: RegionList<8> = list(&[(100, 200), (300, 400)]);
        // Split.
        l.remove(r(120, 130)).unwrap();
        assert_eq!(pairs(&l), [(100, 120), (130, 200), (300, 400)]);
        // Trim left edge.
        l.remove(r(50, 110)).unwrap();
        assert_eq!(pairs(&l), [(110, 120), (130, 200), (300, 400)]);
        // Trim right edge.
        l.remove(r(390, 500)).unwrap();
        assert_eq!(pairs(&l), [(110, 120), (130, 200), (300, 390)]);
        // Spanning several ranges, trimming both ends.
        l.remove(r(115, 350)).unwrap();
        assert_eq!(pairs(&l), [(110, 115), (350, 390)]);
        // Outside everything, and touching only: no change.
        l.remove(r(0, 110)).unwrap();
        l.remove(r(200, 300)).unwrap();
        l.remove(r(390, 1000)).unwrap();
        assert_eq!(pairs(&l), [(110, 115), (350, 390)]);
        // Exact removal.
        l.remove(r(110, 115)).unwrap();
        assert_eq!(pairs(&l), [(350, 390)]);
        l.remove(r(0, u64::MAX)).unwrap();
        assert!(l.is_empty());
    }

    #[test]
    fn capacity_errors_leave_list_unchanged() {
        let mut l: RegionList<2> = list(&[(0, 10), (20, 30)]);
        assert_eq!(l.capacity(), 2);
        let before = l.clone();
        // A third disjoint range does not fit.
        assert_eq!(l.add(r(40, 50)), Err(CapacityError));
        assert_eq!(l, before);
        // Splitting needs a third slot.
        assert_eq!(l.remove(r(3, 4)), Err(CapacityError));
        assert_eq!(l, before);
        // Merging and trimming need no new slot, so they work when full.
        l.add(r(10, 15)).unwrap();
        assert_eq!(pairs(&l), [(0, 15), (20, 30)]);
        l.remove(r(0, 3)).unwrap();
        assert_eq!(pairs(&l), [(3, 15), (20, 30)]);
        // A removal that spans two ranges may split both ends and still fit.
        l.remove(r(5, 25)).unwrap();
        assert_eq!(pairs(&l), [(3, 5), (25, 30)]);

        let mut z: RegionList<0> = RegionList::new();
        assert_eq!(z.add(r(0, 1)), Err(CapacityError));
        z.remove(r(0, 1)).unwrap();
        assert_eq!(CapacityError.to_string(), "region list capacity exceeded");
    }

    #[test]
    fn align_to_frames_shrinks_and_drops() {
        let f = FRAME_SIZE;
        let mut l: RegionList<8> = list(&[
            (0, 100),                // smaller than a frame: dropped
            (f + 1, 4 * f - 1),      // shrinks to [2f, 3f)
            (5 * f, 7 * f),          // already aligned
            (8 * f - 10, 9 * f + 5), // shrinks to [8f, 9f)
            (10 * f + 1, 11 * f),    // crosses no boundary after rounding: dropped
        ]);
        l.align_to_frames();
        assert_eq!(pairs(&l), [(2 * f, 3 * f), (5 * f, 7 * f), (8 * f, 9 * f)]);
        for x in l.iter() {
            assert_eq!(x.start % f, 0);
            assert_eq!(x.end % f, 0);
        }
    }

    #[test]
    fn find_fit_cases() {
        let l: RegionList<8> = list(&[(0x1000, 0x2800), (0x3000, 0x9000), (0x10000, 0x20000)]);
        // First range fits small, unaligned-size requests.
        assert_eq!(l.find_fit(0x100, 1, u64::MAX), Some(0x1000));
        assert_eq!(l.find_fit(0x1800, 0x1000, u64::MAX), Some(0x1000));
        // Too big for the first range: must not span the gap.
        assert_eq!(l.find_fit(0x2000, 0x1000, u64::MAX), Some(0x3000));
        // Alignment pushes the start up within a range.
        assert_eq!(l.find_fit(0x1000, 0x4000, u64::MAX), Some(0x4000));
        assert_eq!(l.find_fit(0x5000, 0x4000, u64::MAX), Some(0x4000));
        assert_eq!(l.find_fit(0x5001, 0x4000, u64::MAX), Some(0x10000));
        // Non-power-of-two alignment; 0 behaves like 1.
        assert_eq!(l.find_fit(0x10, 0x3000, u64::MAX), Some(0x3000));
        assert_eq!(l.find_fit(0x10, 0, u64::MAX), Some(0x1000));
        // `below` caps the end address.
        assert_eq!(l.find_fit(0x6000, 1, 0x9000), Some(0x3000));
        assert_eq!(l.find_fit(0x6000, 1, 0x8fff), None);
        assert_eq!(l.find_fit(0x1000, 1, 0x1000), None);
        assert_eq!(l.find_fit(0x8000, 0x1000, 0x18000), Some(0x10000));
        // Nothing big enough, and the size-0 request.
        assert_eq!(l.find_fit(0x10001, 1, u64::MAX), None);
        assert_eq!(l.find_fit(0, 1, u64::MAX), None);
        // Alignment overflowing near the top of the address space.
        let top: RegionList<2> = list(&[(u64::MAX - 10, u64::MAX)]);
        assert_eq!(top.find_fit(1, 1 << 63, u64::MAX), None);
        assert_eq!(top.find_fit(10, 1, u64::MAX), Some(u64::MAX - 10));
        assert_eq!(top.find_fit(11, 1, u64::MAX), None);
    }

    #[test]
    fn boot_usage() {
        const MIB: u64 = 1 << 20;
        let mut usable: RegionList<16> = RegionList::new();
        // Firmware map: two RAM ranges, one with a ragged end.
        usable.add(PhysRange::from_base_len(0, 0x9_fc00)).unwrap();
        usable.add(PhysRange::from_base_len(MIB, 511 * MIB + 0x123)).unwrap();
        usable.remove(r(0, MIB)).unwrap(); // low 1 MiB
        usable.remove(r(2 * MIB, 2 * MIB + 0x3_4567)).unwrap(); // hypervisor image
        usable.remove(r(16 * MIB, 20 * MIB)).unwrap(); // boot module
        usable.remove(r(0x9000_0000, 0x9000_1000)).unwrap(); // outside RAM
        usable.align_to_frames();
        assert_eq!(pairs(&usable), [(MIB, 2 * MIB), (0x23_5000, 16 * MIB), (20 * MIB, 512 * MIB),]);
        assert_eq!(usable.highest_end(), 512 * MIB);
        // Two bits per frame for the bitmap storage.
        let bitmap_bytes = 512 * MIB / FRAME_SIZE / 4;
        assert_eq!(usable.find_fit(bitmap_bytes, FRAME_SIZE, 4 * MIB), Some(MIB));
        assert_eq!(usable.find_fit(2 * MIB, FRAME_SIZE, 4 * MIB), None);
        assert_eq!(usable.find_fit(2 * MIB, 2 * MIB, u64::MAX), Some(4 * MIB));
    }

    /// Random add/remove against a byte-granular model over a small space.
    #[test]
    fn randomized_against_model() {
        const SPACE: u64 = 256;
        let mut rng = XorShift::new(0x5eed_1234);
        for _round in 0..50 {
            // 128 slots can hold any set over 256 units, so no capacity errors.
            let mut l: RegionList<128> = RegionList::new();
            let mut model = [false; SPACE as usize];
            for _ in 0..200 {
                let a = rng.below(SPACE + 1);
                let b = rng.below(SPACE + 1);
                let range = r(a.min(b), a.max(b));
                let adding = rng.below(3) != 0;
                if adding {
                    l.add(range).unwrap();
                } else {
                    l.remove(range).unwrap();
                }
                for x in range.start..range.end {
                    model[x as usize] = adding;
                }
                // Rebuild the expected coalesced ranges from the model.
                let mut expect = Vec::new();
                let mut x = 0;
                while x < SPACE {
                    if model[x as usize] {
                        let s = x;
                        while x < SPACE && model[x as usize] {
                            x += 1;
                        }
                        expect.push((s, x));
                    } else {
                        x += 1;
                    }
                }
                assert_eq!(pairs(&l), expect);
                assert_eq!(l.total_bytes(), model.iter().filter(|&&b| b).count() as u64);
                // find_fit agrees with a brute-force search.
                let size = rng.below(20) + 1;
                let align = rng.below(8) + 1;
                let below = rng.below(SPACE + 1);
                let brute = (0..SPACE)
                    .find(|&s| s % align == 0 && s + size <= below && (s..s + size).all(|y| model[y as usize]));
                assert_eq!(l.find_fit(size, align, below), brute);
            }
        }
    }
}

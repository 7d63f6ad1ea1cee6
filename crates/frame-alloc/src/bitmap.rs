//! The bitmap frame allocator: the single owner of "is this frame in use".
//!
//! Every frame number in `[0, nframes)` is in exactly one of three states:
//!
//! | state            | `managed` bit | `free` bit |
//! |------------------|---------------|------------|
//! | unmanaged        | 0             | 0          |
//! | managed and used | 1             | 0          |
//! | managed and free | 1             | 1          |
//!
//! Unmanaged frames (MMIO holes, firmware-reserved memory, frames never
//! handed to [`FrameBitmap::add_free`]) can never be allocated or freed, which
//! turns a stray `free` of a device address into an error instead of a
//! corrupted allocator.

use core::fmt;

use crate::range::{PhysRange, FRAME_SIZE};

/// Frames per storage word.
const BITS: u64 = u64::BITS as u64;

/// Largest supported `nframes`: frame addresses (`frame * FRAME_SIZE`) must
/// fit in a `u64`.
pub const MAX_FRAMES: u64 = 1 << (u64::BITS - FRAME_SIZE.trailing_zeros());

/// Number of `u64` words of storage [`FrameBitmap::new`] needs to track
/// frames `[0, nframes)`.
///
/// The storage holds two bit arrays of `nframes.div_ceil(64)` words each:
/// first the `managed` bits, then the `free` bits (bit `i % 64` of word
/// `i / 64` is frame `i`). That is 2 bits, i.e. 1/16384 of the memory tracked.
pub const fn storage_words(nframes: u64) -> usize {
    (nframes.div_ceil(BITS) as usize) * 2
}

/// Why a [`FrameBitmap::free`] or [`FrameBitmap::free_contiguous`] was
/// refused. A refused free changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FreeError {
    /// The address is not a multiple of [`FRAME_SIZE`].
    NotAligned,
    /// The frames extend past the end of the bitmap.
    OutOfRange,
    /// A frame in the range was never added as usable memory.
    Unmanaged,
    /// A frame in the range is already free.
    DoubleFree,
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FreeError::NotAligned => "address is not frame aligned",
            FreeError::OutOfRange => "frame is beyond the end of the bitmap",
            FreeError::Unmanaged => "frame is not managed by the allocator",
            FreeError::DoubleFree => "frame is already free",
        })
    }
}

impl core::error::Error for FreeError {}

/// Frame counts of a [`FrameBitmap`]; `managed == free + used` always holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameStats {
    /// Frames the allocator owns (free or used).
    pub managed: u64,
    /// Managed frames available for allocation.
    pub free: u64,
    /// Managed frames allocated or reserved.
    pub used: u64,
}

/// Bitmap allocator of [`FRAME_SIZE`] physical frames over caller-provided
/// storage.
///
/// Not internally synchronised: wrap it in the hypervisor's lock of choice.
/// Single-frame allocation is next-fit (it resumes scanning at the word where
/// the previous allocation succeeded and skips whole words with no free
/// frame), which keeps the common case O(1) amortised instead of rescanning
/// the fully-used low memory every time.
pub struct FrameBitmap<'a> {
    /// Bit set: the frame is managed (free or used).
    managed: &'a mut [u64],
    /// Bit set: the frame is managed and free. Always a subset of `managed`,
    /// with no bits at or above `nframes`, so a set bit is always allocatable.
    free: &'a mut [u64],
    nframes: u64,
    managed_count: u64,
    free_count: u64,
    /// Word index where the next single-frame search starts.
    next_word: usize,
}

impl fmt::Debug for FrameBitmap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bit arrays can be megabytes; the counters are what is useful.
        f.debug_struct("FrameBitmap")
            .field("nframes", &self.nframes)
            .field("managed", &self.managed_count)
            .field("free", &self.free_count)
            .finish_non_exhaustive()
    }
}

impl<'a> FrameBitmap<'a> {
    /// Creates an allocator for frames `[0, nframes)` in which every frame is
    /// unmanaged. Only the first [`storage_words`]`(nframes)` words of
    /// `storage` are used; they are cleared here, so the caller need not.
    ///
    /// # Panics
    /// If `storage` is shorter than [`storage_words`]`(nframes)` or
    /// `nframes > MAX_FRAMES`.
    pub fn new(storage: &'a mut [u64], nframes: u64) -> Self {
        assert!(nframes <= MAX_FRAMES, "FrameBitmap::new: nframes exceeds MAX_FRAMES");
        let need = storage_words(nframes);
        assert!(
            storage.len() >= need,
            "FrameBitmap::new: storage has {} u64 words but {} frames need {}",
            storage.len(),
            nframes,
            need
        );
        let (storage, _) = storage.split_at_mut(need);
        storage.fill(0);
        let (managed, free) = storage.split_at_mut(need / 2);
        Self { managed, free, nframes, managed_count: 0, free_count: 0, next_word: 0 }
    }

    /// Number of frames the bitmap covers (frames `[0, nframes)`).
    pub fn nframes(&self) -> u64 {
        self.nframes
    }

    /// Hands the frames lying entirely inside `range` to the allocator as
    /// free. Partial frames at the edges are ignored (the range is shrunk
    /// inward), as are frames at or beyond `nframes`.
    ///
    /// Frames that are already managed keep their state: re-adding memory
    /// must never make an allocated frame available a second time. Returns
    /// the number of frames that became managed.
    pub fn add_free(&mut self, range: PhysRange) -> u64 {
        let r = range.frames_inward();
        let first = r.start / FRAME_SIZE;
        let end = (r.end / FRAME_SIZE).min(self.nframes);
        let mut added = 0;
        for (w, mask) in WordMasks::new(first, end) {
            let new = mask & !self.managed[w];
            self.managed[w] |= new;
            self.free[w] |= new;
            added += u64::from(new.count_ones());
        }
        self.managed_count += added;
        self.free_count += added;
        added
    }

    /// Marks every managed frame that `range` touches as used, so it is never
    /// allocated: this is how the bitmap's own storage, page tables built
    /// before the allocator existed, etc. are carved out of free memory.
    ///
    /// Partial frames at the edges are included (the range is widened
    /// outward), because a frame holding any reserved byte must not be handed
    /// out. Unmanaged frames stay unmanaged, so reserve *after* the
    /// corresponding [`Self::add_free`]. Returns the number of frames that
    /// went from free to used.
    pub fn reserve(&mut self, range: PhysRange) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let first = range.start / FRAME_SIZE;
        // Computed as ceil((end) / FRAME_SIZE) without overflowing at u64::MAX.
        let end = ((range.end - 1) / FRAME_SIZE + 1).min(self.nframes);
        let mut taken = 0;
        for (w, mask) in WordMasks::new(first, end) {
            let t = mask & self.free[w];
            self.free[w] &= !t;
            taken += u64::from(t.count_ones());
        }
        self.free_count -= taken;
        taken
    }

    /// Allocates one frame and returns its physical address, or `None` if no
    /// managed frame is free.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free_count == 0 {
            return None;
        }
        let words = self.free.len();
        let start = self.next_word;
        for w in (start..words).chain(0..start) {
            let bits = self.free[w];
            if bits != 0 {
                // Clear the lowest set bit.
                self.free[w] = bits & (bits - 1);
                self.free_count -= 1;
                self.next_word = w;
                let frame = w as u64 * BITS + u64::from(bits.trailing_zeros());
                return Some(frame * FRAME_SIZE);
            }
        }
        debug_assert!(false, "free_count is non-zero but no free bit is set");
        None
    }

    /// Allocates `count` physically contiguous frames whose first frame
    /// number is a multiple of `align_frames` (0 is treated as 1), returning
    /// the address of the first frame.
    ///
    /// First-fit from the bottom of memory rather than next-fit: contiguous
    /// requests are rare (boot structures, DMA buffers) and a predictable
    /// placement matters more than speed for them; the scan still skips whole
    /// used or free words. Returns `None` if `count` is 0 or no suitable run
    /// exists.
    pub fn alloc_contiguous(&mut self, count: u64, align_frames: u64) -> Option<u64> {
        if count == 0 || count > self.free_count {
            return None;
        }
        let align = align_frames.max(1);
        let mut from = 0;
        loop {
            let first_free = next_set(self.free, from, self.nframes)?;
            let cand = align_up(first_free, align)?;
            let cand_end = cand.checked_add(count)?;
            if cand_end > self.nframes {
                return None;
            }
            // `stop` is the first non-free frame in the candidate run; every
            // later candidate must start past it, which guarantees progress.
            let stop = next_clear(self.free, cand, cand_end);
            if stop == cand_end {
                for (w, mask) in WordMasks::new(cand, cand_end) {
                    self.free[w] &= !mask;
                }
                self.free_count -= count;
                return Some(cand * FRAME_SIZE);
            }
            from = stop + 1;
        }
    }

    /// Returns one frame, previously allocated or reserved, to the free pool.
    ///
    /// # Errors
    /// See [`FreeError`]; on error nothing changes.
    pub fn free(&mut self, addr: u64) -> Result<(), FreeError> {
        self.free_contiguous(addr, 1)
    }

    /// Returns `count` contiguous frames starting at `addr` to the free pool.
    /// The whole range is validated before anything is changed, so a partly
    /// bad request frees nothing. `count == 0` only validates `addr`.
    ///
    /// # Errors
    /// [`FreeError::NotAligned`] if `addr` is not frame aligned,
    /// [`FreeError::OutOfRange`] if the range passes `nframes`,
    /// [`FreeError::Unmanaged`] / [`FreeError::DoubleFree`] if any frame in it
    /// is unmanaged / already free (checked word by word from the bottom).
    pub fn free_contiguous(&mut self, addr: u64, count: u64) -> Result<(), FreeError> {
        if addr % FRAME_SIZE != 0 {
            return Err(FreeError::NotAligned);
        }
        let first = addr / FRAME_SIZE;
        let end = first.checked_add(count).filter(|&e| e <= self.nframes).ok_or(FreeError::OutOfRange)?;
        for (w, mask) in WordMasks::new(first, end) {
            if mask & !self.managed[w] != 0 {
                return Err(FreeError::Unmanaged);
            }
            if mask & self.free[w] != 0 {
                return Err(FreeError::DoubleFree);
            }
        }
        for (w, mask) in WordMasks::new(first, end) {
            self.free[w] |= mask;
        }
        self.free_count += count;
        Ok(())
    }

    /// Whether the frame containing `addr` is managed and free.
    pub fn is_free(&self, addr: u64) -> bool {
        self.bit(self.free, addr)
    }

    /// Whether the frame containing `addr` is managed (free or used).
    pub fn is_managed(&self, addr: u64) -> bool {
        self.bit(self.managed, addr)
    }

    /// Number of managed frames that are free.
    pub fn free_frames(&self) -> u64 {
        self.free_count
    }

    /// Number of managed frames that are allocated or reserved.
    pub fn used_frames(&self) -> u64 {
        self.managed_count - self.free_count
    }

    /// Number of frames the allocator owns (free + used).
    pub fn managed_frames(&self) -> u64 {
        self.managed_count
    }

    /// All three counters at once.
    pub fn stats(&self) -> FrameStats {
        FrameStats { managed: self.managed_frames(), free: self.free_frames(), used: self.used_frames() }
    }

    fn bit(&self, bits: &[u64], addr: u64) -> bool {
        let frame = addr / FRAME_SIZE;
        frame < self.nframes && bits[(frame / BITS) as usize] & (1 << (frame % BITS)) != 0
    }

    /// Recomputes the counters from the bit arrays and checks the layout
    /// invariants, so tests can prove the O(1) counters never drift.
    #[cfg(test)]
    fn recount(&self) -> FrameStats {
        let mut managed = 0;
        let mut free = 0;
        for (w, (&m, &f)) in self.managed.iter().zip(self.free.iter()).enumerate() {
            assert_eq!(f & !m, 0, "free bit without managed bit in word {w}");
            let in_range = WordMasks::new(w as u64 * BITS, self.nframes).next().map_or(0, |(_, mask)| mask);
            assert_eq!(m & !in_range, 0, "managed bit beyond nframes in word {w}");
            managed += u64::from(m.count_ones());
            free += u64::from(f.count_ones());
        }
        FrameStats { managed, free, used: managed - free }
    }
}

/// Splits the frame range `[first, end)` into `(word index, bit mask)` pairs,
/// so range operations touch each word once instead of each bit.
struct WordMasks {
    next: u64,
    end: u64,
}

impl WordMasks {
    fn new(first: u64, end: u64) -> Self {
        Self { next: first, end }
    }
}

impl Iterator for WordMasks {
    type Item = (usize, u64);

    fn next(&mut self) -> Option<(usize, u64)> {
        if self.next >= self.end {
            return None;
        }
        let word = self.next / BITS;
        let lo = self.next % BITS;
        let word_end = ((word + 1) * BITS).min(self.end);
        let hi = word_end - word * BITS; // in 1..=64
        let upper = if hi == BITS { u64::MAX } else { (1 << hi) - 1 };
        let mask = upper & (u64::MAX << lo);
        self.next = word_end;
        Some((word as usize, mask))
    }
}

/// First frame in `[from, limit)` whose bit is set, skipping all-zero words.
fn next_set(bits: &[u64], from: u64, limit: u64) -> Option<u64> {
    let mut f = from;
    while f < limit {
        let w = f / BITS;
        let word = bits[w as usize] & (u64::MAX << (f % BITS));
        if word != 0 {
            let i = w * BITS + u64::from(word.trailing_zeros());
            return (i < limit).then_some(i);
        }
        f = (w + 1) * BITS;
    }
    None
}

/// First frame in `[from, limit)` whose bit is clear, skipping all-ones
/// words; `limit` if there is none.
fn next_clear(bits: &[u64], from: u64, limit: u64) -> u64 {
    let mut f = from;
    while f < limit {
        let w = f / BITS;
        let word = !bits[w as usize] & (u64::MAX << (f % BITS));
        if word != 0 {
            return (w * BITS + u64::from(word.trailing_zeros())).min(limit);
        }
        f = (w + 1) * BITS;
    }
    limit
}

/// Rounds `x` up to a multiple of `align` (`align > 0`), or `None` on overflow.
fn align_up(x: u64, align: u64) -> Option<u64> {
    match x % align {
        0 => Some(x),
        rem => x.checked_add(align - rem),
    }
}

#[cfg(test)]
mod tests;

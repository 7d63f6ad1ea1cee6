//! The physical frame allocator: one [`FrameBitmap`] for all of RAM behind a spin lock.
//!
//! Before the bitmap exists, the page tables of the direct map (through which the bitmap
//! itself is addressed) come from an "early" allocator that carves frames below 4 GiB
//! out of the region list; they are then recorded in the bitmap as used, so the
//! accounting covers every frame the hypervisor holds.

use super::{phys_to_virt, Regions};
use frame_alloc::{storage_words, FrameBitmap, FrameStats, PhysRange, RegionList, FRAME_SIZE};
use spin::Mutex;
use x86_64::PhysAddr;

static FRAMES: Mutex<Option<FrameBitmap<'static>>> = Mutex::new(None);

/// Frames the CPUs use for good (SVM host-save areas, host VMCBs): freeing one is a bug
/// that would hand the hardware's own save area to a guest, so it is refused loudly.
static PINNED: Mutex<Pins> = Mutex::new(Pins::new());

/// A small fixed set of frame addresses.
struct Pins {
    frames: [u64; 256],
    len: usize,
}

impl Pins {
    const fn new() -> Self {
        Pins { frames: [0; 256], len: 0 }
    }

    fn add(&mut self, pa: u64) {
        assert!(self.len < self.frames.len(), "too many pinned frames");
        self.frames[self.len] = pa;
        self.len += 1;
    }

    /// Whether any pinned frame lies in `[start, end)`.
    fn any_in(&self, start: u64, end: u64) -> Option<u64> {
        self.frames[..self.len].iter().copied().find(|&f| (start..end).contains(&f))
    }
}

/// Marks `pa` as a frame that must never be freed (see [`PINNED`]).
pub fn pin(pa: PhysAddr) {
    PINNED.lock().add(pa.as_u64());
}

#[track_caller]
fn check_not_pinned(start: u64, count: u64) {
    if let Some(f) = PINNED.lock().any_in(start, start + count * FRAME_SIZE) {
        panic!("freeing pinned frame {f:#x} (freeing {count} frame(s) at {start:#x})");
    }
}

/// Physical memory reachable through the boot stub's identity map.
const IDENTITY_LIMIT: u64 = 4 << 30;

/// Hands out zeroed frames from the region list before the bitmap exists.
pub struct EarlyFrames<'a> {
    regions: &'a mut Regions,
    taken: RegionList<64>,
}

impl EarlyFrames<'_> {
    /// A zeroed frame below 4 GiB, addressed through the identity map.
    pub fn alloc_zeroed(&mut self) -> PhysAddr {
        let pa = self
            .regions
            .find_fit(FRAME_SIZE, FRAME_SIZE, IDENTITY_LIMIT)
            .expect("no memory below 4 GiB for early page tables");
        let range = PhysRange::from_base_len(pa, FRAME_SIZE);
        self.regions.remove(range).expect("region list full");
        self.taken.add(range).expect("too many early frames");
        // SAFETY: the frame is usable RAM below 4 GiB, identity-mapped by the boot tables,
        // and was just removed from the free regions, so nothing else uses it.
        unsafe { core::ptr::write_bytes(pa as *mut u8, 0, FRAME_SIZE as usize) };
        PhysAddr::new(pa)
    }
}

/// Builds the allocator over `usable`. `with_early` runs while early frames can be taken
/// and must leave the direct map in place (the bitmap is addressed through it).
pub fn init(usable: &Regions, with_early: impl FnOnce(&mut EarlyFrames<'_>)) {
    let nframes = usable.highest_end() / FRAME_SIZE;
    let words = storage_words(nframes);
    let storage_bytes = (words as u64 * 8).next_multiple_of(FRAME_SIZE);

    let mut remaining = usable.clone();
    let storage_pa = remaining
        .find_fit(storage_bytes, FRAME_SIZE, IDENTITY_LIMIT)
        .expect("no room below 4 GiB for the frame bitmap");
    let storage_range = PhysRange::from_base_len(storage_pa, storage_bytes);
    remaining.remove(storage_range).expect("region list full");

    let mut early = EarlyFrames { regions: &mut remaining, taken: RegionList::new() };
    with_early(&mut early);
    let taken = early.taken;

    // SAFETY: the storage range is usable RAM removed from every free list above, reached
    // through the direct map that `with_early` installed; it is handed to the bitmap for
    // the rest of the hypervisor's life and never addressed any other way.
    let storage =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(PhysAddr::new(storage_pa)).as_mut_ptr::<u64>(), words) };
    let mut bitmap = FrameBitmap::new(storage, nframes);
    for range in usable.iter() {
        bitmap.add_free(*range);
    }
    bitmap.reserve(storage_range);
    for range in taken.iter() {
        bitmap.reserve(*range);
    }
    *FRAMES.lock() = Some(bitmap);
}

fn with<R>(f: impl FnOnce(&mut FrameBitmap<'static>) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| {
        f(FRAMES.lock().as_mut().expect("frame allocator used before mm::init"))
    })
}

/// One frame, contents unspecified.
pub fn alloc() -> Option<PhysAddr> {
    with(|b| b.alloc()).map(PhysAddr::new)
}

/// One zeroed frame.
pub fn alloc_zeroed() -> Option<PhysAddr> {
    let pa = alloc()?;
    // SAFETY: the frame was just allocated, so this CPU owns it; the direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa).as_mut_ptr::<u8>(), 0, FRAME_SIZE as usize) };
    Some(pa)
}

/// `count` physically contiguous frames aligned to `align_frames` frames.
pub fn alloc_contiguous(count: u64, align_frames: u64) -> Option<PhysAddr> {
    with(|b| b.alloc_contiguous(count, align_frames)).map(PhysAddr::new)
}

/// Returns a frame. Freeing a frame that is not allocated is a hypervisor bug.
#[track_caller]
pub fn free(pa: PhysAddr) {
    check_not_pinned(pa.as_u64(), 1);
    if let Err(e) = with(|b| b.free(pa.as_u64())) {
        panic!("freeing frame {:#x}: {e}", pa.as_u64());
    }
}

/// Frame numbers the allocator can hand out lie below this.
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn tracked_frames() -> u64 {
    with(|b| b.nframes())
}

/// Returns a run from [`alloc_contiguous`].
#[track_caller]
pub fn free_contiguous(pa: PhysAddr, count: u64) {
    check_not_pinned(pa.as_u64(), count);
    if let Err(e) = with(|b| b.free_contiguous(pa.as_u64(), count)) {
        panic!("freeing {count} frames at {:#x}: {e}", pa.as_u64());
    }
}

pub fn stats() -> FrameStats {
    with(|b| b.stats())
}

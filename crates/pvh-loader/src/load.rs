//! Copying a validated image into guest memory, at its own physical addresses ([`load`]) or
//! displaced to another base ([`load_at`], for relocatable kernels), and choosing such a base
//! ([`placement`]).

use crate::bytes::align_up_u64;
use crate::elf::KernelImage;
use crate::error::{BaseProblem, LoadError};
use crate::GuestMemory;

/// A kernel placed in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The physical entry point (`EIP` in the PVH entry state), displaced with the image.
    pub entry: u32,
    /// The physical range `[start, end)` the kernel's segments span (see
    /// [`KernelImage::extent`]), displaced with the image; place the start info and modules
    /// outside it.
    pub extent: (u64, u64),
}

/// Loads `image` into `mem`: each segment's file bytes at its physical address, then zeros up
/// to its `p_memsz`. Bytes of guest memory outside the segments are not touched (the hypervisor
/// scrubs pages before a domain gets them, DESIGN.md §3).
///
/// Every segment is checked to fit in `[0, mem.size())` before anything is written
/// ([`LoadError::SegmentOutsideGuest`]); if `mem` itself then refuses a write the error is
/// [`LoadError::Guest`] and the segments may be partly written. Segment overlap is ruled out by
/// [`parse`](crate::parse), so the order of writes does not matter.
///
/// This is [`load_at`] with the image's own base, `image.extent().0`, which every image accepts.
pub fn load<M: GuestMemory + ?Sized>(image: &KernelImage<'_>, mem: &mut M) -> Result<LoadedKernel, LoadError> {
    copy_displaced(image, mem, image.extent().0)
}

/// Loads `image` into `mem` moved so that its lowest physical address (`image.extent().0`)
/// lands at `base`: every segment keeps its distance from the base, and the returned entry
/// point and extent are moved by the same offset (what Xen's `pvh_load_kernel` does for a
/// relocated dom0 kernel). Otherwise it behaves as [`load`].
///
/// `base` must be the image's own base, or else the image must have a
/// [`Relocation`](crate::Relocation) (a PHYS32_RELOC note) that accepts it: a multiple of
/// `align`, at least `min`, and the image's last byte at most `max`. A refused base is
/// [`LoadError::BadLoadBase`] and nothing is written. The image's own base is accepted even
/// when the note's constraints exclude it, as Xen loads a kernel at its link address whenever
/// that address is free.
pub fn load_at<M: GuestMemory + ?Sized>(
    image: &KernelImage<'_>,
    mem: &mut M,
    base: u64,
) -> Result<LoadedKernel, LoadError> {
    check_base(image, base).map_err(|problem| LoadError::BadLoadBase { base, problem })?;
    copy_displaced(image, mem, base)
}

/// The lowest base inside the window `[window_start, window_end)` at which [`load_at`] can put
/// the whole image, or `None` if there is none.
///
/// For a relocatable image: the lowest multiple of `align` that is at least `window_start` and
/// `min`, provided the image then ends at or below `window_end` and its last byte is at most
/// `max`. For an image without a relocation note: its own base, if the image lies inside the
/// window. The window typically is a free, identity-mapped run of host memory for dom0.
///
/// Xen itself, when a kernel's link address is not free, picks the *highest* suitable address
/// in the highest fitting RAM region instead; the lowest is chosen here so that the rest of the
/// window stays one contiguous run above the kernel (for the start info and modules).
pub fn placement(image: &KernelImage<'_>, window_start: u64, window_end: u64) -> Option<u64> {
    let (start, end) = image.extent();
    let Some(reloc) = image.relocation() else {
        return (start >= window_start && end <= window_end).then_some(start);
    };
    let size = end.checked_sub(start)?;
    let base = align_up_u64(window_start.max(reloc.min), reloc.align)?;
    let new_end = base.checked_add(size)?;
    // The last byte `new_end - 1` must be at most `max`: `new_end <= max + 1`.
    let limit = window_end.min(reloc.max.saturating_add(1));
    (new_end <= limit).then_some(base)
}

/// Whether `image` may be loaded with its lowest address at `base`.
fn check_base(image: &KernelImage<'_>, base: u64) -> Result<(), BaseProblem> {
    let (start, end) = image.extent();
    if base == start {
        return Ok(());
    }
    let reloc = image.relocation().ok_or(BaseProblem::NotRelocatable)?;
    if base.checked_rem(reloc.align) != Some(0) {
        return Err(BaseProblem::Misaligned { align: reloc.align });
    }
    if base < reloc.min {
        return Err(BaseProblem::BelowMinimum { min: reloc.min });
    }
    let size = end.checked_sub(start).ok_or(BaseProblem::Overflow)?;
    let new_end = base.checked_add(size).ok_or(BaseProblem::Overflow)?;
    // `size > 0` (segments are non-empty), so the last byte is `new_end - 1`.
    if new_end.checked_sub(1).is_some_and(|last| last > reloc.max) {
        return Err(BaseProblem::AboveMaximum { end: new_end, max: reloc.max });
    }
    Ok(())
}

/// The one copy loop: writes every segment of `image` moved by `base - image.extent().0`.
fn copy_displaced<M: GuestMemory + ?Sized>(
    image: &KernelImage<'_>,
    mem: &mut M,
    base: u64,
) -> Result<LoadedKernel, LoadError> {
    let (start, end) = image.extent();
    // Every address the image uses is at or above `start`, so the subtraction cannot fail.
    let moved = |paddr: u64| paddr.checked_sub(start).and_then(|off| base.checked_add(off));
    let overflow = LoadError::BadLoadBase { base, problem: BaseProblem::Overflow };

    let guest_size = mem.size();
    for s in image.segments() {
        let paddr = moved(s.paddr).ok_or(overflow)?;
        let end = paddr.checked_add(s.memsz).ok_or(LoadError::AddressOverflow { index: s.index })?;
        if end > guest_size {
            return Err(LoadError::SegmentOutsideGuest { index: s.index, paddr, end, guest_size });
        }
    }
    let entry = moved(u64::from(image.entry())).and_then(|e| u32::try_from(e).ok()).ok_or(overflow)?;
    let extent = (base, moved(end).ok_or(overflow)?);

    for s in image.segments() {
        let paddr = moved(s.paddr).ok_or(overflow)?;
        if !s.data.is_empty() {
            mem.write(paddr, s.data)?;
        }
        let filesz = s.filesz();
        // `filesz <= memsz` and `paddr + memsz` fit (checked by `parse` and above).
        let bss = s.memsz.checked_sub(filesz).ok_or(LoadError::SegmentMemSmallerThanFile { index: s.index })?;
        if bss != 0 {
            let bss_start = paddr.checked_add(filesz).ok_or(LoadError::AddressOverflow { index: s.index })?;
            mem.fill(bss_start, bss, 0)?;
        }
    }
    Ok(LoadedKernel { entry, extent })
}

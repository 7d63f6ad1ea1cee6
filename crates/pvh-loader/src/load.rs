//! Copying a validated image into guest memory.

use crate::elf::KernelImage;
use crate::error::LoadError;
use crate::GuestMemory;

/// A kernel placed in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedKernel {
    /// The physical entry point (`EIP` in the PVH entry state).
    pub entry: u32,
    /// The physical range `[start, end)` the kernel's segments span (see
    /// [`KernelImage::extent`]); place the start info and modules outside it.
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
pub fn load<M: GuestMemory + ?Sized>(image: &KernelImage<'_>, mem: &mut M) -> Result<LoadedKernel, LoadError> {
    let guest_size = mem.size();
    for s in image.segments() {
        let end = s.paddr.checked_add(s.memsz).ok_or(LoadError::AddressOverflow { index: s.index })?;
        if end > guest_size {
            return Err(LoadError::SegmentOutsideGuest { index: s.index, paddr: s.paddr, end, guest_size });
        }
    }
    for s in image.segments() {
        if !s.data.is_empty() {
            mem.write(s.paddr, s.data)?;
        }
        let filesz = s.filesz();
        // `filesz <= memsz` and `paddr + memsz` fit (checked by `parse` and above).
        let bss = s.memsz.checked_sub(filesz).ok_or(LoadError::SegmentMemSmallerThanFile { index: s.index })?;
        if bss != 0 {
            let bss_start = s.paddr.checked_add(filesz).ok_or(LoadError::AddressOverflow { index: s.index })?;
            mem.fill(bss_start, bss, 0)?;
        }
    }
    Ok(LoadedKernel { entry: image.entry(), extent: image.extent() })
}

//! Physical memory ownership for Ferrovisor.
//!
//! This crate owns the answer to "which physical frames belong to the
//! hypervisor, and which of those are in use". It is split into two stages
//! that mirror how memory is discovered at boot:
//!
//! 1. [`RegionList`] turns the firmware memory map into a set of *usable*
//!    ranges: RAM ranges minus everything that is already spoken for (the low
//!    1 MiB, the hypervisor image, boot modules, boot-info structures). It
//!    needs no heap, so it can run before any allocator exists.
//! 2. [`FrameBitmap`] takes those ranges and hands out individual
//!    [`FRAME_SIZE`] frames (or aligned contiguous runs of them), tracking
//!    every frame as unmanaged, managed-and-free, or managed-and-used.
//!
//! The crate is `no_std`, allocation-free and contains no `unsafe`; callers
//! supply the bitmap storage and do their own locking.
//!
//! ```
//! use frame_alloc::{FrameBitmap, PhysRange, RegionList, FRAME_SIZE};
//!
//! // Firmware says: RAM at [0, 640 KiB) and [1 MiB, 64 MiB).
//! let mut usable: RegionList<32> = RegionList::new();
//! usable.add(PhysRange::new(0, 0xA_0000)).unwrap();
//! usable.add(PhysRange::new(0x10_0000, 0x400_0000)).unwrap();
//! // Carve out the low 1 MiB and the hypervisor image.
//! usable.remove(PhysRange::new(0, 0x10_0000)).unwrap();
//! usable.remove(PhysRange::new(0x20_0000, 0x40_0000)).unwrap();
//! usable.align_to_frames();
//!
//! let nframes = usable.highest_end() / FRAME_SIZE;
//! let mut storage = vec![0u64; frame_alloc::storage_words(nframes)];
//! let mut frames = FrameBitmap::new(&mut storage, nframes);
//! for r in usable.iter() {
//!     frames.add_free(*r);
//! }
//! let a = frames.alloc().unwrap();
//! assert!(a >= 0x10_0000 && a % FRAME_SIZE == 0);
//! frames.free(a).unwrap();
//! ```

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bitmap;
mod range;
mod region;
#[cfg(test)]
mod test_util;

pub use bitmap::{storage_words, FrameBitmap, FrameStats, FreeError, MAX_FRAMES};
pub use range::{PhysRange, FRAME_SIZE};
pub use region::{CapacityError, RegionList};

//! Guest-physical memory: a domain's RAM, the host frames behind it, and the nested page
//! table (NPT or EPT, in the backend's format) that maps one onto the other.
//!
//! RAM is backed by 2 MiB runs where the allocator has them (mapped with 2 MiB nested
//! pages) and by single frames otherwise. Every frame is zeroed before the guest gets it,
//! and every frame, data or table, is returned when the `GuestRam` is dropped.

use super::{frames, phys_to_virt};
use crate::virt::NestedFormat;
use alloc::boxed::Box;
use alloc::vec::Vec;
use frame_alloc::FRAME_SIZE;
use x86_64::PhysAddr;

const LARGE: u64 = 2 << 20;
const FRAMES_PER_LARGE: usize = 512;

/// The host memory behind one 2 MiB stretch of guest-physical space.
enum Chunk {
    Large(PhysAddr),
    Small(Box<[PhysAddr; FRAMES_PER_LARGE]>),
}

/// The guest asked for memory the host does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfMemory;

/// A guest-physical range outside the domain's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadGpa {
    pub gpa: u64,
    pub len: u64,
}

/// A four-level nested page table; owns its table frames.
struct NestedTable {
    root: PhysAddr,
    tables: Vec<PhysAddr>,
    format: &'static dyn NestedFormat,
}

impl NestedTable {
    fn new(format: &'static dyn NestedFormat) -> Result<Self, OutOfMemory> {
        let root = frames::alloc_zeroed().ok_or(OutOfMemory)?;
        let mut tables = Vec::new();
        tables.try_reserve(64).map_err(|_| OutOfMemory)?;
        tables.push(root);
        Ok(NestedTable { root, tables, format })
    }

    fn entries(table: PhysAddr) -> &'static mut [u64; 512] {
        // SAFETY: table frames are allocated by and owned by this NestedTable, zeroed at
        // allocation, and only edited while the domain is being built (no vCPU runs yet).
        unsafe { &mut *phys_to_virt(table).as_mut_ptr::<[u64; 512]>() }
    }

    /// The table at `level` (1 = page table) covering `gpa`, creating missing levels.
    fn table_for(&mut self, gpa: u64, level: u32) -> Result<PhysAddr, OutOfMemory> {
        let mut table = self.root;
        for current in (level + 1..=4).rev() {
            let index = ((gpa >> (12 + 9 * (current - 1))) & 0x1ff) as usize;
            let entry = Self::entries(table)[index];
            table = if entry & 1 != 0 {
                PhysAddr::new(entry & 0x000f_ffff_ffff_f000)
            } else {
                let next = frames::alloc_zeroed().ok_or(OutOfMemory)?;
                self.tables.try_reserve(1).map_err(|_| {
                    frames::free(next);
                    OutOfMemory
                })?;
                self.tables.push(next);
                Self::entries(table)[index] = self.format.table(next.as_u64());
                next
            };
        }
        Ok(table)
    }

    fn map_large(&mut self, gpa: u64, hpa: PhysAddr) -> Result<(), OutOfMemory> {
        let pd = self.table_for(gpa, 2)?;
        Self::entries(pd)[((gpa >> 21) & 0x1ff) as usize] = self.format.leaf_2m(hpa.as_u64());
        Ok(())
    }

    fn map_small(&mut self, gpa: u64, hpa: PhysAddr) -> Result<(), OutOfMemory> {
        let pt = self.table_for(gpa, 1)?;
        Self::entries(pt)[((gpa >> 12) & 0x1ff) as usize] = self.format.leaf_4k(hpa.as_u64());
        Ok(())
    }
}

impl Drop for NestedTable {
    fn drop(&mut self) {
        for &table in &self.tables {
            frames::free(table);
        }
    }
}

/// A domain's RAM: guest-physical `[0, size)`.
pub struct GuestRam {
    size: u64,
    chunks: Vec<Chunk>,
    nested: NestedTable,
}

fn zero_frames(start: PhysAddr, count: usize) {
    // SAFETY: the frames were just allocated for this domain and nothing else refers to them.
    unsafe { core::ptr::write_bytes(phys_to_virt(start).as_mut_ptr::<u8>(), 0, count * FRAME_SIZE as usize) };
}

impl GuestRam {
    /// Allocates, scrubs and maps `size` bytes (a multiple of 2 MiB) of guest RAM. On
    /// failure everything allocated so far is returned.
    pub fn new(size: u64, format: &'static dyn NestedFormat) -> Result<Self, OutOfMemory> {
        assert!(size.is_multiple_of(LARGE) && size > 0, "guest RAM size {size:#x} is not a positive multiple of 2 MiB");
        let count = (size / LARGE) as usize;
        let mut ram = GuestRam { size, chunks: Vec::new(), nested: NestedTable::new(format)? };
        ram.chunks.try_reserve_exact(count).map_err(|_| OutOfMemory)?;
        for index in 0..count {
            let gpa = index as u64 * LARGE;
            if let Some(run) = frames::alloc_contiguous(FRAMES_PER_LARGE as u64, FRAMES_PER_LARGE as u64) {
                ram.chunks.push(Chunk::Large(run));
                zero_frames(run, FRAMES_PER_LARGE);
                ram.nested.map_large(gpa, run)?;
            } else {
                let mut frames_of_chunk = Box::new([PhysAddr::zero(); FRAMES_PER_LARGE]);
                let mut filled = 0;
                while filled < FRAMES_PER_LARGE {
                    let Some(frame) = frames::alloc() else {
                        frames_of_chunk[..filled].iter().for_each(|&f| frames::free(f));
                        return Err(OutOfMemory);
                    };
                    zero_frames(frame, 1);
                    frames_of_chunk[filled] = frame;
                    filled += 1;
                }
                ram.chunks.push(Chunk::Small(frames_of_chunk));
                if let Some(Chunk::Small(frames_of_chunk)) = ram.chunks.last() {
                    for (i, &frame) in frames_of_chunk.iter().enumerate() {
                        ram.nested.map_small(gpa + i as u64 * FRAME_SIZE, frame)?;
                    }
                }
            }
        }
        Ok(ram)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The nested page table's root, for the backend's nested CR3 / EPTP.
    pub fn nested_root(&self) -> PhysAddr {
        self.nested.root
    }

    /// The host address of guest-physical `gpa`.
    pub fn translate(&self, gpa: u64) -> Option<PhysAddr> {
        if gpa >= self.size {
            return None;
        }
        let offset = gpa % LARGE;
        Some(match &self.chunks[(gpa / LARGE) as usize] {
            Chunk::Large(base) => *base + offset,
            Chunk::Small(f) => f[(offset / FRAME_SIZE) as usize] + offset % FRAME_SIZE,
        })
    }

    /// Calls `f` with host-virtual slices covering guest-physical `[gpa, gpa + len)`,
    /// split wherever the backing memory is not contiguous.
    fn for_each_piece(&self, gpa: u64, len: u64, mut f: impl FnMut(*mut u8, usize, usize)) -> Result<(), BadGpa> {
        let end = gpa.checked_add(len).filter(|&e| e <= self.size).ok_or(BadGpa { gpa, len })?;
        let mut at = gpa;
        let mut done = 0usize;
        while at < end {
            let in_frame = (FRAME_SIZE - at % FRAME_SIZE).min(end - at);
            let host = self.translate(at).ok_or(BadGpa { gpa, len })?;
            f(phys_to_virt(host).as_mut_ptr::<u8>(), done, in_frame as usize);
            at += in_frame;
            done += in_frame as usize;
        }
        Ok(())
    }

    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), BadGpa> {
        self.for_each_piece(gpa, buf.len() as u64, |host, done, n| {
            // SAFETY: `host..host+n` lies inside one frame of this domain's RAM, mapped by
            // the direct map; `buf[done..done+n]` is in bounds by construction.
            unsafe { core::ptr::copy_nonoverlapping(host, buf[done..done + n].as_mut_ptr(), n) }
        })
    }

    pub fn write(&self, gpa: u64, bytes: &[u8]) -> Result<(), BadGpa> {
        self.for_each_piece(gpa, bytes.len() as u64, |host, done, n| {
            // SAFETY: as in `read`; guest RAM may be written by the hypervisor on the
            // guest's behalf (the guest sees it like a DMA write).
            unsafe { core::ptr::copy_nonoverlapping(bytes[done..done + n].as_ptr(), host, n) }
        })
    }

    pub fn fill(&self, gpa: u64, len: u64, byte: u8) -> Result<(), BadGpa> {
        self.for_each_piece(gpa, len, |host, _, n| {
            // SAFETY: as in `write`.
            unsafe { core::ptr::write_bytes(host, byte, n) }
        })
    }
}

impl Drop for GuestRam {
    fn drop(&mut self) {
        for chunk in &self.chunks {
            match chunk {
                Chunk::Large(run) => frames::free_contiguous(*run, FRAMES_PER_LARGE as u64),
                Chunk::Small(f) => f.iter().for_each(|&frame| frames::free(frame)),
            }
        }
    }
}

/// Lets the PVH loader write a kernel and its boot information into guest RAM.
impl pvh_loader::GuestMemory for GuestRam {
    fn size(&self) -> u64 {
        self.size
    }

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), pvh_loader::GuestMemoryError> {
        GuestRam::write(self, gpa, bytes).map_err(|e| pvh_loader::GuestMemoryError { gpa: e.gpa, len: e.len })
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), pvh_loader::GuestMemoryError> {
        GuestRam::fill(self, gpa, len, byte).map_err(|e| pvh_loader::GuestMemoryError { gpa: e.gpa, len: e.len })
    }
}

//! Guest-physical memory: a domain's RAM, the host frames behind it, and the nested page
//! table (NPT or EPT, in the backend's format) that maps one onto the other.
//!
//! RAM is backed by 2 MiB runs where the allocator has them (mapped with 2 MiB nested
//! pages where the format has them, 4 KiB ones otherwise) and by single frames otherwise. Every frame is zeroed before the guest gets it,
//! and every frame, data or table, is returned when the `GuestRam` is dropped.
//!
//! Pages that are not RAM (shared_info, grant-table frames, console and xenstore rings)
//! can be placed at any guest frame number on top of RAM or beyond it: the overlay. The
//! RAM page an overlay page hides stays owned by the domain (it comes back on destroy);
//! the overlay page belongs to whoever placed it. Every change to the nested tables bumps
//! a generation number so vCPUs flush stale translations before they next run.

use super::{frames, phys_to_virt};
use crate::virt::NestedFormat;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use frame_alloc::FRAME_SIZE;
use spin::{Mutex, RwLock};
use x86_64::PhysAddr;

const LARGE: u64 = 2 << 20;
const PAGE_SIZE_BIT: u64 = 1 << 7;
const ENTRY_ADDRESS: u64 = 0x000f_ffff_ffff_f000;
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
        // allocation, and edited only under the table's lock. The CPU may walk them at any
        // time; every entry is replaced by one aligned 64-bit store (see `publish`).
        unsafe { &mut *phys_to_virt(table).as_mut_ptr::<[u64; 512]>() }
    }

    /// Stores a live entry so a concurrent hardware walk sees the old or the new value.
    fn publish(entry: &mut u64, value: u64) {
        core::sync::atomic::fence(Ordering::Release);
        // SAFETY: `entry` is a valid, aligned u64 in a table frame we own.
        unsafe { core::ptr::write_volatile(entry, value) };
    }

    /// The table at `level` (1 = page table) covering `gpa`, creating missing levels.
    fn table_for(&mut self, gpa: u64, level: u32) -> Result<PhysAddr, OutOfMemory> {
        let mut table = self.root;
        for current in (level + 1..=4).rev() {
            let index = ((gpa >> (12 + 9 * (current - 1))) & 0x1ff) as usize;
            let entry = Self::entries(table)[index];
            table = if entry & 1 != 0 && current == 2 && entry & PAGE_SIZE_BIT != 0 {
                self.split_large(table, index, entry)?
            } else if entry & 1 != 0 {
                PhysAddr::new(entry & ENTRY_ADDRESS)
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

    /// Replaces the 2 MiB leaf at `pd[index]` by a page table of 512 equivalent 4 KiB
    /// leaves; returns the new table.
    fn split_large(&mut self, pd: PhysAddr, index: usize, entry: u64) -> Result<PhysAddr, OutOfMemory> {
        let pt = frames::alloc_zeroed().ok_or(OutOfMemory)?;
        self.tables.try_reserve(1).map_err(|_| {
            frames::free(pt);
            OutOfMemory
        })?;
        self.tables.push(pt);
        let base = entry & ENTRY_ADDRESS & !(LARGE - 1);
        for (i, e) in Self::entries(pt).iter_mut().enumerate() {
            *e = self.format.leaf_4k(base + i as u64 * FRAME_SIZE);
        }
        Self::publish(&mut Self::entries(pd)[index], self.format.table(pt.as_u64()));
        Ok(pt)
    }

    /// Maps a 2 MiB run: one 2 MiB leaf, or 512 4 KiB leaves where the format has no
    /// 2 MiB pages (EPT on some Intel CPUs).
    fn map_large(&mut self, gpa: u64, hpa: PhysAddr) -> Result<(), OutOfMemory> {
        if !self.format.supports_2m() {
            for i in 0..FRAMES_PER_LARGE as u64 {
                self.map_small(gpa + i * FRAME_SIZE, hpa + i * FRAME_SIZE)?;
            }
            return Ok(());
        }
        let pd = self.table_for(gpa, 2)?;
        Self::entries(pd)[((gpa >> 21) & 0x1ff) as usize] = self.format.leaf_2m(hpa.as_u64());
        Ok(())
    }

    fn map_small(&mut self, gpa: u64, hpa: PhysAddr) -> Result<(), OutOfMemory> {
        self.set_small(gpa, self.format.leaf_4k(hpa.as_u64()))
    }

    fn set_small(&mut self, gpa: u64, entry: u64) -> Result<(), OutOfMemory> {
        let pt = self.table_for(gpa, 1)?;
        Self::publish(&mut Self::entries(pt)[((gpa >> 12) & 0x1ff) as usize], entry);
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

/// Guest frame numbers above this are refused for overlay pages (48-bit guest-physical).
const MAX_GFN: u64 = (1 << 36) - 1;

/// A domain's RAM: guest-physical `[base, base + size)` (base 0 for domUs; dom0's RAM is
/// identity-mapped, so its base is where its host frames are), plus overlay pages.
pub struct GuestRam {
    base: u64,
    size: u64,
    chunks: Vec<Chunk>,
    nested: Mutex<NestedTable>,
    overlay: RwLock<BTreeMap<u64, PhysAddr>>,
    generation: AtomicU64,
    /// RAM frames the guest gave back (XENMEM_decrease_reservation): unmapped for it.
    ballooned: Mutex<BTreeSet<u64>>,
    ballooned_count: AtomicU64,
    /// Pages the guest populated beyond its RAM, or reserved without a place yet.
    extra: Mutex<Vec<PhysAddr>>,
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
        let mut ram = GuestRam {
            base: 0,
            size,
            chunks: Vec::new(),
            nested: Mutex::new(NestedTable::new(format)?),
            overlay: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            ballooned: Mutex::new(BTreeSet::new()),
            ballooned_count: AtomicU64::new(0),
            extra: Mutex::new(Vec::new()),
        };
        let nested = ram.nested.get_mut();
        ram.chunks.try_reserve_exact(count).map_err(|_| OutOfMemory)?;
        for index in 0..count {
            let gpa = index as u64 * LARGE;
            if let Some(run) = frames::alloc_contiguous(FRAMES_PER_LARGE as u64, FRAMES_PER_LARGE as u64) {
                ram.chunks.push(Chunk::Large(run));
                zero_frames(run, FRAMES_PER_LARGE);
                nested.map_large(gpa, run)?;
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
                        nested.map_small(gpa + i as u64 * FRAME_SIZE, frame)?;
                    }
                }
            }
        }
        Ok(ram)
    }

    /// Allocates `size` bytes (a multiple of 2 MiB) of contiguous, 2 MiB-aligned host RAM
    /// below `limit`, scrubs it and maps it at the same guest-physical addresses (dom0:
    /// devices it drives can DMA to what it calls physical addresses).
    pub fn new_identity(size: u64, limit: u64, format: &'static dyn NestedFormat) -> Result<Self, OutOfMemory> {
        assert!(size.is_multiple_of(LARGE) && size > 0, "guest RAM size {size:#x} is not a positive multiple of 2 MiB");
        let count = size / LARGE;
        let run =
            frames::alloc_contiguous(count * FRAMES_PER_LARGE as u64, FRAMES_PER_LARGE as u64).ok_or(OutOfMemory)?;
        if run.as_u64() + size > limit {
            frames::free_contiguous(run, count * FRAMES_PER_LARGE as u64);
            return Err(OutOfMemory);
        }
        let mut ram = GuestRam {
            base: run.as_u64(),
            size,
            chunks: Vec::new(),
            nested: Mutex::new(NestedTable::new(format).inspect_err(|_| {
                frames::free_contiguous(run, count * FRAMES_PER_LARGE as u64);
            })?),
            overlay: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
            ballooned: Mutex::new(BTreeSet::new()),
            ballooned_count: AtomicU64::new(0),
            extra: Mutex::new(Vec::new()),
        };
        // Owned as 2 MiB chunks from here on, so a failure below frees everything.
        ram.chunks.extend((0..count).map(|i| Chunk::Large(run + i * LARGE)));
        let nested = ram.nested.get_mut();
        for i in 0..count {
            zero_frames(run + i * LARGE, FRAMES_PER_LARGE);
            nested.map_large(run.as_u64() + i * LARGE, run + i * LARGE)?;
        }
        Ok(ram)
    }

    /// Bytes of RAM.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Guest-physical address where RAM starts.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Guest-physical address just past RAM.
    pub fn end(&self) -> u64 {
        self.base + self.size
    }

    /// Whether `gpa` is in RAM.
    fn in_ram(&self, gpa: u64) -> bool {
        (self.base..self.end()).contains(&gpa)
    }

    /// The nested page table's root, for the backend's nested CR3 / EPTP.
    pub fn nested_root(&self) -> PhysAddr {
        self.nested.lock().root
    }

    /// Bumped whenever a translation changes; vCPUs flush their TLB when it moved.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Places the host frame `hpa` at guest frame `gfn` (over RAM or beyond it). The caller
    /// keeps ownership of `hpa` and must keep it alive as long as this `GuestRam`.
    pub fn map_overlay(&self, gfn: u64, hpa: PhysAddr) -> Result<(), OutOfMemory> {
        self.map_overlay_with(gfn, hpa, false)
    }

    /// Like [`map_overlay`](Self::map_overlay), optionally read-only for the guest.
    pub fn map_overlay_with(&self, gfn: u64, hpa: PhysAddr, readonly: bool) -> Result<(), OutOfMemory> {
        if gfn > MAX_GFN {
            return Err(OutOfMemory);
        }
        let mut nested = self.nested.lock();
        let entry =
            if readonly { nested.format.leaf_4k_readonly(hpa.as_u64()) } else { nested.format.leaf_4k(hpa.as_u64()) };
        nested.set_small(gfn * FRAME_SIZE, entry)?;
        self.overlay.write().insert(gfn, hpa);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Removes the overlay page at `gfn`: the RAM page it hid (if any) shows again.
    pub fn unmap_overlay(&self, gfn: u64) {
        if self.overlay.write().remove(&gfn).is_none() {
            return;
        }
        let ram_page = self.translate(gfn * FRAME_SIZE);
        let mut nested = self.nested.lock();
        let entry = ram_page.map_or(0, |page| nested.format.leaf_4k(page.as_u64()));
        // The table exists: the overlay mapping created it.
        let _ = nested.set_small(gfn * FRAME_SIZE, entry);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The overlay page at `gfn`, if any.
    pub fn overlay_at(&self, gfn: u64) -> Option<PhysAddr> {
        self.overlay.read().get(&gfn).copied()
    }

    /// The host address of guest-physical `gpa`.
    pub fn translate(&self, gpa: u64) -> Option<PhysAddr> {
        if let Some(page) = self.overlay_at(gpa / FRAME_SIZE) {
            return Some(page + gpa % FRAME_SIZE);
        }
        if !self.in_ram(gpa) {
            return None;
        }
        if self.ballooned_count.load(Ordering::Acquire) != 0 && self.ballooned.lock().contains(&(gpa / FRAME_SIZE)) {
            return None;
        }
        self.ram_page(gpa)
    }

    /// The domain's own RAM frame at `gpa`: not ballooned out and not hidden by an overlay
    /// (which may be another domain's page). This is what may be granted to others or hold
    /// a vcpu_info: frames the domain keeps until it is destroyed.
    pub fn owned_page(&self, gpa: u64) -> Option<PhysAddr> {
        if self.overlay_at(gpa / FRAME_SIZE).is_some() {
            return None;
        }
        self.translate(gpa)
    }

    /// The RAM frame behind `gpa`, ignoring overlays and ballooning.
    fn ram_page(&self, gpa: u64) -> Option<PhysAddr> {
        if !self.in_ram(gpa) {
            return None;
        }
        let offset = (gpa - self.base) % LARGE;
        Some(match &self.chunks[((gpa - self.base) / LARGE) as usize] {
            Chunk::Large(base) => *base + offset,
            Chunk::Small(f) => f[(offset / FRAME_SIZE) as usize] + offset % FRAME_SIZE,
        })
    }

    /// Calls `f` with host-virtual slices covering guest-physical `[gpa, gpa + len)`,
    /// split wherever the backing memory is not contiguous.
    fn for_each_piece(&self, gpa: u64, len: u64, mut f: impl FnMut(*mut u8, usize, usize)) -> Result<(), BadGpa> {
        let end = gpa.checked_add(len).ok_or(BadGpa { gpa, len })?;
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

    /// (pages the guest holds, most it may hold), as `XENMEM_current/maximum_reservation`.
    pub fn reservation(&self) -> (u64, u64) {
        let max = self.size / FRAME_SIZE;
        (max - self.ballooned_count.load(Ordering::Acquire) + self.extra.lock().len() as u64, max)
    }

    /// The guest gives RAM page `gfn` back: it is unmapped (the frame stays with the
    /// domain, scrubbed before it is handed out again). False if `gfn` is not a RAM page it has.
    pub fn balloon_out(&self, gfn: u64) -> bool {
        if !self.in_ram(gfn.saturating_mul(FRAME_SIZE)) || self.overlay_at(gfn).is_some() {
            return false;
        }
        if !self.ballooned.lock().insert(gfn) {
            return false;
        }
        self.ballooned_count.fetch_add(1, Ordering::AcqRel);
        let _ = self.nested.lock().set_small(gfn * FRAME_SIZE, 0);
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// The guest asks for memory at `gfn` (XENMEM_populate_physmap): a scrubbed page, if
    /// its reservation allows one more.
    pub fn balloon_in(&self, gfn: u64) -> bool {
        if self.in_ram(gfn.saturating_mul(FRAME_SIZE)) && self.overlay_at(gfn).is_none() {
            let was_ballooned = self.ballooned.lock().remove(&gfn);
            let Some(page) = self.ram_page(gfn * FRAME_SIZE) else {
                return false;
            };
            zero_frames(page, 1);
            if was_ballooned {
                self.ballooned_count.fetch_sub(1, Ordering::AcqRel);
                let mut nested = self.nested.lock();
                let entry = nested.format.leaf_4k(page.as_u64());
                if nested.set_small(gfn * FRAME_SIZE, entry).is_err() {
                    return false;
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
            return true;
        }
        let (current, max) = self.reservation();
        if current >= max || self.overlay_at(gfn).is_some() {
            return false;
        }
        let Some(page) = frames::alloc_zeroed() else {
            return false;
        };
        if self.map_overlay(gfn, page).is_err() {
            frames::free(page);
            return false;
        }
        self.extra.lock().push(page);
        true
    }

    /// `XENMEM_increase_reservation` for a translated guest: `pages` more pages charged
    /// to the domain, not placed anywhere yet.
    pub fn reserve_pages(&self, pages: u64) -> bool {
        let (current, max) = self.reservation();
        if current + pages > max {
            return false;
        }
        let mut extra = self.extra.lock();
        for _ in 0..pages {
            match frames::alloc_zeroed() {
                Some(page) => extra.push(page),
                None => return false,
            }
        }
        true
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
        for &page in self.extra.get_mut().iter() {
            frames::free(page);
        }
        for chunk in &self.chunks {
            match chunk {
                Chunk::Large(run) => frames::free_contiguous(*run, FRAMES_PER_LARGE as u64),
                Chunk::Small(f) => f.iter().for_each(|&frame| frames::free(frame)),
            }
        }
    }
}

/// Lets the PVH loader write a kernel and its boot information into guest RAM.
/// Addresses below [`GuestRam::base`] are refused by `write`.
impl pvh_loader::GuestMemory for GuestRam {
    fn size(&self) -> u64 {
        self.end()
    }

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), pvh_loader::GuestMemoryError> {
        GuestRam::write(self, gpa, bytes).map_err(|e| pvh_loader::GuestMemoryError { gpa: e.gpa, len: e.len })
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), pvh_loader::GuestMemoryError> {
        GuestRam::fill(self, gpa, len, byte).map_err(|e| pvh_loader::GuestMemoryError { gpa: e.gpa, len: e.len })
    }
}

//! Other domains' pages in our physical space: a window of guest frames above our RAM
//! where the hypervisor places a domain's frames on request (`XENMEM_add_to_physmap_batch`,
//! `XENMAPSPACE_gmfn_foreign`). Because our RAM and everything below 4 GiB is identity-
//! mapped, a page mapped at frame `f` is readable at address `f * 4096`.
//!
//! [`Window`] hands out frame ranges; [`DomainMemory`] is a domain's RAM seen through a
//! sliding 2 MiB part of the window, for the PVH loader to write a kernel into.

use crate::arch;
use crate::hypercall::{self, Errno};
use alloc::vec;
use alloc::vec::Vec;
use pvh_loader::{GuestMemory, GuestMemoryError};
use spin::Mutex;
use xen_abi::DomId;

pub const PAGE: u64 = 4096;
/// Frames mapped at a time by [`DomainMemory`].
const CHUNK_PAGES: u64 = 512;

/// Free frames of the window (first, count), first fit.
static FREE: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Gives the window `[first_gfn, first_gfn + pages)` to the allocator. Called once.
pub fn init(first_gfn: u64, pages: u64) {
    assert!((first_gfn + pages) * PAGE <= arch::IDENTITY_LIMIT, "foreign window beyond the identity map");
    FREE.lock().push((first_gfn, pages));
}

/// `pages` consecutive frames of the window.
pub struct Slots {
    pub first: u64,
    pub pages: u64,
}

impl Slots {
    pub fn take(pages: u64) -> Option<Slots> {
        let mut free = FREE.lock();
        let i = free.iter().position(|&(_, n)| n >= pages)?;
        let (first, n) = free[i];
        if n == pages {
            free.remove(i);
        } else {
            free[i] = (first + pages, n - pages);
        }
        Some(Slots { first, pages })
    }

    /// Physical address of the slot's page `i`.
    pub fn address(&self, i: u64) -> u64 {
        (self.first + i) * PAGE
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        let mut free = FREE.lock();
        free.push((self.first, self.pages));
        free.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(free.len());
        for &(first, n) in free.iter() {
            match merged.last_mut() {
                Some(last) if last.0 + last.1 == first => last.1 += n,
                _ => merged.push((first, n)),
            }
        }
        *free = merged;
    }
}

/// Maps `owner`'s frames `gfns` at `slots` (which must be at least as long).
fn map_into(owner: DomId, gfns: &[u64], slots: &Slots) -> Result<(), Errno> {
    let at: Vec<u64> = (0..gfns.len() as u64).map(|i| slots.first + i).collect();
    let mut errs = vec![0i32; gfns.len()];
    hypercall::map_foreign(owner, gfns, &at, &mut errs)?;
    match errs.iter().position(|&e| e != 0) {
        None => Ok(()),
        Some(i) => {
            for &gfn in &at[..i] {
                let _ = hypercall::unmap(gfn);
            }
            // Later entries may have succeeded as well.
            for (&gfn, _) in at.iter().zip(&errs).skip(i + 1).filter(|(_, &e)| e == 0) {
                let _ = hypercall::unmap(gfn);
            }
            Err(Errno(i64::from(-errs[i])))
        }
    }
}

/// Frames of another domain mapped into the window; unmapped on drop.
pub struct Mapping {
    slots: Slots,
}

impl Mapping {
    /// Maps `owner`'s frames `gfns`.
    pub fn new(owner: DomId, gfns: &[u64]) -> Result<Mapping, Errno> {
        let slots = Slots::take(gfns.len() as u64).ok_or(Errno(xen_abi::errno::ENOMEM))?;
        map_into(owner, gfns, &slots)?;
        Ok(Mapping { slots })
    }

    /// Physical address of mapped page `i`.
    pub fn address(&self, i: u64) -> u64 {
        self.slots.address(i)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        for i in 0..self.slots.pages {
            let _ = hypercall::unmap(self.slots.first + i);
        }
    }
}

/// A domain's RAM `[0, size)`, written through a sliding chunk of mapped frames.
pub struct DomainMemory {
    domid: DomId,
    size: u64,
    /// The chunk mapped now (index), and its mapping.
    current: Option<(u64, Mapping)>,
    /// First mapping error, reported by the loader as a refused write.
    pub error: Option<Errno>,
}

impl DomainMemory {
    pub fn new(domid: DomId, size: u64) -> DomainMemory {
        DomainMemory { domid, size, current: None, error: None }
    }

    /// Physical address (in our space) of guest-physical `gpa`, mapping its chunk.
    fn at(&mut self, gpa: u64) -> Result<u64, Errno> {
        let chunk = gpa / (CHUNK_PAGES * PAGE);
        if self.current.as_ref().is_none_or(|(c, _)| *c != chunk) {
            self.current = None; // unmap the previous chunk first: the window is finite
            let first = chunk * CHUNK_PAGES;
            let pages = CHUNK_PAGES.min(self.size / PAGE - first);
            let gfns: Vec<u64> = (first..first + pages).collect();
            self.current = Some((chunk, Mapping::new(self.domid, &gfns)?));
        }
        let (_, mapping) = self.current.as_ref().expect("mapped just above");
        Ok(mapping.address(0) + gpa % (CHUNK_PAGES * PAGE))
    }

    /// Calls `f(our_address, offset_in_request, len)` for each piece of `[gpa, gpa + len)`
    /// that lies in one chunk.
    fn pieces(&mut self, gpa: u64, len: u64, mut f: impl FnMut(u64, usize, usize)) -> Result<(), GuestMemoryError> {
        let refused = GuestMemoryError { gpa, len };
        let end = gpa.checked_add(len).filter(|&e| e <= self.size).ok_or(refused)?;
        let mut cursor = gpa;
        while cursor < end {
            let chunk_end = (cursor / (CHUNK_PAGES * PAGE) + 1) * CHUNK_PAGES * PAGE;
            let n = chunk_end.min(end) - cursor;
            let host = self.at(cursor).map_err(|e| {
                self.error.get_or_insert(e);
                refused
            })?;
            f(host, (cursor - gpa) as usize, n as usize);
            cursor += n;
        }
        Ok(())
    }
}

impl GuestMemory for DomainMemory {
    fn size(&self) -> u64 {
        self.size
    }

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), GuestMemoryError> {
        self.pieces(gpa, bytes.len() as u64, |host, at, n| arch::write_phys(host, &bytes[at..at + n]))
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError> {
        self.pieces(gpa, len, |host, _, n| arch::fill_phys(host, n, byte))
    }
}

/// A single mapped page of another domain (a ring), as a [`pv_rings::SharedPage`].
pub struct SharedRing {
    mapping: Mapping,
}

impl SharedRing {
    pub fn new(owner: DomId, gfn: u64) -> Result<SharedRing, Errno> {
        Ok(SharedRing { mapping: Mapping::new(owner, &[gfn])? })
    }

    fn base(&self) -> u64 {
        self.mapping.address(0)
    }
}

impl pv_rings::SharedPage for SharedRing {
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= PAGE as usize);
        arch::read_u32_volatile(self.base() + offset as u64)
    }

    fn write_u32(&self, offset: usize, v: u32) {
        assert!(offset + 4 <= PAGE as usize);
        arch::write_u32_volatile(self.base() + offset as u64, v)
    }

    fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        assert!(offset + out.len() <= PAGE as usize);
        arch::read_phys(self.base() + offset as u64, out)
    }

    fn write_bytes(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= PAGE as usize);
        arch::write_phys(self.base() + offset as u64, bytes)
    }
}

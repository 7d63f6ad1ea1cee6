//! Grant tables, version 1 (`public/grant_table.h`, Xen's `common/grant_table.c`): a domain
//! publishes entries `{flags, domid, frame}` in its grant frames to let one other domain
//! map or copy one of its pages. Every map and copy is checked against the entry (granted
//! to the caller, access permitted, read-only respected); a mapping pins the entry
//! (GTF_reading/GTF_writing) and keeps the granter's memory alive until it is unmapped,
//! and a domain's destruction releases every mapping it held.

use crate::domain::{self, DomId, Domain};
use crate::hypercall::errno;
use crate::hypercall::{read_struct, write_struct};
use crate::mm::{frames, phys_to_virt};
use crate::vcpu::{Exec, Vcpu};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use frame_alloc::FRAME_SIZE;
use x86_64::PhysAddr;
use xen_abi::grant_table::*;

/// Grant frames a domU may have (xl's default `max_grant_frames` is 64).
pub const DEFAULT_MAX_FRAMES: u32 = 32;
/// Mappings a domain may hold at once (its maptrack).
pub const MAX_MAPPINGS: usize = 1024;
const ENTRIES_PER_FRAME: u32 = (FRAME_SIZE / 8) as u32;

/// A mapping this domain holds of another's page.
struct Mapping {
    granter: Arc<Domain>,
    gref: u32,
    gfn: u64,
    readonly: bool,
}

/// One domain's grant frames (as granter) and maptrack (as grantee).
pub struct GrantTable {
    frames: Vec<PhysAddr>,
    /// Where the guest placed each frame (XENMEM_add_to_physmap), for setup_table.
    frame_gfns: Vec<Option<u64>>,
    max_frames: u32,
    maptrack: Vec<Option<Mapping>>,
}

impl GrantTable {
    /// A table with Xen's `INITIAL_NR_GRANT_FRAMES` (1) frame; `None` without memory.
    pub fn new(max_frames: u32) -> Option<Self> {
        let mut table = GrantTable { frames: Vec::new(), frame_gfns: Vec::new(), max_frames, maptrack: Vec::new() };
        table.grow(1).ok()?;
        Some(table)
    }

    /// A table holding nothing (what a destroyed domain keeps until its memory is gone).
    pub fn empty() -> Self {
        GrantTable { frames: Vec::new(), frame_gfns: Vec::new(), max_frames: 0, maptrack: Vec::new() }
    }

    /// Records that frame `index` is mapped at guest frame `gfn`.
    pub fn placed(&mut self, index: u32, gfn: u64) {
        if let Some(slot) = self.frame_gfns.get_mut(index as usize) {
            *slot = Some(gfn);
        }
    }

    /// The guest frame of each table frame (`INVALID_GFN` where not placed).
    pub fn frame_gfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.frame_gfns.iter().map(|g| g.unwrap_or(u64::MAX))
    }

    /// (frames in use, most frames allowed).
    pub fn size(&self) -> (u32, u32) {
        (self.frames.len() as u32, self.max_frames)
    }

    /// Grows the table to `nr_frames` frames.
    pub fn grow(&mut self, nr_frames: u32) -> Result<(), i16> {
        if nr_frames > self.max_frames {
            return Err(GNTST_GENERAL_ERROR);
        }
        while (self.frames.len() as u32) < nr_frames {
            let frame = frames::alloc_zeroed().ok_or(GNTST_GENERAL_ERROR)?;
            self.frames.push(frame);
            self.frame_gfns.push(None);
        }
        Ok(())
    }

    /// Frame `index` of the table, growing it if needed (XENMEM_add_to_physmap).
    pub fn frame(&mut self, index: u32) -> Result<PhysAddr, i64> {
        self.grow(index + 1).map_err(|_| errno::EINVAL)?;
        Ok(self.frames[index as usize])
    }

    fn entries(&self) -> u32 {
        self.frames.len() as u32 * ENTRIES_PER_FRAME
    }

    /// The (flags, domid) word and the frame word of entry `gref`.
    fn entry(&self, gref: u32) -> Option<(&'static AtomicU32, &'static AtomicU32)> {
        if gref >= self.entries() {
            return None;
        }
        let frame = self.frames[(gref / ENTRIES_PER_FRAME) as usize];
        let at = phys_to_virt(frame).as_u64() + u64::from(gref % ENTRIES_PER_FRAME) * 8;
        // SAFETY: grant frames are owned by this table until the domain is destroyed (and a
        // mapping keeps the granting domain alive); the words are 4-byte aligned, and the
        // guest only races with atomic updates, as the grant ABI requires.
        unsafe { Some((&*(at as *const AtomicU32), &*((at + 4) as *const AtomicU32))) }
    }
}

/// Releases every mapping `holder` has of other domains' pages (its domain is dying), so
/// the granters' entries are unpinned and their memory is no longer kept alive by it — two
/// dying domains that mapped each other's pages must not keep each other forever.
pub fn release_all(holder: &Domain) {
    let mappings: Vec<Mapping> = holder.grants.lock().maptrack.iter_mut().filter_map(Option::take).collect();
    for mapping in mappings {
        release_pin(&mapping.granter, mapping.gref, mapping.readonly);
    }
}

impl Drop for GrantTable {
    fn drop(&mut self) {
        for mapping in self.maptrack.iter_mut().filter_map(Option::take) {
            release_pin(&mapping.granter, mapping.gref, mapping.readonly);
        }
        for &f in &self.frames {
            frames::free(f);
        }
    }
}

/// Checks entry `gref` of `granter` for `grantee` and pins it for reading or writing.
/// Returns the granted guest frame.
fn acquire(granter: &Domain, grantee: DomId, gref: u32, readonly: bool) -> Result<u64, i16> {
    let table = granter.grants.lock();
    let (header, frame) = table.entry(gref).ok_or(GNTST_BAD_GNTREF)?;
    let pin = if readonly { GTF_READING } else { GTF_READING | GTF_WRITING };
    let mut current = header.load(Ordering::Acquire);
    loop {
        let flags = current as u16;
        let domid = (current >> 16) as u16;
        // Xen answers GNTST_general_error for every refusal here (`_set_status_v1`).
        if flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS || domid != grantee {
            return Err(GNTST_GENERAL_ERROR);
        }
        if !readonly && flags & GTF_READONLY != 0 {
            return Err(GNTST_GENERAL_ERROR);
        }
        let wanted = current | u32::from(pin);
        match header.compare_exchange(current, wanted, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(u64::from(frame.load(Ordering::Acquire))),
            // The guest changed the entry under us: check it again.
            Err(now) => current = now,
        }
    }
}

/// Drops the pin `acquire` set, unless another mapping of the same entry still needs it.
fn release_pin(granter: &Domain, gref: u32, readonly: bool) {
    let still_read = domain::any_mapping_of(granter.id, gref, false);
    let still_write = domain::any_mapping_of(granter.id, gref, true);
    let table = granter.grants.lock();
    if let Some((header, _)) = table.entry(gref) {
        let mut clear = 0u32;
        if !still_write && !readonly {
            clear |= u32::from(GTF_WRITING);
        }
        if !still_read && !still_write {
            clear |= u32::from(GTF_READING);
        }
        header.fetch_and(!clear, Ordering::AcqRel);
    }
}

/// Whether `holder` maps entry `gref` of domain `granter` (writable mappings only if asked).
pub fn holds_mapping(holder: &Domain, granter: DomId, gref: u32, writable: bool) -> bool {
    holder
        .grants
        .lock()
        .maptrack
        .iter()
        .flatten()
        .any(|m| m.granter.id == granter && m.gref == gref && (!writable || !m.readonly))
}

fn granter_domain(vcpu: &Vcpu, domid: u16) -> Option<Arc<Domain>> {
    if domid == domain::DOMID_SELF || domid == vcpu.domain.id {
        return Some(vcpu.domain.clone());
    }
    domain::get(domid)
}

fn map_one(vcpu: &Vcpu, op: &GnttabMapGrantRef) -> Result<u32, i16> {
    // Xen's order (`map_grant_ref`): a mapping kind, then what translated guests may ask,
    // then the domain (named by id: DOMID_SELF is not accepted here).
    if op.flags & (GNTMAP_DEVICE_MAP | GNTMAP_HOST_MAP) == 0 {
        return Err(GNTST_BAD_GNTREF);
    }
    if op.flags & (GNTMAP_DEVICE_MAP | GNTMAP_APPLICATION_MAP | GNTMAP_CONTAINS_PTE) != 0 {
        return Err(GNTST_GENERAL_ERROR);
    }
    let granter = if op.dom == vcpu.domain.id { Some(vcpu.domain.clone()) } else { domain::get(op.dom) };
    let granter = granter.ok_or(GNTST_BAD_DOMAIN)?;
    let readonly = op.flags & GNTMAP_READONLY != 0;
    let gref = op.ref_;
    let gfn = acquire(&granter, vcpu.domain.id, gref, readonly)?;
    let undo = |code| {
        release_pin(&granter, gref, readonly);
        code
    };
    // Only the granter's own RAM may be granted: never a page it maps from someone else.
    let page = granter.ram.owned_page(gfn * FRAME_SIZE).ok_or_else(|| undo(GNTST_BAD_PAGE))?;
    let mut table = vcpu.domain.grants.lock();
    let handle = match table.maptrack.iter().position(Option::is_none) {
        Some(h) => h,
        None if table.maptrack.len() < MAX_MAPPINGS => {
            table.maptrack.push(None);
            table.maptrack.len() - 1
        }
        None => return Err(undo(GNTST_NO_DEVICE_SPACE)),
    };
    let target = op.host_addr / FRAME_SIZE;
    if vcpu.domain.ram.map_overlay_with(target, page, readonly).is_err() {
        return Err(undo(GNTST_NO_DEVICE_SPACE));
    }
    table.maptrack[handle] = Some(Mapping { granter: granter.clone(), gref, gfn: target, readonly });
    Ok(handle as u32)
}

/// `GNTTABOP_map_grant_ref` for `count` operations at `uop`.
pub fn map_batch(vcpu: &Vcpu, exec: &Exec, uop: u64, count: u64) -> Result<i64, i64> {
    for i in 0..count {
        let at = uop + i * GnttabMapGrantRef::SIZE as u64;
        let mut op: GnttabMapGrantRef = read_struct(vcpu, exec, at)?;
        (op.status, op.handle) = match map_one(vcpu, &op) {
            Ok(h) => (GNTST_OKAY, h),
            Err(c) => (c, u32::MAX),
        };
        op.dev_bus_addr = 0;
        write_struct(vcpu, exec, at, &op)?;
    }
    Ok(0)
}

fn unmap_one(vcpu: &Vcpu, op: &GnttabUnmapGrantRef) -> Result<(), i16> {
    let mapping = {
        let mut table = vcpu.domain.grants.lock();
        let slot = table.maptrack.get_mut(op.handle as usize).ok_or(GNTST_BAD_HANDLE)?;
        match slot {
            Some(m) if op.host_addr == 0 || op.host_addr / FRAME_SIZE == m.gfn => {
                slot.take().ok_or(GNTST_BAD_HANDLE)?
            }
            Some(_) => return Err(GNTST_GENERAL_ERROR),
            None => return Err(GNTST_BAD_HANDLE),
        }
    };
    vcpu.domain.ram.unmap_overlay(mapping.gfn);
    release_pin(&mapping.granter, mapping.gref, mapping.readonly);
    Ok(())
}

/// `GNTTABOP_unmap_grant_ref`.
pub fn unmap_batch(vcpu: &Vcpu, exec: &Exec, uop: u64, count: u64) -> Result<i64, i64> {
    for i in 0..count {
        let at = uop + i * GnttabUnmapGrantRef::SIZE as u64;
        let mut op: GnttabUnmapGrantRef = read_struct(vcpu, exec, at)?;
        op.status = match unmap_one(vcpu, &op) {
            Ok(()) => GNTST_OKAY,
            Err(c) => c,
        };
        write_struct(vcpu, exec, at, &op)?;
    }
    Ok(0)
}

/// One side of a copy: a granted page of another domain, or a frame of the caller's own.
struct CopyEnd {
    domain: Arc<Domain>,
    gref: Option<u32>,
    page: PhysAddr,
    offset: u64,
}

fn copy_end(vcpu: &Vcpu, end: &GnttabCopyPtr, by_gref: bool, write: bool) -> Result<CopyEnd, i16> {
    let domain = granter_domain(vcpu, end.domid).ok_or(GNTST_BAD_DOMAIN)?;
    let offset = u64::from(end.offset);
    if by_gref {
        let gref = end.u.gref();
        let gfn = acquire(&domain, vcpu.domain.id, gref, !write)?;
        let Some(page) = domain.ram.owned_page(gfn * FRAME_SIZE) else {
            release_pin(&domain, gref, !write);
            return Err(GNTST_BAD_PAGE);
        };
        Ok(CopyEnd { domain, gref: Some(gref), page, offset })
    } else {
        // A plain frame may only be the caller's own, named DOMID_SELF.
        if end.domid != domain::DOMID_SELF {
            return Err(GNTST_PERMISSION_DENIED);
        }
        let gpa = end.u.gmfn().checked_mul(FRAME_SIZE).ok_or(GNTST_BAD_PAGE)?;
        let page = domain.ram.translate(gpa).ok_or(GNTST_BAD_PAGE)?;
        Ok(CopyEnd { domain, gref: None, page, offset })
    }
}

fn copy_one(vcpu: &Vcpu, op: &GnttabCopy) -> Result<(), i16> {
    let len = u64::from(op.len);
    if u64::from(op.source.offset) + len > FRAME_SIZE || u64::from(op.dest.offset) + len > FRAME_SIZE {
        return Err(GNTST_BAD_COPY_ARG);
    }
    let src = copy_end(vcpu, &op.source, op.flags & GNTCOPY_SOURCE_GREF != 0, false)?;
    let dst = match copy_end(vcpu, &op.dest, op.flags & GNTCOPY_DEST_GREF != 0, true) {
        Ok(d) => d,
        Err(code) => {
            if let Some(gref) = src.gref {
                release_pin(&src.domain, gref, true);
            }
            return Err(code);
        }
    };
    // SAFETY: both pages belong to live domains (held by the Arcs in `src`/`dst`), are in
    // the direct map, and the ranges stay inside them (checked above); copy handles overlap.
    unsafe {
        core::ptr::copy(
            phys_to_virt(src.page + src.offset).as_ptr::<u8>(),
            phys_to_virt(dst.page + dst.offset).as_mut_ptr::<u8>(),
            len as usize,
        )
    };
    if let Some(gref) = src.gref {
        release_pin(&src.domain, gref, true);
    }
    if let Some(gref) = dst.gref {
        release_pin(&dst.domain, gref, false);
    }
    Ok(())
}

/// `GNTTABOP_copy`.
pub fn copy_batch(vcpu: &Vcpu, exec: &Exec, uop: u64, count: u64) -> Result<i64, i64> {
    for i in 0..count {
        let at = uop + i * GnttabCopy::SIZE as u64;
        let mut op: GnttabCopy = read_struct(vcpu, exec, at)?;
        op.status = match copy_one(vcpu, &op) {
            Ok(()) => GNTST_OKAY,
            Err(c) => c,
        };
        write_struct(vcpu, exec, at, &op)?;
    }
    Ok(0)
}

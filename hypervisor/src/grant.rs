//! Grant tables, version 1 (`public/grant_table.h`, Xen's `common/grant_table.c`): a domain
//! publishes entries `{flags, domid, frame}` in its grant frames to let one other domain
//! map or copy one of its pages. Every map and copy is checked against the entry (granted
//! to the caller, access permitted, read-only respected); a mapping pins the entry
//! (GTF_reading/GTF_writing) and keeps the granter's memory alive until it is unmapped,
//! and a domain's destruction releases every mapping it held.

use crate::domain::{self, DomId, Domain};
use crate::hypercall::errno;
use crate::hypercall::{read_arg, u16_at, u32_at, u64_at, write_arg};
use crate::mm::{frames, phys_to_virt};
use crate::vcpu::{Exec, Vcpu};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use frame_alloc::FRAME_SIZE;
use x86_64::PhysAddr;

/// `GNTST_*` status codes.
pub mod status {
    pub const OKAY: i16 = 0;
    pub const GENERAL_ERROR: i16 = -1;
    pub const BAD_DOMAIN: i16 = -2;
    pub const BAD_GNTREF: i16 = -3;
    pub const BAD_HANDLE: i16 = -4;
    pub const BAD_VIRT_ADDR: i16 = -5;
    pub const NO_DEVICE_SPACE: i16 = -7;
    pub const PERMISSION_DENIED: i16 = -8;
    pub const BAD_PAGE: i16 = -9;
    pub const BAD_COPY_ARG: i16 = -10;
}

/// Grant frames a domU may have (xl's default `max_grant_frames` is 64).
pub const DEFAULT_MAX_FRAMES: u32 = 32;
/// Mappings a domain may hold at once (its maptrack).
pub const MAX_MAPPINGS: usize = 1024;
const ENTRIES_PER_FRAME: u32 = (FRAME_SIZE / 8) as u32;

/// `GTF_*` entry flags.
const GTF_TYPE_MASK: u16 = 3;
const GTF_PERMIT_ACCESS: u16 = 1;
const GTF_READONLY: u16 = 1 << 2;
const GTF_READING: u16 = 1 << 3;
const GTF_WRITING: u16 = 1 << 4;
/// `GNTMAP_*` flags.
const GNTMAP_HOST_MAP: u32 = 1 << 1;
const GNTMAP_READONLY: u32 = 1 << 2;
/// `GNTCOPY_*` flags.
const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
const GNTCOPY_DEST_GREF: u16 = 1 << 1;

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
    max_frames: u32,
    maptrack: Vec<Option<Mapping>>,
}

impl GrantTable {
    pub fn new(max_frames: u32) -> Self {
        GrantTable { frames: Vec::new(), max_frames, maptrack: Vec::new() }
    }

    /// (frames in use, most frames allowed).
    pub fn size(&self) -> (u32, u32) {
        (self.frames.len() as u32, self.max_frames)
    }

    /// Grows the table to `nr_frames` frames.
    pub fn grow(&mut self, nr_frames: u32) -> Result<(), i16> {
        if nr_frames > self.max_frames {
            return Err(status::GENERAL_ERROR);
        }
        while (self.frames.len() as u32) < nr_frames {
            let frame = frames::alloc_zeroed().ok_or(status::GENERAL_ERROR)?;
            self.frames.push(frame);
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
    let (header, frame) = table.entry(gref).ok_or(status::BAD_GNTREF)?;
    let pin = if readonly { GTF_READING } else { GTF_READING | GTF_WRITING };
    let mut current = header.load(Ordering::Acquire);
    loop {
        let flags = current as u16;
        let domid = (current >> 16) as u16;
        if flags & GTF_TYPE_MASK != GTF_PERMIT_ACCESS || domid != grantee {
            return Err(status::PERMISSION_DENIED);
        }
        if !readonly && flags & GTF_READONLY != 0 {
            return Err(status::PERMISSION_DENIED);
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

fn map_one(vcpu: &Vcpu, op: &[u8; 32]) -> Result<u32, i16> {
    let host_addr = u64_at(op, 0);
    let flags = u32_at(op, 8);
    let gref = u32_at(op, 12);
    if flags & GNTMAP_HOST_MAP == 0 || !host_addr.is_multiple_of(FRAME_SIZE) {
        return Err(status::GENERAL_ERROR);
    }
    let granter = granter_domain(vcpu, u16_at(op, 16)).ok_or(status::BAD_DOMAIN)?;
    let readonly = flags & GNTMAP_READONLY != 0;
    let gfn = acquire(&granter, vcpu.domain.id, gref, readonly)?;
    let undo = |code| {
        release_pin(&granter, gref, readonly);
        code
    };
    let page = granter.ram.translate(gfn * FRAME_SIZE).ok_or_else(|| undo(status::BAD_PAGE))?;
    let mut table = vcpu.domain.grants.lock();
    let handle = match table.maptrack.iter().position(Option::is_none) {
        Some(h) => h,
        None if table.maptrack.len() < MAX_MAPPINGS => {
            table.maptrack.push(None);
            table.maptrack.len() - 1
        }
        None => return Err(undo(status::NO_DEVICE_SPACE)),
    };
    let target = host_addr / FRAME_SIZE;
    if vcpu.domain.ram.map_overlay_with(target, page, readonly).is_err() {
        return Err(undo(status::NO_DEVICE_SPACE));
    }
    table.maptrack[handle] = Some(Mapping { granter: granter.clone(), gref, gfn: target, readonly });
    Ok(handle as u32)
}

/// `GNTTABOP_map_grant_ref` for `count` operations at `uop`.
pub fn map_batch(vcpu: &Vcpu, exec: &Exec, uop: u64, count: u64) -> Result<i64, i64> {
    for i in 0..count {
        let at = uop + i * 32;
        let mut op: [u8; 32] = read_arg(vcpu, exec, at)?;
        let (code, handle) = match map_one(vcpu, &op) {
            Ok(h) => (status::OKAY, h),
            Err(c) => (c, u32::MAX),
        };
        op[18..20].copy_from_slice(&code.to_le_bytes());
        op[20..24].copy_from_slice(&handle.to_le_bytes());
        op[24..32].fill(0);
        write_arg(vcpu, exec, at, &op)?;
    }
    Ok(0)
}

fn unmap_one(vcpu: &Vcpu, op: &[u8; 24]) -> Result<(), i16> {
    let host_addr = u64_at(op, 0);
    let handle = u32_at(op, 16) as usize;
    let mapping = {
        let mut table = vcpu.domain.grants.lock();
        let slot = table.maptrack.get_mut(handle).ok_or(status::BAD_HANDLE)?;
        match slot {
            Some(m) if host_addr == 0 || host_addr / FRAME_SIZE == m.gfn => slot.take().ok_or(status::BAD_HANDLE)?,
            Some(_) => return Err(status::BAD_VIRT_ADDR),
            None => return Err(status::BAD_HANDLE),
        }
    };
    vcpu.domain.ram.unmap_overlay(mapping.gfn);
    release_pin(&mapping.granter, mapping.gref, mapping.readonly);
    Ok(())
}

/// `GNTTABOP_unmap_grant_ref`.
pub fn unmap_batch(vcpu: &Vcpu, exec: &Exec, uop: u64, count: u64) -> Result<i64, i64> {
    for i in 0..count {
        let at = uop + i * 24;
        let mut op: [u8; 24] = read_arg(vcpu, exec, at)?;
        let code = match unmap_one(vcpu, &op) {
            Ok(()) => status::OKAY,
            Err(c) => c,
        };
        op[20..22].copy_from_slice(&code.to_le_bytes());
        write_arg(vcpu, exec, at, &op)?;
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

fn copy_end(vcpu: &Vcpu, op: &[u8; 40], base: usize, by_gref: bool, write: bool) -> Result<CopyEnd, i16> {
    let domid = u16_at(op, base + 8);
    let offset = u64::from(u16_at(op, base + 10));
    let domain = granter_domain(vcpu, domid).ok_or(status::BAD_DOMAIN)?;
    if by_gref {
        let gref = u32_at(op, base);
        let gfn = acquire(&domain, vcpu.domain.id, gref, !write)?;
        let Some(page) = domain.ram.translate(gfn * FRAME_SIZE) else {
            release_pin(&domain, gref, !write);
            return Err(status::BAD_PAGE);
        };
        Ok(CopyEnd { domain, gref: Some(gref), page, offset })
    } else {
        // A plain frame may only be the caller's own.
        if !Arc::ptr_eq(&domain, &vcpu.domain) {
            return Err(status::PERMISSION_DENIED);
        }
        let gfn = u64_at(op, base);
        let page =
            domain.ram.translate(gfn.checked_mul(FRAME_SIZE).ok_or(status::BAD_PAGE)?).ok_or(status::BAD_PAGE)?;
        Ok(CopyEnd { domain, gref: None, page, offset })
    }
}

fn copy_one(vcpu: &Vcpu, op: &[u8; 40]) -> Result<(), i16> {
    let len = u64::from(u16_at(op, 32));
    let flags = u16_at(op, 34);
    let (src_off, dst_off) = (u64::from(u16_at(op, 10)), u64::from(u16_at(op, 26)));
    if src_off + len > FRAME_SIZE || dst_off + len > FRAME_SIZE {
        return Err(status::BAD_COPY_ARG);
    }
    let src = copy_end(vcpu, op, 0, flags & GNTCOPY_SOURCE_GREF != 0, false)?;
    let dst = match copy_end(vcpu, op, 16, flags & GNTCOPY_DEST_GREF != 0, true) {
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
        let at = uop + i * 40;
        let mut op: [u8; 40] = read_arg(vcpu, exec, at)?;
        let code = match copy_one(vcpu, &op) {
            Ok(()) => status::OKAY,
            Err(c) => c,
        };
        op[36..38].copy_from_slice(&code.to_le_bytes());
        write_arg(vcpu, exec, at, &op)?;
    }
    Ok(0)
}

//! `memory_op` (`public/memory.h`) for auto-translated (HVM/PVH) guests: the memory map,
//! reservation sizes, placing shared_info and grant frames in the guest's physical space,
//! and ballooning pages out and back in.

use super::{errno, read_arg, read_struct, u16_at, u64_at, write_struct};
use crate::domain::{Domain, DOMID_SELF};
use crate::mm::frames;
use crate::vcpu::{Exec, Vcpu};
use alloc::sync::Arc;
use frame_alloc::FRAME_SIZE;
use xen_abi::memory::*;

/// Low bits of the command are the operation; the rest is a continuation's start extent.
const MEMOP_CMD_MASK: u64 = 0x3f;
const MEMOP_EXTENT_SHIFT: u32 = 6;
/// Largest extent order a domU may ask for (Xen's `max_order(d)` for domUs is 9: 2 MiB).
const MAX_EXTENT_ORDER: u32 = 9;

fn is_self(vcpu: &Vcpu, domid: u16) -> bool {
    domid == DOMID_SELF || domid == vcpu.domain.id
}

/// -ESRCH for a domain that does not exist, -EPERM for another one.
fn other_domain_error(domid: u16) -> i64 {
    if crate::domain::get(domid).is_none() {
        errno::ESRCH
    } else {
        errno::EPERM
    }
}

pub fn memory_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let arg = args[1];
    let dom = &vcpu.domain;
    match args[0] & MEMOP_CMD_MASK {
        XENMEM_MAXIMUM_RAM_PAGE => Ok(frames::tracked_frames() as i64 - 1),
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let domid = u16_at(&read_arg::<2>(vcpu, exec, arg)?, 0);
            if !is_self(vcpu, domid) {
                return Err(other_domain_error(domid));
            }
            let (current, max) = dom.ram.reservation();
            Ok(if args[0] & MEMOP_CMD_MASK == XENMEM_CURRENT_RESERVATION { current } else { max } as i64)
        }
        XENMEM_MEMORY_MAP => {
            let mut a: XenMemoryMap = read_struct(vcpu, exec, arg)?;
            // A short buffer gets the first entries, as on Xen.
            let map = &dom.memory_map()[..dom.memory_map().len().min(a.nr_entries as usize)];
            for (i, e) in map.iter().enumerate() {
                let entry = E820Entry { addr: e.addr, size: e.size, type_: e.kind };
                write_struct(vcpu, exec, a.buffer + (i * E820Entry::SIZE) as u64, &entry)?;
            }
            a.nr_entries = map.len() as u32;
            write_struct(vcpu, exec, arg, &a)?;
            Ok(0)
        }
        // The host's memory map is for PV guests and the privileged domain.
        XENMEM_MACHINE_MEMORY_MAP => Err(errno::ENOSYS),
        XENMEM_ADD_TO_PHYSMAP => {
            let a: XenAddToPhysmap = read_struct(vcpu, exec, arg)?;
            if !is_self(vcpu, a.domid) {
                return Err(other_domain_error(a.domid));
            }
            if a.space == XENMAPSPACE_GMFN_FOREIGN {
                return Err(errno::ENOSYS);
            }
            map_one(dom, a.space, a.idx, a.gpfn, None)?;
            Ok(0)
        }
        XENMEM_ADD_TO_PHYSMAP_BATCH => add_to_physmap_batch(vcpu, exec, args[0], arg),
        XENMEM_REMOVE_FROM_PHYSMAP => {
            let a: XenRemoveFromPhysmap = read_struct(vcpu, exec, arg)?;
            if !is_self(vcpu, a.domid) {
                return Err(other_domain_error(a.domid));
            }
            remove_one(dom, a.gpfn)?;
            Ok(0)
        }
        op @ (XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP) => {
            // Xen answers every failure here with the number of extents done so far.
            let start = args[0] >> MEMOP_EXTENT_SHIFT;
            let Ok(a) = read_struct::<XenMemoryReservation>(vcpu, exec, arg) else {
                return Ok(start as i64);
            };
            let (list, count, order) = (a.extent_start, a.nr_extents, a.extent_order);
            if !is_self(vcpu, a.domid) || order > MAX_EXTENT_ORDER {
                return Ok(start as i64);
            }
            let mut done = start;
            while done < count {
                let pages = 1u64 << order;
                let ok = match op {
                    XENMEM_INCREASE_RESERVATION => dom.ram.reserve_pages(pages),
                    _ => {
                        let Ok(raw) = read_arg::<8>(vcpu, exec, list + done * 8) else {
                            break;
                        };
                        let gfn = u64_at(&raw, 0);
                        (0..pages).all(|p| {
                            let g = gfn + p;
                            if op == XENMEM_DECREASE_RESERVATION {
                                dom.ram.balloon_out(g)
                            } else {
                                dom.ram.balloon_in(g)
                            }
                        })
                    }
                };
                if !ok {
                    break;
                }
                done += 1;
            }
            // Xen returns how many extents were processed.
            Ok(done as i64)
        }
        _ => Err(errno::ENOSYS),
    }
}

/// Places one page of `space` at `gpfn` (`XENMEM_add_to_physmap`, one entry of the batch).
/// `foreign` is the domain whose frame `idx` a `XENMAPSPACE_gmfn_foreign` entry maps.
fn map_one(dom: &Arc<Domain>, space: u32, idx: u64, gpfn: u64, foreign: Option<&Arc<Domain>>) -> Result<(), i64> {
    if gpfn == u64::MAX {
        return Err(errno::EINVAL); // INVALID_GFN
    }
    let page = match space {
        XENMAPSPACE_SHARED_INFO if idx == 0 => dom.shared_info_frame(),
        XENMAPSPACE_SHARED_INFO => return Err(errno::EINVAL),
        XENMAPSPACE_GRANT_TABLE if idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 => return Err(errno::EINVAL),
        XENMAPSPACE_GRANT_TABLE => dom.grants.lock().frame(u32::try_from(idx).map_err(|_| errno::EINVAL)?)?,
        XENMAPSPACE_GMFN_FOREIGN => {
            let owner = foreign.ok_or(errno::EINVAL)?;
            // The owner's RAM or special pages (rings, ACPI), not what it maps from others.
            let page = idx.checked_mul(FRAME_SIZE).and_then(|gpa| owner.ram.translate(gpa)).ok_or(errno::EINVAL)?;
            if owner.maps_foreign(idx) || dom.maps_foreign(gpfn) {
                return Err(errno::EBUSY);
            }
            return dom.map_foreign(gpfn, owner, page).map_err(|_| errno::ENOMEM);
        }
        _ => return Err(errno::EINVAL),
    };
    if dom.maps_foreign(gpfn) {
        return Err(errno::EBUSY);
    }
    dom.ram.map_overlay(gpfn, page).map_err(|_| errno::ENOMEM)?;
    if space == XENMAPSPACE_GRANT_TABLE {
        dom.grants.lock().placed(idx as u32, gpfn);
    }
    Ok(())
}

/// Entries of a batch done per call; the rest is a continuation (Xen checks for preemption
/// after each entry).
const BATCH_CHUNK: u64 = 64;

/// `XENMEM_add_to_physmap_batch`: `size` pages, each with its own error code. Mapping
/// another domain's frames (`XENMAPSPACE_gmfn_foreign`) is for the control domain only.
/// Entries from the one encoded in `cmd`'s high bits (Xen's start extent), `BATCH_CHUNK`
/// per call.
fn add_to_physmap_batch(vcpu: &Vcpu, exec: &mut Exec, cmd: u64, arg: u64) -> Result<i64, i64> {
    let start = cmd >> MEMOP_EXTENT_SHIFT;
    let a: XenAddToPhysmapBatch = read_struct(vcpu, exec, arg)?;
    if !is_self(vcpu, a.domid) {
        return Err(other_domain_error(a.domid));
    }
    let foreign = if u32::from(a.space) == XENMAPSPACE_GMFN_FOREIGN {
        let owner = crate::domain::get(a.foreign_domid).ok_or(errno::ESRCH)?;
        if !vcpu.domain.is_privileged() || owner.id == vcpu.domain.id {
            return Err(errno::EPERM);
        }
        Some(owner)
    } else if a.foreign_domid != 0 {
        return Err(errno::EINVAL); // res0 must be zero
    } else {
        None
    };
    let end = u64::from(a.size).min(start.saturating_add(BATCH_CHUNK));
    for i in start..end {
        let idx = u64_at(&read_arg::<8>(vcpu, exec, a.idxs + i * 8)?, 0);
        let gpfn = u64_at(&read_arg::<8>(vcpu, exec, a.gpfns + i * 8)?, 0);
        let rc = match map_one(&vcpu.domain, u32::from(a.space), idx, gpfn, foreign.as_ref()) {
            Ok(()) => 0i32,
            Err(e) => -(e as i32),
        };
        super::write_arg(vcpu, exec, a.errs + i * 4, &rc.to_le_bytes())?;
    }
    if end < u64::from(a.size) {
        super::set_first_argument(exec, (cmd & MEMOP_CMD_MASK) | (end << MEMOP_EXTENT_SHIFT));
        return Err(super::ERESTART);
    }
    Ok(0)
}

/// `XENMEM_remove_from_physmap`: takes away whatever is at `gpfn` — a foreign mapping, an
/// overlay page (shared_info, a grant frame) or a RAM page (ballooned out).
fn remove_one(dom: &Domain, gpfn: u64) -> Result<(), i64> {
    if dom.unmap_foreign(gpfn) {
        return Ok(());
    }
    if dom.ram.overlay_at(gpfn).is_some() {
        dom.ram.unmap_overlay(gpfn);
        return Ok(());
    }
    if dom.ram.balloon_out(gpfn) {
        return Ok(());
    }
    Err(errno::EINVAL)
}

//! `memory_op` (`public/memory.h`) for auto-translated (HVM/PVH) guests: the memory map,
//! reservation sizes, placing shared_info and grant frames in the guest's physical space,
//! and ballooning pages out and back in.

use super::{errno, read_arg, read_struct, u16_at, u64_at, write_struct};
use crate::domain::DOMID_SELF;
use crate::mm::frames;
use crate::vcpu::{Exec, Vcpu};
use xen_abi::memory::*;

/// Low bits of the command are the operation; the rest is a continuation's start extent.
const MEMOP_CMD_MASK: u64 = 0x3f;
/// Largest extent order a domU may ask for (Xen's `max_order(d)` for domUs is 9: 2 MiB).
const MAX_EXTENT_ORDER: u32 = 9;

fn is_self(vcpu: &Vcpu, domid: u16) -> bool {
    domid == DOMID_SELF || domid == vcpu.domain.id
}

pub fn memory_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let arg = args[1];
    let dom = &vcpu.domain;
    match args[0] & MEMOP_CMD_MASK {
        XENMEM_MAXIMUM_RAM_PAGE => Ok(frames::tracked_frames() as i64 - 1),
        XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION => {
            let domid = u16_at(&read_arg::<2>(vcpu, exec, arg)?, 0);
            if !is_self(vcpu, domid) {
                return Err(errno::EPERM);
            }
            let (current, max) = dom.ram.reservation();
            Ok(if args[0] & MEMOP_CMD_MASK == XENMEM_CURRENT_RESERVATION { current } else { max } as i64)
        }
        XENMEM_MEMORY_MAP => {
            let mut a: XenMemoryMap = read_struct(vcpu, exec, arg)?;
            let map = dom.memory_map();
            if (a.nr_entries as usize) < map.len() {
                return Err(errno::EINVAL);
            }
            for (i, e) in map.iter().enumerate() {
                let entry = E820Entry { addr: e.addr, size: e.size, type_: e.kind };
                write_struct(vcpu, exec, a.buffer + (i * E820Entry::SIZE) as u64, &entry)?;
            }
            a.nr_entries = map.len() as u32;
            write_struct(vcpu, exec, arg, &a)?;
            Ok(0)
        }
        XENMEM_MACHINE_MEMORY_MAP => Err(errno::EPERM),
        XENMEM_ADD_TO_PHYSMAP => {
            let a: XenAddToPhysmap = read_struct(vcpu, exec, arg)?;
            if !is_self(vcpu, a.domid) {
                return Err(errno::EPERM);
            }
            let (space, idx, gpfn) = (a.space, a.idx, a.gpfn);
            let page = match space {
                XENMAPSPACE_SHARED_INFO if idx == 0 => dom.shared_info_frame(),
                XENMAPSPACE_SHARED_INFO => return Err(errno::EINVAL),
                XENMAPSPACE_GRANT_TABLE if idx & XENMAPIDX_GRANT_TABLE_STATUS != 0 => return Err(errno::EINVAL),
                XENMAPSPACE_GRANT_TABLE => dom.grants.lock().frame(u32::try_from(idx).map_err(|_| errno::EINVAL)?)?,
                _ => return Err(errno::ENOSYS),
            };
            dom.ram.map_overlay(gpfn, page).map_err(|_| errno::ENOMEM)?;
            Ok(0)
        }
        op @ (XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP) => {
            let a: XenMemoryReservation = read_struct(vcpu, exec, arg)?;
            let (list, count, order) = (a.extent_start, a.nr_extents, a.extent_order);
            if !is_self(vcpu, a.domid) {
                return Err(errno::EPERM);
            }
            if order > MAX_EXTENT_ORDER {
                return Err(errno::EINVAL);
            }
            let start = args[0] >> 6;
            let mut done = start;
            while done < count {
                let pages = 1u64 << order;
                let ok = match op {
                    XENMEM_INCREASE_RESERVATION => dom.ram.reserve_pages(pages),
                    _ => {
                        let gfn = u64_at(&read_arg::<8>(vcpu, exec, list + done * 8)?, 0);
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

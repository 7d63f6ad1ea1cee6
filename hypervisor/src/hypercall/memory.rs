//! `memory_op` (`public/memory.h`) for auto-translated (HVM/PVH) guests: the memory map,
//! reservation sizes, placing shared_info and grant frames in the guest's physical space,
//! and ballooning pages out and back in.

use super::{errno, read_arg, u16_at, u32_at, u64_at, write_arg};
use crate::domain::DOMID_SELF;
use crate::mm::frames;
use crate::vcpu::{Exec, Vcpu};

const INCREASE_RESERVATION: u64 = 0;
const DECREASE_RESERVATION: u64 = 1;
const MAXIMUM_RAM_PAGE: u64 = 2;
const CURRENT_RESERVATION: u64 = 3;
const MAXIMUM_RESERVATION: u64 = 4;
const POPULATE_PHYSMAP: u64 = 6;
const ADD_TO_PHYSMAP: u64 = 7;
const MEMORY_MAP: u64 = 9;
const MACHINE_MEMORY_MAP: u64 = 10;

const XENMAPSPACE_SHARED_INFO: u32 = 0;
const XENMAPSPACE_GRANT_TABLE: u32 = 1;
/// `XENMAPIDX_grant_table_status`: version 2 status frames, which we do not offer.
const XENMAPIDX_GRANT_TABLE_STATUS: u64 = 1 << 31;
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
        MAXIMUM_RAM_PAGE => Ok(frames::tracked_frames() as i64 - 1),
        CURRENT_RESERVATION | MAXIMUM_RESERVATION => {
            let domid = u16_at(&read_arg::<2>(vcpu, exec, arg)?, 0);
            if !is_self(vcpu, domid) {
                return Err(errno::EPERM);
            }
            let (current, max) = dom.ram.reservation();
            Ok(if args[0] & MEMOP_CMD_MASK == CURRENT_RESERVATION { current } else { max } as i64)
        }
        MEMORY_MAP => {
            // struct xen_memory_map { unsigned int nr_entries; XEN_GUEST_HANDLE(void) buffer; }
            let mut a: [u8; 16] = read_arg(vcpu, exec, arg)?;
            let capacity = u32_at(&a, 0) as usize;
            let buffer = u64_at(&a, 8);
            let map = dom.memory_map();
            if capacity < map.len() {
                return Err(errno::EINVAL);
            }
            for (i, e) in map.iter().enumerate() {
                // struct e820entry { u64 addr; u64 size; u32 type; } (packed, 20 bytes)
                let mut raw = [0u8; 20];
                raw[0..8].copy_from_slice(&e.addr.to_le_bytes());
                raw[8..16].copy_from_slice(&e.size.to_le_bytes());
                raw[16..20].copy_from_slice(&e.kind.to_le_bytes());
                write_arg(vcpu, exec, buffer + i as u64 * 20, &raw)?;
            }
            a[0..4].copy_from_slice(&(map.len() as u32).to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
            Ok(0)
        }
        MACHINE_MEMORY_MAP => Err(errno::EPERM),
        ADD_TO_PHYSMAP => {
            // struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space;
            //                             xen_ulong_t idx; xen_pfn_t gpfn; }
            let a: [u8; 24] = read_arg(vcpu, exec, arg)?;
            if !is_self(vcpu, u16_at(&a, 0)) {
                return Err(errno::EPERM);
            }
            let (space, idx, gpfn) = (u32_at(&a, 4), u64_at(&a, 8), u64_at(&a, 16));
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
        op @ (INCREASE_RESERVATION | DECREASE_RESERVATION | POPULATE_PHYSMAP) => {
            // struct xen_memory_reservation { handle extent_start; xen_ulong_t nr_extents;
            //     unsigned int extent_order; unsigned int mem_flags; domid_t domid; }
            let a: [u8; 32] = read_arg(vcpu, exec, arg)?;
            let (list, count, order) = (u64_at(&a, 0), u64_at(&a, 8), u32_at(&a, 16));
            if !is_self(vcpu, u16_at(&a, 24)) {
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
                    INCREASE_RESERVATION => dom.ram.reserve_pages(pages),
                    _ => {
                        let gfn = u64_at(&read_arg::<8>(vcpu, exec, list + done * 8)?, 0);
                        (0..pages).all(|p| {
                            let g = gfn + p;
                            if op == DECREASE_RESERVATION {
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

//! `grant_table_op` (`public/grant_table.h`), version 1 grant tables.

use super::{errno, read_struct, write_struct};
use crate::domain::DOMID_SELF;
use crate::grant;
use crate::vcpu::{Exec, Vcpu};
use xen_abi::grant_table::*;

/// Most operations a single call may batch.
const MAX_BATCH: u64 = 512;

fn own(vcpu: &Vcpu, domid: u16) -> bool {
    domid == DOMID_SELF || domid == vcpu.domain.id
}

/// The status for an operation on domain `domid` that only its owner may do.
fn access(vcpu: &Vcpu, domid: u16) -> i16 {
    if own(vcpu, domid) {
        GNTST_OKAY
    } else if crate::domain::get(domid).is_none() {
        GNTST_BAD_DOMAIN
    } else {
        GNTST_PERMISSION_DENIED
    }
}

pub fn grant_table_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let (op, uop, count) = (args[0], args[1], args[2] as u32 as u64);
    if count > MAX_BATCH {
        return Err(errno::EINVAL);
    }
    match op {
        // Xen takes exactly one query_size or setup_table per call.
        GNTTABOP_QUERY_SIZE | GNTTABOP_SETUP_TABLE if count != 1 => Err(errno::EINVAL),
        GNTTABOP_QUERY_SIZE => {
            let mut a: GnttabQuerySize = read_struct(vcpu, exec, uop)?;
            a.status = access(vcpu, a.dom);
            if a.status == GNTST_OKAY {
                (a.nr_frames, a.max_nr_frames) = vcpu.domain.grants.lock().size();
            }
            write_struct(vcpu, exec, uop, &a)?;
            Ok(0)
        }
        GNTTABOP_SETUP_TABLE => {
            let mut a: GnttabSetupTable = read_struct(vcpu, exec, uop)?;
            a.status = access(vcpu, a.dom);
            if a.status == GNTST_OKAY {
                let mut table = vcpu.domain.grants.lock();
                a.status = match table.grow(a.nr_frames) {
                    Ok(()) => {
                        // The list gets each frame's guest frame (INVALID_GFN where the guest
                        // has not placed it with XENMEM_add_to_physmap), as Xen writes it.
                        let gfns: alloc::vec::Vec<u64> = table.frame_gfns().take(a.nr_frames as usize).collect();
                        drop(table);
                        let mut status = GNTST_OKAY;
                        for (i, gfn) in gfns.iter().enumerate() {
                            if super::write_arg(vcpu, exec, a.frame_list + i as u64 * 8, &gfn.to_le_bytes()).is_err() {
                                status = GNTST_BAD_VIRT_ADDR;
                                break;
                            }
                        }
                        status
                    }
                    Err(code) => code,
                };
            }
            write_struct(vcpu, exec, uop, &a)?;
            Ok(0)
        }
        GNTTABOP_SET_VERSION => {
            let mut a: GnttabSetVersion = read_struct(vcpu, exec, uop)?;
            let result = match a.version {
                1 => Ok(0),
                // Version 2 is not offered: Xen's answer when the maximum version is 1.
                2 => Err(errno::ENOSYS),
                _ => Err(errno::EINVAL),
            };
            // Xen always reports the version in use.
            a.version = 1;
            write_struct(vcpu, exec, uop, &a)?;
            result
        }
        GNTTABOP_GET_VERSION => {
            let mut a: GnttabGetVersion = read_struct(vcpu, exec, uop)?;
            if !own(vcpu, a.dom) {
                return Err(if crate::domain::get(a.dom).is_none() { errno::ESRCH } else { errno::EPERM });
            }
            a.version = 1;
            write_struct(vcpu, exec, uop, &a)?;
            Ok(0)
        }
        GNTTABOP_MAP_GRANT_REF => grant::map_batch(vcpu, exec, uop, count),
        GNTTABOP_UNMAP_GRANT_REF => grant::unmap_batch(vcpu, exec, uop, count),
        GNTTABOP_COPY => grant::copy_batch(vcpu, exec, uop, count),
        _ => Err(errno::ENOSYS),
    }
}

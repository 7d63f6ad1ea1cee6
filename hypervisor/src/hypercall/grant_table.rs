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

pub fn grant_table_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let (op, uop, count) = (args[0], args[1], args[2] as u32 as u64);
    if count > MAX_BATCH {
        return Err(errno::EINVAL);
    }
    match op {
        GNTTABOP_QUERY_SIZE => {
            for i in 0..count {
                let at = uop + i * GnttabQuerySize::SIZE as u64;
                let mut a: GnttabQuerySize = read_struct(vcpu, exec, at)?;
                if own(vcpu, a.dom) {
                    (a.nr_frames, a.max_nr_frames) = vcpu.domain.grants.lock().size();
                    a.status = GNTST_OKAY;
                } else {
                    a.status = GNTST_PERMISSION_DENIED;
                }
                write_struct(vcpu, exec, at, &a)?;
            }
            Ok(0)
        }
        GNTTABOP_SETUP_TABLE => {
            for i in 0..count {
                let at = uop + i * GnttabSetupTable::SIZE as u64;
                let mut a: GnttabSetupTable = read_struct(vcpu, exec, at)?;
                a.status = if !own(vcpu, a.dom) {
                    GNTST_PERMISSION_DENIED
                } else {
                    // Auto-translated guests map the frames with XENMEM_add_to_physmap;
                    // the frame list stays untouched, as on Xen with HAP.
                    match vcpu.domain.grants.lock().grow(a.nr_frames) {
                        Ok(()) => GNTST_OKAY,
                        Err(code) => code,
                    }
                };
                write_struct(vcpu, exec, at, &a)?;
            }
            Ok(0)
        }
        GNTTABOP_SET_VERSION => match read_struct::<GnttabSetVersion>(vcpu, exec, uop)?.version {
            1 => Ok(0),
            // Version 2 tables are not offered.
            _ => Err(errno::EINVAL),
        },
        GNTTABOP_GET_VERSION => {
            let mut a: GnttabGetVersion = read_struct(vcpu, exec, uop)?;
            if !own(vcpu, a.dom) {
                return Err(errno::EPERM);
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

//! `grant_table_op` (`public/grant_table.h`), version 1 grant tables.

use super::{errno, read_arg, u16_at, u32_at, write_arg};
use crate::domain::DOMID_SELF;
use crate::grant::{self, status};
use crate::vcpu::{Exec, Vcpu};

const MAP_GRANT_REF: u64 = 0;
const UNMAP_GRANT_REF: u64 = 1;
const SETUP_TABLE: u64 = 2;
const COPY: u64 = 5;
const QUERY_SIZE: u64 = 6;
const SET_VERSION: u64 = 8;
const GET_VERSION: u64 = 10;

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
        QUERY_SIZE => {
            // struct gnttab_query_size { domid_t dom; uint32_t nr_frames; uint32_t max_nr_frames; int16_t status; }
            for i in 0..count {
                let at = uop + i * 16;
                let mut a: [u8; 16] = read_arg(vcpu, exec, at)?;
                if own(vcpu, u16_at(&a, 0)) {
                    let (frames, max) = vcpu.domain.grants.lock().size();
                    a[4..8].copy_from_slice(&frames.to_le_bytes());
                    a[8..12].copy_from_slice(&max.to_le_bytes());
                    a[12..14].copy_from_slice(&status::OKAY.to_le_bytes());
                } else {
                    a[12..14].copy_from_slice(&status::PERMISSION_DENIED.to_le_bytes());
                }
                write_arg(vcpu, exec, at, &a)?;
            }
            Ok(0)
        }
        SETUP_TABLE => {
            // struct gnttab_setup_table { domid_t dom; uint32_t nr_frames; int16_t status;
            //                             XEN_GUEST_HANDLE(xen_pfn_t) frame_list; }  (24 bytes)
            for i in 0..count {
                let at = uop + i * 24;
                let mut a: [u8; 24] = read_arg(vcpu, exec, at)?;
                let code = if !own(vcpu, u16_at(&a, 0)) {
                    status::PERMISSION_DENIED
                } else {
                    match vcpu.domain.grants.lock().grow(u32_at(&a, 4)) {
                        // Auto-translated guests map the frames with XENMEM_add_to_physmap;
                        // the frame list stays untouched, as on Xen with HAP.
                        Ok(()) => status::OKAY,
                        Err(code) => code,
                    }
                };
                a[8..10].copy_from_slice(&code.to_le_bytes());
                write_arg(vcpu, exec, at, &a)?;
            }
            Ok(0)
        }
        SET_VERSION => {
            let a: [u8; 4] = read_arg(vcpu, exec, uop)?;
            match u32_at(&a, 0) {
                1 => Ok(0),
                // Version 2 tables are not offered.
                _ => Err(errno::EINVAL),
            }
        }
        GET_VERSION => {
            // struct gnttab_get_version { domid_t dom; uint16_t pad; uint32_t version; }
            let mut a: [u8; 8] = read_arg(vcpu, exec, uop)?;
            if !own(vcpu, u16_at(&a, 0)) {
                return Err(errno::EPERM);
            }
            a[4..8].copy_from_slice(&1u32.to_le_bytes());
            write_arg(vcpu, exec, uop, &a)?;
            Ok(0)
        }
        MAP_GRANT_REF => grant::map_batch(vcpu, exec, uop, count),
        UNMAP_GRANT_REF => grant::unmap_batch(vcpu, exec, uop, count),
        COPY => grant::copy_batch(vcpu, exec, uop, count),
        _ => Err(errno::ENOSYS),
    }
}

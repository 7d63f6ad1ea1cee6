//! `hvm_op`: HVM parameters (`public/hvm/hvm_op.h`, `params.h`).

use super::{errno, read_struct, write_struct, Outcome};
use crate::domain::DOMID_SELF;
use crate::vcpu::{Exec, Vcpu};
use xen_abi::hvm::*;

pub fn hvm_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    Outcome::from(op(vcpu, exec, args))
}

fn own(vcpu: &Vcpu, domid: u16) -> bool {
    domid == DOMID_SELF || domid == vcpu.domain.id
}

/// Parameters a guest may read about itself (Xen's `hvm_allow_get_param`).
fn guest_may_get(index: u32) -> bool {
    matches!(
        index,
        HVM_PARAM_CALLBACK_IRQ
            | HVM_PARAM_STORE_PFN
            | HVM_PARAM_STORE_EVTCHN
            | HVM_PARAM_CONSOLE_PFN
            | HVM_PARAM_CONSOLE_EVTCHN
            | HVM_PARAM_ALTP2M
            | HVM_PARAM_X87_FIP_WIDTH
    )
}

/// Parameters a guest may set for itself (Xen's `hvm_allow_set_param`).
fn guest_may_set(index: u32) -> bool {
    matches!(
        index,
        HVM_PARAM_CALLBACK_IRQ
            | HVM_PARAM_VM86_TSS
            | HVM_PARAM_VM86_TSS_SIZED
            | HVM_PARAM_ACPI_IOPORTS_LOCATION
            | HVM_PARAM_VM_GENERATION_ID_ADDR
            | HVM_PARAM_STORE_EVTCHN
            | HVM_PARAM_CONSOLE_EVTCHN
            | HVM_PARAM_X87_FIP_WIDTH
    )
}

/// -ESRCH for a domain that does not exist, `other` for another one.
fn not_own(domid: u16, other: i64) -> i64 {
    if crate::domain::get(domid).is_none() {
        errno::ESRCH
    } else {
        other
    }
}

fn op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    match args[0] {
        HVMOP_PAGETABLE_DYING => {
            // A hint for shadow paging. With nested paging Xen answers -EINVAL, and so do we.
            let a: XenHvmPagetableDying = read_struct(vcpu, exec, args[1])?;
            if !own(vcpu, a.domid) {
                return Err(not_own(a.domid, errno::EOPNOTSUPP));
            }
            Err(errno::EINVAL)
        }
        op @ (HVMOP_SET_PARAM | HVMOP_GET_PARAM) => {
            let mut a: XenHvmParam = read_struct(vcpu, exec, args[1])?;
            // A domU may only reach its own parameters; the control domain any domain's.
            let target = crate::domain::for_caller(&vcpu.domain, a.domid)?;
            // Xen's allow-lists bind a domain acting on itself only.
            let restricted = target.id == vcpu.domain.id;
            // HVM_PARAM_PAE_ENABLED is deprecated: Xen refuses it both ways.
            if a.index >= HVM_NR_PARAMS || a.index == HVM_PARAM_PAE_ENABLED {
                return Err(errno::EINVAL);
            }
            let index = a.index as usize;
            if op == HVMOP_GET_PARAM {
                if restricted && !guest_may_get(a.index) {
                    return Err(errno::EPERM);
                }
                a.value = target.hvm_param(index);
                write_struct(vcpu, exec, args[1], &a)?;
                return Ok(0);
            }
            if restricted && !guest_may_set(a.index) {
                return Err(errno::EPERM);
            }
            if a.index == HVM_PARAM_X87_FIP_WIDTH && !matches!(a.value, 0 | 2 | 4 | 8) {
                return Err(errno::EINVAL);
            }
            // The callback may name any kind (Xen never refuses it); only vector delivery
            // reaches a PVH guest, which `Domain::set_hvm_param` picks out.
            target.set_hvm_param(index, a.value);
            Ok(0)
        }
        _ => Err(errno::ENOSYS),
    }
}

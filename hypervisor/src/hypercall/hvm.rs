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

fn op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    match args[0] {
        HVMOP_PAGETABLE_DYING => {
            // A hint for shadow paging. With nested paging Xen answers -EINVAL, and so do we.
            let a: XenHvmPagetableDying = read_struct(vcpu, exec, args[1])?;
            if !own(vcpu, a.domid) {
                return Err(errno::ESRCH);
            }
            Err(errno::EINVAL)
        }
        op @ (HVMOP_SET_PARAM | HVMOP_GET_PARAM) => {
            let mut a: XenHvmParam = read_struct(vcpu, exec, args[1])?;
            // A domU may only reach its own parameters.
            if !own(vcpu, a.domid) {
                return Err(errno::EPERM);
            }
            if a.index >= HVM_NR_PARAMS {
                return Err(errno::EINVAL);
            }
            let index = a.index as usize;
            if op == HVMOP_GET_PARAM {
                a.value = vcpu.domain.hvm_param(index);
                write_struct(vcpu, exec, args[1], &a)?;
                return Ok(0);
            }
            match a.index {
                HVM_PARAM_CALLBACK_IRQ => {
                    let value = a.value;
                    if value != 0
                        && (callback_irq_type(value) != HVM_PARAM_CALLBACK_TYPE_VECTOR || (value & 0xff) < 0x10)
                    {
                        // Only vector delivery exists here (no emulated PCI or GSI routing).
                        return Err(errno::EINVAL);
                    }
                    vcpu.domain.set_hvm_param(index, value);
                    Ok(0)
                }
                // Other parameters are the toolstack's to set.
                _ => Err(errno::EPERM),
            }
        }
        _ => Err(errno::ENOSYS),
    }
}

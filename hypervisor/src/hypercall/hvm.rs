//! `hvm_op`: HVM parameters (`public/hvm/hvm_op.h`, `params.h`).

use super::{errno, Outcome};
use crate::domain::{DOMID_SELF, HVM_NR_PARAMS, HVM_PARAM_CALLBACK_IRQ};
use crate::guest_access::{copy_from_guest, copy_to_guest};
use crate::vcpu::{Exec, Vcpu};

const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;
const HVMOP_PAGETABLE_DYING: u64 = 9;
/// `struct xen_hvm_param { domid_t domid; uint16_t pad; uint32_t index; uint64_t value; }`
const PARAM_SIZE: usize = 16;
/// HVM_PARAM_CALLBACK_IRQ type "vector" (bits 63:56).
const CALLBACK_TYPE_VECTOR: u64 = 2;

pub fn hvm_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    let op = args[0];
    if op == HVMOP_PAGETABLE_DYING {
        // struct xen_hvm_pagetable_dying { domid_t domid; uint64_t gpa; }: a hint for
        // shadow paging. With nested paging Xen answers -EINVAL, and so do we.
        let mut raw = [0u8; 16];
        if copy_from_guest(&vcpu.domain.ram, exec, args[1], &mut raw).is_err() {
            return Outcome::error(errno::EFAULT);
        }
        let domid = u16::from_le_bytes([raw[0], raw[1]]);
        if domid != DOMID_SELF && domid != vcpu.domain.id {
            return Outcome::error(errno::ESRCH);
        }
        return Outcome::error(errno::EINVAL);
    }
    if op != HVMOP_SET_PARAM && op != HVMOP_GET_PARAM {
        return Outcome::error(errno::ENOSYS);
    }
    let mut raw = [0u8; PARAM_SIZE];
    if copy_from_guest(&vcpu.domain.ram, exec, args[1], &mut raw).is_err() {
        return Outcome::error(errno::EFAULT);
    }
    let domid = u16::from_le_bytes([raw[0], raw[1]]);
    let index = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
    let value = u64::from_le_bytes([raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]]);
    // A domU may only reach its own parameters.
    if domid != DOMID_SELF && domid != vcpu.domain.id {
        return Outcome::error(errno::EPERM);
    }
    if index >= HVM_NR_PARAMS {
        return Outcome::error(errno::EINVAL);
    }
    if op == HVMOP_GET_PARAM {
        raw[8..16].copy_from_slice(&vcpu.domain.hvm_param(index).to_le_bytes());
        return match copy_to_guest(&vcpu.domain.ram, exec, args[1], &raw) {
            Ok(()) => Outcome::done(0),
            Err(_) => Outcome::error(errno::EFAULT),
        };
    }
    match index {
        HVM_PARAM_CALLBACK_IRQ => {
            let vector_type = value >> 56;
            if value != 0 && (vector_type != CALLBACK_TYPE_VECTOR || (value & 0xff) < 0x10) {
                // Only vector delivery exists here (no emulated PCI or GSI routing yet).
                return Outcome::error(errno::EINVAL);
            }
            vcpu.domain.set_hvm_param(index, value);
            Outcome::done(0)
        }
        // Other parameters are the toolstack's to set.
        _ => Outcome::error(errno::EPERM),
    }
}

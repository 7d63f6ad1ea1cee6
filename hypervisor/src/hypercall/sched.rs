//! `sched_op`: yield, block, shutdown (`public/sched.h`).

use super::{errno, Outcome};
use crate::domain::ShutdownReason;
use crate::exit::Action;
use crate::guest_access::copy_from_guest;
use crate::vcpu::{Exec, Vcpu};

const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_BLOCK: u64 = 1;
const SCHEDOP_SHUTDOWN: u64 = 2;

pub fn sched_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    match args[0] {
        SCHEDOP_YIELD => Outcome { result: 0, action: Action::Yield },
        SCHEDOP_BLOCK => Outcome { result: 0, action: Action::Block },
        SCHEDOP_SHUTDOWN => {
            // struct sched_shutdown { unsigned int reason; }
            let mut raw = [0u8; 4];
            if copy_from_guest(&vcpu.domain.ram, exec, args[1], &mut raw).is_err() {
                return Outcome::error(errno::EFAULT);
            }
            let Some(reason) = ShutdownReason::from_guest(u32::from_le_bytes(raw)) else {
                return Outcome::error(errno::EINVAL);
            };
            vcpu.domain.shutdown(reason);
            Outcome { result: 0, action: Action::Stop }
        }
        _ => Outcome::error(errno::ENOSYS),
    }
}

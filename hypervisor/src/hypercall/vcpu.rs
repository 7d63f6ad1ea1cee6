//! `vcpu_op` (`public/vcpu.h`): vCPU state, timers, and the areas (vcpu_info, run state,
//! time) the guest asks Xen to keep current.

use super::{errno, read_arg, u32_at, u64_at, write_arg, Outcome};
use crate::arch::x86_64::time;
use crate::evtchn::two_level::{PageView, VCPU_INFO_SIZE};
use crate::exit::Action;
use crate::mm::phys_to_virt;
use crate::sched;
use crate::vcpu::{Exec, Vcpu};
use frame_alloc::FRAME_SIZE;

const UP: u64 = 1;
const DOWN: u64 = 2;
const IS_UP: u64 = 3;
const GET_RUNSTATE_INFO: u64 = 4;
const REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
const SET_PERIODIC_TIMER: u64 = 6;
const STOP_PERIODIC_TIMER: u64 = 7;
const SET_SINGLESHOT_TIMER: u64 = 8;
const STOP_SINGLESHOT_TIMER: u64 = 9;
const REGISTER_VCPU_INFO: u64 = 10;
const REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;

/// `VCPU_SSHOTTMR_future`: fail with -ETIME if the deadline already passed.
const SSHOTTMR_FUTURE: u32 = 1;
const ETIME: i64 = 62;
/// Xen refuses periodic timers faster than 1 ms.
const MIN_PERIOD_NS: u64 = 1_000_000;

pub fn vcpu_op(caller: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    let (cmd, id, arg) = (args[0], args[1] as u32, args[2]);
    let Some(target) = caller.domain.vcpu(id) else {
        return Outcome::error(errno::ENOENT);
    };
    let is_self = target.id == caller.id;
    let result: Result<i64, i64> = (|| match cmd {
        IS_UP => Ok(i64::from(!sched::is_down(&target) || is_self)),
        UP => {
            // Secondary vCPUs of PVH guests start through their local APIC (INIT/SIPI);
            // VCPUOP_up needs a context from VCPUOP_initialise, which we do not take.
            if sched::is_down(&target) {
                Err(errno::EINVAL)
            } else {
                Ok(0)
            }
        }
        DOWN => Err(errno::EINVAL),
        GET_RUNSTATE_INFO => {
            let record = target.runstate_record();
            write_arg(caller, exec, arg, &record)?;
            Ok(0)
        }
        REGISTER_RUNSTATE_MEMORY_AREA => {
            let addr = u64_at(&read_arg::<8>(caller, exec, arg)?, 0);
            target.set_runstate_area((addr != 0).then_some(addr));
            Ok(0)
        }
        REGISTER_VCPU_TIME_MEMORY_AREA => {
            let addr = u64_at(&read_arg::<8>(caller, exec, arg)?, 0);
            target.set_time_area((addr != 0).then_some(addr));
            Ok(0)
        }
        SET_PERIODIC_TIMER => {
            let period = u64_at(&read_arg::<8>(caller, exec, arg)?, 0);
            if period < MIN_PERIOD_NS {
                return Err(errno::EINVAL);
            }
            target.set_periodic(period);
            Ok(0)
        }
        STOP_PERIODIC_TIMER => {
            target.set_periodic(0);
            Ok(0)
        }
        SET_SINGLESHOT_TIMER | STOP_SINGLESHOT_TIMER if !is_self => Err(errno::EINVAL),
        SET_SINGLESHOT_TIMER => {
            // struct vcpu_set_singleshot_timer { uint64_t timeout_abs_ns; uint32_t flags; }
            let a: [u8; 16] = read_arg(caller, exec, arg)?;
            let (deadline, flags) = (u64_at(&a, 0), u32_at(&a, 8));
            if flags & SSHOTTMR_FUTURE != 0 && deadline < time::system_time_ns() {
                return Err(ETIME);
            }
            target.set_singleshot(deadline);
            Ok(0)
        }
        STOP_SINGLESHOT_TIMER => {
            target.set_singleshot(0);
            Ok(0)
        }
        REGISTER_VCPU_INFO => {
            // struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset; uint32_t rsvd; }
            let a: [u8; 16] = read_arg(caller, exec, arg)?;
            let (gfn, offset, reserved) = (u64_at(&a, 0), u64::from(u32_at(&a, 8)), u32_at(&a, 12));
            if reserved != 0 || offset + VCPU_INFO_SIZE as u64 > FRAME_SIZE || offset % 8 != 0 {
                return Err(errno::EINVAL);
            }
            if target.has_registered_vcpu_info() {
                return Err(errno::EINVAL);
            }
            let page =
                caller.domain.ram.translate(gfn.checked_mul(FRAME_SIZE).ok_or(errno::EINVAL)?).ok_or(errno::EINVAL)?;
            let new = PageView(phys_to_virt(page).as_u64() + offset);
            target.register_vcpu_info(new);
            Ok(0)
        }
        _ => Err(errno::ENOSYS),
    })();
    match result {
        Ok(v) => Outcome { result: v, action: Action::Continue },
        Err(e) => Outcome::error(e),
    }
}

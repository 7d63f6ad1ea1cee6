//! `vcpu_op` (`public/vcpu.h`): vCPU state, timers, and the areas (vcpu_info, run state,
//! time) the guest asks Xen to keep current.

use super::{errno, read_struct, write_struct, Outcome};
use crate::arch::x86_64::time;
use crate::domain::ShutdownReason;
use crate::evtchn::two_level::{PageView, VCPU_INFO_SIZE};
use crate::exit::Action;
use crate::mm::phys_to_virt;
use crate::sched;
use crate::vcpu::{Exec, Vcpu};
use frame_alloc::FRAME_SIZE;
use xen_abi::vcpu::*;

/// Xen refuses periodic timers faster than 1 ms.
const MIN_PERIOD_NS: u64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`: longer periods are refused.
const STIME_DELTA_MAX: u64 = u64::MAX >> 2;

pub fn vcpu_op(caller: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    // Xen takes `int cmd, unsigned int vcpuid`: the upper halves are ignored.
    let (cmd, id, arg) = (u64::from(args[0] as u32), args[1] as u32, args[2]);
    let Some(target) = caller.domain.vcpu(id) else {
        return Outcome::error(errno::ENOENT);
    };
    let is_self = target.id == caller.id;
    if cmd == VCPUOP_DOWN {
        return take_down(caller, &target);
    }
    let result: Result<i64, i64> = (|| match cmd {
        VCPUOP_IS_UP => Ok(i64::from(!sched::is_down(&target) || is_self)),
        // Xen wakes only a vCPU that has a context: one started by INIT/SIPI (or vCPU 0),
        // and later taken down. A vCPU still waiting for its STARTUP IPI has none.
        VCPUOP_UP if !target.is_initialised() => Err(errno::EINVAL),
        VCPUOP_UP => {
            target.cancel_stop();
            sched::make_runnable(&target);
            Ok(0)
        }
        VCPUOP_GET_RUNSTATE_INFO => {
            let record = VcpuRunstateInfo::from_bytes(&target.runstate_record());
            write_struct(caller, exec, arg, &record)?;
            Ok(0)
        }
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
            let addr = read_struct::<VcpuRegisterRunstateMemoryArea>(caller, exec, arg)?.addr;
            target.set_runstate_area((addr != 0).then_some(addr));
            Ok(0)
        }
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
            let addr = read_struct::<VcpuRegisterTimeMemoryArea>(caller, exec, arg)?.addr;
            target.set_time_area((addr != 0).then_some(addr));
            Ok(0)
        }
        VCPUOP_SET_PERIODIC_TIMER => {
            let period = read_struct::<VcpuSetPeriodicTimer>(caller, exec, arg)?.period_ns;
            if !(MIN_PERIOD_NS..=STIME_DELTA_MAX).contains(&period) {
                return Err(errno::EINVAL);
            }
            target.set_periodic(period);
            Ok(0)
        }
        VCPUOP_STOP_PERIODIC_TIMER => {
            target.set_periodic(0);
            Ok(0)
        }
        VCPUOP_SET_SINGLESHOT_TIMER | VCPUOP_STOP_SINGLESHOT_TIMER if !is_self => Err(errno::EINVAL),
        VCPUOP_SET_SINGLESHOT_TIMER => {
            let a: VcpuSetSingleshotTimer = read_struct(caller, exec, arg)?;
            let deadline = a.timeout_abs_ns;
            if a.flags & VCPU_SSHOTTMR_FUTURE != 0 && deadline < time::system_time_ns() {
                return Err(errno::ETIME);
            }
            target.set_singleshot(deadline);
            Ok(0)
        }
        VCPUOP_STOP_SINGLESHOT_TIMER => {
            target.set_singleshot(0);
            Ok(0)
        }
        VCPUOP_REGISTER_VCPU_INFO => {
            let a: VcpuRegisterVcpuInfo = read_struct(caller, exec, arg)?;
            let (gfn, offset, reserved) = (a.mfn, u64::from(a.offset), a.rsvd);
            // Xen ignores `rsvd` and answers -ENXIO for a bad offset (`map_vcpu_info`).
            let _ = reserved;
            if offset + VCPU_INFO_SIZE as u64 > FRAME_SIZE || !offset.is_multiple_of(8) {
                return Err(errno::ENXIO);
            }
            if target.has_registered_vcpu_info() {
                return Err(errno::EINVAL);
            }
            // Only the domain's own RAM: a page it maps from another domain could be freed
            // while we keep writing event and time data into it.
            let page =
                caller.domain.ram.owned_page(gfn.checked_mul(FRAME_SIZE).ok_or(errno::EINVAL)?).ok_or(errno::EINVAL)?;
            let new = PageView(phys_to_virt(page).as_u64() + offset);
            target.register_vcpu_info(new);
            Ok(0)
        }
        VCPUOP_INITIALISE => {
            let context: VcpuHvmContext = read_struct(caller, exec, arg)?;
            target.initialise(errno::EEXIST, || super::vcpu_context::start_state(&context))?;
            Ok(0)
        }
        // Both take no argument in Xen; a non-null one is refused before anything else.
        VCPUOP_GET_PHYSID | VCPUOP_SEND_NMI if arg != 0 => Err(errno::EINVAL),
        _ => Err(errno::ENOSYS),
    })();
    match result {
        Ok(v) => Outcome { result: v, action: Action::Continue },
        Err(e) => Outcome::error(e),
    }
}

/// `VCPUOP_down`. A vCPU taking itself down leaves the CPU at once and, when brought up
/// again, resumes after the hypercall with 0.
fn take_down(caller: &Vcpu, target: &Vcpu) -> Outcome {
    let domain = &caller.domain;
    let others_up = (0..domain.vcpu_count)
        .filter(|&other| other != target.id)
        .any(|other| domain.vcpu(other).is_some_and(|v| !sched::is_down(&v)));
    if !others_up {
        // Xen's rule: taking the last vCPU down powers the domain off.
        domain.shutdown(ShutdownReason::Poweroff);
        return Outcome { result: 0, action: Action::Stop };
    }
    if target.id == caller.id {
        return Outcome { result: 0, action: Action::Down };
    }
    sched::take_down(target);
    Outcome::done(0)
}

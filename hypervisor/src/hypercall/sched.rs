//! `sched_op` (`public/sched.h`): yield, block, poll, shutdown.

use super::{errno, read_arg, read_struct, u32_at, Outcome};
use crate::domain::{ShutdownReason, NO_SHUTDOWN_CODE};
use crate::exit::Action;
use crate::vcpu::{Exec, Vcpu};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use xen_abi::sched::*;

/// Xen refuses to poll more ports than this at once.
const MAX_POLL_PORTS: u32 = 128;

fn reason_at(vcpu: &Vcpu, exec: &Exec, gva: u64) -> Result<ShutdownReason, i64> {
    // Xen does not validate the reason: it keeps its low byte.
    Ok(ShutdownReason::from_code(read_struct::<SchedShutdown>(vcpu, exec, gva)?.reason as u8))
}

pub fn sched_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    match args[0] {
        SCHEDOP_YIELD => Outcome { result: 0, action: Action::Yield },
        SCHEDOP_BLOCK => Outcome { result: 0, action: Action::Block },
        SCHEDOP_SHUTDOWN => match reason_at(vcpu, exec, args[1]) {
            Ok(reason) => {
                vcpu.domain.shutdown(reason);
                Outcome { result: 0, action: Action::Stop }
            }
            Err(e) => Outcome::error(e),
        },
        // Xen keeps the first code and uses it for the shutdown that follows.
        SCHEDOP_SHUTDOWN_CODE => match reason_at(vcpu, exec, args[1]) {
            Ok(reason) => {
                let _ = vcpu.domain.shutdown_code.compare_exchange(
                    NO_SHUTDOWN_CODE,
                    reason.code(),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
                Outcome::done(0)
            }
            Err(e) => Outcome::error(e),
        },
        SCHEDOP_POLL => poll(vcpu, exec, args[1]),
        // Shutting down other domains is for the privileged domain.
        SCHEDOP_REMOTE_SHUTDOWN => Outcome::from(remote_shutdown(vcpu, exec, args[1])),
        SCHEDOP_PIN_OVERRIDE => Outcome::error(errno::EPERM),
        _ => Outcome::error(errno::ENOSYS),
    }
}

/// `SCHEDOP_remote_shutdown`: the control domain shuts another domain down. Xen looks the
/// domain up first (-ESRCH), then checks privilege (-EPERM, also for the caller itself).
fn remote_shutdown(vcpu: &Vcpu, exec: &Exec, arg: u64) -> Result<i64, i64> {
    let a: SchedRemoteShutdown = read_struct(vcpu, exec, arg)?;
    let target = crate::domain::get(a.domain_id).ok_or(errno::ESRCH)?;
    if !vcpu.domain.is_privileged() || target.id == vcpu.domain.id {
        return Err(errno::EPERM);
    }
    if a.reason > xen_abi::sched::SHUTDOWN_MAX {
        return Err(errno::EINVAL);
    }
    target.shutdown(crate::domain::ShutdownReason::from_code(a.reason as u8));
    Ok(0)
}

/// `SCHEDOP_poll`: sleep until one of the ports is pending or the timeout passes.
fn poll(vcpu: &Vcpu, exec: &Exec, arg: u64) -> Outcome {
    let a: SchedPoll = match read_struct(vcpu, exec, arg) {
        Ok(a) => a,
        Err(e) => return Outcome::error(e),
    };
    let (list, count, timeout) = (a.ports, a.nr_ports, a.timeout);
    if count > MAX_POLL_PORTS {
        return Outcome::error(errno::EINVAL);
    }
    let mut ports = Vec::with_capacity(count as usize);
    for i in 0..u64::from(count) {
        match read_arg::<4>(vcpu, exec, list + i * 4) {
            Ok(raw) => {
                let port = u32_at(&raw, 0);
                if vcpu.domain.evtchn.lock().binding(port).is_none() {
                    return Outcome::error(errno::EINVAL);
                }
                ports.push(port);
            }
            Err(e) => return Outcome::error(e),
        }
    }
    let interruptible = exec.regs.rflags & crate::virt::RFLAGS_IF != 0;
    if vcpu.start_poll(ports, timeout, interruptible) {
        Outcome { result: 0, action: Action::Block }
    } else {
        Outcome::done(0)
    }
}

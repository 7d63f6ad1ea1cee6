//! `sched_op` (`public/sched.h`): yield, block, poll, shutdown.

use super::{errno, read_arg, read_struct, u32_at, Outcome};
use crate::domain::ShutdownReason;
use crate::exit::Action;
use crate::vcpu::{Exec, Vcpu};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use xen_abi::sched::*;

/// Xen refuses to poll more ports than this at once.
const MAX_POLL_PORTS: u32 = 128;

fn reason_at(vcpu: &Vcpu, exec: &Exec, gva: u64) -> Result<ShutdownReason, i64> {
    ShutdownReason::from_guest(read_struct::<SchedShutdown>(vcpu, exec, gva)?.reason).ok_or(errno::EINVAL)
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
        SCHEDOP_SHUTDOWN_CODE => match reason_at(vcpu, exec, args[1]) {
            Ok(reason) => {
                vcpu.domain.shutdown_code.store(reason as u8, Ordering::Release);
                Outcome::done(0)
            }
            Err(e) => Outcome::error(e),
        },
        SCHEDOP_POLL => poll(vcpu, exec, args[1]),
        // Shutting down other domains is for the privileged domain.
        SCHEDOP_REMOTE_SHUTDOWN => Outcome::error(errno::EPERM),
        _ => Outcome::error(errno::ENOSYS),
    }
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
    if vcpu.start_poll(ports, timeout) {
        Outcome { result: 0, action: Action::Block }
    } else {
        Outcome::done(0)
    }
}

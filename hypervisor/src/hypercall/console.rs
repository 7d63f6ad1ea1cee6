//! `console_io`: guest writes to the hypervisor console, and the control domain's reads of
//! what was typed on it (`public/xen.h` CONSOLEIO_*).

use super::{errno, Outcome};
use crate::guest_access::copy_from_guest;
use crate::vcpu::{Exec, Vcpu};

use crate::guest_access::copy_to_guest;
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
/// Bytes copied per step: keeps the copy buffer on the stack small.
const CHUNK: usize = 128;
/// A single call prints at most this much; the rest of a larger count is dropped.
const MAX_WRITE: usize = 64 * 1024;

pub fn console_io(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Outcome {
    match args[0] {
        CONSOLEIO_WRITE => {
            // Xen takes the count as an unsigned int.
            let count = (args[1] as u32 as usize).min(MAX_WRITE);
            let mut buf = [0u8; CHUNK];
            let mut done = 0;
            while done < count {
                let n = CHUNK.min(count - done);
                if copy_from_guest(&vcpu.domain.ram, exec, args[2] + done as u64, &mut buf[..n]).is_err() {
                    return Outcome::error(errno::EFAULT);
                }
                vcpu.domain.console_write(&buf[..n]);
                done += n;
            }
            Outcome::done(0)
        }
        // Everything but writing is for the privileged domain only (Xen's console policy
        // refuses before looking at the command).
        _ if !vcpu.domain.is_privileged() => Outcome::error(errno::EPERM),
        CONSOLEIO_READ => {
            let mut buf = [0u8; CHUNK];
            let want = (args[1] as u32 as usize).min(CHUNK);
            let n = crate::console::read_input(&mut buf[..want]);
            if copy_to_guest(&vcpu.domain.ram, exec, args[2], &buf[..n]).is_err() {
                return Outcome::error(errno::EFAULT);
            }
            Outcome::done(n as i64)
        }
        _ => Outcome::error(errno::EINVAL),
    }
}

/// Collects console input (CPU 0, between slices) and tells the control domain
/// (`VIRQ_CONSOLE`) when some arrived.
pub fn poll_serial_input() {
    if crate::console::poll_input() {
        if let Some(dom0) = crate::domain::get(0).filter(|d| d.is_privileged()) {
            crate::evtchn::send_virq(&dom0, 0, xen_abi::xen::VIRQ_CONSOLE);
        }
    }
}

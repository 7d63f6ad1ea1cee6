//! `console_io`: guest writes to the hypervisor console (`public/xen.h` CONSOLEIO_*).

use super::{errno, Outcome};
use crate::guest_access::copy_from_guest;
use crate::vcpu::{Exec, Vcpu};

use xen_abi::console::CONSOLEIO_WRITE;
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
        _ => Outcome::error(errno::EPERM),
    }
}

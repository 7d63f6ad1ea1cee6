//! `event_channel_op` (`public/event_channel.h`): argument structures in, results out;
//! the semantics live in `crate::evtchn`.

use super::{errno, read_arg, u16_at, u32_at, write_arg};
use crate::evtchn::{self, Binding};
use crate::vcpu::{Exec, Vcpu};

const BIND_INTERDOMAIN: u64 = 0;
const BIND_VIRQ: u64 = 1;
const BIND_PIRQ: u64 = 2;
const CLOSE: u64 = 3;
const SEND: u64 = 4;
const STATUS: u64 = 5;
const ALLOC_UNBOUND: u64 = 6;
const BIND_IPI: u64 = 7;
const BIND_VCPU: u64 = 8;
const UNMASK: u64 = 9;
const RESET: u64 = 10;

/// `EVTCHNSTAT_*`.
mod stat {
    pub const CLOSED: u32 = 0;
    pub const UNBOUND: u32 = 1;
    pub const INTERDOMAIN: u32 = 2;
    pub const VIRQ: u32 = 4;
    pub const IPI: u32 = 5;
}

pub fn event_channel_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let (op, arg) = (args[0], args[1]);
    let dom = &*vcpu.domain;
    match op {
        ALLOC_UNBOUND => {
            // struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; }
            let mut a: [u8; 8] = read_arg(vcpu, exec, arg)?;
            let port = evtchn::alloc_unbound(dom, u16_at(&a, 0), u16_at(&a, 2))?;
            a[4..8].copy_from_slice(&port.to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
        }
        BIND_INTERDOMAIN => {
            // struct evtchn_bind_interdomain { domid_t remote_dom; port remote_port; port local_port; }
            let mut a: [u8; 12] = read_arg(vcpu, exec, arg)?;
            let port = evtchn::bind_interdomain(dom, u16_at(&a, 0), u32_at(&a, 4))?;
            a[8..12].copy_from_slice(&port.to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
        }
        BIND_VIRQ => {
            // struct evtchn_bind_virq { uint32_t virq; uint32_t vcpu; port port; }
            let mut a: [u8; 12] = read_arg(vcpu, exec, arg)?;
            let port = evtchn::bind_virq(dom, u32_at(&a, 0), u32_at(&a, 4))?;
            a[8..12].copy_from_slice(&port.to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
        }
        BIND_IPI => {
            // struct evtchn_bind_ipi { uint32_t vcpu; port port; }
            let mut a: [u8; 8] = read_arg(vcpu, exec, arg)?;
            let port = evtchn::bind_ipi(dom, u32_at(&a, 0))?;
            a[4..8].copy_from_slice(&port.to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
        }
        // No physical IRQs are routed to domUs.
        BIND_PIRQ => return Err(errno::EPERM),
        CLOSE => evtchn::close(dom, u32_at(&read_arg::<4>(vcpu, exec, arg)?, 0))?,
        SEND => evtchn::send(dom, u32_at(&read_arg::<4>(vcpu, exec, arg)?, 0))?,
        UNMASK => evtchn::unmask(dom, u32_at(&read_arg::<4>(vcpu, exec, arg)?, 0))?,
        BIND_VCPU => {
            let a: [u8; 8] = read_arg(vcpu, exec, arg)?;
            evtchn::bind_vcpu(dom, u32_at(&a, 0), u32_at(&a, 4))?;
        }
        RESET => evtchn::reset(dom, u16_at(&read_arg::<2>(vcpu, exec, arg)?, 0))?,
        STATUS => {
            // struct evtchn_status { domid_t dom; port port; uint32_t status; uint32_t vcpu;
            //                        union { ... } u; }  (24 bytes)
            let mut a: [u8; 24] = read_arg(vcpu, exec, arg)?;
            let status = evtchn::status(dom, u16_at(&a, 0), u32_at(&a, 4))?;
            a[16..24].fill(0);
            let code = match status.binding {
                Binding::Free => stat::CLOSED,
                Binding::Unbound { remote } => {
                    a[16..18].copy_from_slice(&remote.to_le_bytes());
                    stat::UNBOUND
                }
                Binding::Interdomain { remote, remote_port } => {
                    a[16..18].copy_from_slice(&remote.to_le_bytes());
                    a[20..24].copy_from_slice(&remote_port.to_le_bytes());
                    stat::INTERDOMAIN
                }
                // A hypervisor-served port looks like a connection to the console backend.
                Binding::Hypervisor(_) => stat::INTERDOMAIN,
                Binding::Virq { virq } => {
                    a[16..20].copy_from_slice(&virq.to_le_bytes());
                    stat::VIRQ
                }
                Binding::Ipi => stat::IPI,
            };
            a[8..12].copy_from_slice(&code.to_le_bytes());
            a[12..16].copy_from_slice(&status.vcpu.to_le_bytes());
            write_arg(vcpu, exec, arg, &a)?;
        }
        // FIFO event channels are not offered: guests fall back to the 2-level ABI.
        _ => return Err(errno::ENOSYS),
    }
    Ok(0)
}

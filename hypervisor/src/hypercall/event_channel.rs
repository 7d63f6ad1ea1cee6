//! `event_channel_op` (`public/event_channel.h`): argument structures in, results out;
//! the semantics live in `crate::evtchn`.

use super::{errno, read_struct, write_struct};
use crate::evtchn::{self, Binding};
use crate::vcpu::{Exec, Vcpu};
use xen_abi::event_channel::*;

pub fn event_channel_op(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let (op, arg) = (args[0], args[1]);
    let dom = &*vcpu.domain;
    match op {
        EVTCHNOP_ALLOC_UNBOUND => {
            let mut a: EvtchnAllocUnbound = read_struct(vcpu, exec, arg)?;
            a.port = evtchn::alloc_unbound(&vcpu.domain, a.dom, a.remote_dom)?;
            write_struct(vcpu, exec, arg, &a)?;
        }
        EVTCHNOP_BIND_INTERDOMAIN => {
            let mut a: EvtchnBindInterdomain = read_struct(vcpu, exec, arg)?;
            a.local_port = evtchn::bind_interdomain(dom, a.remote_dom, a.remote_port)?;
            write_struct(vcpu, exec, arg, &a)?;
        }
        EVTCHNOP_BIND_VIRQ => {
            let mut a: EvtchnBindVirq = read_struct(vcpu, exec, arg)?;
            a.port = evtchn::bind_virq(dom, a.virq, a.vcpu)?;
            write_struct(vcpu, exec, arg, &a)?;
        }
        EVTCHNOP_BIND_IPI => {
            let mut a: EvtchnBindIpi = read_struct(vcpu, exec, arg)?;
            a.port = evtchn::bind_ipi(dom, a.vcpu)?;
            write_struct(vcpu, exec, arg, &a)?;
        }
        // No physical IRQs are routed to domUs.
        EVTCHNOP_BIND_PIRQ => return Err(errno::EPERM),
        EVTCHNOP_CLOSE => evtchn::close(dom, read_struct::<EvtchnClose>(vcpu, exec, arg)?.port)?,
        EVTCHNOP_SEND => evtchn::send(dom, read_struct::<EvtchnSend>(vcpu, exec, arg)?.port)?,
        EVTCHNOP_UNMASK => evtchn::unmask(dom, read_struct::<EvtchnUnmask>(vcpu, exec, arg)?.port)?,
        EVTCHNOP_BIND_VCPU => {
            let a: EvtchnBindVcpu = read_struct(vcpu, exec, arg)?;
            evtchn::bind_vcpu(dom, a.port, a.vcpu)?;
        }
        EVTCHNOP_RESET => evtchn::reset(dom, read_struct::<EvtchnReset>(vcpu, exec, arg)?.dom)?,
        EVTCHNOP_STATUS => {
            let mut a: EvtchnStatus = read_struct(vcpu, exec, arg)?;
            let status = evtchn::status(dom, a.dom, a.port)?;
            (a.status, a.u) = match status.binding {
                Binding::Free | Binding::Reserved => (EVTCHNSTAT_CLOSED, EvtchnStatusU::default()),
                Binding::Unbound { remote } => (EVTCHNSTAT_UNBOUND, EvtchnStatusU::from_unbound(remote)),
                Binding::Interdomain { remote, remote_port } => {
                    (EVTCHNSTAT_INTERDOMAIN, EvtchnStatusU::from_interdomain(remote, remote_port))
                }
                // A hypervisor-served port looks like a connection to a backend domain.
                Binding::Hypervisor(_) => (EVTCHNSTAT_INTERDOMAIN, EvtchnStatusU::default()),
                Binding::Virq { virq } => (EVTCHNSTAT_VIRQ, EvtchnStatusU::from_virq(virq)),
                Binding::Ipi => (EVTCHNSTAT_IPI, EvtchnStatusU::default()),
            };
            a.vcpu = status.vcpu;
            write_struct(vcpu, exec, arg, &a)?;
        }
        // FIFO event channels are not offered: guests fall back to the 2-level ABI.
        _ => return Err(errno::ENOSYS),
    }
    Ok(0)
}

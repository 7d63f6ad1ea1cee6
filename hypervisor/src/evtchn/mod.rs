//! Event channels: each domain's table of ports and what each is bound to (another
//! domain's port, a virtual IRQ, an IPI between its own vCPUs, or a service of the
//! hypervisor such as the console ring), and the operations of `EVTCHNOP_*` with Xen's
//! semantics and error codes (`xen/common/event_channel.c`). Delivery uses the 2-level
//! ABI ([`two_level`]).

pub mod two_level;

use crate::domain::{self, DomId, Domain, DOMID_SELF};
use crate::hypercall::errno::{EEXIST, EINVAL, ENOENT, ENOSPC, EPERM, ESRCH};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use two_level::NR_CHANNELS;

/// Ports a domU may use (xl's default `max_event_channels`); port 0 is never valid.
pub const DEFAULT_MAX_PORT: u32 = 1023;

/// `VIRQ_*` (`public/xen.h`).
pub mod virq {
    pub use xen_abi::xen::{NR_VIRQS as NR, VIRQ_DEBUG as DEBUG, VIRQ_TIMER as TIMER};
    use xen_abi::xen::{VIRQ_XENOPROF, VIRQ_XENPMU};

    /// Per-vCPU VIRQs may be bound on any vCPU; the others only on vCPU 0.
    pub fn is_per_vcpu(virq: u32) -> bool {
        matches!(virq, TIMER | DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
    }
}

/// Hypervisor-provided services a port can be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The boot-time console ring, drained by the hypervisor.
    Console,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Free,
    /// Port 0: valid, never allocated.
    Reserved,
    /// Allocated, waiting for `remote` to bind to it.
    Unbound {
        remote: DomId,
    },
    Interdomain {
        remote: DomId,
        remote_port: u32,
    },
    Virq {
        virq: u32,
    },
    Ipi,
    Hypervisor(Service),
}

#[derive(Debug, Clone, Copy)]
struct Port {
    binding: Binding,
    notify_vcpu: u32,
}

const FREE: Port = Port { binding: Binding::Free, notify_vcpu: 0 };
/// Ports become valid in buckets of this many, as in Xen (`EVTCHNS_PER_BUCKET` on x86-64).
const BUCKET: usize = 64;

/// One domain's ports.
#[derive(Debug)]
pub struct PortTable {
    ports: Vec<Port>,
    max_port: u32,
    /// virq_to_port[vcpu][virq], 0 = unbound.
    virq_ports: Vec<[u32; virq::NR as usize]>,
}

/// `EVTCHNSTAT_*` with the details `EVTCHNOP_status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub binding: Binding,
    pub vcpu: u32,
}

impl PortTable {
    pub fn new(vcpus: u32, max_port: u32) -> Self {
        let mut ports = vec![FREE; BUCKET];
        ports[0].binding = Binding::Reserved;
        PortTable {
            ports,
            max_port: max_port.min(NR_CHANNELS - 1),
            virq_ports: vec![[0; virq::NR as usize]; vcpus as usize],
        }
    }

    /// A valid port (Xen's `port_is_valid`: inside an allocated bucket and the limit).
    fn get(&self, port: u32) -> Result<&Port, i64> {
        match self.ports.get(port as usize) {
            Some(p) if port <= self.max_port => Ok(p),
            _ => Err(EINVAL),
        }
    }

    fn get_mut(&mut self, port: u32) -> Result<&mut Port, i64> {
        match self.ports.get_mut(port as usize) {
            Some(p) if port <= self.max_port => Ok(p),
            _ => Err(EINVAL),
        }
    }

    /// A port that is valid and bound to something (not free, not port 0).
    fn get_bound(&self, port: u32) -> Result<&Port, i64> {
        self.get(port).and_then(|p| match p.binding {
            Binding::Free | Binding::Reserved => Err(EINVAL),
            _ => Ok(p),
        })
    }

    /// The lowest free port, adding a bucket when all are taken.
    fn allocate(&mut self, binding: Binding, notify_vcpu: u32) -> Result<u32, i64> {
        let port = match self.ports.iter().position(|p| p.binding == Binding::Free) {
            Some(i) if i as u32 <= self.max_port => i as u32,
            Some(_) => return Err(ENOSPC),
            None if (self.ports.len() as u32) <= self.max_port => {
                let first = self.ports.len();
                self.ports.resize(first + BUCKET, FREE);
                first as u32
            }
            None => return Err(ENOSPC),
        };
        self.ports[port as usize] = Port { binding, notify_vcpu };
        Ok(port)
    }

    fn vcpu_count(&self) -> u32 {
        self.virq_ports.len() as u32
    }

    pub fn binding(&self, port: u32) -> Option<Binding> {
        self.get_bound(port).ok().map(|p| p.binding)
    }

    pub fn notify_vcpu(&self, port: u32) -> u32 {
        self.get(port).map(|p| p.notify_vcpu).unwrap_or(0)
    }

    pub fn virq_port(&self, vcpu: u32, virq: u32) -> Option<u32> {
        let port = *self.virq_ports.get(vcpu as usize)?.get(virq as usize)?;
        (port != 0).then_some(port)
    }

    /// Ports in use.
    pub fn open_ports(&self) -> impl Iterator<Item = u32> + '_ {
        self.ports
            .iter()
            .enumerate()
            .filter(|(_, p)| !matches!(p.binding, Binding::Free | Binding::Reserved))
            .map(|(i, _)| i as u32)
    }
}

fn resolve(dom: &Domain, id: DomId) -> DomId {
    if id == DOMID_SELF {
        dom.id
    } else {
        id
    }
}

/// Xen's check for operations on another domain's channels: -ESRCH if it does not exist,
/// -EPERM if it does (only the privileged domain may act for others).
fn only_self(caller: &Domain, dom: DomId) -> Result<(), i64> {
    let target = resolve(caller, dom);
    if target == caller.id {
        Ok(())
    } else if domain::get(target).is_none() {
        Err(ESRCH)
    } else {
        Err(EPERM)
    }
}

/// `EVTCHNOP_alloc_unbound`: a port in `dom` that `remote` may bind to.
/// The control domain may allocate in any domain (the builder's console and xenstore ports).
pub fn alloc_unbound(caller: &Arc<Domain>, dom: DomId, remote: DomId) -> Result<u32, i64> {
    let owner = domain::for_caller(caller, dom)?;
    let remote = resolve(caller, remote);
    let port = owner.evtchn.lock().allocate(Binding::Unbound { remote }, 0)?;
    Ok(port)
}

/// `EVTCHNOP_bind_interdomain`: connects a new local port to `remote_port` of `remote`,
/// which must be unbound and offered to the caller.
pub fn bind_interdomain(local: &Domain, remote: DomId, remote_port: u32) -> Result<u32, i64> {
    let remote_id = resolve(local, remote);
    let remote_dom = if remote_id == local.id { None } else { Some(domain::get(remote_id).ok_or(ESRCH)?) };
    let remote_ref: &Domain = remote_dom.as_deref().unwrap_or(local);
    let local_port = if remote_id == local.id {
        let mut table = local.evtchn.lock();
        match table.get(remote_port)?.binding {
            Binding::Unbound { remote } if remote == local.id => {}
            _ => return Err(EINVAL),
        }
        let port = table.allocate(Binding::Interdomain { remote: local.id, remote_port }, 0)?;
        table.get_mut(remote_port)?.binding = Binding::Interdomain { remote: local.id, remote_port: port };
        port
    } else {
        // Lock both tables, lower domain id first, so two binds cannot deadlock.
        let (mut lt, mut rt) = if local.id < remote_id {
            let l = local.evtchn.lock();
            (l, remote_ref.evtchn.lock())
        } else {
            let r = remote_ref.evtchn.lock();
            (local.evtchn.lock(), r)
        };
        match rt.get(remote_port)?.binding {
            Binding::Unbound { remote } if remote == local.id => {}
            _ => return Err(EINVAL),
        }
        let port = lt.allocate(Binding::Interdomain { remote: remote_id, remote_port }, 0)?;
        rt.get_mut(remote_port)?.binding = Binding::Interdomain { remote: local.id, remote_port: port };
        port
    };
    // As Xen does: the new local end starts with an event, so nothing sent before is lost.
    notify(local, local_port);
    Ok(local_port)
}

/// `EVTCHNOP_bind_virq`.
pub fn bind_virq(dom: &Domain, virq: u32, vcpu: u32) -> Result<u32, i64> {
    if virq >= virq::NR || (!virq::is_per_vcpu(virq) && vcpu != 0) {
        return Err(EINVAL);
    }
    let mut table = dom.evtchn.lock();
    if vcpu >= table.vcpu_count() {
        return Err(ENOENT);
    }
    if table.virq_ports[vcpu as usize][virq as usize] != 0 {
        return Err(EEXIST);
    }
    let port = table.allocate(Binding::Virq { virq }, vcpu)?;
    table.virq_ports[vcpu as usize][virq as usize] = port;
    Ok(port)
}

/// `EVTCHNOP_bind_ipi`.
pub fn bind_ipi(dom: &Domain, vcpu: u32) -> Result<u32, i64> {
    let mut table = dom.evtchn.lock();
    if vcpu >= table.vcpu_count() {
        return Err(ENOENT);
    }
    table.allocate(Binding::Ipi, vcpu)
}

/// A port the hypervisor itself serves (the guest sees an interdomain-like channel).
pub fn bind_service(dom: &Domain, service: Service) -> Result<u32, i64> {
    dom.evtchn.lock().allocate(Binding::Hypervisor(service), 0)
}

/// `EVTCHNOP_close`.
pub fn close(dom: &Domain, port: u32) -> Result<(), i64> {
    let binding = dom.evtchn.lock().get_bound(port)?.binding;
    match binding {
        Binding::Interdomain { remote, remote_port } if remote != dom.id => {
            // The other end goes back to waiting for us, as in Xen.
            if let Some(other) = domain::get(remote) {
                let (mut lt, mut rt) = if dom.id < remote {
                    let l = dom.evtchn.lock();
                    (l, other.evtchn.lock())
                } else {
                    let r = other.evtchn.lock();
                    (dom.evtchn.lock(), r)
                };
                if let Ok(p) = rt.get_mut(remote_port) {
                    if p.binding == (Binding::Interdomain { remote: dom.id, remote_port: port }) {
                        p.binding = Binding::Unbound { remote: dom.id };
                    }
                }
                free_port(dom, &mut lt, port);
                return Ok(());
            }
        }
        Binding::Interdomain { remote_port, .. } => {
            let mut table = dom.evtchn.lock();
            if let Ok(p) = table.get_mut(remote_port) {
                p.binding = Binding::Unbound { remote: dom.id };
            }
            free_port(dom, &mut table, port);
            return Ok(());
        }
        Binding::Virq { virq } => {
            let mut table = dom.evtchn.lock();
            let vcpu = table.get(port)?.notify_vcpu as usize;
            if let Some(slot) = table.virq_ports.get_mut(vcpu).and_then(|v| v.get_mut(virq as usize)) {
                *slot = 0;
            }
            free_port(dom, &mut table, port);
            return Ok(());
        }
        _ => {}
    }
    let mut table = dom.evtchn.lock();
    free_port(dom, &mut table, port);
    Ok(())
}

fn free_port(dom: &Domain, table: &mut PortTable, port: u32) {
    if let Ok(p) = table.get_mut(port) {
        *p = FREE;
    }
    dom.event_bitmaps().clear_pending(port);
}

/// `EVTCHNOP_send`.
pub fn send(dom: &Domain, port: u32) -> Result<(), i64> {
    let binding = dom.evtchn.lock().get_bound(port)?.binding;
    match binding {
        Binding::Interdomain { remote, remote_port } => {
            if remote == dom.id {
                notify(dom, remote_port);
            } else if let Some(other) = domain::get(remote) {
                notify(&other, remote_port);
            }
            Ok(())
        }
        Binding::Ipi => {
            notify(dom, port);
            Ok(())
        }
        Binding::Hypervisor(service) => {
            dom.service_kicked(service);
            Ok(())
        }
        // Xen drops sends on an unbound port silently.
        Binding::Unbound { .. } => Ok(()),
        Binding::Free | Binding::Reserved | Binding::Virq { .. } => Err(EINVAL),
    }
}

/// Raises an event on `port` of `dom` (its notify vCPU gets the upcall).
pub fn notify(dom: &Domain, port: u32) {
    let vcpu = dom.evtchn.lock().notify_vcpu(port);
    if dom.event_bitmaps().set_pending(port, dom.vcpu_info(vcpu)) {
        dom.kick_vcpu(vcpu);
    }
    dom.wake_pollers(port);
}

/// Raises `virq` for `vcpu` of `dom`, if the guest bound it.
pub fn send_virq(dom: &Domain, vcpu: u32, virq: u32) {
    let port = dom.evtchn.lock().virq_port(vcpu, virq);
    if let Some(port) = port {
        notify(dom, port);
    }
}

/// `EVTCHNOP_status`.
pub fn status(caller: &Domain, dom: DomId, port: u32) -> Result<Status, i64> {
    // Xen's order: the domain must exist, the port must be valid in it, then permission.
    let target = resolve(caller, dom);
    if target != caller.id {
        let other = domain::get(target).ok_or(ESRCH)?;
        other.evtchn.lock().get(port)?;
        return Err(EPERM);
    }
    let table = caller.evtchn.lock();
    let p = *table.get(port)?;
    Ok(Status { binding: p.binding, vcpu: p.notify_vcpu })
}

/// `EVTCHNOP_unmask`.
pub fn unmask(dom: &Domain, port: u32) -> Result<(), i64> {
    let vcpu = dom.evtchn.lock().get(port)?.notify_vcpu;
    if dom.event_bitmaps().unmask(port, dom.vcpu_info(vcpu)) {
        dom.kick_vcpu(vcpu);
    }
    Ok(())
}

/// `EVTCHNOP_bind_vcpu`: moves where a port's events go.
pub fn bind_vcpu(dom: &Domain, port: u32, vcpu: u32) -> Result<(), i64> {
    {
        let mut table = dom.evtchn.lock();
        if vcpu >= table.vcpu_count() {
            return Err(ENOENT);
        }
        let p = table.get_mut(port)?;
        match p.binding {
            Binding::Unbound { .. } | Binding::Interdomain { .. } | Binding::Hypervisor(_) => {}
            Binding::Virq { virq } if !virq::is_per_vcpu(virq) => {}
            _ => return Err(EINVAL),
        }
        p.notify_vcpu = vcpu;
    }
    if dom.event_bitmaps().redeliver(port, dom.vcpu_info(vcpu)) {
        dom.kick_vcpu(vcpu);
    }
    Ok(())
}

/// `EVTCHNOP_reset`: closes every port of `dom`.
pub fn reset(caller: &Domain, dom: DomId) -> Result<(), i64> {
    only_self(caller, dom)?;
    let ports: Vec<u32> = caller.evtchn.lock().open_ports().collect();
    for port in ports {
        let _ = close(caller, port);
    }
    Ok(())
}

/// Closes every port when a domain is destroyed, so peers see their ends unbound.
pub fn close_all(dom: &Domain) {
    let ports: Vec<u32> = dom.evtchn.lock().open_ports().collect();
    for port in ports {
        let _ = close(dom, port);
    }
}

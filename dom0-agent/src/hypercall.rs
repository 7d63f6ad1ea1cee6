//! Hypercalls to Ferrovisor (Xen's ABI): `vmmcall` on AMD/Hygon, `vmcall` elsewhere, as
//! Linux chooses; `rax` = number, arguments in `rdi`, `rsi`, `rdx`, `r10`, `r8`, result in
//! `rax` (negative Xen errno on failure). Arguments that are structures are passed as the
//! address of a local copy (its bytes); the hypervisor walks our page tables to reach it
//! and writes results back there. The `asm!` blocks are not `nomem`, so the compiler
//! assumes they read and write memory whose address escaped into them.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use xen_abi::ctl::{Domctl, Sysctl, CTL_INTERFACE_VERSION};
use xen_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindVirq, EvtchnClose, EvtchnSend, EVTCHNOP_ALLOC_UNBOUND,
    EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE, EVTCHNOP_SEND,
};
use xen_abi::hvm::{XenHvmParam, HVMOP_SET_PARAM};
use xen_abi::memory::{
    XenAddToPhysmap, XenAddToPhysmapBatch, XenRemoveFromPhysmap, XENMAPSPACE_GMFN_FOREIGN, XENMAPSPACE_SHARED_INFO,
    XENMEM_ADD_TO_PHYSMAP, XENMEM_ADD_TO_PHYSMAP_BATCH, XENMEM_REMOVE_FROM_PHYSMAP,
};
use xen_abi::sched::{SchedShutdown, SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN};
use xen_abi::xen::{
    DOMID_SELF, HYPERVISOR_CONSOLE_IO, HYPERVISOR_DOMCTL, HYPERVISOR_EVENT_CHANNEL_OP, HYPERVISOR_HVM_OP,
    HYPERVISOR_MEMORY_OP, HYPERVISOR_SCHED_OP, HYPERVISOR_SYSCTL,
};
use xen_abi::DomId;

static USE_VMMCALL: AtomicBool = AtomicBool::new(false);

/// A failed hypercall: the (positive) Xen errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i64);

impl core::fmt::Display for Errno {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "errno {}", self.0)
    }
}

/// Picks the hypercall instruction from the CPU vendor. Call once, first.
pub fn init() {
    let vendor = crate::arch::vendor();
    USE_VMMCALL.store(&vendor == b"AuthenticAMD" || &vendor == b"HygonGenuine", Ordering::Relaxed);
}

fn raw(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: u64;
    if USE_VMMCALL.load(Ordering::Relaxed) {
        // SAFETY: VMMCALL traps to the hypervisor, which reads and writes only guest memory
        // the arguments name (addresses of live locals of the callers). The argument
        // registers and rcx/r11 are treated as clobbered, as Linux does.
        unsafe {
            asm!("vmmcall", inlateout("rax") nr => ret, inlateout("rdi") a1 => _, inlateout("rsi") a2 => _,
                 inlateout("rdx") a3 => _, lateout("r10") _, lateout("r8") _, lateout("rcx") _, lateout("r11") _,
                 options(nostack));
        }
    } else {
        // SAFETY: as above, with VMCALL (Intel).
        unsafe {
            asm!("vmcall", inlateout("rax") nr => ret, inlateout("rdi") a1 => _, inlateout("rsi") a2 => _,
                 inlateout("rdx") a3 => _, lateout("r10") _, lateout("r8") _, lateout("rcx") _, lateout("r11") _,
                 options(nostack));
        }
    }
    ret as i64
}

fn check(rc: i64) -> Result<i64, Errno> {
    if rc < 0 {
        Err(Errno(-rc))
    } else {
        Ok(rc)
    }
}

/// Writes to the hypervisor console (dom0 owns it: lines appear as written).
pub fn console_write(bytes: &[u8]) {
    for chunk in bytes.chunks(1024) {
        raw(HYPERVISOR_CONSOLE_IO, CONSOLEIO_WRITE, chunk.len() as u64, chunk.as_ptr() as u64);
    }
}

/// Takes up to `buf.len()` bytes typed on the hypervisor console; returns how many.
pub fn console_read(buf: &mut [u8]) -> Result<usize, Errno> {
    let n = check(raw(HYPERVISOR_CONSOLE_IO, CONSOLEIO_READ, buf.len() as u64, buf.as_mut_ptr() as u64))?;
    Ok(n as usize)
}

/// A `domctl` (the interface version is filled in); the hypervisor writes results back.
pub fn domctl(op: &mut Domctl) -> Result<(), Errno> {
    domctl_with_version(op, CTL_INTERFACE_VERSION)
}

/// A `domctl` claiming interface version `version`.
pub fn domctl_with_version(op: &mut Domctl, version: u32) -> Result<(), Errno> {
    op.interface_version = version;
    let mut bytes = op.to_bytes();
    let rc = raw(HYPERVISOR_DOMCTL, bytes.as_mut_ptr() as u64, 0, 0);
    *op = Domctl::from_bytes(&bytes);
    check(rc).map(drop)
}

/// A `domctl` whose argument is at `address` (for checking how bad pointers are refused).
pub fn domctl_at(address: u64) -> Result<(), Errno> {
    check(raw(HYPERVISOR_DOMCTL, address, 0, 0)).map(drop)
}

/// A `sysctl`, like [`domctl`].
pub fn sysctl(op: &mut Sysctl) -> Result<(), Errno> {
    sysctl_with_version(op, CTL_INTERFACE_VERSION)
}

/// A `sysctl` claiming interface version `version`.
pub fn sysctl_with_version(op: &mut Sysctl, version: u32) -> Result<(), Errno> {
    op.interface_version = version;
    let mut bytes = op.to_bytes();
    let rc = raw(HYPERVISOR_SYSCTL, bytes.as_mut_ptr() as u64, 0, 0);
    *op = Sysctl::from_bytes(&bytes);
    check(rc).map(drop)
}

/// Calls `nr` with `cmd` and a structure in/out as its bytes.
fn with_struct<const N: usize>(nr: u64, cmd: u64, bytes: &mut [u8; N]) -> Result<i64, Errno> {
    check(raw(nr, cmd, bytes.as_mut_ptr() as u64, 0))
}

/// `EVTCHNOP_alloc_unbound`: a port of `dom` that `remote` may bind.
pub fn alloc_unbound(dom: DomId, remote: DomId) -> Result<u32, Errno> {
    let mut b = EvtchnAllocUnbound { dom, remote_dom: remote, port: 0 }.to_bytes();
    with_struct(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_ALLOC_UNBOUND, &mut b)?;
    Ok(EvtchnAllocUnbound::from_bytes(&b).port)
}

/// Our end of an interdomain event channel; closed (`EVTCHNOP_close`) when dropped, so
/// the ports of domains that came and went do not pile up.
#[derive(Debug)]
pub struct LocalPort(u32);

impl LocalPort {
    pub fn number(&self) -> u32 {
        self.0
    }
}

impl Drop for LocalPort {
    fn drop(&mut self) {
        let mut b = EvtchnClose { port: self.0 }.to_bytes();
        let _ = with_struct(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_CLOSE, &mut b);
    }
}

/// `EVTCHNOP_bind_interdomain`: our end of `remote`'s unbound port.
pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<LocalPort, Errno> {
    let mut b = EvtchnBindInterdomain { remote_dom: remote, remote_port, local_port: 0 }.to_bytes();
    with_struct(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_BIND_INTERDOMAIN, &mut b)?;
    Ok(LocalPort(EvtchnBindInterdomain::from_bytes(&b).local_port))
}

/// `EVTCHNOP_bind_virq` on vCPU 0.
pub fn bind_virq(virq: u32) -> Result<u32, Errno> {
    let mut b = EvtchnBindVirq { virq, vcpu: 0, port: 0 }.to_bytes();
    with_struct(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, &mut b)?;
    Ok(EvtchnBindVirq::from_bytes(&b).port)
}

/// `EVTCHNOP_send`.
pub fn send(port: u32) -> Result<(), Errno> {
    let mut b = EvtchnSend { port }.to_bytes();
    with_struct(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_SEND, &mut b).map(drop)
}

/// `HVMOP_set_param` for domain `domid`.
pub fn set_hvm_param(domid: DomId, index: u32, value: u64) -> Result<(), Errno> {
    let mut b = XenHvmParam { domid, pad: 0, index, value }.to_bytes();
    with_struct(HYPERVISOR_HVM_OP, HVMOP_SET_PARAM, &mut b).map(drop)
}

/// Places our shared_info page at guest frame `gfn`.
pub fn map_shared_info(gfn: u64) -> Result<(), Errno> {
    let mut b =
        XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn: gfn }.to_bytes();
    with_struct(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &mut b).map(drop)
}

/// Maps `owner`'s frames `idxs[i]` at our frames `gfns[i]`; per-page errors in `errs`.
pub fn map_foreign(owner: DomId, idxs: &[u64], gfns: &[u64], errs: &mut [i32]) -> Result<(), Errno> {
    assert!(idxs.len() == gfns.len() && gfns.len() == errs.len() && idxs.len() <= usize::from(u16::MAX));
    let mut b = XenAddToPhysmapBatch {
        domid: DOMID_SELF,
        space: XENMAPSPACE_GMFN_FOREIGN as u16,
        size: idxs.len() as u16,
        foreign_domid: owner,
        idxs: idxs.as_ptr() as u64,
        gpfns: gfns.as_ptr() as u64,
        errs: errs.as_mut_ptr() as u64,
    }
    .to_bytes();
    with_struct(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP_BATCH, &mut b).map(drop)
}

/// Takes away what is mapped at our frame `gfn`.
pub fn unmap(gfn: u64) -> Result<(), Errno> {
    let mut b = XenRemoveFromPhysmap { domid: DOMID_SELF, gpfn: gfn }.to_bytes();
    with_struct(HYPERVISOR_MEMORY_OP, XENMEM_REMOVE_FROM_PHYSMAP, &mut b).map(drop)
}

/// `SCHEDOP_block`: sleeps until an event is pending for this vCPU.
pub fn block() {
    raw(HYPERVISOR_SCHED_OP, SCHEDOP_BLOCK, 0, 0);
}

/// `SCHEDOP_shutdown`: ends this domain.
pub fn shutdown(reason: u32) -> ! {
    let mut b = SchedShutdown { reason }.to_bytes();
    let _ = with_struct(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, &mut b);
    crate::arch::halt_forever()
}

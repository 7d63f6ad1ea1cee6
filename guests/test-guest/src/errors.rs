//! `test=errors`: every hypercall family's error paths, each checked against what Xen 4.17
//! answers an HVM/PVH domU (`xen/common/*.c`, `xen/arch/x86/hvm/*.c` of RELEASE-4.17.0). One
//! line per check: `GUEST errors <check>=pass|fail rc=<got> expected=<Xen's>` (grant operations
//! also show the `GNTST_*` status); then the guest proves it is still healthy (console output,
//! an event channel round trip through its upcall, a timer wake-up) and ends with
//! `GUEST errors result=pass|fail checks=N failed=M`.
//!
//! With `peer=D` (a `test=standby peer=<this domain>` domain) it first binds the event
//! channel the partner offers, checks what a domU may not do to another domain (and to one
//! that does not exist), and at the end signals the partner so it powers off too.
//!
//! Bad guest pointers are [`UNMAPPED`] (no translation in the guest's page tables) and
//! [`NOT_RAM`] (mapped by the guest, but no memory behind it): Xen fails the copy either way.
//! Nothing here may end the domain on Xen: `SCHEDOP_shutdown` with an unknown reason is
//! therefore not tried (Xen takes any reason and shuts the domain down).

use core::cell::UnsafeCell;
use core::sync::atomic::{compiler_fence, AtomicU32, Ordering};

use test_guest::abi::MSR_EFER;
use test_guest::cmdline::Peer;
use test_guest::start_info;
use xen_abi::console::{CONSOLEIO_READ, CONSOLEIO_WRITE};
use xen_abi::errno::{EACCES, EEXIST, EFAULT, EINVAL, ENOENT, ENOSYS, ENXIO, EOPNOTSUPP, EPERM, ESRCH};
use xen_abi::event_channel::*;
use xen_abi::features::{
    feature_mask, XENFEAT_AUTO_TRANSLATED_PHYSMAP, XENFEAT_HVM_CALLBACK_VECTOR, XENFEAT_HVM_SAFE_PVCLOCK,
    XENFEAT_MEMORY_OP_VNODE_SUPPORTED, XENFEAT_NOT_DIRECT_MAPPED, XENFEAT_WRITABLE_PAGE_TABLES,
};
use xen_abi::grant_table::*;
use xen_abi::hvm::*;
use xen_abi::memory::*;
use xen_abi::platform::{XENPF_GET_CPU_VERSION, XENPF_INTERFACE_VERSION};
use xen_abi::sched::*;
use xen_abi::vcpu::*;
use xen_abi::version::*;
use xen_abi::xen::*;
use xen_abi::DomId;

use crate::checks::{Checks, Rc};
use crate::events;
use crate::interdomain::{self, BIND_TIMEOUT_NS};
use crate::page::{Page, PAGE_SIZE};
use crate::traps::CALLBACK_VECTOR;
use crate::{println, xen, BootInfo};

/// A guest-virtual address the guest's page tables do not map (PML4 slot 255 is empty).
pub const UNMAPPED: u64 = 0x0000_7fff_dead_0000;
/// Guest-physical 3 GiB: identity-mapped by the guest's page tables, but neither RAM nor a
/// page the hypervisor placed.
pub const NOT_RAM: u64 = 0xc000_0000;
/// A domain id no domain has (ids are handed out from 1 up).
pub const NONEXISTENT: DomId = 0x7000;
/// `INVALID_GFN` (`~0UL`).
const INVALID_GFN: u64 = u64::MAX;
/// The string Xen 4.17 returns for information a domU may not see (`xen_deny()`).
const DENIED: &[u8] = b"<denied>\0";
/// `sizeof(struct xen_platform_op)`.
const PLATFORM_OP_SIZE: usize = 128;
/// A grant reference beyond any grant table (the most entries a domain could have is
/// max frames × 512).
const BAD_GREF: u32 = 0x7fff_ffff;
/// Free event-channel ports: one in Xen's first bucket of 64 (valid, state free), one
/// beyond it that was never allocated, and ones beyond any table.
const FREE_PORT_FIRST_BUCKET: u32 = 60;
const FREE_PORT_BEYOND_BUCKET: u32 = 500;
/// XENFEAT bits of submap 0 that Xen 4.17 reports to an HVM/PVH domU without PIRQs
/// (`XENVER_get_features` in `common/kernel.c`).
const EXPECTED_FEATURES: u32 = feature_mask(XENFEAT_WRITABLE_PAGE_TABLES)
    | feature_mask(XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | feature_mask(XENFEAT_HVM_CALLBACK_VECTOR)
    | feature_mask(XENFEAT_HVM_SAFE_PVCLOCK)
    | feature_mask(XENFEAT_MEMORY_OP_VNODE_SUPPORTED)
    | feature_mask(XENFEAT_NOT_DIRECT_MAPPED);
const MS: u64 = 1_000_000;
/// Longer than any wait here should take, even on a slow, busy host.
const LATE: u64 = 10_000 * MS;

static COPY_SRC: Page = Page::new();
static COPY_DST: Page = Page::new();
static BALLOON: Page = Page::new();
static SCRATCH: Page = Page::new();

/// What the checks need to know.
struct Ctx {
    /// This domain's id.
    me: DomId,
    /// The partner domain, if any.
    peer: Option<DomId>,
    /// VIRQ_TIMER's port.
    timer_port: u32,
    /// The port the partner offered (its number in the partner's table), if bound.
    partner_port: Option<u32>,
}

fn hc(nr: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    xen::hypercall(nr, a1, a2, a3, 0, 0)
}

fn ptr<T>(arg: &mut T) -> u64 {
    arg as *mut T as u64
}

fn gnttab<T>(cmd: u64, arg: &mut T, count: u32) -> i64 {
    hc(HYPERVISOR_GRANT_TABLE_OP, cmd, ptr(arg), u64::from(count))
}

fn memory<T>(cmd: u64, arg: &mut T) -> i64 {
    xen::op(HYPERVISOR_MEMORY_OP, cmd, arg)
}

fn hvm<T>(op: u64, arg: &mut T) -> i64 {
    xen::op(HYPERVISOR_HVM_OP, op, arg)
}

fn vcpu<T>(cmd: u64, id: u32, arg: &mut T) -> i64 {
    hc(HYPERVISOR_VCPU_OP, cmd, u64::from(id), ptr(arg))
}

fn sched<T>(cmd: u64, arg: &mut T) -> i64 {
    xen::op(HYPERVISOR_SCHED_OP, cmd, arg)
}

fn version<T>(cmd: u64, arg: &mut T) -> i64 {
    xen::op(HYPERVISOR_XEN_VERSION, cmd, arg)
}

/// The error of an operation that must fail; if it opened a port after all, 0 (and the
/// port is closed again so later checks see the same table).
fn refused(result: Result<u32, i64>) -> i64 {
    match result {
        Ok(port) => {
            xen::evtchn_close(port);
            0
        }
        Err(rc) => rc,
    }
}

fn bad(nr: u64, cmd: u64, addr: u64) -> i64 {
    hc(nr, cmd, addr, 0)
}

/// Runs `test=errors`; never returns.
pub fn run(boot: &BootInfo, peer: Option<Peer>) -> ! {
    let mut c = Checks::new("errors");
    let me = xen::domid().unwrap_or(0) as DomId;
    let timer_port = match events::setup() {
        Ok(p) => p,
        Err((step, rc)) => {
            c.check("setup", false, format_args!("step={step} rc={}", Rc(rc)));
            c.finish()
        }
    };
    let mut x = Ctx { me, peer: peer.map(|p| p.domid), timer_port, partner_port: None };
    let mut partner_local = None;
    if let Some(p) = peer {
        match interdomain::bind_peer(&mut c, p, BIND_TIMEOUT_NS) {
            Some(b) => {
                x.partner_port = Some(b.remote_port);
                partner_local = Some(b.local_port);
            }
            None => x.peer = None,
        }
    } else {
        println!("GUEST errors peer=none checks_about_other_domains=skipped");
    }

    console_io(&mut c);
    xen_version(&mut c);
    sched_op(&mut c, &x);
    event_channels(&mut c, &x);
    grant_tables(&mut c, &x);
    memory_op(&mut c, &x, boot);
    hvm_op(&mut c, &x);
    vcpu_op(&mut c);
    vm_assist_and_others(&mut c);
    control_interface(&mut c, &x);
    still_healthy(&mut c, &x);

    if let Some(local) = partner_local {
        // Lets the standby partner power off.
        c.rc("signal_partner", xen::evtchn_send(local), 0);
    }
    if !has_second_vcpu() {
        c.finish()
    }
    // Xen powers a domain off when its last vCPU goes down (vCPU 1 never started).
    c.finish_then(|| {
        let mut none = ();
        let rc = vcpu(VCPUOP_DOWN, 0, &mut none);
        println!("GUEST errors last_vcpu_down=fail rc={} expected=poweroff", Rc(rc));
    })
}

fn has_second_vcpu() -> bool {
    let mut info = VcpuRunstateInfo::default();
    vcpu(VCPUOP_IS_UP, 1, &mut info) != -ENOENT
}

fn console_io(c: &mut Checks) {
    c.rc("console_write_bad_pointer", hc(HYPERVISOR_CONSOLE_IO, CONSOLEIO_WRITE, 16, UNMAPPED), -EFAULT);
    c.rc("console_write_not_ram", hc(HYPERVISOR_CONSOLE_IO, CONSOLEIO_WRITE, 16, NOT_RAM), -EFAULT);
    c.rc("console_write_nothing", hc(HYPERVISOR_CONSOLE_IO, CONSOLEIO_WRITE, 0, UNMAPPED), 0);
    let buf = SCRATCH.addr();
    // A domU that is not the console domain may only write (Xen's XSM policy; reading, and
    // any other operation, is for the privileged domain).
    c.rc("console_read", hc(HYPERVISOR_CONSOLE_IO, CONSOLEIO_READ, 16, buf), -EPERM);
    c.rc("console_unknown_op", hc(HYPERVISOR_CONSOLE_IO, 99, 16, buf), -EPERM);
}

fn xen_version(c: &mut Checks) {
    let v = hc(HYPERVISOR_XEN_VERSION, XENVER_VERSION, 0, 0);
    c.rc("version", v, i64::from(version_number(4, 17)));
    for (name, cmd) in [
        ("extraversion", XENVER_EXTRAVERSION),
        ("compile_info", XENVER_COMPILE_INFO),
        ("capabilities", XENVER_CAPABILITIES),
        ("changeset", XENVER_CHANGESET),
        ("platform_parameters", XENVER_PLATFORM_PARAMETERS),
        ("get_features", XENVER_GET_FEATURES),
        ("guest_handle", XENVER_GUEST_HANDLE),
    ] {
        c.rc(format_args!("{name}_bad_pointer"), bad(HYPERVISOR_XEN_VERSION, cmd, UNMAPPED), -EFAULT);
    }
    c.rc("get_features_not_ram", bad(HYPERVISOR_XEN_VERSION, XENVER_GET_FEATURES, NOT_RAM), -EFAULT);
    let mut fi = XenFeatureInfo { submap_idx: 1, submap: 0 };
    c.rc("get_features_submap1", version(XENVER_GET_FEATURES, &mut fi), -EINVAL);
    let mut fi = XenFeatureInfo { submap_idx: 0, submap: 0 };
    let rc = version(XENVER_GET_FEATURES, &mut fi);
    c.check(
        "get_features_submap0",
        rc == 0 && fi.submap == EXPECTED_FEATURES,
        format_args!("rc={} submap={:#x} expected={EXPECTED_FEATURES:#x}", Rc(rc), fi.submap),
    );
    c.rc("pagesize", hc(HYPERVISOR_XEN_VERSION, XENVER_PAGESIZE, 0, 0), PAGE_SIZE as i64);
    c.rc("pagesize_with_argument", hc(HYPERVISOR_XEN_VERSION, XENVER_PAGESIZE, SCRATCH.addr(), 0), -EINVAL);
    let mut line = [0xffu8; XEN_COMMANDLINE_LEN];
    let rc = version(XENVER_COMMANDLINE, &mut line);
    c.check(
        "commandline_denied",
        rc == 0 && line.starts_with(DENIED),
        format_args!("rc={} starts_with_denied={} expected=0 and \"<denied>\"", Rc(rc), line.starts_with(DENIED)),
    );
    let mut build_id = [0u32; 16];
    build_id[0] = 60;
    c.rc("build_id_denied", version(XENVER_BUILD_ID, &mut build_id), -EPERM);
    c.rc("version_unknown_op", hc(HYPERVISOR_XEN_VERSION, 99, 0, 0), -ENOSYS);
}

fn sched_op(c: &mut Checks, x: &Ctx) {
    c.rc("shutdown_bad_pointer", bad(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, UNMAPPED), -EFAULT);
    c.rc("shutdown_not_ram", bad(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, NOT_RAM), -EFAULT);
    c.rc("shutdown_code_bad_pointer", bad(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN_CODE, UNMAPPED), -EFAULT);
    c.rc("poll_bad_pointer", bad(HYPERVISOR_SCHED_OP, SCHEDOP_POLL, UNMAPPED), -EFAULT);
    c.rc("remote_shutdown_bad_pointer", bad(HYPERVISOR_SCHED_OP, SCHEDOP_REMOTE_SHUTDOWN, UNMAPPED), -EFAULT);
    // Only the hardware domain may override its pinning; the check comes before the copy.
    c.rc("pin_override", bad(HYPERVISOR_SCHED_OP, SCHEDOP_PIN_OVERRIDE, UNMAPPED), -EPERM);
    c.rc("sched_unknown_op", bad(HYPERVISOR_SCHED_OP, 99, 0), -ENOSYS);
    c.rc("yield", xen::sched_yield(), 0);

    let mut rs = SchedRemoteShutdown { domain_id: NONEXISTENT, reason: SHUTDOWN_POWEROFF };
    c.rc("remote_shutdown_nonexistent_domain", sched(SCHEDOP_REMOTE_SHUTDOWN, &mut rs), -ESRCH);
    if let Some(peer) = x.peer {
        let mut rs = SchedRemoteShutdown { domain_id: peer, reason: SHUTDOWN_POWEROFF };
        c.rc("remote_shutdown_other_domain", sched(SCHEDOP_REMOTE_SHUTDOWN, &mut rs), -EPERM);
    }

    let mut port = 0u32;
    let mut p = SchedPoll { ports: UNMAPPED, nr_ports: 1, timeout: 0 };
    c.rc("poll_bad_port_list", sched(SCHEDOP_POLL, &mut p), -EFAULT);
    let mut p = SchedPoll { ports: ptr(&mut port), nr_ports: 129, timeout: 0 };
    c.rc("poll_too_many_ports", sched(SCHEDOP_POLL, &mut p), -EINVAL);
    let mut bad_port = EVTCHN_2L_NR_CHANNELS;
    let mut p = SchedPoll { ports: ptr(&mut bad_port), nr_ports: 1, timeout: xen::now_ns() + 20 * MS };
    c.rc("poll_port_beyond_table", sched(SCHEDOP_POLL, &mut p), -EINVAL);
    // A port that was open and is closed again: not a port one can wait on.
    if let Ok(mut closed) = xen::bind_ipi(0) {
        xen::evtchn_close(closed);
        let mut p = SchedPoll { ports: ptr(&mut closed), nr_ports: 1, timeout: xen::now_ns() + 20 * MS };
        c.rc("poll_closed_port", sched(SCHEDOP_POLL, &mut p), -EINVAL);
    }

    // Polling with interrupts off (as this guest always runs outside its halts).
    let (Ok(mut ipi), Ok(other)) = (xen::bind_ipi(0), xen::bind_ipi(0)) else {
        c.check("poll_setup", false, format_args!("bind_ipi failed"));
        return;
    };
    xen::evtchn_send(ipi);
    let t0 = xen::now_ns();
    let mut p = SchedPoll { ports: ptr(&mut ipi), nr_ports: 1, timeout: t0 + 10_000 * MS };
    let rc = sched(SCHEDOP_POLL, &mut p);
    let waited = xen::now_ns() - t0;
    c.check(
        "poll_pending_port_returns_at_once",
        rc == 0 && waited < 5_000 * MS,
        format_args!("rc={} waited_us={} expected=0 without waiting", Rc(rc), waited / 1000),
    );
    events::clear_pending(ipi);
    events::discard_all();
    let t0 = xen::now_ns();
    let mut p = SchedPoll { ports: ptr(&mut ipi), nr_ports: 1, timeout: t0 + 20 * MS };
    let rc = sched(SCHEDOP_POLL, &mut p);
    let waited = xen::now_ns() - t0;
    c.check(
        "poll_times_out",
        rc == 0 && (20 * MS..LATE).contains(&waited),
        format_args!("rc={} waited_us={} expected=0 after the 20 ms timeout", Rc(rc), waited / 1000),
    );
    // An event on another port sets the upcall flag; with interrupts off it cannot be
    // delivered, so Xen (hvm_local_events_need_delivery) keeps polling until the timeout.
    xen::evtchn_send(other);
    let t0 = xen::now_ns();
    let mut p = SchedPoll { ports: ptr(&mut ipi), nr_ports: 1, timeout: t0 + 20 * MS };
    let rc = sched(SCHEDOP_POLL, &mut p);
    let waited = xen::now_ns() - t0;
    c.check(
        "poll_ignores_undeliverable_upcall",
        rc == 0 && (20 * MS..LATE).contains(&waited),
        format_args!(
            "rc={} waited_us={} upcall_pending={} expected=0 after the 20 ms timeout",
            Rc(rc),
            waited / 1000,
            events::upcall_pending()
        ),
    );
    xen::evtchn_close(ipi);
    xen::evtchn_close(other);
    events::discard_all();
}

fn status_of(dom: DomId, port: u32) -> (i64, EvtchnStatus) {
    let mut s = EvtchnStatus { dom, port, ..EvtchnStatus::default() };
    let rc = xen::evtchn_op(EVTCHNOP_STATUS, &mut s);
    (rc, s)
}

fn event_channels(c: &mut Checks, x: &Ctx) {
    for (name, cmd) in [
        ("alloc_unbound", EVTCHNOP_ALLOC_UNBOUND),
        ("bind_interdomain", EVTCHNOP_BIND_INTERDOMAIN),
        ("bind_virq", EVTCHNOP_BIND_VIRQ),
        ("bind_ipi", EVTCHNOP_BIND_IPI),
        ("close", EVTCHNOP_CLOSE),
        ("send", EVTCHNOP_SEND),
        ("status", EVTCHNOP_STATUS),
        ("bind_vcpu", EVTCHNOP_BIND_VCPU),
        ("unmask", EVTCHNOP_UNMASK),
        ("reset", EVTCHNOP_RESET),
    ] {
        c.rc(format_args!("evtchn_{name}_bad_pointer"), bad(HYPERVISOR_EVENT_CHANNEL_OP, cmd, UNMAPPED), -EFAULT);
    }
    c.rc("evtchn_send_not_ram", bad(HYPERVISOR_EVENT_CHANNEL_OP, EVTCHNOP_SEND, NOT_RAM), -EFAULT);
    c.rc("evtchn_unknown_op", bad(HYPERVISOR_EVENT_CHANNEL_OP, 99, SCRATCH.addr()), -ENOSYS);
    // Xen takes the command as an int: the upper half of the register is ignored.
    let mut send = EvtchnSend { port: EVTCHN_2L_NR_CHANNELS };
    c.rc("evtchn_cmd_upper_bits_ignored", xen::evtchn_op((1 << 32) | EVTCHNOP_SEND, &mut send), -EINVAL);

    // Bad ports: beyond any table, never allocated, and port 0 (reserved: valid, never usable).
    for port in [EVTCHN_2L_NR_CHANNELS, u32::MAX, 1024, FREE_PORT_BEYOND_BUCKET] {
        c.rc(format_args!("send_port{port}"), xen::evtchn_send(port), -EINVAL);
        c.rc(format_args!("close_port{port}"), xen::evtchn_close(port), -EINVAL);
        c.rc(format_args!("unmask_port{port}"), xen::evtchn_op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port }), -EINVAL);
        c.rc(format_args!("status_port{port}"), status_of(DOMID_SELF, port).0, -EINVAL);
        let mut bv = EvtchnBindVcpu { port, vcpu: 0 };
        c.rc(format_args!("bind_vcpu_port{port}"), xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), -EINVAL);
    }
    // Port 0 and a free port in Xen's first bucket of 64: valid port numbers in state
    // reserved/free. Nothing can be sent on, closed or moved; status says closed; unmask
    // only clears the mask bit.
    for port in [0, FREE_PORT_FIRST_BUCKET] {
        c.rc(format_args!("send_port{port}"), xen::evtchn_send(port), -EINVAL);
        c.rc(format_args!("close_port{port}"), xen::evtchn_close(port), -EINVAL);
        let mut bv = EvtchnBindVcpu { port, vcpu: 0 };
        c.rc(format_args!("bind_vcpu_port{port}"), xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), -EINVAL);
        c.rc(format_args!("unmask_port{port}"), xen::evtchn_op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port }), 0);
        let (rc, s) = status_of(DOMID_SELF, port);
        c.check(
            format_args!("status_port{port}"),
            rc == 0 && s.status == EVTCHNSTAT_CLOSED,
            format_args!("rc={} status={} expected=0 and closed({EVTCHNSTAT_CLOSED})", Rc(rc), s.status),
        );
    }

    // VIRQs.
    c.rc("bind_virq_out_of_range", refused(xen::bind_virq(NR_VIRQS, 0)), -EINVAL);
    c.rc("bind_virq_huge", refused(xen::bind_virq(u32::MAX, 0)), -EINVAL);
    c.rc("bind_virq_nonexistent_vcpu", refused(xen::bind_virq(VIRQ_TIMER, 99)), -ENOENT);
    // A global VIRQ may only be bound on vCPU 0: Xen says so before looking for the vCPU.
    c.rc("bind_global_virq_other_vcpu", refused(xen::bind_virq(VIRQ_CON_RING, 99)), -EINVAL);
    c.rc("bind_virq_twice", refused(xen::bind_virq(VIRQ_TIMER, 0)), -EEXIST);
    let (rc, s) = status_of(DOMID_SELF, x.timer_port);
    c.check(
        "status_virq",
        rc == 0 && s.status == EVTCHNSTAT_VIRQ && s.u.virq() == VIRQ_TIMER && s.vcpu == 0,
        format_args!(
            "rc={} status={} virq={} vcpu={} expected=virq({EVTCHNSTAT_VIRQ}) 0 0",
            Rc(rc),
            s.status,
            s.u.virq(),
            s.vcpu
        ),
    );
    c.rc("send_on_virq_port", xen::evtchn_send(x.timer_port), -EINVAL);
    let mut bv = EvtchnBindVcpu { port: x.timer_port, vcpu: 0 };
    c.rc("bind_vcpu_per_vcpu_virq", xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), -EINVAL);

    // IPIs.
    c.rc("bind_ipi_nonexistent_vcpu", refused(xen::bind_ipi(99)), -ENOENT);
    if let Ok(ipi) = xen::bind_ipi(0) {
        let mut bv = EvtchnBindVcpu { port: ipi, vcpu: 0 };
        c.rc("bind_vcpu_ipi", xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), -EINVAL);
        xen::evtchn_close(ipi);
    }

    masked_event(c);

    // Unbound ports and loopback.
    c.rc("alloc_unbound_nonexistent_domain", refused(xen::alloc_unbound(NONEXISTENT, DOMID_SELF)), -ESRCH);
    match xen::alloc_unbound(x.me, DOMID_SELF) {
        Ok(p) => {
            c.rc("alloc_unbound_own_domid", 0, 0);
            xen::evtchn_close(p);
        }
        Err(rc) => {
            c.rc("alloc_unbound_own_domid", rc, 0);
        }
    }
    loopback(c, x);
    c.rc("bind_interdomain_nonexistent_domain", refused(xen::bind_interdomain(NONEXISTENT, 1)), -ESRCH);
    c.rc(
        "bind_interdomain_port_beyond_table",
        refused(xen::bind_interdomain(DOMID_SELF, EVTCHN_2L_NR_CHANNELS)),
        -EINVAL,
    );
    c.rc("bind_interdomain_port0", refused(xen::bind_interdomain(DOMID_SELF, 0)), -EINVAL);

    let (rc, _) = status_of(NONEXISTENT, 1);
    c.rc("status_nonexistent_domain", rc, -ESRCH);
    c.rc("reset_nonexistent_domain", xen::evtchn_op(EVTCHNOP_RESET, &mut EvtchnReset { dom: NONEXISTENT }), -ESRCH);

    // Someone else's ports.
    let Some(peer) = x.peer else {
        return;
    };
    c.rc("alloc_unbound_other_domain", refused(xen::alloc_unbound(peer, DOMID_SELF)), -EPERM);
    c.rc("alloc_unbound_for_other_domain", refused(xen::alloc_unbound(peer, x.me)), -EPERM);
    let offered = x.partner_port.unwrap_or(1);
    c.rc("status_other_domain", status_of(peer, offered).0, -EPERM);
    // The port is checked before the permission.
    c.rc("status_other_domain_bad_port", status_of(peer, EVTCHN_2L_NR_CHANNELS).0, -EINVAL);
    c.rc("reset_other_domain", xen::evtchn_op(EVTCHNOP_RESET, &mut EvtchnReset { dom: peer }), -EPERM);
    c.rc("bind_interdomain_already_bound", refused(xen::bind_interdomain(peer, offered)), -EINVAL);
    // The partner offered port `offered - 1` to another domain just before (ports are
    // handed out lowest first).
    c.rc(
        "bind_interdomain_offered_to_another_domain",
        refused(xen::bind_interdomain(peer, offered.saturating_sub(1))),
        -EINVAL,
    );
    // The partner's console ring channel (its first port) is connected to its backend.
    c.rc("bind_interdomain_connected_port", refused(xen::bind_interdomain(peer, 1)), -EINVAL);
}

/// An event on a masked port stays pending without an upcall; `EVTCHNOP_unmask` delivers it.
fn masked_event(c: &mut Checks) {
    let Ok(port) = xen::bind_ipi(0) else {
        c.check("masked_event_setup", false, format_args!("bind_ipi failed"));
        return;
    };
    events::discard_all();
    events::set_masked(port, true);
    let rc = xen::evtchn_send(port);
    c.check(
        "masked_event_no_upcall",
        rc == 0 && events::is_pending(port) && !events::upcall_pending(),
        format_args!(
            "rc={} pending={} upcall_pending={} expected=pending without an upcall",
            Rc(rc),
            events::is_pending(port),
            events::upcall_pending()
        ),
    );
    let rc = xen::evtchn_op(EVTCHNOP_UNMASK, &mut EvtchnUnmask { port });
    let upcall = events::upcall_pending();
    let delivered = events::wait_for(port, LATE);
    c.check(
        "unmask_delivers_pending_event",
        rc == 0 && upcall && delivered,
        format_args!("rc={} upcall_pending={upcall} delivered={delivered}", Rc(rc)),
    );
    xen::evtchn_close(port);
}

/// An unbound port of this domain, bound by itself: both ends, send, close.
fn loopback(c: &mut Checks, x: &Ctx) {
    let unbound = match xen::alloc_unbound(DOMID_SELF, DOMID_SELF) {
        Ok(p) => p,
        Err(rc) => {
            c.rc("loopback_alloc_unbound", rc, 0);
            return;
        }
    };
    let (rc, s) = status_of(DOMID_SELF, unbound);
    c.check(
        "status_unbound",
        rc == 0 && s.status == EVTCHNSTAT_UNBOUND && s.u.unbound_dom() == x.me,
        format_args!(
            "rc={} status={} dom={} expected=unbound({EVTCHNSTAT_UNBOUND}) {}",
            Rc(rc),
            s.status,
            s.u.unbound_dom(),
            x.me
        ),
    );
    c.rc("send_on_unbound_port", xen::evtchn_send(unbound), 0);
    let mut bv = EvtchnBindVcpu { port: unbound, vcpu: 99 };
    c.rc("bind_vcpu_nonexistent_vcpu", xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), -ENOENT);
    let mut bv = EvtchnBindVcpu { port: unbound, vcpu: 0 };
    c.rc("bind_vcpu_unbound", xen::evtchn_op(EVTCHNOP_BIND_VCPU, &mut bv), 0);
    let local = match xen::bind_interdomain(DOMID_SELF, unbound) {
        Ok(p) => p,
        Err(rc) => {
            c.rc("loopback_bind", rc, 0);
            xen::evtchn_close(unbound);
            return;
        }
    };
    // Xen marks the new local end pending, so nothing sent before the bind is lost.
    c.check("loopback_bind_marks_pending", events::is_pending(local), format_args!("port={local}"));
    events::clear_pending(local);
    events::clear_pending(unbound);
    let (rc, s) = status_of(DOMID_SELF, unbound);
    c.check(
        "status_interdomain",
        rc == 0 && s.status == EVTCHNSTAT_INTERDOMAIN && s.u.interdomain() == (x.me, local),
        format_args!(
            "rc={} status={} remote={:?} expected=interdomain({EVTCHNSTAT_INTERDOMAIN}) ({}, {local})",
            Rc(rc),
            s.status,
            s.u.interdomain(),
            x.me
        ),
    );
    let rc = xen::evtchn_send(local);
    c.check(
        "loopback_send",
        rc == 0 && events::is_pending(unbound) && !events::is_pending(local),
        format_args!("rc={} other_end_pending={}", Rc(rc), events::is_pending(unbound)),
    );
    c.rc("loopback_close", xen::evtchn_close(local), 0);
    let (rc, s) = status_of(DOMID_SELF, unbound);
    c.check(
        "loopback_other_end_unbound_again",
        rc == 0 && s.status == EVTCHNSTAT_UNBOUND && s.u.unbound_dom() == x.me,
        format_args!("rc={} status={} dom={}", Rc(rc), s.status, s.u.unbound_dom()),
    );
    c.rc("loopback_close_other_end", xen::evtchn_close(unbound), 0);
    c.rc("close_twice", xen::evtchn_close(unbound), -EINVAL);
    events::discard_all();
}

fn map_op(dom: DomId, gref: u32, flags: u32, host_addr: u64) -> (i64, GnttabMapGrantRef) {
    let mut op = GnttabMapGrantRef { host_addr, flags, ref_: gref, dom, ..GnttabMapGrantRef::default() };
    let rc = gnttab(GNTTABOP_MAP_GRANT_REF, &mut op, 1);
    (rc, op)
}

fn copy_op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> (i64, i16) {
    let mut op = GnttabCopy { source, dest, len, flags, status: 1 };
    let rc = gnttab(GNTTABOP_COPY, &mut op, 1);
    (rc, op.status)
}

fn frame_ptr(dom: DomId, gfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: GnttabCopyPtrU::from_gmfn(gfn), domid: dom, offset }
}

fn gref_ptr(dom: DomId, gref: u32, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: GnttabCopyPtrU::from_gref(gref), domid: dom, offset }
}

fn grant_tables(c: &mut Checks, x: &Ctx) {
    for (name, cmd) in [
        ("map_grant_ref", GNTTABOP_MAP_GRANT_REF),
        ("unmap_grant_ref", GNTTABOP_UNMAP_GRANT_REF),
        ("setup_table", GNTTABOP_SETUP_TABLE),
        ("copy", GNTTABOP_COPY),
        ("query_size", GNTTABOP_QUERY_SIZE),
        ("set_version", GNTTABOP_SET_VERSION),
        ("get_version", GNTTABOP_GET_VERSION),
    ] {
        c.rc(format_args!("gnttab_{name}_bad_pointer"), hc(HYPERVISOR_GRANT_TABLE_OP, cmd, UNMAPPED, 1), -EFAULT);
    }
    c.rc("gnttab_unknown_op", hc(HYPERVISOR_GRANT_TABLE_OP, 99, SCRATCH.addr(), 1), -ENOSYS);
    // Operations Xen does not offer HVM guests.
    for (name, cmd) in [("dump_table", GNTTABOP_DUMP_TABLE), ("transfer", GNTTABOP_TRANSFER)] {
        c.rc(format_args!("gnttab_{name}_not_for_hvm"), hc(HYPERVISOR_GRANT_TABLE_OP, cmd, SCRATCH.addr(), 1), -ENOSYS);
    }
    let mut ops = [GnttabMapGrantRef::default(); 1];
    c.rc("gnttab_negative_count", gnttab(GNTTABOP_MAP_GRANT_REF, &mut ops, 0x8000_0000), -EINVAL);

    // query_size and setup_table take exactly one operation.
    let mut q = GnttabQuerySize { dom: DOMID_SELF, ..GnttabQuerySize::default() };
    let rc = gnttab(GNTTABOP_QUERY_SIZE, &mut q, 1);
    // A new domain has INITIAL_NR_GRANT_FRAMES (1) frame.
    c.check(
        "query_size_self",
        rc == 0 && q.status == GNTST_OKAY && q.nr_frames == 1 && q.max_nr_frames >= 1,
        format_args!(
            "rc={} status={} nr_frames={} max_nr_frames={} expected=okay 1 >=1",
            Rc(rc),
            q.status,
            q.nr_frames,
            q.max_nr_frames
        ),
    );
    let mut two = [GnttabQuerySize { dom: DOMID_SELF, ..GnttabQuerySize::default() }; 2];
    c.rc("query_size_count2", gnttab(GNTTABOP_QUERY_SIZE, &mut two, 2), -EINVAL);
    let mut q = GnttabQuerySize { dom: NONEXISTENT, ..GnttabQuerySize::default() };
    let rc = gnttab(GNTTABOP_QUERY_SIZE, &mut q, 1);
    c.gntst("query_size_nonexistent_domain", rc, q.status, GNTST_BAD_DOMAIN);

    let mut frame_list = [0u64; 1];
    let mut st = GnttabSetupTable { dom: DOMID_SELF, nr_frames: 1, status: 1, frame_list: ptr(&mut frame_list) };
    let rc = gnttab(GNTTABOP_SETUP_TABLE, &mut st, 1);
    c.gntst("setup_table_one_frame", rc, st.status, GNTST_OKAY);
    let mut two = [st; 2];
    c.rc("setup_table_count2", gnttab(GNTTABOP_SETUP_TABLE, &mut two, 2), -EINVAL);
    let mut st = GnttabSetupTable { dom: DOMID_SELF, nr_frames: 4096, status: 1, frame_list: ptr(&mut frame_list) };
    let rc = gnttab(GNTTABOP_SETUP_TABLE, &mut st, 1);
    c.gntst("setup_table_too_many_frames", rc, st.status, GNTST_GENERAL_ERROR);
    let mut st = GnttabSetupTable { dom: DOMID_SELF, nr_frames: 1, status: 1, frame_list: UNMAPPED };
    let rc = gnttab(GNTTABOP_SETUP_TABLE, &mut st, 1);
    c.gntst("setup_table_bad_frame_list", rc, st.status, GNTST_BAD_VIRT_ADDR);
    let mut st = GnttabSetupTable { dom: NONEXISTENT, nr_frames: 1, status: 1, frame_list: ptr(&mut frame_list) };
    let rc = gnttab(GNTTABOP_SETUP_TABLE, &mut st, 1);
    c.gntst("setup_table_nonexistent_domain", rc, st.status, GNTST_BAD_DOMAIN);

    // Versions: only 1 exists here. Xen answers a version it does not offer with -ENOSYS
    // (max_version 1) and any other number with -EINVAL, and always writes the version in
    // use back.
    let mut sv = GnttabSetVersion { version: 1 };
    let rc = gnttab(GNTTABOP_SET_VERSION, &mut sv, 1);
    c.check("set_version_1", rc == 0 && sv.version == 1, format_args!("rc={} version={}", Rc(rc), sv.version));
    let mut sv = GnttabSetVersion { version: 2 };
    let rc = gnttab(GNTTABOP_SET_VERSION, &mut sv, 1);
    c.check(
        "set_version_2",
        rc == -ENOSYS && sv.version == 1,
        format_args!("rc={} version={} expected={} and version 1 written back", Rc(rc), sv.version, Rc(-ENOSYS)),
    );
    let mut sv = GnttabSetVersion { version: 0 };
    let rc = gnttab(GNTTABOP_SET_VERSION, &mut sv, 1);
    c.check(
        "set_version_0",
        rc == -EINVAL && sv.version == 1,
        format_args!("rc={} version={} expected={} and version 1 written back", Rc(rc), sv.version, Rc(-EINVAL)),
    );
    let mut gv = GnttabGetVersion { dom: DOMID_SELF, pad: 0, version: 0 };
    let rc = gnttab(GNTTABOP_GET_VERSION, &mut gv, 1);
    c.check("get_version_self", rc == 0 && gv.version == 1, format_args!("rc={} version={}", Rc(rc), gv.version));
    let mut gv = GnttabGetVersion { dom: NONEXISTENT, pad: 0, version: 0 };
    c.rc("get_version_nonexistent_domain", gnttab(GNTTABOP_GET_VERSION, &mut gv, 1), -ESRCH);

    // Mapping: the domain is looked up by its real id only.
    let target = NOT_RAM;
    let (rc, op) = map_op(NONEXISTENT, 8, GNTMAP_HOST_MAP, target);
    c.gntst("map_nonexistent_domain", rc, op.status, GNTST_BAD_DOMAIN);
    let (rc, op) = map_op(DOMID_SELF, 8, GNTMAP_HOST_MAP, target);
    c.gntst("map_domid_self", rc, op.status, GNTST_BAD_DOMAIN);
    let mut un = GnttabUnmapGrantRef { host_addr: target, dev_bus_addr: 0, handle: 0xdead_beef, status: 1 };
    let rc = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut un, 1);
    c.gntst("unmap_bad_handle", rc, un.status, GNTST_BAD_HANDLE);
    let mut un = GnttabUnmapGrantRef { host_addr: target, dev_bus_addr: 0, handle: 0, status: 1 };
    let rc = gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut un, 1);
    c.gntst("unmap_handle_never_used", rc, un.status, GNTST_BAD_HANDLE);

    // Copying between this domain's own frames (DOMID_SELF).
    COPY_SRC.fill(|i| 0x5eed_0000_0000_0000 | i as u64);
    COPY_DST.fill(|_| 0);
    let (rc, st) = copy_op(frame_ptr(DOMID_SELF, COPY_SRC.gfn(), 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 4096, 0);
    let mismatch = COPY_DST.mismatch(|i| 0x5eed_0000_0000_0000 | i as u64);
    c.check(
        "copy_own_frames",
        rc == 0 && st == GNTST_OKAY && mismatch.is_none(),
        format_args!("rc={} status={} mismatch={mismatch:?}", Rc(rc), crate::checks::Gntst(st)),
    );
    let (rc, st) =
        copy_op(frame_ptr(DOMID_SELF, COPY_SRC.gfn(), 4000), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 200, 0);
    c.gntst("copy_beyond_page", rc, st, GNTST_BAD_COPY_ARG);
    let (rc, st) =
        copy_op(frame_ptr(DOMID_SELF, COPY_SRC.gfn(), 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 4000), 200, 0);
    c.gntst("copy_beyond_dest_page", rc, st, GNTST_BAD_COPY_ARG);
    // Only DOMID_SELF may name a frame, even this domain's own id may not.
    let (rc, st) = copy_op(frame_ptr(x.me, COPY_SRC.gfn(), 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 64, 0);
    c.gntst("copy_own_frame_by_domid", rc, st, GNTST_PERMISSION_DENIED);
    let (rc, st) = copy_op(frame_ptr(DOMID_SELF, NOT_RAM >> 12, 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 64, 0);
    c.gntst("copy_from_frame_not_ram", rc, st, GNTST_BAD_PAGE);
    let (rc, st) =
        copy_op(gref_ptr(NONEXISTENT, 8, 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 64, GNTCOPY_SOURCE_GREF);
    c.gntst("copy_from_nonexistent_domain", rc, st, GNTST_BAD_DOMAIN);

    let Some(peer) = x.peer else {
        return;
    };
    let mut q = GnttabQuerySize { dom: peer, ..GnttabQuerySize::default() };
    let rc = gnttab(GNTTABOP_QUERY_SIZE, &mut q, 1);
    c.gntst("query_size_other_domain", rc, q.status, GNTST_PERMISSION_DENIED);
    let mut st = GnttabSetupTable { dom: peer, nr_frames: 1, status: 1, frame_list: ptr(&mut frame_list) };
    let rc = gnttab(GNTTABOP_SETUP_TABLE, &mut st, 1);
    c.gntst("setup_table_other_domain", rc, st.status, GNTST_PERMISSION_DENIED);
    let mut gv = GnttabGetVersion { dom: peer, pad: 0, version: 0 };
    c.rc("get_version_other_domain", gnttab(GNTTABOP_GET_VERSION, &mut gv, 1), -EPERM);
    let (rc, op) = map_op(peer, BAD_GREF, GNTMAP_HOST_MAP, target);
    c.gntst("map_ref_beyond_table", rc, op.status, GNTST_BAD_GNTREF);
    // Neither GNTMAP_host_map nor GNTMAP_device_map: Xen calls the request a bad reference.
    let (rc, op) = map_op(peer, 8, 0, target);
    c.gntst("map_without_host_map", rc, op.status, GNTST_BAD_GNTREF);
    // HVM guests cannot map for devices.
    let (rc, op) = map_op(peer, 8, GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP, target);
    c.gntst("map_device_map", rc, op.status, GNTST_GENERAL_ERROR);
    if op.status == GNTST_OKAY {
        let mut un = GnttabUnmapGrantRef { host_addr: target, dev_bus_addr: 0, handle: op.handle, status: 1 };
        gnttab(GNTTABOP_UNMAP_GRANT_REF, &mut un, 1);
    }
    let (rc, st) = copy_op(frame_ptr(peer, 0x100, 0), frame_ptr(DOMID_SELF, COPY_DST.gfn(), 0), 64, 0);
    c.gntst("copy_other_domains_frame", rc, st, GNTST_PERMISSION_DENIED);
    let (rc, st) = copy_op(frame_ptr(DOMID_SELF, COPY_SRC.gfn(), 0), frame_ptr(peer, 0x100, 0), 64, 0);
    c.gntst("copy_to_other_domains_frame", rc, st, GNTST_PERMISSION_DENIED);
}

fn memory_op(c: &mut Checks, x: &Ctx, boot: &BootInfo) {
    for (name, cmd) in [
        ("memory_map", XENMEM_MEMORY_MAP),
        ("current_reservation", XENMEM_CURRENT_RESERVATION),
        ("maximum_reservation", XENMEM_MAXIMUM_RESERVATION),
        ("add_to_physmap", XENMEM_ADD_TO_PHYSMAP),
    ] {
        c.rc(format_args!("memory_{name}_bad_pointer"), bad(HYPERVISOR_MEMORY_OP, cmd, UNMAPPED), -EFAULT);
    }
    // The reservation operations return how many extents they did: none.
    for (name, cmd) in [
        ("increase_reservation", XENMEM_INCREASE_RESERVATION),
        ("decrease_reservation", XENMEM_DECREASE_RESERVATION),
        ("populate_physmap", XENMEM_POPULATE_PHYSMAP),
    ] {
        c.rc(format_args!("memory_{name}_bad_pointer"), bad(HYPERVISOR_MEMORY_OP, cmd, UNMAPPED), 0);
    }
    // HVM guests cannot ask for the host's memory map.
    c.rc("memory_machine_memory_map", bad(HYPERVISOR_MEMORY_OP, XENMEM_MACHINE_MEMORY_MAP, SCRATCH.addr()), -ENOSYS);
    c.rc("memory_unknown_op", bad(HYPERVISOR_MEMORY_OP, 63, SCRATCH.addr()), -ENOSYS);

    // The memory map: the same as the start info's; a short buffer gets the first entries.
    let mut entries = [E820Entry { addr: 0, size: 0, type_: 0 }; 16];
    let mut map = XenMemoryMap { nr_entries: 16, buffer: ptr(&mut entries) };
    let rc = memory(XENMEM_MEMORY_MAP, &mut map);
    let n = map.nr_entries as usize;
    let same = n == boot.memmap_len
        && entries.iter().zip(boot.memmap()).take(n).all(|(e, m)| {
            let (addr, size, kind) = (e.addr, e.size, e.type_);
            addr == m.addr && size == m.size && kind == m.type_
        });
    c.check(
        "memory_map",
        rc == 0 && same,
        format_args!("rc={} nr_entries={n} start_info_entries={} same={same}", Rc(rc), boot.memmap_len),
    );
    let mut map = XenMemoryMap { nr_entries: 16, buffer: UNMAPPED };
    c.rc("memory_map_bad_buffer", memory(XENMEM_MEMORY_MAP, &mut map), -EFAULT);
    let mut one = [E820Entry { addr: 0, size: 0, type_: 0 }; 1];
    let mut map = XenMemoryMap { nr_entries: 1, buffer: ptr(&mut one) };
    let rc = memory(XENMEM_MEMORY_MAP, &mut map);
    c.check(
        "memory_map_short_buffer",
        rc == 0 && map.nr_entries == 1,
        format_args!("rc={} nr_entries={} expected=0 and 1 entry", Rc(rc), map.nr_entries),
    );

    let mut dom: DomId = DOMID_SELF;
    let current = memory(XENMEM_CURRENT_RESERVATION, &mut dom);
    let maximum = memory(XENMEM_MAXIMUM_RESERVATION, &mut dom);
    let ram_pages = start_info::ram_bytes(boot.memmap().iter().copied()) / PAGE_SIZE as u64;
    c.check(
        "current_reservation",
        current > 0 && current as u64 >= ram_pages * 9 / 10 && maximum >= current,
        format_args!("current={} maximum={} ram_pages={ram_pages}", Rc(current), Rc(maximum)),
    );
    let mut dom = NONEXISTENT;
    c.rc("current_reservation_nonexistent_domain", memory(XENMEM_CURRENT_RESERVATION, &mut dom), -ESRCH);

    let shared_info = |domid, space, idx, gpfn| XenAddToPhysmap { domid, size: 0, space, idx, gpfn };
    let spare = SCRATCH.gfn();
    let mut a = shared_info(DOMID_SELF, 99, 0, spare);
    c.rc("add_to_physmap_unknown_space", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -EINVAL);
    let mut a = shared_info(DOMID_SELF, XENMAPSPACE_GMFN_FOREIGN, 0, spare);
    c.rc("add_to_physmap_gmfn_foreign", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -ENOSYS);
    let mut a = shared_info(DOMID_SELF, XENMAPSPACE_SHARED_INFO, 1, spare);
    c.rc("add_to_physmap_shared_info_idx1", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -EINVAL);
    let mut a = shared_info(DOMID_SELF, XENMAPSPACE_SHARED_INFO, 0, INVALID_GFN);
    c.rc("add_to_physmap_invalid_gfn", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -EINVAL);
    let mut a = shared_info(DOMID_SELF, XENMAPSPACE_GRANT_TABLE, 100_000, spare);
    c.rc("add_to_physmap_grant_frame_beyond_max", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -EINVAL);
    let mut a = shared_info(NONEXISTENT, XENMAPSPACE_SHARED_INFO, 0, spare);
    c.rc("add_to_physmap_nonexistent_domain", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -ESRCH);

    // Reservations: a bad extent list, too large an order, or another domain do nothing
    // (0 extents); a real page goes out and comes back.
    let mut far_gfn = NOT_RAM >> 12;
    let reservation = |list: u64, order: u32, domid| XenMemoryReservation {
        extent_start: list,
        nr_extents: 1,
        extent_order: order,
        mem_flags: 0,
        domid,
    };
    let mut r = reservation(UNMAPPED, 0, DOMID_SELF);
    c.rc("decrease_reservation_bad_extent_list", memory(XENMEM_DECREASE_RESERVATION, &mut r), 0);
    let mut r = reservation(ptr(&mut far_gfn), 10, DOMID_SELF);
    c.rc("decrease_reservation_order_too_large", memory(XENMEM_DECREASE_RESERVATION, &mut r), 0);
    let mut r = reservation(ptr(&mut far_gfn), 0, NONEXISTENT);
    c.rc("decrease_reservation_nonexistent_domain", memory(XENMEM_DECREASE_RESERVATION, &mut r), 0);
    let mut r = reservation(ptr(&mut far_gfn), 10, DOMID_SELF);
    c.rc("populate_physmap_order_too_large", memory(XENMEM_POPULATE_PHYSMAP, &mut r), 0);
    let mut gfn = BALLOON.gfn();
    BALLOON.write(0, 1);
    compiler_fence(Ordering::SeqCst);
    let mut r = reservation(ptr(&mut gfn), 0, DOMID_SELF);
    let out = memory(XENMEM_DECREASE_RESERVATION, &mut r);
    c.rc("balloon_out_one_page", out, 1);
    let mut r = reservation(ptr(&mut gfn), 0, DOMID_SELF);
    let back = memory(XENMEM_POPULATE_PHYSMAP, &mut r);
    let usable = if back == 1 || out != 1 {
        // The page is there again (or never left): it must be usable memory.
        BALLOON.write(7, 0x1234_5678);
        BALLOON.read(7) == 0x1234_5678
    } else {
        false
    };
    c.check("balloon_in_one_page", back == 1 && usable, format_args!("rc={} usable={usable} expected=1", Rc(back)));

    let Some(peer) = x.peer else {
        return;
    };
    let mut dom = peer;
    c.rc("current_reservation_other_domain", memory(XENMEM_CURRENT_RESERVATION, &mut dom), -EPERM);
    let mut a = shared_info(peer, XENMAPSPACE_SHARED_INFO, 0, spare);
    c.rc("add_to_physmap_other_domain", memory(XENMEM_ADD_TO_PHYSMAP, &mut a), -EPERM);
    let mut r = reservation(ptr(&mut far_gfn), 0, peer);
    c.rc("decrease_reservation_other_domain", memory(XENMEM_DECREASE_RESERVATION, &mut r), 0);
}

fn param(domid: DomId, index: u32, value: u64) -> XenHvmParam {
    XenHvmParam { domid, pad: 0, index, value }
}

fn hvm_op(c: &mut Checks, x: &Ctx) {
    c.rc("hvm_set_param_bad_pointer", bad(HYPERVISOR_HVM_OP, HVMOP_SET_PARAM, UNMAPPED), -EFAULT);
    c.rc("hvm_get_param_bad_pointer", bad(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, UNMAPPED), -EFAULT);
    c.rc("hvm_get_param_not_ram", bad(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, NOT_RAM), -EFAULT);
    c.rc("hvm_pagetable_dying_bad_pointer", bad(HYPERVISOR_HVM_OP, HVMOP_PAGETABLE_DYING, UNMAPPED), -EFAULT);
    c.rc("hvm_unknown_op", bad(HYPERVISOR_HVM_OP, 99, SCRATCH.addr()), -ENOSYS);

    for index in [HVM_NR_PARAMS, u32::MAX] {
        c.rc(format_args!("set_param_index{index}"), hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, index, 0)), -EINVAL);
        c.rc(format_args!("get_param_index{index}"), hvm(HVMOP_GET_PARAM, &mut param(DOMID_SELF, index, 0)), -EINVAL);
    }
    // Parameters only the toolstack may set (or read), and deprecated ones.
    for (name, index) in
        [("store_pfn", HVM_PARAM_STORE_PFN), ("console_pfn", HVM_PARAM_CONSOLE_PFN), ("ident_pt", HVM_PARAM_IDENT_PT)]
    {
        c.rc(format_args!("set_param_{name}"), hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, index, 0x1000)), -EPERM);
    }
    for (name, index) in [("ident_pt", HVM_PARAM_IDENT_PT), ("timer_mode", HVM_PARAM_TIMER_MODE)] {
        c.rc(format_args!("get_param_{name}"), hvm(HVMOP_GET_PARAM, &mut param(DOMID_SELF, index, 0)), -EPERM);
    }
    c.rc("set_param_deprecated", hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, HVM_PARAM_PAE_ENABLED, 1)), -EINVAL);
    c.rc("get_param_deprecated", hvm(HVMOP_GET_PARAM, &mut param(DOMID_SELF, HVM_PARAM_PAE_ENABLED, 0)), -EINVAL);
    c.rc(
        "set_param_x87_fip_width_bad",
        hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, HVM_PARAM_X87_FIP_WIDTH, 3)),
        -EINVAL,
    );
    // The guest may read where its console is, and (re)set its console event channel.
    let mut p = param(DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN, 0);
    let rc = hvm(HVMOP_GET_PARAM, &mut p);
    c.check("get_param_console_evtchn", rc == 0 && p.value != 0, format_args!("rc={} value={}", Rc(rc), p.value));
    if rc == 0 {
        let mut same = param(DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN, p.value);
        c.rc("set_param_console_evtchn", hvm(HVMOP_SET_PARAM, &mut same), 0);
    }
    // A GSI callback: a PVH domain has no I/O APIC, so Xen keeps the vector callback.
    let gsi = callback_irq(HVM_PARAM_CALLBACK_TYPE_GSI, 5);
    c.rc("set_param_callback_gsi", hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, gsi)), 0);
    let vector = callback_via_vector(CALLBACK_VECTOR);
    c.rc("set_param_callback_vector", hvm(HVMOP_SET_PARAM, &mut param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, vector)), 0);
    c.rc(
        "set_param_nonexistent_domain",
        hvm(HVMOP_SET_PARAM, &mut param(NONEXISTENT, HVM_PARAM_CALLBACK_IRQ, vector)),
        -ESRCH,
    );
    c.rc(
        "get_param_nonexistent_domain",
        hvm(HVMOP_GET_PARAM, &mut param(NONEXISTENT, HVM_PARAM_CALLBACK_IRQ, 0)),
        -ESRCH,
    );
    let mut dying = XenHvmPagetableDying { domid: DOMID_SELF, pad: [0; 3], gpa: 0x1000 };
    c.rc("pagetable_dying_self", hvm(HVMOP_PAGETABLE_DYING, &mut dying), -EINVAL);
    let mut dying = XenHvmPagetableDying { domid: NONEXISTENT, pad: [0; 3], gpa: 0x1000 };
    c.rc("pagetable_dying_nonexistent_domain", hvm(HVMOP_PAGETABLE_DYING, &mut dying), -ESRCH);

    let Some(peer) = x.peer else {
        return;
    };
    c.rc("set_param_other_domain", hvm(HVMOP_SET_PARAM, &mut param(peer, HVM_PARAM_CALLBACK_IRQ, vector)), -EPERM);
    c.rc("get_param_other_domain", hvm(HVMOP_GET_PARAM, &mut param(peer, HVM_PARAM_CALLBACK_IRQ, 0)), -EPERM);
    let mut dying = XenHvmPagetableDying { domid: peer, pad: [0; 3], gpa: 0x1000 };
    c.rc("pagetable_dying_other_domain", hvm(HVMOP_PAGETABLE_DYING, &mut dying), -EOPNOTSUPP);
}

fn vcpu_op(c: &mut Checks) {
    let mut info = VcpuRunstateInfo::default();
    for id in [99, u32::MAX] {
        c.rc(format_args!("vcpu_op_vcpu{id}"), vcpu(VCPUOP_IS_UP, id, &mut info), -ENOENT);
    }
    c.rc("vcpu_is_up", vcpu(VCPUOP_IS_UP, 0, &mut info), 1);
    for (name, cmd) in [
        ("get_runstate_info", VCPUOP_GET_RUNSTATE_INFO),
        ("register_runstate_memory_area", VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA),
        ("register_vcpu_time_memory_area", VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA),
        ("register_vcpu_info", VCPUOP_REGISTER_VCPU_INFO),
        ("set_periodic_timer", VCPUOP_SET_PERIODIC_TIMER),
        ("set_singleshot_timer", VCPUOP_SET_SINGLESHOT_TIMER),
        ("initialise", VCPUOP_INITIALISE),
    ] {
        c.rc(format_args!("vcpu_{name}_bad_pointer"), hc(HYPERVISOR_VCPU_OP, cmd, 0, UNMAPPED), -EFAULT);
    }
    let rc = vcpu(VCPUOP_GET_RUNSTATE_INFO, 0, &mut info);
    c.check(
        "get_runstate_info",
        rc == 0 && info.state == RUNSTATE_RUNNING,
        format_args!("rc={} state={} expected=running({RUNSTATE_RUNNING})", Rc(rc), info.state),
    );
    let mut reg = VcpuRegisterVcpuInfo { mfn: SCRATCH.gfn(), offset: PAGE_SIZE as u32 - 1, rsvd: 0 };
    c.rc("register_vcpu_info_beyond_page", vcpu(VCPUOP_REGISTER_VCPU_INFO, 0, &mut reg), -ENXIO);
    let mut reg = VcpuRegisterVcpuInfo { mfn: SCRATCH.gfn(), offset: 4, rsvd: 0 };
    c.rc("register_vcpu_info_misaligned", vcpu(VCPUOP_REGISTER_VCPU_INFO, 0, &mut reg), -ENXIO);
    let mut reg = VcpuRegisterVcpuInfo { mfn: NOT_RAM >> 12, offset: 0, rsvd: 0 };
    c.rc("register_vcpu_info_not_ram", vcpu(VCPUOP_REGISTER_VCPU_INFO, 0, &mut reg), -EINVAL);
    let mut period = VcpuSetPeriodicTimer { period_ns: 999_999 };
    c.rc("set_periodic_timer_below_1ms", vcpu(VCPUOP_SET_PERIODIC_TIMER, 0, &mut period), -EINVAL);
    let mut period = VcpuSetPeriodicTimer { period_ns: u64::MAX };
    c.rc("set_periodic_timer_beyond_stime", vcpu(VCPUOP_SET_PERIODIC_TIMER, 0, &mut period), -EINVAL);
    c.rc("stop_periodic_timer", vcpu(VCPUOP_STOP_PERIODIC_TIMER, 0, &mut info), 0);
    c.rc("stop_singleshot_timer", vcpu(VCPUOP_STOP_SINGLESHOT_TIMER, 0, &mut info), 0);
    // vCPU 0 is up and running: initialising it again is refused.
    let mut ctx = VcpuHvmContext::default();
    c.rc("initialise_running_vcpu", vcpu(VCPUOP_INITIALISE, 0, &mut ctx), -EEXIST);
    // Only the hardware domain learns physical CPU ids; an NMI request takes no argument.
    let mut physid = VcpuGetPhysid::default();
    c.rc("get_physid", vcpu(VCPUOP_GET_PHYSID, 0, &mut physid), -EINVAL);
    c.rc("send_nmi_with_argument", vcpu(VCPUOP_SEND_NMI, 0, &mut physid), -EINVAL);
    c.rc("vcpu_unknown_op", vcpu(99, 0, &mut info), -ENOSYS);
    c.rc("vcpu_op_cmd_upper_half_ignored", hc(HYPERVISOR_VCPU_OP, (1 << 32) | VCPUOP_IS_UP, 0, 0), 1);

    if !has_second_vcpu() {
        return;
    }
    // vCPU 1 waits for a STARTUP IPI that never comes: down, and without a context to run.
    c.rc("vcpu1_is_down", vcpu(VCPUOP_IS_UP, 1, &mut info), 0);
    c.rc("vcpu1_up_without_context", vcpu(VCPUOP_UP, 1, &mut info), -EINVAL);
    c.rc("vcpu1_initialise_bad_pointer", hc(HYPERVISOR_VCPU_OP, VCPUOP_INITIALISE, 1, UNMAPPED), -EFAULT);
    // Another vCPU (this one) is up, so taking vCPU 1 down is allowed; it stays down.
    c.rc("vcpu1_down", vcpu(VCPUOP_DOWN, 1, &mut info), 0);
    c.rc("vcpu1_still_down", vcpu(VCPUOP_IS_UP, 1, &mut info), 0);
    initialise_checks(c);
    start_second_vcpu(c);
}

/// What vCPU 1 has done: [`AP_STARTED`] when it ran, [`AP_RESUMED`] after it was brought
/// up again from its own VCPUOP_down.
static AP_STAGE: AtomicU32 = AtomicU32::new(0);
const AP_STARTED: u32 = 1;
const AP_RESUMED: u32 = 2;
const AP_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct ApStack(UnsafeCell<[u8; AP_STACK_SIZE]>);
// SAFETY: only vCPU 1 uses the stack, and only as its stack.
unsafe impl Sync for ApStack {}
static AP_STACK: ApStack = ApStack(UnsafeCell::new([0; AP_STACK_SIZE]));

/// vCPU 1's entry (64-bit, interrupts off): reports, takes itself down, reports again when
/// brought back up, and halts with interrupts off (which takes it down for good).
extern "C" fn second_vcpu_main() -> ! {
    AP_STAGE.store(AP_STARTED, Ordering::SeqCst);
    let mut none = ();
    if vcpu(VCPUOP_DOWN, 1, &mut none) == 0 {
        AP_STAGE.store(AP_RESUMED, Ordering::SeqCst);
    }
    crate::arch::halt_forever()
}

/// A 64-bit context that runs `second_vcpu_main` with this vCPU's paging.
fn second_vcpu_context() -> VcpuHvmX86_64 {
    let (cr0, cr3, cr4) = crate::arch::control_registers();
    let efer = crate::traps::rdmsr_checked(MSR_EFER).unwrap_or(0);
    // As if called: the return-address slot below a 16-byte aligned top.
    let stack_top = AP_STACK.0.get() as u64 + AP_STACK_SIZE as u64 - 8;
    VcpuHvmX86_64 {
        rip: second_vcpu_main as *const () as u64,
        rsp: stack_top,
        rflags: 0x2,
        cr0,
        cr3,
        cr4,
        efer,
        ..Default::default()
    }
}

/// A valid flat 32-bit context (paging off), the base the bad ones below start from.
fn flat32() -> VcpuHvmX86_32 {
    VcpuHvmX86_32::pvh_entry(0x1000, 0)
}

/// A named change that makes a valid context invalid.
type Spoiler<T> = (&'static str, fn(&mut T));

/// Contexts Xen refuses with -EINVAL (`arch_set_info_hvm_guest`), each on the never-started
/// vCPU 1, which must stay uninitialised.
fn initialise_checks(c: &mut Checks) {
    let mut initialise = |name: &str, mut ctx: VcpuHvmContext| {
        c.rc(format_args!("initialise_{name}"), vcpu(VCPUOP_INITIALISE, 1, &mut ctx), -EINVAL);
    };
    let good64 = second_vcpu_context();
    let mut ctx = VcpuHvmContext::x86_64(&good64);
    ctx.mode = 2;
    initialise("unknown_mode", ctx);
    let mut ctx = VcpuHvmContext::x86_64(&good64);
    ctx.pad = 1;
    initialise("pad", ctx);
    let bad64: [Spoiler<VcpuHvmX86_64>; 5] = [
        ("64_noncanonical_rip", |r| r.rip = 0x0000_8000_0000_0000),
        ("64_no_paging", |r| r.cr0 &= !(1 << 31)),
        ("64_no_pae", |r| r.cr4 &= !(1 << 5)),
        ("64_no_lme", |r| r.efer &= !(1 << 8)),
        ("64_cr4_vmxe", |r| r.cr4 |= 1 << 13),
    ];
    for (name, spoil) in bad64 {
        let mut regs = good64;
        spoil(&mut regs);
        initialise(name, VcpuHvmContext::x86_64(&regs));
    }
    let bad32: [Spoiler<VcpuHvmX86_32>; 9] = [
        ("32_pad1", |r| r.pad1 = 1),
        ("32_null_cs", |r| r.cs_ar = 0),
        ("32_data_segment_in_cs", |r| r.cs_ar = 0xc93),
        ("32_code_segment_in_ss", |r| r.ss_ar = 0xc9b),
        ("32_not_present_ss", |r| r.ss_ar = 0xc13),
        ("32_ar_bits_12_15", |r| r.ds_ar = 0xfc93),
        ("32_tr_not_busy_tss", |r| r.tr_ar = 0x82),
        ("32_eip_beyond_cs_limit", |r| (r.cs_ar, r.cs_limit, r.eip) = (0x49b, 0xffff, 0x10000)),
        ("32_ss_dpl_differs", |r| r.ss_ar = 0xcf3),
    ];
    for (name, spoil) in bad32 {
        let mut regs = flat32();
        spoil(&mut regs);
        initialise(name, VcpuHvmContext::x86_32(&regs));
    }
    let mut info = VcpuRunstateInfo::default();
    c.rc("vcpu1_uninitialised_after_refusals", vcpu(VCPUOP_UP, 1, &mut info), -EINVAL);
}

/// Waits (bounded) for vCPU 1 to reach `stage`.
fn wait_for_stage(stage: u32) -> bool {
    let deadline = xen::now_ns() + 2_000_000_000;
    while AP_STAGE.load(Ordering::SeqCst) != stage {
        if xen::now_ns() > deadline {
            return false;
        }
        xen::sched_yield();
    }
    true
}

/// Waits (bounded) until vCPU 1 reports `up`.
fn wait_until_up(up: i64) -> i64 {
    let mut info = VcpuRunstateInfo::default();
    let deadline = xen::now_ns() + 2_000_000_000;
    loop {
        let rc = vcpu(VCPUOP_IS_UP, 1, &mut info);
        if rc == up || xen::now_ns() > deadline {
            return rc;
        }
        xen::sched_yield();
    }
}

/// Starts vCPU 1 from a 64-bit context (VCPUOP_initialise, then VCPUOP_up), lets it take
/// itself down, and brings it back up where it stopped.
fn start_second_vcpu(c: &mut Checks) {
    let mut info = VcpuRunstateInfo::default();
    let mut ctx = VcpuHvmContext::x86_64(&second_vcpu_context());
    c.rc("initialise_vcpu1", vcpu(VCPUOP_INITIALISE, 1, &mut ctx), 0);
    c.rc("initialise_vcpu1_twice", vcpu(VCPUOP_INITIALISE, 1, &mut ctx), -EEXIST);
    c.rc("vcpu1_down_until_up", vcpu(VCPUOP_IS_UP, 1, &mut info), 0);
    c.check(
        "vcpu1_not_run_before_up",
        AP_STAGE.load(Ordering::SeqCst) == 0,
        format_args!("stage={}", AP_STAGE.load(Ordering::SeqCst)),
    );
    c.rc("vcpu1_up", vcpu(VCPUOP_UP, 1, &mut info), 0);
    c.check("vcpu1_ran", wait_for_stage(AP_STARTED), format_args!("stage={}", AP_STAGE.load(Ordering::SeqCst)));
    c.rc("vcpu1_took_itself_down", wait_until_up(0), 0);
    c.rc("vcpu1_up_again", vcpu(VCPUOP_UP, 1, &mut info), 0);
    c.check(
        "vcpu1_resumed_after_down",
        wait_for_stage(AP_RESUMED),
        format_args!("stage={}", AP_STAGE.load(Ordering::SeqCst)),
    );
    c.rc("vcpu1_halted_down", wait_until_up(0), 0);
}

fn vm_assist_and_others(c: &mut Checks) {
    let runstate = VMASST_TYPE_RUNSTATE_UPDATE_FLAG;
    c.rc("vm_assist_pv_only_type", hc(HYPERVISOR_VM_ASSIST, VMASST_CMD_ENABLE, VMASST_TYPE_4GB_SEGMENTS, 0), -EINVAL);
    c.rc("vm_assist_type_beyond_long", hc(HYPERVISOR_VM_ASSIST, VMASST_CMD_ENABLE, 64, 0), -EINVAL);
    c.rc("vm_assist_unknown_cmd", hc(HYPERVISOR_VM_ASSIST, 99, runstate, 0), -ENOSYS);
    c.rc("vm_assist_enable_runstate_flag", hc(HYPERVISOR_VM_ASSIST, VMASST_CMD_ENABLE, runstate, 0), 0);
    c.rc("vm_assist_disable_runstate_flag", hc(HYPERVISOR_VM_ASSIST, VMASST_CMD_DISABLE, runstate, 0), 0);

    c.rc("physdev_unknown_op", hc(HYPERVISOR_PHYSDEV_OP, 99, SCRATCH.addr(), 0), -ENOSYS);
    c.rc("platform_op_bad_pointer", hc(HYPERVISOR_PLATFORM_OP, UNMAPPED, 0, 0), -EFAULT);
    let mut op = [0u32; PLATFORM_OP_SIZE / 4];
    op[0] = XENPF_GET_CPU_VERSION;
    c.rc("platform_op_wrong_interface_version", hc(HYPERVISOR_PLATFORM_OP, ptr(&mut op), 0, 0), -EACCES);
    op[1] = XENPF_INTERFACE_VERSION;
    c.rc("platform_op_not_privileged", hc(HYPERVISOR_PLATFORM_OP, ptr(&mut op), 0, 0), -EPERM);

    // Hypercalls an HVM guest does not have (PV-only ones, and numbers beyond the table).
    for nr in [
        HYPERVISOR_SET_TRAP_TABLE,
        HYPERVISOR_MMU_UPDATE,
        HYPERVISOR_STACK_SWITCH,
        HYPERVISOR_IRET,
        HYPERVISOR_NMI_OP,
        HYPERVISOR_CALLBACK_OP,
        64,
        0x1_0000_0000,
    ] {
        c.rc(format_args!("hypercall{nr}"), hc(nr, 0, 0, 0), -ENOSYS);
    }
}

/// Ferrovisor's control interface (domctl/sysctl) is domain 0's: a domU's call is read
/// (-EFAULT) and its version checked (-EACCES) first, as Xen does, then refused (-EPERM),
/// whatever it asks; so is mapping another domain's memory (the partner's, or our own).
fn control_interface(c: &mut Checks, x: &Ctx) {
    use xen_abi::ctl::*;
    for (name, nr) in [("domctl", HYPERVISOR_DOMCTL), ("sysctl", HYPERVISOR_SYSCTL)] {
        c.rc(format_args!("{name}_bad_pointer"), hc(nr, UNMAPPED, 0, 0), -EFAULT);
        let mut op = Domctl { cmd: DOMCTL_GETDOMAININFO, interface_version: 0x15, ..Domctl::default() }.to_bytes();
        c.rc(format_args!("{name}_wrong_interface_version"), hc(nr, ptr(&mut op), 0, 0), -EACCES);
    }
    for (name, cmd) in [
        ("createdomain", DOMCTL_CREATEDOMAIN),
        ("destroydomain", DOMCTL_DESTROYDOMAIN),
        ("pausedomain", DOMCTL_PAUSEDOMAIN),
        ("getdomaininfo", DOMCTL_GETDOMAININFO),
        ("setvcpucontext", DOMCTL_SETVCPUCONTEXT),
    ] {
        let mut op =
            Domctl { cmd, interface_version: CTL_INTERFACE_VERSION, domain: 0, ..Domctl::default() }.to_bytes();
        c.rc(format_args!("domctl_{name}_not_privileged"), hc(HYPERVISOR_DOMCTL, ptr(&mut op), 0, 0), -EPERM);
    }
    for (name, cmd) in [("physinfo", SYSCTL_PHYSINFO), ("getdomaininfolist", SYSCTL_GETDOMAININFOLIST)] {
        let mut op = Sysctl { cmd, interface_version: CTL_INTERFACE_VERSION, ..Sysctl::default() }.to_bytes();
        c.rc(format_args!("sysctl_{name}_not_privileged"), hc(HYPERVISOR_SYSCTL, ptr(&mut op), 0, 0), -EPERM);
    }
    let (mut idx, mut gpfn, mut err) = (0u64, 0x8_0000u64, 0i32);
    let mut batch = XenAddToPhysmapBatch {
        domid: DOMID_SELF,
        space: XENMAPSPACE_GMFN_FOREIGN as u16,
        size: 1,
        foreign_domid: x.peer.unwrap_or(x.me),
        idxs: ptr(&mut idx),
        gpfns: ptr(&mut gpfn),
        errs: ptr(&mut err),
    };
    c.rc("map_foreign_not_privileged", memory(XENMEM_ADD_TO_PHYSMAP_BATCH, &mut batch), -EPERM);
}

/// After all of that the guest still works: its console, an event through its upcall, its
/// timer.
fn still_healthy(c: &mut Checks, x: &Ctx) {
    let text = b"errors: still here\n";
    c.rc("healthy_console_io", xen::console_write(text), 0);
    let ok = match xen::bind_ipi(0) {
        Ok(port) => {
            let sent = xen::evtchn_send(port);
            let got = events::wait_for(port, LATE);
            xen::evtchn_close(port);
            sent == 0 && got
        }
        Err(_) => false,
    };
    c.check("healthy_event_upcall", ok, format_args!("ipi sent to self and taken by the upcall handler"));
    let t0 = xen::now_ns();
    events::sleep(5 * MS);
    let slept = xen::now_ns() - t0;
    c.check(
        "healthy_timer",
        (5 * MS..LATE).contains(&slept),
        format_args!("slept_us={} timer_port={}", slept / 1000, x.timer_port),
    );
}

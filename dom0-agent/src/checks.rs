//! `ctl-checks`: the control interface's answers to bad requests, checked from the one
//! domain allowed to make them. Each check prints `agent: ctl-check NAME=pass` or
//! `=fail got G want W`, and a summary line `agent: ctl-checks done passed=P failed=F`.
//! The domains made for the checks never run and are destroyed at the end.

use crate::hypercall::{self, Errno};
use crate::log::info;
use xen_abi::ctl::*;
use xen_abi::errno::*;
use xen_abi::vcpu::{VcpuHvmContext, VcpuHvmX86_32};
use xen_abi::xen::DOMID_FIRST_RESERVED;
use xen_abi::{DomId, XenStruct};

struct Tally {
    passed: u32,
    failed: u32,
}

impl Tally {
    /// Records that `name` returned `got` (0 or -errno) where `want` was expected.
    fn rc(&mut self, name: &str, got: Result<(), Errno>, want: i64) {
        let got = got.map_or_else(|e| -e.0, |()| 0);
        if got == want {
            self.passed += 1;
            info!("ctl-check {name}=pass");
        } else {
            self.failed += 1;
            info!("ctl-check {name}=fail got {got} want {want}");
        }
    }

    fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
            info!("ctl-check {name}=pass");
        } else {
            self.failed += 1;
            info!("ctl-check {name}=fail {detail}");
        }
    }
}

fn domctl(cmd: u32, domain: DomId, payload: &[u8]) -> (Result<(), Errno>, Domctl) {
    let mut op = Domctl { cmd, domain, ..Domctl::default() };
    op.u[..payload.len()].copy_from_slice(payload);
    let rc = hypercall::domctl(&mut op);
    (rc, op)
}

fn create(wanted: DomId, memory_kib: u64, vcpus: u32, weight: u32) -> (Result<(), Errno>, DomId) {
    let request = DomctlCreateDomain { max_vcpus: vcpus, memory_kib, weight, ..DomctlCreateDomain::default() };
    let (rc, op) = domctl(DOMCTL_CREATEDOMAIN, wanted, &request.to_bytes());
    (rc, op.domain)
}

fn info_of(domid: DomId) -> (Result<(), Errno>, DomctlGetDomainInfo) {
    let (rc, op) = domctl(DOMCTL_GETDOMAININFO, domid, &[]);
    (rc, DomctlGetDomainInfo::read_from(&op.u).expect("payload fits"))
}

/// Runs the checks and prints their results.
pub fn run() {
    let mut t = Tally { passed: 0, failed: 0 };

    // Versions and unknown commands.
    let mut op = Domctl { cmd: DOMCTL_GETDOMAININFO, ..Domctl::default() };
    t.rc("domctl_bad_version", hypercall::domctl_with_version(&mut op, 0x15), -EACCES);
    let mut op = Sysctl { cmd: SYSCTL_PHYSINFO, ..Sysctl::default() };
    t.rc("sysctl_bad_version", hypercall::sysctl_with_version(&mut op, 0x15), -EACCES);
    t.rc("domctl_unknown_command", domctl(999, 0, &[]).0, -ENOSYS);
    t.rc("domctl_bad_pointer", hypercall::domctl_at(0xdead_0000_0000), -EFAULT);

    // Creation refusals.
    t.rc("create_memory_not_2m_multiple", create(0, 3000, 1, 0).0, -EINVAL);
    t.rc("create_memory_too_small", create(0, 2048, 1, 0).0, -EINVAL);
    t.rc("create_no_vcpus", create(0, 8192, 0, 0).0, -EINVAL);
    t.rc("create_too_many_vcpus", create(0, 8192, 65, 0).0, -EINVAL);
    t.rc("create_weight_too_large", create(0, 8192, 1, 70000).0, -EINVAL);
    t.rc("create_reserved_domid", create(DOMID_FIRST_RESERVED, 8192, 1, 0).0, -EINVAL);
    t.rc("create_memory_beyond_host", create(0, 1 << 40, 1, 0).0, -ENOMEM);

    // A domain to act on: paused, with no vCPU context.
    let (rc, a) = create(42, 8192, 1, 512);
    t.rc("create_with_wanted_id", rc, 0);
    t.check("create_gives_wanted_id", a == 42, format_args!("got domain {a}"));
    t.rc("create_existing_id", create(42, 8192, 1, 0).0, -EEXIST);
    let (rc, info) = info_of(a);
    t.rc("getdomaininfo", rc, 0);
    t.check(
        "getdomaininfo_fields",
        info.domain == a
            && info.flags & DOMINF_PAUSED != 0
            && info.flags & DOMINF_SHUTDOWN == 0
            && info.tot_pages == 2048
            && info.max_vcpu_id == 0
            && info.weight == 512
            && info.pause_count == 1,
        format_args!("{info:?}"),
    );
    t.rc("getdomaininfo_past_last", info_of(DOMID_FIRST_RESERVED - 1).0, -ESRCH);

    // vCPU contexts.
    let good = VcpuHvmContext::x86_32(&VcpuHvmX86_32::pvh_entry(0x1000, 0x2000)).to_bytes();
    let vc = |vcpu: u32, ctxt: u64| DomctlVcpuContext { vcpu, pad: 0, ctxt }.to_bytes();
    t.rc("setvcpucontext_no_such_vcpu", domctl(DOMCTL_SETVCPUCONTEXT, a, &vc(1, good.as_ptr() as u64)).0, -EINVAL);
    t.rc("setvcpucontext_bad_pointer", domctl(DOMCTL_SETVCPUCONTEXT, a, &vc(0, 0xdead_0000_0000)).0, -EFAULT);
    let mut bad = VcpuHvmContext::from_bytes(&good);
    bad.mode = 7;
    let bad = bad.to_bytes();
    t.rc("setvcpucontext_bad_mode", domctl(DOMCTL_SETVCPUCONTEXT, a, &vc(0, bad.as_ptr() as u64)).0, -EINVAL);
    t.rc("setvcpucontext", domctl(DOMCTL_SETVCPUCONTEXT, a, &vc(0, good.as_ptr() as u64)).0, 0);
    t.rc("setvcpucontext_twice", domctl(DOMCTL_SETVCPUCONTEXT, a, &vc(0, good.as_ptr() as u64)).0, -EEXIST);

    // Pausing.
    t.rc("pause", domctl(DOMCTL_PAUSEDOMAIN, a, &[]).0, 0);
    t.check("pause_counts", info_of(a).1.pause_count == 2, format_args!("{:?}", info_of(a).1));
    t.rc("pause_self", domctl(DOMCTL_PAUSEDOMAIN, 0, &[]).0, -EINVAL);
    t.rc("pause_no_such_domain", domctl(DOMCTL_PAUSEDOMAIN, 500, &[]).0, -ESRCH);
    let (_, b) = create(0, 8192, 2, 0);
    t.rc("unpause_without_context", domctl(DOMCTL_UNPAUSEDOMAIN, b, &[]).0, 0);
    t.rc("unpause_not_paused", domctl(DOMCTL_UNPAUSEDOMAIN, b, &[]).0, -EINVAL);

    // The host.
    let mut op = Sysctl { cmd: SYSCTL_PHYSINFO, ..Sysctl::default() };
    t.rc("physinfo", hypercall::sysctl(&mut op), 0);
    let p = SysctlPhysinfo::read_from(&op.u).expect("payload fits");
    t.check(
        "physinfo_fields",
        p.nr_cpus >= 1
            && p.capabilities & (PHYSCAP_HVM | PHYSCAP_HAP) == PHYSCAP_HVM | PHYSCAP_HAP
            && p.free_pages > 0
            && p.total_pages > p.free_pages
            && p.nr_domains >= 3,
        format_args!("{p:?}"),
    );
    let list = |max: u32, buffer: u64| {
        let mut op = Sysctl { cmd: SYSCTL_GETDOMAININFOLIST, ..Sysctl::default() };
        let l = SysctlGetDomainInfoList { max_domains: max, buffer, ..SysctlGetDomainInfoList::default() };
        l.write_to(&mut op.u).expect("payload fits");
        let rc = hypercall::sysctl(&mut op);
        (rc, SysctlGetDomainInfoList::read_from(&op.u).expect("payload fits").num_domains)
    };
    t.rc("domaininfolist_too_many", list(5000, 0).0, -EINVAL);
    t.rc("domaininfolist_bad_buffer", list(4, 0xdead_0000_0000).0, -EFAULT);
    let mut entries = [0u8; 8 * DomctlGetDomainInfo::SIZE];
    let (rc, n) = list(8, entries.as_mut_ptr() as u64);
    t.rc("domaininfolist", rc, 0);
    let ids: alloc::vec::Vec<DomId> = (0..n as usize)
        .map(|i| DomctlGetDomainInfo::read_from(&entries[i * DomctlGetDomainInfo::SIZE..]).expect("fits").domain)
        .collect();
    t.check("domaininfolist_ids", ids.contains(&0) && ids.contains(&a) && ids.contains(&b), format_args!("{ids:?}"));

    // Privileged hypercalls on other domains.
    t.rc("alloc_unbound_for_no_such_domain", hypercall::alloc_unbound(500, 0).map(drop), -ESRCH);
    t.rc("alloc_unbound_for_other_domain", hypercall::alloc_unbound(a, 0).map(drop), 0);
    t.rc("set_hvm_param_no_such_domain", hypercall::set_hvm_param(500, 17, 1), -ESRCH);
    let mut errs = [0i32; 2];
    t.rc("map_foreign_no_such_domain", hypercall::map_foreign(500, &[0, 1], &[0x7_0000, 0x7_0001], &mut errs), -ESRCH);
    t.rc("map_foreign_self", hypercall::map_foreign(0, &[0, 1], &[0x7_0000, 0x7_0001], &mut errs), -EPERM);
    let slots = crate::foreign::Slots::take(2).expect("window has room");
    let rc = hypercall::map_foreign(a, &[0, 1 << 30], &[slots.first, slots.first + 1], &mut errs);
    t.rc("map_foreign_partly_bad", rc, 0);
    t.check("map_foreign_errors", errs == [0, -EINVAL as i32], format_args!("{errs:?}"));
    t.rc("unmap_foreign", hypercall::unmap(slots.first), 0);
    t.rc("unmap_nothing", hypercall::unmap(slots.first + 1), -EINVAL);
    drop(slots);

    // Destruction.
    t.rc("destroy_self", domctl(DOMCTL_DESTROYDOMAIN, 0, &[]).0, -EINVAL);
    t.rc("destroy", domctl(DOMCTL_DESTROYDOMAIN, a, &[]).0, 0);
    t.rc("destroy_second", domctl(DOMCTL_DESTROYDOMAIN, b, &[]).0, 0);
    t.rc("destroy_no_such_domain", domctl(DOMCTL_DESTROYDOMAIN, 500, &[]).0, -ESRCH);
    info!("ctl-checks done passed={} failed={}", t.passed, t.failed);
}

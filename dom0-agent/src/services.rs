//! The agent's main loop: builds the boot-time domains, then serves their consoles and
//! xenstore rings, forwards console input and watches for their end. It sleeps in
//! `SCHEDOP_block` until one of its event channels fires (each domain's console and
//! xenstore channels, `VIRQ_DOM_EXC` and `VIRQ_CONSOLE`), so an idle host costs no CPU.

use crate::builder::{self, Built};
use crate::foreign::{self, SharedRing, PAGE};
use crate::hypercall;
use crate::log::info;
use crate::xenstored::Xenstored;
use crate::BootModule;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use domain_config::{plan_modules, DomainConfig};
use pv_rings::{ConsoleBackend, ConsoleConfig};
use xen_abi::ctl::*;
use xen_abi::DomId;

/// Frames of the window for other domains' pages (builder chunks and rings): 64 MiB.
const WINDOW_PAGES: u64 = 16384;

/// The agent's command-line options.
#[derive(Debug, Default)]
pub struct Options {
    pub exit_when_idle: bool,
    /// Times each boot-time domain is built (one after the other), at least 1.
    pub rebuild: u32,
    pub ctl_checks: bool,
}

impl Options {
    pub fn parse(cmdline: &str) -> Result<Options, String> {
        let mut o = Options { rebuild: 1, ..Options::default() };
        for word in cmdline.split_ascii_whitespace() {
            match word.split_once('=') {
                None if word == "exit-when-idle" => o.exit_when_idle = true,
                None if word == "ctl-checks" => o.ctl_checks = true,
                Some(("rebuild", n)) => {
                    o.rebuild =
                        n.parse().ok().filter(|&n| n >= 1).ok_or_else(|| format!("rebuild={n}: need a count >= 1"))?
                }
                _ => return Err(format!("unknown option {word:?}")),
            }
        }
        Ok(o)
    }
}

/// A domain the agent built and serves.
struct Served {
    domid: DomId,
    name: String,
    /// Which boot-time plan it came from, and builds of that plan still to do after it.
    plan: usize,
    rebuilds_left: u32,
    console: ConsoleBackend,
    ring: SharedRing,
    /// Our end of the domain's console channel.
    local_port: hypercall::LocalPort,
}

/// A domain to build: its configuration and modules.
struct Plan<'a> {
    config: DomainConfig,
    kernel: &'a [u8],
    initrd: Option<&'a [u8]>,
}

/// Groups the modules into domains ([`domain_config::plan_modules`]); with a malformed
/// list nothing is built.
fn plans(modules: &[BootModule]) -> Vec<Plan<'_>> {
    let plan = match plan_modules(modules.iter().map(|m| m.cmdline.as_str())) {
        Ok(plan) => plan,
        Err(e) => {
            info!("boot modules: {e}; no domain built");
            return Vec::new();
        }
    };
    for (index, why) in plan.ignored {
        info!("module {index}: {why}; ignored");
    }
    plan.domains
        .into_iter()
        .map(|d| Plan { config: d.config, kernel: modules[d.kernel].bytes, initrd: d.initrd.map(|i| modules[i].bytes) })
        .collect()
}

/// Starts serving a built domain's console.
fn serve(built: Built, plan: usize, rebuilds_left: u32) -> Result<Served, hypercall::Errno> {
    let ring = SharedRing::new(built.domid, built.console_gfn)?;
    let local_port = hypercall::bind_interdomain(built.domid, built.console_port)?;
    let mut console = ConsoleBackend::new(ConsoleConfig::default());
    console.connect(&ring);
    Ok(Served { domid: built.domid, name: built.name, plan, rebuilds_left, console, ring, local_port })
}

/// Relays a domain's console output as `(dN) line`.
fn drain_console(served: &mut Served) {
    let domid = served.domid;
    let result = served.console.drain_output(&served.ring, |line| {
        crate::log::line(format_args!("(d{domid}) {}", String::from_utf8_lossy(line)));
    });
    if let Err(e) = result {
        info!("domain {domid}: console ring: {e}");
    }
    if served.console.take_notify() {
        let _ = hypercall::send(served.local_port.number());
    }
}

/// Console input: what is typed on the hypervisor console goes to the console of the
/// domain built last that still runs (as `xl console` would attach to it).
#[derive(Default)]
struct ConsoleInput {
    /// Bytes read from the hypervisor but not yet taken by the guest's ring.
    pending: Vec<u8>,
}

impl ConsoleInput {
    /// Moves typed bytes into `target`'s console ring, as far as it has room.
    fn forward(&mut self, target: Option<&mut Served>) {
        let Some(target) = target else { return };
        let mut buf = [0u8; 128];
        while self.pending.len() < 4096 {
            match hypercall::console_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
                Err(e) => {
                    info!("reading console input failed: {e}");
                    break;
                }
            }
        }
        if self.pending.is_empty() {
            return;
        }
        let taken = target.console.write_input(&target.ring, &self.pending);
        self.pending.drain(..taken);
        if target.console.take_notify() {
            let _ = hypercall::send(target.local_port.number());
        }
    }
}

/// The state of every domain, from `getdomaininfolist` a page at a time; `None` (logged)
/// if the hypervisor refused, so that nothing is taken for gone on a failed call.
fn domain_infos() -> Option<Vec<DomctlGetDomainInfo>> {
    use xen_abi::XenStruct;
    const PAGE: usize = 64;
    let mut all = Vec::new();
    let mut first: DomId = 0;
    loop {
        let mut raw = [0u8; PAGE * DomctlGetDomainInfo::SIZE];
        let mut op = Sysctl { cmd: SYSCTL_GETDOMAININFOLIST, ..Sysctl::default() };
        let list = SysctlGetDomainInfoList {
            first_domain: first,
            max_domains: PAGE as u32,
            buffer: raw.as_mut_ptr() as u64,
            ..SysctlGetDomainInfoList::default()
        };
        list.write_to(&mut op.u).expect("payload fits");
        if let Err(e) = hypercall::sysctl(&mut op) {
            info!("getdomaininfolist failed: {e}");
            return None;
        }
        let count = (SysctlGetDomainInfoList::read_from(&op.u).expect("payload fits").num_domains as usize).min(PAGE);
        all.extend(
            raw.chunks_exact(DomctlGetDomainInfo::SIZE)
                .take(count)
                .map(|entry| DomctlGetDomainInfo::read_from(entry).expect("entry fits")),
        );
        match all.last().and_then(|last| last.domain.checked_add(1)) {
            Some(next) if count == PAGE => first = next,
            _ => return Some(all),
        }
    }
}

/// Describes how a domain ended from its info flags.
fn end_reason(info: &DomctlGetDomainInfo) -> &'static str {
    if info.flags & DOMINF_SHUTDOWN == 0 {
        return "destroyed";
    }
    match (info.flags >> DOMINF_SHUTDOWN_SHIFT) & 0xff {
        xen_abi::sched::SHUTDOWN_POWEROFF => "poweroff",
        xen_abi::sched::SHUTDOWN_REBOOT => "reboot",
        xen_abi::sched::SHUTDOWN_SUSPEND => "suspend",
        xen_abi::sched::SHUTDOWN_CRASH => "crash",
        xen_abi::sched::SHUTDOWN_WATCHDOG => "watchdog",
        _ => "other",
    }
}

/// Event-channel pending bits, in our shared_info page.
struct Events {
    shared_info: u64,
}

impl Events {
    fn word(&self, offset: u64) -> &'static core::sync::atomic::AtomicU64 {
        crate::arch::atomic_u64(self.shared_info + offset)
    }

    fn pending_word(&self, port: u32) -> &'static core::sync::atomic::AtomicU64 {
        let offset = xen_abi::field(xen_abi::xen::SharedInfo::FIELDS, "evtchn_pending").expect("field exists").offset;
        self.word(offset as u64 + u64::from(port / 64) * 8)
    }

    fn clear(&self, port: u32) {
        self.pending_word(port).fetch_and(!(1 << (port % 64)), core::sync::atomic::Ordering::AcqRel);
    }

    /// Takes note of the upcall: vCPU 0's `evtchn_upcall_pending` and pending selector
    /// (in shared_info's first `vcpu_info`) go back to 0, so that `SCHEDOP_block` sleeps
    /// until the next event. Done before looking at the ports, so none is missed.
    fn acknowledge(&self) {
        use core::sync::atomic::Ordering::AcqRel;
        let field = |name| xen_abi::field(xen_abi::xen::VcpuInfo::FIELDS, name).expect("field exists").offset as u64;
        // evtchn_upcall_pending is the first byte of the first word (the mask, the second
        // byte, stays as it is).
        self.word(field("evtchn_upcall_pending")).fetch_and(!0xff, AcqRel);
        self.word(field("evtchn_pending_sel")).swap(0, AcqRel);
    }
}

/// Builds `plan` and serves it; logs and returns `None` if that fails.
fn start(plans: &[Plan<'_>], index: usize, rebuilds_left: u32, xenstored: &mut Xenstored) -> Option<Served> {
    let plan = &plans[index];
    let name = &plan.config.name;
    match builder::build(&plan.config, plan.kernel, plan.initrd, xenstored) {
        Ok(built) => {
            let domid = built.domid;
            info!("domain {domid} ({name}) built and started, uuid {}", crate::uuid::to_string(&built.uuid));
            match serve(built, index, rebuilds_left) {
                Ok(s) => Some(s),
                Err(e) => {
                    info!("domain {domid} ({name}): cannot serve its console ({e}); destroying it");
                    xenstored.remove_domain(domid);
                    let _ = builder::destroy(domid);
                    None
                }
            }
        }
        Err(e) => {
            info!("domain {name:?} not built: {e}");
            None
        }
    }
}

/// Builds the boot-time domains and serves them; never returns.
pub fn run(modules: Vec<BootModule>, ram_end: u64, options: &Options) -> ! {
    // Our physical space above RAM: the hypervisor's special pages, then shared_info, then
    // the window for other domains' pages.
    let shared_info_gfn = ram_end / PAGE + SPECIAL_PAGES;
    hypercall::map_shared_info(shared_info_gfn).expect("mapping shared_info");
    let events = Events { shared_info: shared_info_gfn * PAGE };
    foreign::init(shared_info_gfn + 1, WINDOW_PAGES);
    let dom_exc = hypercall::bind_virq(xen_abi::xen::VIRQ_DOM_EXC).expect("binding VIRQ_DOM_EXC");
    let console_virq = hypercall::bind_virq(xen_abi::xen::VIRQ_CONSOLE).expect("binding VIRQ_CONSOLE");
    let mut input = ConsoleInput::default();
    if options.ctl_checks {
        crate::checks::run();
    }

    let mut xenstored = Xenstored::new();
    let plans = plans(&modules);
    let mut served: Vec<Served> =
        (0..plans.len()).filter_map(|i| start(&plans, i, options.rebuild - 1, &mut xenstored)).collect();
    info!("stack headroom after building: {} KiB", crate::stack_headroom() / 1024);

    loop {
        events.acknowledge();
        events.clear(dom_exc);
        events.clear(console_virq);
        for port in xenstored.ports() {
            events.clear(port);
        }
        xenstored.service();
        for s in served.iter_mut() {
            events.clear(s.local_port.number());
            drain_console(s);
        }
        let infos = domain_infos();
        let mut again = Vec::new();
        served.retain_mut(|s| {
            let Some(infos) = &infos else { return true };
            let info = infos.iter().find(|i| i.domain == s.domid);
            let ended = info.is_none_or(|i| i.flags & (DOMINF_SHUTDOWN | DOMINF_DYING) != 0);
            if ended {
                drain_console(s);
                s.console.flush_line(|line| {
                    crate::log::line(format_args!("(d{}) {}", s.domid, String::from_utf8_lossy(line)))
                });
                info!("domain {} ({}) ended: {}; destroying it", s.domid, s.name, info.map_or("gone", end_reason));
                xenstored.remove_domain(s.domid);
                if let Err(e) = builder::destroy(s.domid) {
                    info!("destroying domain {} failed: {e}", s.domid);
                }
                if s.rebuilds_left > 0 {
                    again.push((s.plan, s.rebuilds_left - 1));
                }
            }
            !ended
        });
        served.extend(again.into_iter().filter_map(|(plan, left)| start(&plans, plan, left, &mut xenstored)));
        input.forward(served.last_mut());
        if options.exit_when_idle && served.is_empty() {
            info!("no domains left; exit-when-idle: shutting down");
            hypercall::shutdown(xen_abi::sched::SHUTDOWN_POWEROFF);
        }
        // Until any of our channels fires (SCHEDOP_poll would cap them at 128).
        hypercall::block();
    }
}

//! Boot-time domains: guests handed to the hypervisor as boot modules, built once the
//! host is up (until the dom0 agent takes this over), and the `exit-when-idle` option
//! that ends the run when they are all gone.
//!
//! A domain is a module whose command line is
//! `domain [name=NAME] [memory=MiB] [vcpus=N] [weight=W] [cpus=LIST] [cmdline=REST]`
//! (REST, to the end of the line, is the guest's command line), optionally followed by a
//! module whose command line is `initrd`, which becomes that domain's initrd.
//!
//! If the first module's command line is `dom0 [vcpus=N] [cmdline=REST]`, it is the dom0
//! agent: the hypervisor builds it as domain 0 (privileged, RAM identity-mapped, `dom0_mem=`
//! on the hypervisor's command line, default [`DEFAULT_DOM0_MEMORY_MIB`] plus room for the
//! modules) and hands it every other module, with its command line, to build the domains
//! itself. The run is then over when dom0 ends (with `exit-when-idle`, the agent ends once
//! its domains have).

use crate::domain::{self, DomainConfig, DomainState, DomainSummary, ShutdownReason};
use crate::mm::{frames, phys_to_virt};
use crate::power::{self, Outcome};
use crate::{cmdline, console, virt};
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bootinfo::{BootInfo, Module};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use domain_config::{parse_options, plan_modules};
use spin::Mutex;
use x86_64::PhysAddr;

/// Dom0's memory without `dom0_mem=`, besides twice what its modules take (their copy,
/// and room to unpack compressed kernels).
pub const DEFAULT_DOM0_MEMORY_MIB: u64 = 128;

/// A domain to build from boot modules.
pub struct BootDomain<'a> {
    pub config: DomainConfig,
    pub kernel: &'a Module,
    pub initrd: Option<&'a Module>,
}

/// Groups the boot modules into domains ([`domain_config::plan_modules`]).
pub fn from_modules(info: &BootInfo) -> Result<Vec<BootDomain<'_>>, String> {
    let modules = info.modules();
    let plan = plan_modules(modules.iter().map(|m| m.cmdline.as_str()))?;
    for (index, why) in plan.ignored {
        log::warn!("module {index}: {why}; ignored");
    }
    Ok(plan
        .domains
        .into_iter()
        .map(|d| BootDomain { config: d.config, kernel: &modules[d.kernel], initrd: d.initrd.map(|i| &modules[i]) })
        .collect())
}

/// The bytes of a boot module.
pub fn module_bytes(module: &Module) -> &'static [u8] {
    // SAFETY: boot modules are reserved from the frame allocator for the hypervisor's
    // lifetime and covered by the direct map; nothing writes to them.
    unsafe {
        core::slice::from_raw_parts(phys_to_virt(PhysAddr::new(module.start)).as_ptr::<u8>(), module.len() as usize)
    }
}

static STARTED: AtomicBool = AtomicBool::new(false);
static EXPECTED: AtomicUsize = AtomicUsize::new(0);
static NOT_CREATED: AtomicUsize = AtomicUsize::new(0);
static FREE_BEFORE: AtomicU64 = AtomicU64::new(0);
static FINISHED: Mutex<Vec<DomainSummary>> = Mutex::new(Vec::new());

fn exit_when_idle() -> bool {
    cmdline::get("exit-when-idle").is_some()
}

/// Whether domain 0 was built (the agent, not the hypervisor, builds the other domains).
static DOM0: AtomicBool = AtomicBool::new(false);

/// Without dom0 the host has nothing to do: the run ends.
fn dom0_failed(why: String) -> ! {
    log::error!("dom0 not built: {why}");
    power::stop(Outcome::Failure)
}

/// Builds dom0 from the first module; false if that module is not a dom0 kernel.
fn start_dom0(info: &BootInfo) -> bool {
    let Some((first, rest)) = info.modules().split_first() else {
        return false;
    };
    let line = first.cmdline.as_str();
    let Some(options) = line.strip_prefix("dom0").filter(|o| o.is_empty() || o.starts_with(' ')) else {
        return false;
    };
    let dom0 = DomainConfig { name: "dom0".to_string(), ..DomainConfig::default() };
    let mut config = match parse_options(options, dom0) {
        Ok(c) => c,
        Err(e) => dom0_failed(e),
    };
    let modules_bytes: u64 = rest.iter().map(|m| m.len().next_multiple_of(4096)).sum();
    config.memory_mib = match cmdline::get("dom0_mem") {
        Some(text) => match cmdline::parse_size(text) {
            Some(bytes) => bytes.div_ceil(2 << 20) * 2,
            None => dom0_failed(alloc::format!("dom0_mem={text}: not a size (such as 256M or 1G)")),
        },
        None => DEFAULT_DOM0_MEMORY_MIB + (2 * modules_bytes).div_ceil(2 << 20) * 2,
    };
    let modules: Vec<pvh_loader::ModuleData<'_>> = rest
        .iter()
        .map(|m| pvh_loader::ModuleData { bytes: module_bytes(m), cmdline: m.cmdline.as_str().as_bytes() })
        .collect();
    FREE_BEFORE.store(frames::stats().free, Ordering::Relaxed);
    if let Err(e) = domain::create_dom0(&config, module_bytes(first), &modules) {
        dom0_failed(alloc::format!("{e}"));
    }
    DOM0.store(true, Ordering::Release);
    STARTED.store(true, Ordering::Release);
    true
}

/// Builds the boot-time domains. Called once by the BSP when the host is ready.
pub fn start(info: &BootInfo) {
    if start_dom0(info) {
        return;
    }
    let domains = match from_modules(info) {
        Ok(d) => d,
        Err(e) => {
            log::error!("boot-time domains: {e}");
            if exit_when_idle() {
                power::stop(Outcome::Failure);
            }
            return;
        }
    };
    if domains.is_empty() {
        if exit_when_idle() {
            log::info!("exit-when-idle: no boot-time domains; stopping");
            power::stop(Outcome::Success);
        }
        return;
    }
    if let Err(why) = virt::detect() {
        log::error!("cannot start {} boot-time domain(s): virtualization unavailable: {why}", domains.len());
        if exit_when_idle() {
            power::stop(Outcome::Failure);
        }
        return;
    }
    FREE_BEFORE.store(frames::stats().free, Ordering::Relaxed);
    for d in &domains {
        let initrd = d.initrd.map(module_bytes);
        match domain::create(&d.config, module_bytes(d.kernel), initrd) {
            Ok(_) => {
                EXPECTED.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                log::error!("domain {:?} not created: {e}", d.config.name);
                NOT_CREATED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    STARTED.store(true, Ordering::Release);
}

/// Collects destroyed domains; with `exit-when-idle`, ends the run when all are gone.
/// Called by CPU 0 whenever it is idle.
pub fn poll() {
    let released = domain::take_released();
    if released.is_empty() && !STARTED.load(Ordering::Acquire) {
        return;
    }
    let mut finished = FINISHED.lock();
    finished.extend(released);
    if !STARTED.load(Ordering::Acquire) {
        return;
    }
    if DOM0.load(Ordering::Acquire) {
        // The host runs as long as its control domain; its end ends the run.
        if domain::count() != 0 || !finished.iter().any(|s| s.id == 0) {
            return;
        }
    } else if !exit_when_idle() || finished.len() < EXPECTED.load(Ordering::Relaxed) {
        return;
    }
    // A guest that shuts itself down with reason "crash" crashed too (Xen's on_crash).
    let crashed = finished
        .iter()
        .filter(|s| matches!(s.state, DomainState::Crashed(_) | DomainState::Shutdown(ShutdownReason::Crash)))
        .count();
    for s in finished.iter() {
        console::write_fmt(format_args!(
            "DOMAIN id={} name={} state={} reason={} vcpus={} weight={} runtime_ns={} cpus_used={:#x} memory_kib={}\n",
            s.id,
            s.name,
            s.state.name(),
            s.state.reason(),
            s.vcpus,
            s.weight,
            s.runtime_ns,
            s.ran_on,
            s.memory_kib
        ));
    }
    let not_created = NOT_CREATED.load(Ordering::Relaxed);
    console::write_fmt(format_args!(
        "DOMAINS done total={} crashed={} not_created={not_created} free_frames_before={} free_frames_after={}\n",
        finished.len(),
        crashed,
        FREE_BEFORE.load(Ordering::Relaxed),
        frames::stats().free
    ));
    power::stop(if crashed == 0 && not_created == 0 { Outcome::Success } else { Outcome::Failure })
}

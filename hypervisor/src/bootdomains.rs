//! Boot-time domains: guests handed to the hypervisor as boot modules, built once the
//! host is up (until the dom0 agent takes this over), and the `exit-when-idle` option
//! that ends the run when they are all gone.
//!
//! A domain is a module whose command line is
//! `domain [name=NAME] [memory=MiB] [vcpus=N] [weight=W] [cpus=LIST] [cmdline=REST]`
//! (REST, to the end of the line, is the guest's command line), optionally followed by a
//! module whose command line is `initrd`, which becomes that domain's initrd.

use crate::domain::{self, DomainConfig, DomainState, DomainSummary, ShutdownReason, DEFAULT_WEIGHT};
use crate::mm::{frames, phys_to_virt};
use crate::power::{self, Outcome};
use crate::{cmdline, console, virt};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bootinfo::{BootInfo, Module};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;
use x86_64::PhysAddr;

pub const DEFAULT_MEMORY_MIB: u64 = 64;

/// A domain to build from boot modules.
pub struct BootDomain<'a> {
    pub config: DomainConfig,
    pub kernel: &'a Module,
    pub initrd: Option<&'a Module>,
}

/// Parses a CPU list such as `0-3,6` into an affinity mask.
pub fn parse_cpu_list(list: &str) -> Result<u64, String> {
    let mut mask = 0u64;
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: u32 = first.parse().map_err(|_| format!("cpus={list}: {part:?} is not a CPU number or range"))?;
        let last: u32 = last.parse().map_err(|_| format!("cpus={list}: {part:?} is not a CPU number or range"))?;
        if first > last || last >= 64 {
            return Err(format!("cpus={list}: {part:?} is not a range of CPUs 0-63"));
        }
        for cpu in first..=last {
            mask |= 1 << cpu;
        }
    }
    Ok(mask)
}

/// Parses a `domain ...` module command line.
pub fn parse_domain_line(line: &str) -> Result<DomainConfig, String> {
    let rest = line.strip_prefix("domain").ok_or_else(|| "not a domain module".to_string())?;
    let mut config = DomainConfig {
        name: String::new(),
        memory_mib: DEFAULT_MEMORY_MIB,
        vcpus: 1,
        weight: DEFAULT_WEIGHT,
        affinity: u64::MAX,
        cmdline: String::new(),
    };
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        if let Some(guest) = rest.strip_prefix("cmdline=") {
            config.cmdline = guest.to_string();
            break;
        }
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = tail.trim_start();
        let (key, value) = word.split_once('=').ok_or_else(|| format!("{word:?} is not key=value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{key}={v}: not a number"));
        match key {
            "name" => config.name = value.to_string(),
            "memory" => config.memory_mib = number(value)?,
            "vcpus" => config.vcpus = number(value)?.try_into().map_err(|_| format!("vcpus={value}: too large"))?,
            "weight" => config.weight = number(value)?.try_into().map_err(|_| format!("weight={value}: too large"))?,
            "cpus" => config.affinity = parse_cpu_list(value)?,
            _ => return Err(format!("unknown domain option {key:?}")),
        }
    }
    Ok(config)
}

/// Groups the boot modules into domains.
pub fn from_modules(info: &BootInfo) -> Result<Vec<BootDomain<'_>>, String> {
    let mut domains: Vec<BootDomain<'_>> = Vec::new();
    for (index, module) in info.modules().iter().enumerate() {
        let line = module.cmdline.as_str();
        if line == "domain" || line.starts_with("domain ") {
            let config = parse_domain_line(line).map_err(|e| format!("module {index}: {e}"))?;
            domains.push(BootDomain { config, kernel: module, initrd: None });
        } else if line == "initrd" {
            let last = domains.last_mut().ok_or_else(|| format!("module {index}: initrd before any domain"))?;
            if last.initrd.is_some() {
                return Err(format!("module {index}: a second initrd for one domain"));
            }
            last.initrd = Some(module);
        } else {
            log::warn!("module {index} (\"{line}\") is neither a domain nor an initrd; ignored");
        }
    }
    Ok(domains)
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

/// Builds the boot-time domains. Called once by the BSP when the host is ready.
pub fn start(info: &BootInfo) {
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
    if !exit_when_idle() || !STARTED.load(Ordering::Acquire) || finished.len() < EXPECTED.load(Ordering::Relaxed) {
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

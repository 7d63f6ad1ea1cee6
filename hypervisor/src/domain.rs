//! Domains: isolated guests with their own RAM (behind nested paging), vCPUs, state and
//! console. A domain is built from a PVH kernel image; it ends by shutting down (a reason
//! the guest chose) or by being crashed (a reason the hypervisor chose), and its memory
//! goes back to the frame allocator when the last reference to it is dropped.

use crate::mm::guest::{GuestRam, OutOfMemory};
use crate::vcpu::Vcpu;
use crate::{sched, virt};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use spin::Mutex;

pub type DomId = u16;

/// `DOMID_SELF` from Xen's public headers.
pub const DOMID_SELF: u16 = 0x7ff0;
/// Domain ids at and above this are special in Xen's ABI.
pub const DOMID_FIRST_RESERVED: u16 = 0x7ff0;
/// vCPUs per domain (the MADT we give guests and the scheduler handle this many).
pub const MAX_VCPUS: u32 = 64;
/// Xen credit-scheduler weights: default and range.
pub const DEFAULT_WEIGHT: u32 = 256;
pub const MAX_WEIGHT: u32 = 65535;

/// `SHUTDOWN_*` from Xen's `sched.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    Poweroff = 0,
    Reboot = 1,
    Suspend = 2,
    Crash = 3,
    Watchdog = 4,
}

impl ShutdownReason {
    pub fn from_guest(code: u32) -> Option<Self> {
        Some(match code {
            0 => Self::Poweroff,
            1 => Self::Reboot,
            2 => Self::Suspend,
            3 => Self::Crash,
            4 => Self::Watchdog,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Suspend => "suspend",
            Self::Crash => "crash",
            Self::Watchdog => "watchdog",
        }
    }
}

/// Why the hypervisor crashed a domain: a short machine-readable word and the details.
#[derive(Debug, Clone)]
pub struct CrashReason {
    pub kind: &'static str,
    pub detail: String,
}

impl fmt::Display for CrashReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

#[derive(Debug, Clone)]
pub enum DomainState {
    Running,
    Shutdown(ShutdownReason),
    Crashed(CrashReason),
}

impl DomainState {
    pub fn name(&self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Shutdown(_) => "shutdown",
            DomainState::Crashed(_) => "crashed",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            DomainState::Running => "none",
            DomainState::Shutdown(r) => r.name(),
            DomainState::Crashed(c) => c.kind,
        }
    }
}

/// What a domain is made of.
#[derive(Debug, Clone)]
pub struct DomainConfig {
    pub name: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub weight: u32,
    /// CPUs the domain's vCPUs may run on (bit n = CPU n).
    pub affinity: u64,
    pub cmdline: String,
}

/// `HVM_NR_PARAMS` in Xen 4.17.
pub const HVM_NR_PARAMS: usize = 39;
pub const HVM_PARAM_CALLBACK_IRQ: usize = 0;

/// Legacy COM1 state we emulate (enough for guests to print).
#[derive(Debug, Default)]
pub struct SerialPort {
    pub line_control: u8,
}

/// A domain's console output, assembled into lines for the host log.
#[derive(Debug, Default)]
pub struct Console {
    line: Vec<u8>,
}

const CONSOLE_LINE_MAX: usize = 256;

pub struct Domain {
    pub id: DomId,
    pub name: String,
    pub ram: GuestRam,
    pub weight: u32,
    pub affinity: u64,
    pub vcpu_count: u32,
    state: Mutex<DomainState>,
    dying: AtomicBool,
    hvm_params: Mutex<[u64; HVM_NR_PARAMS]>,
    /// The vector of HVM_PARAM_CALLBACK_IRQ (type 2), 0 when unset.
    callback_vector: AtomicU8,
    pub serial: Mutex<SerialPort>,
    console: Mutex<Console>,
    runtime_ns: AtomicU64,
    /// CPUs this domain's vCPUs have run on (bit n = CPU n).
    ran_on: AtomicU64,
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{} ({})", self.id, self.name)
    }
}

impl Domain {
    pub fn state(&self) -> DomainState {
        self.state.lock().clone()
    }

    pub fn is_dying(&self) -> bool {
        self.dying.load(Ordering::Acquire)
    }

    /// Ends the domain with `state` (first caller wins) and stops its vCPUs.
    fn end(&self, state: DomainState) {
        {
            let mut current = self.state.lock();
            if !matches!(*current, DomainState::Running) {
                return;
            }
            match &state {
                DomainState::Shutdown(r) => log::info!("domain {} ({}) shut down: {}", self.id, self.name, r.name()),
                DomainState::Crashed(c) => log::warn!("domain {} ({}) crashed: {c}", self.id, self.name),
                DomainState::Running => {}
            }
            *current = state;
        }
        self.flush_console();
        self.dying.store(true, Ordering::Release);
        sched::kick_all_cpus();
    }

    pub fn shutdown(&self, reason: ShutdownReason) {
        self.end(DomainState::Shutdown(reason));
    }

    pub fn crash(&self, kind: &'static str, detail: impl Into<String>) {
        self.end(DomainState::Crashed(CrashReason { kind, detail: detail.into() }));
    }

    pub fn hvm_param(&self, index: usize) -> u64 {
        self.hvm_params.lock()[index]
    }

    pub fn set_hvm_param(&self, index: usize, value: u64) {
        self.hvm_params.lock()[index] = value;
        if index == HVM_PARAM_CALLBACK_IRQ {
            // Type 2 (bits 63:56) = "vector": upcalls arrive on the vector in the low byte.
            let vector = if value >> 56 == 2 { value as u8 } else { 0 };
            self.callback_vector.store(vector, Ordering::Release);
        }
    }

    /// The upcall vector, if the guest registered one.
    pub fn callback_vector(&self) -> Option<u8> {
        Some(self.callback_vector.load(Ordering::Acquire)).filter(|&v| v != 0)
    }

    /// Appends guest console output; complete lines go to the host log as `(dN) text`.
    pub fn console_write(&self, bytes: &[u8]) {
        let mut console = self.console.lock();
        for &b in bytes {
            match b {
                b'\n' => self.emit_line(&mut console),
                b'\r' => {}
                _ => {
                    console.line.push(b);
                    if console.line.len() >= CONSOLE_LINE_MAX {
                        self.emit_line(&mut console);
                    }
                }
            }
        }
    }

    fn emit_line(&self, console: &mut Console) {
        let text = String::from_utf8_lossy(&console.line);
        let printable: String = text.chars().map(|c| if c.is_control() { '.' } else { c }).collect();
        log::info!("(d{}) {}", self.id, printable);
        console.line.clear();
    }

    fn flush_console(&self) {
        let mut console = self.console.lock();
        if !console.line.is_empty() {
            self.emit_line(&mut console);
        }
    }

    /// Charges a slice run on `cpu`.
    pub fn account(&self, cpu: usize, ns: u64) {
        self.runtime_ns.fetch_add(ns, Ordering::Relaxed);
        self.ran_on.fetch_or(1 << cpu, Ordering::Relaxed);
    }

    pub fn runtime_ns(&self) -> u64 {
        self.runtime_ns.load(Ordering::Relaxed)
    }

    /// What the domain looked like, for reports after it is gone.
    pub fn summary(&self) -> DomainSummary {
        DomainSummary {
            id: self.id,
            name: self.name.clone(),
            state: self.state(),
            vcpus: self.vcpu_count,
            weight: self.weight,
            runtime_ns: self.runtime_ns(),
            ran_on: self.ran_on.load(Ordering::Relaxed),
            memory_kib: self.ram.size() / 1024,
        }
    }
}

impl Drop for Domain {
    fn drop(&mut self) {
        log::debug!("domain {} ({}) destroyed; {} KiB returned", self.id, self.name, self.ram.size() / 1024);
        let summary = self.summary();
        // RAM is dropped after this body; report once the frames are really back.
        RELEASED.lock().push(summary);
        PENDING_RELEASE_REPORTS.fetch_add(1, Ordering::AcqRel);
    }
}

/// A finished domain, as `DOMAIN` report lines show it.
#[derive(Debug, Clone)]
pub struct DomainSummary {
    pub id: DomId,
    pub name: String,
    pub state: DomainState,
    pub vcpus: u32,
    pub weight: u32,
    pub runtime_ns: u64,
    pub ran_on: u64,
    pub memory_kib: u64,
}

/// Domains destroyed whose memory has been returned, oldest first, until collected.
static RELEASED: Mutex<Vec<DomainSummary>> = Mutex::new(Vec::new());
static PENDING_RELEASE_REPORTS: AtomicU16 = AtomicU16::new(0);

/// Takes the summaries of domains destroyed since the last call.
pub fn take_released() -> Vec<DomainSummary> {
    if PENDING_RELEASE_REPORTS.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    let taken = core::mem::take(&mut *RELEASED.lock());
    PENDING_RELEASE_REPORTS.fetch_sub(taken.len() as u16, Ordering::AcqRel);
    taken
}

static DOMAINS: Mutex<BTreeMap<DomId, Arc<Domain>>> = Mutex::new(BTreeMap::new());
static NEXT_DOMID: AtomicU16 = AtomicU16::new(1);

/// Why a domain could not be built. Nothing is left behind in any case.
#[derive(Debug)]
pub enum CreateError {
    NoVirtualization(&'static str),
    BadConfig(String),
    OutOfMemory,
    Kernel(pvh_loader::LoadError),
    Layout(String),
    NoDomainIds,
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::NoVirtualization(why) => write!(f, "guests cannot run on this machine: {why}"),
            CreateError::BadConfig(why) => write!(f, "bad configuration: {why}"),
            CreateError::OutOfMemory => f.write_str("not enough free memory"),
            CreateError::Kernel(e) => write!(f, "kernel image: {e}"),
            CreateError::Layout(why) => write!(f, "{why}"),
            CreateError::NoDomainIds => f.write_str("no free domain id"),
        }
    }
}

impl From<OutOfMemory> for CreateError {
    fn from(_: OutOfMemory) -> Self {
        CreateError::OutOfMemory
    }
}

fn validate(config: &DomainConfig) -> Result<(), CreateError> {
    let bad = |why: String| Err(CreateError::BadConfig(why));
    if config.memory_mib < 4 || !config.memory_mib.is_multiple_of(2) {
        return bad(alloc::format!("memory={} MiB: need an even number of MiB, at least 4", config.memory_mib));
    }
    if config.vcpus == 0 || config.vcpus > MAX_VCPUS {
        return bad(alloc::format!("vcpus={}: need 1 to {MAX_VCPUS}", config.vcpus));
    }
    if config.weight == 0 || config.weight > MAX_WEIGHT {
        return bad(alloc::format!("weight={}: need 1 to {MAX_WEIGHT}", config.weight));
    }
    let online = crate::arch::x86_64::smp::online();
    let usable = config.affinity & if online >= 64 { u64::MAX } else { (1u64 << online) - 1 };
    if usable == 0 {
        return bad(alloc::format!("cpus={:#x} names no online CPU (there are {online})", config.affinity));
    }
    Ok(())
}

/// Builds a domain from a PVH kernel image (and an optional initrd) and starts vCPU 0.
pub fn create(config: &DomainConfig, kernel: &[u8], initrd: Option<&[u8]>) -> Result<Arc<Domain>, CreateError> {
    virt::detect().map_err(CreateError::NoVirtualization)?;
    validate(config)?;
    let image = pvh_loader::parse(kernel).map_err(CreateError::Kernel)?;
    let mut ram = GuestRam::new(config.memory_mib << 20, virt::nested_format())?;
    let loaded = pvh_loader::load(&image, &mut ram).map_err(CreateError::Kernel)?;
    let start_info = crate::pvh::write_boot_info(&mut ram, loaded.extent.1, &config.cmdline, initrd)?;

    let id = allocate_domid()?;
    let domain = Arc::new(Domain {
        id,
        name: if config.name.is_empty() { alloc::format!("domain{id}") } else { config.name.clone() },
        ram,
        weight: config.weight,
        affinity: config.affinity,
        vcpu_count: config.vcpus,
        state: Mutex::new(DomainState::Running),
        dying: AtomicBool::new(false),
        hvm_params: Mutex::new([0; HVM_NR_PARAMS]),
        callback_vector: AtomicU8::new(0),
        serial: Mutex::new(SerialPort::default()),
        console: Mutex::new(Console::default()),
        runtime_ns: AtomicU64::new(0),
        ran_on: AtomicU64::new(0),
    });
    let mut vcpus = Vec::new();
    for vcpu_id in 0..config.vcpus {
        let vcpu = Vcpu::new(&domain, vcpu_id).ok_or(CreateError::OutOfMemory)?;
        if vcpu_id == 0 {
            vcpu.set_pvh_entry(loaded.entry, start_info);
        }
        vcpus.push(vcpu);
    }
    DOMAINS.lock().insert(id, domain.clone());
    log::info!(
        "domain {id} ({}) created: {} MiB, {} vCPU(s), weight {}, entry {:#x}",
        domain.name,
        config.memory_mib,
        config.vcpus,
        config.weight,
        loaded.entry
    );
    for vcpu in vcpus {
        sched::add(vcpu);
    }
    Ok(domain)
}

fn allocate_domid() -> Result<DomId, CreateError> {
    let table = DOMAINS.lock();
    for _ in 0..DOMID_FIRST_RESERVED {
        let id = NEXT_DOMID.fetch_add(1, Ordering::Relaxed) % DOMID_FIRST_RESERVED;
        if id != 0 && !table.contains_key(&id) {
            return Ok(id);
        }
    }
    Err(CreateError::NoDomainIds)
}

/// Forgets a dead domain whose vCPUs have all left the scheduler; its memory is freed
/// when the last reference goes.
pub fn reap(id: DomId) {
    DOMAINS.lock().remove(&id);
}

/// Domains that still exist (running or dying).
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn count() -> usize {
    DOMAINS.lock().len()
}

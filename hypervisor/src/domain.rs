//! Domains: isolated guests with their own RAM (behind nested paging), vCPUs, state and
//! console. A domain is built from a PVH kernel image; it ends by shutting down (a reason
//! the guest chose) or by being crashed (a reason the hypervisor chose), and its memory
//! goes back to the frame allocator when the last reference to it is dropped.

use crate::evtchn::two_level::{EventBitmaps, PageView, VcpuInfoView, SHARED_INFO_WC_VERSION, VCPU_INFO_SIZE};
use crate::evtchn::{self, PortTable, Service};
use crate::grant::GrantTable;
use crate::mm::guest::{GuestRam, OutOfMemory};
use crate::mm::{frames, phys_to_virt};
use crate::vcpu::Vcpu;
use crate::{sched, virt};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::sync::Weak;
use alloc::vec::Vec;
use core::fmt;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use pvh_loader::{MemmapEntry, ModuleData};
use spin::Mutex;
use x86_64::PhysAddr;

pub type DomId = u16;

pub use xen_abi::xen::{DOMID_FIRST_RESERVED, DOMID_SELF};
/// vCPUs per domain (the MADT we give guests and the scheduler handle this many).
pub const MAX_VCPUS: u32 = 64;
pub use domain_config::{DomainConfig, DEFAULT_WEIGHT, MAX_WEIGHT};

/// `SHUTDOWN_*` from Xen's `sched.h`; like Xen we accept any code a guest gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownReason {
    Poweroff,
    Reboot,
    Suspend,
    Crash,
    Watchdog,
    SoftReset,
    Other(u8),
}

/// `Domain::shutdown_code` when the guest set none.
pub const NO_SHUTDOWN_CODE: u8 = 0xff;

impl ShutdownReason {
    pub fn from_code(code: u8) -> Self {
        use xen_abi::sched::*;
        match u32::from(code) {
            SHUTDOWN_POWEROFF => Self::Poweroff,
            SHUTDOWN_REBOOT => Self::Reboot,
            SHUTDOWN_SUSPEND => Self::Suspend,
            SHUTDOWN_CRASH => Self::Crash,
            SHUTDOWN_WATCHDOG => Self::Watchdog,
            SHUTDOWN_SOFT_RESET => Self::SoftReset,
            _ => Self::Other(code),
        }
    }

    pub fn code(self) -> u8 {
        use xen_abi::sched::*;
        (match self {
            Self::Poweroff => SHUTDOWN_POWEROFF,
            Self::Reboot => SHUTDOWN_REBOOT,
            Self::Suspend => SHUTDOWN_SUSPEND,
            Self::Crash => SHUTDOWN_CRASH,
            Self::Watchdog => SHUTDOWN_WATCHDOG,
            Self::SoftReset => SHUTDOWN_SOFT_RESET,
            Self::Other(code) => return code,
        }) as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
            Self::Suspend => "suspend",
            Self::Crash => "crash",
            Self::Watchdog => "watchdog",
            Self::SoftReset => "soft_reset",
            Self::Other(_) => "unknown",
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
    /// Destroyed by the control domain while it ran.
    Destroyed,
}

impl DomainState {
    pub fn name(&self) -> &'static str {
        match self {
            DomainState::Running => "running",
            DomainState::Shutdown(_) => "shutdown",
            DomainState::Crashed(_) => "crashed",
            DomainState::Destroyed => "destroyed",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            DomainState::Running | DomainState::Destroyed => "none",
            DomainState::Shutdown(r) => r.name(),
            DomainState::Crashed(c) => c.kind,
        }
    }
}

/// HVM parameter indices, as `usize` for indexing the parameter array.
pub const HVM_NR_PARAMS: usize = xen_abi::hvm::HVM_NR_PARAMS as usize;
pub const HVM_PARAM_CALLBACK_IRQ: usize = xen_abi::hvm::HVM_PARAM_CALLBACK_IRQ as usize;
pub const HVM_PARAM_CONSOLE_PFN: usize = xen_abi::hvm::HVM_PARAM_CONSOLE_PFN as usize;
pub const HVM_PARAM_CONSOLE_EVTCHN: usize = xen_abi::hvm::HVM_PARAM_CONSOLE_EVTCHN as usize;

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
    /// Freed by hand in `Drop`, before the domain's end is reported (see there).
    pub ram: ManuallyDrop<GuestRam>,
    pub weight: u32,
    pub affinity: u64,
    pub vcpu_count: u32,
    state: Mutex<DomainState>,
    /// Set once `state` leaves `Running`.
    ended: AtomicBool,
    dying: AtomicBool,
    hvm_params: Mutex<[u64; HVM_NR_PARAMS]>,
    /// The vector of HVM_PARAM_CALLBACK_IRQ (type 2), 0 when unset.
    callback_vector: AtomicU8,
    pub serial: Mutex<SerialPort>,
    console: Mutex<Console>,
    runtime_ns: AtomicU64,
    /// CPUs this domain's vCPUs have run on (bit n = CPU n).
    ran_on: AtomicU64,
    /// The shared_info page (Xen's, mapped into the guest where it asks).
    shared_info: PhysAddr,
    pub evtchn: Mutex<PortTable>,
    vcpus: spin::Once<Vec<Weak<Vcpu>>>,
    /// Pages the hypervisor placed in the guest's physical space besides RAM (console
    /// ring, grant-table frames); freed with the domain.
    special_pages: Mutex<Vec<PhysAddr>>,
    /// Guest-physical frame of the hypervisor-served console ring, 0 if none.
    console_ring_gfn: AtomicU64,
    /// `VMASST_TYPE_*` bits the guest enabled.
    pub vm_assist: AtomicU64,
    pub grants: Mutex<GrantTable>,
    /// The reason recorded by SCHEDOP_shutdown_code (0xff: none).
    pub shutdown_code: AtomicU8,
    /// The domain's UUID (`xen_domain_handle_t`).
    handle: [u8; 16],
    /// The memory map the guest was given.
    memory_map: Vec<MemmapEntry>,
    /// Set once the domain is fully built and listed; only then is its end reported.
    registered: AtomicBool,
    /// The control domain: may use the control interface and act on other domains.
    privileged: bool,
    /// Built through the control interface: freed only when the control domain destroys it.
    controlled: bool,
    /// Pauses by the control domain in force; vCPUs of a paused domain do not run.
    pause_count: AtomicU32,
    /// Other domains' frames placed in this one's physical space (privileged foreign
    /// mappings), by guest frame; each keeps the owner's memory alive until unmapped.
    foreign: Mutex<BTreeMap<u64, Arc<Domain>>>,
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
                DomainState::Destroyed => log::info!("domain {} ({}) destroyed", self.id, self.name),
                DomainState::Running => {}
            }
            *current = state;
            self.ended.store(true, Ordering::Release);
        }
        self.flush_console();
        // A domain the control domain built stays, ended, until it destroys it (Xen's
        // toolstack reads its state first); the hypervisor's own are freed at once.
        if !self.controlled {
            self.dying.store(true, Ordering::Release);
        }
        sched::kick_all_cpus();
        notify_control_domain();
        if self.privileged {
            // Nobody is left to look after the domains it built (Xen reboots the host).
            let others: Vec<Arc<Domain>> = DOMAINS.lock().values().filter(|d| d.id != self.id).cloned().collect();
            if !others.is_empty() {
                log::warn!("the control domain ended: destroying the {} domain(s) left", others.len());
            }
            for d in others {
                d.destroy();
            }
        }
    }

    /// Whether the domain shut down, crashed or was destroyed: its vCPUs run no more.
    /// (Read on every VM exit: an atomic, not the state's lock.)
    pub fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Shuts the domain down; a code set earlier with SCHEDOP_shutdown_code wins, as in Xen.
    pub fn shutdown(&self, reason: ShutdownReason) {
        let code = self.shutdown_code.load(Ordering::Acquire);
        let reason = if code == NO_SHUTDOWN_CODE { reason } else { ShutdownReason::from_code(code) };
        self.end(DomainState::Shutdown(reason));
    }

    pub fn crash(&self, kind: &'static str, detail: impl Into<String>) {
        self.end(DomainState::Crashed(CrashReason { kind, detail: detail.into() }));
    }

    /// Kills the domain for the control domain (`destroydomain`): a running one ends as
    /// destroyed, one that already ended keeps its state; either way it is freed once its
    /// vCPUs are off every CPU and no foreign mapping holds it.
    pub fn destroy(&self) {
        self.end(DomainState::Destroyed);
        self.dying.store(true, Ordering::Release);
        sched::kick_all_cpus();
    }

    pub fn is_privileged(&self) -> bool {
        self.privileged
    }

    pub fn pause(&self) {
        self.pause_count.fetch_add(1, Ordering::AcqRel);
        sched::kick_all_cpus();
    }

    /// Lifts one pause; false if the domain was not paused.
    pub fn unpause(&self) -> bool {
        let lifted = self.pause_count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok();
        if lifted {
            sched::kick_all_cpus();
        }
        lifted
    }

    pub fn pause_count(&self) -> u32 {
        self.pause_count.load(Ordering::Acquire)
    }

    pub fn is_paused(&self) -> bool {
        self.pause_count() != 0
    }

    /// Places `owner`'s frame `page` at this domain's guest frame `gfn`; the mapping keeps
    /// `owner` alive until [`unmap_foreign`](Self::unmap_foreign).
    pub fn map_foreign(&self, gfn: u64, owner: &Arc<Domain>, page: PhysAddr) -> Result<(), OutOfMemory> {
        let mut foreign = self.foreign.lock();
        if foreign.contains_key(&gfn) || self.ram.overlay_at(gfn).is_some() {
            return Err(OutOfMemory);
        }
        self.ram.map_overlay(gfn, page)?;
        foreign.insert(gfn, owner.clone());
        Ok(())
    }

    /// Removes a foreign mapping; false if `gfn` holds none.
    pub fn unmap_foreign(&self, gfn: u64) -> bool {
        let owner = self.foreign.lock().remove(&gfn);
        if owner.is_some() {
            self.ram.unmap_overlay(gfn);
        }
        owner.is_some()
    }

    /// Whether `gfn` holds a foreign mapping.
    pub fn maps_foreign(&self, gfn: u64) -> bool {
        self.foreign.lock().contains_key(&gfn)
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
        // The control domain owns the console: its lines (including the other domains'
        // console output it relays as `(dN) text`) appear as it wrote them, as on Xen.
        if self.privileged {
            log::info!("{printable}");
        } else {
            log::info!("(d{}) {}", self.id, printable);
        }
        console.line.clear();
    }

    fn flush_console(&self) {
        let mut console = self.console.lock();
        if !console.line.is_empty() {
            self.emit_line(&mut console);
        }
    }

    /// The shared_info page, for the hypervisor.
    pub fn shared_info(&self) -> PageView {
        PageView(phys_to_virt(self.shared_info).as_u64())
    }

    /// The host frame behind shared_info (to map it into the guest).
    pub fn shared_info_frame(&self) -> PhysAddr {
        self.shared_info
    }

    pub fn event_bitmaps(&self) -> EventBitmaps {
        EventBitmaps(self.shared_info())
    }

    pub fn vcpu(&self, id: u32) -> Option<Arc<Vcpu>> {
        self.vcpus.get()?.get(id as usize)?.upgrade()
    }

    /// Where vCPU `id`'s `vcpu_info` is (registered area, or its slot in shared_info).
    pub fn vcpu_info(&self, id: u32) -> Option<VcpuInfoView> {
        self.vcpu(id)?.vcpu_info()
    }

    /// The default `vcpu_info` of vCPU `id`: its slot in shared_info (the first 32 only).
    pub fn default_vcpu_info(&self, id: u32) -> Option<VcpuInfoView> {
        (id < 32).then(|| VcpuInfoView(self.shared_info().add(id as usize * VCPU_INFO_SIZE)))
    }

    /// Makes vCPU `id` notice new events: wakes it if blocked, interrupts it if running.
    pub fn kick_vcpu(&self, id: u32) {
        if let Some(v) = self.vcpu(id) {
            sched::kick(&v);
        }
    }

    /// Wakes vCPUs polling `port` (SCHEDOP_poll).
    pub fn wake_pollers(&self, port: u32) {
        for id in 0..self.vcpu_count {
            if let Some(v) = self.vcpu(id) {
                if v.polling(port) {
                    sched::kick(&v);
                }
            }
        }
    }

    /// A port served by the hypervisor was signalled by the guest.
    pub fn service_kicked(&self, service: Service) {
        match service {
            Service::Console => crate::console_ring::drain(self),
        }
    }

    /// Writes the wall-clock time at system time 0 into shared_info (`wc_*`), with the
    /// version protocol (odd while writing).
    fn publish_wallclock(&self) {
        let si = self.shared_info();
        let secs = crate::arch::x86_64::time::wallclock_at_boot();
        let version = si.read_u64(SHARED_INFO_WC_VERSION) as u32;
        si.write_u64(SHARED_INFO_WC_VERSION, u64::from(version.wrapping_add(1) | 1) | ((secs & 0xffff_ffff) << 32));
        // wc_nsec = 0, wc_sec_hi = the high 32 bits.
        si.write_u64(SHARED_INFO_WC_VERSION + 8, (secs >> 32) << 32);
        si.write_u64(
            SHARED_INFO_WC_VERSION,
            u64::from((version.wrapping_add(1) | 1).wrapping_add(1)) | ((secs & 0xffff_ffff) << 32),
        );
    }

    pub fn handle(&self) -> [u8; 16] {
        self.handle
    }

    pub fn memory_map(&self) -> &[MemmapEntry] {
        &self.memory_map
    }

    pub fn set_console_ring(&self, gfn: u64) {
        self.console_ring_gfn.store(gfn, Ordering::Release);
    }

    pub fn console_ring_gfn(&self) -> Option<u64> {
        Some(self.console_ring_gfn.load(Ordering::Acquire)).filter(|&g| g != 0)
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
        // Every frame goes back before the end is reported: another CPU reads the free
        // count as soon as the summary is published, so nothing may be freed after it.
        let summary = self.registered.get_mut().then(|| self.summary());
        drop(core::mem::replace(self.grants.get_mut(), GrantTable::empty()));
        // SAFETY: `ram` is dropped exactly once, here, and nothing reads it afterwards (the
        // summary was taken above; the remaining fields do not refer to it).
        unsafe { ManuallyDrop::drop(&mut self.ram) };
        frames::free(self.shared_info);
        for &page in self.special_pages.get_mut().iter() {
            frames::free(page);
        }
        if let Some(summary) = summary {
            log::debug!("domain {} ({}) destroyed; {} KiB returned", self.id, self.name, summary.memory_kib);
            RELEASED.lock().push(summary);
            PENDING_RELEASE_REPORTS.fetch_add(1, Ordering::AcqRel);
        }
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
    DomainIdInUse(DomId),
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
            CreateError::DomainIdInUse(id) => write!(f, "domain id {id} is in use"),
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
    let usable = config.affinity & crate::arch::x86_64::smp::online_mask();
    if usable == 0 {
        return bad(alloc::format!("cpus={:#x} names no online CPU (there are {online})", config.affinity));
    }
    let preferred = crate::sched::cpus_preferred_over_cpu0();
    if preferred != 0 && usable & preferred == 0 {
        log::warn!("domain {:?} is pinned to CPU 0, whose SVM state QEMU's TCG may corrupt", config.name);
    }
    Ok(())
}

/// How a new domain's vCPU 0 starts and who serves its console.
enum Start {
    /// Built by the hypervisor: vCPU 0 starts at the PVH entry; the hypervisor serves the
    /// console ring.
    Pvh { entry: u32, start_info: u32, console_gfn: u64 },
    /// Made through the control interface: paused, with no vCPU context yet.
    Controlled,
}

/// What [`assemble`] needs besides the configuration.
struct Parts {
    id: DomId,
    ram: GuestRam,
    special: crate::pvh::SpecialPages,
    memory_map: Vec<MemmapEntry>,
    handle: [u8; 16],
    privileged: bool,
    start: Start,
}

/// Makes the domain from its parts, lists it and hands its vCPUs to the scheduler.
fn assemble(config: &DomainConfig, mut parts: Parts) -> Result<Arc<Domain>, CreateError> {
    let shared_info = frames::alloc_zeroed().ok_or(CreateError::OutOfMemory)?;
    let id = parts.id;
    let domain = Arc::new(Domain {
        id,
        name: if config.name.is_empty() { alloc::format!("domain{id}") } else { config.name.clone() },
        ram: ManuallyDrop::new(parts.ram),
        weight: config.weight,
        affinity: config.affinity,
        vcpu_count: config.vcpus,
        state: Mutex::new(DomainState::Running),
        ended: AtomicBool::new(false),
        dying: AtomicBool::new(false),
        hvm_params: Mutex::new([0; HVM_NR_PARAMS]),
        callback_vector: AtomicU8::new(0),
        serial: Mutex::new(SerialPort::default()),
        console: Mutex::new(Console::default()),
        runtime_ns: AtomicU64::new(0),
        ran_on: AtomicU64::new(0),
        shared_info,
        evtchn: Mutex::new(PortTable::new(config.vcpus, evtchn::DEFAULT_MAX_PORT)),
        vcpus: spin::Once::new(),
        special_pages: Mutex::new(parts.special.take_frames()),
        console_ring_gfn: AtomicU64::new(0),
        vm_assist: AtomicU64::new(0),
        grants: Mutex::new(GrantTable::new(crate::grant::DEFAULT_MAX_FRAMES).ok_or(CreateError::OutOfMemory)?),
        shutdown_code: AtomicU8::new(NO_SHUTDOWN_CODE),
        handle: parts.handle,
        memory_map: parts.memory_map,
        registered: AtomicBool::new(false),
        privileged: parts.privileged,
        controlled: matches!(parts.start, Start::Controlled),
        pause_count: AtomicU32::new(u32::from(matches!(parts.start, Start::Controlled))),
        foreign: Mutex::new(BTreeMap::new()),
    });
    let boot_vcpu_starts = matches!(parts.start, Start::Pvh { .. });
    let mut vcpus = Vec::new();
    for vcpu_id in 0..config.vcpus {
        let vcpu = Vcpu::new(&domain, vcpu_id, vcpu_id == 0 && boot_vcpu_starts).ok_or(CreateError::OutOfMemory)?;
        vcpus.push(vcpu);
    }
    domain.vcpus.call_once(|| vcpus.iter().map(Arc::downgrade).collect());
    domain.publish_wallclock();
    if let Start::Pvh { entry, start_info, console_gfn } = parts.start {
        vcpus[0].set_pvh_entry(entry, start_info);
        crate::console_ring::attach(&domain, Some(console_gfn))?;
    }
    {
        let mut table = DOMAINS.lock();
        if table.contains_key(&id) {
            return Err(CreateError::DomainIdInUse(id));
        }
        table.insert(id, domain.clone());
    }
    domain.registered.store(true, Ordering::Release);
    log::info!(
        "domain {id} ({}) created: {} MiB, {} vCPU(s), weight {}{}",
        domain.name,
        config.memory_mib,
        config.vcpus,
        config.weight,
        if domain.is_paused() { ", paused" } else { "" }
    );
    for vcpu in vcpus {
        sched::add(vcpu);
    }
    Ok(domain)
}

/// Builds a domain from a PVH kernel image (and an optional initrd) and starts vCPU 0.
pub fn create(config: &DomainConfig, kernel: &[u8], initrd: Option<&[u8]>) -> Result<Arc<Domain>, CreateError> {
    virt::detect().map_err(CreateError::NoVirtualization)?;
    validate(config)?;
    let image = pvh_loader::parse(kernel).map_err(CreateError::Kernel)?;
    let mut ram = GuestRam::new(config.memory_mib << 20, virt::nested_format())?;
    let loaded = pvh_loader::load(&image, &mut ram).map_err(CreateError::Kernel)?;
    let modules: Vec<ModuleData<'_>> = initrd.map(|bytes| ModuleData { bytes, cmdline: b"" }).into_iter().collect();
    let layout = crate::pvh::write_boot_info(&mut ram, loaded.extent.1, &config.cmdline, &modules, config.vcpus, 0)?;
    let id = allocate_domid()?;
    let console_gfn = layout.special.console_gfn();
    assemble(
        config,
        Parts {
            id,
            ram,
            special: layout.special,
            memory_map: layout.memory_map,
            handle: new_handle(id),
            privileged: false,
            start: Start::Pvh { entry: loaded.entry, start_info: layout.start_info, console_gfn },
        },
    )
}

/// Builds domain 0, the privileged control domain, from its PVH kernel: its RAM is
/// identity-mapped (guest-physical = host-physical) below 4 GiB, and `modules` become its
/// boot modules. A relocatable kernel (Xen's PHYS32_RELOC note) is moved into that RAM.
pub fn create_dom0(
    config: &DomainConfig,
    kernel: &[u8],
    modules: &[ModuleData<'_>],
) -> Result<Arc<Domain>, CreateError> {
    virt::detect().map_err(CreateError::NoVirtualization)?;
    validate(config)?;
    let image = pvh_loader::parse(kernel).map_err(CreateError::Kernel)?;
    let mut ram = GuestRam::new_identity(config.memory_mib << 20, DOM0_RAM_LIMIT, virt::nested_format())?;
    let base = pvh_loader::placement(&image, ram.base(), ram.end()).ok_or_else(|| {
        CreateError::Layout(alloc::format!(
            "the dom0 kernel cannot be placed in its RAM {:#x}-{:#x} (not relocatable, or too large)",
            ram.base(),
            ram.end()
        ))
    })?;
    let loaded = pvh_loader::load_at(&image, &mut ram, base).map_err(CreateError::Kernel)?;
    let flags = pvh_loader::SIF_PRIVILEGED | pvh_loader::SIF_INITDOMAIN;
    let layout = crate::pvh::write_boot_info(&mut ram, loaded.extent.1, &config.cmdline, modules, config.vcpus, flags)?;
    let console_gfn = layout.special.console_gfn();
    log::info!(
        "dom0: RAM {:#x}-{:#x} (identity-mapped), kernel at {base:#x}, entry {:#x}, start info at {:#x}",
        ram.base(),
        ram.end(),
        loaded.entry,
        layout.start_info
    );
    assemble(
        config,
        Parts {
            id: 0,
            ram,
            special: layout.special,
            memory_map: layout.memory_map,
            handle: new_handle(0),
            privileged: true,
            start: Start::Pvh { entry: loaded.entry, start_info: layout.start_info, console_gfn },
        },
    )
}

/// Dom0's identity-mapped RAM lies below this (its kernel's boot stub maps the first 4 GiB).
const DOM0_RAM_LIMIT: u64 = 4 << 30;

/// Makes an empty domain for the control domain's builder (`DOMCTL_createdomain`): RAM,
/// special pages and vCPUs without context, paused once. `wanted` 0 picks a free id.
pub fn create_controlled(config: &DomainConfig, wanted: DomId, handle: [u8; 16]) -> Result<Arc<Domain>, CreateError> {
    virt::detect().map_err(CreateError::NoVirtualization)?;
    validate(config)?;
    let ram = GuestRam::new(config.memory_mib << 20, virt::nested_format())?;
    let special = crate::pvh::place_special_pages(&ram, config.vcpus)?;
    let memory_map = crate::pvh::memory_map(&ram)?;
    let id = if wanted == 0 { allocate_domid()? } else { wanted };
    assemble(config, Parts { id, ram, special, memory_map, handle, privileged: false, start: Start::Controlled })
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
    let domain = DOMAINS.lock().remove(&id);
    if let Some(d) = domain {
        evtchn::close_all(&d);
        crate::grant::release_all(&d);
        notify_control_domain();
    }
}

/// Raises `VIRQ_DOM_EXC` in the control domain: some domain ended or went away.
fn notify_control_domain() {
    if let Some(dom0) = get(0).filter(|d| d.is_privileged() && !d.is_dying()) {
        evtchn::send_virq(&dom0, 0, xen_abi::xen::VIRQ_DOM_EXC);
    }
}

/// Whether any live domain holds a mapping of grant `gref` of `granter` (a writable one
/// if `writable`).
pub fn any_mapping_of(granter: DomId, gref: u32, writable: bool) -> bool {
    let domains: Vec<Arc<Domain>> = DOMAINS.lock().values().cloned().collect();
    domains.iter().any(|d| crate::grant::holds_mapping(d, granter, gref, writable))
}

/// A version-4 UUID for domain `id`, from the TSC and the id (unique per boot).
fn new_handle(id: DomId) -> [u8; 16] {
    let mut state = crate::arch::x86_64::time::rdtsc() ^ (u64::from(id) << 48);
    let high = domain_config::splitmix64(&mut state);
    domain_config::uuid_v4(high, domain_config::splitmix64(&mut state))
}

/// The live domain with id `id`.
pub fn get(id: DomId) -> Option<Arc<Domain>> {
    DOMAINS.lock().get(&id).cloned()
}

/// The domain a hypercall from `caller` names by `domid`: itself (its id or `DOMID_SELF`),
/// or, for the privileged domain only, any live domain. Else -ESRCH for a domain that does
/// not exist and -EPERM for another one, as Xen's `rcu_lock_domain_by_any_id` + XSM.
pub fn for_caller(caller: &Arc<Domain>, domid: DomId) -> Result<Arc<Domain>, i64> {
    if domid == DOMID_SELF || domid == caller.id {
        return Ok(caller.clone());
    }
    let target = get(domid).ok_or(xen_abi::errno::ESRCH)?;
    if caller.is_privileged() {
        Ok(target)
    } else {
        Err(xen_abi::errno::EPERM)
    }
}

/// The live domain with the lowest id `>= id`.
pub fn first_from(id: DomId) -> Option<Arc<Domain>> {
    DOMAINS.lock().range(id..).next().map(|(_, d)| d.clone())
}

/// Domains that still exist (running or dying).
pub fn count() -> usize {
    DOMAINS.lock().len()
}

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
use core::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use pvh_loader::MemmapEntry;
use spin::Mutex;
use x86_64::PhysAddr;

pub type DomId = u16;

pub use xen_abi::xen::{DOMID_FIRST_RESERVED, DOMID_SELF};
/// vCPUs per domain (the MADT we give guests and the scheduler handle this many).
pub const MAX_VCPUS: u32 = 64;
/// Xen credit-scheduler weights: default and range.
pub const DEFAULT_WEIGHT: u32 = 256;
pub const MAX_WEIGHT: u32 = 65535;

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

    /// Shuts the domain down; a code set earlier with SCHEDOP_shutdown_code wins, as in Xen.
    pub fn shutdown(&self, reason: ShutdownReason) {
        let code = self.shutdown_code.load(Ordering::Acquire);
        let reason = if code == NO_SHUTDOWN_CODE { reason } else { ShutdownReason::from_code(code) };
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
    let mut layout = crate::pvh::write_boot_info(&mut ram, loaded.extent.1, &config.cmdline, initrd, config.vcpus)?;

    let id = allocate_domid()?;
    let shared_info = frames::alloc_zeroed().ok_or(CreateError::OutOfMemory)?;
    let domain = Arc::new(Domain {
        id,
        name: if config.name.is_empty() { alloc::format!("domain{id}") } else { config.name.clone() },
        ram: ManuallyDrop::new(ram),
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
        shared_info,
        evtchn: Mutex::new(PortTable::new(config.vcpus, evtchn::DEFAULT_MAX_PORT)),
        vcpus: spin::Once::new(),
        special_pages: Mutex::new(layout.take_frames()),
        console_ring_gfn: AtomicU64::new(0),
        vm_assist: AtomicU64::new(0),
        grants: Mutex::new(GrantTable::new(crate::grant::DEFAULT_MAX_FRAMES).ok_or(CreateError::OutOfMemory)?),
        shutdown_code: AtomicU8::new(NO_SHUTDOWN_CODE),
        handle: new_handle(id),
        memory_map: layout.memory_map.clone(),
        registered: AtomicBool::new(false),
    });
    let mut vcpus = Vec::new();
    for vcpu_id in 0..config.vcpus {
        let vcpu = Vcpu::new(&domain, vcpu_id).ok_or(CreateError::OutOfMemory)?;
        if vcpu_id == 0 {
            vcpu.set_pvh_entry(loaded.entry, layout.start_info);
        }
        vcpus.push(vcpu);
    }
    domain.vcpus.call_once(|| vcpus.iter().map(Arc::downgrade).collect());
    domain.publish_wallclock();
    crate::console_ring::attach(&domain, layout.console_gfn)?;
    DOMAINS.lock().insert(id, domain.clone());
    domain.registered.store(true, Ordering::Release);
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
    let domain = DOMAINS.lock().remove(&id);
    if let Some(d) = domain {
        evtchn::close_all(&d);
        crate::grant::release_all(&d);
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
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&next().to_le_bytes());
    uuid[8..].copy_from_slice(&next().to_le_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The live domain with id `id`.
pub fn get(id: DomId) -> Option<Arc<Domain>> {
    DOMAINS.lock().get(&id).cloned()
}

/// Domains that still exist (running or dying).
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn count() -> usize {
    DOMAINS.lock().len()
}

//! The domain builder: makes a domain from a kernel (ELF PVH, or a Linux bzImage whose
//! gzip/xz/zstd payload is one), an optional initrd and a command line, the way Xen's
//! toolstack does for PVH: create it paused through the control interface, write the kernel,
//! modules and `hvm_start_info` into its RAM through foreign mappings, allocate its console
//! and xenstore event channels, publish the rings in its HVM parameters, give vCPU 0 the
//! PVH entry state, write its store entries and introduce it to xenstored, and unpause it. If any step fails the half-built domain is
//! destroyed: nothing stays allocated.

use crate::foreign::{DomainMemory, PAGE};
use crate::hypercall::{self, Errno};
use crate::xenstored::{NewDomain, Xenstored};
use alloc::format;
use alloc::string::String;
use domain_config::DomainConfig;
use pvh_loader::{BootData, MemmapEntry, ModuleData, DOMAIN_MEMMAP_MAX_ENTRIES};
use xen_abi::ctl::*;
use xen_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xen_abi::vcpu::{VcpuHvmContext, VcpuHvmX86_32};
use xen_abi::DomId;

/// Largest kernel we unpack (a decompressed Linux is ~66 MB).
const MAX_KERNEL_BYTES: usize = 256 << 20;

/// A domain the builder made.
pub struct Built {
    pub domid: DomId,
    pub name: String,
    pub uuid: [u8; 16],
    /// Guest frame of its console ring and the domain's end of the console channel.
    pub console_gfn: u64,
    pub console_port: u32,
}

/// Why a domain was not built.
#[derive(Debug)]
pub enum BuildError {
    Kernel(kernel_image::Error),
    Image(pvh_loader::LoadError),
    Hypercall(&'static str, Errno),
    Config(String),
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Kernel(e) => write!(f, "kernel file: {e}"),
            BuildError::Image(e) => write!(f, "kernel image: {e}"),
            BuildError::Hypercall(what, e) => write!(f, "{what} failed: {e}"),
            BuildError::Config(why) => f.write_str(why),
        }
    }
}

/// Domain 0 destroys a half-built domain when this is dropped without `keep`.
struct Guard(Option<DomId>);

impl Guard {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(domid) = self.0 {
            if let Err(e) = destroy(domid) {
                crate::log::info!("destroying half-built domain {domid} failed: {e}");
            }
        }
    }
}

/// Asks the hypervisor to destroy `domid`.
pub fn destroy(domid: DomId) -> Result<(), Errno> {
    let mut op = Domctl { cmd: DOMCTL_DESTROYDOMAIN, domain: domid, ..Domctl::default() };
    hypercall::domctl(&mut op)
}

fn hc(what: &'static str) -> impl FnOnce(Errno) -> BuildError {
    move |e| BuildError::Hypercall(what, e)
}

/// Creates the (paused, empty) domain; returns its id and RSDP address.
fn create(config: &DomainConfig, handle: [u8; 16]) -> Result<(DomId, u64), BuildError> {
    let mut request = DomctlCreateDomain {
        handle,
        max_vcpus: config.vcpus,
        weight: config.weight,
        memory_kib: config
            .memory_mib
            .checked_mul(1024)
            .ok_or_else(|| BuildError::Config(format!("memory={} MiB: too large", config.memory_mib)))?,
        affinity: config.affinity,
        ..DomctlCreateDomain::default()
    };
    let name = config.name.as_bytes();
    let len = name.len().min(request.name.len());
    request.name[..len].copy_from_slice(&name[..len]);
    let mut op = Domctl { cmd: DOMCTL_CREATEDOMAIN, ..Domctl::default() };
    request.write_to(&mut op.u).expect("payload fits");
    hypercall::domctl(&mut op).map_err(hc("createdomain"))?;
    let created = DomctlCreateDomain::read_from(&op.u).expect("payload fits");
    Ok((op.domain, created.rsdp_gpa))
}

use xen_abi::XenStruct;

/// Builds and starts a domain; its store entries go into `xenstored`.
pub fn build(
    config: &DomainConfig,
    kernel: &[u8],
    initrd: Option<&[u8]>,
    xenstored: &mut Xenstored,
) -> Result<Built, BuildError> {
    let handle = crate::uuid::new_v4();
    let ram_end = config.memory_mib << 20;
    // The unpacked kernel (a decompressed Linux is ~66 MB) is freed before anything that
    // stays is allocated, so long-lived allocations do not split the heap's large free run
    // that the next build's kernel needs.
    let (domid, rsdp, guard, mut memory, loaded) = {
        let elf = kernel_image::unpack(kernel, MAX_KERNEL_BYTES).map_err(BuildError::Kernel)?;
        let image = pvh_loader::parse(&elf).map_err(BuildError::Image)?;
        let (domid, rsdp) = create(config, handle)?;
        let guard = Guard(Some(domid));
        let mut memory = DomainMemory::new(domid, ram_end);
        let loaded = pvh_loader::load(&image, &mut memory).map_err(|e| match memory.error {
            Some(errno) => BuildError::Hypercall("mapping the domain's memory", errno),
            None => BuildError::Image(e),
        })?;
        (domid, rsdp, guard, memory, loaded)
    };
    let mut memmap = [MemmapEntry { addr: 0, size: 0, kind: 0 }; DOMAIN_MEMMAP_MAX_ENTRIES];
    let entries = pvh_loader::domain_memmap(0, ram_end, SPECIAL_PAGES, &mut memmap).map_err(BuildError::Image)?;
    let modules: alloc::vec::Vec<ModuleData<'_>> =
        initrd.map(|bytes| ModuleData { bytes, cmdline: b"" }).into_iter().collect();
    let data = BootData {
        kernel_end: loaded.extent.1,
        ram_end,
        cmdline: config.cmdline.as_bytes(),
        modules: &modules,
        memmap: &memmap[..entries],
        rsdp_paddr: rsdp,
        flags: 0,
    };
    let start_info = pvh_loader::place_boot_data(&mut memory, &data).map_err(|e| match memory.error {
        Some(errno) => BuildError::Hypercall("mapping the domain's memory", errno),
        None => BuildError::Image(e),
    })?;
    drop(memory);

    let console_gfn = ram_end / PAGE + SPECIAL_PAGE_CONSOLE;
    let console_port = hypercall::alloc_unbound(domid, 0).map_err(hc("allocating the console channel"))?;
    hypercall::set_hvm_param(domid, HVM_PARAM_CONSOLE_PFN, console_gfn).map_err(hc("setting the console ring"))?;
    hypercall::set_hvm_param(domid, HVM_PARAM_CONSOLE_EVTCHN, u64::from(console_port))
        .map_err(hc("setting the console channel"))?;

    let store_gfn = ram_end / PAGE + SPECIAL_PAGE_XENSTORE;
    let store_port = hypercall::alloc_unbound(domid, 0).map_err(hc("allocating the xenstore channel"))?;
    hypercall::set_hvm_param(domid, HVM_PARAM_STORE_PFN, store_gfn).map_err(hc("setting the xenstore ring"))?;
    hypercall::set_hvm_param(domid, HVM_PARAM_STORE_EVTCHN, u64::from(store_port))
        .map_err(hc("setting the xenstore channel"))?;

    let start_info = u32::try_from(start_info)
        .map_err(|_| BuildError::Config(format!("start info at {start_info:#x} is above 4 GiB")))?;
    let context_bytes = VcpuHvmContext::x86_32(&VcpuHvmX86_32::pvh_entry(loaded.entry, start_info)).to_bytes();
    let mut op = Domctl { cmd: DOMCTL_SETVCPUCONTEXT, domain: domid, ..Domctl::default() };
    DomctlVcpuContext { vcpu: 0, pad: 0, ctxt: context_bytes.as_ptr() as u64 }
        .write_to(&mut op.u)
        .expect("payload fits");
    hypercall::domctl(&mut op).map_err(hc("setvcpucontext"))?;

    let uuid = crate::uuid::to_string(&handle);
    let entries = NewDomain {
        domid,
        name: &config.name,
        uuid: &uuid,
        memory_kib: config.memory_mib * 1024,
        vcpus: config.vcpus,
        store_gfn,
        store_port,
        console_gfn,
        console_port,
    };
    if let Err(e) = xenstored.add_domain(&entries) {
        xenstored.remove_domain(domid);
        return Err(BuildError::Config(format!("xenstore: {e}")));
    }
    let mut op = Domctl { cmd: DOMCTL_UNPAUSEDOMAIN, domain: domid, ..Domctl::default() };
    if let Err(e) = hypercall::domctl(&mut op) {
        xenstored.remove_domain(domid);
        return Err(BuildError::Hypercall("unpausedomain", e));
    }
    guard.keep();
    Ok(Built { domid, name: config.name.clone(), uuid: handle, console_gfn, console_port })
}

//! Ferrovisor's private control interface between the hypervisor and the dom0 agent
//! (DESIGN.md §2): `HYPERVISOR_domctl` (36) for operations on one domain and
//! `HYPERVISOR_sysctl` (35) for the host. It follows Xen's `domctl.h` / `sysctl.h` in
//! shape — a 16-byte (domctl) or 8-byte (sysctl) header with the command and an interface
//! version, then a 128-byte union — and reuses Xen's command numbers where the operation is
//! the same, but the payloads are ours: it is not binary compatible with libxc, and the
//! [`CTL_INTERFACE_VERSION`] differs from every Xen version so a Xen tool gets `-EACCES`.
//!
//! Only the privileged domain (domain 0) may call either hypercall; any other caller gets
//! `-EPERM` once its argument has been read and its version checked (Xen's order).
//!
//! A domain is made with [`DOMCTL_CREATEDOMAIN`]: its RAM `[0, memory)` is allocated,
//! scrubbed and mapped, its ACPI tables are written and its vCPUs exist but do not run:
//! the domain is paused once, and its vCPUs have no context until
//! [`DOMCTL_SETVCPUCONTEXT`]. Above its RAM the hypervisor reserves [`SPECIAL_PAGES`]
//! pages (`[memory, memory + SPECIAL_PAGES * 4096)`, to be marked reserved in the guest's
//! memory map) holding, at these page offsets, the console ring ([`SPECIAL_PAGE_CONSOLE`]),
//! the xenstore ring ([`SPECIAL_PAGE_XENSTORE`]) and the ACPI tables
//! ([`SPECIAL_PAGE_ACPI`], RSDP first). The builder maps what it needs with
//! `XENMEM_add_to_physmap_batch` (`XENMAPSPACE_gmfn_foreign`), writes the kernel, the start
//! info and the HVM parameters, sets vCPU 0's context and unpauses the domain.

use crate::wire::xen_struct;
use crate::DomId;

/// The interface version every call carries (`interface_version`); others get `-EACCES`.
pub const CTL_INTERFACE_VERSION: u32 = 0xFE00_0001;

/// `XEN_DOMCTL_createdomain`: payload [`DomctlCreateDomain`]; `domain` is 0 (any free id)
/// or the id wanted, and holds the new id on return.
pub const DOMCTL_CREATEDOMAIN: u32 = 1;
/// `XEN_DOMCTL_destroydomain`: kills the domain and frees it once nothing maps it.
pub const DOMCTL_DESTROYDOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`: one more pause; the domain's vCPUs stop running.
pub const DOMCTL_PAUSEDOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`: one pause fewer (`-EINVAL` if not paused).
pub const DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`: payload [`DomctlGetDomainInfo`] of the first domain whose id
/// is `>= domain` (`-ESRCH` if none), as in Xen.
pub const DOMCTL_GETDOMAININFO: u32 = 5;
/// `XEN_DOMCTL_setvcpucontext`: payload [`DomctlVcpuContext`]; loads a `vcpu_hvm_context`
/// (the checks of `VCPUOP_initialise`) into a vCPU that has none.
pub const DOMCTL_SETVCPUCONTEXT: u32 = 12;

/// `XEN_SYSCTL_physinfo`: payload [`SysctlPhysinfo`].
pub const SYSCTL_PHYSINFO: u32 = 3;
/// `XEN_SYSCTL_getdomaininfolist`: payload [`SysctlGetDomainInfoList`].
pub const SYSCTL_GETDOMAININFOLIST: u32 = 6;

/// Pages reserved above a new domain's RAM.
pub const SPECIAL_PAGES: u64 = 8;
/// Page offset of the console ring in the special pages.
pub const SPECIAL_PAGE_CONSOLE: u64 = 0;
/// Page offset of the xenstore ring in the special pages.
pub const SPECIAL_PAGE_XENSTORE: u64 = 1;
/// Page offset of the ACPI tables (RSDP at its start) in the special pages.
pub const SPECIAL_PAGE_ACPI: u64 = 2;

/// `XEN_DOMINF_dying`: being destroyed.
pub const DOMINF_DYING: u32 = 1 << 0;
/// `XEN_DOMINF_hvm_guest`: an HVM container (every Ferrovisor domain).
pub const DOMINF_HVM_GUEST: u32 = 1 << 1;
/// `XEN_DOMINF_shutdown`: shut down (or crashed: code `SHUTDOWN_crash`); see
/// [`DOMINF_SHUTDOWN_SHIFT`].
pub const DOMINF_SHUTDOWN: u32 = 1 << 2;
/// `XEN_DOMINF_paused`: paused by the controller.
pub const DOMINF_PAUSED: u32 = 1 << 3;
/// `XEN_DOMINF_blocked`: every vCPU is blocked or down.
pub const DOMINF_BLOCKED: u32 = 1 << 4;
/// `XEN_DOMINF_running`: some vCPU is on a CPU now.
pub const DOMINF_RUNNING: u32 = 1 << 5;
/// `XEN_DOMINF_hap`: nested paging.
pub const DOMINF_HAP: u32 = 1 << 8;
/// `XEN_DOMINF_shutdownshift`: the `SHUTDOWN_*` code sits in bits 16..24 of `flags`.
pub const DOMINF_SHUTDOWN_SHIFT: u32 = 16;

/// `XEN_SYSCTL_PHYSCAP_hvm`: HVM (here: PVH) guests can run.
pub const PHYSCAP_HVM: u32 = 1 << 0;
/// `XEN_SYSCTL_PHYSCAP_hap`: with nested paging.
pub const PHYSCAP_HAP: u32 = 1 << 3;

xen_struct! {
    /// A `HYPERVISOR_domctl` argument (`struct xen_domctl`'s shape).
    pub struct Domctl: 144 bytes {
        /// `DOMCTL_*`.
        pub cmd @ 0: u32,
        /// [`CTL_INTERFACE_VERSION`].
        pub interface_version @ 4: u32,
        /// The domain operated on.
        pub domain @ 8: DomId,
        /// Zero.
        pub pad @ 10: [u16; 3],
        /// The command's payload.
        pub u @ 16: [u8; 128],
    }

    /// A `HYPERVISOR_sysctl` argument (`struct xen_sysctl`'s shape).
    pub struct Sysctl: 136 bytes {
        /// `SYSCTL_*`.
        pub cmd @ 0: u32,
        /// [`CTL_INTERFACE_VERSION`].
        pub interface_version @ 4: u32,
        /// The command's payload.
        pub u @ 8: [u8; 128],
    }

    /// [`DOMCTL_CREATEDOMAIN`]'s payload.
    pub struct DomctlCreateDomain: 80 bytes {
        /// IN: the domain's UUID (`xen_domain_handle_t`).
        pub handle @ 0: [u8; 16],
        /// IN: vCPUs (1 to 64).
        pub max_vcpus @ 16: u32,
        /// IN: credit-scheduler weight (1 to 65535; 0 means the default, 256).
        pub weight @ 20: u32,
        /// IN: RAM in KiB (a multiple of 2048, at least 4096).
        pub memory_kib @ 24: u64,
        /// IN: CPUs the vCPUs may run on (bit n = CPU n; 0 means all).
        pub affinity @ 32: u64,
        /// IN: a name for the hypervisor's log (NUL-padded UTF-8).
        pub name @ 40: [u8; 32],
        /// OUT: guest-physical address of the ACPI RSDP.
        pub rsdp_gpa @ 72: u64,
    }

    /// [`DOMCTL_GETDOMAININFO`]'s payload (OUT), also the entries of
    /// [`SYSCTL_GETDOMAININFOLIST`]'s buffer.
    pub struct DomctlGetDomainInfo: 64 bytes {
        /// The domain's id.
        pub domain @ 0: DomId,
        /// Zero.
        pub pad @ 2: u16,
        /// `DOMINF_*`, with the shutdown code at [`DOMINF_SHUTDOWN_SHIFT`].
        pub flags @ 4: u32,
        /// Pages the domain holds.
        pub tot_pages @ 8: u64,
        /// Most pages it may hold.
        pub max_pages @ 16: u64,
        /// CPU time used by all its vCPUs, ns.
        pub cpu_time @ 24: u64,
        /// vCPUs that are up.
        pub nr_online_vcpus @ 32: u32,
        /// Highest vCPU id.
        pub max_vcpu_id @ 36: u32,
        /// The domain's UUID.
        pub handle @ 40: [u8; 16],
        /// Its scheduling weight.
        pub weight @ 56: u32,
        /// Controller pauses in force.
        pub pause_count @ 60: u32,
    }

    /// [`DOMCTL_SETVCPUCONTEXT`]'s payload.
    pub struct DomctlVcpuContext: 16 bytes {
        /// IN: the vCPU.
        pub vcpu @ 0: u32,
        /// Zero.
        pub pad @ 4: u32,
        /// IN: guest address of a `struct vcpu_hvm_context` (in the caller's memory).
        pub ctxt @ 8: u64,
    }

    /// [`SYSCTL_PHYSINFO`]'s payload (OUT).
    pub struct SysctlPhysinfo: 48 bytes {
        /// CPUs online.
        pub nr_cpus @ 0: u32,
        /// Highest CPU index.
        pub max_cpu_id @ 4: u32,
        /// TSC frequency, kHz.
        pub cpu_khz @ 8: u32,
        /// `PHYSCAP_*`.
        pub capabilities @ 12: u32,
        /// Pages of RAM the hypervisor manages.
        pub total_pages @ 16: u64,
        /// Pages free now.
        pub free_pages @ 24: u64,
        /// Highest machine frame number.
        pub max_mfn @ 32: u64,
        /// Domains that exist (running or dying).
        pub nr_domains @ 40: u32,
        /// Zero.
        pub pad @ 44: u32,
    }

    /// [`SYSCTL_GETDOMAININFOLIST`]'s payload.
    pub struct SysctlGetDomainInfoList: 24 bytes {
        /// IN: list domains with ids from this one.
        pub first_domain @ 0: DomId,
        /// Zero.
        pub pad @ 2: u16,
        /// IN: room in `buffer`, in entries.
        pub max_domains @ 4: u32,
        /// IN: guest address of an array of [`DomctlGetDomainInfo`].
        pub buffer @ 8: u64,
        /// OUT: entries written.
        pub num_domains @ 16: u32,
        /// Zero.
        pub pad2 @ 20: u32,
    }
}

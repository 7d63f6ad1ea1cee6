//! Xen detection (CPUID leaves 0x4000_0000+), hypercalls and system time.
//!
//! Hypercalls use `vmmcall` on AMD and Hygon CPUs and `vmcall` elsewhere, chosen from the
//! CPUID vendor string as Linux does: `rax` = number, arguments in `rdi`, `rsi`, `rdx`,
//! `r10`, `r8`, result in `rax` (a negative Xen errno on failure). Without the Xen CPUID
//! signature (plain QEMU) no hypercall is issued: they all return `-ENOSYS`.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};

use test_guest::abi::{ShutdownReason, XEN_CPUID_HVM_LEAF, XEN_CPUID_TIME_LEAF};
use test_guest::pvclock::TimeScale;
use xen_abi::console::CONSOLEIO_WRITE;
use xen_abi::cpuid::{
    XEN_CPUID_FIRST_LEAF, XEN_CPUID_SIGNATURE, XEN_HVM_CPUID_DOMID_PRESENT, XEN_HVM_CPUID_VCPU_ID_PRESENT,
};
use xen_abi::errno::ENOSYS;
use xen_abi::event_channel::{
    EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVirq, EvtchnClose, EvtchnSend, EvtchnStatus,
    EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_INTERDOMAIN, EVTCHNOP_BIND_IPI, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE,
    EVTCHNOP_SEND, EVTCHNOP_STATUS,
};
use xen_abi::hvm::{XenHvmParam, HVMOP_GET_PARAM, HVMOP_SET_PARAM};
use xen_abi::memory::{XenAddToPhysmap, XENMAPSPACE_SHARED_INFO, XENMEM_ADD_TO_PHYSMAP};
use xen_abi::sched::{SchedShutdown, SCHEDOP_SHUTDOWN, SCHEDOP_YIELD};
use xen_abi::xen::{
    DOMID_SELF, HYPERVISOR_CONSOLE_IO, HYPERVISOR_EVENT_CHANNEL_OP, HYPERVISOR_HVM_OP, HYPERVISOR_MEMORY_OP,
    HYPERVISOR_SCHED_OP, HYPERVISOR_SET_TIMER_OP,
};
use xen_abi::DomId;

use crate::arch;

static PRESENT: AtomicBool = AtomicBool::new(false);
static USE_VMMCALL: AtomicBool = AtomicBool::new(false);
static DOMID: AtomicU32 = AtomicU32::new(u32::MAX);
static VCPU_ID: AtomicU32 = AtomicU32::new(u32::MAX);
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static TSC_OFFSET: AtomicU64 = AtomicU64::new(0);
static TSC_MUL: AtomicU32 = AtomicU32::new(0);
static TSC_SHIFT: AtomicI64 = AtomicI64::new(0);

/// Assumed TSC rate when there is no Xen time leaf (plain QEMU): 1 GHz.
const FALLBACK_TSC_KHZ: u64 = 1_000_000;

/// Reads the Xen leaves and the vendor once, at start.
pub fn init() {
    let vendor = arch::vendor();
    USE_VMMCALL.store(&vendor == b"AuthenticAMD" || &vendor == b"HygonGenuine", Ordering::Relaxed);
    let sig = signature();
    let present = &sig.1 == XEN_CPUID_SIGNATURE && sig.0 >= XEN_CPUID_HVM_LEAF;
    PRESENT.store(present, Ordering::Relaxed);
    let scale = if present {
        let ids = arch::cpuid(XEN_CPUID_HVM_LEAF, 0);
        if ids.eax & XEN_HVM_CPUID_VCPU_ID_PRESENT != 0 {
            VCPU_ID.store(ids.ebx, Ordering::Relaxed);
        }
        if ids.eax & XEN_HVM_CPUID_DOMID_PRESENT != 0 {
            DOMID.store(ids.ecx, Ordering::Relaxed);
        }
        TSC_KHZ.store(u64::from(arch::cpuid(XEN_CPUID_TIME_LEAF, 0).ecx), Ordering::Relaxed);
        let t = arch::cpuid(XEN_CPUID_TIME_LEAF, 1);
        TimeScale::from_cpuid(t.eax, t.ebx, t.ecx, t.edx)
    } else {
        TSC_KHZ.store(FALLBACK_TSC_KHZ, Ordering::Relaxed);
        TimeScale::for_khz(FALLBACK_TSC_KHZ)
    };
    TSC_OFFSET.store(scale.tsc_offset, Ordering::Relaxed);
    TSC_MUL.store(scale.mul, Ordering::Relaxed);
    TSC_SHIFT.store(i64::from(scale.shift), Ordering::Relaxed);
}

/// `eax` and the 12 signature bytes of leaf 0x4000_0000.
pub fn signature() -> (u32, [u8; 12]) {
    let r = arch::cpuid(XEN_CPUID_FIRST_LEAF, 0);
    let mut s = [0u8; 12];
    s[..4].copy_from_slice(&r.ebx.to_le_bytes());
    s[4..8].copy_from_slice(&r.ecx.to_le_bytes());
    s[8..].copy_from_slice(&r.edx.to_le_bytes());
    (r.eax, s)
}

/// Running under a Xen-compatible hypervisor.
pub fn present() -> bool {
    PRESENT.load(Ordering::Relaxed)
}

/// Whether hypercalls use `vmmcall` (AMD) rather than `vmcall` (Intel).
pub fn uses_vmmcall() -> bool {
    USE_VMMCALL.load(Ordering::Relaxed)
}

/// The domain id from leaf base + 4, if given.
pub fn domid() -> Option<u32> {
    Some(DOMID.load(Ordering::Relaxed)).filter(|&d| d != u32::MAX)
}

/// The vCPU id from leaf base + 4, if given.
pub fn vcpu_id() -> Option<u32> {
    Some(VCPU_ID.load(Ordering::Relaxed)).filter(|&v| v != u32::MAX)
}

/// The TSC rate in kHz (from the time leaf; an assumed 1 GHz without Xen).
pub fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// The pvclock scale in use.
pub fn time_scale() -> TimeScale {
    TimeScale {
        tsc_offset: TSC_OFFSET.load(Ordering::Relaxed),
        mul: TSC_MUL.load(Ordering::Relaxed),
        shift: TSC_SHIFT.load(Ordering::Relaxed) as i8,
    }
}

/// Xen system time in ns.
pub fn now_ns() -> u64 {
    time_scale().ns(arch::rdtsc())
}

/// Issues hypercall `nr` with up to five arguments; `-ENOSYS` without Xen.
pub fn hypercall(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    if !present() {
        return -ENOSYS;
    }
    let ret: u64;
    if uses_vmmcall() {
        // SAFETY: VMMCALL traps to the hypervisor, which reads/writes only the guest memory
        // the arguments name (the callers pass addresses of live locals). Argument registers
        // and rcx/r11 are treated as clobbered, as Linux does.
        unsafe {
            asm!(
                "vmmcall",
                inlateout("rax") nr => ret,
                inlateout("rdi") a1 => _,
                inlateout("rsi") a2 => _,
                inlateout("rdx") a3 => _,
                inlateout("r10") a4 => _,
                inlateout("r8") a5 => _,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            )
        };
    } else {
        // SAFETY: as above, with VMCALL (Intel).
        unsafe {
            asm!(
                "vmcall",
                inlateout("rax") nr => ret,
                inlateout("rdi") a1 => _,
                inlateout("rsi") a2 => _,
                inlateout("rdx") a3 => _,
                inlateout("r10") a4 => _,
                inlateout("r8") a5 => _,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            )
        };
    }
    ret as i64
}

/// `console_io(CONSOLEIO_write, len, bytes)`.
pub fn console_write(bytes: &[u8]) -> i64 {
    hypercall(HYPERVISOR_CONSOLE_IO, CONSOLEIO_WRITE, bytes.len() as u64, bytes.as_ptr() as u64, 0, 0)
}

/// `sched_op(SCHEDOP_shutdown, { reason })`; returns only if the hypercall failed.
pub fn sched_shutdown(reason: ShutdownReason) -> i64 {
    let arg = SchedShutdown { reason: reason as u32 };
    hypercall(HYPERVISOR_SCHED_OP, SCHEDOP_SHUTDOWN, &arg as *const SchedShutdown as u64, 0, 0, 0)
}

/// `set_timer_op(deadline_ns)`: a one-shot timer at absolute system time (0 cancels).
pub fn set_timer(deadline_ns: u64) -> i64 {
    hypercall(HYPERVISOR_SET_TIMER_OP, deadline_ns, 0, 0, 0, 0)
}

/// `hvm_op(HVMOP_set_param, { DOMID_SELF, index, value })`.
pub fn hvm_set_param(index: u32, value: u64) -> i64 {
    let param = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value };
    hypercall(HYPERVISOR_HVM_OP, HVMOP_SET_PARAM, &param as *const XenHvmParam as u64, 0, 0, 0)
}

/// `HVMOP_get_param` of this domain.
pub fn hvm_get_param(index: u32) -> Result<u64, i64> {
    let mut param = XenHvmParam { domid: DOMID_SELF, pad: 0, index, value: 0 };
    let rc = hypercall(HYPERVISOR_HVM_OP, HVMOP_GET_PARAM, &mut param as *mut XenHvmParam as u64, 0, 0, 0);
    if rc < 0 {
        Err(rc)
    } else {
        Ok(param.value)
    }
}

/// Value isa-debug-exit (port 0xf4) turns into QEMU exit status 33.
const DEBUG_EXIT_SUCCESS: u8 = 0x10;
/// Value isa-debug-exit turns into QEMU exit status 35.
const DEBUG_EXIT_FAILURE: u8 = 0x11;
/// QEMU's isa-debug-exit port (only used without Xen).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends the domain with `reason`. Without Xen (plain QEMU) it writes to isa-debug-exit
/// (0x10 for poweroff, 0x11 otherwise) so QEMU exits with status 33 or 35.
pub fn shutdown(reason: ShutdownReason) -> ! {
    if present() {
        let rc = sched_shutdown(reason);
        crate::println!("GUEST error SCHEDOP_shutdown({reason:?}) returned {rc}");
    } else {
        let value = if reason == ShutdownReason::Poweroff { DEBUG_EXIT_SUCCESS } else { DEBUG_EXIT_FAILURE };
        arch::outb(DEBUG_EXIT_PORT, value);
    }
    arch::halt_forever()
}

/// The page shared_info is mapped at (the guest is identity-mapped: address = frame << 12).
#[repr(C, align(4096))]
struct SharedInfoPage(core::cell::UnsafeCell<[u8; 4096]>);

// SAFETY: the page is only accessed through atomics once Xen shares it with the guest.
unsafe impl Sync for SharedInfoPage {}

static SHARED_INFO: SharedInfoPage = SharedInfoPage(core::cell::UnsafeCell::new([0; 4096]));
static SHARED_INFO_MAPPED: AtomicBool = AtomicBool::new(false);

/// The address of the shared_info page once Xen shares it (see [`map_shared_info`]).
pub fn shared_info() -> Option<u64> {
    SHARED_INFO_MAPPED.load(Ordering::Acquire).then(|| SHARED_INFO.0.get() as u64)
}

/// `XENMEM_add_to_physmap(XENMAPSPACE_shared_info)` onto [`SHARED_INFO`]'s frame.
pub fn map_shared_info() -> i64 {
    let gpfn = SHARED_INFO.0.get() as u64 >> 12;
    let arg = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_SHARED_INFO, idx: 0, gpfn };
    let rc = hypercall(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &arg as *const XenAddToPhysmap as u64, 0, 0, 0);
    if rc == 0 {
        SHARED_INFO_MAPPED.store(true, Ordering::Release);
    }
    rc
}

/// Hypercall `nr` with `cmd` and a pointer to `arg`, which Xen reads and may write back.
pub fn op<T>(nr: u64, cmd: u64, arg: &mut T) -> i64 {
    hypercall(nr, cmd, arg as *mut T as u64, 0, 0, 0)
}

/// `event_channel_op(cmd, arg)`.
pub fn evtchn_op<T>(cmd: u64, arg: &mut T) -> i64 {
    op(HYPERVISOR_EVENT_CHANNEL_OP, cmd, arg)
}

fn ok_or(rc: i64, value: u32) -> Result<u32, i64> {
    if rc == 0 {
        Ok(value)
    } else {
        Err(rc)
    }
}

/// `EVTCHNOP_bind_virq`: the port `virq` of `vcpu` arrives on, or the error.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, i64> {
    let mut arg = EvtchnBindVirq { virq, vcpu, port: 0 };
    let rc = evtchn_op(EVTCHNOP_BIND_VIRQ, &mut arg);
    ok_or(rc, arg.port)
}

/// `EVTCHNOP_bind_ipi` for `vcpu`.
pub fn bind_ipi(vcpu: u32) -> Result<u32, i64> {
    let mut arg = EvtchnBindIpi { vcpu, port: 0 };
    let rc = evtchn_op(EVTCHNOP_BIND_IPI, &mut arg);
    ok_or(rc, arg.port)
}

/// `EVTCHNOP_alloc_unbound`: a port of `dom` that `remote` may bind to.
pub fn alloc_unbound(dom: DomId, remote: DomId) -> Result<u32, i64> {
    let mut arg = EvtchnAllocUnbound { dom, remote_dom: remote, port: 0 };
    let rc = evtchn_op(EVTCHNOP_ALLOC_UNBOUND, &mut arg);
    ok_or(rc, arg.port)
}

/// `EVTCHNOP_bind_interdomain` to `remote_port` of `remote`: the new local port.
pub fn bind_interdomain(remote: DomId, remote_port: u32) -> Result<u32, i64> {
    let mut arg = EvtchnBindInterdomain { remote_dom: remote, remote_port, local_port: 0 };
    let rc = evtchn_op(EVTCHNOP_BIND_INTERDOMAIN, &mut arg);
    ok_or(rc, arg.local_port)
}

/// `EVTCHNOP_send` on `port`.
pub fn evtchn_send(port: u32) -> i64 {
    evtchn_op(EVTCHNOP_SEND, &mut EvtchnSend { port })
}

/// `EVTCHNOP_close` of `port`.
pub fn evtchn_close(port: u32) -> i64 {
    evtchn_op(EVTCHNOP_CLOSE, &mut EvtchnClose { port })
}

/// `EVTCHNOP_status` of `port` of `dom`.
pub fn evtchn_status(dom: DomId, port: u32) -> Result<EvtchnStatus, i64> {
    let mut arg = EvtchnStatus { dom, port, ..EvtchnStatus::default() };
    let rc = evtchn_op(EVTCHNOP_STATUS, &mut arg);
    if rc == 0 {
        Ok(arg)
    } else {
        Err(rc)
    }
}

/// `SCHEDOP_yield`.
pub fn sched_yield() -> i64 {
    hypercall(HYPERVISOR_SCHED_OP, SCHEDOP_YIELD, 0, 0, 0, 0)
}

/// The page Xen's hypercall stubs are written to (identity-mapped: address = frame << 12).
#[repr(C, align(4096))]
struct HypercallPage(core::cell::UnsafeCell<[u8; 4096]>);

// SAFETY: written once by the hypervisor (on our WRMSR) and then only executed.
unsafe impl Sync for HypercallPage {}

#[unsafe(link_section = ".text.hypercall_page")]
static HYPERCALL_PAGE: HypercallPage = HypercallPage(core::cell::UnsafeCell::new([0xc3; 4096]));

/// Asks for the hypercall page (WRMSR of its address to the MSR CPUID leaf base+2 names),
/// then makes `xen_version(XENVER_version)` through its stub. Returns the result.
pub fn xen_version_via_hypercall_page() -> i64 {
    let page = HYPERCALL_PAGE.0.get() as u64;
    let lo = page as u32;
    let hi = (page >> 32) as u32;
    // SAFETY: WRMSR of the hypercall-page MSR only makes the hypervisor fill our page with
    // stubs; the page is ours and nothing else lives in it.
    unsafe {
        asm!("wrmsr", in("ecx") test_guest::abi::XEN_HYPERCALL_PAGE_MSR, in("eax") lo, in("edx") hi,
             options(nostack, preserves_flags))
    };
    let stub = page + xen_abi::xen::HYPERVISOR_XEN_VERSION * 32;
    let result: i64;
    // SAFETY: the stub is `mov eax, 17; vmmcall|vmcall; ret`, which follows the hypercall ABI
    // (arguments in rdi/rsi, result in rax); the call clobbers only what the ABI lets it.
    unsafe {
        asm!("call {stub}", stub = in(reg) stub, inout("rdi") 0u64 => _, inout("rsi") 0u64 => _,
             lateout("rax") result, lateout("rcx") _, lateout("rdx") _, lateout("r8") _, lateout("r10") _,
             lateout("r11") _)
    };
    result
}

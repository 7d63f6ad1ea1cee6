//! What the test guest needs beyond Xen's public headers: the values it expects from the
//! hypervisor, the x86 bits it checks, and a typed shutdown reason. Xen's own constants and
//! structures come from the `xen_abi` crate.

use xen_abi::cpuid::{xen_cpuid_leaf, XEN_CPUID_MAX_NUM_LEAVES};
use xen_abi::sched::{SHUTDOWN_CRASH, SHUTDOWN_POWEROFF, SHUTDOWN_REBOOT, SHUTDOWN_SUSPEND, SHUTDOWN_WATCHDOG};
use xen_abi::version::version_number;

/// `eax` of the first Xen leaf: the highest Xen leaf (base + `XEN_CPUID_MAX_NUM_LEAVES`).
pub const XEN_CPUID_MAX_LEAF: u32 = xen_cpuid_leaf(XEN_CPUID_MAX_NUM_LEAVES);
/// Base + 1: the version leaf.
pub const XEN_CPUID_VERSION_LEAF: u32 = xen_cpuid_leaf(1);
/// Base + 2: the hypercall-page leaf.
pub const XEN_CPUID_HYPERCALL_LEAF: u32 = xen_cpuid_leaf(2);
/// Base + 3: the time leaf (sub-leaf 0: `ecx` = TSC kHz; sub-leaf 1: pvclock parameters).
pub const XEN_CPUID_TIME_LEAF: u32 = xen_cpuid_leaf(3);
/// Base + 4: HVM-specific features.
pub const XEN_CPUID_HVM_LEAF: u32 = xen_cpuid_leaf(4);
/// `eax` of base + 1 the guest expects: Xen 4.17.
pub const XEN_VERSION_4_17: u32 = version_number(4, 17);
/// The hypercall-page MSR that base + 2 names in `ebx` (Xen's choice; not in the headers).
pub const XEN_HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;
/// A hypercall number Xen does not define (its table has 64 entries): must fail with
/// `-ENOSYS`.
pub const HYPERVISOR_UNDEFINED: u64 = 64;

/// CPUID leaf 1 `ecx`: running under a hypervisor.
pub const CPUID1_ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID leaf 1 `ecx`: VMX (Intel VT-x).
pub const CPUID1_ECX_VMX: u32 = 1 << 5;
/// CPUID leaf 0x8000_0001 `ecx`: SVM (AMD-V).
pub const CPUID80000001_ECX_SVM: u32 = 1 << 2;

/// `MSR_EFER` and its long-mode bits.
pub const MSR_EFER: u32 = 0xc000_0080;
/// `EFER.LME`: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// `EFER.LMA`: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// An MSR no CPU or hypervisor defines: reading it must raise #GP.
pub const MSR_UNDEFINED: u32 = 0xdead_0000;

/// The `SHUTDOWN_*` reasons the guest uses, as a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`.
    Poweroff = SHUTDOWN_POWEROFF,
    /// `SHUTDOWN_reboot`.
    Reboot = SHUTDOWN_REBOOT,
    /// `SHUTDOWN_suspend`.
    Suspend = SHUTDOWN_SUSPEND,
    /// `SHUTDOWN_crash`.
    Crash = SHUTDOWN_CRASH,
    /// `SHUTDOWN_watchdog`.
    Watchdog = SHUTDOWN_WATCHDOG,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations() {
        assert_eq!(XEN_CPUID_MAX_LEAF, 0x4000_0005);
        assert_eq!((XEN_CPUID_TIME_LEAF, XEN_CPUID_HVM_LEAF), (0x4000_0003, 0x4000_0004));
        assert_eq!(XEN_VERSION_4_17, 0x0004_0011);
        assert_eq!(ShutdownReason::Crash as u32, 3);
    }
}

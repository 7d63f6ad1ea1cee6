//! The pieces of Xen's guest ABI the test guest uses (values from Xen's public headers:
//! `arch-x86/cpuid.h`, `xen.h`, `sched.h`, `hvm/hvm_op.h`, `hvm/params.h`, `errno.h`).

/// First Xen CPUID leaf.
pub const XEN_CPUID_BASE: u32 = 0x4000_0000;
/// `ebx`, `ecx`, `edx` of the first Xen leaf.
pub const XEN_CPUID_SIGNATURE: &[u8; 12] = b"XenVMMXenVMM";
/// `eax` of the first Xen leaf: the highest Xen leaf (base + `XEN_CPUID_MAX_NUM_LEAVES` 5).
pub const XEN_CPUID_MAX_LEAF: u32 = XEN_CPUID_BASE + 5;
/// `eax` of base + 1 for Xen 4.17 (`major << 16 | minor`).
pub const XEN_VERSION_4_17: u32 = 0x0004_0011;
/// The hypercall-page MSR that base + 2 names in `ebx`.
pub const XEN_HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;
/// Base + 3: the time leaf (sub-leaf 0: `ecx` = TSC kHz; sub-leaf 1: pvclock parameters).
pub const XEN_CPUID_TIME_LEAF: u32 = XEN_CPUID_BASE + 3;
/// Base + 4: HVM-specific features.
pub const XEN_CPUID_HVM_LEAF: u32 = XEN_CPUID_BASE + 4;
/// Base + 4, `eax`: `ebx` holds the vCPU id.
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// Base + 4, `eax`: `ecx` holds the domain id.
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;

/// CPUID leaf 1 `ecx`: running under a hypervisor.
pub const CPUID1_ECX_HYPERVISOR: u32 = 1 << 31;
/// CPUID leaf 1 `ecx`: VMX (Intel VT-x).
pub const CPUID1_ECX_VMX: u32 = 1 << 5;
/// CPUID leaf 0x8000_0001 `ecx`: SVM (AMD-V).
pub const CPUID80000001_ECX_SVM: u32 = 1 << 2;

/// `__HYPERVISOR_set_timer_op`: `rdi` = absolute system time in ns (0 cancels).
pub const HYPERVISOR_SET_TIMER_OP: u64 = 15;
/// `__HYPERVISOR_console_io`.
pub const HYPERVISOR_CONSOLE_IO: u64 = 18;
/// `__HYPERVISOR_sched_op`.
pub const HYPERVISOR_SCHED_OP: u64 = 29;
/// `__HYPERVISOR_hvm_op`.
pub const HYPERVISOR_HVM_OP: u64 = 34;
/// A hypercall number Xen does not define (its table has 64 entries): must fail with
/// `-ENOSYS`.
pub const HYPERVISOR_UNDEFINED: u64 = 64;

/// `CONSOLEIO_write`: `rsi` = count, `rdx` = guest address of the bytes.
pub const CONSOLEIO_WRITE: u64 = 0;
/// `SCHEDOP_yield`.
pub const SCHEDOP_YIELD: u64 = 0;
/// `SCHEDOP_block`.
pub const SCHEDOP_BLOCK: u64 = 1;
/// `SCHEDOP_shutdown`: `rsi` = guest address of [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// `HVMOP_set_param`: `rsi` = guest address of [`XenHvmParam`].
pub const HVMOP_SET_PARAM: u64 = 0;
/// `HVM_PARAM_CALLBACK_IRQ`: how event-channel upcalls are delivered.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
/// `HVM_PARAM_CALLBACK_TYPE_VECTOR` (in bits 63:56 of the parameter value).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u64 = 2;
/// `DOMID_SELF`.
pub const DOMID_SELF: u16 = 0x7ff0;
/// `ENOSYS`: hypercalls return `-ENOSYS` for numbers they do not implement.
pub const ENOSYS: i64 = 38;

/// `MSR_EFER` and its long-mode bits.
pub const MSR_EFER: u32 = 0xc000_0080;
/// `EFER.LME`: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// `EFER.LMA`: long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// An MSR no CPU or hypervisor defines: reading it must raise #GP.
pub const MSR_UNDEFINED: u32 = 0xdead_0000;

/// `struct hvm_start_info` magic.
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// E820 type of usable RAM.
pub const E820_RAM: u32 = 1;

/// `HVM_PARAM_CALLBACK_IRQ` value delivering upcalls on `vector`.
pub const fn callback_via_vector(vector: u8) -> u64 {
    (HVM_PARAM_CALLBACK_TYPE_VECTOR << 56) | vector as u64
}

/// `SHUTDOWN_*` reasons of `struct sched_shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ShutdownReason {
    /// `SHUTDOWN_poweroff`.
    Poweroff = 0,
    /// `SHUTDOWN_reboot`.
    Reboot = 1,
    /// `SHUTDOWN_suspend`.
    Suspend = 2,
    /// `SHUTDOWN_crash`.
    Crash = 3,
    /// `SHUTDOWN_watchdog`.
    Watchdog = 4,
}

/// `struct sched_shutdown`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct SchedShutdown {
    /// A [`ShutdownReason`] value.
    pub reason: u32,
}

/// `struct xen_hvm_param`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct XenHvmParam {
    /// `domid_t`: [`DOMID_SELF`].
    pub domid: u16,
    /// Padding.
    pub pad: u16,
    /// `HVM_PARAM_*`.
    pub index: u32,
    /// The value.
    pub value: u64,
}

const _: () = assert!(core::mem::size_of::<SchedShutdown>() == 4);
const _: () = assert!(core::mem::size_of::<XenHvmParam>() == 16);
const _: () = assert!(core::mem::offset_of!(XenHvmParam, index) == 4);
const _: () = assert!(core::mem::offset_of!(XenHvmParam, value) == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_value() {
        assert_eq!(callback_via_vector(0xf3), 0x0200_0000_0000_00f3);
    }

    #[test]
    fn signature_registers() {
        // ebx, ecx, edx in that order spell the signature.
        let ebx = u32::from_le_bytes(*b"XenV");
        let ecx = u32::from_le_bytes(*b"MMXe");
        let edx = u32::from_le_bytes(*b"nVMM");
        let mut s = [0u8; 12];
        s[..4].copy_from_slice(&ebx.to_le_bytes());
        s[4..8].copy_from_slice(&ecx.to_le_bytes());
        s[8..].copy_from_slice(&edx.to_le_bytes());
        assert_eq!(&s, XEN_CPUID_SIGNATURE);
    }
}

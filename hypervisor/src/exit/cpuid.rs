//! The CPUID a guest sees: Xen's hypervisor leaves at 0x40000000, and the host's features
//! filtered down to what Ferrovisor virtualizes (an allow-list: a feature we do not know
//! is hidden, never passed through by accident).

use crate::arch::x86_64::time;
use crate::vcpu::Vcpu;
use crate::virt::GuestRegs;
use core::arch::x86_64::{__cpuid_count, CpuidResult};

const XEN_BASE: u32 = 0x4000_0000;
/// `XEN_CPUID_MAX_NUM_LEAVES`: leaves base+1 .. base+5.
const XEN_MAX_LEAF: u32 = XEN_BASE + 5;
/// Xen 4.17, the version we present.
const XEN_VERSION: u32 = (4 << 16) | 17;
/// The MSR a guest writes to have the hypercall page installed.
pub const HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;

const MAX_BASIC_LEAF: u32 = 0xd;
const MAX_EXTENDED_LEAF: u32 = 0x8000_0008;

mod leaf1 {
    pub const ECX_ALLOWED: u32 = (1 << 0) // SSE3
        | (1 << 1) // PCLMULQDQ
        | (1 << 9) // SSSE3
        | (1 << 13) // CMPXCHG16B
        | (1 << 19) // SSE4.1
        | (1 << 20) // SSE4.2
        | (1 << 21) // x2APIC (emulated)
        | (1 << 22) // MOVBE
        | (1 << 23) // POPCNT
        | (1 << 25) // AES
        | (1 << 30); // RDRAND
    pub const ECX_HYPERVISOR: u32 = 1 << 31;
    pub const EDX_ALLOWED: u32 = (1 << 0) // FPU
        | (1 << 1) // VME
        | (1 << 2) // DE
        | (1 << 3) // PSE
        | (1 << 4) // TSC
        | (1 << 5) // MSR
        | (1 << 6) // PAE
        | (1 << 8) // CX8
        | (1 << 9) // APIC (emulated, x2APIC mode)
        | (1 << 11) // SEP
        | (1 << 13) // PGE
        | (1 << 15) // CMOV
        | (1 << 16) // PAT
        | (1 << 17) // PSE36
        | (1 << 19) // CLFSH
        | (1 << 23) // MMX
        | (1 << 24) // FXSR
        | (1 << 25) // SSE
        | (1 << 26); // SSE2
}

mod leaf7 {
    pub const EBX_ALLOWED: u32 = (1 << 0) // FSGSBASE
        | (1 << 3) // BMI1
        | (1 << 7) // SMEP
        | (1 << 8) // BMI2
        | (1 << 9) // ERMS
        | (1 << 19) // ADX
        | (1 << 20) // SMAP
        | (1 << 23) // CLFLUSHOPT
        | (1 << 29); // SHA
}

mod ext1 {
    pub const ECX_ALLOWED: u32 = (1 << 0) // LAHF/SAHF in long mode
        | (1 << 5) // LZCNT
        | (1 << 6) // SSE4A
        | (1 << 7) // misaligned SSE
        | (1 << 8); // PREFETCHW
    /// AMD mirrors several leaf-1 EDX bits here; keep those we allow there.
    pub const EDX_MIRRORED: u32 = 0x0183_f3ff;
    pub const EDX_ALLOWED: u32 = (1 << 11) // SYSCALL
        | (1 << 20) // NX
        | (1 << 22) // MMX extensions
        | (1 << 26) // 1 GiB pages
        | (1 << 29); // long mode (RDTSCP is hidden: TSC_AUX is not virtualized)
}

/// Fills RAX/RBX/RCX/RDX from the guest's view of leaf EAX, subleaf ECX.
pub fn emulate(vcpu: &Vcpu, regs: &mut GuestRegs) {
    let r = guest_cpuid(vcpu, regs.rax as u32, regs.rcx as u32);
    regs.rax = u64::from(r.eax);
    regs.rbx = u64::from(r.ebx);
    regs.rcx = u64::from(r.ecx);
    regs.rdx = u64::from(r.edx);
}

const ZERO: CpuidResult = CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 };

fn host(leaf: u32, subleaf: u32) -> CpuidResult {
    __cpuid_count(leaf, subleaf)
}

fn guest_cpuid(vcpu: &Vcpu, leaf: u32, subleaf: u32) -> CpuidResult {
    let max_basic = host(0, 0).eax.min(MAX_BASIC_LEAF);
    let max_extended = host(0x8000_0000, 0).eax.min(MAX_EXTENDED_LEAF);
    match leaf {
        XEN_BASE..=0x4000_00ff => xen_leaf(vcpu, leaf, subleaf),
        0 => CpuidResult { eax: max_basic, ..host(0, 0) },
        1 => {
            let h = host(1, 0);
            CpuidResult {
                eax: h.eax,
                // Brand index and CLFLUSH size kept; one logical CPU; APIC id = vCPU id.
                ebx: (h.ebx & 0xffff) | (1 << 16) | (vcpu.id << 24),
                ecx: (h.ecx & leaf1::ECX_ALLOWED) | leaf1::ECX_HYPERVISOR,
                edx: h.edx & leaf1::EDX_ALLOWED,
            }
        }
        2 => host(2, 0),
        // Cache parameters, claiming no sharing between cores or threads.
        4 if leaf <= max_basic => {
            let h = host(4, subleaf);
            CpuidResult { eax: h.eax & 0x3fff, ..h }
        }
        7 if subleaf == 0 && leaf <= max_basic => {
            CpuidResult { eax: 0, ebx: host(7, 0).ebx & leaf7::EBX_ALLOWED, ecx: 0, edx: 0 }
        }
        0x8000_0000 => CpuidResult { eax: max_extended, ..host(0x8000_0000, 0) },
        0x8000_0001 => {
            let h = host(0x8000_0001, 0);
            CpuidResult {
                eax: h.eax,
                ebx: 0,
                ecx: h.ecx & ext1::ECX_ALLOWED,
                edx: h.edx & ((leaf1::EDX_ALLOWED & ext1::EDX_MIRRORED) | ext1::EDX_ALLOWED),
            }
        }
        // Brand string and L1/L2 cache descriptions.
        0x8000_0002..=0x8000_0006 if leaf <= max_extended => host(leaf, 0),
        0x8000_0007 if leaf <= max_extended => CpuidResult { edx: host(leaf, 0).edx & (1 << 8), ..ZERO },
        // Address sizes; no core count.
        0x8000_0008 if leaf <= max_extended => CpuidResult { eax: host(leaf, 0).eax, ..ZERO },
        _ => ZERO,
    }
}

/// Xen's hypervisor leaves (`xen/arch/x86/cpuid.c`, `public/arch-x86/cpuid.h`).
fn xen_leaf(vcpu: &Vcpu, leaf: u32, subleaf: u32) -> CpuidResult {
    let sig = |s: &[u8; 4]| u32::from_le_bytes(*s);
    match leaf {
        XEN_BASE => CpuidResult { eax: XEN_MAX_LEAF, ebx: sig(b"XenV"), ecx: sig(b"MMXe"), edx: sig(b"nVMM") },
        0x4000_0001 => CpuidResult { eax: XEN_VERSION, ..ZERO },
        // One hypercall page, installed by writing its address to this MSR.
        0x4000_0002 => CpuidResult { eax: 1, ebx: HYPERCALL_PAGE_MSR, ..ZERO },
        0x4000_0003 => time_leaf(subleaf),
        0x4000_0004 => {
            const VCPU_ID_PRESENT: u32 = 1 << 3;
            const DOMID_PRESENT: u32 = 1 << 4;
            CpuidResult { eax: VCPU_ID_PRESENT | DOMID_PRESENT, ebx: vcpu.id, ecx: u32::from(vcpu.domain.id), edx: 0 }
        }
        _ => ZERO,
    }
}

/// The time leaf: TSC frequency, and the TSC -> system-time scale with its offset.
fn time_leaf(subleaf: u32) -> CpuidResult {
    let khz = (time::tsc_hz() / 1000) as u32;
    match subleaf {
        0 => {
            let invariant = crate::arch::x86_64::cpu::features().invariant_tsc;
            CpuidResult { eax: u32::from(invariant) << 1, ebx: 0, ecx: khz, edx: 0 }
        }
        1 => {
            let offset = time::boot_tsc();
            let scale = time::time_scale();
            CpuidResult {
                eax: offset as u32,
                ebx: (offset >> 32) as u32,
                ecx: scale.mul_frac,
                edx: i32::from(scale.shift) as u32,
            }
        }
        2 => CpuidResult { eax: khz, ..ZERO },
        _ => ZERO,
    }
}

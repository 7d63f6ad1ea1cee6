//! CPU identification and the control-register state every CPU runs with.

use raw_cpuid::CpuId;
use spin::Once;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// What the hypervisor needs to know about the processor, read once on the BSP.
#[derive(Debug, Clone, Copy)]
pub struct Features {
    pub vendor: Vendor,
    pub no_execute: bool,
    pub huge_pages_1g: bool,
    pub x2apic: bool,
    pub invariant_tsc: bool,
    pub global_pages: bool,
    /// The hypervisor signature when we are ourselves a guest (CPUID leaf 0x40000000).
    pub hypervisor: Option<[u8; 12]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Intel,
    Amd,
    Other,
}

static FEATURES: Once<Features> = Once::new();

pub fn features() -> &'static Features {
    FEATURES.call_once(detect)
}

fn detect() -> Features {
    let cpuid = CpuId::new();
    let vendor = match cpuid.get_vendor_info().as_ref().map(|v| v.as_str()) {
        Some("GenuineIntel") => Vendor::Intel,
        Some("AuthenticAMD") | Some("HygonGenuine") => Vendor::Amd,
        _ => Vendor::Other,
    };
    let basic = cpuid.get_feature_info();
    let ext = cpuid.get_extended_processor_and_feature_identifiers();
    let hypervisor = basic.as_ref().filter(|f| f.has_hypervisor()).map(|_| raw_cpuid::cpuid!(0x4000_0000)).map(|r| {
        let mut sig = [0u8; 12];
        sig[0..4].copy_from_slice(&r.ebx.to_le_bytes());
        sig[4..8].copy_from_slice(&r.ecx.to_le_bytes());
        sig[8..12].copy_from_slice(&r.edx.to_le_bytes());
        sig
    });
    Features {
        vendor,
        no_execute: ext.as_ref().is_some_and(|e| e.has_execute_disable()),
        huge_pages_1g: ext.as_ref().is_some_and(|e| e.has_1gib_pages()),
        x2apic: basic.as_ref().is_some_and(|f| f.has_x2apic()),
        global_pages: basic.as_ref().is_some_and(|f| f.has_pge()),
        invariant_tsc: cpuid.get_advanced_power_mgmt_info().is_some_and(|p| p.has_invariant_tsc()),
        hypervisor,
    }
}

/// True when QEMU (TCG or KVM) is emulating this machine: then `isa-debug-exit` may exist.
pub fn running_under_qemu() -> bool {
    matches!(&features().hypervisor, Some(sig) if sig == b"TCGTCGTCGTCG" || sig == b"KVMKVMKVM\0\0\0")
}

/// True under QEMU's TCG, whose CPU 0 can lose the SVM state its own world switches set.
///
/// QEMU (7.2 to at least 10.0, upstream unchanged) clears IGNNE in `first_cpu`'s
/// `hflags2` whenever *any* CPU restores x87 state (FXRSTOR, XRSTOR, FRSTOR, FLDENV:
/// `cpu_set_fpus` → `cpu_clear_ignne`), from that CPU's thread, with a plain
/// read-modify-write and no lock. `hflags2` also holds CPU 0's nested-paging and GIF
/// bits, which its VMRUN, #VMEXIT, STGI and CLGI change; under multi-threaded TCG such a
/// change made while another CPU's clear is in flight is undone. CPU 0 then runs the host
/// with nested paging on (it walks the hypervisor's page tables through a guest's nested
/// table: a triple fault, or a nested page fault that stores the host's state into the
/// guest's VMCB), runs a guest without nested paging (a spurious page fault on intact
/// tables), or stays with GIF clear (no interrupt ever again). Other CPUs are not
/// affected, so on such a machine guests run on the other CPUs ([`crate::sched`]).
pub fn cpu0_svm_state_unreliable() -> bool {
    matches!(&features().hypervisor, Some(sig) if sig == b"TCGTCGTCGTCG")
}

/// Puts this CPU's control registers in the state the hypervisor relies on: NX usable,
/// writes to read-only pages fault even in ring 0, global pages for the hypervisor's own
/// mappings. Every CPU calls it before loading the hypervisor's page tables.
pub fn init_control_registers() {
    let f = features();
    if f.no_execute {
        // SAFETY: enabling NXE only gives meaning to bit 63 of page-table entries, which
        // the boot tables leave clear.
        unsafe { Efer::update(|e| e.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    // SAFETY: WP makes ring-0 writes honour read-only mappings; the hypervisor never
    // writes through a read-only mapping on purpose.
    unsafe { Cr0::update(|c| c.insert(Cr0Flags::WRITE_PROTECT)) };
    // SAFETY: FXSAVE/FXRSTOR of guest x87/SSE state need OSFXSR; the hypervisor itself
    // is built without SSE, so enabling it changes nothing for host code.
    unsafe { Cr4::update(|c| c.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE)) };
    if f.global_pages {
        // SAFETY: PGE only changes which TLB entries survive CR3 loads; mappings marked
        // global are the hypervisor's own, identical in every address space.
        unsafe { Cr4::update(|c| c.insert(Cr4Flags::PAGE_GLOBAL)) };
    }
}

//! Intercepted MSR accesses. The MSRs that live in the VMCB pass through (see the
//! backend's permission map); the few others a guest may touch are emulated here, and any
//! other access gets #GP, as on Xen.

use super::cpuid::HYPERCALL_PAGE_MSR;
use crate::arch::x86_64::time;
use crate::hypercall;
use crate::vcpu::{Exec, Vcpu};
use crate::vlapic::{self, Effect, MSR_APIC_BASE, X2APIC_FIRST, X2APIC_LAST};

const IA32_TIME_STAMP_COUNTER: u32 = 0x10;
/// Read by Linux's early CPU checks on Intel (`verify_cpu`, XD-disable bit): as on Xen, a
/// fixed value saying branch-trace and PEBS storage are unavailable; writes must not change it.
const IA32_MISC_ENABLE: u32 = 0x1a0;
/// The microcode revision (Intel's IA32_BIOS_SIGN_ID): Linux writes 0 and reads it back at
/// boot on Intel. As on Xen: reads as 0, and only 0 may be written.
const IA32_BIOS_SIGN_ID: u32 = 0x8b;
const MISC_ENABLE_VALUE: u64 = (1 << 11) | (1 << 12);
const IA32_EFER: u32 = 0xc000_0080;

/// EFER bits a guest may set: SCE, LME, LMA (ignored on write), NXE.
const EFER_WRITABLE: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);
const EFER_LMA: u64 = 1 << 10;

/// The value of `msr`, or `None` for #GP.
pub fn read(vcpu: &Vcpu, exec: &mut Exec, msr: u32) -> Option<u64> {
    match msr {
        MSR_APIC_BASE => Some(vcpu.lapic.lock().base_msr()),
        X2APIC_FIRST..=X2APIC_LAST => vcpu.lapic.lock().read(msr - X2APIC_FIRST),
        IA32_EFER => Some(exec.hw.guest_efer()),
        IA32_TIME_STAMP_COUNTER => Some(time::rdtsc()),
        IA32_MISC_ENABLE => Some(MISC_ENABLE_VALUE),
        IA32_BIOS_SIGN_ID => Some(0),
        _ => {
            log::debug!("d{}v{}: rdmsr {msr:#x} -> #GP", vcpu.domain.id, vcpu.id);
            None
        }
    }
}

/// Performs the write; `false` means #GP.
pub fn write(vcpu: &Vcpu, exec: &mut Exec, msr: u32, value: u64) -> bool {
    match msr {
        IA32_EFER => {
            if value & !EFER_WRITABLE != 0 {
                return false;
            }
            // LMA is the CPU's to set; keep the current value.
            let lma = exec.hw.guest_efer() & EFER_LMA;
            exec.hw.set_guest_efer((value & !EFER_LMA) | lma);
            true
        }
        HYPERCALL_PAGE_MSR => hypercall::install_page(vcpu, exec, value),
        IA32_MISC_ENABLE => value == MISC_ENABLE_VALUE,
        IA32_BIOS_SIGN_ID => value == 0,
        MSR_APIC_BASE => vcpu.lapic.lock().set_base_msr(value),
        X2APIC_FIRST..=X2APIC_LAST => {
            let effect = vcpu.lapic.lock().write(msr - X2APIC_FIRST, value);
            match effect {
                Some(Effect::Ipi { icr }) => {
                    vlapic::send_ipi(&vcpu.domain, vcpu.id, icr);
                    true
                }
                Some(Effect::None) => true,
                None => false,
            }
        }
        _ => {
            log::debug!("d{}v{}: wrmsr {msr:#x} <- {value:#x} -> #GP", vcpu.domain.id, vcpu.id);
            false
        }
    }
}

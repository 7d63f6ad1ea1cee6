//! Ferrovisor: a Xen-compatible type-1 hypervisor for x86-64.
//!
//! The boot stub (`boot/entry.S`) enters [`hypervisor_entry`] in long mode on identity
//! page tables, from either PVH or multiboot2. From there [`boot`] brings the machine up
//! in a fixed order: console and clock, boot information, memory, this CPU's tables,
//! ACPI, interrupt controllers and timers, the other CPUs, and then the boot-time domains,
//! which every CPU runs through the scheduler ([`sched`]) on the virtualization backend
//! ([`virt`]).
#![no_std]
#![no_main]

extern crate alloc;

mod acpi;
mod arch;
mod boot;
mod bootdomains;
mod cmdline;
mod console;
mod console_ring;
mod domain;
mod evtchn;
mod exit;
mod grant;
mod guest_access;
mod guest_acpi;
mod hypercall;
mod logger;
mod mm;
mod panic;
mod power;
mod pvh;
mod sched;
#[cfg(feature = "selftest")]
mod selftest;
mod vcpu;
mod virt;
mod vlapic;

core::arch::global_asm!(include_str!("../../boot/entry.S"));
core::arch::global_asm!(include_str!("../../boot/ap_trampoline.S"));

/// Called by the boot stub on the boot processor, on the boot stack, with paging on.
///
/// `protocol` is 1 for PVH, 2 for multiboot2; `info` is the physical address of the
/// loader's structure (`hvm_start_info` or the multiboot2 information).
#[no_mangle]
extern "C" fn hypervisor_entry(protocol: u32, info: u64) -> ! {
    boot::boot_processor_main(protocol, info)
}

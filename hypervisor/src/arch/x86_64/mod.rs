//! x86-64 platform: CPU features and control registers, descriptor tables, traps, the
//! local APIC and its timer, the legacy PIC (masked), time keeping, per-CPU data and SMP
//! bring-up, and the two virtualization backends: `svm` (AMD-V) and `vmx` (Intel VT-x).
pub mod apic;
pub mod cpu;
pub mod gdt;
pub mod idt;
pub mod percpu;
pub mod pic;
pub mod smp;
pub mod svm;
pub mod time;
pub mod traps;
pub mod vmx;

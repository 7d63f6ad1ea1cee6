//! Trap entry and dispatch: CPU exceptions and interrupts.
//!
//! Every vector enters a 16-byte stub that pushes a dummy error code where the CPU pushes
//! none, then the vector number, and jumps to `trap_common`, which saves the general
//! registers and calls [`dispatch`] with the resulting [`TrapFrame`]. The hypervisor runs
//! only in ring 0 (guests run through VMRUN/VMLAUNCH, not by privilege drop), so there is
//! no SWAPGS and no user-mode frame.
//!
//! Any exception in the hypervisor itself is fatal: it is reported with the full register
//! state and the machine stops with a failure status (`crate::panic::die`).

use super::{apic, percpu, pic, smp};
use core::fmt;
use core::sync::atomic::Ordering;
use x86_64::registers::control::{Cr0, Cr2, Cr3, Cr4};

/// Vectors the hypervisor assigns beyond the architectural exceptions.
pub const TIMER_VECTOR: u8 = 0xf0;
pub const WAKEUP_VECTOR: u8 = 0xf1;
pub const APIC_ERROR_VECTOR: u8 = 0xfe;
pub const SPURIOUS_VECTOR: u8 = 0xff;

/// What arrived on a vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vector {
    DivideError,
    Debug,
    Nmi,
    Breakpoint,
    Overflow,
    BoundRange,
    InvalidOpcode,
    DeviceNotAvailable,
    DoubleFault,
    InvalidTss,
    SegmentNotPresent,
    StackSegment,
    GeneralProtection,
    PageFault,
    X87Floating,
    AlignmentCheck,
    MachineCheck,
    SimdFloating,
    Virtualization,
    ControlProtection,
    HypervisorInjection,
    VmmCommunication,
    Security,
    /// An architecturally reserved exception vector.
    ReservedException(u8),
    /// A legacy PIC interrupt: the PICs are masked, so only spurious IRQ 7/15 arrive.
    LegacyPic(u8),
    Timer,
    Wakeup,
    ApicError,
    Spurious,
    /// Any other vector: nothing is programmed to raise it.
    Unexpected(u8),
}

impl From<u8> for Vector {
    fn from(v: u8) -> Self {
        use Vector::*;
        match v {
            0 => DivideError,
            1 => Debug,
            2 => Nmi,
            3 => Breakpoint,
            4 => Overflow,
            5 => BoundRange,
            6 => InvalidOpcode,
            7 => DeviceNotAvailable,
            8 => DoubleFault,
            10 => InvalidTss,
            11 => SegmentNotPresent,
            12 => StackSegment,
            13 => GeneralProtection,
            14 => PageFault,
            16 => X87Floating,
            17 => AlignmentCheck,
            18 => MachineCheck,
            19 => SimdFloating,
            20 => Virtualization,
            21 => ControlProtection,
            28 => HypervisorInjection,
            29 => VmmCommunication,
            30 => Security,
            9 | 15 | 22..=27 | 31 => ReservedException(v),
            _ if (pic::LEGACY_VECTOR_BASE..pic::LEGACY_VECTOR_BASE + pic::LEGACY_VECTOR_COUNT).contains(&v) => {
                LegacyPic(v - pic::LEGACY_VECTOR_BASE)
            }
            TIMER_VECTOR => Timer,
            WAKEUP_VECTOR => Wakeup,
            APIC_ERROR_VECTOR => ApicError,
            SPURIOUS_VECTOR => Spurious,
            _ => Unexpected(v),
        }
    }
}

impl Vector {
    /// The mnemonic and description used in fault reports.
    fn describe(self) -> (&'static str, &'static str) {
        use Vector::*;
        match self {
            DivideError => ("#DE", "divide error"),
            Debug => ("#DB", "debug"),
            Nmi => ("NMI", "non-maskable interrupt"),
            Breakpoint => ("#BP", "breakpoint"),
            Overflow => ("#OF", "overflow"),
            BoundRange => ("#BR", "bound range exceeded"),
            InvalidOpcode => ("#UD", "invalid opcode"),
            DeviceNotAvailable => ("#NM", "device not available"),
            DoubleFault => ("#DF", "double fault"),
            InvalidTss => ("#TS", "invalid TSS"),
            SegmentNotPresent => ("#NP", "segment not present"),
            StackSegment => ("#SS", "stack-segment fault"),
            GeneralProtection => ("#GP", "general protection fault"),
            PageFault => ("#PF", "page fault"),
            X87Floating => ("#MF", "x87 floating-point error"),
            AlignmentCheck => ("#AC", "alignment check"),
            MachineCheck => ("#MC", "machine check"),
            SimdFloating => ("#XM", "SIMD floating-point error"),
            Virtualization => ("#VE", "virtualization exception"),
            ControlProtection => ("#CP", "control protection"),
            HypervisorInjection => ("#HV", "hypervisor injection"),
            VmmCommunication => ("#VC", "VMM communication"),
            Security => ("#SX", "security exception"),
            ReservedException(_) => ("#??", "reserved exception"),
            LegacyPic(_) => ("IRQ", "legacy PIC interrupt"),
            Timer => ("INT", "APIC timer"),
            Wakeup => ("INT", "wake-up IPI"),
            ApicError => ("INT", "APIC error"),
            Spurious => ("INT", "spurious interrupt"),
            Unexpected(_) => ("INT", "unexpected interrupt"),
        }
    }
}

/// Register state saved by the trap stubs, lowest address first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU.
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

const _: () = assert!(core::mem::size_of::<TrapFrame>() == 22 * 8);

// Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30.
core::arch::global_asm!(
    r#"
.section .text
.balign 16
.global trap_stubs
trap_stubs:
.set trap_vector, 0
.rept 256
    .balign 16
    .if (trap_vector == 8) || ((trap_vector >= 10) && (trap_vector <= 14)) || (trap_vector == 17) || (trap_vector == 21) || (trap_vector == 29) || (trap_vector == 30)
    .else
        push 0
    .endif
    push trap_vector
    jmp trap_common
    .set trap_vector, trap_vector + 1
.endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq
"#,
    dispatch = sym dispatch,
);

/// Rust side of every trap.
extern "C" fn dispatch(frame: &mut TrapFrame) {
    match Vector::from(frame.vector as u8) {
        Vector::Timer => {
            percpu::current().timer_ticks.fetch_add(1, Ordering::Relaxed);
            apic::end_of_interrupt();
        }
        Vector::Wakeup => apic::end_of_interrupt(),
        // A spurious APIC interrupt or a spurious legacy IRQ 7/15 takes no EOI.
        Vector::Spurious | Vector::LegacyPic(7) | Vector::LegacyPic(15) => {}
        Vector::ApicError => {
            let status = apic::read_and_clear_error();
            log::warn!("local APIC error, ESR={status:#x}");
            apic::end_of_interrupt();
        }
        Vector::Nmi if smp::stopping() => crate::power::halt_forever(),
        vector => crate::panic::die(|w| report(w, vector, frame)),
    }
}

fn report(w: &mut dyn fmt::Write, vector: Vector, f: &TrapFrame) -> fmt::Result {
    let (mnemonic, description) = vector.describe();
    writeln!(w, "*** EXCEPTION {mnemonic} (vector {}, {description}) on CPU{} ***", f.vector, percpu::current_index())?;
    write!(w, "error code {:#x}", f.error_code)?;
    if vector == Vector::PageFault {
        let e = f.error_code;
        write!(
            w,
            " [{} {} {}{}]",
            if e & 1 != 0 { "protection-violation" } else { "not-present" },
            if e & 2 != 0 { "write" } else { "read" },
            if e & 4 != 0 { "user" } else { "supervisor" },
            if e & 16 != 0 { " instruction-fetch" } else { "" }
        )?;
    }
    writeln!(w)?;
    writeln!(w, "RIP={:#018x} CS={:#06x} RFLAGS={:#018x}", f.rip, f.cs, f.rflags)?;
    writeln!(w, "RSP={:#018x} SS={:#06x}", f.rsp, f.ss)?;
    writeln!(
        w,
        "CR0={:#018x} CR2={:#018x} CR3={:#018x} CR4={:#018x}",
        Cr0::read_raw(),
        Cr2::read_raw(),
        Cr3::read().0.start_address().as_u64(),
        Cr4::read_raw()
    )?;
    writeln!(w, "RAX={:#018x} RBX={:#018x} RCX={:#018x} RDX={:#018x}", f.rax, f.rbx, f.rcx, f.rdx)?;
    writeln!(w, "RSI={:#018x} RDI={:#018x} RBP={:#018x} R8={:#018x}", f.rsi, f.rdi, f.rbp, f.r8)?;
    writeln!(w, "R9={:#018x} R10={:#018x} R11={:#018x} R12={:#018x}", f.r9, f.r10, f.r11, f.r12)?;
    writeln!(w, "R13={:#018x} R14={:#018x} R15={:#018x}", f.r13, f.r14, f.r15)
}

//! The guest's IDT: 256 stubs into one Rust dispatcher.
//!
//! - Exceptions (vectors 0-31) print a `GUEST exception` report and crash the domain,
//!   except a #GP from an `rdmsr` that [`rdmsr_checked`] armed: that one is skipped (RIP + 2).
//! - [`CALLBACK_VECTOR`] is the event upcall: [`crate::events::upcall`] handles the pending
//!   events, and the upcall is counted (the timer test counts its wake-ups); no EOI.
//! - Any other vector is counted as spurious and ignored.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use test_guest::abi::ShutdownReason;

use crate::{arch, println, xen};

/// The vector the hypervisor is asked to deliver upcalls on (HVM_PARAM_CALLBACK_IRQ).
pub const CALLBACK_VECTOR: u8 = 0xf3;
const GDT_CODE64: u16 = 0x08;
/// Present, DPL 0, 64-bit interrupt gate.
const INTERRUPT_GATE: u64 = 0x8e;
/// Bytes between two stubs in `guest_trap_stubs`.
const STUB_STRIDE: u64 = 16;
/// Vector of #GP.
const VECTOR_GP: u64 = 13;
/// The encoding of `rdmsr`.
const RDMSR_OPCODE: [u8; 2] = [0x0f, 0x32];

/// Registers saved by the stubs, in memory order (lowest address first).
#[repr(C)]
#[derive(Debug)]
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

// Vectors for which the CPU pushes an error code: 8, 10-14, 17, 21, 29, 30; the others
// push a 0 so every frame looks the same. The CPU aligns RSP to 16 before pushing its
// 5-word frame; error code + vector + 15 registers keep `call` 16-byte aligned.
core::arch::global_asm!(
    r#"
.section .text
.balign 16
.global guest_trap_stubs
guest_trap_stubs:
.set guest_trap_vector, 0
.rept 256
    .balign 16
    .if (guest_trap_vector == 8) || ((guest_trap_vector >= 10) && (guest_trap_vector <= 14)) || (guest_trap_vector == 17) || (guest_trap_vector == 21) || (guest_trap_vector == 29) || (guest_trap_vector == 30)
    .else
        push 0
    .endif
    push guest_trap_vector
    jmp guest_trap_common
    .set guest_trap_vector, guest_trap_vector + 1
.endr

guest_trap_common:
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

extern "C" {
    static guest_trap_stubs: u8;
}

/// The IDT: 256 16-byte gates.
#[repr(C, align(16))]
struct Idt([u64; 512]);

static mut IDT: Idt = Idt([0; 512]);

/// The operand of `lidt`.
#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

static UPCALLS: AtomicU64 = AtomicU64::new(0);
static SPURIOUS: AtomicU64 = AtomicU64::new(0);
static EXPECT_GP: AtomicBool = AtomicBool::new(false);
static GP_RECOVERED: AtomicU64 = AtomicU64::new(0);

fn load_idt(base: u64, limit: u16) {
    let pointer = IdtPointer { limit, base };
    // SAFETY: `pointer` describes either the fully initialised static IDT or (for the
    // triple-fault test, on purpose) an empty one; LIDT only reads the 10-byte operand.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}

/// Fills and loads the IDT. Called once, first thing, with interrupts disabled.
pub fn init() {
    // Only the address of `guest_trap_stubs` (defined by the global_asm above) is used.
    let stubs = core::ptr::addr_of!(guest_trap_stubs) as u64;
    let idt = core::ptr::addr_of_mut!(IDT);
    for vector in 0..256u64 {
        let handler = stubs + vector * STUB_STRIDE;
        let low = (handler & 0xffff)
            | (u64::from(GDT_CODE64) << 16)
            | (INTERRUPT_GATE << 40)
            | ((handler >> 16) & 0xffff) << 48;
        let high = handler >> 32;
        // SAFETY: init runs once on the only CPU before interrupts are enabled, so nothing
        // else accesses IDT; the index is below 512.
        unsafe {
            (*idt).0[(vector * 2) as usize] = low;
            (*idt).0[(vector * 2 + 1) as usize] = high;
        }
    }
    load_idt(idt as u64, (core::mem::size_of::<Idt>() - 1) as u16);
}

/// Loads an IDT with limit 0: the next exception cannot be delivered (triple fault).
pub fn load_empty_idt() {
    load_idt(0, 0);
}

/// Upcalls received on [`CALLBACK_VECTOR`] so far.
pub fn upcalls() -> u64 {
    UPCALLS.load(Ordering::SeqCst)
}

/// Interrupts on vectors nobody asked for.
pub fn spurious() -> u64 {
    SPURIOUS.load(Ordering::SeqCst)
}

/// Reads MSR `msr`; `None` if the read raised #GP (which the trap handler skips).
pub fn rdmsr_checked(msr: u32) -> Option<u64> {
    let before = GP_RECOVERED.load(Ordering::SeqCst);
    EXPECT_GP.store(true, Ordering::SeqCst);
    // SAFETY: a #GP from this rdmsr is recovered by `dispatch` (EXPECT_GP is armed).
    let value = unsafe { arch::rdmsr(msr) };
    EXPECT_GP.store(false, Ordering::SeqCst);
    if GP_RECOVERED.load(Ordering::SeqCst) == before {
        Some(value)
    } else {
        None
    }
}

/// The two bytes at `rip` are an `rdmsr`.
fn at_rdmsr(rip: u64) -> bool {
    // SAFETY: RIP of a #GP points at the faulting instruction in our own mapped text; two
    // bytes of it are readable.
    let bytes = unsafe { core::ptr::read_unaligned(rip as *const [u8; 2]) };
    bytes == RDMSR_OPCODE
}

fn exception_name(vector: u64) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF",
        "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "reserved", "reserved", "reserved", "reserved",
        "reserved", "reserved", "#HV", "#VC", "#SX", "reserved",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

extern "C" fn dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector;
    if vector == u64::from(CALLBACK_VECTOR) {
        crate::events::upcall();
        UPCALLS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if vector >= 32 {
        SPURIOUS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    if vector == VECTOR_GP && EXPECT_GP.swap(false, Ordering::SeqCst) && at_rdmsr(frame.rip) {
        GP_RECOVERED.fetch_add(1, Ordering::SeqCst);
        frame.rip += RDMSR_OPCODE.len() as u64;
        return;
    }
    println!(
        "GUEST exception vector={vector} name={} error={:#x} rip={:#018x} cr2={:#018x} rsp={:#018x} rflags={:#x}",
        exception_name(vector),
        frame.error_code,
        frame.rip,
        arch::cr2(),
        frame.rsp,
        frame.rflags
    );
    println!(
        "GUEST registers rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi, frame.rbp
    );
    xen::shutdown(ShutdownReason::Crash)
}

//! The interrupt descriptor table, shared by every CPU: all 256 vectors enter through a
//! uniform assembly stub that saves the general registers into a [`TrapFrame`] and calls
//! [`traps::dispatch`](super::traps::dispatch).

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use super::traps::Vector;
use spin::Once;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

/// Each vector's stub is this many bytes apart in `trap_stubs`.
const STUB_STRIDE: u64 = 16;

/// A 64-bit interrupt gate (Intel SDM Vol. 3 §6.14.1).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

const _: () = assert!(core::mem::size_of::<Gate>() == 16);

/// Present, DPL 0, 64-bit interrupt gate (IF cleared on entry).
const INTERRUPT_GATE: u8 = 0x8e;

impl Gate {
    fn interrupt(handler: u64, code_selector: u16, ist: u8) -> Self {
        Gate {
            offset_low: handler as u16,
            selector: code_selector,
            ist,
            type_attributes: INTERRUPT_GATE,
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

extern "C" {
    static trap_stubs: u8;
}

fn build(code_selector: u16) -> Idt {
    // trap_stubs is defined in traps.rs' global_asm as 256 stubs of STUB_STRIDE bytes.
    let stubs = core::ptr::addr_of!(trap_stubs) as u64;
    let mut idt = Idt([Gate::default(); 256]);
    for (vector, gate) in idt.0.iter_mut().enumerate() {
        let ist = match Vector::from(vector as u8) {
            Vector::DoubleFault => IST_DOUBLE_FAULT,
            Vector::Nmi => IST_NMI,
            Vector::MachineCheck => IST_MACHINE_CHECK,
            _ => 0,
        };
        *gate = Gate::interrupt(stubs + vector as u64 * STUB_STRIDE, code_selector, ist);
    }
    idt
}

/// Loads the IDT on this CPU (building it on first use).
pub fn load(code_selector: u16) {
    let idt = IDT.call_once(|| build(code_selector));
    let pointer =
        DescriptorTablePointer { limit: (core::mem::size_of::<Idt>() - 1) as u16, base: VirtAddr::from_ptr(idt) };
    // SAFETY: the IDT is a 'static that lives forever and every gate points at a stub.
    unsafe { lidt(&pointer) };
}

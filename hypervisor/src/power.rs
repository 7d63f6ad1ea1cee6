//! How the machine stops: with success or failure, never silently.
//!
//! Under QEMU the `isa-debug-exit` device (port 0xf4) turns a written value `v` into the
//! emulator's exit status `(v << 1) | 1`, which is how qemu-tests judge a run. On hardware
//! (or an emulator without that device) the CPUs halt with interrupts off after the
//! report has been printed, which is what an operator can read on the serial console.

use crate::arch::x86_64::{cpu, smp};
use x86_64::instructions::port::Port;

const DEBUG_EXIT_PORT: u16 = 0xf4;
/// QEMU exit status 33.
const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// QEMU exit status 35.
const DEBUG_EXIT_FAILURE: u32 = 0x11;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub enum Outcome {
    Success,
    Failure,
}

/// Ends the run: stops the other CPUs, tells the emulator if there is one, then halts.
pub fn stop(outcome: Outcome) -> ! {
    x86_64::instructions::interrupts::disable();
    smp::stop_other_cpus();
    if cpu::running_under_qemu() {
        let code = match outcome {
            Outcome::Success => DEBUG_EXIT_SUCCESS,
            Outcome::Failure => DEBUG_EXIT_FAILURE,
        };
        // SAFETY: port 0xf4 is QEMU's isa-debug-exit when configured; on a QEMU without
        // that device the write goes nowhere. Either way it touches no memory.
        unsafe { Port::new(DEBUG_EXIT_PORT).write(code) };
    }
    halt_forever()
}

/// Parks this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

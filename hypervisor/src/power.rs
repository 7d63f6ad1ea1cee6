//! How the machine stops: with success or failure, never silently.
//!
//! The last line on the console is always `FERROVISOR STOP outcome=success|failure`, so a
//! harness that cannot read an exit status (Bochs) judges the run by it. Then:
//! - under QEMU, the `isa-debug-exit` device (port 0xf4) turns a written value `v` into the
//!   emulator's exit status `(v << 1) | 1`, which is how qemu-tests judge a run;
//! - with `bochs-exit` on the command line (the Bochs harness passes it), the string
//!   `Shutdown` written to port 0x8900 makes Bochs quit; Bochs has no CPUID signature, so
//!   only the command line says it is there (on real hardware that port may be a device);
//! - otherwise (hardware) the CPUs halt with interrupts off after the report has been
//!   printed, which is what an operator can read on the serial console.

use crate::arch::x86_64::{cpu, smp};
use crate::cmdline;
use core::fmt::Write;
use x86_64::instructions::port::Port;

const DEBUG_EXIT_PORT: u16 = 0xf4;
/// QEMU exit status 33.
const DEBUG_EXIT_SUCCESS: u32 = 0x10;
/// QEMU exit status 35.
const DEBUG_EXIT_FAILURE: u32 = 0x11;
/// Bochs quits when this port receives the bytes of [`BOCHS_SHUTDOWN`].
const BOCHS_SHUTDOWN_PORT: u16 = 0x8900;
const BOCHS_SHUTDOWN: &[u8] = b"Shutdown";
/// The command-line flag saying the machine is Bochs.
pub const BOCHS_EXIT_OPTION: &str = "bochs-exit";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// Ends the run: stops the other CPUs, prints the outcome, tells the emulator if there is
/// one, then halts.
pub fn stop(outcome: Outcome) -> ! {
    x86_64::instructions::interrupts::disable();
    smp::stop_other_cpus();
    // The other CPUs are stopped, possibly holding the console lock: write without it.
    let _ = writeln!(crate::console::emergency_writer(), "FERROVISOR STOP outcome={}", outcome.name());
    crate::console::wait_until_sent();
    if cpu::running_under_qemu() {
        let code = match outcome {
            Outcome::Success => DEBUG_EXIT_SUCCESS,
            Outcome::Failure => DEBUG_EXIT_FAILURE,
        };
        // SAFETY: port 0xf4 is QEMU's isa-debug-exit when configured; on a QEMU without
        // that device the write goes nowhere. Either way it touches no memory.
        unsafe { Port::new(DEBUG_EXIT_PORT).write(code) };
    } else if cmdline::get(BOCHS_EXIT_OPTION).is_some() {
        let mut port = Port::<u8>::new(BOCHS_SHUTDOWN_PORT);
        for &byte in BOCHS_SHUTDOWN {
            // SAFETY: the operator said this is Bochs, whose port 0x8900 is its shutdown
            // port; the writes touch no memory.
            unsafe { port.write(byte) };
        }
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

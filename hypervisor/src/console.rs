//! The hypervisor's console: COM1 (16550 UART), shared by every CPU.
//!
//! Normal output goes through one lock so lines from different CPUs do not interleave.
//! The fatal path (exceptions, panics) must print even if the CPU died holding that lock,
//! so it gets [`emergency_writer`], which writes to the port without taking it.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

static SERIAL: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Programs COM1 (115200 8N1). Called once, first thing on the boot processor.
pub fn init() {
    // SAFETY: COM1 is the legacy serial port at 0x3f8; nothing else in the hypervisor
    // drives it, and it is only ever reached through SERIAL or the emergency writer.
    let mut port = unsafe { SerialPort::new(COM1) };
    port.init();
    *SERIAL.lock() = Some(port);
}

/// Writes `args` to the console as one unit, translating `\n` to `\r\n` for terminals.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(port) = SERIAL.lock().as_mut() {
            let _ = CrLf(port).write_fmt(args);
        }
    });
}

/// A writer for the fatal path that ignores the console lock.
pub fn emergency_writer() -> impl Write {
    // SAFETY: the fatal path stops every other CPU before printing, so at most the
    // interrupted holder of SERIAL could race with us, and it will never run again.
    CrLf(unsafe { SerialPort::new(COM1) })
}

/// Waits until COM1 has sent everything written so far (or 50 ms have passed), so that the
/// last lines are not lost when the machine is switched off right after.
pub fn wait_until_sent() {
    const LINE_STATUS: u16 = COM1 + 5;
    const TRANSMITTER_EMPTY: u8 = 0x40;
    let mut status = x86_64::instructions::port::Port::<u8>::new(LINE_STATUS);
    let deadline = crate::arch::x86_64::time::deadline_after_us(50_000);
    // SAFETY: reading COM1's line status register has no side effects.
    while unsafe { status.read() } & TRANSMITTER_EMPTY == 0 && !crate::arch::x86_64::time::passed(deadline) {
        core::hint::spin_loop();
    }
}

struct CrLf<P>(P);

impl<P: Write> Write for CrLf<P> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, line) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.write_str("\r\n")?;
            }
            self.0.write_str(line)?;
        }
        Ok(())
    }
}

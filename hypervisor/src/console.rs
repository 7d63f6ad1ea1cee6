//! The hypervisor's console: COM1 (16550 UART), shared by every CPU.
//!
//! Normal output goes through one lock so lines from different CPUs do not interleave.
//! The fatal path (exceptions, panics) must print even if the CPU died holding that lock,
//! so it gets [`emergency_writer`], which writes to the port without taking it.
//!
//! Input typed on COM1 is for the control domain, as on Xen: CPU 0 collects it
//! ([`poll_input`]) and domain 0 reads it with `CONSOLEIO_read` after `VIRQ_CONSOLE`.

use alloc::collections::VecDeque;
use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const LINE_STATUS: u16 = COM1 + 5;
/// LSR: a received byte waits in the receive buffer.
const DATA_READY: u8 = 0x01;

static SERIAL: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Bytes typed on the console, oldest first, until the control domain reads them.
static INPUT: Mutex<VecDeque<u8>> = Mutex::new(VecDeque::new());
/// Input kept for the control domain; older bytes are dropped beyond this.
const INPUT_MAX: usize = 4096;

/// Moves the bytes COM1 has received into the input buffer; true if there were any.
pub fn poll_input() -> bool {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let guard = SERIAL.lock();
        if guard.is_none() {
            return false;
        }
        let mut status = Port::<u8>::new(LINE_STATUS);
        let mut data = Port::<u8>::new(COM1);
        let mut input = INPUT.lock();
        let mut any = false;
        // SAFETY: COM1's registers, under the console lock; reading LSR has no side effect
        // and reading the data register takes the byte LSR said was there.
        while unsafe { status.read() } & DATA_READY != 0 {
            // SAFETY: as above.
            let byte = unsafe { data.read() };
            if input.len() == INPUT_MAX {
                input.pop_front();
            }
            input.push_back(byte);
            any = true;
        }
        any
    })
}

/// Takes up to `out.len()` bytes of console input; returns how many.
pub fn read_input(out: &mut [u8]) -> usize {
    let mut input = INPUT.lock();
    let n = out.len().min(input.len());
    for (slot, byte) in out.iter_mut().zip(input.drain(..n)) {
        *slot = byte;
    }
    n
}

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

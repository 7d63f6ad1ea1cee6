//! Guest output: port 0xE9, COM1 or the `console_io` hypercall, one line at a time.
//!
//! Each line is formatted into a stack buffer first and then written in one go, so a line
//! reaches the hypervisor whole (it prefixes every line with `(d<domid>) ` in the host log).
//! Lines end with `\n` only.

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

use test_guest::cmdline::ConsoleKind;
use test_guest::linebuf::LineBuf;

use crate::{arch, xen};

/// The debug console port.
pub const PORT_E9: u16 = 0xe9;
/// COM1's transmit holding register.
pub const COM1: u16 = 0x3f8;
/// COM1's line status register.
const COM1_LSR: u16 = COM1 + 5;
/// LSR: the transmit holding register is empty.
const LSR_THR_EMPTY: u8 = 0x20;
/// Longest line; longer ones are cut and end with `...`.
pub const LINE_MAX: usize = 256;

/// Where output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The console chosen with `console=` (port 0xE9 by default).
    Default,
    /// Port 0xE9.
    E9,
    /// COM1.
    Com1,
    /// The `console_io` hypercall.
    ConsoleIo,
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Chooses the console of [`Sink::Default`].
pub fn set_default(kind: ConsoleKind) {
    DEFAULT.store(kind as u8, Ordering::Relaxed);
}

fn default_sink() -> Sink {
    match DEFAULT.load(Ordering::Relaxed) {
        x if x == ConsoleKind::Com1 as u8 => Sink::Com1,
        x if x == ConsoleKind::Xen as u8 && xen::present() => Sink::ConsoleIo,
        _ => Sink::E9,
    }
}

/// Writes `bytes` to `sink` as they are.
pub fn write_bytes(sink: Sink, bytes: &[u8]) {
    match if sink == Sink::Default { default_sink() } else { sink } {
        Sink::Default | Sink::E9 => bytes.iter().for_each(|&b| arch::outb(PORT_E9, b)),
        Sink::Com1 => {
            for &b in bytes {
                // Bounded wait: a missing UART must not hang the guest.
                for _ in 0..100_000 {
                    if arch::inb(COM1_LSR) & LSR_THR_EMPTY != 0 {
                        break;
                    }
                    core::hint::spin_loop();
                }
                arch::outb(COM1, b);
            }
        }
        Sink::ConsoleIo => {
            xen::console_write(bytes);
        }
    }
}

/// Formats `args` plus `\n` and writes the line to `sink`.
pub fn print_line(sink: Sink, args: fmt::Arguments<'_>) {
    let mut line = LineBuf::<LINE_MAX>::new();
    let _ = fmt::write(&mut line, args);
    let bytes = line.as_bytes();
    let mut out = [0u8; LINE_MAX + 1];
    out[..bytes.len()].copy_from_slice(bytes);
    out[bytes.len()] = b'\n';
    write_bytes(sink, &out[..=bytes.len()]);
}

/// Prints one line on the default console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line($crate::console::Sink::Default, format_args!($($arg)*))
    };
}

/// Prints one line on a given [`Sink`].
#[macro_export]
macro_rules! println_to {
    ($sink:expr, $($arg:tt)*) => {
        $crate::console::print_line($sink, format_args!($($arg)*))
    };
}

//! The agent's log: lines on the hypervisor console, which dom0 owns. The agent's own
//! lines start with `agent: `; other domains' console output is relayed as `(dN) text`.

use alloc::string::String;
use core::fmt::Write;

/// Writes one line (a newline is added).
pub fn line(args: core::fmt::Arguments<'_>) {
    let mut text = String::new();
    let _ = text.write_fmt(args);
    text.push('\n');
    crate::hypercall::console_write(text.as_bytes());
}

/// `info!("...")`: an `agent: ` line.
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line(format_args!("agent: {}", format_args!($($arg)*))) };
}
pub(crate) use info;

/// A line formatted without allocating (for the panic handler); longer text is cut.
pub struct FixedLine {
    buf: [u8; 512],
    len: usize,
}

impl FixedLine {
    pub fn new() -> FixedLine {
        FixedLine { buf: [0; 512], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Write for FixedLine {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

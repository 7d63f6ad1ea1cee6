//! A look inside a QEMU that has hung: its human monitor (HMP) on a Unix socket.
//!
//! A captured run ([`crate::qemu::Console::Captured`]) gets a monitor socket; when the run
//! times out or stalls, the harness asks it for every CPU's registers before killing QEMU,
//! so a hang in CI says where each CPU was spinning (hypervisor or guest, which RIP, IF)
//! instead of only that the serial log went quiet.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What HMP prints when it is ready for the next command.
const PROMPT: &str = "(qemu) ";

/// How long one monitor command may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The commands whose answers make the dump: registers of all CPUs, then which CPU is halted.
pub const DUMP_COMMANDS: [&str; 2] = ["info registers -a", "info cpus"];

/// A fresh socket path for one run. Unix socket paths are limited to 107 bytes, which a
/// test directory deep in a clone can exceed, so the socket lives in the temporary directory
/// under a name unique to this process and run.
pub fn socket_path() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ferrovisor-{}-{n}.hmp", std::process::id()))
}

/// Connects to the monitor at `socket` and returns the answers to [`DUMP_COMMANDS`], each
/// headed by its command.
pub fn dump_cpus(socket: &Path) -> Result<String, String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connecting to {}: {e}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| format!("monitor socket: {e}"))?;
    let mut pending = String::new();
    read_until_prompt(&mut s, &mut pending)?;
    let mut dump = String::new();
    for command in DUMP_COMMANDS {
        pending.clear();
        s.write_all(format!("{command}\n").as_bytes()).map_err(|e| format!("sending `{command}`: {e}"))?;
        let answer = read_until_prompt(&mut s, &mut pending)?;
        dump.push_str(&format!("## {command}\n{}\n", answer_text(&answer, command)));
    }
    Ok(dump)
}

/// Reads into `pending` until it ends with the prompt; returns what came before the prompt.
fn read_until_prompt(s: &mut UnixStream, pending: &mut String) -> Result<String, String> {
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = pending.rfind(PROMPT).filter(|&i| i + PROMPT.len() == pending.len()) {
            return Ok(pending[..end].to_owned());
        }
        if start.elapsed() > ANSWER_TIMEOUT {
            return Err(format!("no monitor prompt within {ANSWER_TIMEOUT:?}; got so far: {pending:?}"));
        }
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("the monitor closed the connection; got so far: {pending:?}")),
            Ok(n) => pending.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("reading the monitor: {e}")),
        }
    }
}

/// An answer as plain text: HMP echoes the command line with terminal escapes and ends lines
/// with CR LF; both go.
pub fn answer_text(raw: &str, command: &str) -> String {
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI sequences: ESC [ parameters final-byte.
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // The parameters end at the final byte, a letter.
                    let _ = chars.by_ref().find(char::is_ascii_alphabetic);
                }
            }
            '\r' => {}
            c => text.push(c),
        }
    }
    let mut lines: Vec<&str> = text.lines().collect();
    // The echo of the typed command (readline redraws it once per key) is the first line.
    if lines.first().is_some_and(|l| l.ends_with(command)) {
        lines.remove(0);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_text_drops_the_echo_and_escapes() {
        let raw = "i\x1b[K\x1b[D\x1b[Kin\x1b[Kinfo cpus\r\n* CPU #0: thread_id=1\r\n  CPU #1: thread_id=2 (halted)\r\n";
        assert_eq!(answer_text(raw, "info cpus"), "* CPU #0: thread_id=1\n  CPU #1: thread_id=2 (halted)");
    }

    #[test]
    fn answer_text_keeps_an_answer_without_echo() {
        assert_eq!(answer_text("RAX=0000000000000000\r\n", "info registers -a"), "RAX=0000000000000000");
    }

    #[test]
    fn socket_paths_are_short_and_distinct() {
        let (a, b) = (socket_path(), socket_path());
        assert_ne!(a, b);
        assert!(a.as_os_str().len() < 100, "{}", a.display());
    }
}

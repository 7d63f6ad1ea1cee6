//! The hypervisor command line: whitespace-separated `key=value` options (and bare flags).
//!
//! Options known today: `loglvl=error|warn|info|debug|trace`, `exit-when-idle`,
//! `bochs-exit` (see `power`) and, in self-test builds, `selftest=NAME`. Unknown options
//! are ignored (with a note in the log) so a command line written for a newer Ferrovisor
//! still boots.

use spin::Once;

static CMDLINE: Once<&'static str> = Once::new();

/// Records the command line; it must outlive the boot information it came from.
pub fn set(line: &'static str) {
    CMDLINE.call_once(|| line);
}

pub fn full() -> &'static str {
    CMDLINE.get().copied().unwrap_or("")
}

/// The value of the last `key=value` for `key`, or `Some("")` for a bare `key`.
pub fn get(key: &str) -> Option<&'static str> {
    options(full()).filter(|(k, _)| *k == key).last().map(|(_, v)| v)
}

fn options(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split_ascii_whitespace().map(|opt| opt.split_once('=').unwrap_or((opt, "")))
}

#[cfg(feature = "selftest")]
const KNOWN_OPTIONS: &[&str] = &["loglvl", "exit-when-idle", "bochs-exit", "dom0_mem", "selftest"];
#[cfg(not(feature = "selftest"))]
const KNOWN_OPTIONS: &[&str] = &["loglvl", "exit-when-idle", "bochs-exit", "dom0_mem"];

/// Parses a Xen size such as `512M`, `1G` or `65536` (no suffix: KiB, as Xen's
/// `parse_size_and_unit`) into bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, shift) = match text.as_bytes().last()? {
        b'T' | b't' => (&text[..text.len() - 1], 40),
        b'G' | b'g' => (&text[..text.len() - 1], 30),
        b'M' | b'm' => (&text[..text.len() - 1], 20),
        b'K' | b'k' => (&text[..text.len() - 1], 10),
        b'B' | b'b' => (&text[..text.len() - 1], 0),
        _ => (text, 10),
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Options on the line that this build does not understand.
pub fn unknown_options() -> impl Iterator<Item = &'static str> {
    options(full()).map(|(k, _)| k).filter(|k| !KNOWN_OPTIONS.contains(k))
}

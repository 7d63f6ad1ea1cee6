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
const KNOWN_OPTIONS: &[&str] = &["loglvl", "exit-when-idle", "bochs-exit", "selftest"];
#[cfg(not(feature = "selftest"))]
const KNOWN_OPTIONS: &[&str] = &["loglvl", "exit-when-idle", "bochs-exit"];

/// Options on the line that this build does not understand.
pub fn unknown_options() -> impl Iterator<Item = &'static str> {
    options(full()).map(|(k, _)| k).filter(|k| !KNOWN_OPTIONS.contains(k))
}

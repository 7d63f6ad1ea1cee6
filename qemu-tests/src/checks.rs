//! Checks shared by several tests, each judging a [`RunResult`] against the
//! self-test contract.

use std::path::{Path, PathBuf};

use crate::harness::RunResult;
use crate::selftest::{self, SelftestLine};
use crate::util::{fnv1a64, Rng};

/// One boot module a test made: its file, contents and command line.
#[derive(Debug, Clone)]
pub struct TestModule {
    /// Where it was written.
    pub file: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The command line it is given ("" for `-initrd`, which has none).
    pub cmdline: String,
}

impl TestModule {
    /// Writes `len` random bytes from `rng` to `dir/name`.
    pub fn random(dir: &Path, name: &str, len: usize, rng: &mut Rng, cmdline: &str) -> TestModule {
        let bytes = rng.bytes(len);
        let file = dir.join(name);
        std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        TestModule { file, bytes, cmdline: cmdline.to_owned() }
    }

    /// As an ISO module.
    pub fn iso_module(&self) -> crate::iso::Module {
        crate::iso::Module::new(self.file.clone(), self.cmdline.clone())
    }
}

/// `SELFTEST boot` exists, all `cpus` CPUs are online, in the MADT and have
/// ticking timers, and frames are both free and used. Returns the line.
#[track_caller]
pub fn boot_ready(r: &RunResult, cpus: u64) -> SelftestLine {
    let line = r.selftest("boot");
    for key in ["cpus_online", "cpus_in_madt", "timers_ticking"] {
        let v = r.field_u64(&line, key);
        r.check(v == cpus, format!("{key}={v}, expected {cpus} (the -smp value): {}", line.raw));
    }
    let free = r.field_u64(&line, "free_frames");
    let used = r.field_u64(&line, "used_frames");
    r.check(free > 0, format!("free_frames=0: {}", line.raw));
    r.check(used > 0, format!("used_frames=0: {}", line.raw));
    line
}

/// `SELFTEST cmdline="..."` equals `expected`.
#[track_caller]
pub fn cmdline_is(r: &RunResult, expected: &str) {
    let line = r.selftest("cmdline");
    let got = r.field_str(&line, "cmdline");
    r.check(got == expected, format!("hypervisor command line is {got:?}, expected {expected:?}"));
}

/// `fnv1a64=` is written as `0x` and 16 lowercase hex digits.
fn hash_well_formed(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == 16 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
}

/// One `SELFTEST module` line per module, in order, with the right index,
/// size, FNV-1a 64 and command line.
#[track_caller]
pub fn modules_match(r: &RunResult, modules: &[TestModule]) {
    let lines = r.selftest_all("module");
    r.check(
        lines.len() == modules.len(),
        format!("{} `SELFTEST module` lines, expected {}", lines.len(), modules.len()),
    );
    for (i, (line, m)) in lines.iter().zip(modules).enumerate() {
        let index = r.field_u64(line, "index");
        r.check(index == i as u64, format!("module line {i} has index={index}: {}", line.raw));
        let size = r.field_u64(line, "size");
        r.check(
            size == m.bytes.len() as u64,
            format!("module {i} ({}): size={size}, expected {}", m.file.display(), m.bytes.len()),
        );
        let hash_text = r.field_str(line, "fnv1a64");
        r.check(
            hash_well_formed(hash_text),
            format!("module {i}: fnv1a64={hash_text} is not 0x + 16 lowercase hex digits"),
        );
        let expected = fnv1a64(&m.bytes);
        let got = selftest::parse_u64(hash_text).unwrap_or_default();
        r.check(
            got == expected,
            format!("module {i} ({}): fnv1a64={hash_text}, expected {expected:#018x}", m.file.display()),
        );
        let cmdline = r.field_str(line, "cmdline");
        r.check(cmdline == m.cmdline, format!("module {i}: cmdline={cmdline:?}, expected {:?}", m.cmdline));
    }
}

#[cfg(test)]
mod tests {
    use super::hash_well_formed;

    #[test]
    fn hash_format() {
        assert!(hash_well_formed("0x0123456789abcdef"));
        assert!(!hash_well_formed("0x0123456789ABCDEF"));
        assert!(!hash_well_formed("0x123"));
        assert!(!hash_well_formed("0123456789abcdef"));
    }
}

//! Checks shared by several tests, each judging a [`RunResult`] against the
//! self-test contract.

use std::path::{Path, PathBuf};

use crate::domain_log::{DomainReport, DomainsDone};
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

/// The domain called `name` shut down by itself with `reason` (e.g. `poweroff`) and was
/// accounted some CPU time; returns its report.
#[track_caller]
pub fn domain_shut_down(r: &RunResult, name: &str, reason: &str) -> DomainReport {
    let d = r.domain_named(name);
    r.check(d.shut_down_with(reason), format!("domain {name}: expected state=shutdown reason={reason}: {}", d.raw));
    r.check(d.runtime_ns > 0, format!("domain {name} ran but runtime_ns=0: {}", d.raw));
    d
}

/// The domain called `name` was crashed; returns its report.
#[track_caller]
pub fn domain_crashed(r: &RunResult, name: &str) -> DomainReport {
    let d = r.domain_named(name);
    r.check(d.crashed(), format!("domain {name}: expected state=crashed: {}", d.raw));
    d
}

/// `DOMAINS done` counts `total` domains of which `crashed` crashed, and every frame the
/// domains took came back (`free_frames_before == free_frames_after`).
#[track_caller]
pub fn domains_done(r: &RunResult, total: u64, crashed: u64) -> DomainsDone {
    let done = r.domains_done();
    r.check(done.total == total, format!("total={}, expected {total}: {}", done.total, done.raw));
    r.check(done.crashed == crashed, format!("crashed={}, expected {crashed}: {}", done.crashed, done.raw));
    r.check(
        done.free_frames_before == done.free_frames_after,
        format!(
            "free frames {} before the first domain, {} after the last was destroyed ({} leaked): {}",
            done.free_frames_before,
            done.free_frames_after,
            done.free_frames_before as i128 - done.free_frames_after as i128,
            done.raw
        ),
    );
    done
}

/// Domain `domid` printed the test guest's first line, `hello from domain <domid> vcpu 0`.
#[track_caller]
pub fn guest_said_hello(r: &RunResult, domid: u32) {
    let expected = format!("hello from domain {domid} vcpu 0");
    r.console_line_where(domid, &format!("`{expected}`"), |l| l == expected);
}

/// Domain `domid` never printed a console line containing `needle`.
#[track_caller]
pub fn console_lacks(r: &RunResult, domid: u32, needle: &str) {
    if let Some(l) = r.console(domid).into_iter().find(|l| l.contains(needle)) {
        r.fail(format!("domain {domid} printed `{l}`, which it must not reach"));
    }
}

/// Whether a hypervisor log line says that SVM (or, with `npt`, nested paging) is
/// unavailable: it names SVM/NPT/nested paging and says it is not available.
pub fn says_virtualization_unavailable(line: &str, npt: bool) -> bool {
    let l = line.to_ascii_lowercase();
    let names_feature =
        if npt { l.contains("npt") || l.contains("nested paging") } else { l.contains("svm") || l.contains("amd-v") };
    let negative = ["not available", "unavailable", "no nested paging", "no svm", "not supported", "missing"]
        .iter()
        .any(|n| l.contains(n));
    names_feature && negative
}

#[cfg(test)]
mod domain_tests {
    use super::says_virtualization_unavailable;

    #[test]
    fn unavailable_messages() {
        assert!(says_virtualization_unavailable("[ 0.1] CPU0 WARN  virtualization unavailable: no SVM", false));
        assert!(says_virtualization_unavailable("SVM not available on this CPU", false));
        assert!(says_virtualization_unavailable("virtualization unavailable: SVM without nested paging (NPT)", true));
        assert!(says_virtualization_unavailable("no nested paging", true));
        assert!(!says_virtualization_unavailable("SVM available, NPT available", false));
        assert!(!says_virtualization_unavailable("virtualization unavailable: no SVM", true));
        assert!(!says_virtualization_unavailable("ready", false));
    }
}

/// Whether a `GUEST <kind> ...` line is one check: its first field is `<check>=pass|fail`
/// (and not the closing `result=`).
pub fn is_guest_check(line: &SelftestLine) -> bool {
    line.fields.first().is_some_and(|(k, v)| k != "result" && (v == "pass" || v == "fail"))
}

/// The checks of a test-guest behaviour: domain `domid` printed at least `min_checks`
/// `GUEST <kind> <check>=pass ...` lines, none with `=fail` and no check twice, and the
/// closing `GUEST <kind> result=pass`. Fails listing every check that did not pass; returns the
/// check lines.
#[track_caller]
pub fn guest_checks_pass(r: &RunResult, domid: u32, kind: &str, min_checks: usize) -> Vec<SelftestLine> {
    let lines = r.guest_lines(domid, kind);
    let checks: Vec<SelftestLine> = lines.iter().filter(|l| is_guest_check(l)).cloned().collect();
    let failed: Vec<&str> =
        checks.iter().filter(|l| l.fields.first().is_some_and(|(_, v)| v != "pass")).map(|l| l.raw.as_str()).collect();
    r.check(
        failed.is_empty(),
        format!(
            "domain {domid} failed {} of {} `GUEST {kind}` checks:\n  {}",
            failed.len(),
            checks.len(),
            failed.join("\n  ")
        ),
    );
    let mut names: Vec<&str> = checks.iter().filter_map(|l| l.fields.first()).map(|(k, _)| k.as_str()).collect();
    names.sort_unstable();
    let dups: Vec<&str> = names.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
    r.check(dups.is_empty(), format!("domain {domid} printed `GUEST {kind}` checks twice: {dups:?}"));
    r.check(
        checks.len() >= min_checks,
        format!("domain {domid} printed {} `GUEST {kind}` checks, expected at least {min_checks}", checks.len()),
    );
    let result = lines.iter().find(|l| l.fields.first().is_some_and(|(k, _)| k == "result"));
    match result {
        Some(l) => r.check(l.get("result") == Some("pass"), format!("domain {domid}: {}", l.raw)),
        None => r.fail(format!("domain {domid} printed no `GUEST {kind} result=` line")),
    }
    checks
}

/// The `GUEST <kind> <check>=...` line of domain `domid` for `check`; fails if missing.
#[track_caller]
pub fn guest_check(r: &RunResult, domid: u32, kind: &str, check: &str) -> SelftestLine {
    r.guest_lines(domid, kind)
        .into_iter()
        .find(|l| l.fields.first().is_some_and(|(k, _)| k == check))
        .unwrap_or_else(|| r.fail(format!("domain {domid} printed no `GUEST {kind} {check}=...` line")))
}

#[cfg(test)]
mod guest_check_tests {
    use super::is_guest_check;
    use crate::selftest::SelftestLine;

    #[test]
    fn check_lines() {
        let parse = |s| SelftestLine::parse_marked(s, "GUEST").unwrap();
        assert!(is_guest_check(&parse("GUEST errors send_port0=pass rc=-22(EINVAL) expected=-22(EINVAL)")));
        assert!(is_guest_check(&parse("GUEST mapper map_rw=fail rc=0 status=-8")));
        assert!(!is_guest_check(&parse("GUEST errors result=pass checks=3 failed=0")));
        assert!(!is_guest_check(&parse("GUEST pingpong round_trips=100 cycles_per_round_trip=5")));
        assert!(!is_guest_check(&parse("GUEST granter grants rw=8 ro=9")));
    }
}

//! Booting one configuration under QEMU with a timeout and judging it.
//!
//! Each run gets its own directory `<test dir>/<name>/` (emptied first; see
//! [`crate::test_root`]) holding `serial.log` (the guest's serial output),
//! `qemu-stderr.log`, `command.txt` (the QEMU command line) and any files the
//! test made (modules, ISO, UEFI variables).
//!
//! A [`RunResult`] that is dropped while the test is panicking (any failed
//! assertion, ours or the test's own `assert!`) prints the outcome, the QEMU
//! command line and the last [`TAIL_LINES`] lines of the serial log.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::domain::{self, DomainSpec};
use crate::domain_log::{self, DomainReport, DomainsDone};
use crate::iso::{self, Module};
use crate::monitor;
use crate::qemu::{self, Accel, Boot, Console, Firmware, QemuConfig};
use crate::selftest::{self, SelftestLine};
use crate::util::tail_lines;

/// How many serial log lines a failure report shows.
pub const TAIL_LINES: usize = 60;

/// A fresh, empty directory for the run or test called `name`.
pub fn fresh_dir(name: &str) -> PathBuf {
    assert!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)),
        "test name {name:?}: use letters, digits, '-' and '_'"
    );
    let dir = crate::test_root().join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
    }
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited with this status.
    Exited(i32),
    /// QEMU was killed by a signal (not by us).
    Signaled,
    /// The timeout passed; QEMU was killed.
    TimedOut,
    /// The serial log did not grow for the stall timeout ([`Vm::stall_timeout_secs`]); QEMU
    /// was killed.
    Stalled,
    /// Bochs quit with this status (always 1, whatever happened): the run is judged by the
    /// hypervisor's `FERROVISOR STOP outcome=` line ([`crate::bochs`]).
    BochsExited(i32),
}

/// One QEMU run to make: the machine plus a name and a timeout.
#[derive(Debug, Clone)]
pub struct Vm {
    name: String,
    dir: PathBuf,
    config: QemuConfig,
    timeout: Duration,
    stall: Option<Duration>,
    /// Text typed on the serial console once the log shows a trigger: (trigger, text).
    serial_input: Option<(String, String)>,
}

impl Vm {
    /// Boots `image` by PVH (`-kernel`) with `cmdline`; 1 CPU, 512M, the
    /// accelerator from `FERROVISOR_ACCEL`, timeout 60 s (scaled).
    pub fn kernel(name: &str, image: &Path, cmdline: &str) -> Vm {
        Vm::with_dir(
            name,
            fresh_dir(name),
            Boot::Kernel { image: image.to_path_buf(), cmdline: cmdline.to_owned(), initrd: None },
        )
    }

    /// Builds a GRUB ISO of `image` with `cmdline` and `modules` in the test
    /// directory and boots it with `uefi` or SeaBIOS.
    pub fn iso(name: &str, image: &Path, cmdline: &str, modules: &[Module], uefi: bool) -> Vm {
        let dir = fresh_dir(name);
        Vm::iso_in(name, dir, image, cmdline, modules, uefi)
    }

    /// Like [`Vm::iso`] with a directory that [`fresh_dir`] already made
    /// (because the test wrote its module files into it first).
    pub fn iso_in(name: &str, dir: PathBuf, image: &Path, cmdline: &str, modules: &[Module], uefi: bool) -> Vm {
        let iso_path = iso::build_iso(image, cmdline, modules, &dir.join("ferrovisor.iso"))
            .unwrap_or_else(|e| panic!("[{name}] building the ISO: {e}"));
        let firmware =
            if uefi { Firmware::uefi_in(&dir).unwrap_or_else(|e| panic!("[{name}] {e}")) } else { Firmware::Bios };
        Vm::with_dir(name, dir, Boot::Cdrom { iso: iso_path, firmware })
    }

    /// Boots `image` from a GRUB ISO (SeaBIOS) with hypervisor command line `cmdline` and
    /// one boot-time domain per entry of `domains` (multiboot2 modules, see
    /// [`crate::domain`]).
    pub fn domains(name: &str, image: &Path, cmdline: &str, domains: &[DomainSpec]) -> Vm {
        let dir = fresh_dir(name);
        Vm::domains_in(name, dir, image, cmdline, domains)
    }

    /// Like [`Vm::domains`] with a directory that [`fresh_dir`] already made.
    pub fn domains_in(name: &str, dir: PathBuf, image: &Path, cmdline: &str, domains: &[DomainSpec]) -> Vm {
        let modules = domain::run_modules(name, &dir, domains, domain::Builder::Hypervisor);
        Vm::iso_in(name, dir, image, cmdline, &modules, false)
    }

    /// Like [`Vm::domains`], but the dom0 agent boots first (domain 0) and builds the
    /// domains; it ends the run once they have all ended.
    pub fn agent_domains(name: &str, image: &Path, cmdline: &str, domains: &[DomainSpec]) -> Vm {
        let dir = fresh_dir(name);
        Vm::agent_domains_in(name, dir, image, cmdline, domains)
    }

    /// Like [`Vm::agent_domains`] with a directory that [`fresh_dir`] already made.
    pub fn agent_domains_in(name: &str, dir: PathBuf, image: &Path, cmdline: &str, domains: &[DomainSpec]) -> Vm {
        let modules = domain::run_modules(name, &dir, domains, domain::Builder::Agent);
        Vm::iso_in(name, dir, image, cmdline, &modules, false)
    }

    /// A run of `boot` in `dir`, which [`fresh_dir`] made.
    pub fn with_dir(name: &str, dir: PathBuf, boot: Boot) -> Vm {
        let mut config = QemuConfig::new(boot);
        config.smp = 1;
        config.accel = crate::accel();
        config.console = Console::Captured;
        Vm { name: name.to_owned(), dir, config, timeout: Duration::from_secs(60), stall: None, serial_input: None }
    }

    /// Types `text` on the serial console (QEMU's stdin) as soon as the serial log contains
    /// `trigger`: like a user answering a prompt, and nothing earlier (firmware and boot
    /// loader would read keys typed before they are done).
    pub fn serial_input_after(mut self, trigger: &str, text: &str) -> Vm {
        self.serial_input = Some((trigger.to_owned(), text.to_owned()));
        self
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of CPUs.
    pub fn smp(mut self, n: u32) -> Vm {
        self.config.smp = n;
        self
    }

    /// CPUs enough for guests to get `n` of them: `n`, and one more under QEMU's TCG when
    /// `n > 1`, where the hypervisor keeps guests off CPU 0 (a QEMU erratum: README, "QEMU
    /// errata the hypervisor works around"). One CPU stays one: CPU 0 then runs guests.
    pub fn guest_cpus(self, n: u32) -> Vm {
        let cpu0_kept_out = self.config.accel == Accel::Tcg && n > 1;
        self.smp(if cpu0_kept_out { n + 1 } else { n })
    }

    /// Memory size (`512M`, `5G`).
    pub fn memory(mut self, size: &str) -> Vm {
        self.config.memory = size.to_owned();
        self
    }

    /// CPU model and features (`-cpu`), replacing the accelerator's default (`max`/`host`).
    pub fn cpu(mut self, model: &str) -> Vm {
        self.config.cpu = Some(model.to_owned());
        self
    }

    /// One boot module via `-initrd` (PVH boot only).
    pub fn initrd(mut self, file: &Path) -> Vm {
        match &mut self.config.boot {
            Boot::Kernel { initrd, .. } => *initrd = Some(file.to_path_buf()),
            Boot::Cdrom { .. } => panic!("[{}] -initrd needs a PVH (-kernel) boot", self.name),
        }
        self
    }

    /// Deterministic instruction counting ([`QemuConfig::icount`]: single-threaded TCG with
    /// `-icount`), whatever `FERROVISOR_ACCEL` says.
    pub fn icount(mut self) -> Vm {
        self.config.accel = Accel::Tcg;
        self.config.icount = true;
        self
    }

    /// Round-robin TCG ([`QemuConfig::round_robin`]: one host thread for all CPUs), whatever
    /// `FERROVISOR_ACCEL` says.
    pub fn round_robin(mut self) -> Vm {
        self.config.accel = Accel::Tcg;
        self.config.round_robin = true;
        self
    }

    /// The timeout in seconds before `FERROVISOR_TIMEOUT_SCALE` is applied.
    pub fn timeout_secs(mut self, secs: u64) -> Vm {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// Also end the run (as [`Outcome::Stalled`]) once the serial log has not grown for
    /// `secs` seconds (scaled like the timeout): a hung guest fails fast under a long timeout.
    pub fn stall_timeout_secs(mut self, secs: u64) -> Vm {
        self.stall = Some(Duration::from_secs(secs));
        self
    }

    /// Extra QEMU arguments.
    pub fn qemu_args<I: IntoIterator<Item = S>, S: Into<std::ffi::OsString>>(mut self, args: I) -> Vm {
        self.config.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The machine as configured.
    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// Boots, waits for QEMU to exit or the timeout, and returns what happened. A run that
    /// times out or stalls has its CPUs' state read through the monitor before QEMU is killed
    /// ([`RunResult::cpu_state`], also written to `cpu-state.txt`).
    pub fn run(mut self) -> RunResult {
        let monitor = (self.config.console == Console::Captured).then(monitor::socket_path);
        self.config.monitor = monitor.clone();
        let timeout = self.timeout.mul_f64(crate::timeout_scale());
        let stall = self.stall.map(|s| s.mul_f64(crate::timeout_scale()));
        let serial_path = self.dir.join("serial.log");
        let stderr_path = self.dir.join("qemu-stderr.log");
        let command_line = self.config.command_line();
        fs::write(self.dir.join("command.txt"), format!("{command_line}\n"))
            .unwrap_or_else(|e| panic!("[{}] writing command.txt: {e}", self.name));
        let serial = File::create(&serial_path)
            .unwrap_or_else(|e| panic!("[{}] creating {}: {e}", self.name, serial_path.display()));
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("[{}] creating {}: {e}", self.name, stderr_path.display()));

        eprintln!("[{}] {command_line}", self.name);
        let start = Instant::now();
        let stdin = if self.serial_input.is_some() { Stdio::piped() } else { Stdio::null() };
        let child = self.config.command().stdin(stdin).stdout(serial).stderr(stderr).spawn().unwrap_or_else(|e| {
            panic!(
                "[{}] cannot start {:?}: {e} (Debian package `qemu-system-x86`; `cargo xtask test` installs it)",
                self.name, self.config.qemu
            )
        });
        let mut guard = KillOnDrop(child);
        let mut typing = self.serial_input.clone();
        // Kept open until QEMU ends: it would take the end of input as a hang-up.
        let mut stdin = guard.0.stdin.take();
        let (mut serial_len, mut grew_at) = (0u64, Instant::now());
        let outcome = loop {
            match guard.0.try_wait() {
                Ok(Some(status)) => break status.code().map_or(Outcome::Signaled, Outcome::Exited),
                Ok(None) if start.elapsed() >= timeout => break Outcome::TimedOut,
                Ok(None) if stall.is_some_and(|s| grew_at.elapsed() >= s) => break Outcome::Stalled,
                Ok(None) => {
                    thread::sleep(Duration::from_millis(25));
                    if let Some((trigger, text)) = &typing {
                        let log = fs::read(&serial_path).unwrap_or_default();
                        if log.windows(trigger.len().max(1)).any(|w| w == trigger.as_bytes()) {
                            use std::io::Write;
                            if let Some(pipe) = stdin.as_mut() {
                                pipe.write_all(text.as_bytes())
                                    .unwrap_or_else(|e| panic!("[{}] typing on the console: {e}", self.name));
                            }
                            typing = None;
                        }
                    }
                    if stall.is_some() {
                        let len = fs::metadata(&serial_path).map_or(0, |m| m.len());
                        if len != serial_len {
                            (serial_len, grew_at) = (len, Instant::now());
                        }
                    }
                }
                Err(e) => panic!("[{}] waiting for QEMU: {e}", self.name),
            }
        };
        let elapsed = start.elapsed();
        let cpu_state = matches!(outcome, Outcome::TimedOut | Outcome::Stalled).then(|| {
            let state = match &monitor {
                Some(socket) => {
                    monitor::dump_cpus(socket).unwrap_or_else(|e| format!("(the monitor did not answer: {e})"))
                }
                None => "(no monitor on an interactive console)".to_owned(),
            };
            let path = self.dir.join("cpu-state.txt");
            fs::write(&path, &state).unwrap_or_else(|e| panic!("[{}] writing {}: {e}", self.name, path.display()));
            state
        });
        let _ = guard.0.kill();
        let _ = guard.0.wait();
        if let Some(socket) = &monitor {
            let _ = fs::remove_file(socket);
        }
        let serial = String::from_utf8_lossy(&fs::read(&serial_path).unwrap_or_default()).into_owned();
        let qemu_stderr = String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).into_owned();
        let result = RunResult {
            name: self.name,
            dir: self.dir,
            outcome,
            serial,
            qemu_stderr,
            command_line,
            elapsed,
            timeout,
            stall,
            cpu_state,
        };
        result.print_finished(&serial_path);
        result
    }
}

/// Kills the emulator (QEMU, or `timeout` and so Bochs) if the harness itself panics while
/// it runs.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a run produced. Dropped during a panic, it prints its context.
#[derive(Debug)]
pub struct RunResult {
    /// The run's name.
    pub name: String,
    /// The run's directory.
    pub dir: PathBuf,
    /// How QEMU ended.
    pub outcome: Outcome,
    /// The whole serial log (lossy UTF-8).
    pub serial: String,
    /// What QEMU printed on stderr.
    pub qemu_stderr: String,
    /// The QEMU command line, shell-quoted.
    pub command_line: String,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The (scaled) timeout that applied.
    pub timeout: Duration,
    /// The (scaled) stall timeout that applied, if any.
    pub stall: Option<Duration>,
    /// For a run that timed out or stalled: every CPU's registers as QEMU's monitor showed
    /// them just before the kill ([`crate::monitor::dump_cpus`]).
    pub cpu_state: Option<String>,
}

impl RunResult {
    /// The one line a finished run prints: how it ended, after how long, and where its log is.
    pub(crate) fn print_finished(&self, serial_path: &std::path::Path) {
        eprintln!(
            "[{}] {} after {:.1} s (log: {})",
            self.name,
            self.outcome_text(),
            self.elapsed.as_secs_f64(),
            serial_path.display()
        );
    }

    /// QEMU's exit status, if it exited.
    pub fn exit_status(&self) -> Option<i32> {
        match self.outcome {
            Outcome::Exited(s) => Some(s),
            _ => None,
        }
    }

    /// A short description of the outcome.
    pub fn outcome_text(&self) -> String {
        match self.outcome {
            Outcome::Exited(s) => format!("exit status {s}: {}", qemu::describe_exit_status(s)),
            Outcome::Signaled => "QEMU was killed by a signal".into(),
            Outcome::TimedOut => format!("TIMEOUT: still running after {:.1} s, killed", self.timeout.as_secs_f64()),
            Outcome::Stalled => format!(
                "STALLED: no serial output for {:.0} s (after {:.1} s), killed",
                self.stall.unwrap_or_default().as_secs_f64(),
                self.elapsed.as_secs_f64()
            ),
            Outcome::BochsExited(s) => match crate::bochs::stop_outcome(&self.serial) {
                Some(o) => {
                    format!("Bochs quit (status {s}) once the hypervisor printed `FERROVISOR STOP outcome={o}`")
                }
                None => format!("Bochs quit (status {s}) without a `FERROVISOR STOP` line (see the Bochs log)"),
            },
        }
    }

    /// The outcome the hypervisor printed on its last line (`FERROVISOR STOP outcome=`).
    pub fn stop_outcome(&self) -> Option<&str> {
        crate::bochs::stop_outcome(&self.serial)
    }

    /// Panics with `msg` (the drop handler adds the log tail and command).
    #[track_caller]
    pub fn fail(&self, msg: impl std::fmt::Display) -> ! {
        panic!("[{}] {msg}", self.name)
    }

    /// Panics with `msg` unless `cond`.
    #[track_caller]
    pub fn check(&self, cond: bool, msg: impl std::fmt::Display) {
        if !cond {
            self.fail(msg);
        }
    }

    /// Asserts that QEMU exited with `status`.
    #[track_caller]
    pub fn assert_exit(&self, status: i32) {
        if self.exit_status() != Some(status) {
            self.fail(format!(
                "expected QEMU exit status {status} ({}), got: {}",
                qemu::describe_exit_status(status),
                self.outcome_text()
            ));
        }
    }

    /// Asserts that the hypervisor reported success: QEMU exit status 33, or under Bochs
    /// the line `FERROVISOR STOP outcome=success`.
    #[track_caller]
    pub fn assert_success(&self) {
        match self.outcome {
            Outcome::BochsExited(_) => self.assert_stop_outcome("success"),
            _ => self.assert_exit(qemu::EXIT_SUCCESS),
        }
    }

    /// Asserts that the hypervisor reported failure: QEMU exit status 35, or under Bochs
    /// the line `FERROVISOR STOP outcome=failure`.
    #[track_caller]
    pub fn assert_failure(&self) {
        match self.outcome {
            Outcome::BochsExited(_) => self.assert_stop_outcome("failure"),
            _ => self.assert_exit(qemu::EXIT_FAILURE),
        }
    }

    #[track_caller]
    fn assert_stop_outcome(&self, expected: &str) {
        if self.stop_outcome() != Some(expected) {
            self.fail(format!("expected `FERROVISOR STOP outcome={expected}`, got: {}", self.outcome_text()));
        }
    }

    /// Every `SELFTEST` line.
    pub fn selftest_lines(&self) -> Vec<SelftestLine> {
        selftest::parse_all(&self.serial)
    }

    /// Every `SELFTEST <kind>` line.
    pub fn selftest_all(&self, kind: &str) -> Vec<SelftestLine> {
        self.selftest_lines().into_iter().filter(|l| l.kind == kind).collect()
    }

    /// The one `SELFTEST <kind>` line; fails unless there is exactly one.
    #[track_caller]
    pub fn selftest(&self, kind: &str) -> SelftestLine {
        let mut all = self.selftest_all(kind);
        match all.len() {
            1 => all.remove(0),
            0 => self.fail(format!("no `SELFTEST {kind}` line in the serial log")),
            n => self.fail(format!("{n} `SELFTEST {kind}` lines in the serial log, expected one")),
        }
    }

    /// A numeric field of a self-test line; fails if missing or not a number.
    #[track_caller]
    pub fn field_u64(&self, line: &SelftestLine, key: &str) -> u64 {
        line.u64(key).unwrap_or_else(|e| self.fail(e))
    }

    /// A text field of a self-test line; fails if missing.
    #[track_caller]
    pub fn field_str<'a>(&self, line: &'a SelftestLine, key: &str) -> &'a str {
        line.str(key).unwrap_or_else(|e| self.fail(e))
    }

    /// Serial log lines containing `needle`.
    pub fn lines_with<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.serial.lines().filter(move |l| l.contains(needle))
    }

    /// The first serial log line satisfying `pred`; fails with `what` if none.
    #[track_caller]
    pub fn line_where(&self, what: &str, pred: impl Fn(&str) -> bool) -> &str {
        match self.serial.lines().find(|l| pred(l)) {
            Some(l) => l,
            None => self.fail(format!("no serial log line {what}")),
        }
    }

    /// Every `DOMAIN` report line; fails on a malformed one.
    #[track_caller]
    pub fn domain_reports(&self) -> Vec<DomainReport> {
        domain_log::domain_reports(&self.serial).into_iter().map(|r| r.unwrap_or_else(|e| self.fail(e))).collect()
    }

    /// The `DOMAIN` report of the domain called `name`; fails unless exactly one exists.
    #[track_caller]
    pub fn domain_named(&self, name: &str) -> DomainReport {
        let mut found: Vec<_> = self.domain_reports().into_iter().filter(|d| d.name == name).collect();
        match found.len() {
            1 => found.remove(0),
            0 => self.fail(format!("no `DOMAIN ... name={name} ...` line (is exit-when-idle on the command line?)")),
            n => self.fail(format!("{n} `DOMAIN` lines with name={name}")),
        }
    }

    /// The `DOMAINS done` line; fails if missing or malformed.
    #[track_caller]
    pub fn domains_done(&self) -> DomainsDone {
        match domain_log::domains_done(&self.serial) {
            Some(Ok(d)) => d,
            Some(Err(e)) => self.fail(e),
            None => self.fail("no `DOMAINS done ...` line (is exit-when-idle on the command line?)"),
        }
    }

    /// What domain `domid` printed on its console, line by line.
    pub fn console(&self, domid: u32) -> Vec<String> {
        domain_log::console_of(&self.serial, domid)
    }

    /// The first console line of domain `domid` satisfying `pred`; fails with `what` if none.
    #[track_caller]
    pub fn console_line_where(&self, domid: u32, what: &str, pred: impl Fn(&str) -> bool) -> String {
        match self.console(domid).into_iter().find(|l| pred(l)) {
            Some(l) => l,
            None => {
                self.fail(format!("domain {domid} printed no console line {what} (looked for `(d{domid}) ` lines)"))
            }
        }
    }

    /// Every `GUEST <kind> ...` line domain `domid` printed.
    pub fn guest_lines(&self, domid: u32, kind: &str) -> Vec<SelftestLine> {
        domain_log::guest_lines(&self.serial, domid).into_iter().filter(|l| l.kind == kind).collect()
    }

    /// The first `GUEST <kind> ...` line of domain `domid`; fails if none.
    #[track_caller]
    pub fn guest_line(&self, domid: u32, kind: &str) -> SelftestLine {
        match self.guest_lines(domid, kind).into_iter().next() {
            Some(l) => l,
            None => self.fail(format!("domain {domid} printed no `GUEST {kind} ...` line")),
        }
    }

    /// The report printed when a test fails.
    pub fn report(&self) -> String {
        let mut r = format!(
            "---- {}: {} after {:.1} s\n---- command line:\n{}\n",
            self.name,
            self.outcome_text(),
            self.elapsed.as_secs_f64(),
            self.command_line
        );
        let stderr = self.qemu_stderr.trim();
        if !stderr.is_empty() {
            r.push_str(&format!("---- emulator stderr:\n{stderr}\n"));
        }
        r.push_str(&format!(
            "---- last {TAIL_LINES} lines of the serial log ({}):\n",
            self.dir.join("serial.log").display(),
        ));
        if self.serial.is_empty() {
            r.push_str("(the serial log is empty)\n");
        } else {
            r.push_str(tail_lines(&self.serial, TAIL_LINES));
            if !self.serial.ends_with('\n') {
                r.push('\n');
            }
        }
        r.push_str("---- end of serial log\n");
        if let Some(state) = &self.cpu_state {
            r.push_str(&format!(
                "---- CPU state when it was killed ({}):\n{state}\n---- end of CPU state\n",
                self.dir.join("cpu-state.txt").display()
            ));
        }
        r
    }
}

impl Drop for RunResult {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// Convenience: the accelerator from `FERROVISOR_ACCEL` after checking that
/// KVM is usable (falls back to TCG with a note).
pub fn resolve_accel(requested: Accel) -> Accel {
    let (accel, note) = Accel::resolve(requested);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    accel
}

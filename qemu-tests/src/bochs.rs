//! Booting Ferrovisor under Bochs: the machine that emulates Intel VT-x (VMX with EPT, VPID
//! and unrestricted guest on the `corei7_skylake_x` model) and, on the `ryzen` model, a
//! second opinion on AMD-V (SVM with NPT and NRIP-save). Shared by `cargo xtask run --vmx`
//! and the Bochs tests (`tests/vmx.rs`), so both boot exactly the same machine.
//!
//! The machine boots the GRUB ISO ([`crate::iso`]) from an ATA CD-ROM with Bochs' BIOS,
//! writes COM1 to a file (the serial log), has `clock: sync=none` (emulated time advances
//! with instructions: runs are as fast as the host allows and reproducible) and no display
//! anybody can reach: `display_library: term` with `TERM=dumb`, stdin from `/dev/null`
//! (never `rfb`, which listens on the network without authentication). A Bochs built with
//! its debugger starts in it: `-rc` feeds it `continue`.
//!
//! Bochs has no `isa-debug-exit` and always exits with status 1, so the hypervisor gets
//! `bochs-exit` on its command line: `power::stop` then prints `FERROVISOR STOP
//! outcome=success|failure` and writes `Shutdown` to port 0x8900, which makes Bochs quit.
//! Runs are judged by that line. Debian's Bochs ignores SIGTERM: every run is bounded by
//! `timeout -k 5 N`.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::domain::{self, DomainSpec};
use crate::harness::{fresh_dir, KillOnDrop, Outcome, RunResult};
use crate::iso::{self, Module};
use crate::util::{shell_join, tail_lines};

/// The Bochs binary used unless `FERROVISOR_BOCHS` names another.
pub const DEFAULT_BOCHS: &str = "bochs";
/// Environment variable naming the Bochs binary.
pub const ENV_BOCHS: &str = "FERROVISOR_BOCHS";
/// Debian's (package `bochsbios`) system BIOS.
pub const DEFAULT_BIOS: &str = "/usr/share/bochs/BIOS-bochs-latest";
/// Debian's (packages `bochs` and `vgabios`) VGA BIOS.
pub const DEFAULT_VGA_BIOS: &str = "/usr/share/bochs/VGABIOS-lgpl-latest";
/// Environment variables overriding the BIOS images.
pub const ENV_BOCHS_BIOS: &str = "FERROVISOR_BOCHS_BIOS";
pub const ENV_BOCHS_VGA_BIOS: &str = "FERROVISOR_BOCHS_VGA_BIOS";
/// The hypervisor command-line flag that makes `power::stop` quit Bochs.
pub const BOCHS_EXIT_OPTION: &str = "bochs-exit";
/// The hypervisor's last line: `FERROVISOR STOP outcome=success|failure`.
pub const STOP_MARKER: &str = "FERROVISOR STOP";
/// Grace period `timeout` gives Bochs after SIGTERM (which Debian's Bochs ignores).
pub const KILL_AFTER_SECS: u64 = 5;

/// Bochs CPU models the tests use.
pub mod model {
    /// Intel Skylake-X: VMX with EPT, VPID, unrestricted guest, VMX-preemption timer.
    pub const VMX: &str = "corei7_skylake_x";
    /// AMD Ryzen: SVM with NPT and NRIP-save.
    pub const SVM: &str = "ryzen";
}

/// The outcome the hypervisor printed last (`FERROVISOR STOP outcome=...`), if any.
pub fn stop_outcome(serial: &str) -> Option<&str> {
    serial
        .lines()
        .filter_map(|l| l.find(STOP_MARKER).map(|i| &l[i + STOP_MARKER.len()..]))
        .filter_map(|rest| rest.trim().strip_prefix("outcome="))
        .map(|v| v.split_whitespace().next().unwrap_or(""))
        .next_back()
}

/// `cmdline` with `bochs-exit` added (once).
pub fn with_bochs_exit(cmdline: &str) -> String {
    if cmdline.split(' ').any(|w| w == BOCHS_EXIT_OPTION) {
        cmdline.to_owned()
    } else {
        format!("{cmdline} {BOCHS_EXIT_OPTION}").trim().to_owned()
    }
}

/// Where COM1 goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    /// Written to this file.
    File(PathBuf),
}

/// One Bochs machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BochsConfig {
    /// The Bochs binary.
    pub bochs: OsString,
    /// The GRUB ISO to boot.
    pub iso: PathBuf,
    /// `cpu: model=`.
    pub cpu_model: String,
    /// `cpu: count=`.
    pub cpus: u32,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// Emulated instructions per emulated second (also the TSC frequency).
    pub ips: u64,
    /// COM1.
    pub serial: Serial,
    /// Bochs' own log.
    pub log: PathBuf,
    /// System and VGA BIOS images.
    pub bios: PathBuf,
    pub vga_bios: PathBuf,
}

impl BochsConfig {
    /// The default machine for `iso`, with its serial and Bochs logs in `dir`: Skylake-X
    /// (VMX), one CPU, 256 MiB.
    pub fn new(iso: &Path, dir: &Path) -> Self {
        let env_path =
            |var: &str, default: &str| std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
        BochsConfig {
            bochs: std::env::var_os(ENV_BOCHS).unwrap_or_else(|| DEFAULT_BOCHS.into()),
            iso: iso.to_path_buf(),
            cpu_model: model::VMX.to_owned(),
            cpus: 1,
            memory_mib: 256,
            ips: 100_000_000,
            serial: Serial::File(dir.join("serial.log")),
            log: dir.join("bochs.log"),
            bios: env_path(ENV_BOCHS_BIOS, DEFAULT_BIOS),
            vga_bios: env_path(ENV_BOCHS_VGA_BIOS, DEFAULT_VGA_BIOS),
        }
    }

    /// The configuration file (`bochsrc`).
    pub fn bochsrc(&self) -> String {
        let Serial::File(com1) = &self.serial;
        format!(
            "# Ferrovisor under Bochs (generated).\n\
             megs: {memory}\n\
             cpu: model={model}, count={cpus}, ips={ips}, reset_on_triple_fault=0\n\
             romimage: file=\"{bios}\"\n\
             vgaromimage: file=\"{vga}\"\n\
             ata0-master: type=cdrom, path=\"{iso}\", status=inserted\n\
             boot: cdrom\n\
             clock: sync=none, time0=local\n\
             com1: enabled=1, mode=file, dev=\"{com1}\"\n\
             port_e9_hack: enabled=1\n\
             display_library: term\n\
             mouse: enabled=0\n\
             log: \"{log}\"\n\
             panic: action=fatal\n\
             error: action=report\n\
             info: action=report\n\
             debug: action=ignore\n",
            memory = self.memory_mib,
            model = self.cpu_model,
            cpus = self.cpus,
            ips = self.ips,
            bios = self.bios.display(),
            vga = self.vga_bios.display(),
            iso = self.iso.display(),
            com1 = com1.display(),
            log = self.log.display(),
        )
    }

    /// Checks that Bochs can start: the BIOS images exist (the binary is found when it runs).
    pub fn check_files(&self) -> Result<(), String> {
        for (file, package) in [(&self.bios, "bochsbios"), (&self.vga_bios, "vgabios")] {
            if !file.exists() {
                return Err(format!("{} is missing (Debian package `{package}`)", file.display()));
            }
        }
        Ok(())
    }

    /// `timeout -k 5 SECS bochs -q -f BOCHSRC -rc RC` (or plain `bochs ...` without a
    /// timeout), with `TERM=dumb`; stdio is left to the caller.
    pub fn command(&self, bochsrc: &Path, rc: &Path, timeout: Option<Duration>) -> Command {
        let mut c = match timeout {
            Some(t) => {
                let mut c = Command::new("timeout");
                c.arg("-k").arg(KILL_AFTER_SECS.to_string()).arg(t.as_secs().max(1).to_string()).arg(&self.bochs);
                c
            }
            None => Command::new(&self.bochs),
        };
        c.arg("-q").arg("-f").arg(bochsrc).arg("-rc").arg(rc).env("TERM", "dumb");
        c
    }

    /// Writes `bochsrc` and the debugger script `rc` into `dir`; returns their paths.
    pub fn write_files(&self, dir: &Path) -> Result<(PathBuf, PathBuf), String> {
        let bochsrc = dir.join("bochsrc");
        let rc = dir.join("bochs.rc");
        fs::write(&bochsrc, self.bochsrc()).map_err(|e| format!("writing {}: {e}", bochsrc.display()))?;
        fs::write(&rc, "continue\n").map_err(|e| format!("writing {}: {e}", rc.display()))?;
        Ok((bochsrc, rc))
    }
}

/// One Bochs run to make, like [`crate::Vm`] for QEMU.
#[derive(Debug, Clone)]
pub struct BochsVm {
    name: String,
    dir: PathBuf,
    config: BochsConfig,
    timeout: Duration,
}

impl BochsVm {
    /// Builds a GRUB ISO of `image` with `cmdline` (plus `bochs-exit`) and `modules` in the
    /// test directory `dir` (made by [`fresh_dir`]).
    pub fn iso_in(name: &str, dir: PathBuf, image: &Path, cmdline: &str, modules: &[Module]) -> BochsVm {
        let cmdline = with_bochs_exit(cmdline);
        let iso_path = iso::build_iso(image, &cmdline, modules, &dir.join("ferrovisor.iso"))
            .unwrap_or_else(|e| panic!("[{name}] building the ISO: {e}"));
        let config = BochsConfig::new(&iso_path, &dir);
        BochsVm { name: name.to_owned(), dir, config, timeout: Duration::from_secs(60) }
    }

    /// Boots `image` from a GRUB ISO with hypervisor command line `cmdline` (plus
    /// `bochs-exit`) and one boot-time domain per entry of `domains`.
    pub fn domains(name: &str, image: &Path, cmdline: &str, domains: &[DomainSpec]) -> BochsVm {
        BochsVm::built_by(name, image, cmdline, domains, domain::Builder::Hypervisor)
    }

    /// Like [`BochsVm::domains`], with `builder` building them (the dom0 agent boots first).
    pub fn built_by(
        name: &str,
        image: &Path,
        cmdline: &str,
        domains: &[DomainSpec],
        builder: domain::Builder,
    ) -> BochsVm {
        let dir = fresh_dir(name);
        let modules = domain::run_modules(name, &dir, domains, builder);
        BochsVm::iso_in(name, dir, image, cmdline, &modules)
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of CPUs (`cpu: count=`).
    pub fn cpus(mut self, n: u32) -> BochsVm {
        self.config.cpus = n;
        self
    }

    /// The CPU model (see [`model`]).
    pub fn cpu_model(mut self, model: &str) -> BochsVm {
        self.config.cpu_model = model.to_owned();
        self
    }

    /// RAM in MiB.
    pub fn memory_mib(mut self, mib: u32) -> BochsVm {
        self.config.memory_mib = mib;
        self
    }

    /// The timeout in seconds before `FERROVISOR_TIMEOUT_SCALE` is applied.
    pub fn timeout_secs(mut self, secs: u64) -> BochsVm {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// The machine as configured.
    pub fn config(&self) -> &BochsConfig {
        &self.config
    }

    /// Boots, waits for Bochs to quit or the timeout, and returns what happened. The
    /// result's outcome is [`Outcome::BochsExited`] (judge it by the `FERROVISOR STOP`
    /// line, see [`RunResult::assert_success`]) or [`Outcome::TimedOut`].
    pub fn run(self) -> RunResult {
        let timeout = self.timeout.mul_f64(crate::timeout_scale());
        let Serial::File(serial_path) = self.config.serial.clone();
        let fail = |msg: String| -> ! { panic!("[{}] {msg}", self.name) };
        self.config.check_files().unwrap_or_else(|e| fail(e));
        let (bochsrc, rc) = self.config.write_files(&self.dir).unwrap_or_else(|e| fail(e));
        let mut command = self.config.command(&bochsrc, &rc, Some(timeout));
        let command_line =
            format!("TERM=dumb {}", shell_join(std::iter::once(command.get_program()).chain(command.get_args())));
        fs::write(self.dir.join("command.txt"), format!("{command_line}\n"))
            .unwrap_or_else(|e| fail(format!("writing command.txt: {e}")));
        // Bochs draws its (unused) text screen on stdout; keep it out of the way.
        let screen = File::create(self.dir.join("bochs-screen.txt")).unwrap_or_else(|e| fail(e.to_string()));
        let stderr_path = self.dir.join("bochs-stderr.log");
        let stderr = File::create(&stderr_path).unwrap_or_else(|e| fail(e.to_string()));
        let _ = fs::remove_file(&serial_path);

        eprintln!("[{}] {command_line}", self.name);
        let start = Instant::now();
        let child = command.stdin(Stdio::null()).stdout(screen).stderr(stderr).spawn().unwrap_or_else(|e| {
            fail(format!(
                "cannot start `timeout {:?}`: {e} (Debian packages `bochs bochs-term bochsbios vgabios`; \
                 `cargo xtask test` installs them)",
                self.config.bochs
            ))
        });
        let mut guard = KillOnDrop(child);
        // `timeout` ends Bochs; this is only a backstop should `timeout` itself hang.
        let backstop = timeout + Duration::from_secs(KILL_AFTER_SECS + 10);
        let outcome = loop {
            match guard.0.try_wait() {
                // `timeout` exits with 124 after SIGTERM worked, 137 after SIGKILL: that is our
                // timeout only if its time is up. Before that, Bochs quit on its own, whatever
                // the status (it has been seen to end by a signal after a clean
                // `quit_sim` under load, which `timeout` passes on): the run is judged by the
                // hypervisor's STOP line like any other Bochs exit.
                Ok(Some(status)) => match status.code() {
                    Some(124 | 137) | None if start.elapsed() >= timeout => break Outcome::TimedOut,
                    code => break Outcome::BochsExited(code.unwrap_or(-1)),
                },
                Ok(None) if start.elapsed() >= backstop => {
                    let _ = guard.0.kill();
                    let _ = guard.0.wait();
                    break Outcome::TimedOut;
                }
                Ok(None) => thread::sleep(Duration::from_millis(25)),
                Err(e) => fail(format!("waiting for Bochs: {e}")),
            }
        };
        let elapsed = start.elapsed();
        let serial = String::from_utf8_lossy(&fs::read(&serial_path).unwrap_or_default()).into_owned();
        // What Bochs says about the failure is in its log (VM-entry check failures, panics).
        let bochs_log = String::from_utf8_lossy(&fs::read(&self.config.log).unwrap_or_default()).into_owned();
        let bochs_stderr = String::from_utf8_lossy(&fs::read(&stderr_path).unwrap_or_default()).into_owned();
        let emulator_output = format!(
            "{}---- last 20 lines of the Bochs log ({}):\n{}",
            bochs_stderr,
            self.config.log.display(),
            tail_lines(&bochs_log, 20)
        );
        let result = RunResult {
            name: self.name,
            dir: self.dir,
            outcome,
            serial,
            qemu_stderr: emulator_output,
            command_line,
            elapsed,
            timeout,
            stall: None,
            cpu_state: None,
        };
        result.print_finished(&serial_path);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_line() {
        assert_eq!(stop_outcome("x\nFERROVISOR STOP outcome=success\r\n"), Some("success"));
        assert_eq!(stop_outcome("FERROVISOR STOP outcome=failure"), Some("failure"));
        assert_eq!(stop_outcome("[ 1.0] CPU0 INFO  ready\n"), None);
        // The last one counts.
        assert_eq!(stop_outcome("FERROVISOR STOP outcome=failure\nFERROVISOR STOP outcome=success\n"), Some("success"));
    }

    #[test]
    fn bochs_exit_is_added_once() {
        assert_eq!(with_bochs_exit("loglvl=info"), "loglvl=info bochs-exit");
        assert_eq!(with_bochs_exit("bochs-exit loglvl=info"), "bochs-exit loglvl=info");
        assert_eq!(with_bochs_exit(""), "bochs-exit");
    }

    #[test]
    fn config_and_command() {
        let mut c = BochsConfig::new(Path::new("/t/ferrovisor.iso"), Path::new("/t"));
        c.cpus = 2;
        c.cpu_model = model::SVM.into();
        let rc = c.bochsrc();
        for line in [
            "cpu: model=ryzen, count=2, ips=100000000",
            "ata0-master: type=cdrom, path=\"/t/ferrovisor.iso\", status=inserted",
            "boot: cdrom",
            "clock: sync=none",
            "com1: enabled=1, mode=file, dev=\"/t/serial.log\"",
            "port_e9_hack: enabled=1",
            "display_library: term",
            "megs: 256",
        ] {
            assert!(rc.contains(line), "{line} missing from:\n{rc}");
        }
        assert!(!rc.contains("rfb"));
        let cmd = c.command(Path::new("/t/bochsrc"), Path::new("/t/bochs.rc"), Some(Duration::from_secs(90)));
        let args: Vec<_> = std::iter::once(cmd.get_program()).chain(cmd.get_args()).collect();
        assert_eq!(
            shell_join(args),
            format!("timeout -k 5 90 {} -q -f /t/bochsrc -rc /t/bochs.rc", c.bochs.to_string_lossy())
        );
    }
}

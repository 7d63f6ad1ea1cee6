//! `cargo xtask run --vmx` (or `--bochs-cpu MODEL`): boots the GRUB ISO under Bochs, which
//! emulates Intel VT-x (`corei7_skylake_x`, the default) or AMD-V (`ryzen`), with the
//! serial console on this terminal.
//!
//! Bochs writes COM1 to `target/bochs/serial.log`; a small shell wrapper runs Bochs in the
//! background and follows that file until Bochs quits. Ctrl-C makes the wrapper send Bochs
//! SIGHUP, which its text display turns into "quit" (it ignores SIGTERM and passes SIGINT to
//! the guest as a key). The hypervisor gets `bochs-exit`, so with `--exit-when-idle` Bochs
//! quits when the last domain is gone; the `FERROVISOR STOP` line says how it ended.

use std::fs;
use std::process::{Command, ExitCode};

use qemu_tests::bochs::{self, BochsConfig};
use qemu_tests::domain::DomainSpec;

use crate::util::{build_image, step, target_dir, Flavor};
use crate::{cli, prereq};

/// What `run` asked for.
#[derive(Debug)]
pub struct BochsRun<'a> {
    pub model: &'a str,
    pub cpus: u32,
    /// In `cli::parse_memory`'s syntax.
    pub memory: &'a str,
    pub cmdline: &'a str,
    pub flavor: Flavor,
    /// The hypervisor builds the domains itself (no dom0 agent).
    pub no_agent: bool,
    /// Pass `exit-when-idle` to the agent.
    pub exit_when_idle: bool,
}

/// Follows the serial log while Bochs runs; `$1` is the directory, the rest the command.
const WRAPPER: &str = r#"dir=$1; shift
"$@" </dev/null >"$dir/bochs-screen.txt" 2>"$dir/bochs-stderr.log" &
pid=$!
trap 'kill -HUP $pid 2>/dev/null' INT TERM HUP
tail -n +1 -s 0.2 -f --pid=$pid "$dir/serial.log"
wait $pid
"#;

pub fn run(r: &BochsRun<'_>, domains: &mut [DomainSpec]) -> Result<ExitCode, String> {
    let memory_mib = memory_mib(r.memory)?;
    let cmdline = bochs::with_bochs_exit(r.cmdline);
    qemu_tests::iso::check_cmdline(&cmdline)?;
    prereq::ensure_rust_target()?;
    prereq::ensure_packages(&[prereq::GRUB_ISO, prereq::BOCHS])?;
    let modules = crate::modules_with_agent(domains, r.no_agent, r.exit_when_idle)?;
    let image = build_image(r.flavor)?;
    let iso = crate::build_iso(&image, &cmdline, &modules)?;
    let dir = target_dir().join("bochs");
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut config = BochsConfig::new(&iso, &dir);
    config.cpu_model = r.model.to_owned();
    config.cpus = r.cpus;
    config.memory_mib = memory_mib;
    config.check_files()?;
    let (bochsrc, rc) = config.write_files(&dir)?;
    let serial = dir.join("serial.log");
    fs::write(&serial, "").map_err(|e| format!("creating {}: {e}", serial.display()))?;
    let bochs_command = config.command(&bochsrc, &rc, None);

    let mut wrapper = Command::new("sh");
    wrapper.arg("-c").arg(WRAPPER).arg("sh").arg(&dir).arg(bochs_command.get_program()).args(bochs_command.get_args());
    wrapper.env("TERM", "dumb");
    step(&format!(
        "TERM=dumb {} (model {}, {} CPU(s), {memory_mib} MiB)",
        qemu_tests::util::shell_join(std::iter::once(bochs_command.get_program()).chain(bochs_command.get_args())),
        r.model,
        r.cpus
    ));
    println!("Serial console follows (COM1 is {}). Stop with Ctrl-C.", serial.display());
    if !domains.is_empty() {
        println!("Guest output appears in the log prefixed with (d<domain id>).");
    }
    let status = wrapper.status().map_err(|e| format!("cannot run sh: {e}"))?;
    let log = String::from_utf8_lossy(&fs::read(&serial).unwrap_or_default()).into_owned();
    match bochs::stop_outcome(&log) {
        Some(outcome) => {
            println!("\nBochs quit: the hypervisor stopped with outcome={outcome}");
            Ok(if outcome == "success" { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        None => {
            println!(
                "\nBochs ended ({status}) before the hypervisor stopped; its log: {}",
                dir.join("bochs.log").display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// MiB from a size `cli::parse_memory` accepted (`512M`, `2G`, `1024`).
pub fn memory_mib(size: &str) -> Result<u32, String> {
    let size = cli::parse_memory(size)?;
    let (digits, unit) = size.split_at(size.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(size.len()));
    let n: u64 = digits.parse().map_err(|_| format!("--memory `{size}`: not a size"))?;
    let mib = match unit {
        "" | "M" => n,
        "K" => n / 1024,
        "G" => n * 1024,
        "T" => n * 1024 * 1024,
        _ => return Err(format!("--memory `{size}`: unknown unit")),
    };
    u32::try_from(mib).ok().filter(|&m| m <= 8192).ok_or_else(|| format!("--memory `{size}`: Bochs gets at most 8G"))
}

/// Whether `model` looks like a Bochs CPU model name (letters, digits, `_`, `-`).
pub fn check_model(model: &str) -> Result<(), String> {
    if !model.is_empty() && model.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        Ok(())
    } else {
        Err(format!("--bochs-cpu `{model}`: not a Bochs CPU model name (see `bochs --help cpu`)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(memory_mib("512M"), Ok(512));
        assert_eq!(memory_mib("2G"), Ok(2048));
        assert_eq!(memory_mib("256"), Ok(256));
        assert!(memory_mib("16G").is_err());
        assert!(memory_mib("32M").is_err());
    }

    #[test]
    fn models() {
        assert!(check_model("corei7_skylake_x").is_ok());
        assert!(check_model("ryzen").is_ok());
        assert!(check_model("a b").is_err());
        assert!(check_model("").is_err());
    }
}

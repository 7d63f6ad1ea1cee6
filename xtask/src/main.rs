//! `cargo xtask`: builds, boots and tests Ferrovisor.
//!
//! ```text
//! cargo xtask build [--selftest]
//! cargo xtask run [--smp N] [--memory SIZE] [--iso] [--uefi] [--cmdline STR]
//!                 [--accel tcg|kvm] [--selftest NAME] [-- QEMU ARGS...]
//! cargo xtask iso [--cmdline STR]
//! cargo xtask test [--accel tcg|kvm] [-- TEST FILTER/ARGS...]
//! cargo xtask bench
//! ```

mod cli;
mod prereq;
mod test;
mod util;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use qemu_tests::qemu::{self, Accel, Boot, Console, Firmware, QemuConfig};

use crate::util::{build_image, step, target_dir, Flavor};

const USAGE: &str = "\
Ferrovisor's build, run and test driver.

Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  build [--selftest]   Build the hypervisor image (--selftest: the self-test image)
                       and print its path.
  run [OPTIONS] [-- QEMU ARGS...]
                       Build and boot under QEMU, serial console on this terminal.
      --smp N            CPUs (default 4)
      --memory SIZE      RAM, e.g. 512M, 5G (default 512M)
      --cmdline STR      hypervisor command line (default \"loglvl=info\")
      --iso              boot the GRUB ISO (multiboot2) instead of -kernel (PVH)
      --uefi             boot the GRUB ISO with OVMF (implies --iso)
      --accel tcg|kvm    default tcg; kvm only helps if KVM offers SVM or VMX
      --selftest NAME    boot the self-test image with selftest=NAME added
  iso [--cmdline STR]  Build target/ferrovisor.iso (GRUB, BIOS + UEFI) and print its path.
  test [--accel tcg|kvm] [-- ARGS...]
                       What CI runs: prerequisites, host unit tests, clippy, both
                       images, then the QEMU tests (ARGS go to their test binaries,
                       e.g. a test name filter). Ends with a summary.
  bench                Benchmarks (none yet).
  help                 This text.

Prerequisites are installed with apt-get when running as root (else the exact
sudo command is printed): the x86_64-unknown-none target (rustup), QEMU
(qemu-system-x86), GRUB ISO tools (grub-common grub-pc-bin grub-efi-amd64-bin
xorriso mtools) and OVMF (ovmf), each only where the command needs it.
";

/// The default hypervisor command line of `run` and `iso`.
const DEFAULT_CMDLINE: &str = "loglvl=info";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode, String> {
    let Some((command, rest)) = args.split_first() else {
        print!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    match command.as_str() {
        "build" => build(rest),
        "run" => run(rest),
        "iso" => iso(rest),
        "test" => test::test(rest),
        "bench" => {
            cli::parse(rest, &[], &[])?;
            println!("no benchmarks yet (the first arrive with the Xen PV ABI issue)");
            Ok(ExitCode::SUCCESS)
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    }
}

fn build(args: &[String]) -> Result<ExitCode, String> {
    let opts = cli::parse(args, &[], &["selftest"])?;
    prereq::ensure_rust_target()?;
    let flavor = if opts.flag("selftest") { Flavor::Selftest } else { Flavor::Normal };
    let image = build_image(flavor)?;
    println!("{}", image.display());
    Ok(ExitCode::SUCCESS)
}

/// Where `iso` and `run --iso` put the ISO.
fn iso_path() -> PathBuf {
    target_dir().join("ferrovisor.iso")
}

fn build_iso(image: &Path, cmdline: &str) -> Result<PathBuf, String> {
    let iso = iso_path();
    step(&format!("grub-mkrescue -> {} (cmdline \"{cmdline}\")", iso.display()));
    qemu_tests::iso::build_iso(image, cmdline, &[], &iso)
}

fn iso(args: &[String]) -> Result<ExitCode, String> {
    let opts = cli::parse(args, &["cmdline"], &[])?;
    let cmdline = opts.value("cmdline").unwrap_or(DEFAULT_CMDLINE);
    qemu_tests::iso::check_cmdline(cmdline)?;
    prereq::ensure_rust_target()?;
    prereq::ensure_packages(&[prereq::GRUB_ISO])?;
    let image = build_image(Flavor::Normal)?;
    let iso = build_iso(&image, cmdline)?;
    println!("{}", iso.display());
    Ok(ExitCode::SUCCESS)
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let opts = cli::parse(args, &["smp", "memory", "cmdline", "accel", "selftest"], &["iso", "uefi"])?;
    let smp = opts.value("smp").map_or(Ok(4), cli::parse_smp)?;
    let memory = opts.value("memory").map_or(Ok("512M".to_owned()), cli::parse_memory)?;
    let requested = opts.value("accel").map_or(Ok(Accel::Tcg), Accel::parse)?;
    let uefi = opts.flag("uefi");
    let use_iso = uefi || opts.flag("iso");
    let mut cmdline = opts.value("cmdline").unwrap_or(DEFAULT_CMDLINE).to_owned();
    let flavor = match opts.value("selftest") {
        Some(name) => {
            cmdline = format!("selftest={name} {cmdline}").trim().to_owned();
            Flavor::Selftest
        }
        None => Flavor::Normal,
    };
    if use_iso {
        qemu_tests::iso::check_cmdline(&cmdline)?;
    }

    prereq::ensure_rust_target()?;
    let mut packages = vec![prereq::QEMU];
    if use_iso {
        packages.push(prereq::GRUB_ISO);
    }
    if uefi {
        packages.push(prereq::OVMF);
    }
    prereq::ensure_packages(&packages)?;

    let image = build_image(flavor)?;
    let boot = if use_iso {
        let iso = build_iso(&image, &cmdline)?;
        let firmware = if uefi { Firmware::uefi_in(&target_dir().join("ovmf"))? } else { Firmware::Bios };
        Boot::Cdrom { iso, firmware }
    } else {
        Boot::Kernel { image, cmdline, initrd: None }
    };
    let (accel, note) = Accel::resolve(requested);
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let mut config = QemuConfig::new(boot);
    config.smp = smp;
    config.memory = memory;
    config.accel = accel;
    config.console = Console::Interactive;
    config.extra_args = opts.rest.iter().map(Into::into).collect();

    step(&config.command_line());
    println!("Serial console follows. Quit QEMU with Ctrl-A X (Ctrl-A C toggles the QEMU monitor).");
    if uefi {
        println!("(UEFI under TCG takes a minute before GRUB and the hypervisor print anything.)");
    }
    let status = config.command().status().map_err(|e| format!("cannot run {:?}: {e}", config.qemu))?;
    match status.code() {
        Some(code) => {
            println!("\nQEMU exited with status {code}: {}", qemu::describe_exit_status(code));
            Ok(if code == 0 || code == qemu::EXIT_SUCCESS { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        None => Err(format!("QEMU was killed ({status})")),
    }
}

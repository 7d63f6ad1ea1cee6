//! `cargo xtask`: builds, boots and tests Ferrovisor.
//!
//! ```text
//! cargo xtask build [--selftest]
//! cargo xtask run [--smp N] [--memory SIZE] [--iso] [--uefi] [--cmdline STR]
//!                 [--accel tcg|kvm] [--selftest NAME]
//!                 [--domain KERNEL[,OPTIONS]]... [--exit-when-idle]
//!                 [--vmx | --bochs-cpu MODEL] [-- QEMU ARGS...]
//! cargo xtask iso [--cmdline STR] [--domain KERNEL[,OPTIONS]]... [--exit-when-idle]
//! cargo xtask test [--accel tcg|kvm] [--qemu-only] [-- TEST FILTER/ARGS...]
//! cargo xtask linux [--refresh]
//! cargo xtask bench [--runs N] [--no-linux]
//! ```

mod bench;
mod bochs;
mod cli;
mod linux;
mod prereq;
mod test;
mod util;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use qemu_tests::domain::{self, DomainSpec};
use qemu_tests::iso::Module;
use qemu_tests::qemu::{self, Accel, Boot, Console, Firmware, QemuConfig};

use crate::util::{build_image, build_test_guest, step, target_dir, Flavor, Kernel};

const USAGE: &str = "\
Ferrovisor's build, run and test driver.

Usage: cargo xtask <COMMAND> [OPTIONS]

Commands:
  build [--selftest]   Build the hypervisor image (--selftest: the self-test image)
                       and the test guest, and print their paths.
  run [OPTIONS] [-- QEMU ARGS...]
                       Build and boot under QEMU, serial console on this terminal.
      --smp N            CPUs (default 4)
      --memory SIZE      RAM, e.g. 512M, 5G (default 512M)
      --cmdline STR      hypervisor command line (default \"loglvl=info\")
      --iso              boot the GRUB ISO (multiboot2) instead of -kernel (PVH)
      --uefi             boot the GRUB ISO with OVMF (implies --iso)
      --accel tcg|kvm    default tcg; kvm only helps if KVM offers SVM or VMX
      --selftest NAME    boot the self-test image with selftest=NAME added
      --domain SPEC      start a boot-time domain (repeatable; boots the GRUB ISO, the
                         domains travel as multiboot2 modules). SPEC is
                         KERNEL[,initrd=FILE][,memory=MiB][,vcpus=N][,weight=W]
                               [,cpus=LIST][,name=NAME][,cmdline=STR]
                         cmdline= comes last and takes the rest, commas included;
                         cpus=0,2-3 lists CPUs. KERNEL `test-guest` builds and uses
                         guests/test-guest (e.g. --domain test-guest,cmdline=test=hello);
                         KERNEL `linux` is Debian's kernel (fetched as by `linux`), and
                         initrd=default the default initramfs. Linux needs memory=256
                         or more and --memory 1G or more, e.g.
                         --memory 2G --smp 2 --domain 'linux,initrd=default,memory=512,
                         vcpus=2,cmdline=console=hvc0 earlyprintk=xen'
                         The dom0 agent boots first as domain 0 and builds the domains
                         (KERNEL may be an ELF or a bzImage such as Debian's vmlinuz);
      --no-agent         the hypervisor builds the domains itself instead
      --exit-when-idle   add exit-when-idle to the hypervisor command line (and the
                         agent's): QEMU exits with success (33) once every domain has
                         shut down, failure (35) if any crashed
      --vmx              boot under Bochs instead of QEMU, on an Intel CPU with VT-x
                         (model corei7_skylake_x): the VMX backend. Always the GRUB
                         ISO; --smp defaults to 1 (Bochs is ~7x slower than QEMU);
                         not with --uefi, --accel or QEMU arguments
      --bochs-cpu MODEL  like --vmx with another Bochs CPU model (`ryzen`: AMD-V)
  iso [--cmdline STR] [--domain SPEC]... [--exit-when-idle] [--no-agent]
                       Build target/ferrovisor.iso (GRUB, BIOS + UEFI) and print its path.
  test [--accel tcg|kvm] [--qemu-only] [-- ARGS...]
                       What CI runs: prerequisites, host unit tests, clippy, both
                       images, Debian's kernel (as `linux`), then the QEMU tests (ARGS
                       go to their test binaries, e.g. a test name filter). Ends with
                       a summary. --qemu-only skips the host unit tests and clippy.
  linux [--refresh]    Fetch Debian's linux-image-amd64 kernel (ELF vmlinux) and
                       busybox-static with apt-get (cached in target/linux/; --refresh
                       fetches again), build the default initramfs, print the paths.
  bench [--runs N] [--no-linux]
                       Deterministic benchmarks (-icount): Linux under Ferrovisor vs.
                       booted directly, and the test guest's BENCH figures (test=bench,
                       ping-pong), each next to its baseline. --runs N repeats each run.
  help                 This text.

Prerequisites are installed with apt-get when running as root (else the exact
sudo command is printed): the x86_64-unknown-none target (rustup), QEMU
(qemu-system-x86), GRUB ISO tools (grub-common grub-pc-bin grub-efi-amd64-bin
xorriso mtools), OVMF (ovmf), Bochs (bochs bochs-term bochsbios vgabios) and
xz-utils, each only where the command needs it.
";

/// The default hypervisor command line of `run` and `iso`.
const DEFAULT_CMDLINE: &str = "loglvl=info";
/// The hypervisor option that ends QEMU once every domain has shut down.
const EXIT_WHEN_IDLE: &str = "exit-when-idle";
/// `--domain` kernel name meaning "the test guest, built now".
const TEST_GUEST_KERNEL: &str = "test-guest";
/// `--domain` kernel name meaning "Debian's kernel, fetched (or from the cache)".
const LINUX_KERNEL: &str = "linux";
/// `--domain ...,initrd=default`: the default initramfs of `cargo xtask linux`.
const DEFAULT_INITRD: &str = "default";

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
        "bench" => bench::bench(rest),
        "linux" | "fetch-linux" => linux::command(rest),
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
    let guest = build_test_guest()?;
    println!("{}", image.display());
    println!("{}", guest.display());
    Ok(ExitCode::SUCCESS)
}

/// The `--domain` options, parsed; the kernel `test-guest` stands for the test guest.
fn parse_domains(opts: &cli::Parsed) -> Result<Vec<DomainSpec>, String> {
    opts.values("domain").iter().map(|arg| DomainSpec::parse(arg)).collect()
}

/// The modules for `domains`: the dom0 agent's first unless `no_agent` (then the hypervisor
/// builds the domains itself), with `exit-when-idle` passed on to it.
fn modules_with_agent(domains: &mut [DomainSpec], no_agent: bool, exit_when_idle: bool) -> Result<Vec<Module>, String> {
    let mut modules = domain_modules(domains)?;
    if !domains.is_empty() && !no_agent {
        let agent = Kernel::Dom0Agent.build()?;
        let dom0 = domain::dom0_module(&agent, exit_when_idle);
        println!("    module {} {} (domain 0: builds the others)", dom0.file.display(), dom0.cmdline);
        modules.insert(0, dom0);
    }
    Ok(modules)
}

/// Builds the test guest if a domain asks for it, makes paths absolute, and returns the
/// modules of all domains (files checked).
fn domain_modules(domains: &mut [DomainSpec]) -> Result<Vec<Module>, String> {
    if domains.iter().any(|d| d.kernel.as_os_str() == TEST_GUEST_KERNEL) {
        let guest = build_test_guest()?;
        for d in domains.iter_mut().filter(|d| d.kernel.as_os_str() == TEST_GUEST_KERNEL) {
            d.kernel = guest.clone();
        }
    }
    let wants_linux = |d: &DomainSpec| {
        d.kernel.as_os_str() == LINUX_KERNEL || d.initrd.as_ref().is_some_and(|i| i.as_os_str() == DEFAULT_INITRD)
    };
    if domains.iter().any(wants_linux) {
        let g = linux::fetch(false)?;
        for d in domains.iter_mut() {
            if d.kernel.as_os_str() == LINUX_KERNEL {
                d.kernel = g.vmlinux.clone();
                if d.memory_mib.is_none_or(|m| m < 256) {
                    eprintln!(
                        "note: Debian's vmlinux is {} MiB; give its domain memory=256 or more",
                        fs_size_mib(&g.vmlinux)
                    );
                }
            }
            if d.initrd.as_ref().is_some_and(|i| i.as_os_str() == DEFAULT_INITRD) {
                d.initrd = Some(g.initrd.clone());
            }
        }
    }
    for d in domains.iter_mut() {
        d.kernel = std::path::absolute(&d.kernel).map_err(|e| format!("{}: {e}", d.kernel.display()))?;
        if let Some(initrd) = &mut d.initrd {
            *initrd = std::path::absolute(&*initrd).map_err(|e| format!("{}: {e}", initrd.display()))?;
        }
    }
    let modules = domain::modules_for(domains)?;
    for m in &modules {
        println!("    module {} {}", m.file.display(), m.cmdline);
    }
    Ok(modules)
}

fn fs_size_mib(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len() >> 20)
}

/// `cmdline` with `exit-when-idle` appended if asked for.
fn with_exit_when_idle(cmdline: &str, exit_when_idle: bool) -> String {
    if exit_when_idle && !cmdline.split(' ').any(|w| w == EXIT_WHEN_IDLE) {
        format!("{cmdline} {EXIT_WHEN_IDLE}").trim().to_owned()
    } else {
        cmdline.to_owned()
    }
}

/// Where `iso` and `run --iso` put the ISO.
fn iso_path() -> PathBuf {
    target_dir().join("ferrovisor.iso")
}

fn build_iso(image: &Path, cmdline: &str, modules: &[Module]) -> Result<PathBuf, String> {
    let iso = iso_path();
    step(&format!("grub-mkrescue -> {} (cmdline \"{cmdline}\", {} modules)", iso.display(), modules.len()));
    qemu_tests::iso::build_iso(image, cmdline, modules, &iso)
}

/// `--domain ...,cmdline=A B` typed without quotes arrives as `...,cmdline=A` and `B`: the
/// words after a domain's `cmdline=` up to the next option (or `--`) are its command line.
fn join_domain_cmdline_words(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            out.extend_from_slice(&args[i..]);
            return out;
        }
        if open && !a.starts_with("--") {
            let last = out.last_mut().expect("open means a --domain value was pushed");
            last.push(' ');
            last.push_str(a);
            continue;
        }
        open = out.last().is_some_and(|prev| prev == "--domain") && a.contains("cmdline=")
            || a.strip_prefix("--domain=").is_some_and(|v| v.contains("cmdline="));
        out.push(a.clone());
    }
    out
}

fn iso(args: &[String]) -> Result<ExitCode, String> {
    let args = &join_domain_cmdline_words(args);
    let opts = cli::parse_with_repeated(args, &["cmdline"], &["domain"], &["exit-when-idle", "no-agent"])?;
    let cmdline = with_exit_when_idle(opts.value("cmdline").unwrap_or(DEFAULT_CMDLINE), opts.flag("exit-when-idle"));
    qemu_tests::iso::check_cmdline(&cmdline)?;
    let mut domains = parse_domains(&opts)?;
    prereq::ensure_rust_target()?;
    prereq::ensure_packages(&[prereq::GRUB_ISO])?;
    let modules = modules_with_agent(&mut domains, opts.flag("no-agent"), opts.flag("exit-when-idle"))?;
    let image = build_image(Flavor::Normal)?;
    let iso = build_iso(&image, &cmdline, &modules)?;
    println!("{}", iso.display());
    Ok(ExitCode::SUCCESS)
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let args = &join_domain_cmdline_words(args);
    let opts = cli::parse_with_repeated(
        args,
        &["smp", "memory", "cmdline", "accel", "selftest", "bochs-cpu"],
        &["domain"],
        &["iso", "uefi", "exit-when-idle", "vmx", "no-agent"],
    )?;
    let smp = opts.value("smp").map_or(Ok(4), cli::parse_smp)?;
    let requested = opts.value("accel").map_or(Ok(Accel::Tcg), Accel::parse)?;
    let mut domains = parse_domains(&opts)?;
    let memory = match opts.value("memory") {
        Some(m) => cli::parse_memory(m)?,
        // Debian's kernel is a 64 MiB module and wants a few hundred MiB of its own.
        None if domains.iter().any(|d| d.kernel.as_os_str() == LINUX_KERNEL) => {
            eprintln!("note: a `linux` domain: QEMU gets --memory 2G (default 512M)");
            "2G".to_owned()
        }
        None => "512M".to_owned(),
    };
    let uefi = opts.flag("uefi");
    // Boot-time domains travel as multiboot2 modules: only the GRUB ISO carries them.
    let use_iso = uefi || opts.flag("iso") || !domains.is_empty();
    let mut cmdline =
        with_exit_when_idle(opts.value("cmdline").unwrap_or(DEFAULT_CMDLINE), opts.flag("exit-when-idle"));
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
    let bochs_model = match (opts.flag("vmx"), opts.value("bochs-cpu")) {
        (_, Some(model)) => Some(model),
        (true, None) => Some(qemu_tests::bochs::model::VMX),
        (false, None) => None,
    };
    if let Some(model) = bochs_model {
        bochs::check_model(model)?;
        if uefi || opts.value("accel").is_some() || !opts.rest.is_empty() {
            return Err("--vmx/--bochs-cpu boot Bochs: --uefi, --accel and QEMU arguments do not apply".into());
        }
        let run = bochs::BochsRun {
            model,
            cpus: opts.value("smp").map_or(Ok(1), cli::parse_smp)?,
            memory: &memory,
            cmdline: &cmdline,
            flavor,
            no_agent: opts.flag("no-agent"),
            exit_when_idle: opts.flag("exit-when-idle"),
        };
        return bochs::run(&run, &mut domains);
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

    let modules = modules_with_agent(&mut domains, opts.flag("no-agent"), opts.flag("exit-when-idle"))?;
    let image = build_image(flavor)?;
    let boot = if use_iso {
        let iso = build_iso(&image, &cmdline, &modules)?;
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
    if !domains.is_empty() {
        println!("Guest output appears in the log prefixed with (d<domain id>).");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_when_idle_is_added_once() {
        assert_eq!(with_exit_when_idle("loglvl=info", true), "loglvl=info exit-when-idle");
        assert_eq!(with_exit_when_idle("loglvl=info", false), "loglvl=info");
        assert_eq!(with_exit_when_idle("exit-when-idle", true), "exit-when-idle");
        assert_eq!(with_exit_when_idle("", true), "exit-when-idle");
    }

    #[test]
    fn unquoted_domain_cmdline_words() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let args = v(&[
            "--memory",
            "2G",
            "--domain",
            "linux,initrd=default,memory=512,vcpus=2,cmdline=console=hvc0",
            "earlyprintk=xen",
            "--exit-when-idle",
            "--domain=k,cmdline=a",
            "b",
            "c",
            "--",
            "-s",
            "x",
        ]);
        assert_eq!(
            join_domain_cmdline_words(&args),
            v(&[
                "--memory",
                "2G",
                "--domain",
                "linux,initrd=default,memory=512,vcpus=2,cmdline=console=hvc0 earlyprintk=xen",
                "--exit-when-idle",
                "--domain=k,cmdline=a b c",
                "--",
                "-s",
                "x",
            ])
        );
        // Without cmdline= nothing is joined (a stray word stays an error for the parser).
        let args = v(&["--domain", "k,memory=5", "stray"]);
        assert_eq!(join_domain_cmdline_words(&args), args);
    }

    #[test]
    fn domains_from_options() {
        let args: Vec<String> = ["--domain", "test-guest,name=a,cmdline=test=spin ms=5", "--domain", "/k,memory=8"]
            .map(String::from)
            .to_vec();
        let opts = cli::parse_with_repeated(&args, &[], &["domain"], &[]).unwrap();
        let domains = parse_domains(&opts).unwrap();
        assert_eq!(domains.len(), 2);
        assert_eq!(domains[0].kernel, Path::new(TEST_GUEST_KERNEL));
        assert_eq!(domains[0].module_cmdline(), "domain name=a cmdline=test=spin ms=5");
        assert_eq!(domains[1].module_cmdline(), "domain memory=8");
        let args: Vec<String> =
            ["--domain", "linux,initrd=default,memory=512,vcpus=2,cmdline=console=hvc0 earlyprintk=xen"]
                .map(String::from)
                .to_vec();
        let opts = cli::parse_with_repeated(&args, &[], &["domain"], &[]).unwrap();
        let linux = &parse_domains(&opts).unwrap()[0];
        assert_eq!(linux.kernel, Path::new(LINUX_KERNEL));
        assert_eq!(linux.initrd.as_deref(), Some(Path::new(DEFAULT_INITRD)));
        assert_eq!(linux.module_cmdline(), "domain memory=512 vcpus=2 cmdline=console=hvc0 earlyprintk=xen");
        let args: Vec<String> = ["--domain", "k,cmdline=\"quoted\""].map(String::from).to_vec();
        let opts = cli::parse_with_repeated(&args, &[], &["domain"], &[]).unwrap();
        let err = parse_domains(&opts).unwrap_err();
        assert!(err.contains("quotes"), "{err}");
    }
}

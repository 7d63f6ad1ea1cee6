//! QEMU command lines for booting Ferrovisor, shared by `cargo xtask run` and
//! the tests, so both boot exactly the same machine.
//!
//! The machine: `qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp N
//! -m SIZE -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04`, then
//! either `-kernel IMAGE -append CMDLINE [-initrd MODULE]` (PVH boot) or
//! `-cdrom ISO` (GRUB; SeaBIOS, or OVMF through two pflash drives), then the
//! console: interactive (`-nographic -serial mon:stdio`) or captured
//! (`-display none -serial stdio -monitor none`, stdout redirected to a file).
//! Benchmarks add `-accel tcg,thread=single -icount shift=0,align=off,sleep=off`
//! ([`QemuConfig::icount`]).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::shell_join;

/// The QEMU binary used unless `FERROVISOR_QEMU` names another.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";
/// Debian's (package `ovmf`) UEFI code image.
pub const DEFAULT_OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// Debian's UEFI variable store template (copied per run: it is written to).
pub const DEFAULT_OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// `-icount` options of [`QemuConfig::icount`]: one instruction per virtual nanosecond, no
/// pacing to the host clock, idle time skipped.
pub const ICOUNT_ARGS: &str = "shift=0,align=off,sleep=off";
/// The CPU model of [`QemuConfig::icount`] runs: without RDRAND/RDSEED, whose host randomness
/// would change the guests' paths from run to run.
pub const ICOUNT_CPU: &str = "max,-rdrand,-rdseed";
/// The RTC of [`QemuConfig::icount`] runs: a fixed date, advancing with guest time.
pub const ICOUNT_RTC: &str = "base=2024-01-01T00:00:00,clock=vm";

/// Value the hypervisor writes to the isa-debug-exit port on success.
pub const DEBUG_EXIT_SUCCESS_VALUE: u32 = 0x10;
/// Value the hypervisor writes to the isa-debug-exit port on failure.
pub const DEBUG_EXIT_FAILURE_VALUE: u32 = 0x11;
/// QEMU's exit status after the hypervisor reported success ((0x10 << 1) | 1).
pub const EXIT_SUCCESS: i32 = 33;
/// QEMU's exit status after the hypervisor reported failure ((0x11 << 1) | 1).
pub const EXIT_FAILURE: i32 = 35;

/// What an exit status of QEMU means for Ferrovisor.
pub fn describe_exit_status(status: i32) -> &'static str {
    match status {
        EXIT_SUCCESS => "the hypervisor reported success (isa-debug-exit 0x10)",
        EXIT_FAILURE => "the hypervisor reported failure (isa-debug-exit 0x11)",
        0 => "QEMU quit normally (user quit, or a reset/triple fault with -no-reboot)",
        _ => "QEMU failed or the guest wrote an unexpected isa-debug-exit value",
    }
}

/// How QEMU executes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// Software emulation; emulates SVM with NPT (`-cpu max`). The default.
    #[default]
    Tcg,
    /// Hardware virtualization; only useful when the host's KVM offers nested
    /// SVM or VMX (`-cpu host`).
    Kvm,
}

impl Accel {
    /// Parses `tcg` or `kvm`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            other => Err(format!("unknown accelerator `{other}` (expected tcg or kvm)")),
        }
    }

    /// The accelerator to use when `requested`: KVM only if [`kvm_usable`],
    /// otherwise TCG with the reason why.
    pub fn resolve(requested: Accel) -> (Accel, Option<String>) {
        match requested {
            Accel::Tcg => (Accel::Tcg, None),
            Accel::Kvm => match kvm_usable() {
                Ok(()) => (Accel::Kvm, None),
                Err(why) => (Accel::Tcg, Some(format!("--accel kvm unavailable ({why}); using TCG"))),
            },
        }
    }

    fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        }
    }

    /// The CPU model used unless another is asked for: `max` (TCG) or `host` (KVM).
    pub fn default_cpu(self) -> &'static str {
        self.args()[3]
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

/// KVM helps only if `/dev/kvm` exists and the host CPU has SVM or VMX (so
/// the hypervisor inside finds a virtualization extension).
pub fn kvm_usable() -> Result<(), String> {
    if !Path::new("/dev/kvm").exists() {
        return Err("no /dev/kvm".into());
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").map_err(|e| format!("/proc/cpuinfo: {e}"))?;
    if cpuinfo_has_virt(&cpuinfo) {
        Ok(())
    } else {
        Err("the host CPU flags have neither svm nor vmx".into())
    }
}

/// `/proc/cpuinfo` text lists the `svm` or `vmx` flag.
pub fn cpuinfo_has_virt(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .flat_map(|l| l.split_once(':').map(|(_, f)| f).unwrap_or("").split_whitespace())
        .any(|f| f == "svm" || f == "vmx")
}

/// Firmware for booting an ISO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default (GRUB's i386-pc part of the ISO).
    Bios,
    /// OVMF (GRUB's x86_64-efi part of the ISO).
    Uefi {
        /// Read-only code image.
        code: PathBuf,
        /// A writable copy of the variable store, private to this run.
        vars: PathBuf,
    },
}

impl Firmware {
    /// UEFI firmware with a fresh copy of the variable store in `dir`. Paths
    /// come from `FERROVISOR_OVMF_CODE` / `FERROVISOR_OVMF_VARS` or Debian's.
    pub fn uefi_in(dir: &Path) -> Result<Firmware, String> {
        let code = std::env::var_os("FERROVISOR_OVMF_CODE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OVMF_CODE));
        let template = std::env::var_os("FERROVISOR_OVMF_VARS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_OVMF_VARS));
        for p in [&code, &template] {
            if !p.is_file() {
                return Err(format!("UEFI firmware file {} is missing (Debian package `ovmf`)", p.display()));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy(&template, &vars)
            .map_err(|e| format!("copying {} to {}: {e}", template.display(), vars.display()))?;
        Ok(Firmware::Uefi { code, vars })
    }
}

/// What QEMU boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// `-kernel IMAGE -append CMDLINE [-initrd MODULE]`: QEMU's PVH loader.
    Kernel {
        /// The hypervisor ELF image.
        image: PathBuf,
        /// The hypervisor command line.
        cmdline: String,
        /// One boot module (PVH allows one through QEMU).
        initrd: Option<PathBuf>,
    },
    /// `-cdrom ISO`: GRUB loads the image with multiboot2.
    Cdrom {
        /// The GRUB ISO.
        iso: PathBuf,
        /// BIOS or UEFI.
        firmware: Firmware,
    },
}

/// Where the serial console goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// On the terminal with the QEMU monitor multiplexed (Ctrl-A X quits).
    Interactive,
    /// Serial on QEMU's stdout (redirect it to a file), no display; the monitor on
    /// [`QemuConfig::monitor`]'s socket if given, else none.
    Captured,
}

/// One QEMU machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    /// The QEMU binary.
    pub qemu: OsString,
    /// What to boot.
    pub boot: Boot,
    /// Number of CPUs.
    pub smp: u32,
    /// Memory size in QEMU's syntax (`512M`, `5G`).
    pub memory: String,
    /// Accelerator (already resolved, see [`Accel::resolve`]).
    pub accel: Accel,
    /// CPU model and features (`-cpu`), e.g. `qemu64,-svm`; `None`: the accelerator's
    /// default (`max` for TCG, `host` for KVM).
    pub cpu: Option<String>,
    /// Console mode.
    pub console: Console,
    /// Deterministic instruction counting for benchmarks (TCG only): `-accel tcg,thread=single`
    /// and `-icount` [`ICOUNT_ARGS`], so guest time (TSC, timers) advances by one nanosecond
    /// per instruction executed and skips idle periods at once; the CPU model defaults to
    /// [`ICOUNT_CPU`] and the RTC is [`ICOUNT_RTC`], so that runs repeat exactly.
    pub icount: bool,
    /// One host thread runs all the CPUs in turn (`-accel tcg,thread=single`, TCG only):
    /// QEMU's CPU loop is then interrupted constantly (every switch between CPUs), which
    /// exposes emulation paths that multi-threaded TCG reaches only rarely.
    pub round_robin: bool,
    /// A Unix socket for QEMU's human monitor (captured console only), through which a hung
    /// run's CPU state is read ([`crate::monitor`]).
    pub monitor: Option<PathBuf>,
    /// Extra arguments appended last.
    pub extra_args: Vec<OsString>,
}

impl QemuConfig {
    /// A machine with the defaults of `cargo xtask run`: 4 CPUs, 512M, TCG,
    /// the QEMU from `FERROVISOR_QEMU` or `qemu-system-x86_64`.
    pub fn new(boot: Boot) -> Self {
        QemuConfig {
            qemu: std::env::var_os("FERROVISOR_QEMU").unwrap_or_else(|| DEFAULT_QEMU.into()),
            boot,
            smp: 4,
            memory: "512M".into(),
            accel: Accel::Tcg,
            cpu: None,
            console: Console::Captured,
            icount: false,
            round_robin: false,
            monitor: None,
            extra_args: Vec::new(),
        }
    }

    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |s: &str| a.push(s.into());
        push("-machine");
        push("q35");
        let [accel_opt, accel, cpu_opt, default_cpu] = self.accel.args();
        push(accel_opt);
        if self.icount || self.round_robin {
            push("tcg,thread=single");
        } else {
            push(accel);
        }
        push(cpu_opt);
        push(self.cpu.as_deref().unwrap_or(if self.icount { ICOUNT_CPU } else { default_cpu }));
        if self.icount {
            push("-icount");
            push(ICOUNT_ARGS);
            push("-rtc");
            push(ICOUNT_RTC);
        }
        push("-smp");
        push(&self.smp.to_string());
        push("-m");
        push(&self.memory);
        push("-no-reboot");
        push("-device");
        push("isa-debug-exit,iobase=0xf4,iosize=0x04");
        match &self.boot {
            Boot::Kernel { image, cmdline, initrd } => {
                a.push("-kernel".into());
                a.push(image.into());
                a.push("-append".into());
                a.push(cmdline.into());
                if let Some(initrd) = initrd {
                    a.push("-initrd".into());
                    a.push(initrd.into());
                }
            }
            Boot::Cdrom { iso, firmware } => {
                if let Firmware::Uefi { code, vars } = firmware {
                    a.push("-drive".into());
                    a.push(pflash_arg(0, true, code));
                    a.push("-drive".into());
                    a.push(pflash_arg(1, false, vars));
                }
                a.push("-cdrom".into());
                a.push(iso.into());
            }
        }
        match self.console {
            Console::Interactive => {
                for s in ["-nographic", "-serial", "mon:stdio"] {
                    a.push(s.into());
                }
            }
            Console::Captured => {
                for s in ["-display", "none", "-serial", "stdio", "-monitor"] {
                    a.push(s.into());
                }
                a.push(match &self.monitor {
                    Some(socket) => {
                        let mut arg = OsString::from("unix:");
                        arg.push(socket);
                        arg.push(",server=on,wait=off");
                        arg
                    }
                    None => "none".into(),
                });
            }
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }

    /// A [`Command`] ready to spawn (stdio left to the caller).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.qemu);
        c.args(self.args());
        c
    }

    /// The command line, shell-quoted, for logs and failure reports.
    pub fn command_line(&self) -> String {
        shell_join(std::iter::once(self.qemu.clone()).chain(self.args()))
    }
}

/// `if=pflash,format=raw,unit=N[,readonly=on],file=PATH` (commas in the path
/// doubled, as QEMU's option syntax requires).
fn pflash_arg(unit: u32, readonly: bool, file: &Path) -> OsString {
    let mut s =
        OsString::from(format!("if=pflash,format=raw,unit={unit}{},file=", if readonly { ",readonly=on" } else { "" }));
    s.push(file.to_string_lossy().replace(',', ",,"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(c: &QemuConfig) -> Vec<String> {
        c.args().iter().map(|s| s.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn kernel_boot_captured() {
        let mut c = QemuConfig::new(Boot::Kernel {
            image: "/img".into(),
            cmdline: "selftest=boot loglvl=info".into(),
            initrd: Some("/mod".into()),
        });
        c.smp = 2;
        c.memory = "5G".into();
        let a = strs(&c);
        let joined = a.join(" ");
        assert!(joined.starts_with(
            "-machine q35 -accel tcg -cpu max -smp 2 -m 5G -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -kernel /img -append"
        ));
        let i = a.iter().position(|s| s == "-append").unwrap();
        assert_eq!(a[i + 1], "selftest=boot loglvl=info");
        assert_eq!(a[i + 2..i + 4], ["-initrd", "/mod"]);
        assert!(joined.ends_with("-display none -serial stdio -monitor none"));
        assert!(c.command_line().contains("-append 'selftest=boot loglvl=info'"));
    }

    #[test]
    fn captured_console_with_a_monitor_socket() {
        let mut c = QemuConfig::new(Boot::Kernel { image: "/img".into(), cmdline: String::new(), initrd: None });
        c.monitor = Some("/tmp/x.hmp".into());
        assert!(strs(&c).join(" ").ends_with("-serial stdio -monitor unix:/tmp/x.hmp,server=on,wait=off"));
    }

    #[test]
    fn uefi_iso_interactive_kvm() {
        let mut c = QemuConfig::new(Boot::Cdrom {
            iso: "/x.iso".into(),
            firmware: Firmware::Uefi { code: "/code.fd".into(), vars: "/tmp/a,b/vars.fd".into() },
        });
        c.accel = Accel::Kvm;
        c.console = Console::Interactive;
        c.extra_args = vec!["-s".into()];
        let joined = strs(&c).join(" ");
        assert!(joined.contains("-accel kvm -cpu host"));
        assert!(joined.contains(
            "-drive if=pflash,format=raw,unit=0,readonly=on,file=/code.fd -drive if=pflash,format=raw,unit=1,file=/tmp/a,,b/vars.fd -cdrom /x.iso"
        ));
        assert!(joined.ends_with("-nographic -serial mon:stdio -s"));
        assert!(!joined.contains("-kernel"));
    }

    #[test]
    fn cpu_model_override() {
        let mut c = QemuConfig::new(Boot::Cdrom { iso: "/x.iso".into(), firmware: Firmware::Bios });
        assert!(strs(&c).join(" ").contains("-accel tcg -cpu max -smp"));
        c.cpu = Some("qemu64,-svm".into());
        let joined = strs(&c).join(" ");
        assert!(joined.contains("-accel tcg -cpu qemu64,-svm -smp"), "{joined}");
        assert_eq!(Accel::Kvm.default_cpu(), "host");
    }

    #[test]
    fn icount_is_single_threaded_tcg() {
        let mut c = QemuConfig::new(Boot::Cdrom { iso: "/x.iso".into(), firmware: Firmware::Bios });
        c.accel = Accel::Kvm;
        c.icount = true;
        let joined = strs(&c).join(" ");
        assert!(
            joined.starts_with(
                "-machine q35 -accel tcg,thread=single -cpu max,-rdrand,-rdseed -icount shift=0,align=off,sleep=off \
                 -rtc base=2024-01-01T00:00:00,clock=vm -smp"
            ),
            "{joined}"
        );
    }

    #[test]
    fn round_robin_is_single_threaded_tcg_without_icount() {
        let mut c = QemuConfig::new(Boot::Cdrom { iso: "/x.iso".into(), firmware: Firmware::Bios });
        c.round_robin = true;
        let joined = strs(&c).join(" ");
        assert!(joined.starts_with("-machine q35 -accel tcg,thread=single -cpu max -smp"), "{joined}");
        assert!(!joined.contains("-icount"), "{joined}");
    }

    #[test]
    fn bios_iso() {
        let c = QemuConfig::new(Boot::Cdrom { iso: "/x.iso".into(), firmware: Firmware::Bios });
        let joined = strs(&c).join(" ");
        assert!(joined.contains("-smp 4 -m 512M"));
        assert!(!joined.contains("pflash"));
        assert!(joined.contains("-cdrom /x.iso"));
    }

    #[test]
    fn accel_parsing_and_cpuinfo() {
        assert_eq!(Accel::parse("tcg"), Ok(Accel::Tcg));
        assert_eq!(Accel::parse("kvm"), Ok(Accel::Kvm));
        assert!(Accel::parse("hvf").is_err());
        assert_eq!(Accel::resolve(Accel::Tcg), (Accel::Tcg, None));
        assert!(cpuinfo_has_virt("processor\t: 0\nflags\t\t: fpu vme svm lm\n"));
        assert!(cpuinfo_has_virt("flags : vmx\n"));
        assert!(!cpuinfo_has_virt("flags\t\t: fpu vme lm svm_lock\nvmx flags : ept\n"));
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(EXIT_SUCCESS, ((DEBUG_EXIT_SUCCESS_VALUE << 1) | 1) as i32);
        assert_eq!(EXIT_FAILURE, ((DEBUG_EXIT_FAILURE_VALUE << 1) | 1) as i32);
        assert!(describe_exit_status(33).contains("success"));
    }
}

//! Prerequisites: the `x86_64-unknown-none` Rust target and the Debian
//! packages a subcommand needs. Missing packages are installed with apt-get
//! when running as root; otherwise the exact `sudo apt-get install` command
//! is printed and the subcommand stops.

use std::path::Path;
use std::process::Command;

use crate::util::{run_status, step};

/// The bare-metal Rust target.
pub const BARE_METAL_TARGET: &str = "x86_64-unknown-none";

/// How to see that a package is installed.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// An executable on `PATH`.
    Binary(&'static str),
    /// A file or directory.
    Path(&'static str),
}

impl Probe {
    fn present(self) -> bool {
        match self {
            Probe::Binary(name) => find_in_path(name),
            Probe::Path(p) => Path::new(p).exists(),
        }
    }
}

/// A Debian package and what shows it is there.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    name: &'static str,
    probes: &'static [Probe],
}

/// QEMU (SeaBIOS and the option ROMs come with it as dependencies).
pub const QEMU: &[Package] = &[Package { name: "qemu-system-x86", probes: &[Probe::Binary("qemu-system-x86_64")] }];

/// What `grub-mkrescue` needs for a BIOS + UEFI ISO.
pub const GRUB_ISO: &[Package] = &[
    Package { name: "grub-common", probes: &[Probe::Binary("grub-mkrescue")] },
    Package { name: "grub-pc-bin", probes: &[Probe::Path("/usr/lib/grub/i386-pc")] },
    Package { name: "grub-efi-amd64-bin", probes: &[Probe::Path("/usr/lib/grub/x86_64-efi")] },
    Package { name: "xorriso", probes: &[Probe::Binary("xorriso")] },
    Package { name: "mtools", probes: &[Probe::Binary("mformat")] },
];

/// What fetching Debian's kernel needs besides apt-get, dpkg-deb and tar (always on Debian):
/// `xz` to decompress the kernel's payload.
pub const LINUX_FETCH: &[Package] = &[Package { name: "xz-utils", probes: &[Probe::Binary("xz")] }];

/// GNU cpio: the initramfs writer's unit test lists its archive with `cpio -t` too.
pub const CPIO: &[Package] = &[Package { name: "cpio", probes: &[Probe::Binary("cpio")] }];

/// Bochs for the Intel VT-x tests and `run --vmx`: the emulator, its text-mode display
/// (`bochs-term`, which also keeps apt from choosing the GTK one), its BIOS and VGA BIOS.
pub const BOCHS: &[Package] = &[
    Package { name: "bochs", probes: &[Probe::Binary("bochs")] },
    Package { name: "bochs-term", probes: &[Probe::Path("/usr/lib/x86_64-linux-gnu/bochs/plugins/libbx_term_gui.so")] },
    Package { name: "bochsbios", probes: &[Probe::Path(qemu_tests::bochs::DEFAULT_BIOS)] },
    Package { name: "vgabios", probes: &[Probe::Path("/usr/share/vgabios/vgabios.bin")] },
];

/// UEFI firmware for QEMU.
pub const OVMF: &[Package] = &[Package {
    name: "ovmf",
    probes: &[Probe::Path(qemu_tests::qemu::DEFAULT_OVMF_CODE), Probe::Path(qemu_tests::qemu::DEFAULT_OVMF_VARS)],
}];

fn find_in_path(name: &str) -> bool {
    locate(name).is_some()
}

/// The full path of executable `name` on `PATH`.
pub fn locate(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Adds the bare-metal target with rustup if it is not installed.
pub fn ensure_rust_target() -> Result<(), String> {
    let listed =
        Command::new("rustup").args(["target", "list", "--installed"]).current_dir(crate::util::root()).output();
    let out = match listed {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Err(format!(
                "`rustup target list --installed` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
        Err(_) => {
            eprintln!("note: rustup not found; assuming the toolchain has the {BARE_METAL_TARGET} target");
            return Ok(());
        }
    };
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == BARE_METAL_TARGET) {
        return Ok(());
    }
    step(&format!("rustup target add {BARE_METAL_TARGET}"));
    let mut c = Command::new("rustup");
    c.args(["target", "add", BARE_METAL_TARGET]).current_dir(crate::util::root());
    run_status(&mut c)
}

/// The effective user id (from /proc, else `id -u`).
fn euid() -> Option<u32> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(2).and_then(|s| s.parse().ok());
        }
    }
    let out = Command::new("id").arg("-u").output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The packages of `groups` that are missing, without duplicates.
fn missing(groups: &[&[Package]]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for p in groups.iter().flat_map(|g| g.iter()) {
        if !p.probes.iter().all(|probe| probe.present()) && !names.contains(&p.name) {
            names.push(p.name);
        }
    }
    names
}

/// The command that installs `packages`.
pub fn install_command(packages: &[&str], sudo: bool) -> String {
    format!("{}apt-get install -y --no-install-recommends {}", if sudo { "sudo " } else { "" }, packages.join(" "))
}

/// Makes sure every package of `groups` is installed.
pub fn ensure_packages(groups: &[&[Package]]) -> Result<(), String> {
    let need = missing(groups);
    if need.is_empty() {
        return Ok(());
    }
    if euid() != Some(0) {
        return Err(format!(
            "missing Debian packages: {}. Install them with:\n    {}",
            need.join(", "),
            install_command(&need, true)
        ));
    }
    if !find_in_path("apt-get") {
        return Err(format!(
            "missing packages {} and no apt-get to install them (this needs a Debian-like system)",
            need.join(", ")
        ));
    }
    step("apt-get update");
    let mut update = Command::new("apt-get");
    update.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
    run_status(&mut update)?;
    step(&install_command(&need, false));
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "--no-install-recommends"]).args(&need).env("DEBIAN_FRONTEND", "noninteractive");
    run_status(&mut install)?;
    let still = missing(groups);
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get install: {}", still.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_command_text() {
        assert_eq!(
            install_command(&["qemu-system-x86", "ovmf"], true),
            "sudo apt-get install -y --no-install-recommends qemu-system-x86 ovmf"
        );
    }

    #[test]
    fn probes() {
        assert!(Probe::Path("/").present());
        assert!(!Probe::Path("/nonexistent/ferrovisor").present());
        assert!(Probe::Binary("sh").present());
        assert!(!Probe::Binary("no-such-binary-ferrovisor").present());
    }
}

//! The QEMU test harness of Ferrovisor, and the QEMU/GRUB toolkit that
//! `cargo xtask` shares with it.
//!
//! Tests in `tests/*.rs` boot real hypervisor images under QEMU and judge them
//! by behaviour only: QEMU's exit status (the hypervisor writes 0x10 = success
//! or 0x11 = failure to the isa-debug-exit port, so QEMU exits with 33 or 35;
//! anything else, a timeout included, fails) and the machine-readable
//! `SELFTEST` lines that the self-test image prints on the serial port; the
//! domain tests boot the normal image with test-guest domains as GRUB modules
//! and read the `DOMAIN`/`DOMAINS` lines, the guests' `(dN) ` console lines and
//! their `GUEST` result lines ([`domain_log`]). The Intel VT-x tests run under
//! Bochs instead ([`bochs`]), which has no exit-status channel: they are judged
//! by the hypervisor's `FERROVISOR STOP outcome=` line.
//!
//! Run them with `cargo xtask test`, which builds the images and passes them
//! in the environment:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `FERROVISOR_IMAGE` | the normal image (required) |
//! | `FERROVISOR_SELFTEST_IMAGE` | the image built with `--features selftest` (required) |
//! | `FERROVISOR_TEST_GUEST` | the test guest kernel, `guests/test-guest` (required by the domain tests) |
//! | `FERROVISOR_ACCEL` | `tcg` (default) or `kvm` (used only if KVM offers SVM/VMX) |
//! | `FERROVISOR_TEST_DIR` | where per-test directories go (default `target/qemu-tests`) |
//! | `FERROVISOR_TIMEOUT_SCALE` | multiplies every timeout (default 1; e.g. 3 on a slow host) |
//! | `FERROVISOR_QEMU` | the QEMU binary (default `qemu-system-x86_64`) |
//! | `FERROVISOR_OVMF_CODE`, `FERROVISOR_OVMF_VARS` | UEFI firmware (default Debian's `ovmf` 4M files) |
//! | `FERROVISOR_BOCHS` | the Bochs binary for the Bochs tests ([`bochs`]; default `bochs`) |
//! | `FERROVISOR_BOCHS_BIOS`, `FERROVISOR_BOCHS_VGA_BIOS` | Bochs' BIOS images (default Debian's `bochsbios`/`vgabios` files) |
//! | `FERROVISOR_LINUX_VMLINUX` | Debian's kernel as an ELF vmlinux (required by the Linux tests, [`linux`]) |
//! | `FERROVISOR_BUSYBOX` | Debian's static busybox, for the Linux tests' initramfs ([`initramfs`]) |
//! | `FERROVISOR_LINUX_INITRD` | the default initramfs `cargo xtask linux` built (informational) |
//! | `FERROVISOR_LINUX_FETCH_ERROR` | set by xtask when fetching the kernel failed; the Linux tests fail with it |

pub mod bochs;
pub mod checks;
pub mod domain;
pub mod domain_log;
pub mod harness;
pub mod image;
pub mod initramfs;
pub mod iso;
pub mod linux;
pub mod monitor;
pub mod qemu;
pub mod selftest;
pub mod util;

use std::path::{Path, PathBuf};

pub use bochs::BochsVm;
pub use domain::DomainSpec;
pub use domain_log::{ConsoleLine, DomainReport, DomainsDone};
pub use harness::{Outcome, RunResult, Vm};
pub use iso::{build_iso, Module};
pub use qemu::{Accel, EXIT_FAILURE, EXIT_SUCCESS};
pub use selftest::SelftestLine;

/// Environment variable naming the normal hypervisor image.
pub const ENV_IMAGE: &str = "FERROVISOR_IMAGE";
/// Environment variable naming the self-test hypervisor image.
pub const ENV_SELFTEST_IMAGE: &str = "FERROVISOR_SELFTEST_IMAGE";
/// Environment variable naming the test guest kernel (`guests/test-guest`).
pub const ENV_TEST_GUEST: &str = "FERROVISOR_TEST_GUEST";
/// The dom0 agent kernel (`cargo build -p dom0-agent --release --target x86_64-unknown-none`).
pub const ENV_DOM0_AGENT: &str = "FERROVISOR_DOM0_AGENT";
/// Environment variable choosing the accelerator (`tcg` or `kvm`).
pub const ENV_ACCEL: &str = "FERROVISOR_ACCEL";
/// Environment variable naming the directory for per-test directories.
pub const ENV_TEST_DIR: &str = "FERROVISOR_TEST_DIR";
/// Environment variable scaling every timeout.
pub const ENV_TIMEOUT_SCALE: &str = "FERROVISOR_TIMEOUT_SCALE";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("qemu-tests lives inside the workspace").to_path_buf()
}

/// Where per-test directories go: `FERROVISOR_TEST_DIR` or `target/qemu-tests`.
pub fn test_root() -> PathBuf {
    std::env::var_os(ENV_TEST_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("qemu-tests"))
}

fn image_from_env(var: &str, what: &str) -> PathBuf {
    let Some(path) = std::env::var_os(var) else {
        panic!(
            "{var} is not set: the QEMU tests need the {what}. Run them with `cargo xtask test`, \
             which builds the images and the test guest and sets {ENV_IMAGE}, {ENV_SELFTEST_IMAGE} and \
             {ENV_TEST_GUEST}."
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{var}={} does not exist: run the QEMU tests with `cargo xtask test`, which builds it",
        path.display()
    );
    path
}

/// The normal image (`FERROVISOR_IMAGE`); panics with advice if unset.
pub fn image() -> PathBuf {
    image_from_env(ENV_IMAGE, "normal hypervisor image")
}

/// The self-test image (`FERROVISOR_SELFTEST_IMAGE`); panics with advice if unset.
pub fn selftest_image() -> PathBuf {
    image_from_env(ENV_SELFTEST_IMAGE, "self-test hypervisor image (--features selftest)")
}

/// The test guest kernel (`FERROVISOR_TEST_GUEST`); panics with advice if unset.
pub fn test_guest() -> PathBuf {
    image_from_env(
        ENV_TEST_GUEST,
        "test guest kernel (cargo build -p test-guest --release --target x86_64-unknown-none)",
    )
}

/// The dom0 agent kernel (`FERROVISOR_DOM0_AGENT`); panics with advice if unset.
pub fn dom0_agent() -> PathBuf {
    image_from_env(
        ENV_DOM0_AGENT,
        "dom0 agent kernel (cargo build -p dom0-agent --release --target x86_64-unknown-none)",
    )
}

/// The accelerator for test runs: `FERROVISOR_ACCEL`, KVM only if usable.
pub fn accel() -> Accel {
    let requested = match std::env::var(ENV_ACCEL) {
        Ok(s) if !s.is_empty() => Accel::parse(&s).unwrap_or_else(|e| panic!("{ENV_ACCEL}: {e}")),
        _ => Accel::Tcg,
    };
    harness::resolve_accel(requested)
}

/// The factor every timeout is multiplied by (`FERROVISOR_TIMEOUT_SCALE`, default 1).
pub fn timeout_scale() -> f64 {
    match std::env::var(ENV_TIMEOUT_SCALE) {
        Ok(s) if !s.is_empty() => match s.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => f,
            _ => panic!("{ENV_TIMEOUT_SCALE}={s:?} is not a positive number"),
        },
        _ => 1.0,
    }
}

//! Paths, cargo invocations and running commands.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use qemu_tests::util::shell_join;

use crate::prereq::BARE_METAL_TARGET;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives inside the workspace").to_path_buf()
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// The cargo that runs us (`$CARGO`), or `cargo`.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Prints a step header.
pub fn step(what: &str) {
    println!("==> {what}");
    let _ = std::io::stdout().flush();
}

/// Shell-quoted text of `c`.
pub fn describe(c: &Command) -> String {
    // `$CARGO` is a long toolchain path; show it as plain `cargo`.
    let program = c.get_program();
    let program = if std::env::var_os("CARGO").is_some_and(|cargo| cargo == program) {
        std::ffi::OsStr::new("cargo")
    } else {
        program
    };
    shell_join(std::iter::once(program).chain(c.get_args()))
}

/// Runs `c` with inherited stdio; an error unless it succeeds.
pub fn run_status(c: &mut Command) -> Result<(), String> {
    let status = c.status().map_err(|e| format!("cannot run `{}`: {e}", describe(c)))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed ({status})", describe(c)))
    }
}

/// Prints `c`, then runs it.
pub fn run_step(c: &mut Command) -> Result<(), String> {
    step(&describe(c));
    run_status(c)
}

/// Test counts summed over libtest's `test result:` lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TestCounts {
    /// Tests passed.
    pub passed: u64,
    /// Tests failed.
    pub failed: u64,
    /// Tests ignored.
    pub ignored: u64,
    /// How many test binaries reported.
    pub binaries: u64,
}

impl TestCounts {
    /// Adds one `test result: ok. 3 passed; 0 failed; 1 ignored; ...` line.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result:") else {
            return;
        };
        self.binaries += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Prints `c`, runs it with stdout echoed line by line and counted for
/// `test result:` lines; returns the counts and whether it succeeded.
pub fn run_tests(c: &mut Command) -> (TestCounts, Result<(), String>) {
    step(&describe(c));
    let mut counts = TestCounts::default();
    let mut child = match c.stdout(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(e) => return (counts, Err(format!("cannot run `{}`: {e}", describe(c)))),
    };
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            counts.add_line(&text);
            let mut lock = stdout.lock();
            let _ = lock.write_all(&line);
            let _ = lock.write_all(b"\n");
            let _ = lock.flush();
        }
    }
    let result = match child.wait() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`{}` failed ({s})", describe(c))),
        Err(e) => Err(format!("waiting for `{}`: {e}", describe(c))),
    };
    (counts, result)
}

/// Which hypervisor image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The normal image.
    Normal,
    /// The image with `--features selftest`, in its own target directory.
    Selftest,
}

impl Flavor {
    /// The target directory this flavor builds into.
    pub fn target_dir(self) -> PathBuf {
        match self {
            Flavor::Normal => target_dir(),
            Flavor::Selftest => target_dir().join("selftest"),
        }
    }

    /// Where the built image lands.
    pub fn image_path(self) -> PathBuf {
        self.target_dir().join(BARE_METAL_TARGET).join("release").join("hypervisor")
    }

    /// The cargo command building it.
    pub fn build_command(self) -> Command {
        let mut c = cargo();
        c.args(["build", "-p", "hypervisor", "--release", "--target", BARE_METAL_TARGET]);
        if self == Flavor::Selftest {
            c.args(["--features", "selftest", "--target-dir"]);
            c.arg(self.target_dir());
        }
        c
    }
}

/// Builds the image and returns its path.
pub fn build_image(flavor: Flavor) -> Result<PathBuf, String> {
    run_step(&mut flavor.build_command())?;
    let image = flavor.image_path();
    if image.is_file() {
        Ok(image)
    } else {
        Err(format!("the build succeeded but {} does not exist", image.display()))
    }
}

/// The bare-metal binaries besides the hypervisor: each a PVH kernel of its own package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// `guests/test-guest`.
    TestGuest,
    /// `dom0-agent`, the control domain.
    Dom0Agent,
}

impl Kernel {
    fn package(self) -> &'static str {
        match self {
            Kernel::TestGuest => "test-guest",
            Kernel::Dom0Agent => "dom0-agent",
        }
    }

    /// Where the kernel lands.
    pub fn path(self) -> PathBuf {
        target_dir().join(BARE_METAL_TARGET).join("release").join(self.package())
    }

    /// The cargo command building it.
    pub fn build_command(self) -> Command {
        let mut c = cargo();
        c.args(["build", "-p", self.package(), "--release", "--target", BARE_METAL_TARGET]);
        c
    }

    /// Builds it and returns its path.
    pub fn build(self) -> Result<PathBuf, String> {
        run_step(&mut self.build_command())?;
        let path = self.path();
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("the build succeeded but {} does not exist", path.display()))
        }
    }
}

/// Builds the test guest and returns its path.
pub fn build_test_guest() -> Result<PathBuf, String> {
    Kernel::TestGuest.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_lines() {
        let mut c = TestCounts::default();
        c.add_line("test result: ok. 24 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        c.add_line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 9.1s");
        c.add_line("running 5 tests");
        assert_eq!(c, TestCounts { passed: 27, failed: 2, ignored: 1, binaries: 2 });
    }

    #[test]
    fn image_paths() {
        let normal = Flavor::Normal.image_path();
        let selftest = Flavor::Selftest.image_path();
        assert!(normal.ends_with("x86_64-unknown-none/release/hypervisor"));
        assert!(selftest.ends_with("selftest/x86_64-unknown-none/release/hypervisor"));
        let cmd = describe(&Flavor::Selftest.build_command());
        assert!(
            cmd.contains("build -p hypervisor --release --target x86_64-unknown-none --features selftest --target-dir")
        );
    }

    #[test]
    fn kernel_builds() {
        assert!(Kernel::TestGuest.path().ends_with("x86_64-unknown-none/release/test-guest"));
        assert!(describe(&Kernel::TestGuest.build_command())
            .ends_with("build -p test-guest --release --target x86_64-unknown-none"));
        assert!(Kernel::Dom0Agent.path().ends_with("x86_64-unknown-none/release/dom0-agent"));
        assert!(describe(&Kernel::Dom0Agent.build_command())
            .ends_with("build -p dom0-agent --release --target x86_64-unknown-none"));
    }
}

//! `cargo xtask test`: everything CI checks, with a summary at the end.
//!
//! Steps: prerequisites; host unit tests; clippy for host crates, for the
//! bare-metal crates (hypervisor, dom0 agent, test guest) and for the self-test
//! build; both images and the test guest; Debian's kernel and busybox (`cargo xtask
//! linux`, cached); the QEMU tests (`cargo test -p qemu-tests -- --test-threads=2`
//! with the image, guest and kernel paths in the environment). `--qemu-only` skips
//! the host unit tests and clippy (for iterating on one QEMU test). A failed step does not stop the independent steps after it;
//! the QEMU tests are skipped when there are no images to boot.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use qemu_tests::qemu::Accel;

use crate::prereq::{self, BARE_METAL_TARGET};
use crate::util::{build_image, build_test_guest, cargo, run_step, run_tests, target_dir, Flavor, Kernel, TestCounts};

#[derive(Debug)]
enum Status {
    Passed,
    Failed(String),
    Skipped(String),
}

#[derive(Debug)]
struct Step {
    name: &'static str,
    status: Status,
    counts: Option<TestCounts>,
    time: Duration,
}

#[derive(Debug, Default)]
struct Report {
    steps: Vec<Step>,
}

impl Report {
    fn record(
        &mut self,
        name: &'static str,
        start: Instant,
        result: Result<(), String>,
        counts: Option<TestCounts>,
    ) -> bool {
        let ok = result.is_ok();
        if let Err(e) = &result {
            eprintln!("xtask: {name} FAILED: {e}");
        }
        self.steps.push(Step {
            name,
            status: match result {
                Ok(()) => Status::Passed,
                Err(e) => Status::Failed(e),
            },
            counts,
            time: start.elapsed(),
        });
        ok
    }

    fn skip(&mut self, name: &'static str, why: &str) {
        self.steps.push(Step { name, status: Status::Skipped(why.to_owned()), counts: None, time: Duration::ZERO });
    }

    fn failed(&self) -> usize {
        self.steps.iter().filter(|s| matches!(s.status, Status::Failed(_))).count()
    }

    fn print(&self, total: Duration) {
        println!();
        println!("==> xtask test summary");
        for s in &self.steps {
            let (tag, detail) = match &s.status {
                Status::Passed => ("PASS", String::new()),
                Status::Failed(e) => ("FAIL", first_line(e)),
                Status::Skipped(why) => ("SKIP", why.clone()),
            };
            let counts = s
                .counts
                .map(|c| format!("  [tests: {} passed, {} failed, {} ignored]", c.passed, c.failed, c.ignored))
                .unwrap_or_default();
            println!("  {tag}  {:<42} {:>7.1} s{counts}", s.name, s.time.as_secs_f64());
            if !detail.is_empty() {
                println!("        {detail}");
            }
        }
        let failed = self.failed();
        let steps = self.steps.len();
        // The plain closing line CI reads: every test counted, and each failed step counts
        // as a failure even when it ran no test (a build or clippy step).
        let (passed, failed_tests) =
            self.steps.iter().filter_map(|s| s.counts).fold((0, 0), |(p, f), c| (p + c.passed, f + c.failed));
        let failed_steps_without_counts =
            self.steps.iter().filter(|s| matches!(s.status, Status::Failed(_)) && s.counts.is_none()).count();
        if failed == 0 {
            println!("xtask test: OK, all {steps} steps passed in {:.0} s", total.as_secs_f64());
        } else {
            println!("xtask test: FAILED, {failed} of {steps} steps failed ({:.0} s)", total.as_secs_f64());
        }
        println!("tests: {passed} passed, {} failed", failed_tests + failed_steps_without_counts as u64);
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

fn timed(f: impl FnOnce() -> Result<(), String>) -> (Instant, Result<(), String>) {
    let start = Instant::now();
    let r = f();
    (start, r)
}

/// Runs the whole suite.
pub fn test(args: &[String]) -> Result<ExitCode, String> {
    let opts = crate::cli::parse(args, &["accel"], &["qemu-only"])?;
    let qemu_only = opts.flag("qemu-only");
    let accel = opts.value("accel").map_or(Ok(Accel::Tcg), Accel::parse)?;
    let all = Instant::now();
    let mut report = Report::default();

    // 1. Prerequisites: without them nothing else can run.
    let (start, r) = timed(|| {
        prereq::ensure_rust_target()?;
        prereq::ensure_packages(&[
            prereq::QEMU,
            prereq::GRUB_ISO,
            prereq::OVMF,
            prereq::BOCHS,
            prereq::LINUX_FETCH,
            prereq::CPIO,
        ])
    });
    if !report.record("prerequisites", start, r, None) {
        report.print(all.elapsed());
        return Ok(ExitCode::FAILURE);
    }

    if qemu_only {
        report.skip("host unit tests", "--qemu-only");
        report.skip("clippy", "--qemu-only");
    } else {
        host_checks(&mut report);
    }

    // 5. Both images and the test guest.
    let start = Instant::now();
    let normal = build_image(Flavor::Normal);
    report.record("build image", start, normal.as_ref().map(|_| ()).map_err(Clone::clone), None);
    let start = Instant::now();
    let selftest = build_image(Flavor::Selftest);
    report.record("build self-test image", start, selftest.as_ref().map(|_| ()).map_err(Clone::clone), None);
    let start = Instant::now();
    let guest = build_test_guest();
    report.record("build test guest", start, guest.as_ref().map(|_| ()).map_err(Clone::clone), None);
    let start = Instant::now();
    let agent = Kernel::Dom0Agent.build();
    report.record("build dom0 agent", start, agent.as_ref().map(|_| ()).map_err(Clone::clone), None);

    // 6. Debian's kernel for the Linux tests (a download the first time, then the cache).
    let start = Instant::now();
    let linux_guest = crate::linux::fetch(false);
    report.record(
        "fetch Debian Linux (cargo xtask linux)",
        start,
        linux_guest.as_ref().map(|_| ()).map_err(Clone::clone),
        None,
    );

    // 7. QEMU tests.
    match (normal, selftest) {
        (Ok(normal), Ok(selftest)) => {
            let start = Instant::now();
            let mut c: Command = cargo();
            c.args(["test", "-p", "qemu-tests", "--tests", "--no-fail-fast", "--", "--test-threads=2"]);
            c.args(&opts.rest);
            c.env(qemu_tests::ENV_IMAGE, &normal)
                .env(qemu_tests::ENV_SELFTEST_IMAGE, &selftest)
                .env(qemu_tests::ENV_ACCEL, accel.to_string())
                .env(qemu_tests::ENV_TEST_DIR, target_dir().join("qemu-tests"));
            println!("    {}={}", qemu_tests::ENV_IMAGE, normal.display());
            println!("    {}={}", qemu_tests::ENV_SELFTEST_IMAGE, selftest.display());
            // Without a test guest the domain tests fail and say why; the others still run.
            if let Ok(guest) = &guest {
                c.env(qemu_tests::ENV_TEST_GUEST, guest);
                println!("    {}={}", qemu_tests::ENV_TEST_GUEST, guest.display());
            }
            if let Ok(agent) = &agent {
                c.env(qemu_tests::ENV_DOM0_AGENT, agent);
                println!("    {}={}", qemu_tests::ENV_DOM0_AGENT, agent.display());
            }
            // Likewise the Linux tests without a kernel: they fail with the fetch error.
            match &linux_guest {
                Ok(g) => {
                    use qemu_tests::linux::{ENV_BUSYBOX, ENV_LINUX_INITRD, ENV_LINUX_VERSION, ENV_LINUX_VMLINUX};
                    for (var, value) in [
                        (ENV_LINUX_VMLINUX, g.vmlinux.as_os_str()),
                        (ENV_BUSYBOX, g.busybox.as_os_str()),
                        (ENV_LINUX_INITRD, g.initrd.as_os_str()),
                    ] {
                        c.env(var, value);
                        println!("    {var}={}", value.to_string_lossy());
                    }
                    c.env(ENV_LINUX_VERSION, &g.version);
                    c.env(qemu_tests::linux::ENV_XENSTORE_ROOT, &g.xenstore_root);
                    println!("    {}={}", qemu_tests::linux::ENV_XENSTORE_ROOT, g.xenstore_root.display());
                }
                Err(e) => {
                    c.env(qemu_tests::linux::ENV_LINUX_FETCH_ERROR, e);
                }
            }
            println!("    {}={accel}", qemu_tests::ENV_ACCEL);
            // The Bochs tests (VMX, and SVM on Bochs' ryzen) find Bochs here.
            if let Some(bochs) = prereq::locate(qemu_tests::bochs::DEFAULT_BOCHS) {
                c.env(qemu_tests::bochs::ENV_BOCHS, &bochs);
                println!("    {}={}", qemu_tests::bochs::ENV_BOCHS, bochs.display());
            }
            let (counts, r) = run_tests(&mut c);
            report.record("QEMU tests", start, r, Some(counts));
        }
        _ => report.skip("QEMU tests", "no image to boot (see the build steps above)"),
    }

    report.print(all.elapsed());
    Ok(if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Steps 2-4: host unit tests and clippy.
fn host_checks(report: &mut Report) {
    // 2. Host unit tests. hypervisor and dom0-agent are bare-metal binaries;
    //    qemu-tests' integration tests need the images (step 7), its library
    //    tests run here.
    let start = Instant::now();
    let mut c = cargo();
    c.args([
        "test",
        "--workspace",
        "--exclude",
        "hypervisor",
        "--exclude",
        "dom0-agent",
        "--exclude",
        "qemu-tests",
        "--no-fail-fast",
    ]);
    let (mut counts, mut r) = run_tests(&mut c);
    let mut c = cargo();
    c.args(["test", "-p", "qemu-tests", "--lib"]);
    let (lib_counts, lib_r) = run_tests(&mut c);
    counts.passed += lib_counts.passed;
    counts.failed += lib_counts.failed;
    counts.ignored += lib_counts.ignored;
    if r.is_ok() {
        r = lib_r;
    }
    report.record("host unit tests", start, r, Some(counts));

    // 3. Clippy, host crates (every target: lib, bins, tests).
    let (start, r) = timed(|| {
        let mut c = cargo();
        c.args([
            "clippy",
            "--workspace",
            "--exclude",
            "hypervisor",
            "--exclude",
            "dom0-agent",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]);
        run_step(&mut c)
    });
    report.record("clippy (host crates)", start, r, None);

    // 4. Clippy, bare-metal crates, normal and self-test configurations.
    let (start, r) = timed(|| {
        let mut c = cargo();
        c.args([
            "clippy",
            "-p",
            "hypervisor",
            "-p",
            "dom0-agent",
            "-p",
            "test-guest",
            "--target",
            BARE_METAL_TARGET,
            "--",
            "-D",
            "warnings",
        ]);
        run_step(&mut c)?;
        let mut c = cargo();
        c.args(["clippy", "-p", "hypervisor", "--features", "selftest", "--target", BARE_METAL_TARGET, "--target-dir"]);
        c.arg(Flavor::Selftest.target_dir());
        c.args(["--", "-D", "warnings"]);
        run_step(&mut c)
    });
    report.record("clippy (bare metal, x86_64-unknown-none)", start, r, None);
}

//! `cargo xtask bench`: deterministic figures, each next to a baseline measured in the same
//! invocation (DESIGN.md §6).
//!
//! Every run is single-threaded TCG with `-icount shift=0,align=off,sleep=off`
//! ([`qemu_tests::qemu::QemuConfig::icount`]): guest time — the TSC, the timers, Linux's
//! clocks — advances by exactly one nanosecond per instruction executed, and when every CPU
//! is idle QEMU jumps to the next timer at once. Figures in guest nanoseconds are therefore
//! instruction counts plus idle time that cost no instructions (a `sleep`). With no
//! RDRAND/RDSEED and a fixed RTC date, `-kernel` boots repeat exactly; boots through the GRUB
//! ISO vary by a few parts per million (probably because its CD reads complete at host-timed
//! moments, which shifts the absolute TSC the guests start from). `--runs N` shows the spread.
//!
//! Figures:
//! - **Linux, kernel start to `/init`**: the ktime Debian's kernel reports (`UPTIME_NS=` from
//!   `/proc/timer_list`, printed by the default initramfs right after its `up` marker), booted
//!   as a PVH domU of Ferrovisor (1 vCPU, 512 MiB, QEMU `-smp 1`) against the same vmlinux
//!   and initramfs booted directly by QEMU (`-kernel`, `-smp 1 -m 512M`). One vCPU because
//!   of QEMU 7.2's `-icount` (see [`DEFAULT_LINUX_VCPUS`]); `--linux-vcpus N` tries more.
//!   Also, informational: the hypervisor's log clock from `domain N (...) created` to the
//!   marker's console line (it includes Linux's early boot before its clock starts).
//! - **The test guest's figures**: the normal image from the GRUB ISO (`exit-when-idle`, QEMU
//!   `-smp 1`), once with a `test=bench` domain and once with a `pong`/`ping` pair
//!   (1000 round trips). Their consoles print one line per figure,
//!   `BENCH name=<name> cycles=<per operation> [iterations=<n>] [baseline=<name of another BENCH
//!   line>] [baseline_cycles=<n>]` (in the log as `(dN) BENCH ...`); each becomes a row, next to
//!   its baseline (a line named by `baseline=` is shown as that row's baseline, not as a row
//!   of its own): `hypercall_xen_version` against `hypercall_bare` (an unknown hypercall
//!   number: the bare VMMCALL/VMCALL loop), `grant_copy_4k` (a page the domain granted to
//!   itself) against `memcpy_4k`, and the ping's `evtchn_round_trip` against
//!   `hypercall_bare`.
//!
//! The exit status is non-zero when a figure could not be measured, or one of the test guest's
//! figures is missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use qemu_tests::domain_log;
use qemu_tests::harness::RunResult;
use qemu_tests::linux::LinuxReport;
use qemu_tests::qemu::{Boot, EXIT_SUCCESS, ICOUNT_ARGS};
use qemu_tests::selftest::SelftestLine;
use qemu_tests::{DomainSpec, Vm};

use crate::linux::{self, LinuxGuest};
use crate::prereq;
use crate::util::{build_image, build_test_guest, step, target_dir, Flavor};

/// The marker of the test guest's benchmark lines.
pub const BENCH_MARKER: &str = "BENCH";
/// The hypervisor command line of the Linux domU run.
const DOMU_HV_CMDLINE: &str = "loglvl=info exit-when-idle";
/// The domU's command line.
const DOMU_CMDLINE: &str = "console=hvc0 earlyprintk=xen";
/// The direct boot's command line.
const DIRECT_CMDLINE: &str = "console=ttyS0";
/// MiB of the Linux guest, in both configurations.
const LINUX_MIB: u64 = 512;
/// vCPUs of the Linux guest (and CPUs of QEMU), in both configurations, unless
/// `--linux-vcpus` says otherwise. One, because QEMU 7.2 (Debian 12) under `-icount` never
/// finishes Linux's secondary-CPU bring-up: at "x86: Booting SMP configuration" CPU 1 stops
/// being scheduled, even with Linux booted directly.
const DEFAULT_LINUX_VCPUS: u32 = 1;

/// One measured quantity over `--runs` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Measure {
    /// One value per run.
    Values(Vec<u64>),
    /// Measuring failed.
    Failed(String),
}

impl Measure {
    fn text(&self) -> String {
        match self {
            Measure::Values(v) => {
                let (min, max) = (v.iter().min().copied().unwrap_or(0), v.iter().max().copied().unwrap_or(0));
                if min == max {
                    group(min)
                } else {
                    // The smallest, and how much more the largest was.
                    format!("{} (+{:.4}%)", group(min), (max - min) as f64 * 100.0 / min.max(1) as f64)
                }
            }
            Measure::Failed(_) => "FAILED".into(),
        }
    }

    fn min(&self) -> Option<u64> {
        match self {
            Measure::Values(v) => v.iter().min().copied(),
            _ => None,
        }
    }

    /// Collects per-run results: values if every run gave one.
    fn collect(results: Vec<Result<u64, String>>) -> Measure {
        let mut values = Vec::new();
        for r in results {
            match r {
                Ok(v) => values.push(v),
                Err(e) => return Measure::Failed(e),
            }
        }
        Measure::Values(values)
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    unit: &'static str,
    value: Measure,
    baseline: Option<Measure>,
    baseline_is: String,
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ratio(row: &Row) -> String {
    match (row.value.min(), row.baseline.as_ref().and_then(Measure::min)) {
        (Some(v), Some(b)) if b > 0 => format!("{:.2}x", v as f64 / b as f64),
        _ => "-".into(),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("==> bench: single-threaded TCG, -icount {ICOUNT_ARGS} (1 instruction = 1 guest ns; idle time skipped)");
    let name_w = rows.iter().map(|r| r.name.len() + r.unit.len() + 3).max().unwrap_or(10).max(6);
    let val = |r: &Row| r.value.text();
    let base = |r: &Row| r.baseline.as_ref().map_or("-".into(), Measure::text);
    let val_w = rows.iter().map(|r| val(r).len()).max().unwrap_or(5).max(10);
    let base_w = rows.iter().map(|r| base(r).len()).max().unwrap_or(5).max(8);
    println!("{:<name_w$}  {:>val_w$}  {:>base_w$}  {:>7}  baseline is", "figure", "Ferrovisor", "baseline", "ratio");
    for r in rows {
        let label = format!("{} ({})", r.name, r.unit);
        println!("{label:<name_w$}  {:>val_w$}  {:>base_w$}  {:>7}  {}", val(r), base(r), ratio(r), r.baseline_is);
    }
    if rows.iter().any(|r| {
        [Some(&r.value), r.baseline.as_ref()]
            .into_iter()
            .flatten()
            .any(|m| matches!(m, Measure::Values(v) if v.iter().any(|x| *x != v[0])))
    }) {
        println!("(+x%: the figure varied between runs; shown is the smallest, and how much larger the largest was)");
    }
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            [("", Some(&r.value)), (" baseline", r.baseline.as_ref())].into_iter().filter_map(
                move |(what, m)| match m {
                    Some(Measure::Failed(why)) => Some(format!("{}{what} FAILED: {why}", r.name)),
                    _ => None,
                },
            )
        })
        .collect();
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("  note: {n}");
        }
    }
}

/// A fresh directory `target/bench/<name>`.
fn bench_dir(name: &str) -> Result<PathBuf, String> {
    let dir = target_dir().join("bench").join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// What went wrong in a run, with where to look.
fn run_error(r: &RunResult, what: &str) -> String {
    format!("{what} ({}; log {})", r.outcome_text(), r.dir.join("serial.log").display())
}

fn linux_direct(g: &LinuxGuest, vcpus: u32, run: usize) -> Result<u64, String> {
    let name = format!("linux_direct_{run}");
    let dir = bench_dir(&name)?;
    let boot =
        Boot::Kernel { image: g.vmlinux.clone(), cmdline: DIRECT_CMDLINE.into(), initrd: Some(g.initrd.clone()) };
    let r = Vm::with_dir(&name, dir, boot)
        .smp(vcpus)
        .memory(&format!("{LINUX_MIB}M"))
        .icount()
        .timeout_secs(900)
        .stall_timeout_secs(300)
        .run();
    let report = LinuxReport::parse(r.serial.lines());
    match (report.up, report.uptime_ns) {
        (true, Some(ns)) => Ok(ns),
        (true, None) => Err(run_error(&r, "no UPTIME_NS= line after the marker")),
        (false, _) => Err(run_error(&r, "Linux booted directly did not reach its /init marker")),
    }
}

/// The hypervisor's log timestamp (`[    1.234567]`) of a line, in ns.
fn log_time_ns(line: &str) -> Option<u64> {
    let inner = line.strip_prefix('[')?.split_once(']')?.0.trim();
    let (s, frac) = inner.split_once('.')?;
    let frac_ns: u64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    s.parse::<u64>().ok()?.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// Under Ferrovisor: Linux's own figure, and the hypervisor clock from `domain N ... created`
/// to the marker line (informational).
fn linux_domu(g: &LinuxGuest, image: &Path, vcpus: u32, run: usize) -> Result<(u64, Option<u64>), String> {
    let name = format!("linux_domu_{run}");
    let dir = bench_dir(&name)?;
    let spec = DomainSpec::new(&g.vmlinux)
        .name("linux")
        .initrd(&g.initrd)
        .memory_mib(LINUX_MIB)
        .vcpus(vcpus)
        .cmdline(DOMU_CMDLINE);
    let r = Vm::domains_in(&name, dir, image, DOMU_HV_CMDLINE, &[spec])
        .smp(vcpus)
        .memory("2G")
        .icount()
        .timeout_secs(1800)
        .stall_timeout_secs(300)
        .run();
    let console: Vec<String> = domain_log::console_lines(&r.serial).into_iter().map(|l| l.text).collect();
    let report = LinuxReport::parse(console.iter().map(String::as_str));
    let ns = match (report.up, report.uptime_ns) {
        (true, Some(ns)) => ns,
        (true, None) => return Err(run_error(&r, "no UPTIME_NS= line after the marker")),
        (false, _) => {
            let last = console.last().map(|l| format!("; its last console line: {l:?}")).unwrap_or_default();
            return Err(run_error(&r, &format!("the Linux domU did not reach its /init marker{last}")));
        }
    };
    let created = r.serial.lines().find(|l| l.contains("domain ") && l.contains(" created")).and_then(log_time_ns);
    let marker = r
        .serial
        .lines()
        .find(|l| {
            qemu_tests::ConsoleLine::parse(l).is_some_and(|c| c.text.trim_end() == qemu_tests::initramfs::MARKER_UP)
        })
        .and_then(log_time_ns);
    let host_view = match (created, marker) {
        (Some(c), Some(m)) if m > c => Some(m - c),
        _ => None,
    };
    Ok((ns, host_view))
}

fn linux_rows(image: &Path, vcpus: u32, runs: usize) -> Vec<Row> {
    let label = format!("linux, {vcpus} vCPU: kernel start to /init marker");
    let baseline_is = "the same vmlinux + initramfs booted by QEMU directly (-kernel)".to_owned();
    let g = match linux::fetch(false) {
        Ok(g) => g,
        Err(e) => {
            let m = Measure::Failed(format!("fetching Debian's kernel: {e}"));
            return vec![Row { name: label, unit: "guest ns", value: m.clone(), baseline: Some(m), baseline_is }];
        }
    };
    println!("    kernel {} {} ({})", g.package, g.package_version, g.vmlinux.display());
    let mut direct = Vec::new();
    let mut domu = Vec::new();
    let mut host_view = Vec::new();
    for run in 0..runs {
        step(&format!("bench run {}/{runs}: Linux booted directly by QEMU", run + 1));
        let t = Instant::now();
        direct.push(linux_direct(&g, vcpus, run));
        println!("    {:?} in {:.1} s", direct.last().expect("pushed"), t.elapsed().as_secs_f64());
        step(&format!("bench run {}/{runs}: Linux as a PVH domU of Ferrovisor", run + 1));
        let t = Instant::now();
        let r = linux_domu(&g, image, vcpus, run);
        println!("    {r:?} in {:.1} s", t.elapsed().as_secs_f64());
        host_view.push(r.as_ref().ok().and_then(|(_, h)| *h).ok_or_else(|| "not measured".to_owned()));
        domu.push(r.map(|(ns, _)| ns));
    }
    let mut rows = vec![Row {
        name: label,
        unit: "guest ns",
        value: Measure::collect(domu),
        baseline: Some(Measure::collect(direct)),
        baseline_is,
    }];
    if let Measure::Values(v) = Measure::collect(host_view) {
        rows.push(Row {
            name: "linux: domain created to /init marker, hypervisor clock".into(),
            unit: "ns",
            value: Measure::Values(v),
            baseline: None,
            baseline_is: "- (includes Linux's start before its clock runs)".into(),
        });
    }
    rows
}

/// One `BENCH name=... cycles=...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BenchLine {
    name: String,
    cycles: u64,
    baseline: Option<String>,
    baseline_cycles: Option<u64>,
}

fn bench_lines(log: &str) -> Result<Vec<BenchLine>, String> {
    log.lines()
        .filter_map(|l| SelftestLine::parse_marked(l, BENCH_MARKER))
        .map(|l| {
            Ok(BenchLine {
                name: l.str("name").map_err(|e| e.to_string())?.to_owned(),
                cycles: l.u64("cycles").map_err(|e| e.to_string())?,
                baseline: l.get("baseline").map(str::to_owned),
                baseline_cycles: l
                    .get("baseline_cycles")
                    .map(|_| l.u64("baseline_cycles"))
                    .transpose()
                    .map_err(|e| e.to_string())?,
            })
        })
        .collect()
}

/// Rows from the runs' BENCH lines (each run a `Vec`).
fn rows_from_bench(runs: &[Vec<BenchLine>]) -> Vec<Row> {
    let Some(first) = runs.first() else { return Vec::new() };
    let referenced: Vec<&str> = first.iter().filter_map(|l| l.baseline.as_deref()).collect();
    let values_of = |name: &str| -> Measure {
        let v: Option<Vec<u64>> =
            runs.iter().map(|lines| lines.iter().find(|l| l.name == name).map(|l| l.cycles)).collect();
        v.map_or_else(|| Measure::Failed(format!("`BENCH name={name}` missing in some run")), Measure::Values)
    };
    first
        .iter()
        .filter(|l| !referenced.contains(&l.name.as_str()))
        .map(|l| {
            let (baseline, baseline_is) = match (&l.baseline, l.baseline_cycles) {
                (Some(b), _) => {
                    let m = if first.iter().any(|x| &x.name == b) {
                        values_of(b)
                    } else {
                        Measure::Failed(format!("no `BENCH name={b}` line, which {} names as its baseline", l.name))
                    };
                    (Some(m), b.clone())
                }
                (None, Some(c)) => (Some(Measure::Values(vec![c])), "baseline_cycles= of the same line".into()),
                (None, None) => (None, "-".into()),
            };
            Row { name: l.name.clone(), unit: "cycles", value: values_of(&l.name), baseline, baseline_is }
        })
        .collect()
}

/// The figures the test guest must print in every run (see [`guest_rows`]).
const GUEST_FIGURES: [&str; 5] =
    ["hypercall_bare", "hypercall_xen_version", "memcpy_4k", "grant_copy_4k", "evtchn_round_trip"];
/// Round trips of the ping-pong (and operations of `test=bench`, fixed in the guest).
const PINGPONG_ROUNDS: u32 = 1000;
/// Each test-guest domain's RAM.
const GUEST_MIB: u64 = 32;

fn test_guest_domain(guest: &Path, name: &str, cmdline: &str) -> DomainSpec {
    // console=xen: one hypercall per line instead of one port write per byte.
    DomainSpec::new(guest).name(name).memory_mib(GUEST_MIB).cmdline(&format!("{cmdline} console=xen"))
}

/// One run of the normal image (GRUB ISO, `exit-when-idle`, QEMU `-smp 1`) with `domains`:
/// the `BENCH` lines their consoles printed (without the `(dN) ` prefix).
fn guest_run(name: &str, image: &Path, domains: &[DomainSpec]) -> Result<Vec<BenchLine>, String> {
    let dir = bench_dir(name)?;
    let r = Vm::domains_in(name, dir, image, DOMU_HV_CMDLINE, domains)
        .icount()
        .timeout_secs(600)
        .stall_timeout_secs(120)
        .run();
    let console: Vec<String> = domain_log::console_lines(&r.serial).into_iter().map(|l| l.text).collect();
    let lines = bench_lines(&console.join("\n")).map_err(|e| run_error(&r, &format!("malformed BENCH line: {e}")))?;
    if r.exit_status() != Some(EXIT_SUCCESS) {
        return Err(run_error(&r, "a bench domain did not power off cleanly"));
    }
    Ok(lines)
}

/// The test guest's figures: per run, `test=bench` alone, then a `pong`/`ping` pair with
/// [`PINGPONG_ROUNDS`] round trips; their `BENCH` lines make one set (the ping's
/// `evtchn_round_trip` names `hypercall_bare` of the first as its baseline). Every figure
/// of [`GUEST_FIGURES`] must be there.
fn guest_rows(image: &Path, guest: &Path, runs: usize) -> Vec<Row> {
    let mut all = Vec::new();
    for run in 0..runs {
        step(&format!("bench run {}/{runs}: test guest, test=bench", run + 1));
        let t = Instant::now();
        let single =
            guest_run(&format!("guest_bench_{run}"), image, &[test_guest_domain(guest, "bench", "test=bench")]);
        println!("    {} BENCH lines in {:.1} s", single.as_ref().map_or(0, Vec::len), t.elapsed().as_secs_f64());
        step(&format!("bench run {}/{runs}: test guests, ping-pong of {PINGPONG_ROUNDS} rounds", run + 1));
        let t = Instant::now();
        let pair = guest_run(
            &format!("guest_pingpong_{run}"),
            image,
            &[
                test_guest_domain(guest, "pong", &format!("test=pong peer=2 rounds={PINGPONG_ROUNDS}")),
                test_guest_domain(guest, "ping", &format!("test=ping peer=1 rounds={PINGPONG_ROUNDS}")),
            ],
        );
        println!("    {} BENCH lines in {:.1} s", pair.as_ref().map_or(0, Vec::len), t.elapsed().as_secs_f64());
        let lines = match (single, pair) {
            (Ok(mut a), Ok(b)) => {
                a.extend(b);
                a
            }
            (Err(e), _) | (_, Err(e)) => return vec![failed_row(e)],
        };
        let missing: Vec<&str> =
            GUEST_FIGURES.iter().copied().filter(|n| !lines.iter().any(|l| l.name == *n)).collect();
        if !missing.is_empty() {
            let logs = target_dir().join("bench").display().to_string();
            return vec![failed_row(format!("no `BENCH name=` line for {} (logs in {logs})", missing.join(", ")))];
        }
        all.push(lines);
    }
    rows_from_bench(&all)
}

fn failed_row(why: String) -> Row {
    Row {
        name: "test guest figures (test=bench, ping-pong)".into(),
        unit: "cycles",
        value: Measure::Failed(why),
        baseline: None,
        baseline_is: "-".into(),
    }
}

/// `cargo xtask bench [--runs N] [--no-linux] [--linux-vcpus N]`.
pub fn bench(args: &[String]) -> Result<ExitCode, String> {
    let opts = crate::cli::parse(args, &["runs", "linux-vcpus"], &["no-linux"])?;
    let vcpus = opts.value("linux-vcpus").map_or(Ok(DEFAULT_LINUX_VCPUS), crate::cli::parse_smp)?;
    let runs = match opts.value("runs").map(str::parse::<usize>) {
        None => 1,
        Some(Ok(n)) if (1..=20).contains(&n) => n,
        Some(_) => return Err("--runs: expected a number from 1 to 20".into()),
    };
    prereq::ensure_rust_target()?;
    prereq::ensure_packages(&[prereq::QEMU, prereq::GRUB_ISO])?;
    let normal = build_image(Flavor::Normal)?;
    let guest = build_test_guest()?;
    let start = Instant::now();
    let mut rows = Vec::new();
    if !opts.flag("no-linux") {
        rows.extend(linux_rows(&normal, vcpus, runs));
    }
    rows.extend(guest_rows(&normal, &guest, runs));
    print_table(&rows);
    println!(
        "\n(runs: {runs}; {:.0} s; logs in {})",
        start.elapsed().as_secs_f64(),
        target_dir().join("bench").display()
    );
    let failed =
        rows.iter().any(|r| matches!(r.value, Measure::Failed(_)) || matches!(r.baseline, Some(Measure::Failed(_))));
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567890), "1,234,567,890");
    }

    #[test]
    fn log_times() {
        assert_eq!(log_time_ns("[    1.769438] CPU0 INFO  domain 1 (linux) created"), Some(1_769_438_000));
        assert_eq!(log_time_ns("[12.5] x"), Some(12_500_000_000));
        assert_eq!(log_time_ns("no stamp"), None);
    }

    #[test]
    fn bench_table_rows() {
        let log = "\
[    0.1] CPU0 INFO  BENCH name=vmmcall_bare cycles=900 iterations=10000
[    0.2] CPU0 INFO  BENCH name=hypercall_xen_version cycles=1500 iterations=10000 baseline=vmmcall_bare
[    0.3] CPU0 INFO  BENCH name=grant_copy_4k cycles=5000 baseline_cycles=1200
[    0.4] CPU0 INFO  BENCH name=evtchn_round_trip cycles=7000 baseline=nonexistent
";
        let lines = bench_lines(log).unwrap();
        assert_eq!(lines.len(), 4);
        let rows = rows_from_bench(&[lines.clone(), lines]);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["hypercall_xen_version", "grant_copy_4k", "evtchn_round_trip"]);
        assert_eq!(rows[0].value, Measure::Values(vec![1500, 1500]));
        assert_eq!(rows[0].baseline, Some(Measure::Values(vec![900, 900])));
        assert_eq!(ratio(&rows[0]), "1.67x");
        assert_eq!(rows[1].baseline, Some(Measure::Values(vec![1200])));
        assert!(matches!(rows[2].baseline, Some(Measure::Failed(_))));
        assert!(bench_lines("BENCH name=x\n").is_err());
        assert_eq!(Measure::Values(vec![1000, 1003]).text(), "1,000 (+0.3000%)");
    }
}

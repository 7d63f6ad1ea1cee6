//! A real guest: Debian's stock `linux-image-amd64` kernel (the ELF vmlinux from its bzImage)
//! with a busybox initramfs whose `/init` prints markers, the CPU count and the clocksource,
//! then powers off ([`qemu_tests::initramfs::InitScript::marker_test`]).
//!
//! - `linux_baseline_boots_under_plain_qemu`: the same kernel and initramfs booted directly by
//!   QEMU (`-kernel vmlinux`, QEMU's own PVH loader; no Ferrovisor): checks the initramfs and
//!   gives the baseline `cargo xtask bench` compares with.
//! - `linux_pvh_domu_boots_on_two_vcpus`: Linux as a PVH domU of Ferrovisor with 2 vCPUs and
//!   the hvc console; it must print its markers, see 2 CPUs and the `xen` clocksource, and
//!   power off (DOMAIN `state=shutdown reason=poweroff`).
//!
//! - `linux_pvh_domu_built_by_the_agent_from_vmlinuz`: the same, built by the dom0 agent
//!   from Debian's bzImage, its console and xenstore served by the agent.
//! - `linux_xenstore_tools_in_two_domus_built_by_the_agent`: two such domUs at once, each
//!   running Debian's xenstore tools against the agent's xenstored
//!   ([`qemu_tests::initramfs::InitScript::xenstore_test`]): read, write, list and watch
//!   their own keys, grant the other one node, and fail to read or write the other's keys.
//!
//! `cargo xtask test` fetches the kernel and busybox first (`cargo xtask linux`) and passes
//! them in `FERROVISOR_LINUX_VMLINUX` and `FERROVISOR_BUSYBOX`; without them these tests fail.
//! Run only the domU test:
//! `cargo xtask test --qemu-only -- --exact linux_pvh_domu_boots_on_two_vcpus`.

use std::path::{Path, PathBuf};

use qemu_tests::domain::Builder;
use qemu_tests::harness::{fresh_dir, RunResult};
use qemu_tests::initramfs::{InitScript, Initramfs, XS_PEER_PARAM};
use qemu_tests::linux::{self, LinuxReport};
use qemu_tests::{checks, DomainReport, DomainSpec, Vm};

/// The guest command line for the domU (the hvc console; early output through the Xen console).
const DOMU_CMDLINE: &str = "console=hvc0 earlyprintk=xen";
/// The hypervisor command line.
const CMDLINE: &str = "loglvl=info exit-when-idle";

/// Writes the default test initramfs into `dir`.
fn initramfs_in(dir: &Path) -> PathBuf {
    write_initramfs(dir, &Initramfs::new(&linux::busybox()))
}

/// Writes `img` into `dir` as `initramfs.cpio`.
fn write_initramfs(dir: &Path, img: &Initramfs) -> PathBuf {
    let path = dir.join("initramfs.cpio");
    img.write(&path).unwrap_or_else(|e| panic!("building the initramfs: {e}"));
    path
}

/// Every expectation on what `/init` printed, all reported at once.
#[track_caller]
fn check_report(r: &RunResult, report: &LinuxReport, cpus: u32, clocksource: Option<&str>, where_: &str) {
    let mut problems = Vec::new();
    if !report.up {
        problems.push(format!("no `{}` line {where_}: Linux did not reach /init", qemu_tests::initramfs::MARKER_UP));
    }
    if report.cpus != Some(cpus) {
        problems.push(format!("CPUS={:?}, expected {cpus}", report.cpus));
    }
    match (clocksource, &report.clocksource) {
        (Some(want), got) if got.as_deref() != Some(want) => {
            problems.push(format!("CLOCKSOURCE={got:?}, expected {want:?}"))
        }
        (None, None) => problems.push("no CLOCKSOURCE= line".to_owned()),
        _ => {}
    }
    if !report.done {
        problems.push(format!("no `{}` line {where_}", qemu_tests::initramfs::MARKER_DONE));
    }
    if report.poweroff_failed {
        problems.push("`poweroff -f` returned".to_owned());
    }
    if !problems.is_empty() {
        r.fail(format!("the Linux guest's /init output is wrong ({report:?}):\n  {}", problems.join("\n  ")));
    }
}

#[test]
fn linux_baseline_boots_under_plain_qemu() {
    let vmlinux = linux::vmlinux();
    eprintln!("kernel: {} ({})", vmlinux.display(), linux::version().unwrap_or_default());
    // About 5 s here under TCG.
    let vm = Vm::kernel("linux_baseline", &vmlinux, "console=ttyS0").smp(2).memory("1G").timeout_secs(120);
    let initrd = initramfs_in(vm.dir());
    let r = vm.initrd(&initrd).run();
    let report = LinuxReport::parse(r.serial.lines());
    check_report(&r, &report, 2, None, "on ttyS0");
    // `poweroff -f` is an ACPI S5 power-off: QEMU quits with status 0 (a reboot would also
    // end QEMU with 0 under -no-reboot, so the kernel's own words decide).
    r.assert_exit(0);
    r.line_where("`reboot: Power down` (the kernel powering off)", |l| l.contains("reboot: Power down"));
    eprintln!("baseline: {report:?} in {:.1} s", r.elapsed.as_secs_f64());
}

/// The kernel `builder` boots: the ELF vmlinux for the hypervisor (which serves the console
/// ring itself), Debian's bzImage for the agent (which unpacks its xz payload and serves
/// the console ring and xenstore).
fn kernel_for(builder: Builder) -> PathBuf {
    let kernel = match builder {
        Builder::Hypervisor => linux::vmlinux(),
        Builder::Agent => linux::vmlinuz(),
    };
    eprintln!("kernel: {} ({})", kernel.display(), linux::version().unwrap_or_default());
    kernel
}

/// The machine that boots `domains` (built by `builder`, from a GRUB ISO in `dir`,
/// hypervisor command line `cmdline`) with `host_cpus` CPUs for guests and 2 GiB; the run ends after
/// `timeout_secs`, or after a minute and a half without serial output.
fn domus_vm(
    name: &str,
    dir: PathBuf,
    cmdline: &str,
    host_cpus: u32,
    builder: Builder,
    domains: &[DomainSpec],
    timeout_secs: u64,
) -> Vm {
    let vm = match builder {
        Builder::Hypervisor => Vm::domains_in(name, dir, &qemu_tests::image(), cmdline, domains),
        Builder::Agent => Vm::agent_domains_in(name, dir, &qemu_tests::image(), cmdline, domains),
    };
    // Linux prints all the way, and the xenstore script's barriers wait at most a minute:
    // 90 s of silence means something hangs.
    vm.guest_cpus(host_cpus).memory("2G").timeout_secs(timeout_secs).stall_timeout_secs(90)
}

/// What every Linux domU run must show for the domain `name`, expected to be domain `domid`
/// with `cpus` vCPUs: the markers, the CPU count and the xen clocksource on its console, and
/// a poweroff. Returns its report, what `/init` printed, and its console lines.
#[track_caller]
fn check_domu(r: &RunResult, name: &str, domid: u32, cpus: u32) -> (DomainReport, LinuxReport, Vec<String>) {
    // The console first: it says how far Linux got, whatever happened after.
    let console = r.console(domid);
    let report = LinuxReport::parse(console.iter().map(String::as_str));
    check_report(r, &report, cpus, Some("xen"), &format!("on domain {domid}'s console (`(d{domid}) ` lines)"));
    let d = checks::domain_shut_down(r, name, "poweroff");
    r.check(d.id == domid, format!("domain {name} has id {}, expected {domid}: {}", d.id, d.raw));
    (d, report, console)
}

/// Boots the kernel as a 2-vCPU, 512 MiB PVH domU on `host_cpus` CPUs and checks what every
/// such run must show ([`check_domu`]). Returns the run and the domain's report for the
/// caller's own checks.
fn boot_domu(name: &str, host_cpus: u32, builder: Builder) -> (RunResult, DomainReport, LinuxReport) {
    let kernel = kernel_for(builder);
    let dir = fresh_dir(name);
    let initrd = initramfs_in(&dir);
    let domains =
        [DomainSpec::new(&kernel).name("linux").initrd(&initrd).memory_mib(512).vcpus(2).cmdline(DOMU_CMDLINE)];
    // About 11 s here under TCG (GRUB loading the 64 MiB kernel module: ~6 s).
    let r = domus_vm(name, dir, CMDLINE, host_cpus, builder, &domains, 240).run();
    let (d, report, _) = check_domu(&r, "linux", 1, 2);
    (r, d, report)
}

#[test]
fn linux_pvh_domu_boots_on_two_vcpus() {
    let (r, d, report) = boot_domu("linux_domu", 2, Builder::Hypervisor);
    r.check(d.vcpus == 2, format!("vcpus={}, expected 2: {}", d.vcpus, d.raw));
    r.check(d.memory_kib == 512 * 1024, format!("memory_kib={}, expected 524288: {}", d.memory_kib, d.raw));
    r.assert_success();
    checks::domains_done(&r, 1, 0);
    eprintln!("domU: {report:?} in {:.1} s", r.elapsed.as_secs_f64());
}

/// The dom0 agent builds Linux from Debian's bzImage (xz payload unpacked in the agent),
/// relays its hvc0 console and serves its xenstore (xenbus connects and writes its
/// features); the run ends when the agent, seeing the domain gone, shuts down.
#[test]
fn linux_pvh_domu_built_by_the_agent_from_vmlinuz() {
    let (r, d, report) = boot_domu("linux_domu_agent", 2, Builder::Agent);
    r.check(d.vcpus == 2, format!("vcpus={}, expected 2: {}", d.vcpus, d.raw));
    r.line_where("the agent building the domain", |l| {
        l.contains(&format!("agent: domain {} (linux) built and started", d.id))
    });
    // Linux's xenbus came up on the agent's xenstored and wrote its shutdown features.
    r.line_where("Linux writing control/feature-poweroff into the agent's xenstore", |l| {
        l.contains(&format!("agent: xenstored: /local/domain/{}/control/feature-poweroff = 1", d.id))
    });
    r.line_where("the agent destroying the ended domain", |l| {
        l.contains(&format!("agent: domain {} (linux) ended: poweroff; destroying it", d.id))
    });
    r.assert_success();
    checks::domains_done(&r, 2, 0);
    let done = r.domains_done();
    r.check(done.free_frames_before == done.free_frames_after, format!("frames leaked: {done:?}"));
    eprintln!("domU built by the agent: {report:?} in {:.1} s", r.elapsed.as_secs_f64());
}

/// More vCPUs than host CPUs: both of Linux's vCPUs share the one CPU through the scheduler
/// (bring-up through INIT/SIPI, IPIs over event channels, idle HLT on both).
#[test]
fn linux_two_vcpus_on_one_host_cpu() {
    let (r, d, _) = boot_domu("linux_domu_1cpu", 1, Builder::Hypervisor);
    r.check(d.cpus_used == 0b1, format!("cpus_used={:#x}, expected only CPU 0: {}", d.cpus_used, d.raw));
    r.assert_success();
    checks::domains_done(&r, 1, 0);
}

/// Two Linux domUs built by the agent at once, each running Debian's xenstore tools
/// (`xenstore-utils` with its libraries and glibc in the initramfs) against the agent's
/// xenstored through `/dev/xen/xenbus`: every check of
/// [`qemu_tests::initramfs::XS_CHECKS`] passes on both consoles (read `name` and `domid`,
/// write and read back, list, ls, watch, grant the peer one node; the peer's `name` can be
/// neither read nor listed (EACCES), nor its `data/` written). Each domain learns its peer's
/// id from its command line: the agent numbers the domains in module order, from 1.
#[test]
fn linux_xenstore_tools_in_two_domus_built_by_the_agent() {
    xenstore_tools_in_two_domus("linux_xenstore_two_domus", false);
}

/// The same two domUs under round-robin TCG (one host thread for both CPUs, its loop kicked
/// at every switch). There, QEMU delivered an interrupt injected through the VMCB's EVENTINJ
/// a second time whenever its loop was kicked before the guest's next exit, on the handler's
/// first instruction, so Linux took an upcall that arrived in user mode as if from the
/// kernel, without SWAPGS, and died in a page-fault loop on its per-CPU data (every run;
/// rarely under multi-threaded TCG). Interrupts now go in as virtual interrupts (V_IRQ).
#[test]
fn linux_xenstore_tools_in_two_domus_under_round_robin_tcg() {
    xenstore_tools_in_two_domus("linux_xenstore_two_domus_rr", true);
}

fn xenstore_tools_in_two_domus(name: &str, round_robin: bool) {
    let kernel = kernel_for(Builder::Agent);
    let dir = fresh_dir(name);
    let img = Initramfs::new(&linux::busybox())
        .init(InitScript::xenstore_test())
        .xenstore_tools(&linux::xenstore_root())
        .unwrap_or_else(|e| panic!("the xenstore tools for the initramfs: {e}"));
    let initrd = write_initramfs(&dir, &img);
    // (name, expected domid, peer's domid)
    let guests = [("linux-a", 1u32, 2u32), ("linux-b", 2, 1)];
    let domains: Vec<DomainSpec> = guests
        .iter()
        .map(|(n, _, peer)| {
            DomainSpec::new(&kernel)
                .name(n)
                .initrd(&initrd)
                .memory_mib(512)
                .vcpus(1)
                .cmdline(&format!("{DOMU_CMDLINE} {XS_PEER_PARAM}={peer}"))
        })
        .collect();
    // Under TCG: ~5 s of xz per kernel in the agent, ~15 s of Linux each (in parallel on the
    // two CPUs), ~10 s of xenstore checks.
    let vm = domus_vm(name, dir, CMDLINE, 2, Builder::Agent, &domains, 420);
    let r = if round_robin { vm.round_robin() } else { vm }.run();
    let mut problems = Vec::new();
    for (n, domid, _) in guests {
        let (_, _, console) = check_domu(&r, n, domid, 1);
        r.line_where(&format!("the agent building domain {domid} ({n})"), |l| {
            l.contains(&format!("agent: domain {domid} ({n}) built and started"))
        });
        let checks = linux::xs_checks(console.iter().map(String::as_str));
        problems
            .extend(linux::xs_problems(&checks, n, domid).into_iter().map(|p| format!("domain {domid} ({n}): {p}")));
        eprintln!("domain {domid} ({n}): {} xenstore checks: {checks:?}", checks.len());
    }
    if !problems.is_empty() {
        r.fail(format!("the xenstore checks failed:\n  {}", problems.join("\n  ")));
    }
    r.assert_success();
    // Both domUs and the agent, none crashed, every frame back.
    checks::domains_done(&r, 3, 0);
    eprintln!("two domUs with the xenstore tools in {:.1} s", r.elapsed.as_secs_f64());
}

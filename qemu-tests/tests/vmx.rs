//! The Intel VT-x backend under Bochs (`corei7_skylake_x`: VMX with EPT, VPID and
//! unrestricted guest): the normal image from a GRUB ISO with test-guest domains as
//! multiboot2 modules, `exit-when-idle` and `bochs-exit`, judged by the hypervisor's
//! `FERROVISOR STOP outcome=` line, the `DOMAIN`/`DOMAINS` lines and what the guests printed.
//!
//! Hello world through all three output paths, the CPUID/MSR view of a guest, memory
//! isolation, triple-fault isolation, an unhandled exit (INVD), timer wake-ups from HLT,
//! several domains at once, two host CPUs with pinned and migrating domains, CPUs that
//! lack VMX, EPT or unrestricted guest, the PV ABI error paths with a vCPU started by
//! VCPUOP_initialise, and Debian's Linux as a 2-vCPU PVH domU. Bochs runs
//! about 100 M instructions/s: the domains are small and short.

use qemu_tests::harness::fresh_dir;
use qemu_tests::initramfs::Initramfs;
use qemu_tests::linux::{self, LinuxReport};
use qemu_tests::{checks, BochsVm, DomainSpec, RunResult};

/// The hypervisor command line of every test (`bochs-exit` is added by the runner).
const CMDLINE: &str = "loglvl=info exit-when-idle";

fn guest(name: &str, cmdline: &str) -> DomainSpec {
    DomainSpec::new(qemu_tests::test_guest()).name(name).memory_mib(16).cmdline(cmdline)
}

/// Bochs runs at 20-100 M instructions/s depending on load: on a 2-CPU CI machine with two
/// Bochs tests at once, a run of ~600 M instructions has taken over 90 s. The timeout only
/// bounds a hung run; a passing one ends as soon as the hypervisor stops.
fn vmx(name: &str, domains: &[DomainSpec]) -> BochsVm {
    BochsVm::domains(name, &qemu_tests::image(), CMDLINE, domains).timeout_secs(240)
}

/// The hypervisor chose the VMX backend and the guest uses VMCALL.
#[track_caller]
fn ran_on_vmx(r: &RunResult, domid: u32) {
    r.line_where("`virtualization: Intel VT-x with EPT ...`", |l| l.contains("virtualization: Intel VT-x with EPT"));
    let start = r.guest_line(domid, "start");
    r.check(start.get("hypercall") == Some("vmcall"), format!("guest does not use vmcall: {}", start.raw));
}

#[test]
fn vmx_hello_world_through_all_three_paths() {
    let r = vmx("vmx_hello", &[guest("hello", "test=hello")]).run();
    r.assert_success();
    let d = checks::domain_shut_down(&r, "hello", "poweroff");
    ran_on_vmx(&r, d.id);
    for path in ["port 0xe9", "console_io", "com1"] {
        let expected = format!("hello from domain {} vcpu 0 via {path}", d.id);
        r.console_line_where(d.id, &format!("`{expected}`"), |l| l == expected);
    }
    let result = r.guest_line(d.id, "hello");
    r.check(result.get("result") == Some("pass"), format!("expected result=pass: {}", result.raw));
    checks::domains_done(&r, 1, 0);
}

/// The CPUID leaves and MSR behaviour a guest sees on VMX (VMX itself hidden, EFER with
/// LME/LMA after the guest entered long mode, #GP for unknown MSRs).
#[test]
fn vmx_cpuid_leaves_and_msrs() {
    let r = vmx("vmx_cpuid", &[guest("cpuid", "test=cpuid")]).run();
    let d = r.domain_named("cpuid");
    let failed: Vec<String> = r
        .guest_lines(d.id, "cpuid")
        .into_iter()
        .filter(|l| l.fields.first().is_some_and(|(_, v)| v == "fail"))
        .map(|l| l.raw)
        .collect();
    r.check(failed.is_empty(), format!("failed CPUID/MSR checks:\n  {}", failed.join("\n  ")));
    for check in ["vmx_hidden", "efer", "msr_unknown_gp", "hypercall_page", "hypercall_page_call", "result"] {
        r.check(
            r.guest_lines(d.id, "cpuid")
                .iter()
                .any(|l| l.fields.first().is_some_and(|(k, v)| k == check && v == "pass")),
            format!("no `GUEST cpuid {check}=pass` line from domain {}", d.id),
        );
    }
    r.assert_success();
    checks::domain_shut_down(&r, "cpuid", "poweroff");
    checks::domains_done(&r, 1, 0);
}

#[test]
fn vmx_memory_outside_the_guest_crashes_only_that_guest() {
    let domains = [guest("toucher", "test=memtouch"), guest("spinner", "test=spin ms=300")];
    let r = vmx("vmx_memtouch", &domains).run();
    r.assert_failure();
    let toucher = checks::domain_crashed(&r, "toucher");
    r.check(toucher.reason == "memory", format!("expected reason=memory (an EPT violation): {}", toucher.raw));
    let spinner = checks::domain_shut_down(&r, "spinner", "poweroff");
    let writing = r.console_line_where(toucher.id, "`GUEST memtouch ... writing`", |l| {
        l.starts_with("GUEST memtouch ") && l.ends_with(" writing")
    });
    checks::console_lacks(&r, toucher.id, "GUEST memtouch survived");
    let spin = r.guest_line(spinner.id, "spin");
    r.check(r.field_u64(&spin, "iterations") > 0, format!("spinner made no progress: {}", spin.raw));
    let pos = |needle: &str| r.serial.find(needle);
    match (pos(&format!("(d{}) {writing}", toucher.id)), pos(&format!("(d{}) {}", spinner.id, spin.raw))) {
        (Some(w), Some(s)) => r.check(s > w, "the spinner's result came before the toucher's write"),
        _ => r.fail("cannot find the toucher's write or the spinner's result in the log"),
    }
    checks::domains_done(&r, 2, 1);
}

#[test]
fn vmx_triple_fault_crashes_only_that_guest() {
    let domains = [guest("tripler", "test=triplefault"), guest("hello", "test=hello")];
    let r = vmx("vmx_triplefault", &domains).run();
    r.assert_failure();
    let tripler = checks::domain_crashed(&r, "tripler");
    r.check(tripler.reason == "triple-fault", format!("expected reason=triple-fault: {}", tripler.raw));
    r.console_line_where(tripler.id, "`GUEST triplefault ...`", |l| l.starts_with("GUEST triplefault loading"));
    checks::console_lacks(&r, tripler.id, "GUEST triplefault survived");
    checks::console_lacks(&r, tripler.id, "GUEST exception");
    let hello = checks::domain_shut_down(&r, "hello", "poweroff");
    checks::guest_said_hello(&r, hello.id);
    checks::domains_done(&r, 2, 1);
}

/// INVD always exits on VMX and is not emulated: the explicit unhandled-exit path.
#[test]
fn vmx_unhandled_exit_crashes_only_that_guest() {
    let domains = [guest("invd", "test=unhandled"), guest("hello", "test=hello")];
    let r = vmx("vmx_unhandled", &domains).run();
    r.assert_failure();
    let invd = checks::domain_crashed(&r, "invd");
    r.check(invd.reason == "unhandled-exit", format!("expected reason=unhandled-exit: {}", invd.raw));
    r.console_line_where(invd.id, "`GUEST unhandled executing invd`", |l| l == "GUEST unhandled executing invd");
    r.line_where("an unhandled-exit report naming INVD", |l| l.contains("unhandled exit") && l.contains("(INVD)"));
    checks::console_lacks(&r, invd.id, "GUEST unhandled survived");
    checks::domain_shut_down(&r, "hello", "poweroff");
    checks::domains_done(&r, 2, 1);
}

#[test]
fn vmx_timer_wakes_a_halted_guest() {
    let r = vmx("vmx_timer", &[guest("timer", "test=timer")]).run();
    let d = r.domain_named("timer");
    let summary = r
        .guest_lines(d.id, "timer")
        .into_iter()
        .find(|l| l.get("wakeups").is_some())
        .unwrap_or_else(|| r.fail(format!("domain {} printed no `GUEST timer wakeups=` line", d.id)));
    let wakeups = r.field_u64(&summary, "wakeups");
    let min_us = r.field_u64(&summary, "min_elapsed_us");
    r.check(wakeups == 5, format!("wakeups={wakeups}, expected 5: {}", summary.raw));
    r.check(min_us >= 20_000, format!("a wake-up came after {min_us} us, before the 20 ms timer: {}", summary.raw));
    r.assert_success();
    checks::domain_shut_down(&r, "timer", "poweroff");
    checks::domains_done(&r, 1, 0);
}

/// Four CPU-bound domains share one CPU: every one finishes, every frame comes back.
#[test]
fn vmx_four_domains_share_one_cpu() {
    let names: Vec<String> = (1..=4).map(|i| format!("spin{i}")).collect();
    let domains: Vec<_> = names.iter().map(|n| guest(n, "test=spin ms=200")).collect();
    let r = vmx("vmx_four_domains", &domains).run();
    r.assert_success();
    for name in &names {
        let d = checks::domain_shut_down(&r, name, "poweroff");
        let spin = r.guest_line(d.id, "spin");
        r.check(r.field_u64(&spin, "iterations") > 0, format!("{name} made no progress: {}", spin.raw));
    }
    checks::domains_done(&r, 4, 0);
}

/// Two host CPUs (VMX on each): a domain pinned to each runs only there, and an unpinned
/// one may move between them (its VMCS is cleared on one CPU and loaded on the other).
#[test]
fn vmx_two_host_cpus() {
    let domains = [
        guest("on0", "test=spin ms=300").cpus("0"),
        guest("on1", "test=spin ms=300").cpus("1"),
        guest("anywhere", "test=spin ms=300"),
    ];
    let r = vmx("vmx_two_cpus", &domains).cpus(2).timeout_secs(300).run();
    r.assert_success();
    r.line_where("`2 of 2 CPUs online`", |l| l.contains("2 of 2 CPUs online"));
    let mut used = 0;
    for (name, allowed) in [("on0", 0b01u64), ("on1", 0b10), ("anywhere", 0b11)] {
        let d = checks::domain_shut_down(&r, name, "poweroff");
        r.check(
            d.cpus_used != 0 && d.cpus_used & !allowed == 0,
            format!("{name} ran on CPUs {:#x}, allowed {allowed:#x}: {}", d.cpus_used, d.raw),
        );
        used |= d.cpus_used;
    }
    r.check(used == 0b11, format!("domains ran on CPUs {used:#x}, expected both (0x3)"));
    checks::domains_done(&r, 3, 0);
}

/// A CPU model without what the backend needs: the hypervisor boots, says what is missing
/// (naming VMX) and ends with failure instead of hanging.
fn unavailable(name: &str, model: &str, says: &str) {
    let r = BochsVm::domains(name, &qemu_tests::image(), CMDLINE, &[guest("hello", "test=hello")])
        .cpu_model(model)
        .timeout_secs(180)
        .run();
    r.assert_failure();
    let line = r.line_where("`virtualization unavailable: ...`", |l| l.contains("virtualization unavailable:"));
    r.check(line.contains("VMX") && line.contains(says), format!("expected the reason to say `{says}`: {line}"));
    let console = qemu_tests::domain_log::console_lines(&r.serial);
    r.check(console.is_empty(), format!("a domain ran without usable VMX: {console:?}"));
}

#[test]
fn vmx_missing_is_reported() {
    unavailable("vmx_detect_no_vmx", "p4_prescott_celeron_336", "VMX not available");
}

#[test]
fn vmx_without_ept_is_reported() {
    unavailable("vmx_detect_no_ept", "core2_penryn_t9600", "no EPT");
}

#[test]
fn vmx_without_unrestricted_guest_is_reported() {
    unavailable("vmx_detect_no_ug", "corei5_lynnfield_750", "no unrestricted guest");
}

/// Debian's kernel as a PVH domU with 2 vCPUs on VMX: real-mode INIT/SIPI start of the
/// second vCPU, control-register emulation, the MSRs Linux reads on Intel, the Xen
/// clocksource; `/init` prints its markers and powers off. About a minute under Bochs.
#[test]
fn vmx_linux_pvh_domu_boots_on_two_vcpus() {
    let vmlinux = linux::vmlinux();
    let name = "vmx_linux_domu";
    let dir = fresh_dir(name);
    let initrd = dir.join("initramfs.cpio");
    Initramfs::new(&linux::busybox()).write(&initrd).unwrap_or_else(|e| panic!("building the initramfs: {e}"));
    let domains = [DomainSpec::new(&vmlinux)
        .name("linux")
        .initrd(&initrd)
        .memory_mib(256)
        .vcpus(2)
        .cmdline("console=hvc0 earlyprintk=xen")];
    let modules = qemu_tests::domain::modules_for(&domains).unwrap_or_else(|e| panic!("[{name}] {e}"));
    let r =
        BochsVm::iso_in(name, dir, &qemu_tests::image(), CMDLINE, &modules).memory_mib(1024).timeout_secs(300).run();
    let console: Vec<String> = qemu_tests::domain_log::console_lines(&r.serial).into_iter().map(|l| l.text).collect();
    let report = LinuxReport::parse(console.iter().map(String::as_str));
    r.check(report.up, format!("Linux did not reach /init: {report:?}"));
    r.check(report.cpus == Some(2), format!("CPUS={:?}, expected 2: {report:?}", report.cpus));
    r.check(report.clocksource.as_deref() == Some("xen"), format!("expected the xen clocksource: {report:?}"));
    r.check(report.done && !report.poweroff_failed, format!("/init did not finish: {report:?}"));
    if let Some(l) = console.iter().find(|l| l.contains("unchecked MSR access")) {
        r.fail(format!("Linux hit an MSR the hypervisor does not handle: {l}"));
    }
    let d = checks::domain_shut_down(&r, "linux", "poweroff");
    r.check(d.vcpus == 2, format!("vcpus={}, expected 2: {}", d.vcpus, d.raw));
    r.assert_success();
    checks::domains_done(&r, 1, 0);
}

/// The PV ABI's error paths on VMX, and vCPU 1 started from a 64-bit VCPUOP_initialise
/// context (the VMCS loaded from it: long mode, paging, flat segments), taken down and
/// brought back up.
#[test]
fn vmx_pv_abi_errors_and_vcpu_initialise() {
    let errors = guest("errors", "test=errors console=xen").memory_mib(32).vcpus(2);
    let r = vmx("vmx_pv_abi_errors", &[errors]).timeout_secs(300).run();
    let d = checks::domain_shut_down(&r, "errors", "poweroff");
    ran_on_vmx(&r, d.id);
    checks::guest_checks_pass(&r, d.id, "errors", 200);
    for name in ["initialise_vcpu1", "vcpu1_ran", "vcpu1_took_itself_down", "vcpu1_resumed_after_down"] {
        checks::guest_check(&r, d.id, "errors", name);
    }
    r.assert_success();
    checks::domains_done(&r, 1, 0);
}

/// The dom0 agent on VT-x: the hypervisor builds it with its RAM identity-mapped under EPT,
/// and it builds a domain through the control interface, relays it and destroys it.
#[test]
fn vmx_dom0_agent_builds_a_domain() {
    let domains = [guest("built", "test=hello")];
    let r = BochsVm::built_by("vmx_agent", &qemu_tests::image(), CMDLINE, &domains, qemu_tests::domain::Builder::Agent)
        .timeout_secs(300)
        .run();
    r.assert_success();
    let d = checks::domain_shut_down(&r, "built", "poweroff");
    ran_on_vmx(&r, d.id);
    r.line_where("the agent building the domain", |l| {
        l.contains(&format!("agent: domain {} (built) built and started", d.id))
    });
    checks::domain_shut_down(&r, "dom0", "poweroff");
    let done = checks::domains_done(&r, 2, 0);
    r.check(done.free_frames_before == done.free_frames_after, format!("frames leaked: {done:?}"));
}

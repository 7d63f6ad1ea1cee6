//! The dom0 agent as domain 0 on AMD-V (SVM + NPT): the hypervisor builds it from the first
//! boot module (RAM identity-mapped, privileged) and hands it the other modules; the agent
//! builds those domains through the control interface, relays their consoles, destroys
//! them when they end and, with `exit-when-idle`, shuts down, which ends the run.
//!
//! Judged by the agent's `agent: ...` lines, the guests' own output, and the hypervisor's
//! `DOMAIN`/`DOMAINS` report (which counts free frames before dom0 and after everything).

use qemu_tests::domain::{self, DomainSpec};
use qemu_tests::{checks, RunResult, Vm};
use std::path::Path;

const CMDLINE: &str = "loglvl=info exit-when-idle";

fn guest(name: &str, cmdline: &str) -> DomainSpec {
    DomainSpec::new(qemu_tests::test_guest()).name(name).cmdline(cmdline).memory_mib(32)
}

/// The agent's line that starts with `agent: {prefix}` (fails the test if none).
fn agent_line<'a>(r: &'a RunResult, prefix: &str) -> &'a str {
    let needle = format!("agent: {prefix}");
    r.line_where(&format!("`{needle}`"), |l| qemu_tests::domain_log::log_message(l).starts_with(&needle))
}

/// Every frame came back: the counts before dom0 was built and after everything ended.
fn no_frame_leaked(r: &RunResult) {
    let done = r.domains_done();
    r.check(
        done.free_frames_before == done.free_frames_after,
        format!("free frames before {} != after {}", done.free_frames_before, done.free_frames_after),
    );
}

#[test]
fn agent_builds_domains_relays_output_and_exits_when_idle() {
    let domains = [guest("first", "test=hello"), guest("second", "test=hello").vcpus(2)];
    let r = Vm::agent_domains("agent_builds", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .timeout_secs(180)
        .run();
    r.assert_success();
    agent_line(&r, "Ferrovisor dom0 agent");
    let dom0 = checks::domain_shut_down(&r, "dom0", "poweroff");
    r.check(dom0.id == 0, format!("dom0 has id {}: {}", dom0.id, dom0.raw));
    for name in ["first", "second"] {
        let d = checks::domain_shut_down(&r, name, "poweroff");
        r.check(d.id != 0, format!("{name} got id 0"));
        agent_line(&r, &format!("domain {} ({name}) built and started, uuid ", d.id));
        agent_line(&r, &format!("domain {} ({name}) ended: poweroff; destroying it", d.id));
        checks::guest_said_hello(&r, d.id);
    }
    r.check(checks::domain_shut_down(&r, "second", "poweroff").vcpus == 2, "second should have 2 vCPUs");
    // Dom0's RAM is identity-mapped: the agent finds itself where the hypervisor put it,
    // and its RAM ends where the hypervisor's mapping of it does.
    let hv = r.line_where("the hypervisor placing dom0", |l| l.contains("dom0: RAM "));
    let field = |line: &str, after: &str| -> String {
        line.split(after).nth(1).and_then(|t| t.split([',', ' ', ')']).next()).unwrap_or_default().to_owned()
    };
    let ram = field(hv, "dom0: RAM ");
    let ram_end = ram.split('-').nth(1).unwrap_or_default().to_owned();
    let agent = agent_line(&r, "Ferrovisor dom0 agent");
    r.check(
        field(agent, "loaded at ") == field(hv, "kernel at "),
        format!(
            "agent loaded at {} but the hypervisor put it at {}",
            field(agent, "loaded at "),
            field(hv, "kernel at ")
        ),
    );
    r.check(
        u64::from_str_radix(field(agent, "RAM up to ").trim_start_matches("0x"), 16).ok()
            == u64::from_str_radix(ram_end.trim_start_matches("0x"), 16).ok(),
        format!("agent RAM end {} != hypervisor's {ram_end}", field(agent, "RAM up to ")),
    );
    agent_line(&r, "no domains left; exit-when-idle: shutting down");
    checks::domains_done(&r, 3, 0);
    no_frame_leaked(&r);
}

#[test]
fn control_interface_refuses_bad_requests_from_dom0() {
    let dir = qemu_tests::harness::fresh_dir("agent_ctl_checks");
    let agent = domain::dom0_module(&qemu_tests::dom0_agent(), true);
    let agent = qemu_tests::iso::Module::new(agent.file, "dom0 cmdline=exit-when-idle ctl-checks");
    let mut modules = vec![agent];
    modules.extend(guest("after", "test=hello").modules().expect("test guest exists"));
    let r = Vm::iso_in("agent_ctl_checks", dir, &qemu_tests::image(), CMDLINE, &modules, false)
        .guest_cpus(2)
        .timeout_secs(180)
        .run();
    r.assert_success();
    let failed: Vec<&str> = r.lines_with("agent: ctl-check ").filter(|l| !l.trim_end().ends_with("=pass")).collect();
    r.check(failed.is_empty(), format!("failed checks: {failed:#?}"));
    let summary = agent_line(&r, "ctl-checks done");
    r.check(summary.ends_with("failed=0"), format!("summary: {summary}"));
    let passed: usize = r.lines_with("agent: ctl-check ").filter(|l| l.trim_end().ends_with("=pass")).count();
    r.check(passed >= 40, format!("only {passed} checks passed"));
    // The two domains made for the checks were destroyed without ever running.
    let destroyed: Vec<_> = r.domain_reports().into_iter().filter(|d| d.state == "destroyed").collect();
    r.check(destroyed.len() == 2, format!("expected 2 destroyed domains, got {destroyed:?}"));
    checks::domain_shut_down(&r, "after", "poweroff");
    no_frame_leaked(&r);
}

/// Writes `bytes` to `dir/name` and returns the path.
fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

#[test]
fn builder_failures_destroy_the_half_built_domain() {
    let dir = qemu_tests::harness::fresh_dir("agent_builder_failures");
    let test_guest = std::fs::read(qemu_tests::test_guest()).expect("reading the test guest");
    // Not a kernel at all.
    let garbage = file(&dir, "garbage", &[0x5a; 64 * 1024]);
    // An ELF without the PVH note: the test guest with the note's type byte changed.
    let mut no_note = test_guest.clone();
    let header = [4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0];
    let note = no_note.windows(header.len()).position(|w| w == header).expect("the test guest has a PVH entry note");
    no_note[note + 8] = 0x7e; // XEN_ELFNOTE_PHYS32_ENTRY (18) -> an unknown note type
    let no_note = file(&dir, "no-pvh-note", &no_note);
    // An initrd that does not fit in the domain's RAM (found after the domain exists).
    let big_initrd = file(&dir, "big-initrd", &vec![0xa5; 6 << 20]);
    let domains = [
        DomainSpec::new(&garbage).name("garbage"),
        DomainSpec::new(&no_note).name("nonote"),
        guest("toosmall", "test=hello").memory_mib(4).initrd(&big_initrd),
        guest("good", "test=hello"),
    ];
    let r = Vm::agent_domains("agent_builder_failures_run", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .timeout_secs(180)
        .run();
    r.assert_success();
    agent_line(&r, "domain \"garbage\" not built: kernel file: ");
    agent_line(&r, "domain \"nonote\" not built: kernel image: ");
    let line = agent_line(&r, "domain \"toosmall\" not built: kernel image: ");
    r.check(line.contains("RAM ends at"), format!("toosmall: {line}"));
    // The domain that failed after creation was destroyed, never ran, and freed its memory.
    let toosmall = r.domain_named("toosmall");
    r.check(toosmall.state == "destroyed", format!("toosmall: {}", toosmall.raw));
    checks::domain_shut_down(&r, "good", "poweroff");
    checks::domains_done(&r, 3, 0);
    no_frame_leaked(&r);
}

#[test]
fn destroying_and_recreating_a_domain_100_times_returns_all_memory() {
    let dir = qemu_tests::harness::fresh_dir("agent_rebuild");
    let mut modules =
        vec![qemu_tests::iso::Module::new(qemu_tests::dom0_agent(), "dom0 cmdline=exit-when-idle rebuild=100")];
    modules.extend(guest("again", "test=hello").memory_mib(8).modules().expect("test guest exists"));
    let r = Vm::iso_in("agent_rebuild", dir, &qemu_tests::image(), CMDLINE, &modules, false)
        .guest_cpus(2)
        .timeout_secs(300)
        .run();
    r.assert_success();
    let runs: Vec<_> = r.domain_reports().into_iter().filter(|d| d.name == "again").collect();
    r.check(runs.len() == 100, format!("expected 100 runs of `again`, got {}", runs.len()));
    r.check(runs.iter().all(|d| d.shut_down_with("poweroff")), "every run should power off");
    checks::domains_done(&r, 101, 0);
    no_frame_leaked(&r);
}

#[test]
fn console_input_reaches_the_domain_through_the_agent() {
    let domains = [guest("echo", "test=ring-echo")];
    let r = Vm::agent_domains("agent_console_input", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .serial_input_after("ring-echo: ready", "hello through the ring\n")
        .timeout_secs(180)
        .run();
    r.assert_success();
    let d = checks::domain_shut_down(&r, "echo", "poweroff");
    // The guest's ring output, relayed by the agent (the hypervisor serves no ring for it).
    r.console_line_where(d.id, "`ring-echo: ready` from the console ring", |l| l == "ring-echo: ready");
    // The typed line went hypervisor -> agent (CONSOLEIO_read) -> the guest's `in` ring.
    let got = r.guest_line(d.id, "ring-echo");
    r.check(got.raw.ends_with("got=hello through the ring"), format!("ring-echo: {}", got.raw));
    r.console_line_where(d.id, "the echo written back to the ring", |l| l == "ring-echo: got hello through the ring");
    no_frame_leaked(&r);
}

#[test]
fn a_crashing_domain_leaves_the_host_and_the_other_domains_running() {
    let domains = [guest("crasher", "test=memtouch"), guest("survivor", "test=spin ms=300")];
    let r =
        Vm::agent_domains("agent_crash", &qemu_tests::image(), CMDLINE, &domains).guest_cpus(2).timeout_secs(180).run();
    // A crash makes the run end with failure, after everything was cleaned up.
    r.assert_failure();
    let crasher = checks::domain_crashed(&r, "crasher");
    agent_line(&r, &format!("domain {} (crasher) ended: crash; destroying it", crasher.id));
    let survivor = checks::domain_shut_down(&r, "survivor", "poweroff");
    agent_line(&r, &format!("domain {} (survivor) ended: poweroff; destroying it", survivor.id));
    checks::domain_shut_down(&r, "dom0", "poweroff");
    checks::domains_done(&r, 3, 1);
    no_frame_leaked(&r);
}

#[test]
fn xenstore_over_the_ring_and_a_misbehaving_client_harms_nobody_else() {
    // Domain 1 abuses its ring at the end; domain 2 starts its checks after that.
    let domains =
        [guest("abuser", "test=xenstore peer=2 abuse=1"), guest("bystander", "test=xenstore peer=1 delay_ms=400")];
    let r = Vm::agent_domains("agent_xenstore", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .timeout_secs(180)
        .run();
    r.assert_success();
    for name in ["abuser", "bystander"] {
        let d = checks::domain_shut_down(&r, name, "poweroff");
        let failed: Vec<String> =
            r.guest_lines(d.id, "xenstore").into_iter().filter(|l| l.raw.contains("=fail")).map(|l| l.raw).collect();
        r.check(failed.is_empty(), format!("{name}: failed checks {failed:#?}"));
        let result = r.guest_line(d.id, "xenstore");
        let checks_passed = r.guest_lines(d.id, "xenstore").iter().filter(|l| l.raw.contains("=pass")).count();
        r.check(checks_passed >= 14, format!("{name}: only {checks_passed} checks passed ({})", result.raw));
    }
    let abuser = r.domain_named("abuser");
    r.console_line_where(abuser.id, "the abuser's ring stopped", |l| {
        l.contains("oversized_message_stops_the_ring=pass")
    });
    agent_line(&r, &format!("xenstored: domain {}: ", abuser.id));
    no_frame_leaked(&r);
}

/// More domains than one `getdomaininfolist` page (64) and more event channels than one
/// `SCHEDOP_poll` takes (128): the agent serves them all and misses no end.
#[test]
fn sixty_six_domains_at_once() {
    let domains: Vec<DomainSpec> = (0..66).map(|i| guest(&format!("g{i}"), "test=spin ms=200").memory_mib(4)).collect();
    let r = Vm::agent_domains("agent_66_domains", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .memory("1G")
        .timeout_secs(300)
        .run();
    r.assert_success();
    for i in 0..66 {
        let d = checks::domain_shut_down(&r, &format!("g{i}"), "poweroff");
        agent_line(&r, &format!("domain {} (g{i}) ended: poweroff; destroying it", d.id));
    }
    checks::domains_done(&r, 67, 0);
    no_frame_leaked(&r);
}

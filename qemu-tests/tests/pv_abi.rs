//! The Xen PV ABI between domains and at its error paths, with the test guest's own
//! behaviours: the normal image from a GRUB ISO with test-guest domains as modules and
//! `exit-when-idle`, judged by the guests' `GUEST <behaviour> <check>=pass|fail` lines (each
//! check states what Xen 4.17 answers), their final `GUEST <behaviour> result=` lines, and the
//! `DOMAIN`/`DOMAINS` lines (clean poweroffs, every frame returned).
//!
//! Domain ids are handed out in module order from 1, so each guest is told its partner's id
//! (`peer=`). The partners meet without xenstore: one offers an unbound event channel to the
//! other, which searches the offerer's first ports with `EVTCHNOP_bind_interdomain`.
//!
//! - errors: every hypercall family's bad pointers, bad ports, bad references, bad
//!   versions, unknown operations, and what a domU may not do to another domain (its
//!   `standby` partner) or one that does not exist; the guest is healthy afterwards.
//! - ping-pong: 100 interdomain event-channel round trips, echoed by the partner's upcall
//!   handler, with the TSC cycles per round trip.
//! - grants: map (twice, and read-only), write, unmap, copy between two domains, in three
//!   stages after each of which the granter checks its page and the entries' pins; every
//!   access that was not granted (or not that way) is refused.
//! - bench: the figures `cargo xtask bench` takes from `test=bench` (bare and `xen_version`
//!   hypercalls, a 4 KiB copy and a 4 KiB grant copy from the domain to itself) are printed,
//!   so the guest side of the bench cannot silently rot (no `-icount` here: only that they
//!   exist and are positive).
//! - hypercall fuzz: a `hcfuzz` domain makes thousands of hypercalls with random numbers,
//!   sub-operations and garbage arguments (none that may legitimately end or block it) while
//!   a `spin` bystander runs; every call returns, neither guest is disturbed, the hypervisor
//!   reports no panic or exception and every frame comes back.

use qemu_tests::selftest::SelftestLine;
use qemu_tests::{checks, DomainSpec, RunResult, Vm};

/// The hypervisor command line of every test here.
const CMDLINE: &str = "loglvl=info exit-when-idle";
/// Each guest's RAM.
const MEMORY_MIB: u64 = 32;

fn guest(name: &str, cmdline: &str) -> DomainSpec {
    // console=xen: one hypercall per line instead of one port write per byte.
    DomainSpec::new(qemu_tests::test_guest())
        .name(name)
        .memory_mib(MEMORY_MIB)
        .cmdline(&format!("{cmdline} console=xen"))
}

/// Runs the two domains (ids 1 and 2 in this order) on two CPUs.
fn run_pair(test: &str, first: DomainSpec, second: DomainSpec, timeout_secs: u64) -> RunResult {
    Vm::domains(test, &qemu_tests::image(), CMDLINE, &[first, second]).guest_cpus(2).timeout_secs(timeout_secs).run()
}

/// Domains `first` and `second` got ids 1 and 2 (their partners were told so).
#[track_caller]
fn ids_in_module_order(r: &RunResult, first: &str, second: &str) -> (u32, u32) {
    let (a, b) = (r.domain_named(first), r.domain_named(second));
    r.check(a.id == 1 && b.id == 2, format!("domain ids {} ({first}) and {} ({second}), expected 1 and 2", a.id, b.id));
    (a.id, b.id)
}

/// Checks the `errors` domain must have made (a sample over every family; the guest makes
/// about 250).
const ERRORS_REQUIRED: [&str; 60] = [
    // Bad guest pointers.
    "console_write_bad_pointer",
    "get_features_bad_pointer",
    "shutdown_bad_pointer",
    "poll_bad_pointer",
    "evtchn_alloc_unbound_bad_pointer",
    "evtchn_send_bad_pointer",
    "evtchn_status_bad_pointer",
    "gnttab_map_grant_ref_bad_pointer",
    "gnttab_copy_bad_pointer",
    "memory_add_to_physmap_bad_pointer",
    "memory_memory_map_bad_pointer",
    "hvm_set_param_bad_pointer",
    "vcpu_register_vcpu_info_bad_pointer",
    // Bad ports.
    "send_port0",
    "close_port4096",
    "unmask_port4096",
    "status_port4096",
    "bind_vcpu_port4096",
    "send_port1024",
    // VIRQs and IPIs.
    "bind_virq_out_of_range",
    "bind_virq_nonexistent_vcpu",
    "bind_virq_twice",
    "bind_ipi_nonexistent_vcpu",
    // Someone else's ports and domains.
    "alloc_unbound_other_domain",
    "status_other_domain",
    "reset_other_domain",
    "bind_interdomain_already_bound",
    "bind_interdomain_offered_to_another_domain",
    "alloc_unbound_nonexistent_domain",
    // Grants.
    "query_size_other_domain",
    "set_version_2",
    "map_ref_beyond_table",
    "unmap_bad_handle",
    "copy_beyond_page",
    // Memory, HVM parameters, vCPUs, scheduler, versions.
    "add_to_physmap_unknown_space",
    "memory_map",
    "balloon_in_one_page",
    "set_param_store_pfn",
    "set_param_index39",
    "vcpu_op_vcpu99",
    "pin_override",
    "poll_times_out",
    "get_features_submap1",
    "sched_unknown_op",
    "hypercall64",
    "vcpu_op_cmd_upper_half_ignored",
    "vcpu1_up_without_context",
    "vcpu1_down",
    "vcpu1_still_down",
    "initialise_64_no_paging",
    "initialise_32_null_cs",
    "vcpu1_uninitialised_after_refusals",
    "initialise_vcpu1",
    "vcpu1_ran",
    "vcpu1_took_itself_down",
    "vcpu1_resumed_after_down",
    "vcpu1_halted_down",
    // Still healthy afterwards, and the partner released.
    "healthy_event_upcall",
    "healthy_timer",
    "signal_partner",
];

#[test]
fn pv_abi_errors() {
    let r = run_pair(
        "pv_abi_errors",
        guest("errors", "test=errors peer=2").vcpus(2),
        guest("standby", "test=standby peer=1"),
        300,
    );
    let (errors, standby) = ids_in_module_order(&r, "errors", "standby");
    let lines = checks::guest_checks_pass(&r, errors, "errors", 200);
    for name in ERRORS_REQUIRED {
        r.check(
            lines.iter().any(|l| l.fields.first().is_some_and(|(k, _)| k == name)),
            format!("domain {errors} printed no `GUEST errors {name}=...` check"),
        );
    }
    checks::guest_checks_pass(&r, standby, "standby", 3);
    // The partner offered one port to another domain, then the one the errors domain bound.
    let offered = checks::guest_check(&r, standby, "standby", "offer");
    let other = checks::guest_check(&r, standby, "standby", "offer_to_someone_else");
    let bound = checks::guest_check(&r, errors, "errors", "bind_peer");
    let port = r.field_u64(&offered, "port");
    r.check(
        r.field_u64(&bound, "remote_port") == port,
        format!("the errors domain bound another port than the one offered:\n  {}\n  {}", bound.raw, offered.raw),
    );
    r.check(
        r.field_u64(&other, "port") + 1 == port,
        format!("ports are not handed out lowest first:\n  {}\n  {}", other.raw, offered.raw),
    );
    checks::domain_shut_down(&r, "errors", "poweroff");
    checks::domain_shut_down(&r, "standby", "poweroff");
    r.assert_success();
    checks::domains_done(&r, 2, 0);
}

#[test]
fn pv_abi_pingpong() {
    const ROUNDS: u64 = 100;
    let r = run_pair(
        "pv_abi_pingpong",
        guest("pong", &format!("test=pong peer=2 rounds={ROUNDS}")),
        guest("ping", &format!("test=ping peer=1 rounds={ROUNDS}")),
        300,
    );
    let (pong, ping) = ids_in_module_order(&r, "pong", "ping");
    checks::guest_checks_pass(&r, pong, "pong", 2);
    checks::guest_checks_pass(&r, ping, "ping", 4);
    let summary = |domid| {
        r.guest_lines(domid, "pingpong")
            .into_iter()
            .next()
            .unwrap_or_else(|| r.fail(format!("domain {domid} printed no `GUEST pingpong ...` line")))
    };
    let (ping_line, pong_line) = (summary(ping), summary(pong));
    for line in [&ping_line, &pong_line] {
        let n = r.field_u64(line, "round_trips");
        r.check(n == ROUNDS, format!("round_trips={n}, expected {ROUNDS}: {}", line.raw));
    }
    let cycles = r.field_u64(&ping_line, "cycles_per_round_trip");
    r.check(cycles > 0, format!("no cycles measured: {}", ping_line.raw));
    r.check(
        r.field_u64(&ping_line, "remote_port") == r.field_u64(&pong_line, "port"),
        format!("ping bound another port than pong offered:\n  {}\n  {}", ping_line.raw, pong_line.raw),
    );
    eprintln!("[pv_abi_pingpong] {}", ping_line.raw);
    let bench = bench_line(&r, ping, "evtchn_round_trip");
    r.check(
        r.field_u64(&bench, "cycles") == cycles && r.field_u64(&bench, "iterations") == ROUNDS,
        format!("the BENCH line disagrees with the GUEST line:\n  {}\n  {}", bench.raw, ping_line.raw),
    );
    checks::domain_shut_down(&r, "pong", "poweroff");
    checks::domain_shut_down(&r, "ping", "poweroff");
    r.assert_success();
    checks::domains_done(&r, 2, 0);
}

/// Checks of the mapper that show a refused access, and of the granter that show the pins.
const MAPPER_REQUIRED: [&str; 12] = [
    "map_invalid_entry",
    "map_granted_to_another_domain",
    "map_readonly_grant_writable",
    "copy_into_readonly_grant",
    "copy_from_invalid_entry",
    "map_rw",
    "map_ro",
    "unmap_rw_twice",
    "copy_from_ro_grant",
    "copy_from_rw_grant",
    "copy_into_rw_grant",
    "stage3_acknowledged",
];
const GRANTER_REQUIRED: [&str; 7] = [
    "mapper_write_landed",
    "rw_entry_pinned",
    "rw_entry_still_pinned",
    "ro_entry_released",
    "rw_entry_released",
    "rw_page_contents",
    "revoke_rw_grant",
];

#[test]
fn pv_abi_grants() {
    let r =
        run_pair("pv_abi_grants", guest("granter", "test=granter peer=2"), guest("mapper", "test=mapper peer=1"), 300);
    let (granter, mapper) = ids_in_module_order(&r, "granter", "mapper");
    let mapper_checks = checks::guest_checks_pass(&r, mapper, "mapper", MAPPER_REQUIRED.len());
    let granter_checks = checks::guest_checks_pass(&r, granter, "granter", GRANTER_REQUIRED.len());
    for (domid, kind, lines, required) in [
        (mapper, "mapper", &mapper_checks, &MAPPER_REQUIRED[..]),
        (granter, "granter", &granter_checks, &GRANTER_REQUIRED[..]),
    ] {
        for name in required {
            r.check(
                lines.iter().any(|l| l.fields.first().is_some_and(|(k, _)| k == name)),
                format!("domain {domid} printed no `GUEST {kind} {name}=...` check"),
            );
        }
    }
    checks::domain_shut_down(&r, "granter", "poweroff");
    checks::domain_shut_down(&r, "mapper", "poweroff");
    r.assert_success();
    checks::domains_done(&r, 2, 0);
}

/// The `BENCH name=<name> ...` line domain `domid` printed; fails if none, or if its
/// `cycles=` is not a positive number.
#[track_caller]
fn bench_line(r: &RunResult, domid: u32, name: &str) -> SelftestLine {
    let line = r
        .console(domid)
        .iter()
        .filter_map(|t| SelftestLine::parse_marked(t, "BENCH"))
        .find(|l| l.get("name") == Some(name))
        .unwrap_or_else(|| r.fail(format!("domain {domid} printed no `BENCH name={name} ...` line")));
    r.check(r.field_u64(&line, "cycles") > 0, format!("no cycles measured: {}", line.raw));
    line
}

#[test]
fn bench_guest_reports_figures() {
    let r = Vm::domains("bench_guest_reports_figures", &qemu_tests::image(), CMDLINE, &[guest("bench", "test=bench")])
        .timeout_secs(120)
        .run();
    let id = r.domain_named("bench").id;
    checks::guest_checks_pass(&r, id, "bench", 9);
    for (name, baseline) in [
        ("hypercall_bare", None),
        ("hypercall_xen_version", Some("hypercall_bare")),
        ("memcpy_4k", None),
        ("grant_copy_4k", Some("memcpy_4k")),
    ] {
        let line = bench_line(&r, id, name);
        r.check(r.field_u64(&line, "iterations") == 1000, format!("expected iterations=1000: {}", line.raw));
        r.check(line.get("baseline") == baseline, format!("expected baseline={baseline:?}: {}", line.raw));
        eprintln!("[bench_guest_reports_figures] {}", line.raw);
    }
    checks::domain_shut_down(&r, "bench", "poweroff");
    r.assert_success();
    checks::domains_done(&r, 1, 0);
}

/// The fuzzer's seed: fixed, so a failure can be replayed (add `trace=1` to the guest's
/// command line to see the call that does not return). `FERROVISOR_FUZZ_SEED` overrides it,
/// to explore other seeds.
const FUZZ_SEED: u64 = 20_240_611;
/// The fuzzer's hypercalls: about 2 s of guest time under TCG.
const FUZZ_CALLS: u64 = 50_000;

/// `FERROVISOR_FUZZ_SEED`, or [`FUZZ_SEED`].
fn fuzz_seed() -> u64 {
    match std::env::var("FERROVISOR_FUZZ_SEED") {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("FERROVISOR_FUZZ_SEED={v} is not a number")),
        Err(_) => FUZZ_SEED,
    }
}

#[test]
fn pv_abi_hypercall_fuzz() {
    let r = run_pair(
        "pv_abi_hypercall_fuzz",
        guest("fuzzer", &format!("test=hcfuzz seed={} calls={FUZZ_CALLS}", fuzz_seed())),
        guest("bystander", "test=spin ms=1500"),
        120,
    );
    let (fuzzer, bystander) = ids_in_module_order(&r, "fuzzer", "bystander");
    for needle in ["PANIC", "EXCEPTION"] {
        let reports: Vec<&str> = r.lines_with(needle).collect();
        r.check(reports.is_empty(), format!("the hypervisor reported {needle}:\n  {}", reports.join("\n  ")));
    }
    checks::console_lacks(&r, fuzzer, "GUEST exception");
    checks::console_lacks(&r, fuzzer, "GUEST panic");
    let result = r
        .guest_lines(fuzzer, "hcfuzz")
        .into_iter()
        .find(|l| l.get("result").is_some())
        .unwrap_or_else(|| r.fail(format!("domain {fuzzer} printed no `GUEST hcfuzz ... result=` line")));
    r.check(result.get("result") == Some("pass"), format!("the fuzzer did not pass: {}", result.raw));
    let (calls, ok, errors) =
        (r.field_u64(&result, "calls"), r.field_u64(&result, "ok"), r.field_u64(&result, "errors"));
    r.check(
        calls == FUZZ_CALLS && ok + errors == calls,
        format!("expected calls={FUZZ_CALLS} = ok + errors: {}", result.raw),
    );
    // Garbage is mostly refused, but not all of it.
    r.check(ok > 0 && errors > 0, format!("expected some calls to succeed and some to fail: {}", result.raw));
    eprintln!("[pv_abi_hypercall_fuzz] {}", result.raw);
    let spin = r.guest_line(bystander, "spin");
    r.check(r.field_u64(&spin, "iterations") > 0, format!("the bystander made no progress: {}", spin.raw));
    checks::domain_shut_down(&r, "fuzzer", "poweroff");
    checks::domain_shut_down(&r, "bystander", "poweroff");
    r.assert_success();
    checks::domains_done(&r, 2, 0);
}

//! Scheduling test-guest domains: eight CPU-bound domains on two CPUs all make progress and
//! share the CPUs, and two domains with weights 256 and 512 on one CPU get CPU time 1:2
//! (from the scheduler's own `runtime_ns` accounting).

use qemu_tests::{checks, DomainSpec, Vm};

const CMDLINE: &str = "loglvl=info exit-when-idle";

fn spinner(name: &str, ms: u64) -> DomainSpec {
    DomainSpec::new(qemu_tests::test_guest()).name(name).memory_mib(16).cmdline(&format!("test=spin ms={ms}"))
}

#[test]
fn eight_cpu_bound_domains_on_two_cpus() {
    const SPIN_MS: u64 = 1500;
    let names: Vec<String> = (1..=8).map(|i| format!("spin{i}")).collect();
    let domains: Vec<_> = names.iter().map(|n| spinner(n, SPIN_MS)).collect();
    let r = Vm::domains("sched_eight_on_two", &qemu_tests::image(), CMDLINE, &domains)
        .guest_cpus(2)
        .timeout_secs(240)
        .run();
    r.assert_success();
    for name in &names {
        let d = checks::domain_shut_down(&r, name, "poweroff");
        let spin = r.guest_line(d.id, "spin");
        let iterations = r.field_u64(&spin, "iterations");
        r.check(iterations > 0, format!("{name} made no progress: {}", spin.raw));
        // Each guest spins for 1.5 s of wall-clock time; eight of them on two CPUs can only
        // have had a fraction of it. A domain with its own CPU the whole time would show
        // at least the full 1.5 s.
        r.check(
            d.runtime_ns < SPIN_MS * 1_000_000,
            format!(
                "{name} ran {} ms of its {SPIN_MS} ms spin: it did not share a CPU: {}",
                d.runtime_ns / 1_000_000,
                d.raw
            ),
        );
    }
    let runtimes: Vec<String> =
        names.iter().map(|n| format!("{n}={} ms", r.domain_named(n).runtime_ns / 1_000_000)).collect();
    eprintln!("[sched_eight_on_two] runtimes: {}", runtimes.join(", "));
    checks::domains_done(&r, 8, 0);
}

#[test]
fn weights_256_and_512_share_one_cpu_1_to_2() {
    const SPIN_MS: u64 = 3000;
    let domains = [spinner("light", SPIN_MS).weight(256), spinner("heavy", SPIN_MS).weight(512)];
    let r = Vm::domains("sched_weights", &qemu_tests::image(), CMDLINE, &domains).smp(1).timeout_secs(180).run();
    r.assert_success();
    let light = checks::domain_shut_down(&r, "light", "poweroff");
    let heavy = checks::domain_shut_down(&r, "heavy", "poweroff");
    r.check(light.weight == 256, format!("light: weight={}, expected 256: {}", light.weight, light.raw));
    r.check(heavy.weight == 512, format!("heavy: weight={}, expected 512: {}", heavy.weight, heavy.raw));
    for d in [&light, &heavy] {
        r.guest_line(d.id, "spin");
    }
    // Both spin for the same wall-clock time side by side, so CPU time follows the weights.
    let ratio = heavy.runtime_ns as f64 / light.runtime_ns as f64;
    eprintln!(
        "[sched_weights] light {} ms, heavy {} ms, ratio {ratio:.3}",
        light.runtime_ns / 1_000_000,
        heavy.runtime_ns / 1_000_000
    );
    r.check(
        (1.8..=2.2).contains(&ratio),
        format!(
            "runtime ratio heavy/light = {ratio:.3} ({} ns / {} ns), expected 2 within 10%",
            heavy.runtime_ns, light.runtime_ns
        ),
    );
    checks::domains_done(&r, 2, 0);
}

/// `selftest=domains`: the self-test image builds a domain from its first module, runs it
/// to its end and destroys it, 200 times, and reports the free-frame count before and after.
#[test]
fn two_hundred_domains_created_and_destroyed() {
    let domains = [DomainSpec::new(qemu_tests::test_guest()).memory_mib(4).cmdline("test=hello")];
    let r = Vm::domains("selftest_domains", &qemu_tests::selftest_image(), "selftest=domains loglvl=warn", &domains)
        .guest_cpus(2)
        .timeout_secs(180)
        .run();
    r.assert_success();
    let line = r.selftest("domains");
    let rounds = r.field_u64(&line, "rounds");
    let shutdown = r.field_u64(&line, "shutdown");
    let before = r.field_u64(&line, "free_before");
    let after = r.field_u64(&line, "free_after");
    let during = r.field_u64(&line, "min_free_during");
    r.check(rounds == 200 && shutdown == 200, format!("expected 200 domains run to poweroff: {}", line.raw));
    r.check(after == before, format!("free frames {before} before, {after} after 200 domains: {}", line.raw));
    r.check(during < before, format!("domains seem to have used no memory: {}", line.raw));
    r.check(r.field_u64(&line, "alive") == 0, format!("domains left alive: {}", line.raw));
}

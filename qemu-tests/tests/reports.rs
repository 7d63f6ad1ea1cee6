//! Failure paths: the page-fault report, the panic report and an unknown
//! self-test name, each of which must end with failure status 35; and the harness's own
//! report of a run that hangs.

use qemu_tests::harness::Outcome;
use qemu_tests::selftest::{contains_word, has_source_location, mentions_number, number_after};
use qemu_tests::{DomainSpec, Vm};

const FAULT_ADDRESS: u64 = 0x0000_7fff_dead_b000;
const GENERAL_REGISTERS: [&str; 16] = [
    "RAX=", "RBX=", "RCX=", "RDX=", "RSI=", "RDI=", "RBP=", "RSP=", "R8=", "R9=", "R10=", "R11=", "R12=", "R13=",
    "R14=", "R15=",
];

#[test]
fn page_fault_report() {
    let r =
        Vm::kernel("fault_report", &qemu_tests::selftest_image(), "selftest=fault loglvl=info").timeout_secs(60).run();
    r.assert_failure();
    r.line_where("with EXCEPTION, #PF and vector 14", |l| {
        l.contains("EXCEPTION") && l.contains("#PF") && mentions_number(l, 14)
    });
    r.line_where("with RIP=", |l| contains_word(l, "RIP="));
    let cr2 = r.line_where("with CR2=", |l| contains_word(l, "CR2="));
    r.check(number_after(cr2, "CR2=") == Some(FAULT_ADDRESS), format!("expected CR2={FAULT_ADDRESS:#018x} in: {cr2}"));
    r.check(
        cr2.contains("CR2=0x00007fffdeadb000"),
        format!("CR2 should be printed as 0x00007fffdeadb000 (16 lowercase hex digits): {cr2}"),
    );
    for reg in GENERAL_REGISTERS {
        r.line_where(&format!("with {reg}"), |l| contains_word(l, reg));
    }
}

#[test]
fn panic_report() {
    let r =
        Vm::kernel("panic_report", &qemu_tests::selftest_image(), "selftest=panic loglvl=info").timeout_secs(60).run();
    r.assert_failure();
    r.line_where("with PANIC", |l| l.contains("PANIC"));
    r.line_where("with the panic message", |l| l.contains("selftest: deliberate panic"));
    r.line_where("with a src/...rs:line location", has_source_location);
}

#[test]
fn unknown_selftest_fails() {
    let r = Vm::kernel("unknown_selftest", &qemu_tests::selftest_image(), "selftest=no-such-test loglvl=info")
        .timeout_secs(60)
        .run();
    r.assert_failure();
    r.check(r.selftest_all("boot").is_empty(), "an unknown self-test must not run the boot self-test");
    r.check(!r.serial.trim().is_empty(), "an unknown self-test must print an error on the serial console");
}

/// The stack window of CPU 0 (see hypervisor/src/mm/stacks.rs): 1 MiB per CPU.
const CPU0_STACK_WINDOW: std::ops::Range<u64> = 0xffff_a000_0000_0000..0xffff_a000_0010_0000;

#[test]
fn stack_overflow_is_a_reported_double_fault() {
    let r = Vm::kernel("stack_overflow", &qemu_tests::selftest_image(), "selftest=stack-overflow loglvl=info")
        .timeout_secs(60)
        .run();
    r.assert_failure();
    // The #PF on the guard page cannot be delivered on the dead stack; the double fault
    // runs on its own IST stack and reports.
    r.line_where("with EXCEPTION, #DF and vector 8", |l| {
        l.contains("EXCEPTION") && l.contains("#DF") && mentions_number(l, 8)
    });
    let cr2_line = r.line_where("with CR2=", |l| contains_word(l, "CR2="));
    let cr2 = number_after(cr2_line, "CR2=").unwrap_or(0);
    r.check(
        CPU0_STACK_WINDOW.contains(&cr2),
        format!("CR2={cr2:#x} should be in CPU0's stack window (its guard page): {cr2_line}"),
    );
}

/// A run that never ends is killed at its timeout, and the failure report says where every
/// CPU was: their registers, read through QEMU's monitor just before the kill.
#[test]
fn a_hung_run_is_reported_with_every_cpus_registers() {
    let spinner = DomainSpec::new(qemu_tests::test_guest()).name("spinner").cmdline("test=spin ms=3600000");
    // No `exit-when-idle`: nothing ends this run but the harness.
    let r = Vm::domains("hung_run_cpu_state", &qemu_tests::image(), "loglvl=info", &[spinner])
        .smp(2)
        .timeout_secs(10)
        .run();
    r.check(r.outcome == Outcome::TimedOut, format!("expected a timeout, got: {}", r.outcome_text()));
    let state = r.cpu_state.as_deref().unwrap_or_else(|| r.fail("a timed-out run has no CPU state"));
    for cpu in ["CPU#0", "CPU#1"] {
        let registers =
            state.split(cpu).nth(1).unwrap_or_else(|| r.fail(format!("no {cpu} in the CPU state:\n{state}")));
        for reg in ["RIP=", "RSP=", "CR3=", "RFL="] {
            r.check(registers.contains(reg), format!("no {reg} for {cpu} in the CPU state:\n{state}"));
        }
    }
    r.check(state.contains("* CPU #"), format!("no `info cpus` answer in the CPU state:\n{state}"));
    r.check(r.report().contains(state), "the failure report lacks the CPU state");
    let saved = std::fs::read_to_string(r.dir.join("cpu-state.txt")).unwrap_or_default();
    r.check(saved == state, "cpu-state.txt differs from the CPU state in the report");
}

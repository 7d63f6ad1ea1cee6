//! A CPU without SVM, or with SVM but without nested paging: the normal image boots, says
//! why it cannot run guests, and — since its boot-time domain can never run — ends the run
//! with failure (status 35) under `exit-when-idle` instead of hanging.

use qemu_tests::{checks, domain_log, DomainSpec, Vm};

fn no_virtualization(name: &str, cpu: &str, npt: bool) {
    let domains = [DomainSpec::new(qemu_tests::test_guest()).name("hello").memory_mib(32).cmdline("test=hello")];
    let r = Vm::domains(name, &qemu_tests::image(), "loglvl=info exit-when-idle", &domains)
        .cpu(cpu)
        .smp(2)
        .timeout_secs(120)
        .run();
    r.assert_failure();
    let what = if npt { "saying nested paging (NPT) is not available" } else { "saying SVM is not available" };
    r.line_where(what, |l| checks::says_virtualization_unavailable(l, npt));
    let console = domain_log::console_lines(&r.serial);
    r.check(console.is_empty(), format!("a domain ran without virtualization support: {console:?}"));
}

#[test]
fn no_svm_is_reported() {
    no_virtualization("detect_no_svm", "qemu64,-svm", false);
}

#[test]
fn no_nested_paging_is_reported() {
    no_virtualization("detect_no_npt", "EPYC,-npt", true);
}

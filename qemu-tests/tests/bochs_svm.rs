//! A second opinion on the AMD-V backend: Bochs' `ryzen` model emulates SVM with nested
//! paging and NRIP-save (QEMU's TCG has no NRIP-save). A hello-world domain boots from the
//! GRUB ISO and shuts down cleanly, using VMMCALL.

use qemu_tests::{bochs, checks, BochsVm, DomainSpec};

#[test]
fn svm_under_bochs_hello_world() {
    let domains = [DomainSpec::new(qemu_tests::test_guest()).name("hello").memory_mib(16).cmdline("test=hello")];
    let r = BochsVm::domains("bochs_svm_hello", &qemu_tests::image(), "loglvl=info exit-when-idle", &domains)
        .cpu_model(bochs::model::SVM)
        .timeout_secs(240)
        .run();
    r.assert_success();
    r.line_where("`virtualization: AMD-V ...`", |l| l.contains("virtualization: AMD-V with nested paging"));
    let d = checks::domain_shut_down(&r, "hello", "poweroff");
    checks::guest_said_hello(&r, d.id);
    let start = r.guest_line(d.id, "start");
    r.check(start.get("hypercall") == Some("vmmcall"), format!("guest does not use vmmcall: {}", start.raw));
    let result = r.guest_line(d.id, "hello");
    r.check(result.get("result") == Some("pass"), format!("expected result=pass: {}", result.raw));
    checks::domains_done(&r, 1, 0);
}

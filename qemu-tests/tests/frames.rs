//! The shared frame allocator under concurrent use by every CPU.

use qemu_tests::Vm;

#[test]
fn frames_stress_4_cpus() {
    let r = Vm::kernel("frames_stress", &qemu_tests::selftest_image(), "selftest=frames loglvl=info")
        .smp(4)
        .timeout_secs(180)
        .run();
    r.assert_success();
    let line = r.selftest("frames");
    let cpus = r.field_u64(&line, "cpus");
    r.check(cpus == 4, format!("cpus={cpus}, expected 4: {}", line.raw));
    let allocations = r.field_u64(&line, "allocations");
    r.check(allocations > 0, format!("allocations=0: {}", line.raw));
    let duplicates = r.field_u64(&line, "duplicates");
    r.check(duplicates == 0, format!("{duplicates} frames were handed out twice: {}", line.raw));
    let before = r.field_u64(&line, "free_before");
    let after = r.field_u64(&line, "free_after");
    r.check(before == after, format!("free frames {before} before, {after} after: frames leaked or double-freed"));
}

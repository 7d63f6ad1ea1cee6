//! Booting the self-test image to "ready" by PVH (`-kernel`): CPUs, APIC
//! timers and the frame allocator, with 1 and 4 CPUs and with RAM above 4 GiB.
//! Also checks that both images carry a PVH note and a multiboot2 header.

use qemu_tests::{checks, image, Vm};

#[test]
fn images_have_pvh_note_and_multiboot2_header() {
    for (what, path) in [("normal", qemu_tests::image()), ("self-test", qemu_tests::selftest_image())] {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        match image::inspect(&bytes) {
            Ok(info) => eprintln!("{what} image {}: {info:x?}", path.display()),
            Err(e) => panic!("{what} image {} is not bootable: {e}", path.display()),
        }
    }
}

#[test]
fn boot_1_cpu() {
    let r = Vm::kernel("boot_1_cpu", &qemu_tests::selftest_image(), "selftest=boot loglvl=info")
        .smp(1)
        .timeout_secs(60)
        .run();
    r.assert_success();
    checks::boot_ready(&r, 1);
}

#[test]
fn boot_4_cpus() {
    let r = Vm::kernel("boot_4_cpus", &qemu_tests::selftest_image(), "selftest=boot loglvl=info")
        .smp(4)
        .timeout_secs(90)
        .run();
    r.assert_success();
    checks::boot_ready(&r, 4);
}

#[test]
fn boot_with_5g_sees_memory_above_4g() {
    let r = Vm::kernel("boot_5g", &qemu_tests::selftest_image(), "selftest=boot loglvl=info")
        .smp(2)
        .memory("5G")
        .timeout_secs(90)
        .run();
    r.assert_success();
    let line = checks::boot_ready(&r, 2);
    let free = r.field_u64(&line, "free_frames");
    let free_bytes = free.saturating_mul(4096);
    r.check(
        free_bytes > 4 << 30,
        format!("free_frames={free} is {free_bytes} bytes with -m 5G, expected more than 4 GiB"),
    );
}

#[test]
fn log_level_comes_from_the_command_line() {
    let quiet = Vm::kernel("loglvl_warn", &qemu_tests::selftest_image(), "selftest=boot loglvl=warn")
        .smp(2)
        .timeout_secs(60)
        .run();
    quiet.assert_success();
    checks::boot_ready(&quiet, 2);
    let info_lines = quiet.lines_with(" INFO ").count();
    quiet.check(info_lines == 0, format!("loglvl=warn still printed {info_lines} INFO lines"));

    let verbose = Vm::kernel("loglvl_debug", &qemu_tests::selftest_image(), "selftest=boot loglvl=debug")
        .smp(2)
        .timeout_secs(60)
        .run();
    verbose.assert_success();
    verbose.check(verbose.lines_with(" DEBUG ").count() > 0, "loglvl=debug printed no DEBUG lines");
    verbose.check(verbose.lines_with(" INFO ").count() > 0, "loglvl=debug printed no INFO lines");
}

#[test]
fn boot_64_cpus() {
    let r = Vm::kernel("boot_64_cpus", &qemu_tests::selftest_image(), "selftest=boot loglvl=warn")
        .smp(64)
        .memory("1G")
        .timeout_secs(180)
        .run();
    r.assert_success();
    checks::boot_ready(&r, 64);
}

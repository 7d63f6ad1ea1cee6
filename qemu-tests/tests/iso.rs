//! The GRUB ISO path (multiboot2): the self-test image with two modules with
//! distinct command lines, under SeaBIOS and under OVMF (UEFI).

use qemu_tests::checks::{self, TestModule};
use qemu_tests::harness::fresh_dir;
use qemu_tests::util::Rng;
use qemu_tests::Vm;

fn iso_boot(name: &str, uefi: bool, cpus: u32, timeout_secs: u64) {
    let dir = fresh_dir(name);
    let (mut rng, seed) = Rng::from_time();
    eprintln!("[{name}] random seed {seed:#x}");
    let first_cmdline = format!("first-module alpha={}", rng.token());
    let second_cmdline = format!("second-module beta={} gamma=2", rng.token());
    let modules = [
        TestModule::random(&dir, "module-a.bin", 64 * 1024 + 7, &mut rng, &first_cmdline),
        TestModule::random(&dir, "module-b.bin", 200 * 1024, &mut rng, &second_cmdline),
    ];
    let cmdline = format!("selftest=boot loglvl=info marker={}", rng.token());
    let iso_modules: Vec<_> = modules.iter().map(TestModule::iso_module).collect();
    let r = Vm::iso_in(name, dir, &qemu_tests::selftest_image(), &cmdline, &iso_modules, uefi)
        .smp(cpus)
        .timeout_secs(timeout_secs)
        .run();
    r.assert_success();
    checks::boot_ready(&r, u64::from(cpus));
    checks::cmdline_is(&r, &cmdline);
    checks::modules_match(&r, &modules);
}

#[test]
fn grub_iso_seabios_two_modules() {
    iso_boot("grub_iso_seabios", false, 1, 120);
}

#[test]
fn grub_iso_uefi_two_modules() {
    // q35 + OVMF under TCG needs a while before GRUB even starts.
    iso_boot("grub_iso_uefi", true, 2, 240);
}

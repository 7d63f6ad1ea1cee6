//! A boot module and the command line through PVH (`-kernel -initrd -append`).

use qemu_tests::checks::{self, TestModule};
use qemu_tests::harness::fresh_dir;
use qemu_tests::qemu::Boot;
use qemu_tests::util::Rng;
use qemu_tests::Vm;

#[test]
fn pvh_module_and_cmdline() {
    let name = "pvh_module_and_cmdline";
    let dir = fresh_dir(name);
    let (mut rng, seed) = Rng::from_time();
    eprintln!("[{name}] random seed {seed:#x}");
    let module = TestModule::random(&dir, "module.bin", 100 * 1024, &mut rng, "");
    let cmdline = format!("selftest=boot loglvl=info token={}", rng.token());
    let r = Vm::with_dir(
        name,
        dir,
        Boot::Kernel { image: qemu_tests::selftest_image(), cmdline: cmdline.clone(), initrd: None },
    )
    .initrd(&module.file)
    .smp(1)
    .timeout_secs(60)
    .run();
    r.assert_success();
    checks::boot_ready(&r, 1);
    checks::cmdline_is(&r, &cmdline);
    // QEMU's PVH start_info gives the -initrd module no command line.
    checks::modules_match(&r, &[module]);
}

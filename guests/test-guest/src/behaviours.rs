//! What the guest does, chosen with `test=NAME` (see `test_guest::cmdline`).
//!
//! | test | does | prints | ends with |
//! | --- | --- | --- | --- |
//! | `hello` | the hello line through port 0xE9, `console_io` and COM1 | `hello from domain D vcpu V via port 0xe9` / `via console_io` / `via com1`, `GUEST hello result=pass` | poweroff |
//! | `cpuid` | Xen CPUID leaves, hidden SVM/VMX, #GP on an unknown MSR, EFER, an unknown hypercall | `GUEST cpuid <check>=pass\|fail ...` per check, `GUEST cpuid result=pass\|fail` | poweroff if all pass, else crash |
//! | `memtouch` | writes at (end of RAM + 16 MiB) | `GUEST memtouch ram_end= target=`, and `GUEST memtouch survived` if the write returns | the hypervisor must crash it (else crash) |
//! | `triplefault` | loads an empty IDT and executes `int3` | `GUEST triplefault ...` | the hypervisor must crash it (else crash) |
//! | `timer` | upcall vector via HVMOP_set_param, 5 × (`set_timer_op(now + 20 ms)`, `sti; hlt` until the upcall) | `GUEST timer wakeup=i elapsed_us=`, `GUEST timer wakeups=5 min_elapsed_us=X` | poweroff, or crash if < 5 wake-ups or any < 20 ms |
//! | `spin ms=N [load=exits\|fpu]` | spins on system time until N ms (default 2000) since the guest started; each round also executes a CPUID (`exits`: an exit per round) or 16 FXRSTORs (`fpu`) | `GUEST spin iterations=N ms= elapsed_us=` | poweroff |
//! | `idle` | `sti; hlt` forever, no timer | `GUEST idle ...` | never |
//! | `errors [peer=D]` | every hypercall family's error paths against Xen 4.17's answers (see [`crate::errors`]); with a `standby` peer also those about another domain; with 2 vCPUs, VCPUOP_initialise/up/down on vCPU 1 (started in long mode) | `GUEST errors <check>=pass\|fail rc= expected=`, `GUEST errors result=` | poweroff if all pass (with 2 vCPUs by taking the last one down), else crash |
//! | `standby peer=D` | offers `D` an event channel (and one to someone else), waits for `D`'s event | `GUEST standby ...` | poweroff, crash without the event |
//! | `pong peer=D [rounds=N]` | offers `D` a port, echoes N events from the upcall handler | `GUEST pingpong round_trips= cycles_per_round_trip= role=pong` | poweroff if N echoed |
//! | `ping peer=D [rounds=N] [port=P]` | binds `D`'s port, times N round trips | `GUEST pingpong round_trips=N cycles_per_round_trip=C role=ping` | poweroff if N done |
//! | `granter peer=D` | grants `D` a writable and a read-only page, checks the mapper's stages (see [`crate::interdomain`]) | `GUEST granter <check>=...` | poweroff if all pass |
//! | `mapper peer=D [port=P]` | refused ungranted access; maps, writes, unmaps, copies `D`'s grants | `GUEST mapper <check>=...` | poweroff if all pass |
//! | `hcfuzz [seed=N] [calls=N] [trace=1]` | N (default 20000) random hypercalls with garbage arguments, none that may legitimately end or block the domain (see [`crate::hcfuzz`]) | `GUEST hcfuzz errno=E name= count=` per errno, `GUEST hcfuzz calls=N ok= errors= result=pass` | poweroff (an exception crashes it) |
//! | `ring-echo` | its PV console ring (HVM params): writes `ring-echo: ready`, waits up to 60 s for a line of input in the ring, writes `ring-echo: got <line>` (see [`crate::ring_console`]) | `GUEST ring-echo got=<line>` or `GUEST ring-echo result=fail ...` | poweroff once a line came, else crash |
//! | `xenstore [peer=D] [abuse=1] [delay_ms=N]` | a xenstore client on its own ring (see [`crate::xenstore_client`]): reads, writes, directory, errors, a watch, a transaction, the peer's keys refused; with `abuse=1` an oversized message that must stop its ring | `GUEST xenstore <check>=pass\|fail ...`, `GUEST xenstore result=` | poweroff if all pass, else crash |
//! | `bench` | times `ITERATIONS` bare hypercalls, `xen_version` calls, 4 KiB copies and 4 KiB grant copies from itself (see [`crate::bench`]) | `BENCH name=<figure> cycles=<per op> iterations= [baseline=]` per figure, `GUEST bench <check>=...` | poweroff if every operation succeeded |

use test_guest::abi::*;
use test_guest::cmdline::{Behaviour, SpinLoad};
use test_guest::start_info;
use xen_abi::cpuid::{
    XEN_CPUID_FIRST_LEAF, XEN_CPUID_SIGNATURE, XEN_HVM_CPUID_DOMID_PRESENT, XEN_HVM_CPUID_VCPU_ID_PRESENT,
};
use xen_abi::errno::ENOSYS;
use xen_abi::hvm::{callback_via_vector, HVM_PARAM_CALLBACK_IRQ};
use xen_abi::xen::DOMID_SELF;

use crate::console::Sink;
use crate::traps::CALLBACK_VECTOR;
use crate::{arch, paging, println, println_to, traps, xen, BootInfo, OrUnknown};

const NS_PER_MS: u64 = 1_000_000;
/// The timer test's wait.
const TIMER_WAIT_NS: u64 = 20 * NS_PER_MS;
/// The timer test's number of wake-ups.
const TIMER_ROUNDS: u64 = 5;
/// How far beyond the end of RAM `memtouch` writes.
const MEMTOUCH_BEYOND: u64 = 16 << 20;

/// Runs `behaviour`; never returns.
pub fn run(behaviour: Behaviour, boot: &BootInfo, started_ns: u64) -> ! {
    match behaviour {
        Behaviour::Hello => hello(),
        Behaviour::Cpuid => cpuid(),
        Behaviour::Memtouch => memtouch(boot),
        Behaviour::Triplefault => triplefault(),
        Behaviour::Unhandled => unhandled(),
        Behaviour::Timer => timer(),
        Behaviour::Spin { ms, load } => spin(ms, load, started_ns),
        Behaviour::Idle => idle(),
        Behaviour::Errors { peer } => crate::errors::run(boot, peer),
        Behaviour::Standby { peer } => crate::interdomain::standby(peer),
        Behaviour::Ping { peer, rounds } => crate::interdomain::ping(peer, rounds),
        Behaviour::Pong { peer, rounds } => crate::interdomain::pong(peer, rounds),
        Behaviour::Granter { peer } => crate::interdomain::granter(peer),
        Behaviour::Mapper { peer } => crate::interdomain::mapper(boot, peer),
        Behaviour::Bench => crate::bench::run(),
        Behaviour::RingEcho => crate::ring_console::echo(),
        Behaviour::Xenstore { peer, abuse, delay_ms } => crate::xenstore_client::run(peer, abuse, delay_ms),
        Behaviour::Hcfuzz { seed, calls, trace } => crate::hcfuzz::run(boot, seed, calls, trace),
    }
}

fn pass_fail(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "fail"
    }
}

fn finish(ok: bool) -> ! {
    xen::shutdown(if ok { ShutdownReason::Poweroff } else { ShutdownReason::Crash })
}

fn hello() -> ! {
    let (d, v) = (OrUnknown(xen::domid()), OrUnknown(xen::vcpu_id()));
    println_to!(Sink::E9, "hello from domain {d} vcpu {v} via port 0xe9");
    if xen::present() {
        println_to!(Sink::ConsoleIo, "hello from domain {d} vcpu {v} via console_io");
    } else {
        println!("GUEST hello console_io skipped: no Xen CPUID leaves");
    }
    println_to!(Sink::Com1, "hello from domain {d} vcpu {v} via com1");
    println!("GUEST hello result=pass");
    finish(true)
}

/// Prints `GUEST cpuid <name>=pass|fail <details>` and remembers failures.
struct Checks {
    all_ok: bool,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, details: core::fmt::Arguments<'_>) {
        self.all_ok &= ok;
        println!("GUEST cpuid {name}={} {details}", pass_fail(ok));
    }
}

fn cpuid() -> ! {
    let mut c = Checks { all_ok: true };

    let (max_leaf, sig) = xen::signature();
    let sig_text = core::str::from_utf8(&sig).unwrap_or("(not ASCII)");
    let sig_ok = &sig == XEN_CPUID_SIGNATURE;
    c.check(
        "signature",
        sig_ok && max_leaf == XEN_CPUID_MAX_LEAF,
        format_args!(
            "leaf={XEN_CPUID_FIRST_LEAF:#x} max_leaf={max_leaf:#x} expected_max_leaf={XEN_CPUID_MAX_LEAF:#x} \
             signature_ok={sig_ok} text={}",
            sig_text.trim_matches('\0')
        ),
    );

    let version = arch::cpuid(XEN_CPUID_VERSION_LEAF, 0).eax;
    c.check(
        "version",
        version == XEN_VERSION_4_17,
        format_args!("eax={version:#010x} expected={XEN_VERSION_4_17:#010x}"),
    );

    let leaf2 = arch::cpuid(XEN_CPUID_HYPERCALL_LEAF, 0);
    c.check(
        "hypercall_page",
        leaf2.eax == 1 && leaf2.ebx == XEN_HYPERCALL_PAGE_MSR,
        format_args!("pages={} msr={:#x}", leaf2.eax, leaf2.ebx),
    );

    if xen::present() {
        let via_page = xen::xen_version_via_hypercall_page();
        c.check(
            "hypercall_page_call",
            via_page == i64::from(XEN_VERSION_4_17),
            format_args!("xen_version through the page returned {via_page:#x}"),
        );
    }

    let khz = arch::cpuid(XEN_CPUID_TIME_LEAF, 0).ecx;
    let scale = xen::time_scale();
    let t0 = xen::now_ns();
    // Spin until the system time moves (bounded).
    let mut t1 = t0;
    for _ in 0..10_000_000u64 {
        t1 = xen::now_ns();
        if t1 > t0 {
            break;
        }
        core::hint::spin_loop();
    }
    c.check(
        "time",
        xen::present() && khz != 0 && scale.mul != 0 && t1 > t0,
        format_args!("tsc_khz={khz} mul={:#x} shift={} now_ns={t1}", scale.mul, scale.shift),
    );

    let ids = arch::cpuid(XEN_CPUID_HVM_LEAF, 0);
    let flags = XEN_HVM_CPUID_VCPU_ID_PRESENT | XEN_HVM_CPUID_DOMID_PRESENT;
    c.check(
        "ids",
        xen::present() && ids.eax & flags == flags && ids.ebx == 0 && ids.ecx != 0 && ids.ecx < u32::from(DOMID_SELF),
        format_args!("flags={:#x} vcpu={} domid={}", ids.eax, ids.ebx, ids.ecx),
    );

    let leaf1 = arch::cpuid(1, 0);
    c.check("hypervisor_bit", leaf1.ecx & CPUID1_ECX_HYPERVISOR != 0, format_args!("leaf1_ecx={:#010x}", leaf1.ecx));
    c.check("vmx_hidden", leaf1.ecx & CPUID1_ECX_VMX == 0, format_args!("leaf1_ecx={:#010x}", leaf1.ecx));
    let ext = arch::cpuid(0x8000_0001, 0);
    c.check("svm_hidden", ext.ecx & CPUID80000001_ECX_SVM == 0, format_args!("leaf80000001_ecx={:#010x}", ext.ecx));

    let unknown = traps::rdmsr_checked(MSR_UNDEFINED);
    c.check(
        "msr_unknown_gp",
        unknown.is_none(),
        format_args!(
            "msr={MSR_UNDEFINED:#x} {}",
            match unknown {
                None => "raised=#GP",
                Some(_) => "raised=nothing",
            }
        ),
    );

    let efer = traps::rdmsr_checked(MSR_EFER);
    let efer_ok = efer.is_some_and(|e| e & (EFER_LME | EFER_LMA) == EFER_LME | EFER_LMA);
    match efer {
        Some(e) => c.check("efer", efer_ok, format_args!("value={e:#x}")),
        None => c.check("efer", false, format_args!("raised=#GP")),
    }

    let rc = xen::hypercall(HYPERVISOR_UNDEFINED, 0, 0, 0, 0, 0);
    c.check(
        "unknown_hypercall",
        xen::present() && rc == -ENOSYS,
        format_args!("nr={HYPERVISOR_UNDEFINED} rc={rc} expected={}", -ENOSYS),
    );

    println!("GUEST cpuid result={}", pass_fail(c.all_ok));
    finish(c.all_ok)
}

fn memtouch(boot: &BootInfo) -> ! {
    let Some(ram_end) = start_info::ram_end(boot.memmap().iter().copied()) else {
        println!("GUEST memtouch error=no-memory-map");
        finish(false)
    };
    let target = ram_end + MEMTOUCH_BEYOND;
    println!("GUEST memtouch ram_end={ram_end:#x} target={target:#x} writing");
    if !paging::identity_map(target) {
        println!("GUEST memtouch error=cannot-map target={target:#x}");
        finish(false)
    }
    // SAFETY: deliberately outside the guest's RAM: the hypervisor must stop this domain at
    // the write (a nested page fault). If it does not, the write lands in memory nobody in
    // this guest uses.
    unsafe { core::ptr::write_volatile(target as *mut u64, 0x5a5a_5a5a_5a5a_5a5a) };
    println!("GUEST memtouch survived target={target:#x}");
    finish(false)
}

fn triplefault() -> ! {
    println!("GUEST triplefault loading an empty IDT and executing int3");
    traps::load_empty_idt();
    // SAFETY: with an empty IDT the breakpoint cannot be delivered (#GP, #DF, then a triple
    // fault): the hypervisor must crash the domain. No memory is touched.
    unsafe { core::arch::asm!("int3", options(nomem, nostack)) };
    println!("GUEST triplefault survived");
    finish(false)
}

/// Executes an instruction that always exits to the hypervisor and that it does not
/// emulate: CLGI on AMD (intercepted), INVD on Intel (exits unconditionally).
fn unhandled() -> ! {
    if &crate::arch::vendor() == b"GenuineIntel" {
        println!("GUEST unhandled executing invd");
        // SAFETY: INVD drops dirty cache lines, but this guest has written nothing it needs
        // again; under the hypervisor it exits and must crash the domain.
        unsafe { core::arch::asm!("invd", options(nostack)) };
    } else {
        println!("GUEST unhandled executing clgi");
        // SAFETY: under the hypervisor CLGI is intercepted and must crash the domain; were
        // it to execute, it would only mask interrupts for this guest.
        unsafe { core::arch::asm!("clgi", options(nostack)) };
    }
    println!("GUEST unhandled survived");
    finish(false)
}

fn timer() -> ! {
    // As a Xen guest does: shared_info mapped, the timer VIRQ bound to a port, upcalls on
    // the callback vector; each expiry of set_timer_op raises VIRQ_TIMER.
    let map_rc = xen::map_shared_info();
    let port = xen::bind_virq(xen_abi::xen::VIRQ_TIMER, 0);
    let rc = xen::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, callback_via_vector(CALLBACK_VECTOR));
    println!("GUEST timer callback_vector={CALLBACK_VECTOR:#x} set_param_rc={rc} shared_info_rc={map_rc} timer_port={port:?}");
    if rc != 0 || map_rc != 0 || port.is_err() {
        println!("GUEST timer wakeups=0 min_elapsed_us=0 error=setup");
        finish(false)
    }
    let mut wakeups = 0u64;
    let mut min_elapsed = u64::MAX;
    for round in 0..TIMER_ROUNDS {
        let before = traps::upcalls();
        let start = xen::now_ns();
        let rc = xen::set_timer(start + TIMER_WAIT_NS);
        if rc != 0 {
            println!("GUEST timer wakeup={round} error=set_timer_op rc={rc}");
            break;
        }
        while traps::upcalls() == before {
            arch::wait_for_interrupt();
        }
        let elapsed = xen::now_ns().saturating_sub(start);
        wakeups += 1;
        min_elapsed = min_elapsed.min(elapsed);
        println!("GUEST timer wakeup={round} elapsed_us={}", elapsed / 1000);
    }
    let min_us = if wakeups == 0 { 0 } else { min_elapsed / 1000 };
    let ok = wakeups == TIMER_ROUNDS && min_elapsed >= TIMER_WAIT_NS;
    println!(
        "GUEST timer wakeups={wakeups} min_elapsed_us={min_us} upcalls={} spurious={} result={}",
        traps::upcalls(),
        traps::spurious(),
        pass_fail(ok)
    );
    finish(ok)
}

fn spin(ms: u64, load: SpinLoad, started_ns: u64) -> ! {
    let deadline = started_ns.saturating_add(ms.saturating_mul(NS_PER_MS));
    let fpu_image = arch::FxsaveArea::current();
    let mut iterations = 0u64;
    let mut now;
    loop {
        iterations += 1;
        match load {
            SpinLoad::None => {}
            SpinLoad::Exits => {
                let _ = arch::cpuid(0, 0);
            }
            SpinLoad::FpuRestores => {
                for _ in 0..16 {
                    fpu_image.restore();
                }
            }
        }
        now = xen::now_ns();
        if now >= deadline {
            break;
        }
    }
    println!("GUEST spin iterations={iterations} ms={ms} elapsed_us={}", now.saturating_sub(started_ns) / 1000);
    finish(true)
}

fn idle() -> ! {
    println!("GUEST idle halting with interrupts enabled and no timer");
    loop {
        arch::wait_for_interrupt();
    }
}

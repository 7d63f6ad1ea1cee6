//! `test=bench`: figures for `cargo xtask bench` (DESIGN.md §6), each the TSC cycles per
//! operation over [`ITERATIONS`] operations (under QEMU's `-icount` the guest TSC counts
//! instructions, so they repeat). One line per figure,
//! `BENCH name=<figure> cycles=<per operation> iterations=<n> [baseline=<other figure>]`:
//!
//! - `hypercall_bare`: the cheapest hypercall round trip, `vmmcall`/`vmcall` with an unknown
//!   hypercall number (Xen answers `-ENOSYS` at once) — the baseline of the hypercalls;
//! - `hypercall_xen_version`: `xen_version(XENVER_version)`;
//! - `memcpy_4k`: a plain 4 KiB copy in the guest — the baseline of the grant copy;
//! - `grant_copy_4k`: one `GNTTABOP_copy` of a whole page this domain granted to itself
//!   (source by grant reference with its own domain id, destination its own frame).
//!
//! The `ping` side of the ping-pong adds `evtchn_round_trip` (see [`crate::interdomain`]).
//! Ends with poweroff if every operation succeeded, else crash.

use test_guest::abi::HYPERVISOR_UNDEFINED;
use xen_abi::errno::ENOSYS;
use xen_abi::grant_table::{GNTCOPY_SOURCE_GREF, GNTST_OKAY, GTF_PERMIT_ACCESS, GTF_READONLY};
use xen_abi::version::XENVER_VERSION;
use xen_abi::xen::HYPERVISOR_XEN_VERSION;
use xen_abi::DomId;

use crate::checks::{Checks, Gntst, Rc};
use crate::interdomain::{copy, gref, map_grant_frame, own, write_entry};
use crate::page::{Page, PAGE_SIZE};
use crate::{arch, println, xen};

/// Operations timed per figure.
pub const ITERATIONS: u64 = 1000;
/// The name of the bare hypercall figure (the hypercalls' and events' baseline).
pub const BARE: &str = "hypercall_bare";
/// The grant reference the domain grants itself (0..8 are the toolstack's).
const SELF_GREF: u32 = 8;

static SOURCE: Page = Page::new();
static DEST: Page = Page::new();

/// Prints `BENCH name=<name> cycles=<cycles> iterations=<n> [baseline=<baseline>]`.
pub fn report(name: &str, cycles: u64, iterations: u64, baseline: Option<&str>) {
    match baseline {
        Some(b) => println!("BENCH name={name} cycles={cycles} iterations={iterations} baseline={b}"),
        None => println!("BENCH name={name} cycles={cycles} iterations={iterations}"),
    }
}

/// Runs `op` [`ITERATIONS`] times; the TSC cycles per run, and how many runs returned false.
fn time(mut op: impl FnMut() -> bool) -> (u64, u64) {
    let mut failures = 0;
    let start = arch::rdtsc();
    for _ in 0..ITERATIONS {
        failures += u64::from(!op());
    }
    ((arch::rdtsc() - start) / ITERATIONS, failures)
}

/// Times `op`, checks it never failed (`what` describes a failure) and prints its figure.
fn figure(c: &mut Checks, name: &str, baseline: Option<&str>, op: impl FnMut() -> bool) {
    let (cycles, failures) = time(op);
    c.check(name, failures == 0, format_args!("failures={failures} iterations={ITERATIONS}"));
    report(name, cycles, ITERATIONS, baseline);
}

fn source_pattern(i: usize) -> u64 {
    0x4843_4e45_0000_0000 | i as u64
}

/// `test=bench`.
pub fn run() -> ! {
    let mut c = Checks::new("bench");
    if !c.check("xen", xen::present(), format_args!("hypercalls need the Xen CPUID leaves")) {
        c.finish()
    }
    let rc = xen::hypercall(HYPERVISOR_XEN_VERSION, XENVER_VERSION, 0, 0, 0, 0);
    c.check("xen_version", rc > 0, format_args!("rc={rc:#x}"));

    figure(&mut c, BARE, None, || xen::hypercall(HYPERVISOR_UNDEFINED, 0, 0, 0, 0, 0) == -ENOSYS);
    figure(&mut c, "hypercall_xen_version", Some(BARE), || {
        xen::hypercall(HYPERVISOR_XEN_VERSION, XENVER_VERSION, 0, 0, 0, 0) == rc
    });

    SOURCE.fill(source_pattern);
    let (src, dst) = (SOURCE.addr() as *const u8, DEST.addr() as *mut u8);
    figure(&mut c, "memcpy_4k", None, || {
        // SAFETY: two distinct, page-sized and page-aligned statics; nobody else touches
        // them while the guest runs. `black_box` keeps the (loop-invariant) copy in the loop.
        unsafe { core::ptr::copy_nonoverlapping(core::hint::black_box(src), core::hint::black_box(dst), PAGE_SIZE) };
        true
    });
    let copied = DEST.mismatch(source_pattern);
    c.check("memcpy_contents", copied.is_none(), format_args!("first_mismatch={copied:?} (word, value)"));

    let me = xen::domid().unwrap_or(0) as DomId;
    if !c.rc("map_grant_frame", map_grant_frame(), 0) {
        c.finish()
    }
    write_entry(SELF_GREF, me, SOURCE.gfn(), GTF_PERMIT_ACCESS | GTF_READONLY);
    DEST.fill(|_| 0);
    let (rc, st) = copy(gref(me, SELF_GREF, 0), own(&DEST, 0), PAGE_SIZE as u16, GNTCOPY_SOURCE_GREF);
    let bad = DEST.mismatch(source_pattern);
    let ok = c.check(
        "self_grant_copy",
        rc == 0 && st == GNTST_OKAY && bad.is_none(),
        format_args!("domid={me} gref={SELF_GREF} rc={} status={} first_mismatch={bad:?}", Rc(rc), Gntst(st)),
    );
    if ok {
        figure(&mut c, "grant_copy_4k", Some("memcpy_4k"), || {
            copy(gref(me, SELF_GREF, 0), own(&DEST, 0), PAGE_SIZE as u16, GNTCOPY_SOURCE_GREF) == (0, GNTST_OKAY)
        });
    }
    c.finish()
}

//! `test=hcfuzz [seed=N] [calls=N] [trace=1]`: a deterministic hypercall fuzzer. A xorshift
//! PRNG seeded with `seed=` picks, for each of `calls=` hypercalls, a number (mostly one of
//! the families the hypervisor implements, sometimes any of 0..64, rarely a huge one), a
//! sub-operation (mostly small, sometimes huge) and four more arguments, each one of: a
//! pointer into [`SCRATCH`] (whose bytes are random, refreshed before every call, with a few
//! small values poked in so ids and counts sometimes look plausible), NULL, an address with
//! nothing behind it (beyond RAM, not RAM, unmapped, non-canonical, the kernel half), a small
//! integer or a random one. Every call must return; results are counted by errno. At the end:
//! `GUEST hcfuzz errno=<NAME> count=N` per errno seen and
//! `GUEST hcfuzz calls=N ok=N errors=N result=pass`, then poweroff. An exception the guest
//! takes (its state corrupted by the hypervisor) prints `GUEST exception` and crashes it.
//!
//! With `trace=1` each call is printed before it is made (`GUEST hcfuzz call=I nr= args=`) and
//! its result after (`GUEST hcfuzz call=I rc=`), so the last `call=` line names a call that
//! did not return.
//!
//! Calls that may legitimately end, block or dismantle this domain are not made (the call is
//! drawn again): `sched_op` (and `sched_op_compat`) block, shutdown, poll, shutdown_code and
//! watchdog; `memory_op` decrease_reservation, add_to_physmap and add_to_physmap_batch (they
//! can take the guest's own RAM away); `grant_table_op` map, unmap, transfer and
//! unmap_and_replace (they can map over, or give away, the guest's pages); `multicall` (its
//! entries could be any of those). The guest runs with interrupts disabled throughout, so a
//! callback vector set by a garbage `HVMOP_set_param` is never delivered (the index is still
//! steered away from `HVM_PARAM_CALLBACK_IRQ` when the argument is in [`SCRATCH`]).
//! `console_io` writes print only a fixed line (or nothing, from a bad address), so the
//! console stays readable.
//!
//! Everything the hypervisor may write through a pointer argument lands in [`SCRATCH`] (a
//! pointer into it leaves at least [`SCRATCH_ROOM`] bytes after it) or in the low 64 KiB
//! (NULL and small integers), which the guest does not use after boot.

use core::cell::UnsafeCell;

use test_guest::start_info;
use xen_abi::console::CONSOLEIO_WRITE;
use xen_abi::grant_table::{
    GNTTABOP_MAP_GRANT_REF, GNTTABOP_TRANSFER, GNTTABOP_UNMAP_AND_REPLACE, GNTTABOP_UNMAP_GRANT_REF,
};
use xen_abi::hvm::{HVMOP_SET_PARAM, HVM_PARAM_CALLBACK_IRQ};
use xen_abi::memory::{
    XENMEM_ADD_TO_PHYSMAP, XENMEM_ADD_TO_PHYSMAP_BATCH, XENMEM_DECREASE_RESERVATION, XENMEM_REMOVE_FROM_PHYSMAP,
};
use xen_abi::sched::{SCHEDOP_BLOCK, SCHEDOP_POLL, SCHEDOP_SHUTDOWN, SCHEDOP_SHUTDOWN_CODE, SCHEDOP_WATCHDOG};
use xen_abi::vcpu::VCPUOP_DOWN;
use xen_abi::xen::*;

use crate::checks::Rc;
use crate::{println, xen, BootInfo};

/// Bytes of [`SCRATCH`].
const SCRATCH_SIZE: usize = 64 * 1024;
/// Bytes after any pointer into [`SCRATCH`] (more than the largest write a call can make
/// through one: 512 grant copies of 40 bytes).
const SCRATCH_ROOM: u64 = 32 * 1024;
/// Bytes refreshed at a scratch pointer before each call.
const REFRESH: usize = 256;
/// The families the hypervisor implements.
const FAMILIES: [u64; 11] = [
    HYPERVISOR_MEMORY_OP,
    HYPERVISOR_SET_TIMER_OP,
    HYPERVISOR_XEN_VERSION,
    HYPERVISOR_CONSOLE_IO,
    HYPERVISOR_GRANT_TABLE_OP,
    HYPERVISOR_VM_ASSIST,
    HYPERVISOR_VCPU_OP,
    HYPERVISOR_SCHED_OP,
    HYPERVISOR_EVENT_CHANNEL_OP,
    HYPERVISOR_PHYSDEV_OP,
    HYPERVISOR_HVM_OP,
];
/// What a fuzzed `console_io` write prints.
const TEXT: &[u8] = b"hcfuzz: console_io write from the fuzzer\n";
/// `HVMOP_op_mask`: Xen takes the `hvm_op` operation from the low byte.
const HVMOP_OP_MASK: u64 = 0xff;
/// `memory_op` takes the operation from the low 6 bits (the rest is a continuation).
const MEMOP_CMD_MASK: u64 = 0x3f;
/// A call's results are printed every this many calls.
const PROGRESS_EVERY: u64 = 5000;
/// Largest errno counted separately (Xen's are below 128).
const ERRNO_MAX: usize = 127;

/// Random bytes the pointer arguments point into.
#[repr(C, align(4096))]
struct Scratch(UnsafeCell<[u8; SCRATCH_SIZE]>);

// SAFETY: only the single vCPU running the fuzzer touches it (and the hypervisor, during its
// hypercalls); all guest accesses are volatile.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch(UnsafeCell::new([0; SCRATCH_SIZE]));

fn scratch_base() -> u64 {
    SCRATCH.0.get() as u64
}

fn in_scratch(addr: u64) -> bool {
    (scratch_base()..scratch_base() + SCRATCH_ROOM).contains(&addr)
}

/// Writes `value` at `addr` (inside [`SCRATCH`], with 8 bytes of room).
fn scratch_write<T: Copy>(addr: u64, value: T) {
    assert!(addr >= scratch_base() && addr + 8 <= scratch_base() + SCRATCH_SIZE as u64);
    assert!(core::mem::size_of::<T>() <= 8);
    // SAFETY: in bounds of SCRATCH (checked: T is at most 8 bytes), which lives for the
    // guest's lifetime; the write is unaligned-safe and nothing holds a reference into it.
    unsafe { core::ptr::write_unaligned(addr as *mut T, value) };
}

fn scratch_read_u32(addr: u64) -> u32 {
    assert!(addr >= scratch_base() && addr + 4 <= scratch_base() + SCRATCH_SIZE as u64);
    // SAFETY: in bounds of SCRATCH (checked).
    unsafe { core::ptr::read_unaligned(addr as *const u32) }
}

/// xorshift64 (Marsaglia), seeded through splitmix64 so any seed (even 0) works.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What kind of value an argument is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Into [`SCRATCH`].
    Scratch,
    /// An address no guest memory is behind.
    Bad,
    /// NULL, a small integer or a random one (may well be a RAM address).
    Other,
}

struct Fuzzer {
    rng: Rng,
    ram_end: u64,
}

impl Fuzzer {
    /// A guest address with no memory (or no mapping) behind it.
    fn bad_address(&mut self) -> u64 {
        let r = self.rng.next();
        match self.rng.below(6) {
            // Beyond RAM, inside the guest's 4 GiB identity map.
            0 => self.ram_end + (r % (256 << 20)),
            // Mapped by the guest, not RAM.
            1 => 0xc000_0000 + (r % (256 << 20)),
            // Unmapped (PML4 slot 255 is empty).
            2 => 0x0000_7fff_0000_0000 + (r & 0xffff_ffff),
            // Non-canonical.
            3 => 0x0000_8000_0000_0000 | (r & 0x7fff_ffff_ffff),
            4 => 0x8000_0000_0000_0000 | (r & 0x7fff_7fff_ffff_ffff),
            // The kernel half (unmapped).
            _ => 0xffff_8000_0000_0000 | (r & 0x7fff_ffff_ffff),
        }
    }

    /// A small value an id, count, port or index field might plausibly hold.
    fn small(&mut self) -> u64 {
        match self.rng.below(8) {
            0 => 0,
            1 => 1,
            2 => 2,
            3 => u64::from(DOMID_SELF),
            4 => self.rng.below(64),
            5 => self.rng.below(4096),
            6 => u64::from(u32::MAX),
            _ => self.rng.below(8),
        }
    }

    fn arg(&mut self) -> (u64, Kind) {
        match self.rng.below(100) {
            0..=34 => {
                let mut off = self.rng.below(SCRATCH_ROOM);
                if !self.rng.percent(12) {
                    off &= !7;
                }
                (scratch_base() + off, Kind::Scratch)
            }
            35..=44 => (0, Kind::Other),
            45..=64 => (self.bad_address(), Kind::Bad),
            65..=84 => (self.small(), Kind::Other),
            _ => (self.rng.next(), Kind::Other),
        }
    }

    /// New random bytes at `addr` (a scratch pointer), with a few small values poked in.
    fn refresh(&mut self, addr: u64) {
        let start = addr & !7;
        for i in 0..REFRESH as u64 / 8 {
            let v = self.rng.next();
            scratch_write(start + i * 8, v);
        }
        if self.rng.percent(60) {
            for _ in 0..1 + self.rng.below(4) {
                let at = addr + self.rng.below(16) * 4;
                let v = self.small();
                if self.rng.percent(50) {
                    scratch_write(at, v as u32);
                } else {
                    scratch_write(at & !7, v);
                }
            }
        }
    }

    fn sub_op(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=69 => self.rng.below(16),
            70..=89 => self.rng.below(64),
            _ => self.rng.next(),
        }
    }

    fn number(&mut self) -> u64 {
        match self.rng.below(100) {
            0..=84 => FAMILIES[self.rng.below(FAMILIES.len() as u64) as usize],
            85..=98 => self.rng.below(64),
            _ => self.rng.next(),
        }
    }

    /// One call that cannot legitimately end, block or take apart this domain.
    fn draw(&mut self) -> (u64, [u64; 5]) {
        loop {
            let nr = self.number();
            let cmd = self.sub_op();
            let mut args = [cmd, 0, 0, 0, 0];
            let mut kinds = [Kind::Other; 5];
            for (a, k) in args.iter_mut().zip(kinds.iter_mut()).skip(1) {
                (*a, *k) = self.arg();
            }
            if !allowed(nr, cmd) {
                continue;
            }
            for (&a, &k) in args.iter().zip(kinds.iter()).skip(1) {
                if k == Kind::Scratch {
                    self.refresh(a);
                }
            }
            if nr == HYPERVISOR_HVM_OP && cmd & HVMOP_OP_MASK == HVMOP_SET_PARAM && in_scratch(args[1]) {
                // struct xen_hvm_param { domid_t domid; u16 pad; u32 index; u64 value }.
                let index_at = args[1] + 4;
                if scratch_read_u32(index_at) == HVM_PARAM_CALLBACK_IRQ {
                    scratch_write(index_at, 1u32);
                }
            }
            if nr == HYPERVISOR_CONSOLE_IO && cmd as u32 as u64 == CONSOLEIO_WRITE && kinds[2] != Kind::Bad {
                // Only the fixed line (never the random bytes, nor low memory).
                args[1] = TEXT.len() as u64;
                args[2] = TEXT.as_ptr() as u64;
            }
            return (nr, args);
        }
    }
}

/// Whether call `nr` with sub-operation `cmd` is one the fuzzer may make.
fn allowed(nr: u64, cmd: u64) -> bool {
    let cmd32 = u64::from(cmd as u32);
    match nr {
        HYPERVISOR_SCHED_OP | HYPERVISOR_SCHED_OP_COMPAT => {
            ![SCHEDOP_BLOCK, SCHEDOP_SHUTDOWN, SCHEDOP_POLL, SCHEDOP_SHUTDOWN_CODE, SCHEDOP_WATCHDOG].contains(&cmd32)
        }
        // Each of these may take away (or cover) the fuzzer's own memory, as on Xen.
        HYPERVISOR_MEMORY_OP => ![
            XENMEM_DECREASE_RESERVATION,
            XENMEM_ADD_TO_PHYSMAP,
            XENMEM_ADD_TO_PHYSMAP_BATCH,
            XENMEM_REMOVE_FROM_PHYSMAP,
        ]
        .contains(&(cmd & MEMOP_CMD_MASK)),
        HYPERVISOR_GRANT_TABLE_OP => {
            ![GNTTABOP_MAP_GRANT_REF, GNTTABOP_UNMAP_GRANT_REF, GNTTABOP_TRANSFER, GNTTABOP_UNMAP_AND_REPLACE]
                .contains(&cmd32)
        }
        // Taking the fuzzer's only vCPU down would power the domain off.
        HYPERVISOR_VCPU_OP => cmd32 != VCPUOP_DOWN,
        HYPERVISOR_MULTICALL => false,
        _ => true,
    }
}

/// Runs `test=hcfuzz`; never returns.
pub fn run(boot: &BootInfo, seed: u64, calls: u64, trace: bool) -> ! {
    let ram_end = start_info::ram_end(boot.memmap().iter().copied()).unwrap_or(32 << 20);
    println!("GUEST hcfuzz start seed={seed} calls={calls} trace={} ram_end={ram_end:#x}", u8::from(trace));
    let mut f = Fuzzer { rng: Rng::new(seed), ram_end };
    for i in 0..SCRATCH_SIZE as u64 / 8 {
        let v = f.rng.next();
        scratch_write(scratch_base() + i * 8, v);
    }
    let (mut ok, mut errors, mut odd) = (0u64, 0u64, 0u64);
    let mut by_errno = [0u64; ERRNO_MAX + 1];
    for call in 0..calls {
        let (nr, a) = f.draw();
        if trace {
            println!(
                "GUEST hcfuzz call={call} nr={nr:#x} args={:#x},{:#x},{:#x},{:#x},{:#x}",
                a[0], a[1], a[2], a[3], a[4]
            );
        }
        let rc = xen::hypercall(nr, a[0], a[1], a[2], a[3], a[4]);
        if trace {
            println!("GUEST hcfuzz call={call} rc={}", Rc(rc));
        }
        if rc >= 0 {
            ok += 1;
        } else {
            errors += 1;
            match usize::try_from(rc.unsigned_abs()) {
                Ok(e) if e <= ERRNO_MAX => by_errno[e] += 1,
                _ => odd += 1,
            }
        }
        if (call + 1) % PROGRESS_EVERY == 0 {
            println!("GUEST hcfuzz progress={} ok={ok} errors={errors}", call + 1);
        }
    }
    for (e, &n) in by_errno.iter().enumerate().filter(|&(_, &n)| n > 0) {
        let name = xen_abi::errno::name(e as i64).unwrap_or("unnamed");
        println!("GUEST hcfuzz errno={e} name={name} count={n}");
    }
    if odd > 0 {
        println!("GUEST hcfuzz errno=other count={odd}");
    }
    println!("GUEST hcfuzz calls={calls} ok={ok} errors={errors} result=pass");
    xen::shutdown(test_guest::abi::ShutdownReason::Poweroff)
}

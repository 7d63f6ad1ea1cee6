//! Ferrovisor's test guest: a small `no_std` PVH kernel for the QEMU tests.
//!
//! A PVH loader (the hypervisor; or QEMU `-kernel`) enters `guest_pvh_entry` in `boot.S`
//! (named by the Xen PVH ELF note) in 32-bit protected mode with `ebx` = the physical
//! address of `struct hvm_start_info`. The stub identity-maps the first 4 GiB, enters long
//! mode and calls [`guest_main`], which loads an IDT, reads the Xen CPUID leaves and the
//! command line, prints `hello from domain <domid> vcpu <id>` and runs the behaviour that
//! `test=NAME` selects (see [`behaviours`]). Machine-readable results are lines starting
//! with `GUEST `. Every behaviour ends with `SCHEDOP_shutdown` (poweroff on success, crash
//! on failure), except `idle` and the ones the hypervisor must crash.
//!
//! Under plain QEMU (no Xen CPUID leaves) no hypercall is issued; shutdown writes to QEMU's
//! isa-debug-exit port 0xf4 instead (exit status 33 for poweroff, 35 otherwise), so the
//! entry path can be tried with `qemu-system-x86_64 -kernel test-guest -append test=hello
//! -debugcon stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04`.

#![no_std]
#![no_main]

mod arch;
mod behaviours;
mod bench;
mod checks;
mod console;
mod errors;
mod events;
mod hcfuzz;
mod interdomain;
mod page;
mod paging;
mod ring_console;
mod shared_page;
mod traps;
mod xen;
mod xenstore_client;

use core::panic::PanicInfo;

use test_guest::abi::ShutdownReason;
use test_guest::cmdline::{Behaviour, Cmdline, ConsoleKind};
use test_guest::start_info;
use xen_abi::start_info::{HvmMemmapTableEntry, HvmStartInfo, HVM_START_INFO_V0_SIZE};
use xen_abi::XenStruct;

core::arch::global_asm!(include_str!("boot.S"));

/// Longest command line read from the start info.
const CMDLINE_MAX: usize = 1024;
/// Most memory map entries read from the start info.
pub const MEMMAP_MAX: usize = 64;

/// What the loader told the guest.
#[derive(Debug)]
pub struct BootInfo {
    /// The parsed `hvm_start_info`.
    pub start_info: HvmStartInfo,
    /// The command line (empty if none or not UTF-8).
    pub cmdline: &'static str,
    /// The memory map (`memmap_len` entries are valid).
    pub memmap: [HvmMemmapTableEntry; MEMMAP_MAX],
    /// Valid entries of `memmap`.
    pub memmap_len: usize,
}

impl BootInfo {
    /// The valid memory map entries.
    pub fn memmap(&self) -> &[HvmMemmapTableEntry] {
        &self.memmap[..self.memmap_len]
    }
}

/// Copies `len` bytes of guest-physical memory at `paddr`.
///
/// # Safety
/// `[paddr, paddr + len)` must be memory the loader handed to the guest (start info, command
/// line, memory map): RAM, readable, and not written by anyone while the guest runs.
unsafe fn phys_bytes(paddr: u64, len: usize) -> &'static [u8] {
    if !paging::identity_map(paddr) {
        return &[];
    }
    // SAFETY: the caller guarantees the range is readable RAM; it is identity-mapped
    // (below 4 GiB by the stub, above by `identity_map`).
    unsafe { core::slice::from_raw_parts(paddr as *const u8, len) }
}

/// Reads the NUL-terminated string at `paddr` (at most [`CMDLINE_MAX`] bytes).
///
/// # Safety
/// `paddr` must be a NUL-terminated string the loader wrote into the guest's RAM.
unsafe fn phys_c_str(paddr: u64) -> &'static [u8] {
    if paddr == 0 || !paging::identity_map(paddr) {
        return &[];
    }
    let mut len = 0;
    // SAFETY: the caller guarantees a NUL-terminated string at `paddr`: every byte read up
    // to and including the NUL is part of it.
    while len < CMDLINE_MAX && unsafe { core::ptr::read((paddr + len as u64) as *const u8) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read are part of the string.
    unsafe { phys_bytes(paddr, len) }
}

fn read_boot_info(start_info_paddr: u64) -> BootInfo {
    // SAFETY: the PVH ABI passes the address of the start info in ebx; its first 40 bytes
    // (version 0) exist in every version.
    let head = unsafe { phys_bytes(start_info_paddr, HVM_START_INFO_V0_SIZE) };
    let version = head.get(4..8).map_or(0, |v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
    let size = if version >= 1 { HvmStartInfo::SIZE } else { HVM_START_INFO_V0_SIZE };
    // SAFETY: version 1 and later structures are HvmStartInfo::SIZE bytes long, version 0 ones
    // HVM_START_INFO_V0_SIZE.
    let bytes = unsafe { phys_bytes(start_info_paddr, size) };
    let si = match start_info::parse(bytes) {
        Ok(si) => si,
        Err(e) => {
            println!("GUEST error unusable hvm_start_info at {start_info_paddr:#x}: {e:?}");
            xen::shutdown(ShutdownReason::Crash)
        }
    };
    // SAFETY: cmdline_paddr is the loader's NUL-terminated command line (or 0).
    let raw = unsafe { phys_c_str(si.cmdline_paddr) };
    let cmdline = match core::str::from_utf8(raw) {
        Ok(s) => s,
        Err(_) => {
            println!("GUEST error the command line is not UTF-8; ignoring it");
            ""
        }
    };
    let mut memmap = [HvmMemmapTableEntry::default(); MEMMAP_MAX];
    let memmap_len = (si.memmap_entries as usize).min(MEMMAP_MAX);
    if si.memmap_paddr != 0 && memmap_len > 0 {
        // SAFETY: the loader put `memmap_entries` entries at memmap_paddr.
        let bytes = unsafe { phys_bytes(si.memmap_paddr, memmap_len * HvmMemmapTableEntry::SIZE) };
        for (slot, chunk) in memmap.iter_mut().zip(bytes.chunks_exact(HvmMemmapTableEntry::SIZE)) {
            *slot = HvmMemmapTableEntry::read_from(chunk).unwrap_or_default();
        }
    }
    BootInfo { start_info: si, cmdline, memmap, memmap_len }
}

/// Prints a number or `?`.
pub struct OrUnknown(pub Option<u32>);

impl core::fmt::Display for OrUnknown {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("?"),
        }
    }
}

/// The Rust entry, called by `boot.S` in long mode with the start info's physical address.
#[no_mangle]
pub extern "C" fn guest_main(start_info_paddr: u64) -> ! {
    traps::init();
    xen::init();
    let started_ns = xen::now_ns();
    let boot = read_boot_info(start_info_paddr);
    let cmdline = Cmdline::new(boot.cmdline);
    let console_choice = ConsoleKind::from_cmdline(&cmdline);
    console::set_default(console_choice.unwrap_or_default());

    println!("hello from domain {} vcpu {}", OrUnknown(xen::domid()), OrUnknown(xen::vcpu_id()));
    if let Err(e) = console_choice {
        println!("GUEST error {e}");
    }
    let ram_end = start_info::ram_end(boot.memmap().iter().copied()).unwrap_or(0);
    println!(
        "GUEST start xen={} hypercall={} tsc_khz={} ram_end={ram_end:#x} memmap_entries={} cmdline=\"{}\"",
        if xen::present() { "yes" } else { "no" },
        if xen::uses_vmmcall() { "vmmcall" } else { "vmcall" },
        xen::tsc_khz(),
        boot.memmap_len,
        boot.cmdline
    );
    match Behaviour::from_cmdline(&cmdline) {
        Ok(behaviour) => behaviours::run(behaviour, &boot, started_ns),
        Err(e) => {
            println!("GUEST error {e}");
            xen::shutdown(ShutdownReason::Crash)
        }
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => println!("GUEST panic at {}:{}: {}", l.file(), l.line(), info.message()),
        None => println!("GUEST panic: {}", info.message()),
    }
    xen::shutdown(ShutdownReason::Crash)
}

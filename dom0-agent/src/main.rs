//! The Ferrovisor dom0 agent: the privileged control domain (domain 0).
//!
//! The hypervisor builds it from its first boot module as a PVH kernel with its RAM
//! identity-mapped, and hands it the other boot modules. The agent builds the domains those
//! modules describe (`domain ...` lines, each optionally followed by an `initrd` module;
//! the syntax of the `domain-config` crate) through the control interface, serves their
//! console rings (output logged as `(dN) text` on the hypervisor console, which dom0
//! owns) and their xenstore ([`xenstored`]), notices when they end (`VIRQ_DOM_EXC`) and destroys them. Its command line
//! ([`services::Options`]): `exit-when-idle` shuts it down once every domain has ended,
//! which ends the run; `rebuild=N` builds each boot-time domain N times in turn (each
//! after the previous one ended and was destroyed); `ctl-checks` first runs the control
//! interface's error checks ([`checks`]).
//!
//! Boot: `boot.S` enters [`agent_main`] in long mode with the first 4 GiB identity-mapped
//! and the kernel at its link (virtual) address, wherever the hypervisor placed it.
//!
//! Build: `cargo build -p dom0-agent --release --target x86_64-unknown-none` (xtask does).

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod builder;
mod checks;
mod foreign;
mod hypercall;
mod log;
mod services;
mod uuid;
mod xenstored;

use alloc::string::String;
use alloc::vec::Vec;
use core::panic::PanicInfo;
use linked_list_allocator::LockedHeap;
use log::info;
use xen_abi::start_info::{HvmMemmapTableEntry, HvmModlistEntry, HvmStartInfo, XEN_HVM_START_MAGIC_VALUE};
use xen_abi::XenStruct;

core::arch::global_asm!(include_str!("boot.S"));

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// A boot module: where it is and its command line.
pub struct BootModule {
    pub bytes: &'static [u8],
    pub cmdline: String,
}

/// What the hypervisor told us at boot.
struct StartInfo {
    cmdline: String,
    modules: Vec<BootModule>,
    /// End of the RAM range holding the start info (our RAM).
    ram_end: u64,
}

/// Reads a NUL-terminated string at physical `pa` (at most 4 KiB; lossy UTF-8).
fn read_c_string(pa: u64) -> String {
    if pa == 0 {
        return String::new();
    }
    let mut buf = [0u8; 4096];
    arch::read_phys(pa, &mut buf);
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

fn read_struct<T: XenStruct>(pa: u64) -> T {
    let mut buf = [0u8; 64];
    arch::read_phys(pa, &mut buf[..T::SIZE]);
    T::read_from(&buf).expect("structure fits its buffer")
}

/// Where our RAM ends and where the loader's data (start info, modules, strings) ends,
/// read without allocating (the heap goes after them).
fn boot_extent(pa: u64) -> (HvmStartInfo, u64, u64) {
    let si: HvmStartInfo = read_struct(pa);
    assert_eq!(si.magic, XEN_HVM_START_MAGIC_VALUE, "start info at {pa:#x} has a bad magic");
    // The start info's own tables and strings follow it (pvh-loader's layout).
    let mut used_end = pa + pvh_loader::START_INFO_ROOM;
    for i in 0..u64::from(si.nr_modules) {
        let entry: HvmModlistEntry = read_struct(si.modlist_paddr + i * HvmModlistEntry::SIZE as u64);
        used_end = used_end.max(entry.paddr.saturating_add(entry.size));
    }
    let mut ram_end = 0;
    for i in 0..u64::from(si.memmap_entries) {
        let e: HvmMemmapTableEntry = read_struct(si.memmap_paddr + i * HvmMemmapTableEntry::SIZE as u64);
        if e.type_ == xen_abi::start_info::XEN_HVM_MEMMAP_TYPE_RAM && (e.addr..e.addr + e.size).contains(&pa) {
            ram_end = e.addr + e.size;
        }
    }
    assert!(ram_end != 0, "no RAM entry in the memory map holds the start info");
    (si, ram_end, used_end)
}

/// Reads the command line and the modules (the heap must be up).
fn read_start_info(si: &HvmStartInfo, ram_end: u64) -> StartInfo {
    let mut modules = Vec::new();
    for i in 0..u64::from(si.nr_modules) {
        let entry: HvmModlistEntry = read_struct(si.modlist_paddr + i * HvmModlistEntry::SIZE as u64);
        let len = usize::try_from(entry.size).expect("module size fits usize");
        assert!(entry.paddr + entry.size <= arch::IDENTITY_LIMIT, "module {i} lies above 4 GiB");
        // SAFETY: the module lies in our RAM (identity-mapped, checked above); the loader
        // put it there and nothing writes it afterwards.
        let bytes = unsafe { core::slice::from_raw_parts(entry.paddr as *const u8, len) };
        modules.push(BootModule { bytes, cmdline: read_c_string(entry.cmdline_paddr) });
    }
    StartInfo { cmdline: read_c_string(si.cmdline_paddr), modules, ram_end }
}

/// Gives the RAM from `start` to `end` to the heap.
fn init_heap(start: u64, end: u64) {
    let start = start.next_multiple_of(4096);
    assert!(end > start + (16 << 20), "too little RAM left for the heap ({start:#x}-{end:#x}); raise dom0_mem");
    // SAFETY: `[start, end)` is our RAM (the memory map says so), identity-mapped, above
    // everything the loader placed (kernel, modules, start info) and used by nothing else.
    unsafe { HEAP.lock().init(start as *mut u8, (end - start) as usize) };
}

extern "C" {
    static __agent_virt_end: u8;
    static agent_stack: u8;
}

/// What an untouched stack word holds (see [`paint_stack`]).
const STACK_PAINT: u64 = 0x5a5a_5a5a_5a5a_5a5a;

/// Fills the unused part of the stack with [`STACK_PAINT`], to measure later how deep it got.
fn paint_stack() {
    let bottom = core::ptr::addr_of!(agent_stack) as usize;
    let here = &bottom as *const usize as usize;
    let mut at = bottom;
    while at + 8 < here - 256 {
        // SAFETY: `[bottom, here - 256)` is the part of our own stack below the current
        // frame (with a margin for this function's locals): unused, ours to write.
        unsafe { core::ptr::write_volatile(at as *mut u64, STACK_PAINT) };
        at += 8;
    }
}

/// Bytes of stack never used so far (above the bottom, still painted).
pub fn stack_headroom() -> usize {
    let bottom = core::ptr::addr_of!(agent_stack) as usize;
    let mut at = bottom;
    // SAFETY: reads of our own stack area, at or below the deepest frame ever used.
    while unsafe { core::ptr::read_volatile(at as *const u64) } == STACK_PAINT {
        at += 8;
    }
    at - bottom
}

/// Called by `boot.S` with the start info's physical address and our load displacement.
#[no_mangle]
extern "C" fn agent_main(start_info_pa: u64, displacement: u64) -> ! {
    hypercall::init();
    paint_stack();
    let virt_end = core::ptr::addr_of!(__agent_virt_end) as u64;
    let image_end_phys = virt_end - 0xffff_ffff_8000_0000 + displacement;
    let (si, ram_end, used_end) = boot_extent(start_info_pa);
    init_heap(used_end.max(image_end_phys), ram_end);
    let start = read_start_info(&si, ram_end);
    let flags = u64::from(si.flags);
    info!(
        "Ferrovisor dom0 agent {} (loaded at {:#x}, RAM up to {:#x}, {} module(s){})",
        env!("CARGO_PKG_VERSION"),
        0x20_0000 + displacement,
        start.ram_end,
        start.modules.len(),
        if flags & u64::from(xen_abi::start_info::SIF_INITDOMAIN) != 0 { ", initial domain" } else { "" }
    );
    let options = match services::Options::parse(&start.cmdline) {
        Ok(o) => o,
        Err(e) => panic!("command line {:?}: {e}", start.cmdline),
    };
    services::run(start.modules, start.ram_end, &options)
}

#[panic_handler]
fn panic(panic: &PanicInfo<'_>) -> ! {
    // No allocation here: the heap may be what failed.
    let mut line = log::FixedLine::new();
    let _ = core::fmt::Write::write_fmt(&mut line, format_args!("agent: PANIC: {panic}\n"));
    hypercall::console_write(line.as_bytes());
    hypercall::shutdown(xen_abi::sched::SHUTDOWN_CRASH)
}

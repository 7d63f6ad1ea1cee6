//! The boot processor's path from the boot stub to "ready".

use crate::arch::x86_64::{apic, cpu, pic, smp, time};
use crate::mm::{self, frames, stacks};
use crate::{acpi, bootdomains, cmdline, console, logger, virt};
use bootinfo::{BootInfo, PhysMemory, Unreadable};
use log::LevelFilter;
use spin::Once;

const PROTOCOL_PVH: u32 = 1;
const PROTOCOL_MULTIBOOT2: u32 = 2;
/// The boot stub's page tables identity-map this much.
const IDENTITY_LIMIT: u64 = 4 << 30;

/// Physical memory as the boot stub maps it: the first 4 GiB, 1:1.
struct IdentityMemory;

impl PhysMemory for IdentityMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let end = paddr.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > IDENTITY_LIMIT) {
            return Err(Unreadable { paddr, len: buf.len() });
        }
        // SAFETY: the range lies in the boot stub's identity map, which covers all of the
        // first 4 GiB; reading RAM or firmware areas there has no side effects.
        unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

static mut BOOT_INFO: BootInfo = BootInfo::new();
static BOOT_INFO_READY: Once<&'static BootInfo> = Once::new();

/// The loader's information, copied out at boot.
pub fn info() -> &'static BootInfo {
    BOOT_INFO_READY.get().expect("boot information read before it was taken over")
}

fn take_boot_info(protocol: u32, info_pa: u64) -> &'static BootInfo {
    // SAFETY: runs once, on the BSP, before any other CPU exists or anything reads
    // BOOT_INFO; afterwards it is only reached through the shared reference published here.
    let info = unsafe { &mut *core::ptr::addr_of_mut!(BOOT_INFO) };
    let parsed = match protocol {
        PROTOCOL_PVH => info.parse_pvh(&IdentityMemory, info_pa),
        PROTOCOL_MULTIBOOT2 => info.parse_multiboot2(&IdentityMemory, info_pa),
        other => panic!("boot stub passed unknown protocol {other}"),
    };
    if let Err(e) = parsed {
        panic!("cannot take over the boot information at {info_pa:#x}: {e}");
    }
    BOOT_INFO_READY.call_once(|| info)
}

static BSP_STACKS: Once<stacks::CpuStacks> = Once::new();
static PLATFORM: Once<acpi::Platform> = Once::new();

/// The machine's processors and interrupt controllers, once ACPI has been read.
#[cfg_attr(not(feature = "selftest"), allow(dead_code))]
pub fn platform() -> &'static acpi::Platform {
    PLATFORM.get().expect("platform read before ACPI discovery")
}

pub fn boot_processor_main(protocol: u32, info_pa: u64) -> ! {
    console::init();
    time::calibrate_tsc();
    time::read_rtc();
    logger::init(LevelFilter::Info);
    let info = take_boot_info(protocol, info_pa);
    cmdline::set(info.cmdline.as_str());
    if let Some(value) = cmdline::get("loglvl") {
        match logger::parse_level(value) {
            Some(level) => log::set_max_level(level),
            None => log::warn!("loglvl={value} is not a level (error, warn, info, debug, trace); keeping info"),
        }
    }
    log::info!(
        "Ferrovisor {} starting: {} boot from {}",
        env!("CARGO_PKG_VERSION"),
        info.protocol,
        info.loader_name.as_str()
    );
    log::info!("command line: \"{}\"", cmdline::full());
    for option in cmdline::unknown_options() {
        log::warn!("ignoring unknown command-line option \"{option}\"");
    }
    let features = cpu::features();
    log::info!(
        "CPU: {:?}, TSC {}.{:03} MHz{}, x2APIC {}, 1 GiB pages {}, NX {}",
        features.vendor,
        time::tsc_hz() / 1_000_000,
        time::tsc_hz() / 1000 % 1000,
        if features.invariant_tsc { " (invariant)" } else { "" },
        features.x2apic,
        features.huge_pages_1g,
        features.no_execute
    );
    log::info!("memory map ({} entries):", info.memory_map().len());
    for region in info.memory_map() {
        log::info!("  {:#014x}-{:#014x} {}", region.start, region.end(), region.kind);
    }

    cpu::init_control_registers();
    mm::init(info);
    let stats = frames::stats();
    log::info!(
        "frames: {} managed ({} MiB), {} free, {} used",
        stats.managed,
        stats.managed * 4 / 1024,
        stats.free,
        stats.used
    );
    let stacks = BSP_STACKS.call_once(|| stacks::allocate(0));
    stacks::run_on(stacks.kernel_top, boot_processor_continue)
}

/// The rest of the BSP's boot, on its guarded stack.
extern "C" fn boot_processor_continue() -> ! {
    let info = info();
    let platform = PLATFORM
        .call_once(|| acpi::discover(info.rsdp).unwrap_or_else(|e| panic!("cannot discover the platform: {e}")));
    let usable = platform.processors.iter().filter(|p| p.usable).count();
    log::info!(
        "ACPI: {} CPUs in the MADT ({usable} usable), local APIC at {:#x}",
        platform.processors.len(),
        platform.local_apic_address
    );
    for io in &platform.io_apics {
        log::info!("  I/O APIC {} at {:#x}, GSIs from {}", io.id, io.address, io.gsi_base);
    }

    pic::disable();
    apic::init_bsp(cpu::features().x2apic, |pa| mm::map_mmio(pa, 4096));
    let bsp_apic_id = apic::id();
    if bsp_apic_id != platform.processors[0].apic_id {
        log::warn!("boot CPU has APIC id {bsp_apic_id}, the MADT names {} as boot CPU", platform.processors[0].apic_id);
    }
    apic::calibrate_timer();
    if let Err(why) = virt::detect() {
        log::warn!("virtualization unavailable: {why}; guests cannot run on this machine");
    }
    let stacks = *BSP_STACKS.get().expect("BSP stacks allocated before the stack switch");
    smp::init_bsp(bsp_apic_id, stacks);
    x86_64::instructions::interrupts::enable();

    let online = smp::start_application_processors(&platform.processors, info);
    log::info!("{online} of {usable} CPUs online");
    if crate::sched::cpus_preferred_over_cpu0() != 0 {
        let others = if online == 2 { "CPU 1".into() } else { alloc::format!("CPUs 1-{}", online - 1) };
        log::warn!(
            "QEMU TCG: guests run on {others}; CPU 0 runs only guests pinned to it (QEMU undoes CPU 0's \
             VMRUN/#VMEXIT state changes from other CPUs' threads)"
        );
    }
    log::info!("boot modules: {}", info.modules().len());
    for (i, module) in info.modules().iter().enumerate() {
        log::info!(
            "  module {i}: {:#x}-{:#x} ({} KiB) \"{}\"",
            module.start,
            module.end,
            module.len().div_ceil(1024),
            module.cmdline.as_str()
        );
    }
    let stats = frames::stats();
    log::info!("Ferrovisor ready: {online} CPUs, {} MiB free", stats.free * 4 / 1024);

    #[cfg(feature = "selftest")]
    if let Some(name) = cmdline::get("selftest") {
        crate::selftest::run(name);
    }

    bootdomains::start(info);
    smp::idle_loop()
}

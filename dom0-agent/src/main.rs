//! The Ferrovisor dom0 agent: the future privileged domain (domain 0).
//!
//! It will be a `no_std` PVH kernel that the hypervisor builds from its boot
//! module at boot and that hosts the domain builder, xenstored, consoled,
//! blkback/netback, storage, networking and the XenAPI management interface
//! (see `DESIGN.md` §1 and §3).
//!
//! For now this is only a placeholder that halts forever; it is filled in by
//! the "dom0 agent" issue. `cargo xtask` neither builds nor boots it yet.
//!
//! Build: `cargo build -p dom0-agent --release --target x86_64-unknown-none`.

#![no_std]
#![no_main]

use core::panic::PanicInfo;

/// Halts the CPU until the next interrupt, forever.
fn halt_forever() -> ! {
    loop {
        // SAFETY: `hlt` only stops this CPU until the next interrupt; it reads
        // and writes no memory, uses no stack and changes no flags.
        unsafe { core::arch::asm!("hlt", options(nomem, nostack, preserves_flags)) };
    }
}

/// Entry point (placeholder): does nothing but halt.
#[no_mangle]
pub extern "C" fn _start() -> ! {
    halt_forever()
}

#[panic_handler]
fn panic(_info: &PanicInfo<'_>) -> ! {
    halt_forever()
}

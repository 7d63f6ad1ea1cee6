//! Placing what a PVH kernel finds besides itself: the boot modules (module 0 is what Linux
//! takes as its initrd) after the kernel, then `hvm_start_info` with the command line and
//! the memory map; and the memory map of a domain whose RAM is one range with a reserved
//! region (special pages) above it. Shared by the hypervisor (dom0) and the dom0 agent
//! (domUs), so both lay a domain out the same way.

use crate::start_info::{guest_memmap, write_start_info, MemmapEntry, Module, StartInfo, E820_RAM, E820_RESERVED};
use crate::{GuestMemory, LoadError, GUEST_MEMMAP_MAX_ENTRIES};

/// Most boot modules [`place_boot_data`] handles.
pub const MAX_BOOT_MODULES: usize = 128;
/// Room kept after the modules for the start info, module list, memory map and strings.
pub const START_INFO_ROOM: u64 = 16 * PAGE;
const PAGE: u64 = 4096;

/// Entries [`domain_memmap`] may write.
pub const DOMAIN_MEMMAP_MAX_ENTRIES: usize = GUEST_MEMMAP_MAX_ENTRIES + 1;

/// A module to place: its bytes and command line (no NUL).
#[derive(Debug, Clone, Copy)]
pub struct ModuleData<'a> {
    pub bytes: &'a [u8],
    pub cmdline: &'a [u8],
}

/// What [`place_boot_data`] writes, and where RAM is.
#[derive(Debug, Clone, Copy)]
pub struct BootData<'a> {
    /// One past the kernel's last byte ([`LoadedKernel::extent`](crate::LoadedKernel)`.1`).
    pub kernel_end: u64,
    /// One past the last byte of the RAM the kernel sits in.
    pub ram_end: u64,
    pub cmdline: &'a [u8],
    pub modules: &'a [ModuleData<'a>],
    pub memmap: &'a [MemmapEntry],
    pub rsdp_paddr: u64,
    /// `SIF_*`.
    pub flags: u32,
}

/// Writes the modules page-aligned after the kernel and the start info after them; returns
/// the start info's guest-physical address (for EBX). Nothing is written unless everything
/// fits below `ram_end`.
pub fn place_boot_data<M: GuestMemory + ?Sized>(mem: &mut M, data: &BootData<'_>) -> Result<u64, LoadError> {
    let mut placed = [Module { paddr: 0, size: 0, cmdline: &[] }; MAX_BOOT_MODULES];
    let count = data.modules.len();
    if count > MAX_BOOT_MODULES {
        return Err(LoadError::TooManyModules(count));
    }
    let overflow = LoadError::BootDataDoesNotFit { needed: u64::MAX, ram_end: data.ram_end };
    let page_up = |v: u64| v.checked_next_multiple_of(PAGE).ok_or(overflow);
    let mut cursor = page_up(data.kernel_end)?;
    for (slot, module) in placed.iter_mut().zip(data.modules) {
        let size = u64::try_from(module.bytes.len()).map_err(|_| overflow)?;
        *slot = Module { paddr: cursor, size, cmdline: module.cmdline };
        cursor = page_up(cursor.checked_add(size).ok_or(overflow)?)?;
    }
    let needed = cursor.checked_add(START_INFO_ROOM).ok_or(overflow)?;
    if needed > data.ram_end {
        return Err(LoadError::BootDataDoesNotFit { needed, ram_end: data.ram_end });
    }
    for (slot, module) in placed.iter().zip(data.modules) {
        mem.write(slot.paddr, module.bytes)?;
    }
    let info = StartInfo {
        cmdline: data.cmdline,
        modules: placed.get(..count).unwrap_or(&[]),
        memmap: data.memmap,
        rsdp_paddr: data.rsdp_paddr,
        flags: data.flags,
    };
    write_start_info(&info, mem, cursor, needed)
}

/// The memory map of a domain with RAM `[ram_start, ram_end)` and `reserved_pages` pages
/// reserved right above it: RAM from 0 gets the usual ISA hole ([`guest_memmap`]); RAM
/// elsewhere (dom0's identity-mapped RAM) is one entry. Returns the entries written.
pub fn domain_memmap(
    ram_start: u64,
    ram_end: u64,
    reserved_pages: u64,
    out: &mut [MemmapEntry; DOMAIN_MEMMAP_MAX_ENTRIES],
) -> Result<usize, LoadError> {
    let size = ram_end.checked_sub(ram_start).ok_or(LoadError::BootDataDoesNotFit { needed: ram_start, ram_end })?;
    let entries = if ram_start == 0 {
        guest_memmap(size, out)?
    } else {
        let first = out.first_mut().ok_or(LoadError::MemmapBufferTooSmall { needed: 1 })?;
        *first = MemmapEntry { addr: ram_start, size, kind: E820_RAM };
        1
    };
    let reserved =
        reserved_pages.checked_mul(PAGE).ok_or(LoadError::BootDataDoesNotFit { needed: u64::MAX, ram_end })?;
    let slot = out.get_mut(entries).ok_or(LoadError::MemmapBufferTooSmall { needed: entries.saturating_add(1) })?;
    *slot = MemmapEntry { addr: ram_end, size: reserved, kind: E820_RESERVED };
    Ok(entries.saturating_add(1))
}

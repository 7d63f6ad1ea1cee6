//! `struct hvm_start_info` (Xen `public/arch-x86/hvm/start_info.h`, version 1) and the data it
//! points to, written into guest memory.

use crate::bytes::{align_up_u64, put};
use crate::error::LoadError;
use crate::{GuestMemory, GuestMemoryError};

/// `XEN_HVM_START_MAGIC_VALUE`: `hvm_start_info.magic` ("xEn3" with the 0x80 bit of "E" set).
pub const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// The `hvm_start_info.version` written: 1 (has the memory map fields).
pub const HVM_START_INFO_VERSION: u32 = 1;
/// `SIF_PRIVILEGED` (Xen `public/xen.h`): the domain is privileged.
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN` (Xen `public/xen.h`): the domain is the initial domain (dom0).
pub const SIF_INITDOMAIN: u32 = 1 << 1;

/// `sizeof(struct hvm_start_info)` (version 1).
pub const SIZE_OF_START_INFO: usize = 56;
/// `sizeof(struct hvm_modlist_entry)`.
pub const SIZE_OF_MODLIST_ENTRY: usize = 32;
/// `sizeof(struct hvm_memmap_table_entry)`.
pub const SIZE_OF_MEMMAP_ENTRY: usize = 24;

/// E820 memory types used in [`MemmapEntry::kind`].
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;
pub const E820_NVS: u32 = 4;
pub const E820_UNUSABLE: u32 = 5;

/// The legacy ISA hole (VGA memory and option/BIOS ROMs) that [`guest_memmap`] reserves.
pub const ISA_HOLE_START: u64 = 0xA_0000;
pub const ISA_HOLE_END: u64 = 0x10_0000;
/// The most entries [`guest_memmap`] produces.
pub const GUEST_MEMMAP_MAX_ENTRIES: usize = 3;

/// Byte offsets of the fields of the three structures (all little-endian).
pub mod offsets {
    // struct hvm_start_info
    pub const MAGIC: usize = 0; // u32
    pub const VERSION: usize = 4; // u32
    pub const FLAGS: usize = 8; // u32
    pub const NR_MODULES: usize = 12; // u32
    pub const MODLIST_PADDR: usize = 16; // u64
    pub const CMDLINE_PADDR: usize = 24; // u64
    pub const RSDP_PADDR: usize = 32; // u64
    pub const MEMMAP_PADDR: usize = 40; // u64
    pub const MEMMAP_ENTRIES: usize = 48; // u32
    pub const RESERVED: usize = 52; // u32

    // struct hvm_modlist_entry
    pub const MOD_PADDR: usize = 0; // u64
    pub const MOD_SIZE: usize = 8; // u64
    pub const MOD_CMDLINE_PADDR: usize = 16; // u64
    pub const MOD_RESERVED: usize = 24; // u64

    // struct hvm_memmap_table_entry
    pub const MEMMAP_ADDR: usize = 0; // u64
    pub const MEMMAP_SIZE: usize = 8; // u64
    pub const MEMMAP_TYPE: usize = 16; // u32
    pub const MEMMAP_RESERVED: usize = 20; // u32
}

// The fields are contiguous, naturally aligned and fill each structure exactly, as in C.
const _: () = {
    use offsets::*;
    assert!(VERSION == MAGIC + 4 && FLAGS == VERSION + 4 && NR_MODULES == FLAGS + 4);
    assert!(MODLIST_PADDR == NR_MODULES + 4 && MODLIST_PADDR % 8 == 0);
    assert!(CMDLINE_PADDR == MODLIST_PADDR + 8 && RSDP_PADDR == CMDLINE_PADDR + 8);
    assert!(MEMMAP_PADDR == RSDP_PADDR + 8 && MEMMAP_ENTRIES == MEMMAP_PADDR + 8);
    assert!(RESERVED == MEMMAP_ENTRIES + 4 && RESERVED + 4 == SIZE_OF_START_INFO);
    assert!(MOD_SIZE == MOD_PADDR + 8 && MOD_CMDLINE_PADDR == MOD_SIZE + 8);
    assert!(MOD_RESERVED == MOD_CMDLINE_PADDR + 8 && MOD_RESERVED + 8 == SIZE_OF_MODLIST_ENTRY);
    assert!(MEMMAP_SIZE == MEMMAP_ADDR + 8 && MEMMAP_TYPE == MEMMAP_SIZE + 8);
    assert!(MEMMAP_RESERVED == MEMMAP_TYPE + 4 && MEMMAP_RESERVED + 4 == SIZE_OF_MEMMAP_ENTRY);
    // Every structure keeps the next one 8-byte aligned.
    assert!(SIZE_OF_START_INFO % 8 == 0 && SIZE_OF_MODLIST_ENTRY % 8 == 0 && SIZE_OF_MEMMAP_ENTRY % 8 == 0);
};

/// A boot module (the first one is Linux's initrd) already placed in guest memory by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    /// Guest-physical address of the module's bytes.
    pub paddr: u64,
    /// Size of the module in bytes.
    pub size: u64,
    /// The module's command line, without a terminating NUL (empty: `cmdline_paddr = 0`).
    pub cmdline: &'a [u8],
}

/// One `hvm_memmap_table_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    /// The E820 type ([`E820_RAM`], [`E820_RESERVED`], ...).
    pub kind: u32,
}

/// What goes into `hvm_start_info`.
#[derive(Debug, Clone, Copy)]
pub struct StartInfo<'a> {
    /// The kernel command line, without a terminating NUL (empty: `cmdline_paddr = 0`).
    pub cmdline: &'a [u8],
    /// Boot modules (empty: `nr_modules = 0`, `modlist_paddr = 0`).
    pub modules: &'a [Module<'a>],
    /// The guest's memory map (empty: `memmap_entries = 0`, `memmap_paddr = 0`, and Linux asks
    /// for it with `XENMEM_memory_map` instead); see [`guest_memmap`].
    pub memmap: &'a [MemmapEntry],
    /// Guest-physical address of the ACPI RSDP, 0 if none.
    pub rsdp_paddr: u64,
    /// `SIF_*` flags ([`SIF_PRIVILEGED`], [`SIF_INITDOMAIN`]).
    pub flags: u32,
}

impl StartInfo<'_> {
    /// How many bytes [`write_start_info`] uses when `at` is 8-byte aligned (`None` if the size
    /// overflows `u64`).
    pub fn size(&self) -> Option<u64> {
        Layout::compute(self, 0).map(|l| l.end)
    }
}

/// Where everything goes: the start info at `start`, then (each 8-byte aligned) the module
/// list, the memory map, the kernel command line and the module command lines in order.
struct Layout {
    start: u64,
    modlist: u64,
    memmap: u64,
    /// First byte of the strings.
    strings: u64,
    end: u64,
}

/// Reserves `len` bytes at the 8-aligned `cursor`, returning their address.
fn place(cursor: &mut u64, len: u64) -> Option<u64> {
    let at = align_up_u64(*cursor, 8)?;
    *cursor = at.checked_add(len)?;
    Some(at)
}

/// Reserves room for a NUL-terminated copy of `s` at the 8-aligned `cursor` and returns its
/// address, or returns 0 (absent) without moving the cursor if `s` is empty.
fn place_string(cursor: &mut u64, s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return Some(0);
    }
    place(cursor, u64::try_from(s.len()).ok()?.checked_add(1)?)
}

fn table_size(count: usize, entry_size: usize) -> Option<u64> {
    u64::try_from(count.checked_mul(entry_size)?).ok()
}

/// `base + index * entry_size`, for table entries already known to lie inside the layout.
fn entry_addr(base: u64, index: usize, entry_size: usize) -> Option<u64> {
    base.checked_add(table_size(index, entry_size)?)
}

impl Layout {
    /// The layout for a window starting at `at`; the strings are placed by [`place_string`] in
    /// the order the writer places them: the kernel command line, then each module's.
    fn compute(info: &StartInfo<'_>, at: u64) -> Option<Layout> {
        let mut cursor = at;
        let start = place(&mut cursor, SIZE_OF_START_INFO as u64)?;
        let modlist = place(&mut cursor, table_size(info.modules.len(), SIZE_OF_MODLIST_ENTRY)?)?;
        let memmap = place(&mut cursor, table_size(info.memmap.len(), SIZE_OF_MEMMAP_ENTRY)?)?;
        let strings = cursor;
        place_string(&mut cursor, info.cmdline)?;
        for m in info.modules {
            place_string(&mut cursor, m.cmdline)?;
        }
        Some(Layout { start, modlist, memmap, strings, end: cursor })
    }
}

/// Writes `hvm_start_info` (version 1), the module list, the memory map and the NUL-terminated
/// command lines into guest memory inside `[at, limit)`, starting at `at` rounded up to 8, and
/// returns the guest-physical address of `hvm_start_info` (the PVH entry `EBX`).
///
/// The whole used range is zeroed first, so padding and reserved fields are 0. Absent items
/// (empty command line, no modules, empty memory map) get address 0, which the ABI defines as
/// "not present". Modules are only described: the caller places their bytes, outside this
/// window and outside the kernel. Nothing is written if the layout does not fit
/// ([`LoadError::StartInfoTooLarge`]), if a command line contains a NUL, if a module's range
/// overflows, or if the used range is beyond [`GuestMemory::size`] ([`LoadError::Guest`]).
pub fn write_start_info<M: GuestMemory + ?Sized>(
    info: &StartInfo<'_>,
    mem: &mut M,
    at: u64,
    limit: u64,
) -> Result<u64, LoadError> {
    if info.cmdline.contains(&0) {
        return Err(LoadError::CmdlineContainsNul { module: None });
    }
    for (index, m) in info.modules.iter().enumerate() {
        if m.cmdline.contains(&0) {
            return Err(LoadError::CmdlineContainsNul { module: Some(index) });
        }
        if m.paddr.checked_add(m.size).is_none() {
            return Err(LoadError::BadModule { index });
        }
    }
    let too_large = |needed| LoadError::StartInfoTooLarge {
        needed,
        available: align_up_u64(at, 8).map_or(0, |start| limit.saturating_sub(start)),
    };
    let layout = Layout::compute(info, at).ok_or(too_large(u64::MAX))?;
    let used = layout.end.checked_sub(layout.start).ok_or(too_large(u64::MAX))?;
    if layout.end > limit {
        return Err(too_large(used));
    }
    let nr_modules = u32::try_from(info.modules.len()).map_err(|_| too_large(used))?;
    let memmap_entries = u32::try_from(info.memmap.len()).map_err(|_| too_large(used))?;
    if layout.end > mem.size() {
        return Err(LoadError::Guest(GuestMemoryError { gpa: layout.start, len: used }));
    }

    mem.fill(layout.start, used, 0)?;

    // Strings (their NUL terminators are already there from the fill) and the module list.
    let overflow = || too_large(u64::MAX);
    let mut cursor = layout.strings;
    let cmdline_paddr = place_string(&mut cursor, info.cmdline).ok_or_else(overflow)?;
    if cmdline_paddr != 0 {
        mem.write(cmdline_paddr, info.cmdline)?;
    }
    for (index, m) in info.modules.iter().enumerate() {
        let m_cmdline_paddr = place_string(&mut cursor, m.cmdline).ok_or_else(overflow)?;
        if m_cmdline_paddr != 0 {
            mem.write(m_cmdline_paddr, m.cmdline)?;
        }
        let mut b = [0u8; SIZE_OF_MODLIST_ENTRY];
        put(&mut b, offsets::MOD_PADDR, &m.paddr.to_le_bytes());
        put(&mut b, offsets::MOD_SIZE, &m.size.to_le_bytes());
        put(&mut b, offsets::MOD_CMDLINE_PADDR, &m_cmdline_paddr.to_le_bytes());
        mem.write(entry_addr(layout.modlist, index, SIZE_OF_MODLIST_ENTRY).ok_or_else(overflow)?, &b)?;
    }

    for (index, e) in info.memmap.iter().enumerate() {
        let mut b = [0u8; SIZE_OF_MEMMAP_ENTRY];
        put(&mut b, offsets::MEMMAP_ADDR, &e.addr.to_le_bytes());
        put(&mut b, offsets::MEMMAP_SIZE, &e.size.to_le_bytes());
        put(&mut b, offsets::MEMMAP_TYPE, &e.kind.to_le_bytes());
        mem.write(entry_addr(layout.memmap, index, SIZE_OF_MEMMAP_ENTRY).ok_or_else(overflow)?, &b)?;
    }
    let mut b = [0u8; SIZE_OF_START_INFO];
    put(&mut b, offsets::MAGIC, &XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
    put(&mut b, offsets::VERSION, &HVM_START_INFO_VERSION.to_le_bytes());
    put(&mut b, offsets::FLAGS, &info.flags.to_le_bytes());
    put(&mut b, offsets::NR_MODULES, &nr_modules.to_le_bytes());
    let modlist_paddr = if info.modules.is_empty() { 0 } else { layout.modlist };
    put(&mut b, offsets::MODLIST_PADDR, &modlist_paddr.to_le_bytes());
    put(&mut b, offsets::CMDLINE_PADDR, &cmdline_paddr.to_le_bytes());
    put(&mut b, offsets::RSDP_PADDR, &info.rsdp_paddr.to_le_bytes());
    let memmap_paddr = if info.memmap.is_empty() { 0 } else { layout.memmap };
    put(&mut b, offsets::MEMMAP_PADDR, &memmap_paddr.to_le_bytes());
    put(&mut b, offsets::MEMMAP_ENTRIES, &memmap_entries.to_le_bytes());
    mem.write(layout.start, &b)?;

    Ok(layout.start)
}

/// The usual PVH memory map for guest-physical memory `[0, ram_bytes)` (pass
/// [`GuestMemory::size`]): RAM below the ISA hole, the hole `[0xA0000, 0x100000)` reserved
/// (Linux expects it), and RAM from 1 MiB to `ram_bytes`. Ranges `ram_bytes` does not reach are
/// left out (except the hole, which is reported whole once RAM reaches it). Writes the entries
/// to the front of `out` (at most [`GUEST_MEMMAP_MAX_ENTRIES`]) and returns how many; the caller
/// may append its own (e.g. reserved ranges for ACPI tables or special pages).
pub fn guest_memmap(ram_bytes: u64, out: &mut [MemmapEntry]) -> Result<usize, LoadError> {
    let mut map = [MemmapEntry { addr: 0, size: 0, kind: 0 }; GUEST_MEMMAP_MAX_ENTRIES];
    let mut n = 0usize;
    let mut push = |e: MemmapEntry| {
        if let Some(slot) = map.get_mut(n) {
            *slot = e;
            n = n.saturating_add(1);
        }
    };
    if ram_bytes > 0 {
        push(MemmapEntry { addr: 0, size: ram_bytes.min(ISA_HOLE_START), kind: E820_RAM });
    }
    if ram_bytes > ISA_HOLE_START {
        push(MemmapEntry { addr: ISA_HOLE_START, size: ISA_HOLE_END - ISA_HOLE_START, kind: E820_RESERVED });
    }
    if let Some(high) = ram_bytes.checked_sub(ISA_HOLE_END).filter(|&high| high > 0) {
        push(MemmapEntry { addr: ISA_HOLE_END, size: high, kind: E820_RAM });
    }
    let entries = map.get(..n).unwrap_or(&[]);
    let dst = out.get_mut(..n).ok_or(LoadError::MemmapBufferTooSmall { needed: n })?;
    dst.copy_from_slice(entries);
    Ok(n)
}

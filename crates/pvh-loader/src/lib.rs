//! Loads a PVH guest kernel into guest-physical memory and lays out its `hvm_start_info`.
//!
//! The hypervisor uses this crate to build the boot-time domains (dom0, DESIGN.md §3) and the
//! dom0 agent uses it to build domUs. The kernel image is **untrusted input**: every malformed
//! image is rejected with a precise [`LoadError`], never a panic, an arithmetic overflow or an
//! out-of-bounds access. The library has no `unsafe`, no heap (fixed-capacity arrays only) and
//! no dependencies; in non-test builds clippy denies indexing, unchecked arithmetic, `unwrap`,
//! `expect` and `panic!` in it.
//!
//! # Steps
//!
//! 1. [`parse`] validates the ELF image and finds its PVH entry point (and its relocation
//!    constraints, if any), giving a [`KernelImage`].
//! 2. [`load`] copies the image's `PT_LOAD` segments to their **physical** addresses in a
//!    [`GuestMemory`] and zero-fills each segment's tail up to `p_memsz`, giving a
//!    [`LoadedKernel`] (entry point and the physical extent the kernel occupies). For a
//!    relocatable kernel, [`placement`] picks a base inside a window of guest memory and
//!    [`load_at`] loads the image moved to that base (entry point and extent moved with it).
//! 3. [`write_start_info`] writes `struct hvm_start_info`, the module list, the memory map and
//!    the NUL-terminated command lines into a caller-chosen window of guest memory (typically
//!    the page after [`LoadedKernel::extent`]); [`guest_memmap`] computes the usual memory map.
//! 4. The hypervisor starts the vCPU in the PVH entry state below.
//!
//! # What a PVH image is
//!
//! A little-endian `ET_EXEC` ELF file, ELF64 with `EM_X86_64` (62) or ELF32 with `EM_386` (3),
//! carrying an ELF note named `"Xen"` of type `XEN_ELFNOTE_PHYS32_ENTRY` (18, Xen's
//! `public/elfnote.h`) whose descriptor is the 32-bit **physical** entry address (4 bytes; an
//! 8-byte descriptor is accepted if its value is below 4 GiB). The note is looked for in the
//! `PT_NOTE` segments and, only if none of them has it, in the `SHT_NOTE` sections (the order
//! Xen's libelf uses). `e_entry` is ignored: it is a virtual address for other boot protocols.
//! A kernel built without PVH support is a well-formed ELF without that note and is reported as
//! [`LoadError::NoPvhEntryNote`].
//!
//! A kernel that can run at other physical addresses than its `p_paddr`s (recent x86-64 Linux
//! with `CONFIG_RELOCATABLE`) also carries a `"Xen"` note of type
//! `XEN_ELFNOTE_PHYS32_RELOC` (19), found the same way. Its presence alone makes the image
//! relocatable; its descriptor holds up to three `u32`s, each optional from the end: the
//! alignment of the image's lowest physical address (a power of two), the lowest address the
//! image may start at (default 0) and the highest address its **last byte** may occupy (default
//! `0xffff_ffff`). Without an alignment Xen uses the largest `PT_LOAD` `p_align` if that is at
//! least 4 KiB, else 2 MiB. Relocating moves the whole image by one offset and the entry point
//! with it; [`KernelImage::relocation`] gives the resulting [`Relocation`]. A descriptor of
//! another size than 0, 4, 8 or 12 bytes, an alignment that is not a power of two, a minimum
//! above the maximum or two differing notes are errors ([`NoteProblem`]; Xen's libelf is more
//! lenient about the size and reads whichever values fit).
//!
//! # PVH entry state (set up by the hypervisor, `arch/x86/platform/pvh/head.S` in Linux)
//!
//! - 32-bit protected mode with paging off: `CR0.PE = 1`, other writable CR0 bits clear, `CR4 = 0`;
//! - `EIP` = [`LoadedKernel::entry`], `EBX` = the guest-physical address of `hvm_start_info`
//!   (what [`write_start_info`] returns);
//! - `CS` a flat 32-bit execute/read code segment; `DS`, `ES`, `SS` flat 32-bit read/write data
//!   segments (`FS`/`GS` unspecified);
//! - `TR` a 32-bit TSS (base 0, limit 0x67);
//! - `EFLAGS`: `IF = 0`, `TF = 0`, `VM = 0`.
//!
//! The kernel installs its own GDT and page tables before it relies on anything else.
//!
//! # Guest memory
//!
//! [`GuestMemory`] is guest-physical memory `[0, size)`. The hypervisor implements it over a
//! domain's frames, the dom0 agent over its foreign mappings, and it is implemented here for
//! `[u8]` (so a `Vec<u8>` or an array works in tests). Nothing is written by [`load`],
//! [`load_at`] or [`write_start_info`] until every check that can be made in advance has passed.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_possible_truncation
    )
)]

mod boot_data;
mod bytes;
mod elf;
mod error;
mod load;
mod start_info;

#[cfg(test)]
mod tests;

pub use boot_data::{
    domain_memmap, place_boot_data, BootData, ModuleData, DOMAIN_MEMMAP_MAX_ENTRIES, MAX_BOOT_MODULES, START_INFO_ROOM,
};
pub use elf::{
    parse, ElfClass, KernelImage, Relocation, Segment, MAX_LOAD_SEGMENTS, RELOC_DEFAULT_ALIGN, RELOC_DEFAULT_MAX,
    RELOC_MIN_SEGMENT_ALIGN, XEN_ELFNOTE_PHYS32_ENTRY, XEN_ELFNOTE_PHYS32_RELOC,
};
pub use error::{BaseProblem, LoadError, NoteLocation, NoteProblem, TableProblem};
pub use load::{load, load_at, placement, LoadedKernel};
pub use start_info::{
    guest_memmap, offsets, write_start_info, MemmapEntry, Module, StartInfo, E820_ACPI, E820_NVS, E820_RAM,
    E820_RESERVED, E820_UNUSABLE, GUEST_MEMMAP_MAX_ENTRIES, HVM_START_INFO_VERSION, ISA_HOLE_END, ISA_HOLE_START,
    SIF_INITDOMAIN, SIF_PRIVILEGED, SIZE_OF_MEMMAP_ENTRY, SIZE_OF_MODLIST_ENTRY, SIZE_OF_START_INFO,
    XEN_HVM_START_MAGIC_VALUE,
};

use core::fmt;

/// Guest-physical memory `[0, size())` of the domain being built.
///
/// Implementations must refuse (not truncate) any access that does not lie entirely inside
/// memory they can write, and must not panic on any argument, including ranges whose end
/// overflows `u64`.
pub trait GuestMemory {
    /// The size of guest-physical memory in bytes: valid addresses are `[0, size)`.
    fn size(&self) -> u64;
    /// Copies `bytes` to guest-physical address `gpa`.
    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), GuestMemoryError>;
    /// Sets `len` bytes from guest-physical address `gpa` to `byte`.
    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError>;
}

/// A [`GuestMemory`] access that the implementation refused: `[gpa, gpa + len)` is not
/// (entirely) writable guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMemoryError {
    pub gpa: u64,
    pub len: u64,
}

impl fmt::Display for GuestMemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest memory refused an access of {:#x} bytes at {:#x}", self.len, self.gpa)
    }
}

/// A byte slice is guest memory starting at guest-physical address 0.
impl GuestMemory for [u8] {
    fn size(&self) -> u64 {
        // `usize` is at most 64 bits on every target Rust supports.
        u64::try_from(self.len()).unwrap_or(u64::MAX)
    }

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), GuestMemoryError> {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let err = GuestMemoryError { gpa, len };
        let dst = slice_range_mut(self, gpa, len).ok_or(err)?;
        dst.copy_from_slice(bytes);
        Ok(())
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError> {
        let dst = slice_range_mut(self, gpa, len).ok_or(GuestMemoryError { gpa, len })?;
        dst.fill(byte);
        Ok(())
    }
}

/// `mem[start .. start + len]`, or `None` if that range is not inside `mem`.
fn slice_range_mut(mem: &mut [u8], start: u64, len: u64) -> Option<&mut [u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    mem.get_mut(start..end)
}

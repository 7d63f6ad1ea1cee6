//! Lays out what a PVH guest finds in memory at entry: after its kernel, the initrd (as
//! module 0, which Linux takes as its initrd) and `hvm_start_info` with the command line
//! and the memory map; above its RAM, a reserved region of special pages (the console
//! ring and the ACPI tables), as Xen's toolstack does.

use crate::domain::CreateError;
use crate::guest_acpi;
use crate::mm::frames;
use crate::mm::guest::GuestRam;
use alloc::format;
use alloc::vec::Vec;
use pvh_loader::{MemmapEntry, Module, StartInfo, E820_RESERVED, GUEST_MEMMAP_MAX_ENTRIES};
use x86_64::PhysAddr;

const PAGE: u64 = 4096;
/// Room reserved for `hvm_start_info`, the module list, the memory map and the strings.
const START_INFO_ROOM: u64 = 16 * PAGE;
/// Pages above RAM, reserved in the memory map: [console ring, xenstore ring, ACPI...].
const SPECIAL_PAGES: u64 = 8;
const CONSOLE_PAGE: u64 = 0;
const ACPI_PAGE: u64 = 2;
const ACPI_MAX_PAGES: u64 = 4;

/// The result of laying out a guest's boot information.
pub struct BootLayout {
    /// Guest-physical address of `hvm_start_info` (for EBX).
    pub start_info: u32,
    /// The memory map in `hvm_start_info` (and for XENMEM_memory_map).
    pub memory_map: Vec<MemmapEntry>,
    pub console_gfn: Option<u64>,
    /// Host frames placed in the guest's special pages; the domain adopts them.
    frames: Vec<PhysAddr>,
}

impl BootLayout {
    /// Hands the special pages to their owner.
    pub fn take_frames(&mut self) -> Vec<PhysAddr> {
        core::mem::take(&mut self.frames)
    }
}

impl Drop for BootLayout {
    fn drop(&mut self) {
        for &f in &self.frames {
            frames::free(f);
        }
    }
}

fn place_page(ram: &GuestRam, layout: &mut BootLayout, gfn: u64, contents: &[u8]) -> Result<(), CreateError> {
    let frame = frames::alloc_zeroed().ok_or(CreateError::OutOfMemory)?;
    layout.frames.push(frame);
    ram.map_overlay(gfn, frame)?;
    ram.write(gfn * PAGE, contents).map_err(|e| CreateError::Layout(format!("writing special page: {e:?}")))
}

/// Writes the initrd, the start info and the special pages; returns where things are.
pub fn write_boot_info(
    ram: &mut GuestRam,
    kernel_end: u64,
    cmdline: &str,
    initrd: Option<&[u8]>,
    vcpus: u32,
) -> Result<BootLayout, CreateError> {
    let special_base = ram.size() / PAGE;
    let mut layout = BootLayout { start_info: 0, memory_map: Vec::new(), console_gfn: None, frames: Vec::new() };
    place_page(ram, &mut layout, special_base + CONSOLE_PAGE, &[])?;
    layout.console_gfn = Some(special_base + CONSOLE_PAGE);
    let acpi_base = (special_base + ACPI_PAGE) * PAGE;
    let acpi = guest_acpi::build(acpi_base, vcpus);
    if acpi.len() as u64 > ACPI_MAX_PAGES * PAGE {
        return Err(CreateError::Layout(format!("ACPI tables for {vcpus} vCPUs do not fit")));
    }
    for (i, chunk) in acpi.chunks(PAGE as usize).enumerate() {
        place_page(ram, &mut layout, special_base + ACPI_PAGE + i as u64, chunk)?;
    }

    let mut cursor = kernel_end.next_multiple_of(PAGE);
    let mut module = None;
    if let Some(bytes) = initrd {
        let len = bytes.len() as u64;
        if cursor + len.next_multiple_of(PAGE) + START_INFO_ROOM > ram.size() {
            return Err(CreateError::Layout(format!(
                "kernel and initrd ({} KiB) do not fit in {} MiB of RAM",
                len / 1024,
                ram.size() >> 20
            )));
        }
        ram.write(cursor, bytes).map_err(|e| CreateError::Layout(format!("writing the initrd: {e:?}")))?;
        module = Some(Module { paddr: cursor, size: len, cmdline: b"" });
        cursor += len.next_multiple_of(PAGE);
    }
    let mut memmap = [MemmapEntry { addr: 0, size: 0, kind: 0 }; GUEST_MEMMAP_MAX_ENTRIES + 1];
    let entries = pvh_loader::guest_memmap(ram.size(), &mut memmap).map_err(CreateError::Kernel)?;
    memmap[entries] = MemmapEntry { addr: special_base * PAGE, size: SPECIAL_PAGES * PAGE, kind: E820_RESERVED };
    let info = StartInfo {
        cmdline: cmdline.as_bytes(),
        modules: module.as_slice(),
        memmap: &memmap[..entries + 1],
        rsdp_paddr: acpi_base,
        flags: 0,
    };
    layout.memory_map = info.memmap.to_vec();
    let limit = (cursor + START_INFO_ROOM).min(ram.size());
    let at = pvh_loader::write_start_info(&info, ram, cursor, limit).map_err(CreateError::Kernel)?;
    layout.start_info =
        u32::try_from(at).map_err(|_| CreateError::Layout(format!("start info at {at:#x} is above 4 GiB")))?;
    Ok(layout)
}

//! Lays out what a PVH guest finds in memory at entry: after its kernel, the initrd (as
//! module 0, which Linux takes as its initrd) and `hvm_start_info` with the command line
//! and the memory map; above its RAM, a reserved region of special pages (the console and
//! xenstore rings and the ACPI tables), as Xen's toolstack does. Domains made through the
//! control interface get the special pages and memory map from here too; their builder
//! writes the rest.

use crate::domain::CreateError;
use crate::guest_acpi;
use crate::mm::frames;
use crate::mm::guest::GuestRam;
use alloc::format;
use alloc::vec::Vec;
use pvh_loader::{BootData, MemmapEntry, ModuleData, DOMAIN_MEMMAP_MAX_ENTRIES};
use x86_64::PhysAddr;
use xen_abi::ctl::{SPECIAL_PAGES, SPECIAL_PAGE_ACPI as ACPI_PAGE, SPECIAL_PAGE_CONSOLE as CONSOLE_PAGE};

const PAGE: u64 = 4096;
const ACPI_MAX_PAGES: u64 = 4;

/// The pages the hypervisor places above a domain's RAM (see [`xen_abi::ctl`]).
pub struct SpecialPages {
    /// Guest frame of the first special page.
    pub base_gfn: u64,
    /// Guest-physical address of the ACPI RSDP.
    pub rsdp: u64,
    /// Host frames placed there; the domain adopts them (freed on drop otherwise).
    frames: Vec<PhysAddr>,
}

impl SpecialPages {
    pub fn console_gfn(&self) -> u64 {
        self.base_gfn + CONSOLE_PAGE
    }

    /// Hands the pages to their owner.
    pub fn take_frames(&mut self) -> Vec<PhysAddr> {
        core::mem::take(&mut self.frames)
    }

    fn place(&mut self, ram: &GuestRam, gfn: u64, contents: &[u8]) -> Result<(), CreateError> {
        let frame = frames::alloc_zeroed().ok_or(CreateError::OutOfMemory)?;
        self.frames.push(frame);
        ram.map_overlay(gfn, frame)?;
        ram.write(gfn * PAGE, contents).map_err(|e| CreateError::Layout(format!("writing special page: {e:?}")))
    }
}

impl Drop for SpecialPages {
    fn drop(&mut self) {
        for &f in &self.frames {
            frames::free(f);
        }
    }
}

/// Places the special pages above `ram`: empty console and xenstore rings, the ACPI tables
/// for `vcpus` vCPUs, zeroed spares.
pub fn place_special_pages(ram: &GuestRam, vcpus: u32) -> Result<SpecialPages, CreateError> {
    let base_gfn = ram.end() / PAGE;
    let mut special = SpecialPages { base_gfn, rsdp: rsdp_of(ram), frames: Vec::new() };
    let acpi = guest_acpi::build(special.rsdp, vcpus);
    if acpi.len() as u64 > ACPI_MAX_PAGES * PAGE {
        return Err(CreateError::Layout(format!("ACPI tables for {vcpus} vCPUs do not fit")));
    }
    let mut pages: Vec<&[u8]> = acpi.chunks(PAGE as usize).collect();
    pages.resize(ACPI_MAX_PAGES as usize, &[]);
    for offset in 0..SPECIAL_PAGES {
        let contents = offset.checked_sub(ACPI_PAGE).and_then(|i| pages.get(i as usize).copied()).unwrap_or(&[]);
        special.place(ram, base_gfn + offset, contents)?;
    }
    Ok(special)
}

/// Where [`place_special_pages`] put the ACPI RSDP for a domain with RAM `ram`.
pub fn rsdp_of(ram: &GuestRam) -> u64 {
    (ram.end() / PAGE + ACPI_PAGE) * PAGE
}

/// The memory map a domain is given: its RAM (with the ISA hole when RAM starts at 0) and
/// the special pages, reserved.
pub fn memory_map(ram: &GuestRam) -> Result<Vec<MemmapEntry>, CreateError> {
    let mut map = [MemmapEntry { addr: 0, size: 0, kind: 0 }; DOMAIN_MEMMAP_MAX_ENTRIES];
    let entries =
        pvh_loader::domain_memmap(ram.base(), ram.end(), SPECIAL_PAGES, &mut map).map_err(CreateError::Kernel)?;
    Ok(map[..entries].to_vec())
}

/// The result of laying out a guest's boot information.
pub struct BootLayout {
    /// Guest-physical address of `hvm_start_info` (for EBX).
    pub start_info: u32,
    /// The memory map in `hvm_start_info` (and for XENMEM_memory_map).
    pub memory_map: Vec<MemmapEntry>,
    pub special: SpecialPages,
}

/// Writes the special pages, then the modules and the start info after a kernel ending at
/// `kernel_end` ([`pvh_loader::place_boot_data`]); returns where things are.
pub fn write_boot_info(
    ram: &mut GuestRam,
    kernel_end: u64,
    cmdline: &str,
    modules: &[ModuleData<'_>],
    vcpus: u32,
    flags: u32,
) -> Result<BootLayout, CreateError> {
    let special = place_special_pages(ram, vcpus)?;
    let memory_map = memory_map(ram)?;
    let data = BootData {
        kernel_end,
        ram_end: ram.end(),
        cmdline: cmdline.as_bytes(),
        modules,
        memmap: &memory_map,
        rsdp_paddr: special.rsdp,
        flags,
    };
    let at = pvh_loader::place_boot_data(ram, &data).map_err(CreateError::Kernel)?;
    let start_info =
        u32::try_from(at).map_err(|_| CreateError::Layout(format!("start info at {at:#x} is above 4 GiB")))?;
    Ok(BootLayout { start_info, memory_map, special })
}

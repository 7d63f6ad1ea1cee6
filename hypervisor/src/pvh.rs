//! Lays out what a PVH guest finds in memory at entry, after its kernel: the initrd (as
//! module 0, which Linux takes as its initrd) and `hvm_start_info` with the command line
//! and the memory map.

use crate::domain::CreateError;
use crate::mm::guest::GuestRam;
use alloc::format;
use pvh_loader::{MemmapEntry, Module, StartInfo, GUEST_MEMMAP_MAX_ENTRIES};

const PAGE: u64 = 4096;
/// Room reserved for `hvm_start_info`, the module list, the memory map and the strings.
const START_INFO_ROOM: u64 = 16 * PAGE;

/// Writes the initrd and the start info after `kernel_end`; returns the start info's
/// guest-physical address (what the vCPU gets in EBX).
pub fn write_boot_info(
    ram: &mut GuestRam,
    kernel_end: u64,
    cmdline: &str,
    initrd: Option<&[u8]>,
) -> Result<u32, CreateError> {
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
    let mut memmap = [MemmapEntry { addr: 0, size: 0, kind: 0 }; GUEST_MEMMAP_MAX_ENTRIES];
    let entries = pvh_loader::guest_memmap(ram.size(), &mut memmap).map_err(CreateError::Kernel)?;
    let modules = module.as_slice();
    let info = StartInfo { cmdline: cmdline.as_bytes(), modules, memmap: &memmap[..entries], rsdp_paddr: 0, flags: 0 };
    let limit = (cursor + START_INFO_ROOM).min(ram.size());
    let at = pvh_loader::write_start_info(&info, ram, cursor, limit).map_err(CreateError::Kernel)?;
    u32::try_from(at).map_err(|_| CreateError::Layout(format!("start info at {at:#x} is above 4 GiB")))
}

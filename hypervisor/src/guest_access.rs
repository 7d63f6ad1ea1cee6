//! The one way the hypervisor reads or writes memory a guest points it at: guest-virtual
//! addresses are translated by walking the guest's own page tables (whatever paging mode
//! it is in), then checked against the domain's RAM. A bad pointer is an error value for
//! the caller to turn into -EFAULT; it never faults the hypervisor.

use crate::mm::guest::GuestRam;
use crate::vcpu::Exec;
use crate::virt::PagingState;
use alloc::string::String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadGuestAddress(pub u64);

const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PAGE_SIZE_BIT: u64 = 1 << 7;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

fn read_u64(ram: &GuestRam, gpa: u64, gva: u64) -> Result<u64, BadGuestAddress> {
    let mut b = [0u8; 8];
    ram.read(gpa, &mut b).map_err(|_| BadGuestAddress(gva))?;
    Ok(u64::from_le_bytes(b))
}

fn read_u32(ram: &GuestRam, gpa: u64, gva: u64) -> Result<u64, BadGuestAddress> {
    let mut b = [0u8; 4];
    ram.read(gpa, &mut b).map_err(|_| BadGuestAddress(gva))?;
    Ok(u64::from(u32::from_le_bytes(b)))
}

/// Guest-physical address of `gva` under `paging`.
pub fn translate(ram: &GuestRam, paging: &PagingState, gva: u64) -> Result<u64, BadGuestAddress> {
    if paging.cr0 & CR0_PG == 0 {
        return Ok(gva & 0xffff_ffff);
    }
    let bad = BadGuestAddress(gva);
    if paging.efer & EFER_LMA != 0 {
        return walk_4_level(ram, paging.cr3, gva, |_| {}).map_err(|_| bad);
    }
    let gva = gva & 0xffff_ffff;
    if paging.cr4 & CR4_PAE != 0 {
        // PAE: 4-entry PDPT -> PD -> PT, 8-byte entries.
        let pdpte = read_u64(ram, (paging.cr3 & 0xffff_ffe0) + (gva >> 30) * 8, gva)?;
        if pdpte & PRESENT == 0 {
            return Err(bad);
        }
        let pde = read_u64(ram, (pdpte & ADDRESS_MASK) + ((gva >> 21) & 0x1ff) * 8, gva)?;
        if pde & PRESENT == 0 {
            return Err(bad);
        }
        if pde & PAGE_SIZE_BIT != 0 {
            return Ok((pde & ADDRESS_MASK & !0x1f_ffff) | (gva & 0x1f_ffff));
        }
        let pte = read_u64(ram, (pde & ADDRESS_MASK) + ((gva >> 12) & 0x1ff) * 8, gva)?;
        if pte & PRESENT == 0 {
            return Err(bad);
        }
        return Ok((pte & ADDRESS_MASK) | (gva & 0xfff));
    }
    // Classic 32-bit paging: PD -> PT, 4-byte entries, optional 4 MiB pages.
    let pde = read_u32(ram, (paging.cr3 & 0xffff_f000) + (gva >> 22) * 4, gva)?;
    if pde & PRESENT == 0 {
        return Err(bad);
    }
    if paging.cr4 & CR4_PSE != 0 && pde & PAGE_SIZE_BIT != 0 {
        return Ok((pde & 0xffc0_0000) | (gva & 0x3f_ffff));
    }
    let pte = read_u32(ram, (pde & 0xffff_f000) + ((gva >> 12) & 0x3ff) * 4, gva)?;
    if pte & PRESENT == 0 {
        return Err(bad);
    }
    Ok((pte & 0xffff_f000) | (gva & 0xfff))
}

/// One entry read by [`walk_4_level`]: its level (4 = PML4), the table's guest-physical
/// address, the index in it and the entry.
struct WalkStep {
    level: u32,
    table: u64,
    index: u64,
    entry: u64,
}

/// Where [`walk_4_level`] stopped: a table outside the domain's RAM, or a not-present entry.
enum WalkStop {
    TableNotRam { level: u32, table: u64 },
    NotPresent { table: u64 },
}

/// Walks 4-level paging (PML4 -> PDPT -> PD -> PT, 1 GiB and 2 MiB pages) from `cr3` for
/// `gva`, showing `visit` every entry it reads; the guest-physical address of `gva`.
fn walk_4_level(ram: &GuestRam, cr3: u64, gva: u64, mut visit: impl FnMut(&WalkStep)) -> Result<u64, WalkStop> {
    let mut table = cr3 & ADDRESS_MASK;
    for level in (1..=4u32).rev() {
        let index = (gva >> (12 + 9 * (level - 1))) & 0x1ff;
        let entry = read_u64(ram, table + index * 8, gva).map_err(|_| WalkStop::TableNotRam { level, table })?;
        visit(&WalkStep { level, table, index, entry });
        if entry & PRESENT == 0 {
            return Err(WalkStop::NotPresent { table });
        }
        if (level == 3 || level == 2) && entry & PAGE_SIZE_BIT != 0 {
            let page = 1u64 << (12 + 9 * (level - 1));
            return Ok((entry & ADDRESS_MASK & !(page - 1)) | (gva & (page - 1)));
        }
        table = entry & ADDRESS_MASK;
    }
    Ok(table | (gva & 0xfff))
}

/// How `gva` translates under 4-level paging, level by level, for a crash report: each
/// table's guest-physical address and the entry used; where the walk stops, why, with a
/// look at the table (a table of zeros was never written or was wiped).
pub fn describe_walk(ram: &GuestRam, paging: &PagingState, gva: u64) -> String {
    use core::fmt::Write;
    let mut out = String::new();
    if paging.cr0 & CR0_PG == 0 || paging.efer & EFER_LMA == 0 {
        let _ = write!(out, "{gva:#x}: not in 4-level paging");
        return out;
    }
    let _ = write!(out, "{gva:#x}:");
    let stop = walk_4_level(ram, paging.cr3, gva, |step| {
        let WalkStep { level, table, index, entry } = *step;
        let _ = write!(out, " L{level}[{index}]@{table:#x}={entry:#x}");
    });
    match stop {
        Ok(_) => {}
        Err(WalkStop::TableNotRam { level, table }) => {
            let _ = write!(out, " L{level} table {table:#x} is not RAM");
        }
        Err(WalkStop::NotPresent { table }) => {
            let mut page = [0u8; 4096];
            if ram.read(table, &mut page).is_ok() {
                let present = page.chunks_exact(8).filter(|e| e[0] & 1 != 0).count();
                let nonzero = page.iter().filter(|&&b| b != 0).count();
                let _ = write!(out, " not present; table has {present} present entries, {nonzero} non-zero bytes");
            }
        }
    }
    out
}

/// Splits `[gva, gva + len)` at guest page boundaries and translates each piece.
fn for_each_page(
    ram: &GuestRam,
    exec: &Exec,
    gva: u64,
    len: usize,
    mut f: impl FnMut(u64, usize, usize) -> Result<(), BadGuestAddress>,
) -> Result<(), BadGuestAddress> {
    let paging = exec.hw.paging_state();
    let mut done = 0usize;
    while done < len {
        let at = gva.checked_add(done as u64).ok_or(BadGuestAddress(gva))?;
        let n = ((0x1000 - (at & 0xfff)) as usize).min(len - done);
        let gpa = translate(ram, &paging, at)?;
        f(gpa, done, n)?;
        done += n;
    }
    Ok(())
}

/// Copies `buf.len()` bytes from guest-virtual `gva`.
pub fn copy_from_guest(ram: &GuestRam, exec: &Exec, gva: u64, buf: &mut [u8]) -> Result<(), BadGuestAddress> {
    let len = buf.len();
    for_each_page(ram, exec, gva, len, |gpa, done, n| {
        ram.read(gpa, &mut buf[done..done + n]).map_err(|_| BadGuestAddress(gva + done as u64))
    })
}

/// Copies `bytes` to guest-virtual `gva`.
pub fn copy_to_guest(ram: &GuestRam, exec: &Exec, gva: u64, bytes: &[u8]) -> Result<(), BadGuestAddress> {
    for_each_page(ram, exec, gva, bytes.len(), |gpa, done, n| {
        ram.write(gpa, &bytes[done..done + n]).map_err(|_| BadGuestAddress(gva + done as u64))
    })
}

//! Mapping guest-physical memory above the 4 GiB the boot stub maps.

use crate::arch;

extern "C" {
    /// The boot stub's page-directory-pointer table (PML4[0]: the first 512 GiB).
    static mut guest_pdpt: [u64; 512];
}

const PRESENT_WRITABLE: u64 = 0x3;
const HUGE_PRESENT_WRITABLE: u64 = 0x83;
const GIB: u64 = 1 << 30;
const PAGE_2M: u64 = 1 << 21;

/// A page directory for one extra GiB.
#[repr(C, align(4096))]
struct PageDirectory([u64; 512]);

static mut HIGH_PD: PageDirectory = PageDirectory([0; 512]);

/// Makes `addr` accessible (identity-mapped, 2 MiB pages): below 4 GiB it already is;
/// up to 512 GiB the 1 GiB around it is mapped through a spare page directory (one at a
/// time). Returns `false` for addresses beyond 512 GiB.
pub fn identity_map(addr: u64) -> bool {
    let gib = addr / GIB;
    if gib < 4 {
        return true;
    }
    if gib >= 512 {
        return false;
    }
    let pd = core::ptr::addr_of_mut!(HIGH_PD);
    let pdpt = core::ptr::addr_of_mut!(guest_pdpt);
    // SAFETY: the guest runs on one vCPU and nothing else touches these tables; HIGH_PD
    // is a page-aligned static (identity-mapped, so its address is its physical address)
    // and guest_pdpt is the live PDPT of the boot stub; entries 4..512 of it are unused.
    unsafe {
        for i in 0..512u64 {
            (*pd).0[i as usize] = (gib * GIB + i * PAGE_2M) | HUGE_PRESENT_WRITABLE;
        }
        (*pdpt)[gib as usize] = (pd as u64) | PRESENT_WRITABLE;
    }
    arch::flush_tlb();
    true
}

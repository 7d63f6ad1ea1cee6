//! Extended page tables (Intel SDM Vol. 3C §29.3): the entry format the guest-RAM builder
//! writes through [`NestedFormat`], and the EPT pointer a VMCS holds.
//!
//! Every level has the same permission bits (read, write, execute in bits 0-2); leaves add
//! the memory type (bits 5:3, write-back here, combined with the guest's PAT) and, for a
//! 2 MiB page in a page directory, bit 7. Bit 0 (read) doubles as "present" for the
//! generic table walker: no entry this module makes is present without being readable.

use crate::virt::NestedFormat;
use spin::Once;

const READ: u64 = 1 << 0;
const WRITE: u64 = 1 << 1;
const EXECUTE: u64 = 1 << 2;
const MEMORY_TYPE_WB: u64 = 6 << 3;
const LARGE_PAGE: u64 = 1 << 7;

/// EPTP: memory type of the paging structures (bits 2:0) and walk length − 1 (bits 5:3).
const EPTP_WB: u64 = 6;
const EPTP_WALK_4: u64 = 3 << 3;

/// EPT entries, with or without 2 MiB pages depending on the CPU.
#[derive(Debug)]
pub struct EptFormat {
    two_mb_pages: bool,
}

impl NestedFormat for EptFormat {
    fn table(&self, pa: u64) -> u64 {
        pa | READ | WRITE | EXECUTE
    }

    fn leaf_4k(&self, pa: u64) -> u64 {
        pa | READ | WRITE | EXECUTE | MEMORY_TYPE_WB
    }

    fn leaf_4k_readonly(&self, pa: u64) -> u64 {
        pa | READ | EXECUTE | MEMORY_TYPE_WB
    }

    fn leaf_2m(&self, pa: u64) -> u64 {
        debug_assert!(self.two_mb_pages, "2 MiB EPT leaf on a CPU without 2 MiB EPT pages");
        pa | READ | WRITE | EXECUTE | MEMORY_TYPE_WB | LARGE_PAGE
    }

    fn supports_2m(&self) -> bool {
        self.two_mb_pages
    }
}

static FORMAT: Once<EptFormat> = Once::new();

/// The entry format for this machine (after [`super::detect`]).
pub fn format() -> &'static EptFormat {
    FORMAT.call_once(|| EptFormat { two_mb_pages: super::caps().ept_2m_pages })
}

/// The EPT pointer for a 4-level table rooted at `root`, write-back, without
/// accessed/dirty flags.
pub fn pointer(root: u64) -> u64 {
    root | EPTP_WALK_4 | EPTP_WB
}

//! Memory: who owns every physical frame, and how the hypervisor addresses memory.
//!
//! Address space of the hypervisor (one set of page tables, shared by all CPUs):
//! - the image, identity-mapped at its link address with per-section permissions;
//! - the direct map: all physical memory at [`DIRECT_MAP_BASE`] + physical address,
//!   writable, never executable (large pages);
//! - per-CPU stacks with unmapped guard pages ([`stacks`]);
//! - an uncached window for device registers ([`map_mmio`]).
//!
//! Nothing else is mapped: page 0 faults, and so does everything a bug might reach.
//!
//! Physical frames are owned by one [`FrameBitmap`] behind a lock ([`frames`]); the heap
//! ([`heap`]) is a contiguous run of frames taken from it at boot.

pub mod frames;
pub mod guest;
pub mod heap;
pub mod paging;
pub mod stacks;

use bootinfo::{BootInfo, MemoryKind};
use frame_alloc::{PhysRange, RegionList, FRAME_SIZE};
use x86_64::{PhysAddr, VirtAddr};

pub const DIRECT_MAP_BASE: u64 = 0xffff_8000_0000_0000;
pub const STACKS_BASE: u64 = 0xffff_a000_0000_0000;
pub const MMIO_BASE: u64 = 0xffff_c000_0000_0000;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The virtual address at which the hypervisor sees physical address `pa`.
pub fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    VirtAddr::new(DIRECT_MAP_BASE + pa.as_u64())
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// The physical range the hypervisor image occupies (it is linked 1:1).
pub fn image_range() -> PhysRange {
    let (start, end) = (core::ptr::addr_of!(__image_start) as u64, core::ptr::addr_of!(__image_end) as u64);
    PhysRange::new(start, end)
}

/// Regions the allocator may hand out: usable RAM minus what is already spoken for.
pub type Regions = RegionList<256>;

/// Takes ownership of physical memory, builds the hypervisor's page tables and switches to
/// them, and sets up the heap. Runs once on the BSP, on the boot stub's identity tables.
pub fn init(info: &BootInfo) {
    let mut usable = Regions::new();
    for region in info.memory_map().iter().filter(|r| r.kind == MemoryKind::Usable) {
        usable
            .add(PhysRange::from_base_len(region.start, region.len))
            .expect("memory map has more usable ranges than the allocator tracks");
    }
    let mut reserve = |range: PhysRange, why: &str| {
        usable.remove(range).unwrap_or_else(|_| panic!("cannot reserve {why} {range:x?}: region list full"))
    };
    // Real-mode memory: BIOS data, the AP trampoline page, option ROMs.
    reserve(PhysRange::new(0, MIB), "low memory");
    reserve(image_range(), "the hypervisor image");
    for module in info.modules() {
        reserve(PhysRange::new(module.start, module.end), "a boot module");
    }
    usable.align_to_frames();
    assert!(!usable.is_empty(), "the memory map leaves no usable memory");

    // Everything the direct map must cover: all RAM, and the first 4 GiB (firmware tables,
    // the 32-bit MMIO hole).
    let top = info
        .memory_map()
        .iter()
        .filter(|r| r.kind == MemoryKind::Usable)
        .map(|r| r.end())
        .max()
        .unwrap_or(0)
        .max(4 * GIB)
        .next_multiple_of(GIB);

    frames::init(&usable, |early| paging::build_direct_map(top, early));
    paging::init_kernel_tables();
    let total = usable.total_bytes();
    heap::init((total / 32).clamp(4 * MIB, 64 * MIB));
}

/// Maps `len` bytes of device registers at physical `pa` uncached; returns their address.
pub fn map_mmio(pa: u64, len: u64) -> VirtAddr {
    paging::map_mmio(PhysAddr::new(pa), len.max(1).next_multiple_of(FRAME_SIZE))
}

//! The hypervisor's own page tables (not guests' nested tables).

use super::frames::{self, EarlyFrames};
use super::{image_range, phys_to_virt, DIRECT_MAP_BASE, MMIO_BASE};
use crate::arch::x86_64::cpu;
use core::sync::atomic::{AtomicU64, Ordering};
use frame_alloc::FRAME_SIZE;
use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags};
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

const GIB: u64 = 1 << 30;
const PML4_SPAN: u64 = 512 * GIB;
/// The direct map may use this many PML4 slots (4 TiB of physical address space).
const DIRECT_MAP_SLOTS: u64 = 8;

extern "C" {
    /// The boot stub's PML4 (identity map of the first 4 GiB); APs climb to long mode on it.
    static mut boot_pml4: PageTable;
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

static KERNEL_TABLES: Mutex<Option<OffsetPageTable<'static>>> = Mutex::new(None);
static KERNEL_PML4: AtomicU64 = AtomicU64::new(0);

/// NX when the CPU has it (the bit is reserved otherwise).
fn no_execute() -> Flags {
    if cpu::features().no_execute {
        Flags::NO_EXECUTE
    } else {
        Flags::empty()
    }
}

/// Builds the direct map of `[0, top)` and hooks it into the boot PML4, so it is usable at
/// once; the hypervisor's own PML4 later shares the same lower-level tables.
pub fn build_direct_map(top: u64, early: &mut EarlyFrames<'_>) {
    let slots = top.div_ceil(PML4_SPAN);
    assert!(
        slots <= DIRECT_MAP_SLOTS,
        "physical memory tops out at {top:#x}, beyond the direct map's {} TiB",
        DIRECT_MAP_SLOTS / 2
    );
    let leaf = Flags::PRESENT | Flags::WRITABLE | Flags::GLOBAL | Flags::HUGE_PAGE | no_execute();
    let table = Flags::PRESENT | Flags::WRITABLE;
    let one_gib_pages = cpu::features().huge_pages_1g;
    // SAFETY: boot_pml4 is the live PML4 of this CPU (the only one running); its upper-half
    // slots are empty, and filling them only adds mappings nothing uses yet.
    let pml4 = unsafe { &mut *core::ptr::addr_of_mut!(boot_pml4) };
    for slot in 0..slots {
        let pdpt_pa = early.alloc_zeroed();
        // SAFETY: early frames are zeroed, below 4 GiB and identity-mapped.
        let pdpt = unsafe { &mut *(pdpt_pa.as_u64() as *mut PageTable) };
        for (i, entry) in pdpt.iter_mut().enumerate() {
            let base = slot * PML4_SPAN + i as u64 * GIB;
            if base >= top {
                break;
            }
            if one_gib_pages {
                entry.set_addr(PhysAddr::new(base), leaf);
            } else {
                let pd_pa = early.alloc_zeroed();
                // SAFETY: as above.
                let pd = unsafe { &mut *(pd_pa.as_u64() as *mut PageTable) };
                for (j, pde) in pd.iter_mut().enumerate() {
                    pde.set_addr(PhysAddr::new(base + j as u64 * (2 << 20)), leaf);
                }
                entry.set_addr(pd_pa, table);
            }
        }
        let index = VirtAddr::new(DIRECT_MAP_BASE + slot * PML4_SPAN).p4_index();
        pml4[index].set_addr(pdpt_pa, table);
    }
    x86_64::instructions::tlb::flush_all();
}

struct GlobalFrames;

// SAFETY: frames come from the global allocator, which never hands out a frame twice.
unsafe impl FrameAllocator<Size4KiB> for GlobalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        frames::alloc_zeroed().map(PhysFrame::containing_address)
    }
}

fn map_range(tables: &mut OffsetPageTable<'static>, virt: u64, phys: u64, len: u64, flags: Flags) {
    for offset in (0..len).step_by(FRAME_SIZE as usize) {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(virt + offset));
        let frame = PhysFrame::containing_address(PhysAddr::new(phys + offset));
        // SAFETY: each caller maps a range it owns to a virtual range nothing else uses.
        let flush = unsafe { tables.map_to(page, frame, flags, &mut GlobalFrames) }
            .unwrap_or_else(|e| panic!("mapping {:#x}: {e:?}", virt + offset));
        flush.flush();
    }
}

fn section(start: &u8, end: &u8) -> (u64, u64) {
    let start = start as *const u8 as u64;
    (start, end as *const u8 as u64 - start)
}

/// Creates the hypervisor's PML4 (image with section permissions + direct map) and
/// switches this CPU to it.
pub fn init_kernel_tables() {
    let pml4_pa = frames::alloc_zeroed().expect("out of memory for the hypervisor PML4");
    // SAFETY: a freshly allocated, zeroed frame, reached through the direct map.
    let pml4 = unsafe { &mut *phys_to_virt(pml4_pa).as_mut_ptr::<PageTable>() };
    // SAFETY: boot_pml4's upper half was filled by build_direct_map and is not changing.
    let boot = unsafe { &*core::ptr::addr_of!(boot_pml4) };
    for slot in 256..512 {
        pml4[slot] = boot[slot].clone();
    }
    // SAFETY: the direct map covers all RAM at DIRECT_MAP_BASE, so the offset mapper can
    // reach every page-table frame it is given.
    let mut tables = unsafe { OffsetPageTable::new(pml4, VirtAddr::new(DIRECT_MAP_BASE)) };

    let nx = no_execute();
    // SAFETY: the linker script defines these symbols; only their addresses are used.
    let (text, rodata, data) = unsafe {
        (
            section(&__text_start, &__text_end),
            section(&__rodata_start, &__rodata_end),
            section(&__data_start, &__data_end),
        )
    };
    let global = Flags::PRESENT | Flags::GLOBAL;
    map_range(&mut tables, text.0, text.0, text.1, global);
    map_range(&mut tables, rodata.0, rodata.0, rodata.1, global | nx);
    map_range(&mut tables, data.0, data.0, data.1, global | Flags::WRITABLE | nx);
    let image = image_range();
    assert_eq!(image.start, text.0, "image does not start with .text");
    assert_eq!(image.end, data.0 + data.1, "image does not end with .data/.bss");

    KERNEL_PML4.store(pml4_pa.as_u64(), Ordering::Release);
    *KERNEL_TABLES.lock() = Some(tables);
    load_kernel_tables();
}

/// Loads the hypervisor's page tables on the calling CPU.
pub fn load_kernel_tables() {
    let frame = PhysFrame::containing_address(PhysAddr::new(kernel_pml4()));
    // SAFETY: the kernel PML4 maps the image (this code, its stack's pages via the direct
    // map or the stack window) exactly as the tables it replaces did.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
}

/// Physical address of the hypervisor's PML4 (for APs and, later, host state on VM exit).
pub fn kernel_pml4() -> u64 {
    let pa = KERNEL_PML4.load(Ordering::Acquire);
    assert!(pa != 0, "hypervisor page tables used before init_kernel_tables");
    pa
}

/// Maps fresh zeroed frames at `[virt, virt + len)`, writable and not executable.
pub fn map_fresh(virt: VirtAddr, len: u64) {
    let mut guard = KERNEL_TABLES.lock();
    let tables = guard.as_mut().expect("kernel page tables not built");
    for offset in (0..len).step_by(FRAME_SIZE as usize) {
        let pa = frames::alloc_zeroed().expect("out of memory mapping a stack");
        map_range(
            tables,
            virt.as_u64() + offset,
            pa.as_u64(),
            FRAME_SIZE,
            Flags::PRESENT | Flags::WRITABLE | Flags::GLOBAL | no_execute(),
        );
    }
}

static NEXT_MMIO: AtomicU64 = AtomicU64::new(MMIO_BASE);

pub fn map_mmio(pa: PhysAddr, len: u64) -> VirtAddr {
    let offset = pa.as_u64() % FRAME_SIZE;
    let span = (offset + len).next_multiple_of(FRAME_SIZE);
    let virt = NEXT_MMIO.fetch_add(span, Ordering::Relaxed);
    let mut guard = KERNEL_TABLES.lock();
    let tables = guard.as_mut().expect("kernel page tables not built");
    let flags =
        Flags::PRESENT | Flags::WRITABLE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::GLOBAL | no_execute();
    map_range(tables, virt, pa.as_u64() - offset, span, flags);
    VirtAddr::new(virt + offset)
}

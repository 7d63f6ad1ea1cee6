//! The hypervisor heap: one contiguous run of frames, managed by a linked-list allocator.

use super::{frames, phys_to_virt};
use frame_alloc::FRAME_SIZE;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

pub fn init(bytes: u64) {
    let count = bytes.div_ceil(FRAME_SIZE);
    let pa = frames::alloc_contiguous(count, 1)
        .unwrap_or_else(|| panic!("no {} MiB contiguous run for the heap", bytes >> 20));
    let start = phys_to_virt(pa).as_mut_ptr::<u8>();
    // SAFETY: the frames were just allocated for the heap alone and are mapped writable in
    // the direct map for the hypervisor's lifetime.
    unsafe { HEAP.lock().init(start, (count * FRAME_SIZE) as usize) };
    log::info!("heap: {} MiB at {:#x}", (count * FRAME_SIZE) >> 20, pa.as_u64());
}

/// (used, free) bytes.
#[allow(dead_code)]
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.used(), heap.free())
}

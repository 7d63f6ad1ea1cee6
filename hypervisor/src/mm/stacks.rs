//! Per-CPU stacks, each between unmapped guard pages in the stack window, so an overflow
//! faults (and the double-fault handler, on its own IST stack, reports it) instead of
//! silently corrupting whatever lies below.

use super::{paging, STACKS_BASE};
use frame_alloc::FRAME_SIZE;
use x86_64::VirtAddr;

pub const KERNEL_STACK_SIZE: u64 = 64 * 1024;
pub const IST_STACK_SIZE: u64 = 16 * 1024;
/// Virtual space per CPU: plenty for the stacks above plus a guard page before each.
const SLOT_SIZE: u64 = 1 << 20;

/// Top-of-stack addresses (stacks grow down) for one CPU.
#[derive(Debug, Clone, Copy)]
pub struct CpuStacks {
    pub kernel_top: VirtAddr,
    pub double_fault_top: VirtAddr,
    pub nmi_top: VirtAddr,
    pub machine_check_top: VirtAddr,
}

/// Maps the stacks of CPU `index`.
pub fn allocate(index: usize) -> CpuStacks {
    let mut cursor = STACKS_BASE + index as u64 * SLOT_SIZE;
    let mut stack = |size: u64| {
        cursor += FRAME_SIZE; // guard page: left unmapped
        let bottom = VirtAddr::new(cursor);
        paging::map_fresh(bottom, size);
        cursor += size;
        bottom + size
    };
    let stacks = CpuStacks {
        kernel_top: stack(KERNEL_STACK_SIZE),
        double_fault_top: stack(IST_STACK_SIZE),
        nmi_top: stack(IST_STACK_SIZE),
        machine_check_top: stack(IST_STACK_SIZE),
    };
    assert!(cursor <= STACKS_BASE + (index as u64 + 1) * SLOT_SIZE);
    stacks
}

/// Switches the calling CPU to the stack ending at `top` and calls `f` there; the old
/// stack is abandoned.
pub fn run_on(top: VirtAddr, f: extern "C" fn() -> !) -> ! {
    // SAFETY: `top` is the 16-byte aligned top of a mapped stack owned by this CPU, and
    // `f` never returns, so nothing ever uses the abandoned stack's frames again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "push 0",
            "jmp {f}",
            top = in(reg) top.as_u64(),
            f = in(reg) f,
            options(noreturn)
        )
    }
}

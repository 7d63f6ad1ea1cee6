//! Per-CPU GDT and TSS. The TSS carries the interrupt-stack-table stacks, so a double
//! fault (e.g. a kernel stack overflow hitting its guard page), an NMI or a machine check
//! always runs on a known-good stack.

use crate::mm::stacks::CpuStacks;
use alloc::boxed::Box;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots (1-based, as the IDT names them).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

/// Builds and loads this CPU's GDT and TSS; returns the code segment selector.
pub fn load_for_this_cpu(stacks: &CpuStacks) -> SegmentSelector {
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[usize::from(IST_DOUBLE_FAULT - 1)] = stacks.double_fault_top;
    tss.interrupt_stack_table[usize::from(IST_NMI - 1)] = stacks.nmi_top;
    tss.interrupt_stack_table[usize::from(IST_MACHINE_CHECK - 1)] = stacks.machine_check_top;
    tss.privilege_stack_table[0] = stacks.kernel_top;
    let tss: &'static TaskStateSegment = Box::leak(Box::new(tss));

    let gdt: &'static mut GlobalDescriptorTable = Box::leak(Box::new(GlobalDescriptorTable::new()));
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    let tss_selector = gdt.append(Descriptor::tss_segment(tss));
    let gdt: &'static GlobalDescriptorTable = gdt;
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded, whose code segment is 64-bit ring 0
    // and whose data segment is flat; the TSS descriptor points at a leaked TSS.
    unsafe {
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss_selector);
    }
    code
}

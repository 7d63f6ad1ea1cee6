//! The legacy 8259 PICs: remapped away from the exception vectors and fully masked.
//! Everything the hypervisor needs arrives through the local APIC and I/O APICs.

use x86_64::instructions::port::Port;

/// Vectors the PICs are moved to, so a stray legacy interrupt is recognisable.
pub const LEGACY_VECTOR_BASE: u8 = 0x20;
pub const LEGACY_VECTOR_COUNT: u8 = 16;

pub fn disable() {
    let mut master_cmd = Port::<u8>::new(0x20);
    let mut master_data = Port::<u8>::new(0x21);
    let mut slave_cmd = Port::<u8>::new(0xa0);
    let mut slave_data = Port::<u8>::new(0xa1);
    // SAFETY: these are the two 8259s' command/data ports; the ICW sequence below is the
    // documented initialisation, and nothing else in the hypervisor touches them.
    unsafe {
        master_cmd.write(0x11); // ICW1: init, expect ICW4
        slave_cmd.write(0x11);
        master_data.write(LEGACY_VECTOR_BASE); // ICW2: vector offsets
        slave_data.write(LEGACY_VECTOR_BASE + 8);
        master_data.write(0x04); // ICW3: slave on IRQ2
        slave_data.write(0x02);
        master_data.write(0x01); // ICW4: 8086 mode
        slave_data.write(0x01);
        master_data.write(0xff); // mask everything
        slave_data.write(0xff);
    }
}

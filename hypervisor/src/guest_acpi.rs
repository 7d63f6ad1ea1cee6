//! The ACPI tables a PVH guest gets (its only way to learn how many CPUs it has): RSDP,
//! XSDT, a hardware-reduced FADT with an empty DSDT, and a MADT listing one local APIC
//! per vCPU. Like Xen's PVH domUs there is no I/O APIC and no legacy PIC.

use alloc::vec::Vec;

/// Where the guest's local APICs appear (the architectural default).
pub const LAPIC_BASE: u32 = 0xfee0_0000;
const OEM_ID: &[u8; 6] = b"FERRO ";
const OEM_TABLE_ID: &[u8; 8] = b"FERROVSR";
const RSDP_SIZE: usize = 36;
const HEADER_SIZE: usize = 36;
const FADT_SIZE: usize = 276;
/// FADT flags: hardware-reduced ACPI (no PM timer, no fixed hardware).
const FADT_HW_REDUCED_ACPI: u32 = 1 << 20;
/// IAPC_BOOT_ARCH: no VGA, no CMOS RTC (as Xen gives PVH guests).
const BOOT_ARCH_NO_VGA: u16 = 1 << 2;
const BOOT_ARCH_NO_CMOS_RTC: u16 = 1 << 5;

fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b)))
}

/// A table with the standard 36-byte header; `body` follows it.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(HEADER_SIZE + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&((HEADER_SIZE + body.len()) as u32).to_le_bytes());
    t.push(revision);
    t.push(0); // checksum, below
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(b"FRVR"); // creator id
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

fn madt(vcpus: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // no PC-AT-compatible 8259s
    for id in 0..vcpus {
        // Processor Local APIC: type 0, length 8, ACPI processor UID, APIC id, enabled.
        body.extend_from_slice(&[0, 8, id as u8, id as u8]);
        body.extend_from_slice(&1u32.to_le_bytes());
    }
    table(b"APIC", 4, &body)
}

fn fadt(dsdt: u64) -> Vec<u8> {
    let mut body = [0u8; FADT_SIZE - HEADER_SIZE];
    let at = |offset: usize| offset - HEADER_SIZE;
    body[at(40)..at(44)].copy_from_slice(&(dsdt as u32).to_le_bytes());
    body[at(109)..at(111)].copy_from_slice(&(BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_CMOS_RTC).to_le_bytes());
    body[at(112)..at(116)].copy_from_slice(&FADT_HW_REDUCED_ACPI.to_le_bytes());
    body[at(131)] = 1; // FADT minor version (ACPI 6.1)
    body[at(140)..at(148)].copy_from_slice(&dsdt.to_le_bytes());
    table(b"FACP", 6, &body)
}

/// Builds the tables to live at guest-physical `base`; returns the bytes (RSDP first,
/// at `base`).
pub fn build(base: u64, vcpus: u32) -> Vec<u8> {
    let dsdt_at = base + RSDP_SIZE as u64 + 12; // keep 8-byte alignment after the RSDP
    let dsdt = table(b"DSDT", 2, &[]);
    let fadt_at = (dsdt_at + dsdt.len() as u64).next_multiple_of(8);
    let fadt = fadt(dsdt_at);
    let madt_at = (fadt_at + fadt.len() as u64).next_multiple_of(8);
    let madt = madt(vcpus);
    let xsdt_at = (madt_at + madt.len() as u64).next_multiple_of(8);
    let mut entries = Vec::new();
    entries.extend_from_slice(&fadt_at.to_le_bytes());
    entries.extend_from_slice(&madt_at.to_le_bytes());
    let xsdt = table(b"XSDT", 1, &entries);

    let mut rsdp = Vec::with_capacity(RSDP_SIZE);
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0); // checksum of the first 20 bytes, below
    rsdp.extend_from_slice(OEM_ID);
    rsdp.push(2); // revision: ACPI 2.0+
    rsdp.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    rsdp.extend_from_slice(&(RSDP_SIZE as u32).to_le_bytes());
    rsdp.extend_from_slice(&xsdt_at.to_le_bytes());
    rsdp.extend_from_slice(&[0, 0, 0, 0]); // extended checksum + reserved
    rsdp[8] = checksum(&rsdp[..20]);
    rsdp[32] = checksum(&rsdp);

    let mut image = rsdp;
    for (at, bytes) in [(dsdt_at, &dsdt), (fadt_at, &fadt), (madt_at, &madt), (xsdt_at, &xsdt)] {
        image.resize((at - base) as usize, 0);
        image.extend_from_slice(bytes);
    }
    image
}

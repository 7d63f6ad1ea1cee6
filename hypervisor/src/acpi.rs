//! Firmware tables: what CPUs and interrupt controllers the machine has (MADT), read with
//! the `acpi` crate through the direct map.

use crate::mm::phys_to_virt;
use ::acpi::platform::{interrupt::InterruptModel, ProcessorState};
use ::acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use bootinfo::{RsdpLocation, RSDP_MAX_LEN};
use core::ptr::NonNull;
use x86_64::PhysAddr;

#[derive(Clone, Copy)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = phys_to_virt(PhysAddr::new(physical_address as u64));
        // SAFETY: the direct map covers all physical memory the firmware tables can live in
        // for the hypervisor's lifetime, so the region stays mapped; the caller vouches
        // that a T lives there.
        unsafe {
            PhysicalMapping::new(
                physical_address,
                NonNull::new(virt.as_mut_ptr::<T>()).expect("direct map address is null"),
                size,
                size,
                *self,
            )
        }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// A processor the MADT lists.
#[derive(Debug, Clone, Copy)]
pub struct Processor {
    pub apic_id: u32,
    pub usable: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

#[derive(Debug)]
pub struct Platform {
    /// The boot processor first, then the application processors in MADT order.
    pub processors: Vec<Processor>,
    pub io_apics: Vec<IoApic>,
    pub local_apic_address: u64,
}

/// Where an RSDP handed over as bytes is kept, so the tables can be found by address.
#[repr(C, align(16))]
struct RsdpCopy([u8; RSDP_MAX_LEN]);
static mut RSDP_COPY: RsdpCopy = RsdpCopy([0; RSDP_MAX_LEN]);

/// Physical address of the RSDP the loader told us about.
fn rsdp_address(location: RsdpLocation) -> u64 {
    match location {
        RsdpLocation::Address(pa) => pa,
        RsdpLocation::Copied { bytes, len } => {
            // SAFETY: written once, on the BSP during boot, before anything reads it; the
            // image is identity-mapped, so the static's address is its physical address.
            unsafe {
                let copy = &mut *core::ptr::addr_of_mut!(RSDP_COPY);
                copy.0[..len].copy_from_slice(&bytes[..len]);
                copy.0.as_ptr() as u64
            }
        }
    }
}

#[derive(Debug)]
pub enum PlatformError {
    Tables(::acpi::AcpiError),
    NotApic,
    NoProcessors,
}

impl core::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PlatformError::Tables(e) => write!(f, "bad or missing ACPI tables: {e:?}"),
            PlatformError::NotApic => f.write_str("the MADT describes no APIC interrupt model"),
            PlatformError::NoProcessors => f.write_str("the MADT lists no processors"),
        }
    }
}

pub fn discover(rsdp: Option<RsdpLocation>) -> Result<Platform, PlatformError> {
    let tables = match rsdp {
        Some(location) => {
            let pa = rsdp_address(location);
            log::info!("ACPI: RSDP at {pa:#x} (from the boot loader)");
            // SAFETY: the loader says an RSDP is at `pa`; the crate validates its signature
            // and checksum before trusting it.
            unsafe { AcpiTables::from_rsdp(DirectMap, pa as usize) }
        }
        None => {
            log::info!("ACPI: no RSDP from the boot loader; searching the BIOS areas");
            // SAFETY: the EBDA and 0xE0000-0xFFFFF are readable through the direct map.
            unsafe { AcpiTables::search_for_rsdp_bios(DirectMap) }
        }
    }
    .map_err(PlatformError::Tables)?;
    let info = tables.platform_info().map_err(PlatformError::Tables)?;
    let InterruptModel::Apic(apic) = info.interrupt_model else {
        return Err(PlatformError::NotApic);
    };
    let cpus = info.processor_info.ok_or(PlatformError::NoProcessors)?;
    let describe = |p: &::acpi::platform::Processor| Processor {
        apic_id: p.local_apic_id,
        usable: p.state != ProcessorState::Disabled,
    };
    let mut processors = Vec::with_capacity(1 + cpus.application_processors.len());
    processors.push(describe(&cpus.boot_processor));
    processors.extend(cpus.application_processors.iter().map(describe));
    Ok(Platform {
        processors,
        io_apics: apic
            .io_apics
            .iter()
            .map(|io| IoApic { id: io.id, address: io.address, gsi_base: io.global_system_interrupt_base })
            .collect(),
        local_apic_address: apic.local_apic_address,
    })
}

//! `physdev.h`: the operation numbers of `HYPERVISOR_physdev_op(cmd, arg)` (constants only;
//! the argument structures come when the operations are implemented).

/// `PHYSDEVOP_IRQ_UNMASK_NOTIFY`: old interface (< 3.0.2); superseded by [`PHYSDEVOP_EOI`].
pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u64 = 4;
/// `PHYSDEVOP_irq_status_query`.
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u64 = 5;
/// `PHYSDEVOP_set_iopl`.
pub const PHYSDEVOP_SET_IOPL: u64 = 6;
/// `PHYSDEVOP_set_iobitmap`.
pub const PHYSDEVOP_SET_IOBITMAP: u64 = 7;
/// `PHYSDEVOP_apic_read`.
pub const PHYSDEVOP_APIC_READ: u64 = 8;
/// `PHYSDEVOP_apic_write`.
pub const PHYSDEVOP_APIC_WRITE: u64 = 9;
/// `PHYSDEVOP_alloc_irq_vector`.
pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u64 = 10;
/// `PHYSDEVOP_free_irq_vector`.
pub const PHYSDEVOP_FREE_IRQ_VECTOR: u64 = 11;
/// `PHYSDEVOP_eoi`.
pub const PHYSDEVOP_EOI: u64 = 12;
/// `PHYSDEVOP_map_pirq`.
pub const PHYSDEVOP_MAP_PIRQ: u64 = 13;
/// `PHYSDEVOP_unmap_pirq`.
pub const PHYSDEVOP_UNMAP_PIRQ: u64 = 14;
/// `PHYSDEVOP_manage_pci_add`.
pub const PHYSDEVOP_MANAGE_PCI_ADD: u64 = 15;
/// `PHYSDEVOP_manage_pci_remove`.
pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u64 = 16;
/// `PHYSDEVOP_pirq_eoi_gmfn_v1`.
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V1: u64 = 17;
/// `PHYSDEVOP_restore_msi`.
pub const PHYSDEVOP_RESTORE_MSI: u64 = 19;
/// `PHYSDEVOP_manage_pci_add_ext`.
pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u64 = 20;
/// `PHYSDEVOP_setup_gsi`.
pub const PHYSDEVOP_SETUP_GSI: u64 = 21;
/// `PHYSDEVOP_get_free_pirq`.
pub const PHYSDEVOP_GET_FREE_PIRQ: u64 = 23;
/// `PHYSDEVOP_pci_mmcfg_reserved`.
pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u64 = 24;
/// `PHYSDEVOP_pci_device_add`.
pub const PHYSDEVOP_PCI_DEVICE_ADD: u64 = 25;
/// `PHYSDEVOP_pci_device_remove`.
pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u64 = 26;
/// `PHYSDEVOP_restore_msi_ext`.
pub const PHYSDEVOP_RESTORE_MSI_EXT: u64 = 27;
/// `PHYSDEVOP_pirq_eoi_gmfn_v2`.
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u64 = 28;
/// `PHYSDEVOP_dbgp_op`.
pub const PHYSDEVOP_DBGP_OP: u64 = 29;
/// `PHYSDEVOP_prepare_msix`.
pub const PHYSDEVOP_PREPARE_MSIX: u64 = 30;
/// `PHYSDEVOP_release_msix`.
pub const PHYSDEVOP_RELEASE_MSIX: u64 = 31;

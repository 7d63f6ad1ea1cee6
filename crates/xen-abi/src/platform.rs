//! `platform.h`: the commands of `HYPERVISOR_platform_op(struct xen_platform_op *)` (dom0
//! only; constants only). They go in the structure's first field, `uint32_t cmd`, followed by
//! `interface_version` = [`XENPF_INTERFACE_VERSION`].

/// `XENPF_INTERFACE_VERSION`.
pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;

/// `XENPF_settime32`.
pub const XENPF_SETTIME32: u32 = 17;
/// `XENPF_add_memtype`.
pub const XENPF_ADD_MEMTYPE: u32 = 31;
/// `XENPF_del_memtype`.
pub const XENPF_DEL_MEMTYPE: u32 = 32;
/// `XENPF_read_memtype`.
pub const XENPF_READ_MEMTYPE: u32 = 33;
/// `XENPF_microcode_update`.
pub const XENPF_MICROCODE_UPDATE: u32 = 35;
/// `XENPF_platform_quirk`.
pub const XENPF_PLATFORM_QUIRK: u32 = 39;
/// `XENPF_get_cpu_version`.
pub const XENPF_GET_CPU_VERSION: u32 = 48;
/// `XENPF_efi_runtime_call`.
pub const XENPF_EFI_RUNTIME_CALL: u32 = 49;
/// `XENPF_firmware_info`.
pub const XENPF_FIRMWARE_INFO: u32 = 50;
/// `XENPF_enter_acpi_sleep`.
pub const XENPF_ENTER_ACPI_SLEEP: u32 = 51;
/// `XENPF_change_freq`.
pub const XENPF_CHANGE_FREQ: u32 = 52;
/// `XENPF_getidletime`.
pub const XENPF_GETIDLETIME: u32 = 53;
/// `XENPF_set_processor_pminfo`.
pub const XENPF_SET_PROCESSOR_PMINFO: u32 = 54;
/// `XENPF_get_cpuinfo`.
pub const XENPF_GET_CPUINFO: u32 = 55;
/// `XENPF_cpu_online`.
pub const XENPF_CPU_ONLINE: u32 = 56;
/// `XENPF_cpu_offline`.
pub const XENPF_CPU_OFFLINE: u32 = 57;
/// `XENPF_cpu_hotadd`.
pub const XENPF_CPU_HOTADD: u32 = 58;
/// `XENPF_mem_hotadd`.
pub const XENPF_MEM_HOTADD: u32 = 59;
/// `XENPF_core_parking`.
pub const XENPF_CORE_PARKING: u32 = 60;
/// `XENPF_resource_op`.
pub const XENPF_RESOURCE_OP: u32 = 61;
/// `XENPF_settime64`.
pub const XENPF_SETTIME64: u32 = 62;
/// `XENPF_settime`: [`XENPF_SETTIME64`] for interface versions since 4.6.
pub const XENPF_SETTIME: u32 = XENPF_SETTIME64;
/// `XENPF_get_symbol`.
pub const XENPF_GET_SYMBOL: u32 = 63;

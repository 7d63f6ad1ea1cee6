//! The constants against the values in `/work/shared/notes/linux-pvh-abi.md` (§2-§3, measured
//! from Xen 4.17.7's public headers and Linux 6.1) and the brief (errno, HVM params, …).

use xen_abi::console::*;
use xen_abi::cpuid::*;
use xen_abi::elfnote::*;
use xen_abi::errno::{self, *};
use xen_abi::event_channel::*;
use xen_abi::features::*;
use xen_abi::grant_table::*;
use xen_abi::hvm::*;
use xen_abi::memory::*;
use xen_abi::sched::*;
use xen_abi::start_info::*;
use xen_abi::vcpu::*;
use xen_abi::version::*;
use xen_abi::xen::*;
use xen_abi::xs_wire::*;

/// `(name, value, expected)` rows; values widened to `i128`.
macro_rules! table {
    ($($name:ident = $expected:expr),* $(,)?) => {
        vec![$((stringify!($name), i128::from($name), i128::from($expected))),*]
    };
}

fn check(rows: Vec<(&str, i128, i128)>) {
    let wrong: Vec<_> = rows.iter().filter(|(_, v, e)| v != e).collect();
    assert!(wrong.is_empty(), "(name, value, expected): {wrong:#?}");
}

#[test]
fn hypercall_numbers() {
    check(table![
        HYPERVISOR_SET_TRAP_TABLE = 0u64,
        HYPERVISOR_MMU_UPDATE = 1u64,
        HYPERVISOR_SET_GDT = 2u64,
        HYPERVISOR_STACK_SWITCH = 3u64,
        HYPERVISOR_SET_CALLBACKS = 4u64,
        HYPERVISOR_FPU_TASKSWITCH = 5u64,
        HYPERVISOR_SCHED_OP_COMPAT = 6u64,
        HYPERVISOR_PLATFORM_OP = 7u64,
        HYPERVISOR_SET_DEBUGREG = 8u64,
        HYPERVISOR_GET_DEBUGREG = 9u64,
        HYPERVISOR_UPDATE_DESCRIPTOR = 10u64,
        HYPERVISOR_MEMORY_OP = 12u64,
        HYPERVISOR_MULTICALL = 13u64,
        HYPERVISOR_UPDATE_VA_MAPPING = 14u64,
        HYPERVISOR_SET_TIMER_OP = 15u64,
        HYPERVISOR_EVENT_CHANNEL_OP_COMPAT = 16u64,
        HYPERVISOR_XEN_VERSION = 17u64,
        HYPERVISOR_CONSOLE_IO = 18u64,
        HYPERVISOR_PHYSDEV_OP_COMPAT = 19u64,
        HYPERVISOR_GRANT_TABLE_OP = 20u64,
        HYPERVISOR_VM_ASSIST = 21u64,
        HYPERVISOR_UPDATE_VA_MAPPING_OTHERDOMAIN = 22u64,
        HYPERVISOR_IRET = 23u64,
        HYPERVISOR_VCPU_OP = 24u64,
        HYPERVISOR_SET_SEGMENT_BASE = 25u64,
        HYPERVISOR_MMUEXT_OP = 26u64,
        HYPERVISOR_XSM_OP = 27u64,
        HYPERVISOR_NMI_OP = 28u64,
        HYPERVISOR_SCHED_OP = 29u64,
        HYPERVISOR_CALLBACK_OP = 30u64,
        HYPERVISOR_XENOPROF_OP = 31u64,
        HYPERVISOR_EVENT_CHANNEL_OP = 32u64,
        HYPERVISOR_PHYSDEV_OP = 33u64,
        HYPERVISOR_HVM_OP = 34u64,
        HYPERVISOR_SYSCTL = 35u64,
        HYPERVISOR_DOMCTL = 36u64,
        HYPERVISOR_KEXEC_OP = 37u64,
        HYPERVISOR_TMEM_OP = 38u64,
        HYPERVISOR_ARGO_OP = 39u64,
        HYPERVISOR_XENPMU_OP = 40u64,
        HYPERVISOR_DM_OP = 41u64,
        HYPERVISOR_HYPFS_OP = 42u64,
        HYPERVISOR_ARCH_0 = 48u64,
        HYPERVISOR_ARCH_1 = 49u64,
        HYPERVISOR_ARCH_2 = 50u64,
        HYPERVISOR_ARCH_3 = 51u64,
        HYPERVISOR_ARCH_4 = 52u64,
        HYPERVISOR_ARCH_5 = 53u64,
        HYPERVISOR_ARCH_6 = 54u64,
        HYPERVISOR_ARCH_7 = 55u64,
    ]);
}

#[test]
fn xen_h() {
    check(table![
        DOMID_FIRST_RESERVED = 0x7ff0u16,
        DOMID_SELF = 0x7ff0u16,
        DOMID_IO = 0x7ff1u16,
        DOMID_XEN = 0x7ff2u16,
        DOMID_COW = 0x7ff3u16,
        DOMID_INVALID = 0x7ff4u16,
        DOMID_IDLE = 0x7fffu16,
        DOMID_MASK = 0x7fffu16,
        VIRQ_TIMER = 0u32,
        VIRQ_DEBUG = 1u32,
        VIRQ_CONSOLE = 2u32,
        VIRQ_DOM_EXC = 3u32,
        VIRQ_TBUF = 4u32,
        VIRQ_DEBUGGER = 6u32,
        VIRQ_XENOPROF = 7u32,
        VIRQ_CON_RING = 8u32,
        VIRQ_PCPU_STATE = 9u32,
        VIRQ_MEM_EVENT = 10u32,
        VIRQ_ARGO = 11u32,
        VIRQ_ENOMEM = 12u32,
        VIRQ_XENPMU = 13u32,
        VIRQ_ARCH_0 = 16u32,
        VIRQ_ARCH_7 = 23u32,
        NR_VIRQS = 24u32,
        VMASST_CMD_ENABLE = 0u64,
        VMASST_CMD_DISABLE = 1u64,
        VMASST_TYPE_RUNSTATE_UPDATE_FLAG = 5u64,
        VMASST_TYPE_M2P_STRICT = 32u64,
        XEN_PVCLOCK_TSC_STABLE_BIT = 1u8,
        XEN_PVCLOCK_GUEST_STOPPED = 2u8,
        XEN_HVM_DEBUGCONS_IOPORT = 0xe9u16,
        EVTCHN_2L_NR_CHANNELS = 4096u32,
    ]);
    assert_eq!(XEN_LEGACY_MAX_VCPUS, 32);
    // 2-level: 64 selector bits × 64-bit words.
    assert_eq!(EVTCHN_2L_NR_CHANNELS as usize, SharedInfo::default().evtchn_pending.len() * 64);
}

#[test]
fn errno_h() {
    check(table![
        EPERM = 1i64,
        ENOENT = 2i64,
        ESRCH = 3i64,
        EINTR = 4i64,
        EIO = 5i64,
        ENXIO = 6i64,
        E2BIG = 7i64,
        ENOEXEC = 8i64,
        EBADF = 9i64,
        ECHILD = 10i64,
        EAGAIN = 11i64,
        EWOULDBLOCK = 11i64,
        ENOMEM = 12i64,
        EACCES = 13i64,
        EFAULT = 14i64,
        EBUSY = 16i64,
        EEXIST = 17i64,
        EXDEV = 18i64,
        ENODEV = 19i64,
        ENOTDIR = 20i64,
        EISDIR = 21i64,
        EINVAL = 22i64,
        ENFILE = 23i64,
        EMFILE = 24i64,
        ENOSPC = 28i64,
        EROFS = 30i64,
        EMLINK = 31i64,
        EDOM = 33i64,
        ERANGE = 34i64,
        EDEADLK = 35i64,
        EDEADLOCK = 35i64,
        ENAMETOOLONG = 36i64,
        ENOLCK = 37i64,
        ENOSYS = 38i64,
        ENOTEMPTY = 39i64,
        ENODATA = 61i64,
        ETIME = 62i64,
        EBADMSG = 74i64,
        EOVERFLOW = 75i64,
        EILSEQ = 84i64,
        ERESTART = 85i64,
        ENOTSOCK = 88i64,
        EMSGSIZE = 90i64,
        EOPNOTSUPP = 95i64,
        EADDRINUSE = 98i64,
        EADDRNOTAVAIL = 99i64,
        ENOBUFS = 105i64,
        EISCONN = 106i64,
        ENOTCONN = 107i64,
        ETIMEDOUT = 110i64,
        ECONNREFUSED = 111i64,
    ]);
    // The name table: one entry per distinct value, in increasing order, names matching.
    assert!(errno::ALL.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(errno::name(ENOSYS), Some("ENOSYS"));
    assert_eq!(errno::name(EWOULDBLOCK), Some("EAGAIN"));
    assert_eq!(errno::name(0), None);
    assert_eq!(errno::name(-ENOSYS), None);
}

#[test]
fn sched_h() {
    check(table![
        SCHEDOP_YIELD = 0u64,
        SCHEDOP_BLOCK = 1u64,
        SCHEDOP_SHUTDOWN = 2u64,
        SCHEDOP_POLL = 3u64,
        SCHEDOP_REMOTE_SHUTDOWN = 4u64,
        SCHEDOP_SHUTDOWN_CODE = 5u64,
        SCHEDOP_WATCHDOG = 6u64,
        SCHEDOP_PIN_OVERRIDE = 7u64,
        SHUTDOWN_POWEROFF = 0u32,
        SHUTDOWN_REBOOT = 1u32,
        SHUTDOWN_SUSPEND = 2u32,
        SHUTDOWN_CRASH = 3u32,
        SHUTDOWN_WATCHDOG = 4u32,
        SHUTDOWN_SOFT_RESET = 5u32,
        SHUTDOWN_MAX = 5u32,
    ]);
}

#[test]
fn vcpu_h() {
    check(table![
        VCPUOP_INITIALISE = 0u64,
        VCPUOP_UP = 1u64,
        VCPUOP_DOWN = 2u64,
        VCPUOP_IS_UP = 3u64,
        VCPUOP_GET_RUNSTATE_INFO = 4u64,
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA = 5u64,
        VCPUOP_SET_PERIODIC_TIMER = 6u64,
        VCPUOP_STOP_PERIODIC_TIMER = 7u64,
        VCPUOP_SET_SINGLESHOT_TIMER = 8u64,
        VCPUOP_STOP_SINGLESHOT_TIMER = 9u64,
        VCPUOP_REGISTER_VCPU_INFO = 10u64,
        VCPUOP_SEND_NMI = 11u64,
        VCPUOP_GET_PHYSID = 12u64,
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA = 13u64,
        RUNSTATE_RUNNING = 0i32,
        RUNSTATE_RUNNABLE = 1i32,
        RUNSTATE_BLOCKED = 2i32,
        RUNSTATE_OFFLINE = 3i32,
        XEN_RUNSTATE_UPDATE = 1u64 << 63,
        VCPU_SSHOTTMR_FUTURE = 1u32,
        VCPU_HVM_MODE_32B = 0u32,
        VCPU_HVM_MODE_64B = 1u32,
    ]);
}

#[test]
fn memory_h() {
    check(table![
        XENMEM_INCREASE_RESERVATION = 0u64,
        XENMEM_DECREASE_RESERVATION = 1u64,
        XENMEM_MAXIMUM_RAM_PAGE = 2u64,
        XENMEM_CURRENT_RESERVATION = 3u64,
        XENMEM_MAXIMUM_RESERVATION = 4u64,
        XENMEM_MACHPHYS_MFN_LIST = 5u64,
        XENMEM_POPULATE_PHYSMAP = 6u64,
        XENMEM_ADD_TO_PHYSMAP = 7u64,
        XENMEM_MEMORY_MAP = 9u64,
        XENMEM_MACHINE_MEMORY_MAP = 10u64,
        XENMEM_EXCHANGE = 11u64,
        XENMEM_MACHPHYS_MAPPING = 12u64,
        XENMEM_SET_MEMORY_MAP = 13u64,
        XENMEM_MAXIMUM_GPFN = 14u64,
        XENMEM_REMOVE_FROM_PHYSMAP = 15u64,
        XENMEM_SET_POD_TARGET = 16u64,
        XENMEM_GET_POD_TARGET = 17u64,
        XENMEM_GET_SHARING_FREED_PAGES = 18u64,
        XENMEM_GET_SHARING_SHARED_PAGES = 19u64,
        XENMEM_PAGING_OP = 20u64,
        XENMEM_ACCESS_OP = 21u64,
        XENMEM_SHARING_OP = 22u64,
        XENMEM_ADD_TO_PHYSMAP_BATCH = 23u64,
        XENMEM_CLAIM_PAGES = 24u64,
        XENMEM_MACHPHYS_COMPAT_MFN_LIST = 25u64,
        XENMEM_GET_VNUMAINFO = 26u64,
        XENMEM_RESERVED_DEVICE_MEMORY_MAP = 27u64,
        XENMEM_ACQUIRE_RESOURCE = 28u64,
        XENMAPSPACE_SHARED_INFO = 0u32,
        XENMAPSPACE_GRANT_TABLE = 1u32,
        XENMAPSPACE_GMFN = 2u32,
        XENMAPSPACE_GMFN_RANGE = 3u32,
        XENMAPSPACE_GMFN_FOREIGN = 4u32,
        XENMAPSPACE_DEV_MMIO = 5u32,
        XENMAPIDX_GRANT_TABLE_STATUS = 0x8000_0000u64,
        XENMEMF_POPULATE_ON_DEMAND = 1u32 << 16,
        XENMEMF_EXACT_NODE_REQUEST = 1u32 << 17,
        XENMEMF_VNODE = 1u32 << 18,
    ]);
    assert_eq!(xenmemf_node(3), 4 << 8);
    assert_eq!(xenmemf_get_node(xenmemf_node(3) | xenmemf_address_bits(32)), 3);
    assert_eq!(xenmemf_get_address_bits(xenmemf_node(3) | xenmemf_address_bits(32)), 32);
}

#[test]
fn event_channel_h() {
    check(table![
        EVTCHNOP_BIND_INTERDOMAIN = 0u64,
        EVTCHNOP_BIND_VIRQ = 1u64,
        EVTCHNOP_BIND_PIRQ = 2u64,
        EVTCHNOP_CLOSE = 3u64,
        EVTCHNOP_SEND = 4u64,
        EVTCHNOP_STATUS = 5u64,
        EVTCHNOP_ALLOC_UNBOUND = 6u64,
        EVTCHNOP_BIND_IPI = 7u64,
        EVTCHNOP_BIND_VCPU = 8u64,
        EVTCHNOP_UNMASK = 9u64,
        EVTCHNOP_RESET = 10u64,
        EVTCHNOP_INIT_CONTROL = 11u64,
        EVTCHNOP_EXPAND_ARRAY = 12u64,
        EVTCHNOP_SET_PRIORITY = 13u64,
        EVTCHNSTAT_CLOSED = 0u32,
        EVTCHNSTAT_UNBOUND = 1u32,
        EVTCHNSTAT_INTERDOMAIN = 2u32,
        EVTCHNSTAT_PIRQ = 3u32,
        EVTCHNSTAT_VIRQ = 4u32,
        EVTCHNSTAT_IPI = 5u32,
        BIND_PIRQ__WILL_SHARE = 1u32,
        EVTCHN_FIFO_PRIORITY_MAX = 0u32,
        EVTCHN_FIFO_PRIORITY_DEFAULT = 7u32,
        EVTCHN_FIFO_PRIORITY_MIN = 15u32,
        EVTCHN_FIFO_PENDING = 31u32,
        EVTCHN_FIFO_MASKED = 30u32,
        EVTCHN_FIFO_LINKED = 29u32,
        EVTCHN_FIFO_BUSY = 28u32,
        EVTCHN_FIFO_LINK_BITS = 17u32,
        EVTCHN_FIFO_LINK_MASK = 0x1ffffu32,
        EVTCHN_FIFO_NR_CHANNELS = 0x20000u32,
    ]);
    assert_eq!(EVTCHN_FIFO_MAX_QUEUES, 16);
}

#[test]
fn grant_table_h() {
    check(table![
        GNTTABOP_MAP_GRANT_REF = 0u64,
        GNTTABOP_UNMAP_GRANT_REF = 1u64,
        GNTTABOP_SETUP_TABLE = 2u64,
        GNTTABOP_DUMP_TABLE = 3u64,
        GNTTABOP_TRANSFER = 4u64,
        GNTTABOP_COPY = 5u64,
        GNTTABOP_QUERY_SIZE = 6u64,
        GNTTABOP_UNMAP_AND_REPLACE = 7u64,
        GNTTABOP_SET_VERSION = 8u64,
        GNTTABOP_GET_STATUS_FRAMES = 9u64,
        GNTTABOP_GET_VERSION = 10u64,
        GNTTABOP_SWAP_GRANT_REF = 11u64,
        GNTTABOP_CACHE_FLUSH = 12u64,
        GTF_INVALID = 0u16,
        GTF_PERMIT_ACCESS = 1u16,
        GTF_ACCEPT_TRANSFER = 2u16,
        GTF_TRANSITIVE = 3u16,
        GTF_TYPE_MASK = 3u16,
        GTF_READONLY = 4u16,
        GTF_READING = 8u16,
        GTF_WRITING = 16u16,
        GTF_PWT = 32u16,
        GTF_PCD = 64u16,
        GTF_PAT = 128u16,
        GTF_SUB_PAGE = 256u16,
        GTF_TRANSFER_COMMITTED = 4u16,
        GTF_TRANSFER_COMPLETED = 8u16,
        GNTMAP_DEVICE_MAP = 1u32,
        GNTMAP_HOST_MAP = 2u32,
        GNTMAP_READONLY = 4u32,
        GNTMAP_APPLICATION_MAP = 8u32,
        GNTMAP_CONTAINS_PTE = 16u32,
        GNTMAP_GUEST_AVAIL_MASK = 0xffff_0000u32,
        GNTCOPY_SOURCE_GREF = 1u16,
        GNTCOPY_DEST_GREF = 2u16,
        GNTTAB_CACHE_CLEAN = 1u32,
        GNTTAB_CACHE_INVAL = 2u32,
        GNTTAB_CACHE_SOURCE_GREF = 0x8000_0000u32,
        GNTTAB_NR_RESERVED_ENTRIES = 8u32,
        GNTTAB_RESERVED_CONSOLE = 0u32,
        GNTTAB_RESERVED_XENSTORE = 1u32,
        GNTST_OKAY = 0i16,
        GNTST_GENERAL_ERROR = -1i16,
        GNTST_BAD_DOMAIN = -2i16,
        GNTST_BAD_GNTREF = -3i16,
        GNTST_BAD_HANDLE = -4i16,
        GNTST_BAD_VIRT_ADDR = -5i16,
        GNTST_BAD_DEV_ADDR = -6i16,
        GNTST_NO_DEVICE_SPACE = -7i16,
        GNTST_PERMISSION_DENIED = -8i16,
        GNTST_BAD_PAGE = -9i16,
        GNTST_BAD_COPY_ARG = -10i16,
        GNTST_ADDRESS_TOO_BIG = -11i16,
        GNTST_EAGAIN = -12i16,
        GNTST_NO_SPACE = -13i16,
    ]);
    assert_eq!(gntst_name(GNTST_OKAY), Some("GNTST_okay"));
    assert_eq!(gntst_name(GNTST_BAD_GNTREF), Some("GNTST_bad_gntref"));
    assert_eq!(gntst_name(GNTST_NO_SPACE), Some("GNTST_no_space"));
    assert_eq!(gntst_name(-14), None);
    assert_eq!(gntst_name(1), None);
    assert_eq!(gntst_name(i16::MIN), None);
}

#[test]
fn hvm_h() {
    check(table![
        HVMOP_SET_PARAM = 0u64,
        HVMOP_GET_PARAM = 1u64,
        HVMOP_FLUSH_TLBS = 5u64,
        HVMOP_PAGETABLE_DYING = 9u64,
        HVMOP_GET_TIME = 10u64,
        HVMOP_GET_MEM_TYPE = 15u64,
        HVMOP_SET_EVTCHN_UPCALL_VECTOR = 23u64,
        HVMOP_GUEST_REQUEST_VM_EVENT = 24u64,
        HVMOP_ALTP2M = 25u64,
        HVM_PARAM_CALLBACK_IRQ = 0u32,
        HVM_PARAM_STORE_PFN = 1u32,
        HVM_PARAM_STORE_EVTCHN = 2u32,
        HVM_PARAM_PAE_ENABLED = 4u32,
        HVM_PARAM_IOREQ_PFN = 5u32,
        HVM_PARAM_BUFIOREQ_PFN = 6u32,
        HVM_PARAM_VIRIDIAN = 9u32,
        HVM_PARAM_TIMER_MODE = 10u32,
        HVM_PARAM_HPET_ENABLED = 11u32,
        HVM_PARAM_IDENT_PT = 12u32,
        HVM_PARAM_DM_DOMAIN = 13u32,
        HVM_PARAM_ACPI_S_STATE = 14u32,
        HVM_PARAM_VM86_TSS = 15u32,
        HVM_PARAM_VPT_ALIGN = 16u32,
        HVM_PARAM_CONSOLE_PFN = 17u32,
        HVM_PARAM_CONSOLE_EVTCHN = 18u32,
        HVM_PARAM_ACPI_IOPORTS_LOCATION = 19u32,
        HVM_PARAM_NESTEDHVM = 24u32,
        HVM_PARAM_BUFIOREQ_EVTCHN = 26u32,
        HVM_PARAM_TRIPLE_FAULT_REASON = 31u32,
        HVM_PARAM_ALTP2M = 35u32,
        HVM_PARAM_MCA_CAP = 38u32,
        HVM_NR_PARAMS = 39u32,
        HVM_PARAM_CALLBACK_TYPE_GSI = 0u64,
        HVM_PARAM_CALLBACK_TYPE_PCI_INTX = 1u64,
        HVM_PARAM_CALLBACK_TYPE_VECTOR = 2u64,
        HVM_PARAM_CALLBACK_IRQ_TYPE_MASK = 0xff00_0000_0000_0000u64,
        HVMMEM_RAM_RW = 0u16,
        HVMMEM_RAM_RO = 1u16,
        HVMMEM_MMIO_DM = 2u16,
        HVMMEM_UNUSED = 3u16,
        HVMMEM_IOREQ_SERVER = 4u16,
    ]);
    // Linux 6.1 without a per-vCPU vector: (2ULL << 56) | 0xF3.
    assert_eq!(callback_via_vector(0xf3), (2u64 << 56) | 0xf3);
    assert_eq!(callback_irq_type(callback_via_vector(0xf3)), HVM_PARAM_CALLBACK_TYPE_VECTOR);
    assert_eq!(callback_irq_via(callback_via_vector(0xf3)), 0xf3);
    assert_eq!(callback_irq(HVM_PARAM_CALLBACK_TYPE_GSI, 28), 28);
    assert_eq!(callback_irq_type(callback_irq(HVM_PARAM_CALLBACK_TYPE_PCI_INTX, 0x0001_0002_0800)), 1);
}

#[test]
fn version_and_features_h() {
    check(table![
        XENVER_VERSION = 0u64,
        XENVER_EXTRAVERSION = 1u64,
        XENVER_COMPILE_INFO = 2u64,
        XENVER_CAPABILITIES = 3u64,
        XENVER_CHANGESET = 4u64,
        XENVER_PLATFORM_PARAMETERS = 5u64,
        XENVER_GET_FEATURES = 6u64,
        XENVER_PAGESIZE = 7u64,
        XENVER_GUEST_HANDLE = 8u64,
        XENVER_COMMANDLINE = 9u64,
        XENVER_BUILD_ID = 10u64,
        XENFEAT_WRITABLE_PAGE_TABLES = 0u32,
        XENFEAT_WRITABLE_DESCRIPTOR_TABLES = 1u32,
        XENFEAT_AUTO_TRANSLATED_PHYSMAP = 2u32,
        XENFEAT_SUPERVISOR_MODE_KERNEL = 3u32,
        XENFEAT_PAE_PGDIR_ABOVE_4GB = 4u32,
        XENFEAT_MMU_PT_UPDATE_PRESERVE_AD = 5u32,
        XENFEAT_HIGHMEM_ASSIST = 6u32,
        XENFEAT_GNTTAB_MAP_AVAIL_BITS = 7u32,
        XENFEAT_HVM_CALLBACK_VECTOR = 8u32,
        XENFEAT_HVM_SAFE_PVCLOCK = 9u32,
        XENFEAT_HVM_PIRQS = 10u32,
        XENFEAT_DOM0 = 11u32,
        XENFEAT_GRANT_MAP_IDENTITY = 12u32,
        XENFEAT_MEMORY_OP_VNODE_SUPPORTED = 13u32,
        XENFEAT_ARM_SMCCC_SUPPORTED = 14u32,
        XENFEAT_LINUX_RSDP_UNRESTRICTED = 15u32,
        XENFEAT_NOT_DIRECT_MAPPED = 16u32,
        XENFEAT_DIRECT_MAPPED = 17u32,
        XENFEAT_NR_SUBMAPS = 1u32,
    ]);
    assert_eq!(XEN_EXTRAVERSION_LEN, 16);
    assert_eq!(XEN_CAPABILITIES_INFO_LEN, 1024);
    assert_eq!(XEN_CHANGESET_INFO_LEN, 64);
    assert_eq!(version_number(4, 17), 0x0004_0011);
    // The submap 0 Linux needs (notes §2.3): bits {0, 2, 8, 9, 13}.
    let linux = [
        XENFEAT_WRITABLE_PAGE_TABLES,
        XENFEAT_AUTO_TRANSLATED_PHYSMAP,
        XENFEAT_HVM_CALLBACK_VECTOR,
        XENFEAT_HVM_SAFE_PVCLOCK,
        XENFEAT_MEMORY_OP_VNODE_SUPPORTED,
    ];
    assert!(linux.iter().all(|&f| feature_submap(f) == 0));
    assert_eq!(linux.iter().fold(0, |m, &f| m | feature_mask(f)), 0x2305);
}

#[test]
fn console_and_xenstore() {
    check(table![
        CONSOLEIO_WRITE = 0u64,
        CONSOLEIO_READ = 1u64,
        XS_CONTROL = 0u32,
        XS_DEBUG = 0u32,
        XS_DIRECTORY = 1u32,
        XS_READ = 2u32,
        XS_GET_PERMS = 3u32,
        XS_WATCH = 4u32,
        XS_UNWATCH = 5u32,
        XS_TRANSACTION_START = 6u32,
        XS_TRANSACTION_END = 7u32,
        XS_INTRODUCE = 8u32,
        XS_RELEASE = 9u32,
        XS_GET_DOMAIN_PATH = 10u32,
        XS_WRITE = 11u32,
        XS_MKDIR = 12u32,
        XS_RM = 13u32,
        XS_SET_PERMS = 14u32,
        XS_WATCH_EVENT = 15u32,
        XS_ERROR = 16u32,
        XS_IS_DOMAIN_INTRODUCED = 17u32,
        XS_RESUME = 18u32,
        XS_SET_TARGET = 19u32,
        XS_RESET_WATCHES = 21u32,
        XS_DIRECTORY_PART = 22u32,
        XS_TYPE_COUNT = 23u32,
        XS_INVALID = 0xffffu32,
        XENSTORE_SERVER_FEATURE_RECONNECTION = 1u32,
        XENSTORE_SERVER_FEATURE_ERROR = 2u32,
        XENSTORE_CONNECTED = 0u32,
        XENSTORE_RECONNECT = 1u32,
        XENSTORE_ERROR_NONE = 0u32,
        XENSTORE_ERROR_COMM = 1u32,
        XENSTORE_ERROR_RINGIDX = 2u32,
        XENSTORE_ERROR_PROTO = 3u32,
    ]);
    assert_eq!((XENCONS_IN_SIZE, XENCONS_OUT_SIZE), (1024, 2048));
    assert_eq!((mask_xencons_in(1024 + 5), mask_xencons_out(2048 * 3 + 7)), (5, 7));
    assert_eq!(mask_xencons_idx(u32::MAX, 1024), 1023);
    assert_eq!(XENSTORE_RING_SIZE, 1024);
    assert_eq!(mask_xenstore_idx(0x1_0000 + 3), 3);
    assert_eq!(XENSTORE_PAYLOAD_MAX, 4096);
    assert_eq!((XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX), (3072, 2048));
    assert_eq!((XS_WATCH_PATH, XS_WATCH_TOKEN), (0, 1));
    assert_eq!((XS_WRITE_NONE, XS_WRITE_CREATE, XS_WRITE_CREATE_EXCL), ("NONE", "CREATE", "CREATE|EXCL"));
    // Every type below XS_TYPE_COUNT has a name except the removed XS_RESTRICT (20).
    for ty in 0..XS_TYPE_COUNT {
        assert_eq!(xs_type_name(ty).is_some(), ty != 20, "type {ty}");
    }
    assert_eq!(xs_type_name(XS_RESET_WATCHES), Some("XS_RESET_WATCHES"));
    assert_eq!(xs_type_name(XS_TYPE_COUNT), None);

    // The error table, in the header's order.
    let names: Vec<&str> = XSD_ERRORS.iter().map(|e| e.errstring).collect();
    assert_eq!(
        names,
        [
            "EINVAL",
            "EACCES",
            "EEXIST",
            "EISDIR",
            "ENOENT",
            "ENOMEM",
            "ENOSPC",
            "EIO",
            "ENOTEMPTY",
            "ENOSYS",
            "EROFS",
            "EBUSY",
            "EAGAIN",
            "EISCONN",
            "E2BIG",
            "EPERM",
        ]
    );
    for e in XSD_ERRORS {
        assert_eq!(errno::name(e.errnum), Some(e.errstring));
    }
    assert_eq!(xsd_error_string(ENOENT), Some("ENOENT"));
    assert_eq!(xsd_error_string(EFAULT), None);
    assert_eq!(xsd_error_errnum(b"EAGAIN"), Some(EAGAIN));
    assert_eq!(xsd_error_errnum(b"EAGAIN\0"), None);
}

#[test]
fn start_info_cpuid_elfnote() {
    check(table![
        XEN_HVM_START_MAGIC_VALUE = 0x336e_c578u32,
        XEN_HVM_MEMMAP_TYPE_RAM = 1u32,
        XEN_HVM_MEMMAP_TYPE_RESERVED = 2u32,
        XEN_HVM_MEMMAP_TYPE_ACPI = 3u32,
        XEN_HVM_MEMMAP_TYPE_NVS = 4u32,
        XEN_HVM_MEMMAP_TYPE_UNUSABLE = 5u32,
        XEN_HVM_MEMMAP_TYPE_DISABLED = 6u32,
        XEN_HVM_MEMMAP_TYPE_PMEM = 7u32,
        SIF_PRIVILEGED = 1u32,
        SIF_INITDOMAIN = 2u32,
        SIF_MULTIBOOT_MOD = 4u32,
        SIF_MOD_START_PFN = 8u32,
        SIF_VIRT_P2M_4TOOLS = 16u32,
        SIF_PM_MASK = 0xff00u32,
        XEN_CPUID_FIRST_LEAF = 0x4000_0000u32,
        XEN_CPUID_SIGNATURE_EBX = 0x566e_6558u32,
        XEN_CPUID_SIGNATURE_ECX = 0x6558_4d4du32,
        XEN_CPUID_SIGNATURE_EDX = 0x4d4d_566eu32,
        XEN_CPUID_MAX_NUM_LEAVES = 5u32,
        XEN_HVM_CPUID_APIC_ACCESS_VIRT = 1u32,
        XEN_HVM_CPUID_X2APIC_VIRT = 2u32,
        XEN_HVM_CPUID_IOMMU_MAPPINGS = 4u32,
        XEN_HVM_CPUID_VCPU_ID_PRESENT = 8u32,
        XEN_HVM_CPUID_DOMID_PRESENT = 16u32,
        XEN_HVM_CPUID_EXT_DEST_ID = 32u32,
        XEN_HVM_CPUID_UPCALL_VECTOR = 64u32,
        XEN_ELFNOTE_INFO = 0u32,
        XEN_ELFNOTE_ENTRY = 1u32,
        XEN_ELFNOTE_HYPERCALL_PAGE = 2u32,
        XEN_ELFNOTE_VIRT_BASE = 3u32,
        XEN_ELFNOTE_PADDR_OFFSET = 4u32,
        XEN_ELFNOTE_XEN_VERSION = 5u32,
        XEN_ELFNOTE_GUEST_OS = 6u32,
        XEN_ELFNOTE_GUEST_VERSION = 7u32,
        XEN_ELFNOTE_LOADER = 8u32,
        XEN_ELFNOTE_PAE_MODE = 9u32,
        XEN_ELFNOTE_FEATURES = 10u32,
        XEN_ELFNOTE_BSD_SYMTAB = 11u32,
        XEN_ELFNOTE_HV_START_LOW = 12u32,
        XEN_ELFNOTE_L1_MFN_VALID = 13u32,
        XEN_ELFNOTE_SUSPEND_CANCEL = 14u32,
        XEN_ELFNOTE_INIT_P2M = 15u32,
        XEN_ELFNOTE_MOD_START_PFN = 16u32,
        XEN_ELFNOTE_SUPPORTED_FEATURES = 17u32,
        XEN_ELFNOTE_PHYS32_ENTRY = 18u32,
        XEN_ELFNOTE_MAX = 18u32,
        XEN_ELFNOTE_CRASH_INFO = 0x100_0001u32,
        XEN_ELFNOTE_DUMPCORE_NONE = 0x200_0000u32,
    ]);
    assert_eq!(HVM_START_INFO_V0_SIZE, 40);
    assert_eq!(xen_cpuid_leaf(4), 0x4000_0004);
    let mut sig = [0u8; 12];
    sig[..4].copy_from_slice(&XEN_CPUID_SIGNATURE_EBX.to_le_bytes());
    sig[4..8].copy_from_slice(&XEN_CPUID_SIGNATURE_ECX.to_le_bytes());
    sig[8..].copy_from_slice(&XEN_CPUID_SIGNATURE_EDX.to_le_bytes());
    assert_eq!(&sig, XEN_CPUID_SIGNATURE);
    assert_eq!(XEN_ELFNOTE_NAME, b"Xen");
}

#[test]
fn physdev_and_platform() {
    use xen_abi::physdev::*;
    use xen_abi::platform::*;
    check(table![
        PHYSDEVOP_IRQ_STATUS_QUERY = 5u64,
        PHYSDEVOP_SET_IOPL = 6u64,
        PHYSDEVOP_EOI = 12u64,
        PHYSDEVOP_MAP_PIRQ = 13u64,
        PHYSDEVOP_UNMAP_PIRQ = 14u64,
        PHYSDEVOP_PIRQ_EOI_GMFN_V1 = 17u64,
        PHYSDEVOP_SETUP_GSI = 21u64,
        PHYSDEVOP_GET_FREE_PIRQ = 23u64,
        PHYSDEVOP_PCI_DEVICE_ADD = 25u64,
        PHYSDEVOP_PIRQ_EOI_GMFN_V2 = 28u64,
        PHYSDEVOP_DBGP_OP = 29u64,
        PHYSDEVOP_RELEASE_MSIX = 31u64,
        XENPF_INTERFACE_VERSION = 0x0300_0001u32,
        XENPF_SETTIME32 = 17u32,
        XENPF_SETTIME64 = 62u32,
        XENPF_SETTIME = 62u32,
        XENPF_FIRMWARE_INFO = 50u32,
        XENPF_GET_CPUINFO = 55u32,
        XENPF_GET_SYMBOL = 63u32,
    ]);
}

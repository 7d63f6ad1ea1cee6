//! Types and constants of Xen's public headers (`xen/include/public/`, Xen 4.17, x86 64-bit):
//! the one place where Ferrovisor's hypervisor, its test guests and the dom0 agent get the
//! guest-facing ABI (DESIGN.md §2).
//!
//! # Modules
//!
//! One module per header family, named after Xen's file:
//!
//! | module | header(s) |
//! | --- | --- |
//! | [`xen`] | `xen.h`, `arch-x86/xen.h`, `arch-x86/xen-x86_64.h`: hypercall numbers, domain ids, VIRQs, `shared_info`, `vcpu_info`, `vcpu_time_info` |
//! | [`errno`] | `errno.h` |
//! | [`sched`] | `sched.h` |
//! | [`vcpu`] | `vcpu.h`, `hvm/hvm_vcpu.h` (`vcpu_hvm_context`) |
//! | [`memory`] | `memory.h` |
//! | [`event_channel`] | `event_channel.h` |
//! | [`grant_table`] | `grant_table.h` |
//! | [`hvm`] | `hvm/hvm_op.h`, `hvm/params.h` |
//! | [`version`] | `version.h` |
//! | [`features`] | `features.h` |
//! | [`console`] | `CONSOLEIO_*` of `xen.h`, `io/console.h` |
//! | [`xs_wire`] | `io/xs_wire.h` |
//! | [`start_info`] | `arch-x86/hvm/start_info.h`, `SIF_*` of `xen.h` |
//! | [`cpuid`] | `arch-x86/cpuid.h` |
//! | [`elfnote`] | `elfnote.h` |
//! | [`physdev`] | `physdev.h` (operation numbers only) |
//! | [`platform`] | `platform.h` (operation numbers only) |
//! | [`ctl`] | Ferrovisor's own domctl/sysctl-like control interface (not Xen's binary ABI) |
//!
//! # Conventions
//!
//! - **Structures** are named by the C structure tag in CamelCase, nothing dropped:
//!   `struct xen_hvm_param` is [`hvm::XenHvmParam`], `struct evtchn_alloc_unbound` is
//!   [`event_channel::EvtchnAllocUnbound`], `struct vcpu_info` is [`xen::VcpuInfo`].
//!   They are plain `#[repr(C)]` structures with public fields of the C widths (`domid_t` is
//!   `u16`, `evtchn_port_t` and `grant_ref_t` are `u32`, `xen_pfn_t` and `xen_ulong_t` are `u64`;
//!   the aliases [`DomId`], [`event_channel::EvtchnPort`], [`grant_table::GrantRef`] … name them).
//!   Fields keep their C names; a C name that is a Rust keyword gets a trailing underscore
//!   (`type_`, `in_`, `ref_`), as bindgen does. Guest handles (`XEN_GUEST_HANDLE(...)`) are `u64`
//!   guest addresses. Explicit C padding members keep their C names (`pad`, `rsvd`, …).
//! - **Unions** are a structure holding the raw bytes (`raw: [u8; N]`, aligned like the C union)
//!   with typed accessors, e.g. [`event_channel::EvtchnStatusU`], [`grant_table::GnttabCopyPtrU`].
//! - **Byte conversion**: the hypervisor copies guest memory as bytes and never casts a guest
//!   pointer to a reference, so every structure has, without `unsafe`:
//!   `const SIZE: usize`, `fn from_bytes(&[u8; SIZE]) -> Self` and `fn to_bytes(&self) -> [u8; SIZE]`
//!   (little-endian, field by field; padding is ignored on decoding and zero on encoding), the
//!   [`XenStruct`] trait (`read_from` / `write_to` on slices, for generic copy-in/copy-out
//!   helpers), `FIELDS` (the offset/size table), and `Default` (all zero). Sizes and every field
//!   offset are checked at compile time.
//! - **Constants** keep the C name in upper case (`SCHEDOP_shutdown` is
//!   [`sched::SCHEDOP_SHUTDOWN`], `__HYPERVISOR_sched_op` is [`xen::HYPERVISOR_SCHED_OP`]).
//!   Their type is where they go: hypercall numbers and the sub-operation commands passed in a
//!   register are `u64`; a value stored in a structure field has that field's type
//!   (`SHUTDOWN_*` is `u32` like `sched_shutdown.reason`, `GTF_*` is `u16` like
//!   `grant_entry_v1.flags`, `GNTST_*` is `i16`, `DOMID_*` is `u16`); errno values are `i64`
//!   (hypercalls return `-errno` in `rax`); sizes and counts of buffers are `usize`.
//!
//! Constants and layouts are Xen's; the code and documentation here are our own.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod wire;

pub mod console;
pub mod cpuid;
pub mod ctl;
pub mod elfnote;
pub mod errno;
pub mod event_channel;
pub mod features;
pub mod grant_table;
pub mod hvm;
pub mod memory;
pub mod physdev;
pub mod platform;
pub mod sched;
pub mod start_info;
pub mod vcpu;
pub mod version;
pub mod xen;
pub mod xs_wire;

/// `domid_t`: a domain id.
pub type DomId = u16;

/// A Xen structure with a fixed little-endian layout (implemented by every structure here).
///
/// Each structure also has the inherent `SIZE`, `from_bytes(&[u8; SIZE])` and `to_bytes()`; this
/// trait is for code generic over the structure (e.g. a checked guest copy-in helper).
pub trait XenStruct: Copy + Default {
    /// Bytes of the structure (C's `sizeof`).
    const SIZE: usize;

    /// Decodes the structure from the first [`Self::SIZE`](XenStruct::SIZE) bytes of `bytes`.
    fn read_from(bytes: &[u8]) -> Result<Self, ShortBuffer>;

    /// Encodes the structure into the first [`Self::SIZE`](XenStruct::SIZE) bytes of `out`
    /// (the rest of `out` is left alone).
    fn write_to(&self, out: &mut [u8]) -> Result<(), ShortBuffer>;
}

/// A buffer was shorter than the structure read from or written into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortBuffer {
    /// Bytes the structure needs.
    pub needed: usize,
    /// Bytes the buffer had.
    pub got: usize,
}

/// One field of a structure's layout table (`FIELDS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The field's name.
    pub name: &'static str,
    /// Its offset in bytes (C's `offsetof`).
    pub offset: usize,
    /// Its size in bytes.
    pub size: usize,
}

/// Looks a field up in a layout table by name.
pub fn field<'a>(fields: &'a [FieldInfo], name: &str) -> Option<&'a FieldInfo> {
    fields.iter().find(|f| f.name == name)
}

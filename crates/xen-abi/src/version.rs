//! `version.h`: `HYPERVISOR_xen_version(cmd, arg)`.

use crate::wire::xen_struct;

/// `XENVER_version`: returns `major << 16 | minor` (see [`version_number`]). No argument.
pub const XENVER_VERSION: u64 = 0;
/// `XENVER_extraversion`: argument [`XenExtraversion`] (e.g. `".7"`, NUL-terminated).
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `XENVER_compile_info`: argument [`XenCompileInfo`].
pub const XENVER_COMPILE_INFO: u64 = 2;
/// `XENVER_capabilities`: argument [`XenCapabilitiesInfo`] (e.g. `"xen-3.0-x86_64 hvm-3.0-x86_64"`).
pub const XENVER_CAPABILITIES: u64 = 3;
/// `XENVER_changeset`: argument [`XenChangesetInfo`].
pub const XENVER_CHANGESET: u64 = 4;
/// `XENVER_platform_parameters`: argument [`XenPlatformParameters`].
pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
/// `XENVER_get_features`: argument [`XenFeatureInfo`] (bits in [`crate::features`]).
pub const XENVER_GET_FEATURES: u64 = 6;
/// `XENVER_pagesize`: returns the page size. No argument.
pub const XENVER_PAGESIZE: u64 = 7;
/// `XENVER_guest_handle`: argument the domain handle (16 bytes).
pub const XENVER_GUEST_HANDLE: u64 = 8;
/// `XENVER_commandline`: argument [`XenCommandline`] (privileged).
pub const XENVER_COMMANDLINE: u64 = 9;
/// `XENVER_build_id`: argument [`XenBuildId`] followed by its buffer (privileged).
pub const XENVER_BUILD_ID: u64 = 10;

/// `XEN_EXTRAVERSION_LEN`: bytes of `xen_extraversion_t`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `XEN_CAPABILITIES_INFO_LEN`: bytes of `xen_capabilities_info_t`.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `XEN_CHANGESET_INFO_LEN`: bytes of `xen_changeset_info_t`.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// Bytes of `xen_commandline_t`.
pub const XEN_COMMANDLINE_LEN: usize = 1024;

/// `xen_extraversion_t`: NUL-terminated string.
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];
/// `xen_capabilities_info_t`: NUL-terminated string.
pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN];
/// `xen_changeset_info_t`: NUL-terminated string.
pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN];
/// `xen_commandline_t`: NUL-terminated string.
pub type XenCommandline = [u8; XEN_COMMANDLINE_LEN];

/// The `XENVER_version` result (and CPUID leaf base + 1 `eax`) for version `major.minor`.
pub const fn version_number(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

xen_struct! {
    /// `struct xen_compile_info`: NUL-terminated strings.
    pub struct XenCompileInfo: 144 bytes {
        /// Compiler.
        pub compiler @ 0: [u8; 64],
        /// User who built.
        pub compile_by @ 64: [u8; 16],
        /// Domain of that user.
        pub compile_domain @ 80: [u8; 32],
        /// Build date.
        pub compile_date @ 112: [u8; 32],
    }

    /// `struct xen_platform_parameters`.
    pub struct XenPlatformParameters: 8 bytes {
        /// Start of the hypervisor's virtual area (PV); HVM guests get 0 or an ignored value.
        pub virt_start @ 0: u64,
    }

    /// `struct xen_feature_info`.
    pub struct XenFeatureInfo: 8 bytes {
        /// IN: which 32-bit submap (0 .. `XENFEAT_NR_SUBMAPS`).
        pub submap_idx @ 0: u32,
        /// OUT: the submap (bit `n` is feature `32 * submap_idx + n`).
        pub submap @ 4: u32,
    }

    /// `struct xen_build_id` without its flexible `buf[]`, which follows it.
    pub struct XenBuildId: 4 bytes {
        /// IN: bytes of `buf`; OUT: bytes written.
        pub len @ 0: u32,
    }
}

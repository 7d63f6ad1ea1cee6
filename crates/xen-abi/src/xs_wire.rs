//! `io/xs_wire.h`: the xenstore wire protocol: message header and types, the error strings,
//! and the shared ring page `struct xenstore_domain_interface` (`HVM_PARAM_STORE_PFN`).
//!
//! A message is an [`XsdSockmsg`] followed by `len` (at most [`XENSTORE_PAYLOAD_MAX`]) bytes of
//! payload, usually NUL-terminated strings. An error reply has type [`XS_ERROR`] and the
//! errno's name as payload (e.g. `"ENOENT\0"`, see [`XSD_ERRORS`]).

use crate::errno;
use crate::wire::xen_struct;

// Message types (`enum xsd_sockmsg_type`, `xsd_sockmsg.type`).

/// `XS_CONTROL` (formerly `XS_DEBUG`): xenstored-specific control commands.
pub const XS_CONTROL: u32 = 0;
/// `XS_DEBUG`: old name of [`XS_CONTROL`].
pub const XS_DEBUG: u32 = XS_CONTROL;
/// `XS_DIRECTORY`: list a node's children.
pub const XS_DIRECTORY: u32 = 1;
/// `XS_READ`.
pub const XS_READ: u32 = 2;
/// `XS_GET_PERMS`.
pub const XS_GET_PERMS: u32 = 3;
/// `XS_WATCH`: payload path and token.
pub const XS_WATCH: u32 = 4;
/// `XS_UNWATCH`.
pub const XS_UNWATCH: u32 = 5;
/// `XS_TRANSACTION_START`: the reply is the transaction id as a decimal string.
pub const XS_TRANSACTION_START: u32 = 6;
/// `XS_TRANSACTION_END`: payload `"T"` (commit) or `"F"` (abort).
pub const XS_TRANSACTION_END: u32 = 7;
/// `XS_INTRODUCE`: tell xenstored about a new domain's ring (privileged).
pub const XS_INTRODUCE: u32 = 8;
/// `XS_RELEASE`: forget a domain (privileged).
pub const XS_RELEASE: u32 = 9;
/// `XS_GET_DOMAIN_PATH`: `/local/domain/<domid>`.
pub const XS_GET_DOMAIN_PATH: u32 = 10;
/// `XS_WRITE`.
pub const XS_WRITE: u32 = 11;
/// `XS_MKDIR`.
pub const XS_MKDIR: u32 = 12;
/// `XS_RM`.
pub const XS_RM: u32 = 13;
/// `XS_SET_PERMS`.
pub const XS_SET_PERMS: u32 = 14;
/// `XS_WATCH_EVENT`: asynchronous watch firing (`req_id` 0); payload path and token.
pub const XS_WATCH_EVENT: u32 = 15;
/// `XS_ERROR`: error reply; payload the errno name.
pub const XS_ERROR: u32 = 16;
/// `XS_IS_DOMAIN_INTRODUCED`.
pub const XS_IS_DOMAIN_INTRODUCED: u32 = 17;
/// `XS_RESUME`.
pub const XS_RESUME: u32 = 18;
/// `XS_SET_TARGET`.
pub const XS_SET_TARGET: u32 = 19;
/// `XS_RESET_WATCHES`: drop all of the connection's watches (20, `XS_RESTRICT`, was removed).
pub const XS_RESET_WATCHES: u32 = 21;
/// `XS_DIRECTORY_PART`: list children in chunks.
pub const XS_DIRECTORY_PART: u32 = 22;
/// `XS_TYPE_COUNT`: valid types are below this.
pub const XS_TYPE_COUNT: u32 = 23;
/// `XS_INVALID`: guaranteed never to be a valid type.
pub const XS_INVALID: u32 = 0xffff;

/// The name of message type `ty` (`"XS_READ"` for 2), for logs.
pub fn xs_type_name(ty: u32) -> Option<&'static str> {
    Some(match ty {
        XS_CONTROL => "XS_CONTROL",
        XS_DIRECTORY => "XS_DIRECTORY",
        XS_READ => "XS_READ",
        XS_GET_PERMS => "XS_GET_PERMS",
        XS_WATCH => "XS_WATCH",
        XS_UNWATCH => "XS_UNWATCH",
        XS_TRANSACTION_START => "XS_TRANSACTION_START",
        XS_TRANSACTION_END => "XS_TRANSACTION_END",
        XS_INTRODUCE => "XS_INTRODUCE",
        XS_RELEASE => "XS_RELEASE",
        XS_GET_DOMAIN_PATH => "XS_GET_DOMAIN_PATH",
        XS_WRITE => "XS_WRITE",
        XS_MKDIR => "XS_MKDIR",
        XS_RM => "XS_RM",
        XS_SET_PERMS => "XS_SET_PERMS",
        XS_WATCH_EVENT => "XS_WATCH_EVENT",
        XS_ERROR => "XS_ERROR",
        XS_IS_DOMAIN_INTRODUCED => "XS_IS_DOMAIN_INTRODUCED",
        XS_RESUME => "XS_RESUME",
        XS_SET_TARGET => "XS_SET_TARGET",
        XS_RESET_WATCHES => "XS_RESET_WATCHES",
        XS_DIRECTORY_PART => "XS_DIRECTORY_PART",
        _ => return None,
    })
}

/// `XS_WRITE_NONE`: (historical) `XS_WRITE` flag string.
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`.
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`.
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `XS_WATCH_PATH`: index of the path among a watch event's strings.
pub const XS_WATCH_PATH: usize = 0;
/// `XS_WATCH_TOKEN`: index of the token.
pub const XS_WATCH_TOKEN: usize = 1;

/// One entry of [`XSD_ERRORS`] (`struct xsd_errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsdError {
    /// The errno (Xen's and Linux's values agree for all of these).
    pub errnum: i64,
    /// Its name, the payload of an `XS_ERROR` reply.
    pub errstring: &'static str,
}

/// `xsd_errors[]`: the errors xenstore replies may carry, in the header's order (new ones are
/// only ever appended).
pub const XSD_ERRORS: [XsdError; 16] = [
    XsdError { errnum: errno::EINVAL, errstring: "EINVAL" },
    XsdError { errnum: errno::EACCES, errstring: "EACCES" },
    XsdError { errnum: errno::EEXIST, errstring: "EEXIST" },
    XsdError { errnum: errno::EISDIR, errstring: "EISDIR" },
    XsdError { errnum: errno::ENOENT, errstring: "ENOENT" },
    XsdError { errnum: errno::ENOMEM, errstring: "ENOMEM" },
    XsdError { errnum: errno::ENOSPC, errstring: "ENOSPC" },
    XsdError { errnum: errno::EIO, errstring: "EIO" },
    XsdError { errnum: errno::ENOTEMPTY, errstring: "ENOTEMPTY" },
    XsdError { errnum: errno::ENOSYS, errstring: "ENOSYS" },
    XsdError { errnum: errno::EROFS, errstring: "EROFS" },
    XsdError { errnum: errno::EBUSY, errstring: "EBUSY" },
    XsdError { errnum: errno::EAGAIN, errstring: "EAGAIN" },
    XsdError { errnum: errno::EISCONN, errstring: "EISCONN" },
    XsdError { errnum: errno::E2BIG, errstring: "E2BIG" },
    XsdError { errnum: errno::EPERM, errstring: "EPERM" },
];

/// The `XS_ERROR` payload string for `errnum`, if xenstore knows it.
pub fn xsd_error_string(errnum: i64) -> Option<&'static str> {
    XSD_ERRORS.iter().find(|e| e.errnum == errnum).map(|e| e.errstring)
}

/// The errno of an `XS_ERROR` payload (without its NUL), if known. Clients treat unknown
/// strings as `EINVAL`.
pub fn xsd_error_errnum(errstring: &[u8]) -> Option<i64> {
    XSD_ERRORS.iter().find(|e| e.errstring.as_bytes() == errstring).map(|e| e.errnum)
}

/// `XENSTORE_RING_SIZE`: bytes of each ring (a power of two).
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_RING_IDX`: a free-running ring index.
pub type XenstoreRingIdx = u32;

/// `MASK_XENSTORE_IDX(idx)`: the position of index `idx` in a ring.
pub const fn mask_xenstore_idx(idx: XenstoreRingIdx) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `XENSTORE_PAYLOAD_MAX`: the longest payload of one message.
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`: the longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`: the longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;

/// `XENSTORE_SERVER_FEATURE_RECONNECTION` in `server_features`: the `connection` field works.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR` in `server_features`: the `error` field works.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;

/// `XENSTORE_CONNECTED` (`connection`): the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT` (`connection`): a reconnection is in progress.
pub const XENSTORE_RECONNECT: u32 = 1;

/// `XENSTORE_ERROR_NONE` (`error`).
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (e.g. payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

xen_struct! {
    /// `struct xsd_sockmsg`: the header of every xenstore message.
    pub struct XsdSockmsg: 16 bytes {
        /// `XS_*`.
        pub type_ @ 0: u32,
        /// Request id, echoed in the reply (0 in watch events).
        pub req_id @ 4: u32,
        /// Transaction id (0: none).
        pub tx_id @ 8: u32,
        /// Bytes of payload following the header.
        pub len @ 12: u32,
    }

    /// `struct xenstore_domain_interface`: the xenstore ring page.
    pub struct XenstoreDomainInterface: 2076 bytes {
        /// Requests to xenstored.
        pub req @ 0: [u8; 1024],
        /// Replies and watch events.
        pub rsp @ 1024: [u8; 1024],
        /// Consumer index of `req` (xenstored advances it).
        pub req_cons @ 2048: XenstoreRingIdx,
        /// Producer index of `req` (the guest advances it).
        pub req_prod @ 2052: XenstoreRingIdx,
        /// Consumer index of `rsp` (the guest advances it).
        pub rsp_cons @ 2056: XenstoreRingIdx,
        /// Producer index of `rsp` (xenstored advances it).
        pub rsp_prod @ 2060: XenstoreRingIdx,
        /// `XENSTORE_SERVER_FEATURE_*` the server supports.
        pub server_features @ 2064: u32,
        /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
        pub connection @ 2068: u32,
        /// `XENSTORE_ERROR_*`.
        pub error @ 2072: u32,
    }
}

const _: () = assert!(XENSTORE_RING_SIZE.is_power_of_two());

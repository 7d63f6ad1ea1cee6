//! The errors a request can fail with. On the wire they become an `XS_ERROR` reply whose
//! payload is the errno's name (`"ENOENT\0"`), taken from `xsd_errors[]`
//! ([`xen_abi::xs_wire::XSD_ERRORS`]).

use xen_abi::errno;
use xen_abi::xs_wire::xsd_error_string;

/// Why a request failed. Every variant is an errno listed in `xsd_errors[]`, so clients
/// (Linux's xenbus, libxenstore) understand its name.
///
/// Which error xenstored returns where follows C xenstored (`tools/xenstored/`):
///
/// | error | when |
/// | --- | --- |
/// | `EINVAL` | malformed payload or header, bad path, bad domid, `RM /` |
/// | `EACCES` | no permission (also hides `ENOENT` where the parent is not readable/writable); privileged request from a domU |
/// | `ENOENT` | no such node, transaction, watch or introduced domain |
/// | `EEXIST` | duplicate watch |
/// | `ENOSPC` | a quota is exceeded (nodes, node size, watches, transactions, permissions, nodes per transaction) |
/// | `E2BIG` | the reply would be longer than `XENSTORE_PAYLOAD_MAX` |
/// | `EAGAIN` | transaction conflict on commit |
/// | `EBUSY` | `TRANSACTION_START` inside a transaction |
/// | `EPERM` | a domU tried to change a node's owner |
/// | `ENOSYS` | unknown or reply-only message type |
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Error {
    /// `EINVAL`.
    Inval,
    /// `EACCES`.
    Acces,
    /// `EEXIST`.
    Exist,
    /// `ENOENT`.
    NoEnt,
    /// `ENOMEM`.
    NoMem,
    /// `ENOSPC`.
    NoSpc,
    /// `EIO`.
    Io,
    /// `ENOSYS`.
    NoSys,
    /// `EBUSY`.
    Busy,
    /// `EAGAIN`.
    Again,
    /// `E2BIG`.
    TooBig,
    /// `EPERM`.
    Perm,
}

impl Error {
    /// The errno value (Xen's and Linux's agree for all of these).
    pub const fn errnum(self) -> i64 {
        match self {
            Error::Inval => errno::EINVAL,
            Error::Acces => errno::EACCES,
            Error::Exist => errno::EEXIST,
            Error::NoEnt => errno::ENOENT,
            Error::NoMem => errno::ENOMEM,
            Error::NoSpc => errno::ENOSPC,
            Error::Io => errno::EIO,
            Error::NoSys => errno::ENOSYS,
            Error::Busy => errno::EBUSY,
            Error::Again => errno::EAGAIN,
            Error::TooBig => errno::E2BIG,
            Error::Perm => errno::EPERM,
        }
    }

    /// The errno's name as sent in an `XS_ERROR` payload (without the NUL), from
    /// `xsd_errors[]`.
    pub fn name(self) -> &'static str {
        // Every variant is in the table (checked by a unit test); EINVAL is xenstored's
        // fallback for untranslatable errors.
        xsd_error_string(self.errnum()).unwrap_or("EINVAL")
    }

    /// The error named by an `XS_ERROR` payload (with or without its NUL).
    pub fn from_name(name: &[u8]) -> Option<Error> {
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        ALL.iter().copied().find(|e| e.name().as_bytes() == name)
    }
}

/// Every variant, for [`Error::from_name`] and tests.
pub(crate) const ALL: [Error; 12] = [
    Error::Inval,
    Error::Acces,
    Error::Exist,
    Error::NoEnt,
    Error::NoMem,
    Error::NoSpc,
    Error::Io,
    Error::NoSys,
    Error::Busy,
    Error::Again,
    Error::TooBig,
    Error::Perm,
];

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

//! `errno.h`: Xen's error numbers. A failing hypercall returns `-errno` in `rax`, so they are
//! `i64` here. The values match Linux's on x86, which is why guests use them unchanged.

/// `EPERM`: operation not permitted.
pub const EPERM: i64 = 1;
/// `ENOENT`: no such file or directory (entry).
pub const ENOENT: i64 = 2;
/// `ESRCH`: no such process (domain, vCPU).
pub const ESRCH: i64 = 3;
/// `EINTR`: interrupted system call. Xen-internal: never returned to a guest.
pub const EINTR: i64 = 4;
/// `EIO`: I/O error.
pub const EIO: i64 = 5;
/// `ENXIO`: no such device or address.
pub const ENXIO: i64 = 6;
/// `E2BIG`: argument list too long.
pub const E2BIG: i64 = 7;
/// `ENOEXEC`: exec format error.
pub const ENOEXEC: i64 = 8;
/// `EBADF`: bad file number.
pub const EBADF: i64 = 9;
/// `ECHILD`: no child processes.
pub const ECHILD: i64 = 10;
/// `EAGAIN`: try again.
pub const EAGAIN: i64 = 11;
/// `EWOULDBLOCK`: operation would block (same value as [`EAGAIN`]).
pub const EWOULDBLOCK: i64 = 11;
/// `ENOMEM`: out of memory.
pub const ENOMEM: i64 = 12;
/// `EACCES`: permission denied.
pub const EACCES: i64 = 13;
/// `EFAULT`: bad address (a guest pointer the hypervisor could not access).
pub const EFAULT: i64 = 14;
/// `EBUSY`: device or resource busy.
pub const EBUSY: i64 = 16;
/// `EEXIST`: file (entry) exists.
pub const EEXIST: i64 = 17;
/// `EXDEV`: cross-device link.
pub const EXDEV: i64 = 18;
/// `ENODEV`: no such device.
pub const ENODEV: i64 = 19;
/// `ENOTDIR`: not a directory.
pub const ENOTDIR: i64 = 20;
/// `EISDIR`: is a directory.
pub const EISDIR: i64 = 21;
/// `EINVAL`: invalid argument.
pub const EINVAL: i64 = 22;
/// `ENFILE`: file table overflow.
pub const ENFILE: i64 = 23;
/// `EMFILE`: too many open files.
pub const EMFILE: i64 = 24;
/// `ENOSPC`: no space left on device.
pub const ENOSPC: i64 = 28;
/// `EROFS`: read-only file system.
pub const EROFS: i64 = 30;
/// `EMLINK`: too many links.
pub const EMLINK: i64 = 31;
/// `EDOM`: argument out of domain of function.
pub const EDOM: i64 = 33;
/// `ERANGE`: result not representable.
pub const ERANGE: i64 = 34;
/// `EDEADLK`: resource deadlock would occur.
pub const EDEADLK: i64 = 35;
/// `EDEADLOCK`: same value as [`EDEADLK`].
pub const EDEADLOCK: i64 = 35;
/// `ENAMETOOLONG`: file name too long.
pub const ENAMETOOLONG: i64 = 36;
/// `ENOLCK`: no record locks available.
pub const ENOLCK: i64 = 37;
/// `ENOSYS`: function not implemented (unknown hypercall or sub-operation).
pub const ENOSYS: i64 = 38;
/// `ENOTEMPTY`: directory not empty.
pub const ENOTEMPTY: i64 = 39;
/// `ENODATA`: no data available.
pub const ENODATA: i64 = 61;
/// `ETIME`: timer expired (e.g. a single-shot timeout already in the past).
pub const ETIME: i64 = 62;
/// `EBADMSG`: not a data message.
pub const EBADMSG: i64 = 74;
/// `EOVERFLOW`: value too large for defined data type.
pub const EOVERFLOW: i64 = 75;
/// `EILSEQ`: illegal byte sequence.
pub const EILSEQ: i64 = 84;
/// `ERESTART`: the call should be restarted. Xen-internal (continuations): never returned to a
/// guest.
pub const ERESTART: i64 = 85;
/// `ENOTSOCK`: socket operation on non-socket.
pub const ENOTSOCK: i64 = 88;
/// `EMSGSIZE`: message too large.
pub const EMSGSIZE: i64 = 90;
/// `EOPNOTSUPP`: operation not supported.
pub const EOPNOTSUPP: i64 = 95;
/// `EADDRINUSE`: address already in use.
pub const EADDRINUSE: i64 = 98;
/// `EADDRNOTAVAIL`: cannot assign requested address.
pub const EADDRNOTAVAIL: i64 = 99;
/// `ENOBUFS`: no buffer space available.
pub const ENOBUFS: i64 = 105;
/// `EISCONN`: already connected.
pub const EISCONN: i64 = 106;
/// `ENOTCONN`: not connected.
pub const ENOTCONN: i64 = 107;
/// `ETIMEDOUT`: connection timed out.
pub const ETIMEDOUT: i64 = 110;
/// `ECONNREFUSED`: connection refused.
pub const ECONNREFUSED: i64 = 111;

/// Every errno of `errno.h` with its name, in the header's order. Aliases ([`EWOULDBLOCK`],
/// [`EDEADLOCK`]) are left out, so each value appears once.
pub const ALL: [(i64, &str); 49] = [
    (EPERM, "EPERM"),
    (ENOENT, "ENOENT"),
    (ESRCH, "ESRCH"),
    (EINTR, "EINTR"),
    (EIO, "EIO"),
    (ENXIO, "ENXIO"),
    (E2BIG, "E2BIG"),
    (ENOEXEC, "ENOEXEC"),
    (EBADF, "EBADF"),
    (ECHILD, "ECHILD"),
    (EAGAIN, "EAGAIN"),
    (ENOMEM, "ENOMEM"),
    (EACCES, "EACCES"),
    (EFAULT, "EFAULT"),
    (EBUSY, "EBUSY"),
    (EEXIST, "EEXIST"),
    (EXDEV, "EXDEV"),
    (ENODEV, "ENODEV"),
    (ENOTDIR, "ENOTDIR"),
    (EISDIR, "EISDIR"),
    (EINVAL, "EINVAL"),
    (ENFILE, "ENFILE"),
    (EMFILE, "EMFILE"),
    (ENOSPC, "ENOSPC"),
    (EROFS, "EROFS"),
    (EMLINK, "EMLINK"),
    (EDOM, "EDOM"),
    (ERANGE, "ERANGE"),
    (EDEADLK, "EDEADLK"),
    (ENAMETOOLONG, "ENAMETOOLONG"),
    (ENOLCK, "ENOLCK"),
    (ENOSYS, "ENOSYS"),
    (ENOTEMPTY, "ENOTEMPTY"),
    (ENODATA, "ENODATA"),
    (ETIME, "ETIME"),
    (EBADMSG, "EBADMSG"),
    (EOVERFLOW, "EOVERFLOW"),
    (EILSEQ, "EILSEQ"),
    (ERESTART, "ERESTART"),
    (ENOTSOCK, "ENOTSOCK"),
    (EMSGSIZE, "EMSGSIZE"),
    (EOPNOTSUPP, "EOPNOTSUPP"),
    (EADDRINUSE, "EADDRINUSE"),
    (EADDRNOTAVAIL, "EADDRNOTAVAIL"),
    (ENOBUFS, "ENOBUFS"),
    (EISCONN, "EISCONN"),
    (ENOTCONN, "ENOTCONN"),
    (ETIMEDOUT, "ETIMEDOUT"),
    (ECONNREFUSED, "ECONNREFUSED"),
];

/// The name of errno `errno` (positive, e.g. [`ENOSYS`] gives `"ENOSYS"`), for logs.
pub fn name(errno: i64) -> Option<&'static str> {
    ALL.iter().find(|&&(value, _)| value == errno).map(|&(_, name)| name)
}

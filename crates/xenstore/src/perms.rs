//! Node permissions (xenstore.txt "Permissions", C xenstored's `perm_for_conn`).
//!
//! A node has one or more entries `(domid, access)`. The first names the owner, who always
//! has full access, and its access applies to every domain without an entry of its own. The
//! privileged domain (dom0) may do anything. A domain that is the target of a connection's
//! domain (`SET_TARGET`, device-model stub domains) is treated like that domain.
//! On the wire an entry is a letter (`n` none, `r` read, `w` write, `b` both) followed by the
//! domid in decimal: `"n0"`, `"r5"`.

use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::{ConnId, DomId, Error};

/// The access an entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// `n`: no access.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

/// `XS_PERM_READ`.
pub(crate) const PERM_READ: u8 = 0x01;
/// `XS_PERM_WRITE`.
pub(crate) const PERM_WRITE: u8 = 0x02;
/// `XS_PERM_OWNER`: only the owner (and privileged callers) may change permissions.
pub(crate) const PERM_OWNER: u8 = 0x08;
const PERM_ALL: u8 = PERM_READ | PERM_WRITE | PERM_OWNER;

impl Access {
    /// The wire letter.
    pub const fn letter(self) -> u8 {
        match self {
            Access::None => b'n',
            Access::Read => b'r',
            Access::Write => b'w',
            Access::Both => b'b',
        }
    }

    /// The access named by a wire letter.
    pub const fn from_letter(letter: u8) -> Option<Access> {
        Some(match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return None,
        })
    }

    pub(crate) const fn bits(self) -> u8 {
        match self {
            Access::None => 0,
            Access::Read => PERM_READ,
            Access::Write => PERM_WRITE,
            Access::Both => PERM_READ | PERM_WRITE,
        }
    }
}

/// One permission entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Perm {
    /// The domain the entry is for (the owner, for the first entry).
    pub domid: DomId,
    /// What it may do (for the first entry: what every domain without an entry may do).
    pub access: Access,
}

impl Perm {
    /// An entry.
    pub const fn new(domid: DomId, access: Access) -> Perm {
        Perm { domid, access }
    }

    /// Parses `"r5"`: a letter and a decimal domid (0..=65535). C xenstored uses
    /// `strtol(.., 0)`, which also takes hex and octal; every client sends decimal.
    pub fn parse(s: &[u8]) -> Result<Perm, Error> {
        let (&letter, id) = s.split_first().ok_or(Error::Inval)?;
        let access = Access::from_letter(letter).ok_or(Error::Inval)?;
        let domid = parse_decimal(id).and_then(|v| DomId::try_from(v).ok()).ok_or(Error::Inval)?;
        Ok(Perm { domid, access })
    }

    /// Appends the wire form (`"r5"`, no NUL) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(self.access.letter());
        let mut digits = alloc::string::String::new();
        // Writing to a String cannot fail.
        let _ = write!(digits, "{}", self.domid);
        out.extend_from_slice(digits.as_bytes());
    }
}

/// A strictly decimal number (digits only, at least one, no overflow).
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(v)
}

/// `perms` in wire form: each entry followed by a NUL (the `GET_PERMS` reply).
pub(crate) fn format_perms(perms: &[Perm]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in perms {
        p.write_to(&mut out);
        out.push(0);
    }
    out
}

/// Who is making a request: what permission checks and quotas need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub conn: ConnId,
    pub domid: DomId,
    pub privileged: bool,
    /// The domain this connection's domain acts for (`SET_TARGET`).
    pub target: Option<DomId>,
}

impl Caller {
    fn is(&self, domid: DomId) -> bool {
        domid == self.domid || Some(domid) == self.target
    }
}

/// The `XS_PERM_*` bits `caller` has on a node with `perms` (`perm_for_conn`).
pub(crate) fn perm_for(caller: &Caller, perms: &[Perm]) -> u8 {
    let Some((owner, rest)) = perms.split_first() else {
        // A node always has an owner; with none, only privileged callers get in.
        return if caller.privileged { PERM_ALL } else { 0 };
    };
    if caller.privileged || caller.is(owner.domid) {
        return PERM_ALL;
    }
    rest.iter().find(|p| caller.is(p.domid)).unwrap_or(owner).access.bits()
}

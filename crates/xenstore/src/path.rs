//! Paths: validation and canonicalization (xenstore.txt "Paths", C xenstored's
//! `canonicalize`).
//!
//! - Characters: ASCII letters and digits and `-/_@`.
//! - Absolute paths start with `/`; no `//`, no trailing `/` except the root itself.
//! - Relative paths (not starting with `/` or `@`) are relative to `/local/domain/<domid>`
//!   of the caller's domain.
//! - Special paths start with `@` (`@introduceDomain`, `@releaseDomain`); they are only
//!   valid where the request allows them (watches and permissions).
//! - At most [`XENSTORE_ABS_PATH_MAX`] bytes in all; for unprivileged callers, at most the
//!   `path_max` quota (default [`XENSTORE_REL_PATH_MAX`]) bytes after a leading
//!   `/local/domain/<domid>/`.

use alloc::format;
use alloc::string::String;

use xen_abi::xs_wire::XENSTORE_ABS_PATH_MAX;
#[cfg(doc)]
use xen_abi::xs_wire::XENSTORE_REL_PATH_MAX;

use crate::perms::Caller;
use crate::{DomId, Error};

/// `@introduceDomain`: fires when a domain is introduced.
pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
/// `@releaseDomain`: fires when a domain is released, shuts down or dies.
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

/// `/local/domain/<domid>`: a domain's home, base of its relative paths.
pub fn domain_path(domid: DomId) -> String {
    format!("/local/domain/{domid}")
}

fn valid_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'@')
}

/// A canonical path and whether the caller wrote it relative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Canonical {
    pub path: String,
    pub relative: bool,
}

/// Validates `raw` and makes it absolute for `caller`.
pub(crate) fn canonicalize(
    caller: &Caller,
    raw: &[u8],
    allow_special: bool,
    path_max: u32,
) -> Result<Canonical, Error> {
    if !raw.iter().all(|&b| valid_char(b)) {
        return Err(Error::Inval);
    }
    // Only ASCII from here on, so this cannot fail.
    let raw = core::str::from_utf8(raw).map_err(|_| Error::Inval)?;
    if raw.starts_with('@') && !allow_special {
        return Err(Error::Inval);
    }
    let relative = !raw.starts_with('/') && !raw.starts_with('@');
    if relative && raw.len() > XENSTORE_ABS_PATH_MAX {
        return Err(Error::Inval);
    }
    let path = if relative { format!("{}/{}", domain_path(caller.domid), raw) } else { String::from(raw) };
    if (path.ends_with('/') && path != "/") || path.contains("//") || path.len() > XENSTORE_ABS_PATH_MAX {
        return Err(Error::Inval);
    }
    if !caller.privileged && path_max != 0 && path.len() - local_prefix_len(&path) > path_max as usize {
        return Err(Error::Inval);
    }
    Ok(Canonical { path, relative })
}

/// Length of a leading `/local/domain/<1-5 digits>/` (`sscanf("/local/domain/%5u/%n")`), or 0.
fn local_prefix_len(path: &str) -> usize {
    const PREFIX: &str = "/local/domain/";
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return 0;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=5).contains(&digits) && rest.as_bytes().get(digits) == Some(&b'/') {
        PREFIX.len() + digits + 1
    } else {
        0
    }
}

/// The parent of a canonical path (`get_parent`): `/a/b` -> `/a`, `/a` -> `/`, `/` -> `/`,
/// and `/` for special paths.
pub(crate) fn parent_of(path: &str) -> &str {
    match path.get(1..).and_then(|rest| rest.rfind('/')) {
        Some(i) => &path[..=i],
        None => "/",
    }
}

/// The last component of a canonical path other than `/`.
pub(crate) fn basename(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `parent/name`.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Whether `child` is `parent` or below it (watch matching, `is_child` without depth).
pub(crate) fn is_child(child: &str, parent: &str) -> bool {
    if parent == "/" {
        return child.starts_with('/');
    }
    match child.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Whether a canonical path is a special (`@`) path.
pub(crate) fn is_special(path: &str) -> bool {
    path.starts_with('@')
}

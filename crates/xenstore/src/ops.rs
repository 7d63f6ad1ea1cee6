//! The tree operations (`READ`, `WRITE`, `MKDIR`, `RM`, `DIRECTORY`, `DIRECTORY_PART`,
//! `GET_PERMS`, `SET_PERMS`) on a [`View`], following C xenstored's `core.c`.
//!
//! Each operation either fails without changing anything or succeeds completely: all
//! reads (which may fail on the nodes-per-transaction quota) and all checks come before the
//! first modification.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use xen_abi::xs_wire::XENSTORE_PAYLOAD_MAX;

use crate::db::{Match, Node, View};
use crate::path::{basename, child_path, parent_of};
use crate::perms::{format_perms, perm_for, Caller, Perm, PERM_OWNER, PERM_READ, PERM_WRITE};
use crate::{Error, Quotas};

/// Who asks, under which quotas.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env {
    pub caller: Caller,
    pub quotas: Quotas,
}

impl Env {
    fn unprivileged(&self) -> bool {
        !self.caller.privileged
    }

    /// `ENOSPC` if an unprivileged caller would write a node larger than the node-size quota.
    fn check_size(&self, node: &Node) -> Result<(), Error> {
        let limit = self.quotas.node_size as usize;
        if self.unprivileged() && limit != 0 && node.acc_size() > limit {
            return Err(Error::NoSpc);
        }
        Ok(())
    }
}

/// The node at `path` if the caller has all of `perm` on it (`get_node` +
/// `get_node_chk_perm`). A missing node is `ENOENT` and a forbidden one `EACCES`, except
/// that the caller learns nothing about nodes below an ancestor it has no such access to:
/// then both are `EACCES` (`errno_from_parents`).
pub(crate) fn get_node_chk(env: &Env, view: &mut View<'_>, path: &str, perm: u8) -> Result<Node, Error> {
    let err = match view.get(path)? {
        Some(node) if perm_for(&env.caller, &node.perms) & perm == perm => return Ok(node),
        Some(_) => Error::Acces,
        None => Error::NoEnt,
    };
    Err(errno_from_parents(env, view, path, err, perm))
}

fn errno_from_parents(env: &Env, view: &View<'_>, path: &str, err: Error, perm: u8) -> Error {
    let mut name = path;
    loop {
        name = parent_of(name);
        if let Some(node) = view.peek(name) {
            return if perm_for(&env.caller, &node.perms) & perm != 0 { err } else { Error::Acces };
        }
        if name == "/" {
            // No root: cannot happen (the store never deletes it).
            return Error::Acces;
        }
    }
}

/// Permission sets for the watch check of an event on `path` in its current state: the
/// node's and its parent's (`watch_permitted`).
fn current_perms(view: &View<'_>, path: &str) -> Vec<Vec<Perm>> {
    let mut out = Vec::new();
    if let Some(node) = view.peek(path) {
        out.push(node.perms.clone());
        if let Some(parent) = view.peek(parent_of(path)) {
            out.push(parent.perms.clone());
        }
    }
    out
}

/// `READ`: the value.
pub(crate) fn read(env: &Env, view: &mut View<'_>, path: &str) -> Result<Vec<u8>, Error> {
    Ok(get_node_chk(env, view, path, PERM_READ)?.value)
}

/// `WRITE`: sets the value, creating the node and missing parents.
pub(crate) fn write(env: &Env, view: &mut View<'_>, path: &str, value: &[u8]) -> Result<(), Error> {
    match get_node_chk(env, view, path, PERM_WRITE) {
        Ok(mut node) => {
            node.value = value.to_vec();
            env.check_size(&node)?;
            view.set(path, node);
        }
        Err(Error::NoEnt) => create(env, view, path, value)?,
        Err(e) => return Err(e),
    }
    let perms = current_perms(view, path);
    view.fire(path, Match::Subtree, perms);
    Ok(())
}

/// `MKDIR`: creates the node (empty) and missing parents; an existing node is left alone.
pub(crate) fn mkdir(env: &Env, view: &mut View<'_>, path: &str) -> Result<(), Error> {
    match get_node_chk(env, view, path, PERM_WRITE) {
        Ok(_) => Ok(()),
        Err(Error::NoEnt) => {
            create(env, view, path, &[])?;
            let perms = current_perms(view, path);
            view.fire(path, Match::Subtree, perms);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` with `value` and its missing ancestors with empty values
/// (`construct_node` + `create_node`). New nodes copy their parent's permissions; an
/// unprivileged creator becomes their owner.
fn create(env: &Env, view: &mut View<'_>, path: &str, value: &[u8]) -> Result<(), Error> {
    // Walk up to the nearest existing ancestor; `missing` is bottom-up.
    let mut missing: Vec<String> = vec![String::from(path)];
    let mut cur = parent_of(path);
    let (parent_path, mut parent) = loop {
        if let Some(node) = view.get(cur)? {
            break (String::from(cur), node);
        }
        if cur == "/" {
            return Err(Error::NoEnt);
        }
        missing.push(String::from(cur));
        cur = parent_of(cur);
    };
    let mut perms = parent.perms.clone();
    if env.unprivileged() {
        if let Some(owner) = perms.first_mut() {
            owner.domid = env.caller.domid;
        }
    }

    // Build the new nodes top-down and check the quotas before changing anything.
    let mut new_nodes: Vec<(String, Node)> = Vec::with_capacity(missing.len());
    for (i, p) in missing.iter().enumerate().rev() {
        let mut node = Node::new(if i == 0 { value.to_vec() } else { Vec::new() }, perms.clone());
        if i > 0 {
            node.children.push(String::from(basename(&missing[i - 1])));
        }
        env.check_size(&node)?;
        new_nodes.push((p.clone(), node));
    }
    let top = basename(&missing[missing.len() - 1]);
    if !parent.children.iter().any(|c| c == top) {
        parent.children.push(String::from(top));
    }
    env.check_size(&parent)?;
    let limit = env.quotas.nodes;
    if env.unprivileged() && limit != 0 && view.count(env.caller.domid) + new_nodes.len() as i64 > i64::from(limit) {
        return Err(Error::NoSpc);
    }

    view.set(&parent_path, parent);
    for (p, node) in new_nodes {
        view.set(&p, node);
    }
    Ok(())
}

/// `RM`: deletes the node and everything below it. A missing node is fine if its parent
/// exists. The root cannot be removed.
pub(crate) fn rm(env: &Env, view: &mut View<'_>, path: &str) -> Result<(), Error> {
    match get_node_chk(env, view, path, PERM_WRITE) {
        Ok(_) if path == "/" => Err(Error::Inval),
        Ok(_) => rm_node(view, path),
        Err(Error::NoEnt) => match view.get(parent_of(path))? {
            Some(_) => Ok(()),
            None => Err(Error::NoEnt),
        },
        Err(e) => Err(e),
    }
}

/// Deletes `path` and its subtree without permission checks (`rm_node`), firing an event
/// for every deleted node: a subtree event for `path`, exact ones below it.
pub(crate) fn rm_node(view: &mut View<'_>, path: &str) -> Result<(), Error> {
    let parent_path = String::from(parent_of(path));
    let mut parent = view.get(&parent_path)?.ok_or(Error::Inval)?;

    // Read the whole subtree first (pre-order).
    let mut order: Vec<(String, Node)> = Vec::new();
    let mut stack = vec![String::from(path)];
    while let Some(p) = stack.pop() {
        if let Some(node) = view.get(&p)? {
            for c in node.children.iter().rev() {
                stack.push(child_path(&p, c));
            }
            order.push((p, node));
        }
    }

    let mut perms_of: BTreeMap<String, Vec<Perm>> = BTreeMap::new();
    perms_of.insert(parent_path.clone(), parent.perms.clone());
    for (p, node) in &order {
        perms_of.insert(p.clone(), node.perms.clone());
    }
    // Children before their parents, like C xenstored's post-order walk.
    for (p, node) in order.into_iter().rev() {
        view.remove(&p);
        let mut perms = vec![node.perms];
        if let Some(pp) = perms_of.get(parent_of(&p)) {
            perms.push(pp.clone());
        }
        let kind = if p == path { Match::Subtree } else { Match::Exact };
        view.fire(&p, kind, perms);
    }
    let name = basename(path);
    parent.children.retain(|c| c != name);
    view.set(&parent_path, parent);
    Ok(())
}

/// `DIRECTORY`: the children's names, each followed by a NUL.
pub(crate) fn directory(env: &Env, view: &mut View<'_>, path: &str) -> Result<Vec<u8>, Error> {
    Ok(get_node_chk(env, view, path, PERM_READ)?.children_bytes())
}

/// `DIRECTORY_PART`: `<generation>\0` and the children list from byte `offset` on, as much
/// as fits in one payload; the final chunk ends with an extra NUL (`send_directory_part`).
pub(crate) fn directory_part(env: &Env, view: &mut View<'_>, path: &str, offset: usize) -> Result<Vec<u8>, Error> {
    let node = get_node_chk(env, view, path, PERM_READ)?;
    let children = node.children_bytes();
    let mut out = format!("{}", node.generation).into_bytes();
    out.push(0);
    if offset >= children.len() {
        out.push(0);
        return Ok(out);
    }
    let maxlen = XENSTORE_PAYLOAD_MAX - out.len() - 1;
    let mut len = 0;
    loop {
        let rest = &children[offset + len..];
        let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        if len + n >= maxlen {
            break;
        }
        len += n + 1;
        if offset + len >= children.len() {
            break;
        }
    }
    let end = (offset + len).min(children.len());
    out.extend_from_slice(&children[offset..end]);
    if end == children.len() {
        out.push(0);
    }
    Ok(out)
}

/// `GET_PERMS`: the permission entries, each followed by a NUL.
pub(crate) fn get_perms(env: &Env, view: &mut View<'_>, path: &str) -> Result<Vec<u8>, Error> {
    Ok(format_perms(&get_node_chk(env, view, path, PERM_READ)?.perms))
}

/// `SET_PERMS`: replaces the permissions. Only the owner (or a privileged caller) may, and
/// only a privileged caller may change the owner (`EPERM`).
pub(crate) fn set_perms(env: &Env, view: &mut View<'_>, path: &str, perms: Vec<Perm>) -> Result<(), Error> {
    let mut node = get_node_chk(env, view, path, PERM_WRITE | PERM_OWNER)?;
    if env.unprivileged() && perms.first().map(|p| p.domid) != Some(node.owner()) {
        return Err(Error::Perm);
    }
    let old = core::mem::replace(&mut node.perms, perms);
    env.check_size(&node)?;
    view.set(path, node);
    let mut all = vec![old];
    all.extend(current_perms(view, path));
    view.fire(path, Match::Subtree, all);
    Ok(())
}

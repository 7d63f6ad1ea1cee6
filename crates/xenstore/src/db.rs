//! The node database, transactions and the view the tree operations work on.
//!
//! Like C xenstored, the store is a flat map from canonical path to node, each node holding
//! its value, permissions, the names of its children (in creation order) and a generation
//! count. Every modification gives the node a new, globally unique generation.
//!
//! A transaction records every node it accesses (the first access is always a read, which
//! snapshots the node, or its absence, together with its generation). Later accesses in the
//! transaction see that snapshot, so its reads are repeatable and its writes stay private.
//! On commit every recorded generation is compared with the database: any difference means
//! another writer got in between and the commit fails with `EAGAIN`; otherwise the modified
//! nodes are written back. Because every node a transaction modifies was read first, a
//! successful commit turns a consistent tree into a consistent tree.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::perms::Perm;
use crate::{DomId, Error};

/// Generation of a node that does not exist (`NO_GENERATION`).
pub(crate) const NO_GEN: u64 = u64::MAX;

/// Bytes C xenstored accounts for a node besides data, children and permissions
/// (`struct node_hdr`).
const NODE_HDR_SIZE: usize = 16;
/// Bytes per permission entry (`struct xs_permissions`).
const PERM_SIZE: usize = 8;

/// One node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub value: Vec<u8>,
    /// Never empty: the first entry is the owner.
    pub perms: Vec<Perm>,
    /// Names (last components) of the children, in creation order.
    pub children: Vec<String>,
    pub generation: u64,
}

impl Node {
    pub fn new(value: Vec<u8>, perms: Vec<Perm>) -> Node {
        Node { value, perms, children: Vec::new(), generation: 0 }
    }

    /// The owning domain.
    pub fn owner(&self) -> DomId {
        self.perms.first().map_or(0, |p| p.domid)
    }

    /// The size the node-size quota is checked against (`calc_node_acc_size`).
    pub fn acc_size(&self) -> usize {
        NODE_HDR_SIZE + self.perms.len() * PERM_SIZE + self.value.len() + self.children_len()
    }

    /// Bytes of the children list on the wire (each name and its NUL).
    pub fn children_len(&self) -> usize {
        self.children.iter().map(|c| c.len() + 1).sum()
    }

    /// The children list on the wire: each name followed by a NUL.
    pub fn children_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.children_len());
        for c in &self.children {
            out.extend_from_slice(c.as_bytes());
            out.push(0);
        }
        out
    }
}

/// The global database.
#[derive(Debug, Default)]
pub(crate) struct Db {
    pub nodes: BTreeMap<String, Node>,
    /// Last generation handed out.
    generation: u64,
    /// Nodes owned per domain (the `nodes` quota is checked against this).
    pub counts: BTreeMap<DomId, u32>,
}

impl Db {
    pub fn next_gen(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn count(&self, domid: DomId) -> u32 {
        self.counts.get(&domid).copied().unwrap_or(0)
    }

    fn count_add(&mut self, domid: DomId, add: i64) {
        let old = i64::from(self.count(domid));
        let new = u32::try_from((old + add).max(0)).unwrap_or(u32::MAX);
        if new == 0 {
            self.counts.remove(&domid);
        } else {
            self.counts.insert(domid, new);
        }
    }

    /// Writes `node` at `path` with a new generation.
    pub fn put(&mut self, path: &str, mut node: Node) {
        node.generation = self.next_gen();
        let new_owner = node.owner();
        if let Some(old) = self.nodes.insert(String::from(path), node) {
            self.count_add(old.owner(), -1);
        }
        self.count_add(new_owner, 1);
    }

    /// Deletes the node at `path`.
    pub fn del(&mut self, path: &str) -> Option<Node> {
        let old = self.nodes.remove(path)?;
        self.count_add(old.owner(), -1);
        Some(old)
    }
}

/// How a modification event matches watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Watches on the path itself only (descendants removed by a recursive `RM`, special
    /// events).
    Exact,
    /// Watches on the path or any of its ancestors.
    Subtree,
}

/// A modification event to deliver to matching watches.
#[derive(Debug, Clone)]
pub(crate) struct Fire {
    pub path: String,
    pub kind: Match,
    /// A watcher gets the event if any of these permission sets lets it read (C xenstored's
    /// `watch_permitted`: the node, its parent, or the node's permissions before a change).
    pub perms: Vec<Vec<Perm>>,
}

/// A node recorded by a transaction.
#[derive(Debug, Clone)]
pub(crate) struct Accessed {
    pub path: String,
    /// The node as the transaction sees it (`None`: absent).
    pub node: Option<Node>,
    /// Its database generation when first read (`NO_GEN` if it did not exist).
    pub read_gen: u64,
    pub modified: bool,
    /// Its permissions when first read, for the watch permission check after commit.
    pub old_perms: Option<Vec<Perm>>,
    /// Watch event to fire on commit.
    pub fire: Option<Match>,
}

/// An open transaction.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub id: u32,
    pub accessed: Vec<Accessed>,
    index: BTreeMap<String, usize>,
    /// Change of the per-domain node counts if committed.
    pub delta: BTreeMap<DomId, i64>,
    /// A node was created (the node quota is then checked on commit).
    pub node_created: bool,
}

impl Transaction {
    pub fn new(id: u32) -> Transaction {
        Transaction { id, accessed: Vec::new(), index: BTreeMap::new(), delta: BTreeMap::new(), node_created: false }
    }

    fn entry(&self, path: &str) -> Option<&Accessed> {
        self.index.get(path).map(|&i| &self.accessed[i])
    }

    fn record(&mut self, db: &Db, path: &str) -> usize {
        if let Some(&i) = self.index.get(path) {
            return i;
        }
        let node = db.get(path).cloned();
        let i = self.accessed.len();
        self.accessed.push(Accessed {
            path: String::from(path),
            read_gen: node.as_ref().map_or(NO_GEN, |n| n.generation),
            old_perms: node.as_ref().map(|n| n.perms.clone()),
            node,
            modified: false,
            fire: None,
        });
        self.index.insert(String::from(path), i);
        i
    }

    fn delta_add(&mut self, domid: DomId, add: i64) {
        let d = self.delta.entry(domid).or_insert(0);
        *d += add;
        if *d == 0 {
            self.delta.remove(&domid);
        }
    }

    /// Internal consistency (for [`crate::Store::check`]).
    pub fn check(&self) -> Result<(), String> {
        if self.index.len() != self.accessed.len() {
            return Err(alloc::format!("transaction {}: index size mismatch", self.id));
        }
        for (path, &i) in &self.index {
            if self.accessed.get(i).map(|a| &a.path) != Some(path) {
                return Err(alloc::format!("transaction {}: bad index for {path}", self.id));
            }
        }
        Ok(())
    }
}

/// The tree as one request sees it: the database, or a transaction's view of it.
pub(crate) struct View<'a> {
    db: &'a mut Db,
    tx: Option<&'a mut Transaction>,
    /// Most nodes a transaction may record (`transaction-nodes` quota; 0: unlimited).
    tx_limit: usize,
    /// Events of modifications outside a transaction, to deliver after the request.
    fires: Vec<Fire>,
}

impl<'a> View<'a> {
    /// The database itself.
    pub fn global(db: &'a mut Db) -> View<'a> {
        View { db, tx: None, tx_limit: 0, fires: Vec::new() }
    }

    /// `tx`'s view of the database.
    pub fn transaction(db: &'a mut Db, tx: &'a mut Transaction, tx_limit: usize) -> View<'a> {
        View { db, tx: Some(tx), tx_limit, fires: Vec::new() }
    }

    /// The events to deliver (modifications outside transactions).
    pub fn into_fires(self) -> Vec<Fire> {
        self.fires
    }

    /// The node at `path` without recording an access.
    pub fn peek(&self, path: &str) -> Option<&Node> {
        if let Some(entry) = self.tx.as_ref().and_then(|tx| tx.entry(path)) {
            return entry.node.as_ref();
        }
        self.db.get(path)
    }

    /// The node at `path`, recording the access in a transaction (`ENOSPC` if that would
    /// exceed the nodes-per-transaction quota).
    pub fn get(&mut self, path: &str) -> Result<Option<Node>, Error> {
        let Some(tx) = self.tx.as_deref_mut() else {
            return Ok(self.db.get(path).cloned());
        };
        if tx.entry(path).is_none() && self.tx_limit != 0 && tx.accessed.len() >= self.tx_limit {
            return Err(Error::NoSpc);
        }
        let i = tx.record(self.db, path);
        Ok(tx.accessed[i].node.clone())
    }

    /// Nodes `domid` would own after this request's view is committed.
    pub fn count(&self, domid: DomId) -> i64 {
        let base = i64::from(self.db.count(domid));
        base + self.tx.as_ref().and_then(|tx| tx.delta.get(&domid)).copied().unwrap_or(0)
    }

    /// Writes `node` at `path` (a transaction must have read `path` before).
    pub fn set(&mut self, path: &str, mut node: Node) {
        let generation = self.db.next_gen();
        let Some(tx) = self.tx.as_deref_mut() else {
            self.db.put(path, node);
            return;
        };
        let i = tx.record(self.db, path);
        let new_owner = node.owner();
        match tx.accessed[i].node.as_ref().map(Node::owner) {
            Some(old_owner) => tx.delta_add(old_owner, -1),
            None => tx.node_created = true,
        }
        tx.delta_add(new_owner, 1);
        node.generation = generation;
        let entry = &mut tx.accessed[i];
        entry.node = Some(node);
        entry.modified = true;
    }

    /// Deletes the node at `path` (a transaction must have read `path` before).
    pub fn remove(&mut self, path: &str) {
        let Some(tx) = self.tx.as_deref_mut() else {
            self.db.del(path);
            return;
        };
        let i = tx.record(self.db, path);
        if let Some(old) = tx.accessed[i].node.take() {
            tx.delta_add(old.owner(), -1);
        }
        tx.accessed[i].modified = true;
    }

    /// A modification event for `path`: delivered after the request, or queued until the
    /// transaction commits (where the permission check uses the committed state).
    pub fn fire(&mut self, path: &str, kind: Match, perms: Vec<Vec<Perm>>) {
        let Some(tx) = self.tx.as_deref_mut() else {
            self.fires.push(Fire { path: String::from(path), kind, perms });
            return;
        };
        let i = tx.record(self.db, path);
        let entry = &mut tx.accessed[i];
        // A subtree event replaces an exact one, not the other way round (`queue_watches`).
        entry.fire = match (entry.fire, kind) {
            (Some(Match::Subtree), _) | (_, Match::Subtree) => Some(Match::Subtree),
            _ => Some(Match::Exact),
        };
    }
}

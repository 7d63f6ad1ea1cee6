//! The store: connections, domains, watches, transactions and request dispatch.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use xen_abi::xen::{DOMID_FIRST_RESERVED, DOMID_SELF};
use xen_abi::xs_wire::*;

use crate::db::{Db, Fire, Match, Node, Transaction, View, NO_GEN};
use crate::ops::{self, Env};
use crate::path::{self, canonicalize, is_child, is_special, parent_of, Canonical, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::perms::{parse_decimal, perm_for, Access, Caller, Perm, PERM_READ};
use crate::wire::{count_nuls, onearg, parse_header, strings, Message, HEADER_SIZE};
use crate::{DomId, Error};

/// Identifies one client connection (a domain's ring or a local client in the agent).
/// Allocated by the store ([`Store::connect`], [`Store::introduce_domain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u32);

/// What kind of client a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    /// A local client of the agent (its toolstack, backends): like a xenstored socket
    /// connection, created by [`Store::connect`].
    Local,
    /// A domain's shared ring, created by `INTRODUCE`, removed by `RELEASE`.
    Domain,
}

/// Per-domain limits (C xenstored's hard quotas, same defaults). They apply to unprivileged
/// domains only; 0 disables a limit. Each is an inclusive maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// `nodes`: nodes a domain may own (1000).
    pub nodes: u32,
    /// `node-size`: accounted bytes of one node: 16 + 8 per permission entry + value +
    /// children names with their NULs, as C xenstored counts (2048).
    pub node_size: u32,
    /// `watches`: watches per domain (128).
    pub watches: u32,
    /// `transactions`: open transactions per domain (10).
    pub transactions: u32,
    /// `transaction-nodes`: nodes one transaction may access (1024).
    pub transaction_nodes: u32,
    /// `node-permissions`: permission entries per node (5).
    pub permissions: u32,
    /// `path-max`: bytes of a path after `/local/domain/<domid>/`
    /// (`XENSTORE_REL_PATH_MAX`, 2048).
    pub path_max: u32,
}

impl Default for Quotas {
    fn default() -> Quotas {
        Quotas {
            nodes: 1000,
            node_size: 2048,
            watches: 128,
            transactions: 10,
            transaction_nodes: 1024,
            permissions: 5,
            path_max: XENSTORE_REL_PATH_MAX as u32,
        }
    }
}

impl Quotas {
    /// The quotas by their xenstored names (`CONTROL quota`).
    pub(crate) fn named(&self) -> [(&'static str, u32, &'static str); 7] {
        [
            ("nodes", self.nodes, "Nodes per domain"),
            ("watches", self.watches, "Watches per domain"),
            ("transactions", self.transactions, "Active transactions per domain"),
            ("transaction-nodes", self.transaction_nodes, "Max. number of accessed nodes per transaction"),
            ("node-permissions", self.permissions, "Max. number of permissions per node"),
            ("path-max", self.path_max, "Max. length of a node path"),
            ("node-size", self.node_size, "Max. size of a node"),
        ]
    }

    /// Sets the quota called `name` (xenstored's names; `permissions` is the Xen 4.17 name
    /// of `node-permissions`).
    pub(crate) fn set(&mut self, name: &[u8], value: u32) -> bool {
        let slot = match name {
            b"nodes" => &mut self.nodes,
            b"watches" => &mut self.watches,
            b"transactions" => &mut self.transactions,
            b"transaction-nodes" => &mut self.transaction_nodes,
            b"node-permissions" | b"permissions" => &mut self.permissions,
            b"path-max" => &mut self.path_max,
            b"node-size" => &mut self.node_size,
            _ => return false,
        };
        *slot = value;
        true
    }
}

/// Store configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    /// The privileged (control) domain: may do anything, owns the initial nodes (0).
    pub priv_domid: DomId,
    /// Limits for unprivileged domains.
    pub quotas: Quotas,
}

/// Something the agent must do after a call into the store, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` (a reply or an `XS_WATCH_EVENT`) on connection `conn`
    /// ([`Message::to_bytes`] gives the ring bytes).
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: Message,
    },
    /// A domain was introduced (`XS_INTRODUCE`): map its ring page (`gfn`, or grant
    /// `GNTTAB_RESERVED_XENSTORE`), bind event channel `port`, and feed its messages to
    /// [`Store::handle`] as `conn`. Also emitted when an introduced domain is introduced
    /// again: its connection was reset (watches and transactions dropped); rebind.
    Introduce {
        /// The domain.
        domid: DomId,
        /// Its connection.
        conn: ConnId,
        /// Ring page frame, as given (C xenstored ignores it and uses the grant).
        gfn: u64,
        /// The domain's unbound event channel for xenstore.
        port: u32,
    },
    /// A domain was released: unmap its ring and unbind its event channel; `conn` is gone.
    Release {
        /// The domain.
        domid: DomId,
        /// Its former connection.
        conn: ConnId,
    },
    /// A line for the agent's log (`CONTROL print`, request tracing after `CONTROL log on`).
    Log(String),
}

#[derive(Debug, Clone)]
struct Watch {
    /// Canonical path (or special path).
    node: String,
    token: Vec<u8>,
    /// Bytes to strip from event paths (relative watches report relative paths).
    prefix_len: usize,
}

#[derive(Debug)]
struct Conn {
    domid: DomId,
    kind: ConnKind,
    target: Option<DomId>,
    watches: Vec<Watch>,
    txs: BTreeMap<u32, Transaction>,
    next_tx: u32,
}

#[derive(Debug)]
struct Domain {
    conn: ConnId,
    shutdown: bool,
}

/// The xenstore: the tree, its connections and domains.
///
/// The agent drives it:
/// 1. [`Store::connect`] for each local client (dom0 toolstack, backends; privileged if its
///    domid is [`Config::priv_domid`]).
/// 2. [`Store::introduce_domain`] (or an `XS_INTRODUCE` request) for each new domain; the
///    resulting [`Output::Introduce`] names the connection of its ring.
/// 3. Each complete message read from a ring (see [`crate::frame_len`]) goes to
///    [`Store::handle`], which returns what to send (the reply, watch events to any
///    connection) and do.
/// 4. Domain shutdown and death ([`Store::domain_shutdown`], [`Store::release_domain`])
///    fire `@releaseDomain`.
///
/// Direct calls ([`Store::call`] and the typed helpers) queue their side effects; collect
/// them with [`Store::take_outputs`].
#[derive(Debug)]
pub struct Store {
    cfg: Config,
    pub(crate) db: Db,
    conns: BTreeMap<ConnId, Conn>,
    domains: BTreeMap<DomId, Domain>,
    next_conn: u32,
    out: Vec<Output>,
    /// Outputs that go after the reply of the current request (a watch's initial event).
    after: Vec<Output>,
    pub(crate) log_on: bool,
}

// Request flags (C xenstored's `wire_funcs`).
const FLAG_PRIV: u8 = 1;
const FLAG_NOTID: u8 = 2;

fn request_flags(ty: u32) -> Option<u8> {
    Some(match ty {
        XS_CONTROL | XS_INTRODUCE | XS_RELEASE | XS_IS_DOMAIN_INTRODUCED | XS_RESUME | XS_SET_TARGET => FLAG_PRIV,
        XS_WATCH | XS_UNWATCH => FLAG_NOTID,
        XS_DIRECTORY | XS_READ | XS_GET_PERMS | XS_TRANSACTION_START | XS_TRANSACTION_END | XS_GET_DOMAIN_PATH
        | XS_WRITE | XS_MKDIR | XS_RM | XS_SET_PERMS | XS_RESET_WATCHES | XS_DIRECTORY_PART => 0,
        // XS_WATCH_EVENT and XS_ERROR are replies only; 20 (RESTRICT) is gone.
        _ => return None,
    })
}

/// A domid argument (`parse_domid`, strict decimal, at most 65535).
fn parse_domid(s: &[u8]) -> Result<DomId, Error> {
    parse_decimal(s).and_then(|v| DomId::try_from(v).ok()).ok_or(Error::Inval)
}

/// `atoi`: leading decimal digits, saturating; anything else gives 0. A leading `-`
/// gives `usize::MAX` (C converts the negative `int` to a huge `unsigned`).
fn atoi_offset(s: &[u8]) -> usize {
    if s.first() == Some(&b'-') {
        return usize::MAX;
    }
    s.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0usize, |v, &b| v.saturating_mul(10).saturating_add(usize::from(b - b'0')))
}

const OK: &[u8] = b"OK\0";

impl Store {
    /// A store with C xenstored's initial nodes: `/`, `/tool`, `/tool/xenstored`,
    /// `@releaseDomain` and `@introduceDomain`, owned by the privileged domain with no
    /// access for others.
    pub fn new(cfg: Config) -> Store {
        let mut s = Store {
            cfg,
            db: Db::default(),
            conns: BTreeMap::new(),
            domains: BTreeMap::new(),
            next_conn: 1,
            out: Vec::new(),
            after: Vec::new(),
            log_on: false,
        };
        let perms = vec![Perm::new(cfg.priv_domid, Access::None)];
        let node = |children: &[&str]| {
            let mut n = Node::new(Vec::new(), perms.clone());
            n.children = children.iter().map(|c| String::from(*c)).collect();
            n
        };
        s.db.put("/", node(&["tool"]));
        s.db.put("/tool", node(&["xenstored"]));
        s.db.put("/tool/xenstored", node(&[]));
        s.db.put(RELEASE_DOMAIN, node(&[]));
        s.db.put(INTRODUCE_DOMAIN, node(&[]));
        s
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Changes the quotas (existing usage above a new limit is kept, like xenstored).
    pub fn set_quotas(&mut self, quotas: Quotas) {
        self.cfg.quotas = quotas;
    }

    pub(crate) fn quotas_mut(&mut self) -> &mut Quotas {
        &mut self.cfg.quotas
    }

    fn new_conn(&mut self, domid: DomId, kind: ConnKind) -> ConnId {
        while self.conns.contains_key(&ConnId(self.next_conn)) || self.next_conn == 0 {
            self.next_conn = self.next_conn.wrapping_add(1);
        }
        let id = ConnId(self.next_conn);
        self.next_conn = self.next_conn.wrapping_add(1);
        self.conns
            .insert(id, Conn { domid, kind, target: None, watches: Vec::new(), txs: BTreeMap::new(), next_tx: 1 });
        id
    }

    /// A new local connection acting as `domid` (privileged if `domid` is the privileged
    /// domain). Its relative paths are relative to `/local/domain/<domid>`.
    pub fn connect(&mut self, domid: DomId) -> ConnId {
        self.new_conn(domid, ConnKind::Local)
    }

    /// Closes a local connection (its watches and transactions go). Domain connections
    /// are closed by [`Store::release_domain`]; returns false for them and unknown ids.
    pub fn disconnect(&mut self, conn: ConnId) -> bool {
        match self.conns.get(&conn) {
            Some(c) if c.kind == ConnKind::Local => {
                self.conns.remove(&conn);
                true
            }
            _ => false,
        }
    }

    /// Drops all watches and transactions of `conn` (what C xenstored does to a connection
    /// it stops serving after a protocol error). Returns false for unknown ids.
    pub fn reset_connection(&mut self, conn: ConnId) -> bool {
        match self.conns.get_mut(&conn) {
            Some(c) => {
                c.watches.clear();
                c.txs.clear();
                true
            }
            None => false,
        }
    }

    /// The domain a connection acts as.
    pub fn conn_domid(&self, conn: ConnId) -> Option<DomId> {
        self.conns.get(&conn).map(|c| c.domid)
    }

    /// The kind of a connection.
    pub fn conn_kind(&self, conn: ConnId) -> Option<ConnKind> {
        self.conns.get(&conn).map(|c| c.kind)
    }

    /// The connection of an introduced domain.
    pub fn domain_conn(&self, domid: DomId) -> Option<ConnId> {
        self.domains.get(&domid).map(|d| d.conn)
    }

    /// Whether `domid` is introduced (the privileged domain always is).
    pub fn is_introduced(&self, domid: DomId) -> bool {
        domid == self.cfg.priv_domid || self.domains.contains_key(&domid)
    }

    /// The introduced domains (not the privileged one).
    pub fn domains(&self) -> impl Iterator<Item = DomId> + '_ {
        self.domains.keys().copied()
    }

    /// The value of a node (no permission check: for the agent's own inspection).
    pub fn value(&self, path: &str) -> Option<&[u8]> {
        self.db.get(path).map(|n| n.value.as_slice())
    }

    /// The children names of a node, in creation order.
    pub fn children(&self, path: &str) -> Option<&[String]> {
        self.db.get(path).map(|n| n.children.as_slice())
    }

    /// The permissions of a node.
    pub fn perms(&self, path: &str) -> Option<&[Perm]> {
        self.db.get(path).map(|n| n.perms.as_slice())
    }

    /// Number of nodes in the store (including the root and the special nodes).
    pub fn node_total(&self) -> usize {
        self.db.nodes.len()
    }

    /// Nodes owned by `domid`.
    pub fn node_count(&self, domid: DomId) -> u32 {
        self.db.count(domid)
    }

    /// Watches of all connections of `domid`.
    pub fn watch_count(&self, domid: DomId) -> usize {
        self.conns.values().filter(|c| c.domid == domid).map(|c| c.watches.len()).sum()
    }

    /// Open transactions of all connections of `domid`.
    pub fn transaction_count(&self, domid: DomId) -> usize {
        self.conns.values().filter(|c| c.domid == domid).map(|c| c.txs.len()).sum()
    }

    /// The outputs queued by direct calls (and not yet returned by [`Store::handle`]).
    pub fn take_outputs(&mut self) -> Vec<Output> {
        core::mem::take(&mut self.out)
    }

    fn caller(&self, conn: ConnId) -> Option<Caller> {
        let c = self.conns.get(&conn)?;
        Some(Caller { conn, domid: c.domid, privileged: c.domid == self.cfg.priv_domid, target: c.target })
    }

    pub(crate) fn log(&mut self, line: String) {
        self.out.push(Output::Log(line));
    }

    /// Processes one message from `conn`: `msg` is the header and payload exactly as read
    /// from the ring. Returns everything queued so far: the reply (exactly one
    /// [`Output::Send`] to `conn` with the request's `req_id` and `tx_id`, or an
    /// `XS_ERROR` one), watch events for any connection, and domain actions. A malformed
    /// message (short header, `len` over `XENSTORE_PAYLOAD_MAX` or not matching the bytes
    /// given) gets an `EINVAL` error and changes nothing. Messages on an unknown connection
    /// are dropped.
    pub fn handle(&mut self, conn: ConnId, msg: &[u8]) -> Vec<Output> {
        if self.conns.contains_key(&conn) {
            let reply = match Message::parse(msg) {
                Ok(req) => self.process(conn, &req),
                Err(e) => {
                    let mut raw = [0u8; HEADER_SIZE];
                    let n = msg.len().min(HEADER_SIZE);
                    raw[..n].copy_from_slice(&msg[..n]);
                    let hdr = parse_header(&raw).unwrap_or_default();
                    if self.log_on {
                        self.log(format!("conn {} malformed message: {e:?}", conn.0));
                    }
                    Message::error(hdr.req_id, hdr.tx_id, Error::Inval)
                }
            };
            self.out.push(Output::Send { conn, msg: reply });
            self.out.append(&mut self.after);
        }
        self.take_outputs()
    }

    /// Processes a parsed request from `conn` and returns the reply message; events and
    /// actions are queued in `out`, a watch's initial event in `after` (the caller moves it
    /// behind the reply).
    fn process(&mut self, conn: ConnId, req: &Message) -> Message {
        let result = match self.caller(conn) {
            Some(caller) => {
                if self.log_on {
                    let name = xs_type_name(req.type_).unwrap_or("?");
                    self.log(format!(
                        "conn {} dom{} IN {name} req {} tx {} len {}",
                        conn.0,
                        caller.domid,
                        req.req_id,
                        req.tx_id,
                        req.payload.len()
                    ));
                }
                self.dispatch(caller, req)
            }
            None => Err(Error::Inval),
        };
        match result {
            Ok(payload) if payload.len() <= XENSTORE_PAYLOAD_MAX => {
                Message::new(req.type_, req.req_id, req.tx_id, payload)
            }
            other => {
                self.after.clear();
                let err = other.err().unwrap_or(Error::TooBig);
                Message::error(req.req_id, req.tx_id, err)
            }
        }
    }

    /// Runs one request from `conn` and returns the reply payload or the error; events and
    /// actions are queued for [`Store::take_outputs`]. The payload is as on the wire
    /// (e.g. `b"path\0value"` for `XS_WRITE`).
    pub fn call(&mut self, conn: ConnId, type_: u32, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let req = Message::new(type_, 0, tx_id, payload.to_vec());
        let reply = self.process(conn, &req);
        self.out.append(&mut self.after);
        if reply.type_ == XS_ERROR {
            return Err(Error::from_name(&reply.payload).unwrap_or(Error::Inval));
        }
        Ok(reply.payload)
    }

    fn path_arg(&self, caller: &Caller, raw: Option<&[u8]>, allow_special: bool) -> Result<Canonical, Error> {
        canonicalize(caller, raw.ok_or(Error::Inval)?, allow_special, self.cfg.quotas.path_max)
    }

    fn dispatch(&mut self, caller: Caller, req: &Message) -> Result<Vec<u8>, Error> {
        let flags = request_flags(req.type_).ok_or(Error::NoSys)?;
        if flags & FLAG_PRIV != 0 && !caller.privileged {
            return Err(Error::Acces);
        }
        let tx_id = if flags & FLAG_NOTID != 0 { 0 } else { req.tx_id };
        if tx_id != 0 && !self.conns.get(&caller.conn).is_some_and(|c| c.txs.contains_key(&tx_id)) {
            return Err(Error::NoEnt);
        }
        let payload = req.payload.as_slice();
        match req.type_ {
            XS_READ => {
                let p = self.path_arg(&caller, onearg(payload), false)?;
                self.tree_op(&caller, tx_id, |env, v| ops::read(env, v, &p.path))
            }
            XS_WRITE => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(Error::Inval)?;
                let p = self.path_arg(&caller, Some(&payload[..nul]), false)?;
                let value = &payload[nul + 1..];
                self.tree_op(&caller, tx_id, |env, v| ops::write(env, v, &p.path, value))?;
                Ok(OK.to_vec())
            }
            XS_MKDIR => {
                let p = self.path_arg(&caller, onearg(payload), false)?;
                self.tree_op(&caller, tx_id, |env, v| ops::mkdir(env, v, &p.path))?;
                Ok(OK.to_vec())
            }
            XS_RM => {
                let p = self.path_arg(&caller, onearg(payload), false)?;
                self.tree_op(&caller, tx_id, |env, v| ops::rm(env, v, &p.path))?;
                Ok(OK.to_vec())
            }
            XS_DIRECTORY => {
                let p = self.path_arg(&caller, onearg(payload), false)?;
                self.tree_op(&caller, tx_id, |env, v| ops::directory(env, v, &p.path))
            }
            XS_DIRECTORY_PART => {
                if count_nuls(payload) != 2 {
                    return Err(Error::Inval);
                }
                let args = strings(payload);
                let p = self.path_arg(&caller, Some(args[0]), false)?;
                let offset = atoi_offset(args[1]);
                self.tree_op(&caller, tx_id, |env, v| ops::directory_part(env, v, &p.path, offset))
            }
            XS_GET_PERMS => {
                let p = self.path_arg(&caller, onearg(payload), true)?;
                self.tree_op(&caller, tx_id, |env, v| ops::get_perms(env, v, &p.path))
            }
            XS_SET_PERMS => {
                let args = strings(payload);
                if args.len() < 2 {
                    return Err(Error::Inval);
                }
                let limit = self.cfg.quotas.permissions as usize;
                if !caller.privileged && limit != 0 && args.len() - 1 > limit {
                    return Err(Error::NoSpc);
                }
                let perms = args[1..].iter().map(|s| Perm::parse(s)).collect::<Result<Vec<_>, _>>()?;
                let p = self.path_arg(&caller, Some(args[0]), true)?;
                self.tree_op(&caller, tx_id, |env, v| ops::set_perms(env, v, &p.path, perms))?;
                Ok(OK.to_vec())
            }
            XS_WATCH => self.do_watch(&caller, payload),
            XS_UNWATCH => self.do_unwatch(&caller, payload),
            XS_TRANSACTION_START => self.do_transaction_start(&caller, tx_id),
            XS_TRANSACTION_END => self.do_transaction_end(&caller, tx_id, payload),
            XS_INTRODUCE => {
                let args = strings(payload);
                if args.len() < 3 {
                    return Err(Error::Inval);
                }
                let domid = parse_domid(args[0])?;
                let gfn = parse_gfn(args[1]).ok_or(Error::Inval)?;
                let port = parse_decimal(args[2]).filter(|&p| p > 0 && p <= i32::MAX as u32).ok_or(Error::Inval)?;
                self.introduce_domain(domid, gfn, port)?;
                Ok(OK.to_vec())
            }
            XS_RELEASE => {
                let domid = parse_domid(onearg(payload).ok_or(Error::Inval)?)?;
                self.release_domain(domid)?;
                Ok(OK.to_vec())
            }
            XS_RESUME => {
                let domid = parse_domid(onearg(payload).ok_or(Error::Inval)?)?;
                if domid == self.cfg.priv_domid {
                    return Err(Error::Inval);
                }
                self.domains.get_mut(&domid).ok_or(Error::NoEnt)?.shutdown = false;
                Ok(OK.to_vec())
            }
            XS_GET_DOMAIN_PATH => {
                let domid = parse_domid(onearg(payload).ok_or(Error::Inval)?)?;
                let mut out = path::domain_path(domid).into_bytes();
                out.push(0);
                Ok(out)
            }
            XS_IS_DOMAIN_INTRODUCED => {
                let domid = parse_domid(onearg(payload).ok_or(Error::Inval)?)?;
                let yes = domid == DOMID_SELF || self.is_introduced(domid);
                Ok(if yes { b"T\0".to_vec() } else { b"F\0".to_vec() })
            }
            XS_SET_TARGET => {
                let args = strings(payload);
                if args.len() < 2 {
                    return Err(Error::Inval);
                }
                let domid = parse_domid(args[0])?;
                let target = parse_domid(args[1])?;
                if !self.domains.contains_key(&target) {
                    return Err(Error::NoEnt);
                }
                let conn = self.domains.get(&domid).ok_or(Error::NoEnt)?.conn;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.target = Some(target);
                }
                Ok(OK.to_vec())
            }
            XS_RESET_WATCHES => {
                self.reset_connection(caller.conn);
                Ok(OK.to_vec())
            }
            XS_CONTROL => self.do_control(payload),
            _ => Err(Error::NoSys),
        }
    }

    /// Runs a tree operation on the database (`tx_id` 0, events delivered at once) or in
    /// transaction `tx_id` of the caller (events queued until commit).
    fn tree_op<R>(
        &mut self,
        caller: &Caller,
        tx_id: u32,
        f: impl FnOnce(&Env, &mut View<'_>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let env = Env { caller: *caller, quotas: self.cfg.quotas };
        if tx_id == 0 {
            let mut view = View::global(&mut self.db);
            let r = f(&env, &mut view);
            let fires = view.into_fires();
            if r.is_ok() {
                self.deliver(&fires);
            }
            return r;
        }
        let conn = self.conns.get_mut(&caller.conn).ok_or(Error::NoEnt)?;
        let mut tx = conn.txs.remove(&tx_id).ok_or(Error::NoEnt)?;
        let limit = if caller.privileged { 0 } else { self.cfg.quotas.transaction_nodes as usize };
        let r = f(&env, &mut View::transaction(&mut self.db, &mut tx, limit));
        if let Some(conn) = self.conns.get_mut(&caller.conn) {
            conn.txs.insert(tx_id, tx);
        }
        r
    }

    /// Sends the events of `fires` to every connection with a matching watch that may
    /// read the node (`fire_watches`). Events longer than a payload are dropped.
    fn deliver(&mut self, fires: &[Fire]) {
        let priv_domid = self.cfg.priv_domid;
        for fire in fires {
            for (&id, conn) in &self.conns {
                let caller =
                    Caller { conn: id, domid: conn.domid, privileged: conn.domid == priv_domid, target: conn.target };
                if !fire.perms.iter().any(|p| perm_for(&caller, p) & PERM_READ != 0) {
                    continue;
                }
                for w in &conn.watches {
                    let hit = match fire.kind {
                        Match::Exact => w.node == fire.path,
                        Match::Subtree => is_child(&fire.path, &w.node),
                    };
                    if !hit {
                        continue;
                    }
                    let epath = fire.path.get(w.prefix_len..).unwrap_or(&fire.path);
                    if epath.len() + w.token.len() + 2 <= XENSTORE_PAYLOAD_MAX {
                        self.out.push(Output::Send { conn: id, msg: Message::watch_event(epath.as_bytes(), &w.token) });
                    }
                }
            }
        }
    }

    fn do_watch(&mut self, caller: &Caller, payload: &[u8]) -> Result<Vec<u8>, Error> {
        // A third argument (depth) needs XENSTORE_SERVER_FEATURE_WATCHDEPTH, not offered.
        let args = strings(payload);
        if args.len() != 2 {
            return Err(Error::Inval);
        }
        let p = self.path_arg(caller, Some(args[0]), true)?;
        let token = args[1].to_vec();
        let watches = self.watch_count(caller.domid);
        let limit = self.cfg.quotas.watches as usize;
        let conn = self.conns.get_mut(&caller.conn).ok_or(Error::Inval)?;
        if conn.watches.iter().any(|w| w.node == p.path && w.token == token) {
            return Err(Error::Exist);
        }
        if !caller.privileged && limit != 0 && watches + 1 > limit {
            return Err(Error::NoSpc);
        }
        let prefix_len = if p.relative { path::domain_path(caller.domid).len() + 1 } else { 0 };
        let epath = p.path.get(prefix_len..).unwrap_or(&p.path);
        // The initial event, after the reply (not subject to permissions).
        if epath.len() + token.len() + 2 <= XENSTORE_PAYLOAD_MAX {
            self.after.push(Output::Send { conn: caller.conn, msg: Message::watch_event(epath.as_bytes(), &token) });
        }
        conn.watches.push(Watch { node: p.path, token, prefix_len });
        Ok(OK.to_vec())
    }

    fn do_unwatch(&mut self, caller: &Caller, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let args = strings(payload);
        if args.len() != 2 {
            return Err(Error::Inval);
        }
        let p = self.path_arg(caller, Some(args[0]), true)?;
        let conn = self.conns.get_mut(&caller.conn).ok_or(Error::Inval)?;
        let i = conn.watches.iter().position(|w| w.node == p.path && w.token == args[1]).ok_or(Error::NoEnt)?;
        conn.watches.remove(i);
        Ok(OK.to_vec())
    }

    fn do_transaction_start(&mut self, caller: &Caller, tx_id: u32) -> Result<Vec<u8>, Error> {
        if tx_id != 0 {
            // No nested transactions.
            return Err(Error::Busy);
        }
        let open = self.transaction_count(caller.domid);
        let limit = self.cfg.quotas.transactions as usize;
        if !caller.privileged && limit != 0 && open + 1 > limit {
            return Err(Error::NoSpc);
        }
        let conn = self.conns.get_mut(&caller.conn).ok_or(Error::Inval)?;
        let mut id = conn.next_tx;
        while id == 0 || conn.txs.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        conn.next_tx = id.wrapping_add(1);
        conn.txs.insert(id, Transaction::new(id));
        let mut out = format!("{id}").into_bytes();
        out.push(0);
        Ok(out)
    }

    fn do_transaction_end(&mut self, caller: &Caller, tx_id: u32, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let commit = match onearg(payload) {
            Some(b"T") => true,
            Some(b"F") => false,
            _ => return Err(Error::Inval),
        };
        let conn = self.conns.get_mut(&caller.conn).ok_or(Error::Inval)?;
        let tx = conn.txs.remove(&tx_id).ok_or(Error::NoEnt)?;
        if commit {
            self.commit(caller, tx)?;
        }
        Ok(OK.to_vec())
    }

    /// Commits `tx` (`finalize_transaction`): `ENOSPC` if an unprivileged caller's new nodes
    /// exceed a node quota, `EAGAIN` if any node it accessed changed since; otherwise
    /// writes its modifications back and fires its queued events.
    fn commit(&mut self, caller: &Caller, tx: Transaction) -> Result<(), Error> {
        let limit = i64::from(self.cfg.quotas.nodes);
        if !caller.privileged && tx.node_created && limit != 0 {
            for (&domid, &delta) in &tx.delta {
                if delta > 0 && domid != self.cfg.priv_domid && i64::from(self.db.count(domid)) + delta > limit {
                    return Err(Error::NoSpc);
                }
            }
        }
        for a in &tx.accessed {
            if self.db.get(&a.path).map_or(NO_GEN, |n| n.generation) != a.read_gen {
                return Err(Error::Again);
            }
        }
        for a in &tx.accessed {
            if a.modified {
                match &a.node {
                    Some(node) => self.db.put(&a.path, node.clone()),
                    None => {
                        self.db.del(&a.path);
                    }
                }
            }
        }
        let mut fires = Vec::new();
        for a in tx.accessed {
            let Some(kind) = a.fire else { continue };
            let mut perms: Vec<Vec<Perm>> = a.old_perms.into_iter().collect();
            if let Some(node) = self.db.get(&a.path) {
                perms.push(node.perms.clone());
                if let Some(parent) = self.db.get(parent_of(&a.path)) {
                    perms.push(parent.perms.clone());
                }
            }
            fires.push(Fire { path: a.path, kind, perms });
        }
        self.deliver(&fires);
        Ok(())
    }

    /// Events for the special node `name` on the paths `paths` (`fire_special_watches`);
    /// readers of the special node (or of `/`) get them.
    fn fire_special(&mut self, name: &str, paths: &[String]) {
        let Some(node) = self.db.get(name) else { return };
        let mut perms = vec![node.perms.clone()];
        if let Some(root) = self.db.get("/") {
            perms.push(root.perms.clone());
        }
        let fires: Vec<Fire> =
            paths.iter().map(|p| Fire { path: p.clone(), kind: Match::Exact, perms: perms.clone() }).collect();
        self.deliver(&fires);
    }

    /// Introduces domain `domid` (as `XS_INTRODUCE` does): creates the connection for its
    /// ring, emits [`Output::Introduce`] and fires `@introduceDomain`. Introducing an
    /// introduced domain again resets its connection (no event). `EINVAL` for the
    /// privileged domain, reserved domids and port 0.
    pub fn introduce_domain(&mut self, domid: DomId, gfn: u64, port: u32) -> Result<ConnId, Error> {
        if domid == self.cfg.priv_domid || domid >= DOMID_FIRST_RESERVED || port == 0 {
            return Err(Error::Inval);
        }
        if let Some(d) = self.domains.get(&domid) {
            let conn = d.conn;
            self.reset_connection(conn);
            self.out.push(Output::Introduce { domid, conn, gfn, port });
            return Ok(conn);
        }
        let conn = self.new_conn(domid, ConnKind::Domain);
        self.domains.insert(domid, Domain { conn, shutdown: false });
        self.out.push(Output::Introduce { domid, conn, gfn, port });
        self.fire_special(INTRODUCE_DOMAIN, &[String::from(INTRODUCE_DOMAIN), format!("{INTRODUCE_DOMAIN}/{domid}")]);
        Ok(conn)
    }

    /// Releases domain `domid` (`XS_RELEASE`, or the agent on domain death): its connection
    /// goes (watches first, so it gets no events), the nodes it owns are removed with their
    /// subtrees (firing watches), its entries in other nodes' permissions are dropped,
    /// [`Output::Release`] is emitted and `@releaseDomain` fires. `ENOENT` if it is not
    /// introduced, `EINVAL` for the privileged domain.
    pub fn release_domain(&mut self, domid: DomId) -> Result<(), Error> {
        if domid == self.cfg.priv_domid {
            return Err(Error::Inval);
        }
        let d = self.domains.remove(&domid).ok_or(Error::NoEnt)?;
        self.conns.remove(&d.conn);
        for c in self.conns.values_mut() {
            if c.target == Some(domid) {
                c.target = None;
            }
        }
        self.remove_domain_nodes(domid);
        self.out.push(Output::Release { domid, conn: d.conn });
        self.fire_special(RELEASE_DOMAIN, &[String::from(RELEASE_DOMAIN), format!("{RELEASE_DOMAIN}/{domid}")]);
        Ok(())
    }

    /// Reports that domain `domid` shut down (crash, poweroff, suspend): fires
    /// `@releaseDomain` once until `XS_RESUME`. Returns whether it fired.
    pub fn domain_shutdown(&mut self, domid: DomId) -> bool {
        match self.domains.get_mut(&domid) {
            Some(d) if !d.shutdown => {
                d.shutdown = true;
                self.fire_special(RELEASE_DOMAIN, &[format!("{RELEASE_DOMAIN}/{domid}"), String::from(RELEASE_DOMAIN)]);
                true
            }
            _ => false,
        }
    }

    /// `domain_tree_remove`: deletes the nodes `domid` owns (with their subtrees) and
    /// removes its entries from the other nodes' permissions, so that a later domain with
    /// the same id inherits nothing. The root and the special nodes are never deleted;
    /// if the domain owns them, they go back to the privileged domain.
    fn remove_domain_nodes(&mut self, domid: DomId) {
        let owned: Vec<String> = self
            .db
            .nodes
            .iter()
            .filter(|(p, n)| n.owner() == domid && p.as_str() != "/" && !is_special(p))
            .map(|(p, _)| p.clone())
            .collect();
        let owned_set: alloc::collections::BTreeSet<&str> = owned.iter().map(String::as_str).collect();
        let tops: Vec<&String> = owned
            .iter()
            .filter(|p| {
                let mut q = p.as_str();
                loop {
                    q = parent_of(q);
                    if q == "/" {
                        return true;
                    }
                    if owned_set.contains(q) {
                        return false;
                    }
                }
            })
            .collect();
        for top in tops {
            let mut view = View::global(&mut self.db);
            if view.peek(top).is_some() && ops::rm_node(&mut view, top).is_ok() {
                let fires = view.into_fires();
                self.deliver(&fires);
            }
        }
        let changed: Vec<String> = self
            .db
            .nodes
            .iter()
            .filter(|(_, n)| n.owner() == domid || n.perms.iter().skip(1).any(|p| p.domid == domid))
            .map(|(p, _)| p.clone())
            .collect();
        for p in changed {
            if let Some(mut node) = self.db.get(&p).cloned() {
                if let Some(owner) = node.perms.first_mut() {
                    if owner.domid == domid {
                        owner.domid = self.cfg.priv_domid;
                    }
                }
                let mut i = 1;
                while i < node.perms.len() {
                    if node.perms[i].domid == domid {
                        node.perms.remove(i);
                    } else {
                        i += 1;
                    }
                }
                self.db.put(&p, node);
            }
        }
    }

    /// Checks the store's invariants: the root and special nodes exist; every node has
    /// permissions; every node other than the root and the special nodes is listed by its
    /// existing parent; every listed child exists, once; the per-domain node counts match
    /// the tree; transactions are well-formed; domains and their connections agree.
    pub fn check(&self) -> Result<(), String> {
        for p in ["/", INTRODUCE_DOMAIN, RELEASE_DOMAIN] {
            if self.db.get(p).is_none() {
                return Err(format!("{p} missing"));
            }
        }
        let mut counts: BTreeMap<DomId, u32> = BTreeMap::new();
        for (p, n) in &self.db.nodes {
            if n.perms.is_empty() {
                return Err(format!("{p} has no permissions"));
            }
            *counts.entry(n.owner()).or_insert(0) += 1;
            for (i, c) in n.children.iter().enumerate() {
                if c.is_empty() || c.contains('/') {
                    return Err(format!("{p} has bad child name {c:?}"));
                }
                if n.children[..i].contains(c) {
                    return Err(format!("{p} lists {c} twice"));
                }
                if self.db.get(&path::child_path(p, c)).is_none() {
                    return Err(format!("{p} lists missing child {c}"));
                }
            }
            if p != "/" && !is_special(p) {
                let parent = parent_of(p);
                match self.db.get(parent) {
                    None => return Err(format!("{p} has no parent")),
                    Some(pn) if !pn.children.iter().any(|c| c == path::basename(p)) => {
                        return Err(format!("{p} not listed by {parent}"))
                    }
                    Some(_) => {}
                }
            }
        }
        if counts != self.db.counts {
            return Err(format!("node counts {:?} != tree {:?}", self.db.counts, counts));
        }
        for (id, c) in &self.conns {
            for tx in c.txs.values() {
                tx.check()?;
            }
            if c.kind == ConnKind::Domain && self.domains.get(&c.domid).map(|d| d.conn) != Some(*id) {
                return Err(format!("connection {} of dom{} has no domain", id.0, c.domid));
            }
        }
        for (domid, d) in &self.domains {
            match self.conns.get(&d.conn) {
                Some(c) if c.domid == *domid && c.kind == ConnKind::Domain => {}
                _ => return Err(format!("dom{domid} has no connection")),
            }
        }
        Ok(())
    }
}

/// The `<gfn>` of `INTRODUCE`: decimal, possibly negative ("signed decimal (!)").
fn parse_gfn(s: &[u8]) -> Option<u64> {
    match s.strip_prefix(b"-") {
        Some(digits) => Some((parse_u64(digits)? as i64).wrapping_neg() as u64),
        None => parse_u64(s),
    }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(
        0u64,
        |v, &b| {
            if b.is_ascii_digit() {
                v.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        },
    )
}

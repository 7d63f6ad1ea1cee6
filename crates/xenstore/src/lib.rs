//! The store logic of Ferrovisor's xenstored, which runs in the dom0 agent.
//!
//! No I/O, no rings: the agent reads complete messages from each domain's xenstore ring
//! (or takes requests from its own local clients), hands them to [`Store::handle`] with the
//! connection they came from, and sends back what it returns. Behaviour follows Xen's
//! `docs/misc/xenstore.txt` and C xenstored (`tools/xenstored/`); the wire format and
//! constants are [`xen_abi::xs_wire`]'s.
//!
//! # Driving it
//!
//! ```
//! use xenstore::{Config, Output, Store, Message, Perm, Access};
//! use xen_abi::xs_wire::{XS_READ, XS_WATCH_EVENT};
//!
//! let mut store = Store::new(Config::default());
//! // The agent's own toolstack: a local, privileged (dom0) connection.
//! let tools = store.connect(0);
//! store.mkdir(tools, 0, "/local/domain/5").unwrap();
//! store.set_perms(tools, 0, "/local/domain/5", &[Perm::new(0, Access::None), Perm::new(5, Access::Read)]).unwrap();
//! // New nodes copy their parent's permissions: domain 5 may read its name.
//! store.write(tools, 0, "/local/domain/5/name", b"guest").unwrap();
//! // Introduce domain 5: the agent maps its ring and binds the event channel.
//! let dom5 = store.introduce_domain(5, 0x1234, 7).unwrap();
//! for out in store.take_outputs() {
//!     if let Output::Introduce { domid, conn, .. } = out {
//!         assert_eq!((domid, conn), (5, dom5));
//!     }
//! }
//! // A request read from domain 5's ring (relative path).
//! let req = Message::with_strings(XS_READ, 42, 0, &[b"name"]);
//! let outs = store.handle(dom5, &req.to_bytes());
//! assert_eq!(outs, vec![Output::Send { conn: dom5, msg: Message::new(XS_READ, 42, 0, b"guest".to_vec()) }]);
//! ```
//!
//! - Connections: [`Store::connect`] makes a local connection acting as a domain
//!   (privileged if that is [`Config::priv_domid`]); [`Store::introduce_domain`] (or an
//!   `XS_INTRODUCE` request from a privileged connection) makes a domain's ring connection
//!   and emits [`Output::Introduce`]; [`Store::release_domain`] (or `XS_RELEASE`) removes it,
//!   emits [`Output::Release`], deletes the domain's nodes and fires `@releaseDomain`.
//!   [`Store::domain_shutdown`] fires `@releaseDomain` when a domain shuts down or crashes.
//! - [`Store::handle`] returns, in order, everything to do: [`Output::Send`] of the reply to
//!   the requester (always exactly one per message, `XS_ERROR` with the errno name on
//!   failure), of `XS_WATCH_EVENT`s (`req_id` 0) to any connection, and domain actions.
//!   Watch events may go to connections other than the requester; the agent queues them
//!   per connection (bounding that queue is the agent's business).
//! - The agent's own code can use the typed helpers ([`Store::read`], [`Store::write`],
//!   [`Store::transaction_start`], …) and collect side effects with
//!   [`Store::take_outputs`].
//!
//! # Behaviour (checked against C xenstored)
//!
//! - Permissions ([`Perm`]): privileged domain all; owner all; else the domain's own entry
//!   or the first entry's default. New nodes copy their parent's permissions; an
//!   unprivileged creator becomes the owner. Only the owner changes permissions and only the
//!   privileged domain changes an owner (`EPERM`). Errors do not reveal nodes below an
//!   inaccessible parent (`EACCES` instead of `ENOENT`).
//! - Transactions: every node a transaction touches is snapshotted on first access with
//!   its generation; its reads and writes use the snapshots; commit fails with `EAGAIN` if
//!   any of those nodes changed since, else writes the changes back and fires the queued
//!   watch events.
//! - Watches fire for the path and its descendants, to watchers that may read the node or
//!   its parent (or could before a permission change), with relative paths for relative
//!   watches; a watch fires once when set.
//! - Quotas ([`Quotas`]) apply to unprivileged domains: exceeding one is `ENOSPC`, as in
//!   current C xenstored (oxenstored's `EQUOTA` is not in `xsd_errors[]`).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod client;
mod control;
mod db;
mod error;
mod ops;
mod path;
mod perms;
mod store;
mod wire;

pub use error::Error;
pub use path::{domain_path, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
pub use perms::{Access, Perm};
pub use store::{Config, ConnId, ConnKind, Output, Quotas, Store};
pub use wire::{frame_len, parse_header, FrameError, Message, HEADER_SIZE};

/// A domain id (`domid_t`).
pub type DomId = xen_abi::DomId;

#[cfg(test)]
mod tests;

//! The backend (server) side of two Xen shared-memory ring protocols, for the dom0 agent:
//!
//! - [`XenstoreConnection`]: one domain's xenstore ring (`struct xenstore_domain_interface`,
//!   `io/xs_wire.h`, `docs/misc/xenstore-ring.txt`): assembles complete requests from the
//!   `req` ring for the store (`xenstore::Store::handle`), queues replies and watch
//!   events (bounded) and writes them into the `rsp` ring as space frees up; handles
//!   `server_features`, the `connection` (reconnect) and `error` fields.
//! - [`ConsoleBackend`]: one domain's PV console ring (`struct xencons_interface`,
//!   `io/console.h`): drains the guest's `out` ring into a bounded [`History`] and a
//!   [`LineAssembler`], and writes input into the `in` ring.
//!
//! # What this crate owns, and what it does not
//!
//! It owns the ring arithmetic, the framing and the treatment of a misbehaving guest. It does
//! not map pages, bind or signal event channels, or talk to the store: the page comes in as a
//! [`SharedPage`] (the agent implements it with volatile accesses on the mapped page; tests
//! use [`MemPage`]), and every operation records whether the guest should be signalled
//! ([`XenstoreConnection::take_notify`], [`ConsoleBackend::take_notify`]).
//!
//! # The guest is untrusted
//!
//! The guest may change any byte of the page at any time. Every operation therefore reads
//! each ring index once, into a local snapshot, validates `prod - cons <= ring size` (wrapping
//! `u32` arithmetic) and only then touches data, with positions masked into the ring. Nothing
//! here panics on guest input. What happens on inconsistent indices follows Xen's daemons:
//! C xenstored stops serving the connection (`ignore_connection`, `XENSTORE_ERROR_RINGIDX`),
//! xenconsoled consumes nothing and tries again later.
//!
//! # Barriers
//!
//! [`SharedPage::fence`] is called where C xenstored and xenconsoled put `xen_mb()`: after
//! reading a ring's indices and before reading or writing its data, and after the data and
//! before publishing the new index. The agent's implementation must make its volatile
//! accesses ordered by it (the default, a sequentially consistent fence, is `mfence` on x86).
//!
//! # Example
//!
//! ```
//! use pv_rings::{ConsoleBackend, ConsoleConfig, MemPage, SharedPage};
//!
//! let page = MemPage::new(); // the agent: its volatile view of the mapped console frame
//! // The guest writes "hi\r\n" into `out` (offset 1024) and advances `out_prod` (offset 3084).
//! page.write_bytes(1024, b"hi\r\n");
//! page.write_u32(3084, 4);
//! let mut console = ConsoleBackend::new(ConsoleConfig::default());
//! let mut lines = Vec::new();
//! assert_eq!(console.drain_output(&page, |l| lines.push(l.to_vec())), Ok(4));
//! assert_eq!(lines, [b"hi".to_vec()]);
//! assert_eq!(page.read_u32(3080), 4); // out_cons
//! assert!(console.take_notify()); // signal the console event channel
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod console;
mod history;
mod page;
mod xenstore;

pub use console::{ConsoleBackend, ConsoleConfig, ConsoleIndexError};
pub use history::{History, LineAssembler};
pub use page::{MemPage, SharedPage, PAGE_SIZE};
pub use xenstore::{
    QueueError, XenstoreConfig, XenstoreConnection, XsRingError, DEFAULT_MAX_QUEUED_BYTES, MAX_MESSAGE_SIZE,
};

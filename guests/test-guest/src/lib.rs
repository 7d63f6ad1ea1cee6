//! The hardware-free part of Ferrovisor's test guest, host-tested with `cargo test`:
//! what the guest expects of the hypervisor, the guest command line, reading `hvm_start_info`
//! and its memory map, pvclock time scaling and a fixed-size line buffer. Xen's constants and
//! structures come from the `xen_abi` crate.
//!
//! The kernel itself is the `test-guest` binary (`src/main.rs`), a `no_std` PVH guest for
//! `x86_64-unknown-none`; see its documentation for the behaviours `test=NAME` selects.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod abi;
pub mod cmdline;
pub mod linebuf;
pub mod pvclock;
pub mod start_info;

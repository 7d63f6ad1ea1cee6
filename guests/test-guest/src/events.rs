//! Event channels the 2-level way, as a Xen HVM guest handles them: upcalls on
//! [`CALLBACK_VECTOR`] (`HVM_PARAM_CALLBACK_IRQ`), the bookkeeping in shared_info (vCPU 0's
//! `vcpu_info`, the pending and mask bitmaps), and waiting with `sti; hlt` bounded by the
//! one-shot timer (`set_timer_op`, delivered as `VIRQ_TIMER`).
//!
//! The guest runs with interrupts disabled except inside [`crate::arch::wait_for_interrupt`], so
//! an upcall is only taken there: code that checks [`take`] and then halts cannot miss an
//! event (the upcall stays pending and ends the halt).
//!
//! The upcall handler ([`upcall`]) clears `evtchn_upcall_pending`, takes the selector word,
//! and for each selected word acknowledges (clears) the pending bits that are not masked.
//! Each such port is recorded for [`take`], except the [echo port](set_echo), on which the
//! handler at once sends an event back (the `pong` side of the ping-pong).

use core::mem::offset_of;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use xen_abi::hvm::{callback_via_vector, HVM_PARAM_CALLBACK_IRQ};
use xen_abi::xen::{SharedInfo, VcpuInfo, EVTCHN_2L_NR_CHANNELS, VIRQ_TIMER};

use crate::traps::CALLBACK_VECTOR;
use crate::{arch, xen};

/// 64-bit words of the pending and mask bitmaps.
const WORDS: usize = EVTCHN_2L_NR_CHANNELS as usize / 64;
const PENDING: usize = offset_of!(SharedInfo, evtchn_pending);
const MASK: usize = offset_of!(SharedInfo, evtchn_mask);
/// vCPU 0's `vcpu_info` is at the start of shared_info.
const UPCALL_PENDING: usize = offset_of!(VcpuInfo, evtchn_upcall_pending);
const PENDING_SEL: usize = offset_of!(VcpuInfo, evtchn_pending_sel);

/// Ports the handler acknowledged and nobody has taken yet.
static SEEN: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];
/// Port echoed by the handler (0: none).
static ECHO_PORT: AtomicU32 = AtomicU32::new(0);
static ECHOES: AtomicU64 = AtomicU64::new(0);
static ECHO_FIRST_TSC: AtomicU64 = AtomicU64::new(0);
static ECHO_LAST_TSC: AtomicU64 = AtomicU64::new(0);
static ECHO_SEND_ERRORS: AtomicU64 = AtomicU64::new(0);
/// The port VIRQ_TIMER arrives on (0: not bound yet).
static TIMER_PORT: AtomicU32 = AtomicU32::new(0);

fn word(offset: usize) -> Option<&'static AtomicU64> {
    let base = xen::shared_info()?;
    // SAFETY: `offset` is an 8-byte aligned offset inside the shared_info page, which lives for
    // the guest's lifetime; Xen and the guest only access it atomically.
    Some(unsafe { &*((base + offset as u64) as *const AtomicU64) })
}

fn byte(offset: usize) -> Option<&'static AtomicU8> {
    let base = xen::shared_info()?;
    // SAFETY: as in `word`; bytes need no alignment.
    Some(unsafe { &*((base + offset as u64) as *const AtomicU8) })
}

fn split(port: u32) -> (usize, u64) {
    ((port / 64) as usize % WORDS, 1u64 << (port % 64))
}

/// Maps shared_info, binds `VIRQ_TIMER` on vCPU 0 and asks for upcalls on
/// [`CALLBACK_VECTOR`]. Returns the timer's port, or which step failed and its result.
pub fn setup() -> Result<u32, (&'static str, i64)> {
    let rc = xen::map_shared_info();
    if rc != 0 {
        return Err(("map_shared_info", rc));
    }
    let port = match TIMER_PORT.load(Ordering::Acquire) {
        0 => xen::bind_virq(VIRQ_TIMER, 0).map_err(|rc| ("bind_virq_timer", rc))?,
        p => p,
    };
    TIMER_PORT.store(port, Ordering::Release);
    let rc = xen::hvm_set_param(HVM_PARAM_CALLBACK_IRQ, callback_via_vector(CALLBACK_VECTOR));
    if rc != 0 {
        return Err(("set_callback_vector", rc));
    }
    Ok(port)
}

/// The upcall handler (interrupts are off): acknowledges every pending, unmasked port.
pub fn upcall() {
    let (Some(flag), Some(selector)) = (byte(UPCALL_PENDING), word(PENDING_SEL)) else {
        return;
    };
    loop {
        flag.store(0, Ordering::SeqCst);
        let mut sel = selector.swap(0, Ordering::AcqRel);
        while sel != 0 {
            let w = sel.trailing_zeros() as usize;
            sel &= sel - 1;
            let (Some(pending), Some(mask)) = (word(PENDING + w * 8), word(MASK + w * 8)) else {
                return;
            };
            let mut ready = pending.load(Ordering::Acquire) & !mask.load(Ordering::Acquire);
            while ready != 0 {
                let bit = ready.trailing_zeros();
                ready &= ready - 1;
                // Acknowledge first, so an event raised again meanwhile is not lost.
                pending.fetch_and(!(1u64 << bit), Ordering::AcqRel);
                deliver(w as u32 * 64 + bit);
            }
        }
        if flag.load(Ordering::SeqCst) == 0 {
            break;
        }
    }
}

fn deliver(port: u32) {
    if port != 0 && port == ECHO_PORT.load(Ordering::Relaxed) {
        if xen::evtchn_send(port) != 0 {
            ECHO_SEND_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        let now = arch::rdtsc();
        if ECHOES.fetch_add(1, Ordering::AcqRel) == 0 {
            ECHO_FIRST_TSC.store(now, Ordering::Relaxed);
        }
        ECHO_LAST_TSC.store(now, Ordering::Relaxed);
        return;
    }
    let (w, bit) = split(port);
    SEEN[w].fetch_or(bit, Ordering::AcqRel);
}

/// Whether the handler saw an event on `port` since the last call; forgets it.
pub fn take(port: u32) -> bool {
    let (w, bit) = split(port);
    SEEN[w].fetch_and(!bit, Ordering::AcqRel) & bit != 0
}

/// Makes the handler answer every event on `port` with an event on `port`.
pub fn set_echo(port: u32) {
    ECHO_PORT.store(port, Ordering::Release);
}

/// Events echoed so far, failed sends among them, and the TSC at the first and last echo.
pub fn echoes() -> (u64, u64, u64, u64) {
    (
        ECHOES.load(Ordering::Acquire),
        ECHO_SEND_ERRORS.load(Ordering::Acquire),
        ECHO_FIRST_TSC.load(Ordering::Relaxed),
        ECHO_LAST_TSC.load(Ordering::Relaxed),
    )
}

/// Whether `port`'s bit is set in shared_info's pending bitmap.
pub fn is_pending(port: u32) -> bool {
    let (w, bit) = split(port);
    word(PENDING + w * 8).is_some_and(|p| p.load(Ordering::Acquire) & bit != 0)
}

/// Clears `port`'s pending bit (acknowledges it without the handler).
pub fn clear_pending(port: u32) {
    let (w, bit) = split(port);
    if let Some(p) = word(PENDING + w * 8) {
        p.fetch_and(!bit, Ordering::AcqRel);
    }
}

/// Sets or clears `port`'s bit in shared_info's mask bitmap.
pub fn set_masked(port: u32, masked: bool) {
    let (w, bit) = split(port);
    if let Some(m) = word(MASK + w * 8) {
        if masked {
            m.fetch_or(bit, Ordering::AcqRel);
        } else {
            m.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

/// Whether vCPU 0's `evtchn_upcall_pending` is set.
pub fn upcall_pending() -> bool {
    byte(UPCALL_PENDING).is_some_and(|b| b.load(Ordering::Acquire) != 0)
}

/// Acknowledges every pending event now (as the upcall would) and forgets every event
/// seen so far: a clean slate for code that looked at the pending bits itself.
pub fn discard_all() {
    upcall();
    SEEN.iter().for_each(|w| w.store(0, Ordering::Release));
}

/// Halts (taking upcalls) until an event arrives or `deadline_ns` of system time passes;
/// needs [`setup`] (the timer VIRQ ends the halt at the deadline).
pub fn halt_until(deadline_ns: u64) {
    if xen::now_ns() >= deadline_ns {
        return;
    }
    xen::set_timer(deadline_ns);
    arch::wait_for_interrupt();
}

/// Waits up to `timeout_ns` for an event on `port`; true if one came (and takes it).
pub fn wait_for(port: u32, timeout_ns: u64) -> bool {
    let deadline = xen::now_ns().saturating_add(timeout_ns);
    loop {
        if take(port) {
            return true;
        }
        if xen::now_ns() >= deadline {
            return false;
        }
        halt_until(deadline);
    }
}

/// Sleeps `ns` of system time (events that arrive meanwhile are recorded).
pub fn sleep(ns: u64) {
    let deadline = xen::now_ns().saturating_add(ns);
    while xen::now_ns() < deadline {
        halt_until(deadline);
    }
}

//! Behaviours of two domains that talk through event channels and grants, coordinated
//! without xenstore: each knows the other's domain id (`peer=`), the allocating side offers
//! an unbound port (`EVTCHNOP_alloc_unbound`, remote = the peer) and prints it, and the binding
//! side tries `EVTCHNOP_bind_interdomain` on the peer's first ports (or on `port=`) until one
//! succeeds — the peer may not exist yet (`-ESRCH`) or not have offered it yet (`-EINVAL`).
//!
//! - `standby` offers a port to the `errors` domain and waits for its final event.
//! - `pong` offers a port and echoes every event on it from its upcall handler; `ping` binds
//!   it and times `rounds` round trips: `GUEST pingpong round_trips=N cycles_per_round_trip=C`,
//!   and the same figure as `BENCH name=evtchn_round_trip ...` for `cargo xtask bench`.
//! - `granter` grants the `mapper` a writable page (ref 8) and a read-only page (ref 9),
//!   leaves ref 10 invalid and grants ref 11 to another domain; the `mapper` is refused what
//!   was not granted, maps, writes, unmaps and copies; after each of three stages it signals
//!   the granter, which checks its pages and the entries' `GTF_reading`/`GTF_writing` pins
//!   and answers.

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

use test_guest::cmdline::Peer;
use test_guest::start_info;
use xen_abi::errno::ESRCH;
use xen_abi::event_channel::{EVTCHNSTAT_INTERDOMAIN, EVTCHNSTAT_UNBOUND};
use xen_abi::grant_table::*;
use xen_abi::memory::{XenAddToPhysmap, XENMAPSPACE_GRANT_TABLE, XENMEM_ADD_TO_PHYSMAP};
use xen_abi::xen::{DOMID_SELF, HYPERVISOR_GRANT_TABLE_OP, HYPERVISOR_MEMORY_OP};
use xen_abi::DomId;

use crate::checks::{Checks, Gntst, Rc};
use crate::page::{read_phys, write_phys, Page, PAGE_SIZE, PAGE_WORDS};
use crate::{arch, events, println, xen, BootInfo};

const MS: u64 = 1_000_000;
/// How long the binding side keeps trying.
pub const BIND_TIMEOUT_NS: u64 = 60_000 * MS;
/// How long a partner waits for the other side's next step.
const PARTNER_TIMEOUT_NS: u64 = 90_000 * MS;
/// How long `ping` waits for one reply.
const REPLY_TIMEOUT_NS: u64 = 5_000 * MS;
/// Ports tried when the peer's port is not given: Xen's first bucket (1..64).
const SCAN_PORTS: u32 = 63;
/// A domain id that is neither side's (a grant or port offered to it is someone else's).
const SOMEONE_ELSE: DomId = 0x7000;

/// Grant references the granter fills (0..8 are reserved for the toolstack).
const REF_RW: u32 = 8;
const REF_RO: u32 = 9;
const REF_INVALID: u32 = 10;
const REF_OTHER_DOMAIN: u32 = 11;
/// A reference beyond any grant table.
const BAD_GREF: u32 = 0x7fff_ffff;
/// What the mapper writes through its mapping (word 1 of the writable page).
const MARKER: u64 = 0x2121_5245_5050_414d;
const MARKER_WORD: usize = 1;
/// Where and how much the mapper writes into the writable grant with GNTTABOP_copy.
const COPY_OFFSET: u16 = 2048;
const COPY_LEN: u16 = 64;
/// Distance of the mapper's mappings from the end of its RAM.
const MAP_DISTANCE: u64 = 64 << 20;

fn rw_pattern(i: usize) -> u64 {
    0x5752_0000_0000_0000 | i as u64
}

fn ro_pattern(i: usize) -> u64 {
    0x4f52_0000_0000_0000 | i as u64
}

fn copy_pattern(i: usize) -> u64 {
    0x5043_0000_0000_0000 | i as u64
}

/// The writable page as the mapper leaves it: its marker, and the copied words.
fn rw_final(i: usize) -> u64 {
    let copied = COPY_OFFSET as usize / 8..(COPY_OFFSET + COPY_LEN) as usize / 8;
    match i {
        MARKER_WORD => MARKER,
        i if copied.contains(&i) => copy_pattern(i),
        i => rw_pattern(i),
    }
}

fn rw_mapped(i: usize) -> u64 {
    if i == MARKER_WORD {
        MARKER
    } else {
        rw_pattern(i)
    }
}

/// A bound interdomain channel.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The peer's port.
    pub remote_port: u32,
    /// Ours.
    pub local_port: u32,
}

/// Binds the port `peer` offers this domain (trying its first ports unless `port=` named
/// one) within `timeout_ns`, then takes the event Xen raises on a newly bound local port.
pub fn bind_peer(c: &mut Checks, peer: Peer, timeout_ns: u64) -> Option<Bound> {
    let start = xen::now_ns();
    let deadline = start.saturating_add(timeout_ns);
    let (mut tries, mut last) = (0u64, 0i64);
    let bound = 'search: loop {
        let ports = match peer.port {
            Some(p) => p..=p,
            None => 1..=SCAN_PORTS,
        };
        for port in ports {
            tries += 1;
            match xen::bind_interdomain(peer.domid, port) {
                Ok(local) => break 'search Some(Bound { remote_port: port, local_port: local }),
                // The peer does not exist yet.
                Err(rc) if rc == -ESRCH => {
                    last = rc;
                    break;
                }
                Err(rc) => last = rc,
            }
        }
        if xen::now_ns() >= deadline {
            break None;
        }
        events::sleep(2 * MS);
    };
    let waited_us = (xen::now_ns() - start) / 1000;
    let Some(b) = bound else {
        c.check(
            "bind_peer",
            false,
            format_args!("peer={} tries={tries} waited_us={waited_us} last_rc={}", peer.domid, Rc(last)),
        );
        return None;
    };
    c.check(
        "bind_peer",
        true,
        format_args!(
            "peer={} remote_port={} local_port={} tries={tries} waited_us={waited_us}",
            peer.domid, b.remote_port, b.local_port
        ),
    );
    // Xen marks the new local port pending, so that nothing sent before is lost.
    let initial = events::wait_for(b.local_port, 2_000 * MS);
    c.check("bind_raises_local_event", initial, format_args!("port={}", b.local_port));
    let (rc, s) = match xen::evtchn_status(DOMID_SELF, b.local_port) {
        Ok(s) => (0, s),
        Err(rc) => (rc, Default::default()),
    };
    c.check(
        "status_bound_port",
        rc == 0 && s.status == EVTCHNSTAT_INTERDOMAIN && s.u.interdomain() == (peer.domid, b.remote_port),
        format_args!(
            "rc={} status={} remote={:?} expected=interdomain({EVTCHNSTAT_INTERDOMAIN}) ({}, {})",
            Rc(rc),
            s.status,
            s.u.interdomain(),
            peer.domid,
            b.remote_port
        ),
    );
    Some(b)
}

/// Sets up event delivery; false (with a failed `setup` check) if that failed.
fn setup(c: &mut Checks) -> bool {
    match events::setup() {
        Ok(_) => true,
        Err((step, rc)) => c.check("setup", false, format_args!("step={step} rc={}", Rc(rc))),
    }
}

/// Offers `peer` a port (checking its status); `None` if the allocation failed.
fn offer(c: &mut Checks, peer: DomId) -> Option<u32> {
    match xen::alloc_unbound(DOMID_SELF, peer) {
        Ok(port) => {
            let (rc, s) = match xen::evtchn_status(DOMID_SELF, port) {
                Ok(s) => (0, s),
                Err(rc) => (rc, Default::default()),
            };
            // The peer, running on another CPU, may bind the port between the two calls.
            let (offered, taken_by_peer) = (
                s.status == EVTCHNSTAT_UNBOUND && s.u.unbound_dom() == peer,
                s.status == EVTCHNSTAT_INTERDOMAIN && s.u.interdomain().0 == peer,
            );
            c.check(
                "offer",
                rc == 0 && (offered || taken_by_peer),
                format_args!(
                    "port={port} peer={peer} status={} remote={} bound_by_peer={taken_by_peer}",
                    s.status,
                    s.u.unbound_dom()
                ),
            );
            Some(port)
        }
        Err(rc) => {
            c.check("offer", false, format_args!("peer={peer} rc={}", Rc(rc)));
            None
        }
    }
}

/// `test=standby`: offers `peer` (the `errors` domain) a port — and one to someone else just
/// before it — and powers off once `peer` signals it.
pub fn standby(peer: Peer) -> ! {
    let mut c = Checks::new("standby");
    if !setup(&mut c) {
        c.finish()
    }
    let someone_else = if peer.domid == SOMEONE_ELSE { SOMEONE_ELSE + 1 } else { SOMEONE_ELSE };
    let other = xen::alloc_unbound(DOMID_SELF, someone_else);
    let (rc, other_port) = match other {
        Ok(p) => (0, p),
        Err(rc) => (rc, 0),
    };
    c.check("offer_to_someone_else", rc == 0, format_args!("port={other_port} remote={someone_else} rc={}", Rc(rc)));
    let Some(port) = offer(&mut c, peer.domid) else { c.finish() };
    let signalled = events::wait_for(port, PARTNER_TIMEOUT_NS);
    c.check("signalled", signalled, format_args!("port={port} peer={}", peer.domid));
    if let Ok(p) = other {
        c.rc("close_other", xen::evtchn_close(p), 0);
    }
    c.finish()
}

/// `test=pong`: offers `peer` a port and echoes `rounds` events on it from the upcall handler.
pub fn pong(peer: Peer, rounds: u32) -> ! {
    let mut c = Checks::new("pong");
    if !setup(&mut c) {
        c.finish()
    }
    let Some(port) = offer(&mut c, peer.domid) else { c.finish() };
    events::set_echo(port);
    let deadline = xen::now_ns().saturating_add(PARTNER_TIMEOUT_NS);
    loop {
        let (n, ..) = events::echoes();
        if n >= u64::from(rounds) || xen::now_ns() >= deadline {
            break;
        }
        events::halt_until(deadline);
    }
    events::set_echo(0);
    let (n, send_errors, first, last) = events::echoes();
    let per = if n > 1 { (last - first) / (n - 1) } else { 0 };
    println!(
        "GUEST pingpong round_trips={n} cycles_per_round_trip={per} role=pong port={port} tsc_khz={}",
        xen::tsc_khz()
    );
    c.check(
        "round_trips",
        n == u64::from(rounds) && send_errors == 0,
        format_args!("echoed={n} expected={rounds} send_errors={send_errors}"),
    );
    c.finish()
}

/// `test=ping`: binds the port `peer` offers and times `rounds` round trips.
pub fn ping(peer: Peer, rounds: u32) -> ! {
    let mut c = Checks::new("ping");
    if !setup(&mut c) {
        c.finish()
    }
    let Some(b) = bind_peer(&mut c, peer, BIND_TIMEOUT_NS) else { c.finish() };
    let (mut done, mut min) = (0u64, u64::MAX);
    let start = arch::rdtsc();
    for round in 0..rounds {
        let t0 = arch::rdtsc();
        let rc = xen::evtchn_send(b.local_port);
        if rc != 0 {
            c.check("send", false, format_args!("round={round} rc={}", Rc(rc)));
            break;
        }
        if !events::wait_for(b.local_port, REPLY_TIMEOUT_NS) {
            c.check("reply", false, format_args!("round={round} no reply within 5 s"));
            break;
        }
        min = min.min(arch::rdtsc() - t0);
        done += 1;
    }
    let total = arch::rdtsc() - start;
    let per = total / done.max(1);
    println!(
        "GUEST pingpong round_trips={done} cycles_per_round_trip={per} role=ping min_cycles={} tsc_khz={} \
         remote_port={} local_port={}",
        if done == 0 { 0 } else { min },
        xen::tsc_khz(),
        b.remote_port,
        b.local_port
    );
    if done > 0 {
        crate::bench::report("evtchn_round_trip", per, done, Some(crate::bench::BARE));
    }
    c.check("round_trips", done == u64::from(rounds), format_args!("done={done} expected={rounds}"));
    c.finish()
}

static GRANT_FRAME: Page = Page::new();
static DATA_RW: Page = Page::new();
static DATA_RO: Page = Page::new();

fn entry_header(gref: u32) -> &'static AtomicU16 {
    assert!(gref < (PAGE_SIZE / GrantEntryV1::SIZE) as u32);
    // SAFETY: entry `gref` lies in the grant frame (checked above); `flags` is its first,
    // 2-byte aligned field; Xen updates it with atomic compare-exchange, as we do.
    unsafe { &*((GRANT_FRAME.addr() + u64::from(gref) * GrantEntryV1::SIZE as u64) as *const AtomicU16) }
}

/// `XENMEM_add_to_physmap(XENMAPSPACE_grant_table, idx 0)` onto [`GRANT_FRAME`]: this
/// domain's first grant-table frame, which [`write_entry`] fills.
pub fn map_grant_frame() -> i64 {
    let mut xatp =
        XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_GRANT_TABLE, idx: 0, gpfn: GRANT_FRAME.gfn() };
    xen::op(HYPERVISOR_MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &mut xatp)
}

/// Writes grant entry `gref` the way Linux does: frame and domain first, then the flags
/// with release ordering, so the hypervisor never sees valid flags with stale contents.
pub fn write_entry(gref: u32, domid: DomId, frame: u64, flags: u16) {
    let at = GRANT_FRAME.addr() + u64::from(gref) * GrantEntryV1::SIZE as u64;
    // SAFETY: the entry lies in the grant frame (`entry_header` checks the index); `domid`
    // is at +2 (2-byte aligned) and `frame` at +4 (4-byte aligned); atomics, as Xen reads them.
    unsafe {
        (*((at + 4) as *const AtomicU32)).store(frame as u32, Ordering::Relaxed);
        (*((at + 2) as *const AtomicU16)).store(domid, Ordering::Relaxed);
    }
    entry_header(gref).store(flags, Ordering::Release);
}

fn pins(gref: u32) -> (bool, bool) {
    let flags = entry_header(gref).load(Ordering::Acquire);
    (flags & GTF_READING != 0, flags & GTF_WRITING != 0)
}

/// `test=granter`: grants `peer` two pages and checks, after each of the mapper's stages,
/// what it did.
pub fn granter(peer: Peer) -> ! {
    let mut c = Checks::new("granter");
    if !setup(&mut c) {
        c.finish()
    }
    let me = xen::domid().unwrap_or(0) as DomId;
    if !c.rc("map_grant_frame", map_grant_frame(), 0) {
        c.finish()
    }
    let mut q = GnttabQuerySize { dom: DOMID_SELF, ..GnttabQuerySize::default() };
    let rc = xen::hypercall(HYPERVISOR_GRANT_TABLE_OP, GNTTABOP_QUERY_SIZE, &mut q as *mut _ as u64, 1, 0, 0);
    c.check(
        "query_size",
        rc == 0 && q.status == GNTST_OKAY && q.nr_frames >= 1,
        format_args!(
            "rc={} status={} nr_frames={} max_nr_frames={}",
            Rc(rc),
            Gntst(q.status),
            q.nr_frames,
            q.max_nr_frames
        ),
    );
    DATA_RW.fill(rw_pattern);
    DATA_RO.fill(ro_pattern);
    write_entry(REF_RW, peer.domid, DATA_RW.gfn(), GTF_PERMIT_ACCESS);
    write_entry(REF_RO, peer.domid, DATA_RO.gfn(), GTF_PERMIT_ACCESS | GTF_READONLY);
    write_entry(REF_INVALID, peer.domid, DATA_RW.gfn(), GTF_INVALID);
    write_entry(REF_OTHER_DOMAIN, me, DATA_RW.gfn(), GTF_PERMIT_ACCESS);
    // Offered only now that the grants are in place: a bound channel means they are.
    let Some(port) = offer(&mut c, peer.domid) else { c.finish() };
    println!(
        "GUEST granter grants rw={REF_RW} ro={REF_RO} invalid={REF_INVALID} other_domain={REF_OTHER_DOMAIN} \
         rw_frame={:#x} ro_frame={:#x}",
        DATA_RW.gfn(),
        DATA_RO.gfn()
    );

    // Stage 1: the writable page is mapped twice, the read-only one once; the mapper wrote
    // its marker through the mapping.
    if !c.check("stage1", events::wait_for(port, PARTNER_TIMEOUT_NS), format_args!("event on port {port}")) {
        c.finish()
    }
    c.check(
        "mapper_write_landed",
        DATA_RW.read(MARKER_WORD) == MARKER,
        format_args!("word{MARKER_WORD}={:#x} expected={MARKER:#x}", DATA_RW.read(MARKER_WORD)),
    );
    c.check("rw_entry_pinned", pins(REF_RW) == (true, true), format_args!("reading_writing={:?}", pins(REF_RW)));
    c.check("ro_entry_pinned", pins(REF_RO) == (true, false), format_args!("reading_writing={:?}", pins(REF_RO)));
    c.rc("stage1_reply", xen::evtchn_send(port), 0);

    // Stage 2: one of the two writable mappings and the read-only one are gone.
    if !c.check("stage2", events::wait_for(port, PARTNER_TIMEOUT_NS), format_args!("event on port {port}")) {
        c.finish()
    }
    c.check(
        "rw_entry_still_pinned",
        pins(REF_RW) == (true, true),
        format_args!("reading_writing={:?} expected=(true, true): one mapping is left", pins(REF_RW)),
    );
    c.check("ro_entry_released", pins(REF_RO) == (false, false), format_args!("reading_writing={:?}", pins(REF_RO)));
    c.rc("stage2_reply", xen::evtchn_send(port), 0);

    // Stage 3: everything unmapped; the mapper copied from both pages and into the writable one.
    if !c.check("stage3", events::wait_for(port, PARTNER_TIMEOUT_NS), format_args!("event on port {port}")) {
        c.finish()
    }
    c.check("rw_entry_released", pins(REF_RW) == (false, false), format_args!("reading_writing={:?}", pins(REF_RW)));
    c.check(
        "ro_entry_released_still",
        pins(REF_RO) == (false, false),
        format_args!("reading_writing={:?}", pins(REF_RO)),
    );
    let rw = DATA_RW.mismatch(rw_final);
    c.check("rw_page_contents", rw.is_none(), format_args!("first_mismatch={rw:?} (word, value)"));
    let ro = DATA_RO.mismatch(ro_pattern);
    c.check("ro_page_untouched", ro.is_none(), format_args!("first_mismatch={ro:?} (word, value)"));
    // Ending access the way Linux does: only if no pin is left.
    let revoked = entry_header(REF_RW)
        .compare_exchange(GTF_PERMIT_ACCESS, GTF_INVALID, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    c.check("revoke_rw_grant", revoked, format_args!("flags={:#x}", entry_header(REF_RW).load(Ordering::Acquire)));
    c.rc("stage3_reply", xen::evtchn_send(port), 0);
    c.finish()
}

fn map(dom: DomId, gref: u32, flags: u32, host_addr: u64) -> (i64, GnttabMapGrantRef) {
    let mut op = GnttabMapGrantRef { host_addr, flags, ref_: gref, dom, ..GnttabMapGrantRef::default() };
    let rc = xen::hypercall(HYPERVISOR_GRANT_TABLE_OP, GNTTABOP_MAP_GRANT_REF, &mut op as *mut _ as u64, 1, 0, 0);
    (rc, op)
}

fn unmap(host_addr: u64, handle: u32) -> (i64, i16) {
    let mut op = GnttabUnmapGrantRef { host_addr, dev_bus_addr: 0, handle, status: 1 };
    let rc = xen::hypercall(HYPERVISOR_GRANT_TABLE_OP, GNTTABOP_UNMAP_GRANT_REF, &mut op as *mut _ as u64, 1, 0, 0);
    (rc, op.status)
}

/// One `GNTTABOP_copy` of `len` bytes: the hypercall's result and the op's status.
pub fn copy(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> (i64, i16) {
    let mut op = GnttabCopy { source, dest, len, flags, status: 1 };
    let rc = xen::hypercall(HYPERVISOR_GRANT_TABLE_OP, GNTTABOP_COPY, &mut op as *mut _ as u64, 1, 0, 0);
    (rc, op.status)
}

/// A copy endpoint: grant `gref` of `dom`.
pub fn gref(dom: DomId, gref: u32, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: GnttabCopyPtrU::from_gref(gref), domid: dom, offset }
}

/// A copy endpoint: one of this domain's own pages (by frame, `DOMID_SELF`).
pub fn own(page: &Page, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr { u: GnttabCopyPtrU::from_gmfn(page.gfn()), domid: DOMID_SELF, offset }
}

static COPY_IN: Page = Page::new();
static COPY_OUT: Page = Page::new();

/// A map that must be refused: checks the status and undoes it if it was not.
fn refused_map(c: &mut Checks, name: &str, dom: DomId, gref: u32, flags: u32, at: u64, expected: i16) {
    let (rc, op) = map(dom, gref, flags, at);
    c.gntst(name, rc, op.status, expected);
    if rc == 0 && op.status == GNTST_OKAY {
        unmap(at, op.handle);
    }
}

/// Sends the granter the end of stage `n` and waits for its answer.
fn stage(c: &mut Checks, port: u32, n: u32) -> bool {
    let rc = xen::evtchn_send(port);
    let answered = rc == 0 && events::wait_for(port, PARTNER_TIMEOUT_NS);
    c.check(format_args!("stage{n}_acknowledged"), answered, format_args!("send_rc={}", Rc(rc)))
}

/// `test=mapper`: is refused what `peer` did not grant, then maps, writes, unmaps and copies
/// what it did, in three stages the granter checks.
pub fn mapper(boot: &BootInfo, peer: Peer) -> ! {
    let mut c = Checks::new("mapper");
    if !setup(&mut c) {
        c.finish()
    }
    let Some(ram_end) = start_info::ram_end(boot.memmap().iter().copied()) else {
        c.check("memory_map", false, format_args!("no RAM in the memory map"));
        c.finish()
    };
    // Free guest-physical pages well above RAM (and the special pages after it), inside the
    // 4 GiB the boot stub identity-maps.
    let base = (ram_end + MAP_DISTANCE).next_multiple_of(2 << 20);
    let (at_a, at_a2, at_b, at_c) = (base, base + 0x1000, base + 0x2000, base + 0x3000);
    let Some(b) = bind_peer(&mut c, peer, BIND_TIMEOUT_NS) else { c.finish() };
    let g = peer.domid;

    // What was not granted, or not that way: Xen's _set_status_v1 refuses with
    // GNTST_general_error.
    refused_map(&mut c, "map_invalid_entry", g, REF_INVALID, GNTMAP_HOST_MAP, at_a, GNTST_GENERAL_ERROR);
    refused_map(
        &mut c,
        "map_invalid_entry_readonly",
        g,
        REF_INVALID,
        GNTMAP_HOST_MAP | GNTMAP_READONLY,
        at_a,
        GNTST_GENERAL_ERROR,
    );
    refused_map(
        &mut c,
        "map_granted_to_another_domain",
        g,
        REF_OTHER_DOMAIN,
        GNTMAP_HOST_MAP,
        at_a,
        GNTST_GENERAL_ERROR,
    );
    refused_map(&mut c, "map_readonly_grant_writable", g, REF_RO, GNTMAP_HOST_MAP, at_a, GNTST_GENERAL_ERROR);
    refused_map(&mut c, "map_ref_beyond_table", g, BAD_GREF, GNTMAP_HOST_MAP, at_a, GNTST_BAD_GNTREF);
    COPY_OUT.fill(copy_pattern);
    let (rc, st) = copy(own(&COPY_OUT, 0), gref(g, REF_RO, 0), 64, GNTCOPY_DEST_GREF);
    c.gntst("copy_into_readonly_grant", rc, st, GNTST_GENERAL_ERROR);
    let (rc, st) = copy(gref(g, REF_INVALID, 0), own(&COPY_IN, 0), 64, GNTCOPY_SOURCE_GREF);
    c.gntst("copy_from_invalid_entry", rc, st, GNTST_GENERAL_ERROR);
    let (rc, st) = copy(gref(g, REF_OTHER_DOMAIN, 0), own(&COPY_IN, 0), 64, GNTCOPY_SOURCE_GREF);
    c.gntst("copy_from_grant_to_another_domain", rc, st, GNTST_GENERAL_ERROR);
    let (rc, st) = copy(gref(g, REF_RW, 4000), own(&COPY_IN, 0), 200, GNTCOPY_SOURCE_GREF);
    c.gntst("copy_beyond_page", rc, st, GNTST_BAD_COPY_ARG);

    // Stage 1: the writable page twice, the read-only page once.
    let (rc, a) = map(g, REF_RW, GNTMAP_HOST_MAP, at_a);
    let a_ok = c.gntst("map_rw", rc, a.status, GNTST_OKAY);
    if a_ok {
        // SAFETY: the hypervisor just mapped the granted page at `at_a`, inside the guest's
        // identity map; it stays mapped until we unmap it.
        let (first, last) = unsafe { (read_phys(at_a), read_phys(at_a + 8 * (PAGE_WORDS as u64 - 1))) };
        c.check(
            "read_rw_mapping",
            first == rw_pattern(0) && last == rw_pattern(PAGE_WORDS - 1),
            format_args!("first={first:#x} last={last:#x}"),
        );
        // SAFETY: as above; the grant is writable.
        unsafe { write_phys(at_a + 8 * MARKER_WORD as u64, MARKER) };
    }
    let (rc, a2) = map(g, REF_RW, GNTMAP_HOST_MAP, at_a2);
    let a2_ok = c.gntst("map_rw_again", rc, a2.status, GNTST_OKAY);
    if a2_ok {
        // SAFETY: mapped just now at `at_a2`, as above.
        let word = unsafe { read_phys(at_a2 + 8 * MARKER_WORD as u64) };
        c.check("second_mapping_same_page", word == MARKER, format_args!("word{MARKER_WORD}={word:#x}"));
    }
    let (rc, ro) = map(g, REF_RO, GNTMAP_HOST_MAP | GNTMAP_READONLY, at_b);
    let ro_ok = c.gntst("map_ro", rc, ro.status, GNTST_OKAY);
    if ro_ok {
        // SAFETY: mapped read-only just now at `at_b`; we only read it.
        let (first, last) = unsafe { (read_phys(at_b), read_phys(at_b + 8 * (PAGE_WORDS as u64 - 1))) };
        c.check(
            "read_ro_mapping",
            first == ro_pattern(0) && last == ro_pattern(PAGE_WORDS - 1),
            format_args!("first={first:#x} last={last:#x}"),
        );
    }
    // Xen maps at host_addr >> 12: the address need not be page-aligned.
    let (rc, unaligned) = map(g, REF_RW, GNTMAP_HOST_MAP | GNTMAP_READONLY, at_c + 0x123);
    if c.gntst("map_unaligned_host_addr", rc, unaligned.status, GNTST_OKAY) {
        let (rc, st) = unmap(at_c + 0x123, unaligned.handle);
        c.gntst("unmap_unaligned_host_addr", rc, st, GNTST_OKAY);
    }
    if !stage(&mut c, b.local_port, 1) {
        c.finish()
    }

    // Stage 2: the first writable mapping and the read-only one go.
    if a_ok {
        let (rc, st) = unmap(at_b, a.handle);
        c.gntst("unmap_wrong_address", rc, st, GNTST_GENERAL_ERROR);
        let (rc, st) = unmap(at_a, a.handle);
        c.gntst("unmap_rw", rc, st, GNTST_OKAY);
        let (rc, st) = unmap(at_a, a.handle);
        c.gntst("unmap_rw_twice", rc, st, GNTST_BAD_HANDLE);
    }
    if ro_ok {
        let (rc, st) = unmap(at_b, ro.handle);
        c.gntst("unmap_ro", rc, st, GNTST_OKAY);
    }
    if a2_ok {
        // SAFETY: the second mapping is still in place.
        let word = unsafe { read_phys(at_a2 + 8 * MARKER_WORD as u64) };
        c.check("second_mapping_survives", word == MARKER, format_args!("word{MARKER_WORD}={word:#x}"));
    }
    if !stage(&mut c, b.local_port, 2) {
        c.finish()
    }

    // Stage 3: nothing mapped; copies from both grants and into the writable one.
    if a2_ok {
        let (rc, st) = unmap(at_a2, a2.handle);
        c.gntst("unmap_rw_again", rc, st, GNTST_OKAY);
    }
    let (rc, st) = unmap(at_a, 0xdead_beef);
    c.gntst("unmap_bad_handle", rc, st, GNTST_BAD_HANDLE);
    let (rc, st) = copy(gref(g, REF_RO, 0), own(&COPY_IN, 0), PAGE_SIZE as u16, GNTCOPY_SOURCE_GREF);
    let bad = COPY_IN.mismatch(ro_pattern);
    c.check(
        "copy_from_ro_grant",
        rc == 0 && st == GNTST_OKAY && bad.is_none(),
        format_args!("rc={} status={} first_mismatch={bad:?}", Rc(rc), Gntst(st)),
    );
    let (rc, st) = copy(gref(g, REF_RW, 0), own(&COPY_IN, 0), PAGE_SIZE as u16, GNTCOPY_SOURCE_GREF);
    let bad = COPY_IN.mismatch(rw_mapped);
    c.check(
        "copy_from_rw_grant",
        rc == 0 && st == GNTST_OKAY && bad.is_none(),
        format_args!("rc={} status={} first_mismatch={bad:?}", Rc(rc), Gntst(st)),
    );
    let (rc, st) = copy(own(&COPY_OUT, COPY_OFFSET), gref(g, REF_RW, COPY_OFFSET), COPY_LEN, GNTCOPY_DEST_GREF);
    c.gntst("copy_into_rw_grant", rc, st, GNTST_OKAY);
    stage(&mut c, b.local_port, 3);
    c.finish()
}

//! `test=ring-echo`: the PV console ring from the guest's side (`struct xencons_interface`,
//! found through `HVM_PARAM_CONSOLE_PFN` and `HVM_PARAM_CONSOLE_EVTCHN`, as Linux's hvc_xen
//! finds it). Output goes into `out`; input arrives in `in` from the console backend (the
//! dom0 agent forwards what is typed on the host console).

use xen_abi::console::XenconsInterface;
use xen_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};

use crate::{events, paging, println, xen};

/// How long to wait for a line of input.
const WAIT_NS: u64 = 60_000_000_000;
const LINE_MAX: usize = 128;

fn offset(field: &str) -> u64 {
    xen_abi::field(XenconsInterface::FIELDS, field).map_or(0, |f| f.offset as u64)
}

/// The ring page, at a guest-physical (identity-mapped) address.
struct Ring {
    base: u64,
    port: u32,
}

impl Ring {
    fn word(&self, field: &str) -> *mut u32 {
        (self.base + offset(field)) as *mut u32
    }

    fn read(&self, field: &str) -> u32 {
        // SAFETY: the ring page is identity-mapped (checked in `echo`), the field is an
        // aligned u32 inside it; the backend writes it concurrently, hence volatile.
        unsafe { core::ptr::read_volatile(self.word(field)) }
    }

    fn write(&self, field: &str, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile(self.word(field), value) }
    }

    fn byte(&self, array: &str, index: u32, size: u32) -> *mut u8 {
        (self.base + offset(array) + u64::from(index % size)) as *mut u8
    }

    /// Puts `text` into `out` (as much as fits) and notifies the backend.
    fn put(&self, text: &[u8]) {
        let (cons, mut prod) = (self.read("out_cons"), self.read("out_prod"));
        for &b in text {
            if prod.wrapping_sub(cons) >= 2048 {
                break;
            }
            // SAFETY: an index into `out`, masked to its 2048 bytes.
            unsafe { core::ptr::write_volatile(self.byte("out", prod, 2048), b) };
            prod = prod.wrapping_add(1);
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.write("out_prod", prod);
        xen::evtchn_send(self.port);
    }

    /// Takes the bytes waiting in `in`.
    fn take(&self, line: &mut [u8; LINE_MAX], len: &mut usize) {
        let (mut cons, prod) = (self.read("in_cons"), self.read("in_prod"));
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        while cons != prod && prod.wrapping_sub(cons) <= 1024 {
            // SAFETY: an index into `in`, masked to its 1024 bytes.
            let b = unsafe { core::ptr::read_volatile(self.byte("in", cons, 1024)) };
            if *len < LINE_MAX {
                line[*len] = b;
                *len += 1;
            }
            cons = cons.wrapping_add(1);
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.write("in_cons", cons);
        xen::evtchn_send(self.port);
    }
}

fn fail(why: core::fmt::Arguments<'_>) -> ! {
    println!("GUEST ring-echo result=fail {why}");
    xen::shutdown(test_guest::abi::ShutdownReason::Crash)
}

pub fn echo() -> ! {
    let (pfn, port) = match (xen::hvm_get_param(HVM_PARAM_CONSOLE_PFN), xen::hvm_get_param(HVM_PARAM_CONSOLE_EVTCHN)) {
        (Ok(pfn), Ok(port)) if pfn != 0 && port != 0 => (pfn, port as u32),
        other => fail(format_args!("no console ring in the HVM parameters: {other:?}")),
    };
    let base = pfn * 4096;
    if !paging::identity_map(base) {
        fail(format_args!("cannot map the ring at {base:#x}"));
    }
    if let Err((step, rc)) = events::setup() {
        fail(format_args!("event setup: {step} returned {rc}"));
    }
    let ring = Ring { base, port };
    ring.put(b"ring-echo: ready\n");
    let deadline = xen::now_ns() + WAIT_NS;
    let (mut line, mut len) = ([0u8; LINE_MAX], 0usize);
    loop {
        ring.take(&mut line, &mut len);
        if let Some(end) = line[..len].iter().position(|&b| b == b'\n' || b == b'\r') {
            let text = core::str::from_utf8(&line[..end]).unwrap_or("<not UTF-8>");
            println!("GUEST ring-echo got={text}");
            ring.put(b"ring-echo: got ");
            ring.put(&line[..end]);
            ring.put(b"\n");
            xen::shutdown(test_guest::abi::ShutdownReason::Poweroff);
        }
        if xen::now_ns() > deadline {
            fail(format_args!("no line of input within 60 s (got {len} bytes)"));
        }
        events::halt_until(xen::now_ns() + 2_000_000);
    }
}

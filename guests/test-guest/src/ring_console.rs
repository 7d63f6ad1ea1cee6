//! `test=ring-echo`: the PV console ring from the guest's side (`struct xencons_interface`,
//! found through `HVM_PARAM_CONSOLE_PFN` and `HVM_PARAM_CONSOLE_EVTCHN`, as Linux's hvc_xen
//! finds it). Output goes into `out`; input arrives in `in` from the console backend (the
//! dom0 agent forwards what is typed on the host console).

use xen_abi::console::XenconsInterface;
use xen_abi::hvm::{HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};

use crate::shared_page::{offset_of, SharedPage};
use crate::{events, println, xen};

/// How long to wait for a line of input.
const WAIT_NS: u64 = 60_000_000_000;
const LINE_MAX: usize = 128;
const IN_SIZE: u32 = 1024;
const OUT_SIZE: u32 = 2048;

fn offset(field: &str) -> usize {
    offset_of(XenconsInterface::FIELDS, field)
}

/// The console ring and its event channel.
struct Ring {
    page: SharedPage,
    port: u32,
}

impl Ring {
    /// Puts `text` into `out` (as much as fits) and notifies the backend.
    fn put(&self, text: &[u8]) {
        let (cons, mut prod) = (self.page.read_u32(offset("out_cons")), self.page.read_u32(offset("out_prod")));
        self.page.fence();
        for &b in text {
            if prod.wrapping_sub(cons) >= OUT_SIZE {
                break;
            }
            self.page.write_byte(offset("out"), OUT_SIZE, prod, b);
            prod = prod.wrapping_add(1);
        }
        self.page.fence();
        self.page.write_u32(offset("out_prod"), prod);
        xen::evtchn_send(self.port);
    }

    /// Takes the bytes waiting in `in`.
    fn take(&self, line: &mut [u8; LINE_MAX], len: &mut usize) {
        let (mut cons, prod) = (self.page.read_u32(offset("in_cons")), self.page.read_u32(offset("in_prod")));
        self.page.fence();
        while cons != prod && prod.wrapping_sub(cons) <= IN_SIZE {
            let b = self.page.read_byte(offset("in_"), IN_SIZE, cons);
            if *len < LINE_MAX {
                line[*len] = b;
                *len += 1;
            }
            cons = cons.wrapping_add(1);
        }
        self.page.fence();
        self.page.write_u32(offset("in_cons"), cons);
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
    let Some(page) = SharedPage::at_gfn(pfn) else {
        fail(format_args!("cannot map the ring at frame {pfn:#x}"));
    };
    if let Err((step, rc)) = events::setup() {
        fail(format_args!("event setup: {step} returned {rc}"));
    }
    let ring = Ring { page, port };
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

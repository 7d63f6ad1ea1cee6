//! The Xen console ring (`public/io/console.h`, `struct xencons_interface`) of boot-time
//! domains, served by the hypervisor until the dom0 agent takes consoles over: the guest
//! writes `out[]` and signals its console event channel; the hypervisor copies the bytes
//! to the domain's console log, frees the ring space and signals back. The ring is also
//! drained at every end of the domain's time slices, so a guest that waits for space
//! without signalling still sees its output consumed.

use crate::domain::{CreateError, Domain, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN};
use crate::evtchn::{self, two_level::PageView, Binding, Service};
use crate::mm::phys_to_virt;
use frame_alloc::FRAME_SIZE;

const OUT_OFFSET: usize = 1024;
const OUT_SIZE: u32 = 2048;
/// `out_cons` @3080 and `out_prod` @3084 share one aligned 64-bit word.
const OUT_CONS: usize = 3080;

/// Connects the ring page at guest frame `gfn` (already placed by the domain builder) and
/// publishes it through `HVM_PARAM_CONSOLE_PFN` / `HVM_PARAM_CONSOLE_EVTCHN`.
pub fn attach(domain: &Domain, gfn: Option<u64>) -> Result<(), CreateError> {
    let Some(gfn) = gfn else {
        return Ok(());
    };
    let port = evtchn::bind_service(domain, Service::Console)
        .map_err(|e| CreateError::Layout(alloc::format!("no event channel for the console: {e}")))?;
    domain.set_console_ring(gfn);
    domain.set_hvm_param(HVM_PARAM_CONSOLE_PFN, gfn);
    domain.set_hvm_param(HVM_PARAM_CONSOLE_EVTCHN, u64::from(port));
    Ok(())
}

fn ring(domain: &Domain) -> Option<PageView> {
    let gfn = domain.console_ring_gfn()?;
    let page = domain.ram.translate(gfn * FRAME_SIZE)?;
    Some(PageView(phys_to_virt(page).as_u64()))
}

/// Copies everything the guest has written to its console log.
pub fn drain(domain: &Domain) {
    let Some(ring) = ring(domain) else {
        return;
    };
    let word = ring.read_u64(OUT_CONS & !7);
    let (cons, prod) = (word as u32, (word >> 32) as u32);
    if cons == prod {
        return;
    }
    // A guest may publish any producer index; never read more than the ring holds.
    let available = prod.wrapping_sub(cons).min(OUT_SIZE);
    let mut bytes = [0u8; OUT_SIZE as usize];
    for i in 0..available {
        let index = cons.wrapping_add(i) % OUT_SIZE;
        bytes[i as usize] = ring.read_u8(OUT_OFFSET + index as usize);
    }
    domain.console_write(&bytes[..available as usize]);
    ring.write_u32(OUT_CONS, cons.wrapping_add(available));
    let port = domain.hvm_param(HVM_PARAM_CONSOLE_EVTCHN) as u32;
    if domain.evtchn.lock().binding(port) == Some(Binding::Hypervisor(Service::Console)) {
        evtchn::notify(domain, port);
    }
}

//! The fatal path shared by exceptions and panics: stop every other CPU, print a report
//! that ignores the console lock, and stop the machine with a failure status.

use crate::arch::x86_64::percpu;
use crate::power::{self, Outcome};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// 1 + the index of the CPU that is dying, or 0.
static DYING: AtomicUsize = AtomicUsize::new(0);

/// Reports a fatal error and stops the machine. `report` writes the details.
pub fn die(report: impl FnOnce(&mut dyn Write) -> fmt::Result) -> ! {
    x86_64::instructions::interrupts::disable();
    let me = percpu::current_index() + 1;
    if let Err(first) = DYING.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        if first != me {
            // Another CPU is already reporting and will stop us with an NMI.
            power::halt_forever();
        }
        // We faulted while reporting: the report is lost, but the status is not.
        power::stop(Outcome::Failure);
    }
    crate::arch::x86_64::smp::stop_other_cpus();
    let mut w = crate::console::emergency_writer();
    let _ = writeln!(w);
    let _ = report(&mut w);
    let _ = writeln!(w, "*** Ferrovisor stopped after a fatal error on CPU{} ***", me - 1);
    power::stop(Outcome::Failure)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    die(|w| {
        write!(w, "*** PANIC on CPU{}", percpu::current_index())?;
        if let Some(location) = info.location() {
            write!(w, " at {}:{}:{}", location.file(), location.line(), location.column())?;
        }
        writeln!(w, " ***")?;
        writeln!(w, "{}", info.message())
    })
}

//! Named checks printed as `GUEST <behaviour> <check>=pass|fail <details>`, and the final
//! `GUEST <behaviour> result=pass|fail checks=N failed=M` that ends the behaviour.

use core::fmt;

use test_guest::abi::ShutdownReason;
use xen_abi::grant_table::gntst_name;

use crate::{println, xen};

/// A hypercall result: a value, or `-errno` shown with the errno's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rc(pub i64);

impl fmt::Display for Rc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match xen_abi::errno::name(self.0.wrapping_neg()) {
            Some(name) if self.0 < 0 => write!(f, "{}({name})", self.0),
            _ => write!(f, "{}", self.0),
        }
    }
}

/// A grant-table status, shown with its `GNTST_*` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gntst(pub i16);

impl fmt::Display for Gntst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match gntst_name(self.0) {
            Some(name) => write!(f, "{}({name})", self.0),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The checks of one behaviour.
#[derive(Debug)]
pub struct Checks {
    kind: &'static str,
    total: u32,
    failed: u32,
}

impl Checks {
    /// Checks printed as `GUEST <kind> ...`.
    pub fn new(kind: &'static str) -> Self {
        Checks { kind, total: 0, failed: 0 }
    }

    /// Records and prints one check; returns `ok`.
    pub fn check(&mut self, name: impl fmt::Display, ok: bool, details: fmt::Arguments<'_>) -> bool {
        self.total += 1;
        if !ok {
            self.failed += 1;
        }
        println!("GUEST {} {name}={} {details}", self.kind, if ok { "pass" } else { "fail" });
        ok
    }

    /// A hypercall returned `expected`.
    pub fn rc(&mut self, name: impl fmt::Display, got: i64, expected: i64) -> bool {
        self.check(name, got == expected, format_args!("rc={} expected={}", Rc(got), Rc(expected)))
    }

    /// A grant operation ended with status `expected` (and the hypercall itself with 0).
    pub fn gntst(&mut self, name: impl fmt::Display, rc: i64, got: i16, expected: i16) -> bool {
        self.check(
            name,
            rc == 0 && got == expected,
            format_args!("rc={} status={} expected={}", Rc(rc), Gntst(got), Gntst(expected)),
        )
    }

    /// Whether every check so far passed.
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }

    /// Prints the result line and ends the domain: poweroff if every check passed, else crash.
    pub fn finish(self) -> ! {
        self.finish_then(|| xen::shutdown(ShutdownReason::Poweroff))
    }

    /// Like [`Checks::finish`], but a passing run calls `power_off` instead, which must not
    /// return (if it does, the run crashes).
    pub fn finish_then(self, power_off: impl FnOnce()) -> ! {
        let ok = self.all_passed();
        println!(
            "GUEST {} result={} checks={} failed={}",
            self.kind,
            if ok { "pass" } else { "fail" },
            self.total,
            self.failed
        );
        if ok {
            power_off()
        }
        xen::shutdown(ShutdownReason::Crash)
    }
}

//! `XS_CONTROL` (privileged): a few of C xenstored's commands. Unknown commands are
//! `EINVAL`, as there.
//!
//! | command | effect |
//! | --- | --- |
//! | `check` | checks the store's invariants ([`Store::check`]): `OK`, or `EIO` (and a log line) |
//! | `log` | no argument: the switch settings; `on` / `off`: request tracing as [`Output::Log`](crate::Output::Log) lines |
//! | `print <string>` | the string as an [`Output::Log`](crate::Output::Log) line |
//! | `quota` | no argument: the quotas; `set <name> <value>`; `<domid>`: the domain's usage |
//! | `help` | the commands |

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::perms::parse_decimal;
use crate::wire::strings;
use crate::{Error, Store};

const COMMANDS: [(&str, &str); 5] =
    [("check", ""), ("log", "[on|off]"), ("print", "<string>"), ("quota", "[set <name> <val>|<domid>]"), ("help", "")];

fn text(s: String) -> Vec<u8> {
    let mut out = s.into_bytes();
    out.push(0);
    out
}

impl Store {
    pub(crate) fn do_control(&mut self, payload: &[u8]) -> Result<Vec<u8>, Error> {
        let args = strings(payload);
        let (&cmd, params) = args.split_first().ok_or(Error::Inval)?;
        match (cmd, params) {
            (b"check", []) => match self.check() {
                Ok(()) => Ok(b"OK\0".to_vec()),
                Err(e) => {
                    self.log(format!("xenstore check failed: {e}"));
                    Err(Error::Io)
                }
            },
            (b"log", []) => Ok(text(format!(
                "Log switch settings:\n{:<8}: {}\n",
                "requests",
                if self.log_on { "on" } else { "off" }
            ))),
            (b"log", [b"on"]) => {
                self.log_on = true;
                Ok(b"OK\0".to_vec())
            }
            (b"log", [b"off"]) => {
                self.log_on = false;
                Ok(b"OK\0".to_vec())
            }
            (b"print", [msg]) => {
                self.log(format!("control: {}", String::from_utf8_lossy(msg)));
                Ok(b"OK\0".to_vec())
            }
            (b"quota", []) => {
                let mut s = String::from("Quota settings:\n");
                for (name, value, descr) in self.config().quotas.named() {
                    let _ = writeln!(s, "{name:<17}: {value:>8} {descr}");
                }
                Ok(text(s))
            }
            (b"quota", [b"set", name, value]) => {
                let value = parse_decimal(value).filter(|&v| v >= 1).ok_or(Error::Inval)?;
                if self.quotas_mut().set(name, value) {
                    Ok(b"OK\0".to_vec())
                } else {
                    Err(Error::Inval)
                }
            }
            (b"quota", [domid]) => {
                let domid = parse_decimal(domid).and_then(|d| u16::try_from(d).ok()).ok_or(Error::Inval)?;
                let mut s = format!("Domain {domid}:\n");
                let _ = writeln!(s, "{:<17}: {:>8}", "nodes", self.node_count(domid));
                let _ = writeln!(s, "{:<17}: {:>8}", "watches", self.watch_count(domid));
                let _ = writeln!(s, "{:<17}: {:>8}", "transactions", self.transaction_count(domid));
                Ok(text(s))
            }
            (b"help", []) => {
                let mut s = String::new();
                for (name, pars) in COMMANDS {
                    let _ = writeln!(s, "{name:<15} {pars}");
                }
                Ok(text(s))
            }
            _ => Err(Error::Inval),
        }
    }
}

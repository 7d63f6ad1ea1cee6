//! The guest command line: space-separated words, `key=value` options.
//!
//! | option | meaning |
//! | --- | --- |
//! | `test=NAME` | the behaviour (default `hello`): `hello`, `cpuid`, `memtouch`, `triplefault`, `timer`, `spin`, `idle` |
//! | `ms=N` | `spin` only: spin until N ms of system time have passed since the guest started (default 2000) |
//! | `console=e9\|com1\|xen` | where ordinary output goes: port 0xE9 (default), COM1, or the `console_io` hypercall |

use core::fmt;

/// Default `ms=` of `test=spin`.
pub const DEFAULT_SPIN_MS: u64 = 2000;

/// A command line.
#[derive(Debug, Clone, Copy)]
pub struct Cmdline<'a>(&'a str);

impl<'a> Cmdline<'a> {
    /// Wraps `text`.
    pub fn new(text: &'a str) -> Self {
        Cmdline(text)
    }

    /// The whole text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The value of the last `key=value` word with this key.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
    }
}

/// What the guest does after its hello line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Print the hello line through port 0xE9, `console_io` and COM1, then power off.
    Hello,
    /// Check the CPUID leaves, MSR behaviour and an unknown hypercall.
    Cpuid,
    /// Write beyond the end of RAM: the hypervisor must crash the domain.
    Memtouch,
    /// Load an empty IDT and execute `int3`.
    Triplefault,
    /// Executes an instruction the hypervisor intercepts but does not emulate: crashed.
    Unhandled,
    /// Five one-shot timer wake-ups from `sti; hlt`.
    Timer,
    /// Spin on the system time for `ms` milliseconds since the guest started.
    Spin {
        /// How long.
        ms: u64,
    },
    /// `sti; hlt` forever.
    Idle,
}

/// The names `test=` accepts.
pub const BEHAVIOURS: [&str; 8] = ["hello", "cpuid", "memtouch", "triplefault", "unhandled", "timer", "spin", "idle"];

/// Where ordinary output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleKind {
    /// The debug port 0xE9.
    #[default]
    E9,
    /// COM1 (0x3F8).
    Com1,
    /// The `console_io` hypercall.
    Xen,
}

/// A command line the guest does not understand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// `test=` names no behaviour.
    UnknownTest(&'a str),
    /// `ms=` is not a number.
    BadMs(&'a str),
    /// `console=` names no console.
    UnknownConsole(&'a str),
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::UnknownTest(t) => {
                write!(f, "unknown test={t} (known:")?;
                for b in BEHAVIOURS {
                    write!(f, " {b}")?;
                }
                f.write_str(")")
            }
            CmdlineError::BadMs(v) => write!(f, "ms={v} is not a number of milliseconds"),
            CmdlineError::UnknownConsole(v) => write!(f, "unknown console={v} (known: e9 com1 xen)"),
        }
    }
}

/// Parses a decimal number.
pub fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Behaviour {
    /// The behaviour `cmdline` selects.
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<Behaviour, CmdlineError<'a>> {
        Ok(match cmdline.get("test").unwrap_or("hello") {
            "hello" => Behaviour::Hello,
            "cpuid" => Behaviour::Cpuid,
            "memtouch" => Behaviour::Memtouch,
            "triplefault" => Behaviour::Triplefault,
            "unhandled" => Behaviour::Unhandled,
            "timer" => Behaviour::Timer,
            "spin" => {
                let ms = match cmdline.get("ms") {
                    None => DEFAULT_SPIN_MS,
                    Some(v) => parse_u64(v).ok_or(CmdlineError::BadMs(v))?,
                };
                Behaviour::Spin { ms }
            }
            "idle" => Behaviour::Idle,
            other => return Err(CmdlineError::UnknownTest(other)),
        })
    }

    /// Its `test=` name.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Hello => "hello",
            Behaviour::Cpuid => "cpuid",
            Behaviour::Memtouch => "memtouch",
            Behaviour::Triplefault => "triplefault",
            Behaviour::Unhandled => "unhandled",
            Behaviour::Timer => "timer",
            Behaviour::Spin { .. } => "spin",
            Behaviour::Idle => "idle",
        }
    }
}

impl ConsoleKind {
    /// The console `cmdline` selects (`console=`, default port 0xE9).
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<ConsoleKind, CmdlineError<'a>> {
        match cmdline.get("console") {
            None | Some("e9") => Ok(ConsoleKind::E9),
            Some("com1") => Ok(ConsoleKind::Com1),
            Some("xen") => Ok(ConsoleKind::Xen),
            Some(other) => Err(CmdlineError::UnknownConsole(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behaviour(s: &str) -> Result<Behaviour, CmdlineError<'_>> {
        Behaviour::from_cmdline(&Cmdline::new(s))
    }

    #[test]
    fn behaviours() {
        assert_eq!(behaviour(""), Ok(Behaviour::Hello));
        assert_eq!(behaviour("test=hello"), Ok(Behaviour::Hello));
        assert_eq!(behaviour("x=1 test=cpuid y"), Ok(Behaviour::Cpuid));
        assert_eq!(behaviour("test=memtouch"), Ok(Behaviour::Memtouch));
        assert_eq!(behaviour("test=triplefault"), Ok(Behaviour::Triplefault));
        assert_eq!(behaviour("test=unhandled"), Ok(Behaviour::Unhandled));
        assert_eq!(behaviour("test=timer"), Ok(Behaviour::Timer));
        assert_eq!(behaviour("test=spin"), Ok(Behaviour::Spin { ms: DEFAULT_SPIN_MS }));
        assert_eq!(behaviour("test=spin ms=1500"), Ok(Behaviour::Spin { ms: 1500 }));
        assert_eq!(behaviour("ms=7  test=spin"), Ok(Behaviour::Spin { ms: 7 }));
        assert_eq!(behaviour("test=idle"), Ok(Behaviour::Idle));
        assert_eq!(behaviour("test=hello test=timer"), Ok(Behaviour::Timer));
        for name in BEHAVIOURS {
            assert_eq!(behaviour(&format!("test={name}")).unwrap().name(), name);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(behaviour("test=nope"), Err(CmdlineError::UnknownTest("nope")));
        assert_eq!(behaviour("test=spin ms=1s"), Err(CmdlineError::BadMs("1s")));
        assert_eq!(behaviour("test=spin ms=-1"), Err(CmdlineError::BadMs("-1")));
        assert_eq!(behaviour("test=spin ms="), Err(CmdlineError::BadMs("")));
        let text = CmdlineError::UnknownTest("nope").to_string();
        assert!(text.starts_with("unknown test=nope (known: hello cpuid"), "{text}");
    }

    #[test]
    fn console() {
        let c = |s| ConsoleKind::from_cmdline(&Cmdline::new(s));
        assert_eq!(c(""), Ok(ConsoleKind::E9));
        assert_eq!(c("console=com1"), Ok(ConsoleKind::Com1));
        assert_eq!(c("console=xen"), Ok(ConsoleKind::Xen));
        assert_eq!(c("console=vga"), Err(CmdlineError::UnknownConsole("vga")));
    }

    #[test]
    fn get() {
        let c = Cmdline::new("a=1 b= c a=2 d=x=y");
        assert_eq!(c.get("a"), Some("2"));
        assert_eq!(c.get("b"), Some(""));
        assert_eq!(c.get("c"), None);
        assert_eq!(c.get("d"), Some("x=y"));
        assert_eq!(parse_u64("0042"), Some(42));
        assert_eq!(parse_u64("+1"), None);
    }
}

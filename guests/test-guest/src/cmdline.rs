//! The guest command line: space-separated words, `key=value` options.
//!
//! | option | meaning |
//! | --- | --- |
//! | `test=NAME` | the behaviour (default `hello`): `hello`, `cpuid`, `memtouch`, `triplefault`, `unhandled`, `timer`, `spin`, `idle`, `errors`, `standby`, `ping`, `pong`, `granter`, `mapper`, `bench`, `hcfuzz` |
//! | `ms=N` | `spin` only: spin until N ms of system time have passed since the guest started (default 2000) |
//! | `peer=D` | the other domain's id: required by `standby`, `ping`, `pong`, `granter`, `mapper`; optional for `errors` (its `standby` partner) |
//! | `rounds=N` | `ping`/`pong`: event-channel round trips (default 100) |
//! | `port=P` | `ping`/`mapper`/`errors`: bind this port of the peer instead of searching its first ports |
//! | `seed=N` | `hcfuzz`: the PRNG seed (default 1) |
//! | `calls=N` | `hcfuzz`: how many hypercalls to make (default 20000) |
//! | `trace=1` | `hcfuzz`: print each call before making it |
//! | `console=e9\|com1\|xen` | where ordinary output goes: port 0xE9 (default), COM1, or the `console_io` hypercall |

use core::fmt;

/// Default `ms=` of `test=spin`.
pub const DEFAULT_SPIN_MS: u64 = 2000;
/// Default `rounds=` of `test=ping` / `test=pong`.
pub const DEFAULT_ROUNDS: u32 = 100;
/// Default `seed=` of `test=hcfuzz`.
pub const DEFAULT_FUZZ_SEED: u64 = 1;
/// Default `calls=` of `test=hcfuzz`.
pub const DEFAULT_FUZZ_CALLS: u64 = 20_000;
/// Largest `calls=` accepted.
pub const MAX_FUZZ_CALLS: u64 = 100_000_000;
/// Largest `rounds=` accepted.
pub const MAX_ROUNDS: u32 = 1_000_000;
/// Lowest domain id that is not a real domain (`DOMID_FIRST_RESERVED`): `peer=` must be below.
const DOMID_FIRST_RESERVED: u64 = xen_abi::xen::DOMID_FIRST_RESERVED as u64;

/// The other domain of a two-domain behaviour and how to find its event channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// `peer=`: its domain id.
    pub domid: u16,
    /// `port=`: the port it offers (`None`: search its first ports).
    pub port: Option<u32>,
}

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

/// Extra work in each round of `test=spin` (`load=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpinLoad {
    /// Only the time read.
    None,
    /// `load=exits`: a CPUID, which the hypervisor intercepts: exits back to back.
    Exits,
    /// `load=fpu`: x87 state restores (FXRSTOR), which QEMU's TCG handles by writing CPU
    /// 0's state from this CPU's thread.
    FpuRestores,
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
        /// What each round of the spin does besides reading the time.
        load: SpinLoad,
    },
    /// `sti; hlt` forever.
    Idle,
    /// Every hypercall family's error paths, checked against Xen 4.17's answers; with a
    /// peer (a `standby` domain), also the answers about another domain.
    Errors {
        /// The `standby` partner, if any.
        peer: Option<Peer>,
    },
    /// Offers the `errors` domain an event channel and waits until it signals it.
    Standby {
        /// The `errors` domain.
        peer: Peer,
    },
    /// Interdomain event-channel ping-pong, the binding (measuring) side.
    Ping {
        /// The `pong` domain.
        peer: Peer,
        /// Round trips.
        rounds: u32,
    },
    /// Interdomain event-channel ping-pong, the allocating (echoing) side.
    Pong {
        /// The `ping` domain.
        peer: Peer,
        /// Round trips to echo before powering off.
        rounds: u32,
    },
    /// Grants pages to the `mapper` and checks what it did with them.
    Granter {
        /// The `mapper` domain.
        peer: Peer,
    },
    /// Maps and copies the `granter`'s pages, and is refused what was not granted.
    Mapper {
        /// The `granter` domain.
        peer: Peer,
    },
    /// Times hypercalls, a grant copy and a plain copy; prints `BENCH` lines.
    Bench,
    /// Writes to its PV console ring and echoes one line of input read from it.
    RingEcho,
    /// A xenstore client on its own ring, checking the store's answers.
    Xenstore {
        /// Another domain, whose keys it must not read (`peer=`).
        peer: Option<u16>,
        /// Finish with an oversized message that must stop the ring (`abuse=1`).
        abuse: bool,
        /// Wait this long first (`delay_ms=`).
        delay_ms: u64,
    },
    /// Random hypercalls with garbage arguments; every one must return.
    Hcfuzz {
        /// The PRNG seed (`seed=`).
        seed: u64,
        /// How many hypercalls (`calls=`).
        calls: u64,
        /// Print each call before making it (`trace=1`).
        trace: bool,
    },
}

/// The names `test=` accepts.
pub const BEHAVIOURS: [&str; 18] = [
    "hello",
    "cpuid",
    "memtouch",
    "triplefault",
    "unhandled",
    "timer",
    "spin",
    "idle",
    "errors",
    "standby",
    "ping",
    "pong",
    "granter",
    "mapper",
    "bench",
    "hcfuzz",
    "ring-echo",
    "xenstore",
];

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
    /// `load=` names no spin load.
    UnknownLoad(&'a str),
    /// `console=` names no console.
    UnknownConsole(&'a str),
    /// The behaviour needs `peer=`.
    MissingPeer(&'static str),
    /// `key=value` is not a valid number for `key`.
    BadNumber {
        /// The option.
        key: &'static str,
        /// What was given.
        value: &'a str,
    },
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
            CmdlineError::UnknownLoad(v) => write!(f, "unknown load={v} (known: exits fpu)"),
            CmdlineError::UnknownConsole(v) => write!(f, "unknown console={v} (known: e9 com1 xen)"),
            CmdlineError::MissingPeer(test) => write!(f, "test={test} needs peer=<domain id>"),
            CmdlineError::BadNumber { key, value } => write!(f, "{key}={value} is not a valid number for {key}="),
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

/// The value of `key` as a number in `range`, `None` if absent.
fn number<'a>(
    cmdline: &Cmdline<'a>,
    key: &'static str,
    range: core::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, CmdlineError<'a>> {
    match cmdline.get(key) {
        None => Ok(None),
        Some(value) => match parse_u64(value) {
            Some(n) if range.contains(&n) => Ok(Some(n)),
            _ => Err(CmdlineError::BadNumber { key, value }),
        },
    }
}

impl Peer {
    /// `peer=` and `port=` of `cmdline`, `None` without `peer=`.
    pub fn from_cmdline<'a>(cmdline: &Cmdline<'a>) -> Result<Option<Peer>, CmdlineError<'a>> {
        let port = number(cmdline, "port", 1..=u64::from(u32::MAX))?.map(|p| p as u32);
        Ok(number(cmdline, "peer", 1..=DOMID_FIRST_RESERVED - 1)?.map(|d| Peer { domid: d as u16, port }))
    }

    fn required<'a>(cmdline: &Cmdline<'a>, test: &'static str) -> Result<Peer, CmdlineError<'a>> {
        Peer::from_cmdline(cmdline)?.ok_or(CmdlineError::MissingPeer(test))
    }
}

fn rounds<'a>(cmdline: &Cmdline<'a>) -> Result<u32, CmdlineError<'a>> {
    Ok(number(cmdline, "rounds", 1..=u64::from(MAX_ROUNDS))?.map_or(DEFAULT_ROUNDS, |n| n as u32))
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
                let load = match cmdline.get("load") {
                    None => SpinLoad::None,
                    Some("exits") => SpinLoad::Exits,
                    Some("fpu") => SpinLoad::FpuRestores,
                    Some(other) => return Err(CmdlineError::UnknownLoad(other)),
                };
                Behaviour::Spin { ms, load }
            }
            "idle" => Behaviour::Idle,
            "errors" => Behaviour::Errors { peer: Peer::from_cmdline(cmdline)? },
            "standby" => Behaviour::Standby { peer: Peer::required(cmdline, "standby")? },
            "ping" => Behaviour::Ping { peer: Peer::required(cmdline, "ping")?, rounds: rounds(cmdline)? },
            "pong" => Behaviour::Pong { peer: Peer::required(cmdline, "pong")?, rounds: rounds(cmdline)? },
            "granter" => Behaviour::Granter { peer: Peer::required(cmdline, "granter")? },
            "mapper" => Behaviour::Mapper { peer: Peer::required(cmdline, "mapper")? },
            "bench" => Behaviour::Bench,
            "ring-echo" => Behaviour::RingEcho,
            "xenstore" => Behaviour::Xenstore {
                peer: Peer::from_cmdline(cmdline)?.map(|p| p.domid),
                abuse: number(cmdline, "abuse", 0..=1)? == Some(1),
                delay_ms: number(cmdline, "delay_ms", 0..=60_000)?.unwrap_or(0),
            },
            "hcfuzz" => Behaviour::Hcfuzz {
                seed: number(cmdline, "seed", 0..=u64::MAX)?.unwrap_or(DEFAULT_FUZZ_SEED),
                calls: number(cmdline, "calls", 0..=MAX_FUZZ_CALLS)?.unwrap_or(DEFAULT_FUZZ_CALLS),
                trace: number(cmdline, "trace", 0..=1)? == Some(1),
            },
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
            Behaviour::Errors { .. } => "errors",
            Behaviour::Standby { .. } => "standby",
            Behaviour::Ping { .. } => "ping",
            Behaviour::Pong { .. } => "pong",
            Behaviour::Granter { .. } => "granter",
            Behaviour::Mapper { .. } => "mapper",
            Behaviour::Bench => "bench",
            Behaviour::RingEcho => "ring-echo",
            Behaviour::Xenstore { .. } => "xenstore",
            Behaviour::Hcfuzz { .. } => "hcfuzz",
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
        assert_eq!(behaviour("test=spin"), Ok(Behaviour::Spin { ms: DEFAULT_SPIN_MS, load: SpinLoad::None }));
        assert_eq!(behaviour("test=spin ms=1500"), Ok(Behaviour::Spin { ms: 1500, load: SpinLoad::None }));
        assert_eq!(behaviour("ms=7  test=spin"), Ok(Behaviour::Spin { ms: 7, load: SpinLoad::None }));
        assert_eq!(
            behaviour("test=spin load=exits"),
            Ok(Behaviour::Spin { ms: DEFAULT_SPIN_MS, load: SpinLoad::Exits })
        );
        assert_eq!(behaviour("test=spin load=fpu ms=9"), Ok(Behaviour::Spin { ms: 9, load: SpinLoad::FpuRestores }));
        assert_eq!(behaviour("test=spin load=avx"), Err(CmdlineError::UnknownLoad("avx")));
        assert_eq!(behaviour("test=idle"), Ok(Behaviour::Idle));
        assert_eq!(behaviour("test=hello test=timer"), Ok(Behaviour::Timer));
        for name in BEHAVIOURS {
            assert_eq!(behaviour(&format!("test={name} peer=2")).unwrap().name(), name);
        }
    }

    #[test]
    fn peers() {
        let peer = |domid, port| Peer { domid, port };
        assert_eq!(behaviour("test=errors"), Ok(Behaviour::Errors { peer: None }));
        assert_eq!(behaviour("test=errors peer=2"), Ok(Behaviour::Errors { peer: Some(peer(2, None)) }));
        assert_eq!(behaviour("test=standby peer=1"), Ok(Behaviour::Standby { peer: peer(1, None) }));
        assert_eq!(
            behaviour("test=ping peer=1 port=2"),
            Ok(Behaviour::Ping { peer: peer(1, Some(2)), rounds: DEFAULT_ROUNDS })
        );
        assert_eq!(behaviour("test=pong peer=2 rounds=7"), Ok(Behaviour::Pong { peer: peer(2, None), rounds: 7 }));
        assert_eq!(behaviour("test=granter peer=2"), Ok(Behaviour::Granter { peer: peer(2, None) }));
        assert_eq!(behaviour("test=mapper peer=1"), Ok(Behaviour::Mapper { peer: peer(1, None) }));
        assert_eq!(behaviour("test=bench"), Ok(Behaviour::Bench));
        assert_eq!(behaviour("test=ring-echo"), Ok(Behaviour::RingEcho));
        assert_eq!(
            behaviour("test=xenstore peer=2 abuse=1 delay_ms=300"),
            Ok(Behaviour::Xenstore { peer: Some(2), abuse: true, delay_ms: 300 })
        );
        assert_eq!(
            behaviour("test=hcfuzz"),
            Ok(Behaviour::Hcfuzz { seed: DEFAULT_FUZZ_SEED, calls: DEFAULT_FUZZ_CALLS, trace: false })
        );
        assert_eq!(
            behaviour("test=hcfuzz seed=7 calls=300 trace=1"),
            Ok(Behaviour::Hcfuzz { seed: 7, calls: 300, trace: true })
        );
        assert_eq!(behaviour("test=hcfuzz calls=x"), Err(CmdlineError::BadNumber { key: "calls", value: "x" }));
        assert_eq!(behaviour("test=ping"), Err(CmdlineError::MissingPeer("ping")));
        assert_eq!(behaviour("test=pong peer=0"), Err(CmdlineError::BadNumber { key: "peer", value: "0" }));
        assert_eq!(behaviour("test=pong peer=32752"), Err(CmdlineError::BadNumber { key: "peer", value: "32752" }));
        assert_eq!(behaviour("test=pong peer=x"), Err(CmdlineError::BadNumber { key: "peer", value: "x" }));
        assert_eq!(behaviour("test=ping peer=1 rounds=0"), Err(CmdlineError::BadNumber { key: "rounds", value: "0" }));
        assert_eq!(behaviour("test=mapper peer=1 port=0"), Err(CmdlineError::BadNumber { key: "port", value: "0" }));
        assert_eq!(CmdlineError::MissingPeer("pong").to_string(), "test=pong needs peer=<domain id>");
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

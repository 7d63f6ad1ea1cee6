//! Reading what domains did from the hypervisor's serial log.
//!
//! - Guest console output: every line a guest prints appears as a log line whose message
//!   starts with `(d<domid>) `, e.g.
//!   `[    1.234567] CPU1 INFO  (d1) hello from domain 1 vcpu 0` ([`ConsoleLine`]).
//! - The test guest's results are console lines starting with `GUEST <kind> key=value ...`
//!   ([`guest_lines`]).
//! - When `exit-when-idle` ends the run, one line per domain,
//!   `DOMAIN id=<n> name=<name> state=<shutdown|crashed> reason=<why> vcpus=<n> weight=<w> cpus_used=<mask>
//!   runtime_ns=<u64> memory_kib=<n>` ([`DomainReport`]), then
//!   `DOMAINS done total=<n> crashed=<c> free_frames_before=<a> free_frames_after=<b>`
//!   ([`DomainsDone`]).

use crate::selftest::{strip_terminal_controls, FieldError, SelftestLine};

/// Marks a per-domain report line.
pub const DOMAIN_MARKER: &str = "DOMAIN";
/// Marks the closing summary line.
pub const DOMAINS_MARKER: &str = "DOMAINS";
/// Marks the test guest's result lines.
pub const GUEST_MARKER: &str = "GUEST";

/// One line of a guest's console output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// The domain that printed it.
    pub domid: u32,
    /// What the guest printed (without the `(dN) ` prefix and the line end).
    pub text: String,
}

/// The message part of a log line: after `[ time] CPUn LEVEL `, or the whole line if it has
/// no such prefix.
pub fn log_message(line: &str) -> &str {
    let Some(after_time) = line.strip_prefix('[').and_then(|l| l.split_once(']')).map(|(_, rest)| rest) else {
        return line.trim_start();
    };
    // Skip two words: the CPU and the level.
    let mut rest = after_time.trim_start();
    for _ in 0..2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start_matches([' ', '\t']);
    }
    rest
}

impl ConsoleLine {
    /// Parses a log line whose message starts with `(d<domid>) `.
    pub fn parse(line: &str) -> Option<ConsoleLine> {
        let cleaned = strip_terminal_controls(line);
        let message = log_message(&cleaned);
        let after = message.strip_prefix("(d")?;
        let close = after.find(')')?;
        let digits = &after[..close];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let domid = digits.parse().ok()?;
        let tail = &after[close + 1..];
        let text = match tail.strip_prefix(' ') {
            Some(t) => t,
            None if tail.is_empty() => "",
            None => return None,
        };
        Some(ConsoleLine { domid, text: text.to_owned() })
    }
}

/// Every guest console line of `log`, in order.
pub fn console_lines(log: &str) -> Vec<ConsoleLine> {
    log.lines().filter_map(ConsoleLine::parse).collect()
}

/// The console text of domain `domid`, in order.
pub fn console_of(log: &str, domid: u32) -> Vec<String> {
    console_lines(log).into_iter().filter(|l| l.domid == domid).map(|l| l.text).collect()
}

/// The `GUEST <kind> ...` lines domain `domid` printed, parsed.
pub fn guest_lines(log: &str, domid: u32) -> Vec<SelftestLine> {
    console_of(log, domid).iter().filter_map(|t| SelftestLine::parse_marked(t, GUEST_MARKER)).collect()
}

/// One `DOMAIN ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReport {
    /// `id=`.
    pub id: u32,
    /// `name=`.
    pub name: String,
    /// `state=`: `shutdown`, `crashed`, or `destroyed` (by the control domain while it ran).
    pub state: String,
    /// `reason=`: `poweroff`, `reboot`, `suspend`, `crash`, `watchdog`, or why the
    /// hypervisor crashed it.
    pub reason: String,
    /// `vcpus=`.
    pub vcpus: u64,
    /// `weight=`.
    pub weight: u64,
    /// `runtime_ns=`: CPU time the scheduler accounted to the domain.
    pub runtime_ns: u64,
    /// `memory_kib=`.
    pub memory_kib: u64,
    /// `cpus_used=`: the CPUs its vCPUs ran on (bit n = CPU n).
    pub cpus_used: u64,
    /// The line from `DOMAIN` on.
    pub raw: String,
}

impl DomainReport {
    /// From a parsed `DOMAIN` line.
    pub fn from_line(l: &SelftestLine) -> Result<DomainReport, FieldError> {
        let id = l.u64("id")?;
        Ok(DomainReport {
            id: u32::try_from(id).map_err(|_| FieldError(format!("id={id} is too large in line: {}", l.raw)))?,
            name: l.str("name")?.to_owned(),
            state: l.str("state")?.to_owned(),
            reason: l.str("reason")?.to_owned(),
            vcpus: l.u64("vcpus")?,
            weight: l.u64("weight")?,
            runtime_ns: l.u64("runtime_ns")?,
            memory_kib: l.u64("memory_kib")?,
            cpus_used: l.u64("cpus_used")?,
            raw: l.raw.clone(),
        })
    }

    /// Shut down by the guest with `reason`.
    pub fn shut_down_with(&self, reason: &str) -> bool {
        self.state == "shutdown" && self.reason == reason
    }

    /// Crashed (by itself or by the hypervisor).
    pub fn crashed(&self) -> bool {
        self.state == "crashed"
    }
}

/// Every `DOMAIN` line of `log`, parsed (an error for a line with missing fields).
pub fn domain_reports(log: &str) -> Vec<Result<DomainReport, FieldError>> {
    log.lines()
        .filter_map(|l| SelftestLine::parse_marked(l, DOMAIN_MARKER))
        .map(|l| DomainReport::from_line(&l))
        .collect()
}

/// The `DOMAINS done ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainsDone {
    /// `total=`: domains that existed.
    pub total: u64,
    /// `crashed=`.
    pub crashed: u64,
    /// `free_frames_before=`: free frames when the first domain was created.
    pub free_frames_before: u64,
    /// `free_frames_after=`: free frames after every domain was destroyed.
    pub free_frames_after: u64,
    /// The line from `DOMAINS` on.
    pub raw: String,
}

impl DomainsDone {
    /// From a parsed `DOMAINS done` line.
    pub fn from_line(l: &SelftestLine) -> Result<DomainsDone, FieldError> {
        Ok(DomainsDone {
            total: l.u64("total")?,
            crashed: l.u64("crashed")?,
            free_frames_before: l.u64("free_frames_before")?,
            free_frames_after: l.u64("free_frames_after")?,
            raw: l.raw.clone(),
        })
    }
}

/// The first `DOMAINS done` line of `log`, if any.
pub fn domains_done(log: &str) -> Option<Result<DomainsDone, FieldError>> {
    log.lines()
        .filter_map(|l| SelftestLine::parse_marked(l, DOMAINS_MARKER))
        .find(|l| l.kind == "done")
        .map(|l| DomainsDone::from_line(&l))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[    0.105932] CPU0 INFO  boot modules: 2
[    1.234567] CPU1 INFO  (d1) hello from domain 1 vcpu 0\r
[    1.234600] CPU0 INFO  (d2) GUEST spin iterations=12345 ms=1000 elapsed_us=1000001
[    1.300000] CPU1 WARN  domain 1 (d1) crashed: nested page fault at 0x2100000
[    1.300001] CPU1 INFO  (d1) GUEST cpuid signature=pass leaf=0x40000000
[    1.300002] CPU1 INFO  (d12)
[    1.300003] CPU1 INFO  (d3)x not a console line
(d4) bare line without a log prefix
[    2.000000] CPU0 INFO  DOMAIN id=1 name=toucher state=crashed reason=npf vcpus=1 weight=256 runtime_ns=1234 cpus_used=0x1 memory_kib=32768
[    2.000001] CPU0 INFO  DOMAIN id=2 name=spinner state=shutdown reason=poweroff vcpus=1 weight=512 runtime_ns=999000000 cpus_used=0x3 memory_kib=16384
[    2.000002] CPU0 INFO  DOMAINS done total=2 crashed=1 free_frames_before=120000 free_frames_after=120000
";

    #[test]
    fn messages() {
        assert_eq!(log_message("[    1.234567] CPU1 INFO  (d1) hi"), "(d1) hi");
        assert_eq!(log_message("[ 1.0] CPU12 ERROR x y"), "x y");
        assert_eq!(log_message("  plain"), "plain");
    }

    #[test]
    fn console() {
        let lines = console_lines(LOG);
        assert_eq!(
            lines,
            [
                ConsoleLine { domid: 1, text: "hello from domain 1 vcpu 0".into() },
                ConsoleLine { domid: 2, text: "GUEST spin iterations=12345 ms=1000 elapsed_us=1000001".into() },
                ConsoleLine { domid: 1, text: "GUEST cpuid signature=pass leaf=0x40000000".into() },
                ConsoleLine { domid: 12, text: String::new() },
                ConsoleLine { domid: 4, text: "bare line without a log prefix".into() },
            ]
        );
        assert_eq!(console_of(LOG, 2).len(), 1);
        assert!(console_of(LOG, 7).is_empty());
        // Two spaces after the prefix keep the guest's leading space.
        assert_eq!(ConsoleLine::parse("[ 1.0] CPU0 INFO  (d5)  indented").unwrap().text, " indented");
        assert!(ConsoleLine::parse("[ 1.0] CPU0 INFO  (dx) no").is_none());
        assert!(ConsoleLine::parse("[ 1.0] CPU0 INFO  (d) no").is_none());
    }

    #[test]
    fn guest() {
        let g = guest_lines(LOG, 2);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].kind, "spin");
        assert_eq!(g[0].u64("iterations").unwrap(), 12345);
        let g = guest_lines(LOG, 1);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].kind, "cpuid");
        assert_eq!(g[0].get("signature"), Some("pass"));
    }

    #[test]
    fn reports() {
        let r: Vec<_> = domain_reports(LOG).into_iter().map(Result::unwrap).collect();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].id, 1);
        assert_eq!(r[0].name, "toucher");
        assert!(r[0].crashed());
        assert_eq!(r[0].reason, "npf");
        assert_eq!(r[1].id, 2);
        assert!(r[1].shut_down_with("poweroff"));
        assert!(!r[1].crashed());
        assert_eq!(r[1].weight, 512);
        assert_eq!(r[1].runtime_ns, 999_000_000);
        assert_eq!(r[1].memory_kib, 16384);
        assert_eq!(r[1].vcpus, 1);
        let done = domains_done(LOG).unwrap().unwrap();
        assert_eq!(done.total, 2);
        assert_eq!(done.crashed, 1);
        assert_eq!(done.free_frames_before, 120000);
        assert_eq!(done.free_frames_after, 120000);
        assert!(done.raw.starts_with("DOMAINS done"));
        assert!(domains_done("nothing\n").is_none());
    }

    #[test]
    fn malformed_reports_are_errors() {
        let r = domain_reports("DOMAIN id=1 name=x state=shutdown\n");
        assert_eq!(r.len(), 1);
        assert!(r[0].as_ref().unwrap_err().0.contains("reason"));
        assert!(domains_done("DOMAINS done total=1\n").unwrap().is_err());
        // DOMAINS is not a DOMAIN line and vice versa.
        assert!(domain_reports("DOMAINS done total=1 crashed=0\n").is_empty());
    }
}

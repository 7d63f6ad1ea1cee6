//! What a domain is made of, and the command-line syntax that describes one as a boot
//! module: `domain [name=NAME] [memory=MiB] [vcpus=N] [weight=W] [cpus=LIST] [cmdline=REST]`
//! (REST, to the end of the line, is the guest's command line). The hypervisor reads it for
//! the domains it builds itself and for dom0's own line; the dom0 agent for the domains it
//! builds. Values are checked for syntax here; ranges are the builder's business.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Memory of a domain whose line names none, MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 64;
/// Xen credit-scheduler weights: default and range.
pub const DEFAULT_WEIGHT: u32 = 256;
pub const MAX_WEIGHT: u32 = 65535;

/// What a domain is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    pub name: String,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub weight: u32,
    /// CPUs the domain's vCPUs may run on (bit n = CPU n).
    pub affinity: u64,
    pub cmdline: String,
}

impl Default for DomainConfig {
    fn default() -> Self {
        DomainConfig {
            name: String::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            vcpus: 1,
            weight: DEFAULT_WEIGHT,
            affinity: u64::MAX,
            cmdline: String::new(),
        }
    }
}

/// A domain's UUID (`xen_domain_handle_t`).
pub type Uuid = [u8; 16];

/// SplitMix64's next output for `state` (which it advances): spreads a weak seed (a TSC
/// read, a counter) over 64 well-mixed bits.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4 (random) UUID from 128 random bits.
pub fn uuid_v4(high: u64, low: u64) -> Uuid {
    let mut uuid = [0u8; 16];
    uuid[..8].copy_from_slice(&high.to_le_bytes());
    uuid[8..].copy_from_slice(&low.to_le_bytes());
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The usual text form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn uuid_string(uuid: &Uuid) -> String {
    use core::fmt::Write;
    let mut s = String::with_capacity(36);
    for (i, b) in uuid.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parses a CPU list such as `0-3,6` into an affinity mask.
pub fn parse_cpu_list(list: &str) -> Result<u64, String> {
    let mut mask = 0u64;
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: u32 = first.parse().map_err(|_| format!("cpus={list}: {part:?} is not a CPU number or range"))?;
        let last: u32 = last.parse().map_err(|_| format!("cpus={list}: {part:?} is not a CPU number or range"))?;
        if first > last || last >= 64 {
            return Err(format!("cpus={list}: {part:?} is not a range of CPUs 0-63"));
        }
        for cpu in first..=last {
            mask |= 1 << cpu;
        }
    }
    Ok(mask)
}

/// Parses the options after a module's first word (`domain`, `dom0`) into `config`.
pub fn parse_options(options: &str, mut config: DomainConfig) -> Result<DomainConfig, String> {
    let mut rest = options.trim_start();
    while !rest.is_empty() {
        if let Some(guest) = rest.strip_prefix("cmdline=") {
            config.cmdline = guest.to_string();
            break;
        }
        let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        rest = tail.trim_start();
        let (key, value) = word.split_once('=').ok_or_else(|| format!("{word:?} is not key=value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{key}={v}: not a number"));
        match key {
            "name" => config.name = value.to_string(),
            "memory" => config.memory_mib = number(value)?,
            "vcpus" => config.vcpus = number(value)?.try_into().map_err(|_| format!("vcpus={value}: too large"))?,
            "weight" => config.weight = number(value)?.try_into().map_err(|_| format!("weight={value}: too large"))?,
            "cpus" => config.affinity = parse_cpu_list(value)?,
            _ => return Err(format!("unknown domain option {key:?}")),
        }
    }
    Ok(config)
}

/// Parses a `domain ...` module command line.
pub fn parse_domain_line(line: &str) -> Result<DomainConfig, String> {
    let rest = line.strip_prefix("domain").ok_or_else(|| "not a domain module".to_string())?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err("not a domain module".to_string());
    }
    parse_options(rest, DomainConfig::default())
}

/// A domain described by boot modules: its configuration and which modules are its kernel
/// and initrd (indices into the module list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub config: DomainConfig,
    pub kernel: usize,
    pub initrd: Option<usize>,
}

/// The boot modules' command lines read as domains: each `domain ...` module is a domain's
/// kernel, optionally followed by an `initrd` module. An error names the module; other
/// modules are returned in `ignored` (index and why) for the caller to report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModulePlan {
    pub domains: Vec<Planned>,
    pub ignored: Vec<(usize, String)>,
}

/// Groups modules (given by their command lines, in order) into domains; a malformed
/// `domain` line, an `initrd` without a domain before it or a domain's second `initrd`
/// is an error.
pub fn plan_modules<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<ModulePlan, String> {
    let mut plan = ModulePlan::default();
    for (index, line) in lines.into_iter().enumerate() {
        if line == "initrd" {
            let last = plan.domains.last_mut().ok_or_else(|| format!("module {index}: initrd before any domain"))?;
            if last.initrd.is_some() {
                return Err(format!("module {index}: a second initrd for one domain"));
            }
            last.initrd = Some(index);
        } else if line == "domain" || line.starts_with("domain ") {
            let config = parse_domain_line(line).map_err(|e| format!("module {index}: {e}"))?;
            plan.domains.push(Planned { config, kernel: index, initrd: None });
        } else {
            plan.ignored.push((index, format!("\"{line}\" is neither a domain nor an initrd")));
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_line() {
        let c = parse_domain_line("domain name=web memory=128 vcpus=2 weight=512 cpus=0,2-3 cmdline=console=hvc0 x=1")
            .unwrap();
        assert_eq!(c.name, "web");
        assert_eq!((c.memory_mib, c.vcpus, c.weight, c.affinity), (128, 2, 512, 0b1101));
        assert_eq!(c.cmdline, "console=hvc0 x=1");
    }

    #[test]
    fn uuids() {
        let u = uuid_v4(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let text = uuid_string(&u);
        assert_eq!(text.len(), 36);
        assert_eq!(text, "efcdab89-6745-4301-9032-547698badcfe");
        assert_eq!(text.as_bytes()[14], b'4'); // version 4
        assert!(matches!(text.as_bytes()[19], b'8' | b'9' | b'a' | b'b')); // RFC 4122 variant
        let mut state = 1;
        let (a, b) = (splitmix64(&mut state), splitmix64(&mut state));
        assert_ne!(a, b);
        assert_ne!(uuid_v4(a, b), u);
    }

    #[test]
    fn module_plans() {
        let plan = plan_modules(["domain name=a", "initrd", "other", "domain name=b"]).unwrap();
        assert_eq!(plan.domains.len(), 2);
        assert_eq!((plan.domains[0].kernel, plan.domains[0].initrd), (0, Some(1)));
        assert_eq!((plan.domains[1].kernel, plan.domains[1].initrd), (3, None));
        assert_eq!(plan.domains[1].config.name, "b");
        assert_eq!(plan.ignored, vec![(2, String::from("\"other\" is neither a domain nor an initrd"))]);
        assert!(plan_modules(["initrd"]).unwrap_err().contains("before any domain"));
        assert!(plan_modules(["domain", "initrd", "initrd"]).unwrap_err().contains("second initrd"));
        assert!(plan_modules(["domain", "domain bad"]).unwrap_err().starts_with("module 1: "));
    }

    #[test]
    fn defaults() {
        assert_eq!(parse_domain_line("domain").unwrap(), DomainConfig::default());
    }

    #[test]
    fn errors() {
        assert!(parse_domain_line("domainx").is_err());
        assert!(parse_domain_line("initrd").is_err());
        assert!(parse_domain_line("domain memory=lots").unwrap_err().contains("not a number"));
        assert!(parse_domain_line("domain colour=red").unwrap_err().contains("unknown domain option"));
        assert!(parse_domain_line("domain vcpus").unwrap_err().contains("not key=value"));
        assert!(parse_domain_line("domain vcpus=99999999999").unwrap_err().contains("too large"));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("64").is_err());
        assert!(parse_cpu_list("a").is_err());
    }
}

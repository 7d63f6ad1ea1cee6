//! Boot-time domains: the `--domain` syntax of `cargo xtask run`, and the multiboot2 modules
//! that carry each domain to the hypervisor (shared by xtask and the tests).
//!
//! # `--domain` syntax
//!
//! `KERNEL[,initrd=FILE][,memory=MiB][,vcpus=N][,weight=W][,cpus=LIST][,name=NAME][,cmdline=STR]`
//!
//! Comma-separated; the first item is the kernel (a PVH ELF). `cmdline=` must come last and
//! takes the rest of the argument, commas included. `cpus=` takes a list of CPU numbers and
//! ranges separated by commas (`cpus=0,2-3`): items without `=` after `cpus=` continue it.
//! `memory=` is in MiB (a `M` or `G` suffix is accepted).
//!
//! # Module command lines (the contract with the hypervisor)
//!
//! Each domain is one module, its kernel, with the command line
//!
//! ```text
//! domain [name=NAME] [memory=MiB] [vcpus=N] [weight=W] [cpus=LIST] [cmdline=REST]
//! ```
//!
//! in that order, only the options given; `cmdline=` comes last and everything after
//! `cmdline=` up to the end of the module command line is the guest's command line, spaces
//! and `=` included. A domain with an initrd is followed directly by the initrd's module,
//! whose command line is exactly `initrd`. Everything must survive GRUB (see
//! [`crate::iso::check_cmdline`]): printable ASCII words without quotes or backslashes,
//! single spaces.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::iso::{check_cmdline, Module};

/// The first word of a domain module's command line.
pub const DOMAIN_MODULE_TAG: &str = "domain";
/// The whole command line of an initrd module.
pub const INITRD_MODULE_TAG: &str = "initrd";
/// Largest vCPU count accepted.
pub const MAX_VCPUS: u32 = 128;
/// Scheduler weights accepted (Xen's credit scheduler range).
pub const WEIGHT_RANGE: std::ops::RangeInclusive<u32> = 1..=65535;
/// Longest domain name.
pub const MAX_NAME_LEN: usize = 64;

/// One boot-time domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainSpec {
    /// The PVH kernel.
    pub kernel: PathBuf,
    /// An initrd (the guest's first PVH module).
    pub initrd: Option<PathBuf>,
    /// `name=`.
    pub name: Option<String>,
    /// `memory=` in MiB.
    pub memory_mib: Option<u64>,
    /// `vcpus=`.
    pub vcpus: Option<u32>,
    /// `weight=`.
    pub weight: Option<u32>,
    /// `cpus=`: CPU numbers and ranges, comma-separated.
    pub cpus: Option<String>,
    /// `cmdline=`: the guest's command line.
    pub cmdline: Option<String>,
}

impl DomainSpec {
    /// A domain running `kernel` with the hypervisor's defaults.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        DomainSpec {
            kernel: kernel.into(),
            initrd: None,
            name: None,
            memory_mib: None,
            vcpus: None,
            weight: None,
            cpus: None,
            cmdline: None,
        }
    }

    /// Sets `name=`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Sets `memory=` (MiB).
    pub fn memory_mib(mut self, mib: u64) -> Self {
        self.memory_mib = Some(mib);
        self
    }

    /// Sets `vcpus=`.
    pub fn vcpus(mut self, n: u32) -> Self {
        self.vcpus = Some(n);
        self
    }

    /// Sets `weight=`.
    pub fn weight(mut self, w: u32) -> Self {
        self.weight = Some(w);
        self
    }

    /// Sets `cpus=`.
    pub fn cpus(mut self, list: &str) -> Self {
        self.cpus = Some(list.to_owned());
        self
    }

    /// Sets the guest command line.
    pub fn cmdline(mut self, cmdline: &str) -> Self {
        self.cmdline = Some(cmdline.to_owned());
        self
    }

    /// Sets the initrd.
    pub fn initrd(mut self, file: impl Into<PathBuf>) -> Self {
        self.initrd = Some(file.into());
        self
    }

    /// Parses the `--domain` syntax (see the module documentation). Files are not looked at.
    pub fn parse(arg: &str) -> Result<DomainSpec, String> {
        let bad = |msg: String| format!("--domain `{arg}`: {msg}");
        let mut items = Vec::new();
        let mut cmdline = None;
        let mut rest = arg;
        loop {
            if let Some(value) = rest.strip_prefix("cmdline=") {
                if items.is_empty() {
                    return Err(bad("the kernel must come first".into()));
                }
                cmdline = Some(value.to_owned());
                break;
            }
            match rest.split_once(',') {
                Some((item, tail)) => {
                    items.push(item);
                    rest = tail;
                }
                None => {
                    items.push(rest);
                    break;
                }
            }
        }
        let (kernel, options) = items.split_first().ok_or_else(|| bad("no kernel".into()))?;
        if kernel.is_empty() {
            return Err(bad("the first item must be the kernel file".into()));
        }
        let mut spec = DomainSpec::new(*kernel);
        spec.cmdline = cmdline;
        let mut last_key = "";
        for item in options {
            let Some((key, value)) = item.split_once('=') else {
                // A bare item continues a `cpus=` list.
                if last_key == "cpus" && !item.is_empty() {
                    let cpus = spec.cpus.get_or_insert_with(String::new);
                    cpus.push(',');
                    cpus.push_str(item);
                    continue;
                }
                return Err(bad(format!("unexpected `{item}` (options are key=value; the kernel comes first)")));
            };
            let dup = || bad(format!("`{key}=` given twice"));
            match key {
                "initrd" => {
                    if value.is_empty() {
                        return Err(bad("initrd= needs a file".into()));
                    }
                    if spec.initrd.replace(PathBuf::from(value)).is_some() {
                        return Err(dup());
                    }
                }
                "memory" => {
                    let mib = parse_memory_mib(value).map_err(&bad)?;
                    if spec.memory_mib.replace(mib).is_some() {
                        return Err(dup());
                    }
                }
                "vcpus" => {
                    let n = parse_number(value, "vcpus", 1..=MAX_VCPUS).map_err(&bad)?;
                    if spec.vcpus.replace(n).is_some() {
                        return Err(dup());
                    }
                }
                "weight" => {
                    let w = parse_number(value, "weight", WEIGHT_RANGE).map_err(&bad)?;
                    if spec.weight.replace(w).is_some() {
                        return Err(dup());
                    }
                }
                "cpus" => {
                    if spec.cpus.replace(value.to_owned()).is_some() {
                        return Err(dup());
                    }
                }
                "name" => {
                    if spec.name.replace(value.to_owned()).is_some() {
                        return Err(dup());
                    }
                }
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}=` (known: initrd= memory= vcpus= weight= cpus= name= cmdline=)"
                    )))
                }
            }
            last_key = key;
        }
        spec.validate().map_err(bad)?;
        Ok(spec)
    }

    /// Checks every value: numbers in range, a well-formed CPU list, a plain name and
    /// command lines that GRUB carries unchanged.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(mib) = self.memory_mib {
            if mib == 0 {
                return Err("memory= must be at least 1 MiB".into());
            }
        }
        if let Some(n) = self.vcpus {
            if !(1..=MAX_VCPUS).contains(&n) {
                return Err(format!("vcpus={n}: expected 1 to {MAX_VCPUS}"));
            }
        }
        if let Some(w) = self.weight {
            if !WEIGHT_RANGE.contains(&w) {
                return Err(format!("weight={w}: expected {} to {}", WEIGHT_RANGE.start(), WEIGHT_RANGE.end()));
            }
        }
        if let Some(cpus) = &self.cpus {
            check_cpu_list(cpus)?;
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        if let Some(cmdline) = &self.cmdline {
            check_cmdline(cmdline).map_err(|e| format!("cmdline=: {e}"))?;
        }
        for (what, path) in [("kernel", Some(&self.kernel)), ("initrd", self.initrd.as_ref())] {
            if let Some(path) = path {
                if path.as_os_str().is_empty() {
                    return Err(format!("empty {what} file name"));
                }
            }
        }
        check_cmdline(&self.module_cmdline()).map_err(|e| format!("module command line: {e}"))
    }

    /// The kernel module's command line (see the module documentation).
    pub fn module_cmdline(&self) -> String {
        let mut s = String::from(DOMAIN_MODULE_TAG);
        if let Some(name) = &self.name {
            s.push_str(&format!(" name={name}"));
        }
        if let Some(mib) = self.memory_mib {
            s.push_str(&format!(" memory={mib}"));
        }
        if let Some(n) = self.vcpus {
            s.push_str(&format!(" vcpus={n}"));
        }
        if let Some(w) = self.weight {
            s.push_str(&format!(" weight={w}"));
        }
        if let Some(cpus) = &self.cpus {
            s.push_str(&format!(" cpus={cpus}"));
        }
        if let Some(cmdline) = &self.cmdline {
            s.push_str(&format!(" cmdline={cmdline}"));
        }
        s
    }

    /// The modules for this domain: the kernel with [`module_cmdline`](Self::module_cmdline),
    /// then the initrd (command line `initrd`) if any. Checks that the files exist.
    pub fn modules(&self) -> Result<Vec<Module>, String> {
        self.validate()?;
        let mut out = vec![Module::new(existing_file(&self.kernel, "kernel")?, self.module_cmdline())];
        if let Some(initrd) = &self.initrd {
            out.push(Module::new(existing_file(initrd, "initrd")?, INITRD_MODULE_TAG));
        }
        Ok(out)
    }
}

impl fmt::Display for DomainSpec {
    /// The `--domain` syntax.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kernel.display())?;
        if let Some(i) = &self.initrd {
            write!(f, ",initrd={}", i.display())?;
        }
        if let Some(m) = self.memory_mib {
            write!(f, ",memory={m}")?;
        }
        if let Some(n) = self.vcpus {
            write!(f, ",vcpus={n}")?;
        }
        if let Some(w) = self.weight {
            write!(f, ",weight={w}")?;
        }
        if let Some(c) = &self.cpus {
            write!(f, ",cpus={c}")?;
        }
        if let Some(n) = &self.name {
            write!(f, ",name={n}")?;
        }
        if let Some(c) = &self.cmdline {
            write!(f, ",cmdline={c}")?;
        }
        Ok(())
    }
}

/// The dom0 agent's module (first, so the hypervisor builds it as domain 0 and hands it the
/// rest); with `exit_when_idle` it shuts down, ending the run, once its domains have ended.
pub fn dom0_module(agent: &Path, exit_when_idle: bool) -> Module {
    Module::new(agent.to_path_buf(), if exit_when_idle { "dom0 cmdline=exit-when-idle" } else { "dom0" })
}

/// Who builds the boot-time domains of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// The hypervisor itself (no control domain).
    Hypervisor,
    /// The dom0 agent ([`crate::dom0_agent`]), booted first with `exit-when-idle`.
    Agent,
}

/// The boot modules of a run of `domains`, written to `dir/modules.txt` too (for whoever
/// reads a failed run); panics naming the test `name` if a file is missing.
pub fn run_modules(name: &str, dir: &Path, domains: &[DomainSpec], builder: Builder) -> Vec<Module> {
    let mut modules = match builder {
        Builder::Agent => vec![dom0_module(&crate::dom0_agent(), true)],
        Builder::Hypervisor => Vec::new(),
    };
    modules.extend(modules_for(domains).unwrap_or_else(|e| panic!("[{name}] {e}")));
    let listing: String = modules.iter().map(|m| format!("{} {}\n", m.file.display(), m.cmdline)).collect();
    std::fs::write(dir.join("modules.txt"), listing).unwrap_or_else(|e| panic!("[{name}] writing modules.txt: {e}"));
    modules
}

/// The modules of all `domains`, in order.
pub fn modules_for(domains: &[DomainSpec]) -> Result<Vec<Module>, String> {
    let mut out = Vec::new();
    for d in domains {
        out.extend(d.modules()?);
    }
    Ok(out)
}

fn existing_file(path: &Path, what: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(format!("{what} file {} does not exist", path.display()))
    }
}

fn parse_number(value: &str, key: &str, range: std::ops::RangeInclusive<u32>) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if range.contains(&n) && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("{key}=`{value}`: expected a number from {} to {}", range.start(), range.end())),
    }
}

/// `memory=`: MiB, optionally with an `M` or `G` suffix.
fn parse_memory_mib(value: &str) -> Result<u64, String> {
    let bad = || format!("memory=`{value}`: expected MiB, e.g. 64 (or 64M, 1G)");
    let (digits, factor) = match value.as_bytes().last() {
        Some(b'M' | b'm') => (&value[..value.len() - 1], 1),
        Some(b'G' | b'g') => (&value[..value.len() - 1], 1024),
        _ => (value, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mib = n.checked_mul(factor).ok_or_else(bad)?;
    if mib == 0 {
        return Err(bad());
    }
    Ok(mib)
}

/// A CPU list: comma-separated `N` or `N-M` (N <= M).
pub fn check_cpu_list(list: &str) -> Result<(), String> {
    let bad = || format!("cpus=`{list}`: expected CPU numbers and ranges, e.g. 0 or 0-1,3");
    if list.is_empty() {
        return Err(bad());
    }
    for item in list.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let num = |s: &str| {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                s.parse::<u32>().ok()
            }
        };
        match (num(lo), num(hi)) {
            (Some(a), Some(b)) if a <= b => {}
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// A domain name: 1 to 64 letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!("name=`{name}`: use 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_only() {
        let d = DomainSpec::parse("guest.elf").unwrap();
        assert_eq!(d, DomainSpec::new("guest.elf"));
        assert_eq!(d.module_cmdline(), "domain");
    }

    #[test]
    fn all_options_in_contract_order() {
        let d = DomainSpec::parse("/k/test-guest,cmdline=test=spin ms=100,a=b").unwrap();
        assert_eq!(d.cmdline.as_deref(), Some("test=spin ms=100,a=b"));
        let d = DomainSpec::parse(
            "/k/test-guest,initrd=/k/rd.img,memory=64,vcpus=2,weight=512,cpus=0,2-3,name=web-1,cmdline=test=hello console=xen x=1,2",
        )
        .unwrap();
        assert_eq!(d.kernel, PathBuf::from("/k/test-guest"));
        assert_eq!(d.initrd, Some(PathBuf::from("/k/rd.img")));
        assert_eq!(d.memory_mib, Some(64));
        assert_eq!(d.vcpus, Some(2));
        assert_eq!(d.weight, Some(512));
        assert_eq!(d.cpus.as_deref(), Some("0,2-3"));
        assert_eq!(d.name.as_deref(), Some("web-1"));
        assert_eq!(
            d.module_cmdline(),
            "domain name=web-1 memory=64 vcpus=2 weight=512 cpus=0,2-3 cmdline=test=hello console=xen x=1,2"
        );
        // Display gives back an equivalent --domain argument.
        assert_eq!(DomainSpec::parse(&d.to_string()).unwrap(), d);
    }

    #[test]
    fn option_order_does_not_matter_but_cmdline_is_last() {
        let d = DomainSpec::parse("k,name=a,memory=1G,weight=1").unwrap();
        assert_eq!(d.memory_mib, Some(1024));
        assert_eq!(d.module_cmdline(), "domain name=a memory=1024 weight=1");
        let d = DomainSpec::parse("k,cmdline=").unwrap();
        assert_eq!(d.module_cmdline(), "domain cmdline=");
        // Everything after cmdline= is the command line, even things that look like options.
        let d = DomainSpec::parse("k,cmdline=name=x,memory=5").unwrap();
        assert_eq!(d.cmdline.as_deref(), Some("name=x,memory=5"));
        assert_eq!(d.name, None);
        assert_eq!(d.memory_mib, None);
    }

    #[test]
    fn cpus_lists() {
        assert_eq!(DomainSpec::parse("k,cpus=1").unwrap().cpus.as_deref(), Some("1"));
        assert_eq!(DomainSpec::parse("k,cpus=0-3,5,weight=2").unwrap().cpus.as_deref(), Some("0-3,5"));
        assert!(DomainSpec::parse("k,cpus=3-1").is_err());
        assert!(DomainSpec::parse("k,cpus=").is_err());
        assert!(DomainSpec::parse("k,cpus=a").is_err());
        assert!(DomainSpec::parse("k,cpus=1,,2").is_err());
        // A bare item anywhere else is an error.
        assert!(DomainSpec::parse("k,weight=2,5").is_err());
        assert!(DomainSpec::parse("k,5").is_err());
    }

    #[test]
    fn rejected() {
        for bad in [
            "",
            ",memory=5",
            "cmdline=x",
            "k,memory=0",
            "k,memory=-1",
            "k,memory=lots",
            "k,vcpus=0",
            "k,vcpus=129",
            "k,weight=0",
            "k,weight=65536",
            "k,weight=1.5",
            "k,name=",
            "k,name=a b",
            "k,name=\"x\"",
            "k,initrd=",
            "k,bogus=1",
            "k,memory=1,memory=2",
            "k,cmdline=say \"hi\"",
            "k,cmdline=back\\slash",
            "k,cmdline=two  spaces",
            "k,cmdline= leading",
            "k,cmdline=trailing ",
            "k,cmdline=tab\there",
        ] {
            let r = DomainSpec::parse(bad);
            assert!(r.is_err(), "{bad:?} was accepted: {r:?}");
            assert!(r.unwrap_err().starts_with("--domain `"), "{bad:?}");
        }
        let e = DomainSpec::parse("k,cmdline=say \"hi\"").unwrap_err();
        assert!(e.contains("quotes"), "{e}");
    }

    #[test]
    fn builder_matches_parser() {
        let built = DomainSpec::new("k").name("n").memory_mib(16).vcpus(1).weight(256).cpus("0").cmdline("test=timer");
        assert_eq!(
            DomainSpec::parse("k,name=n,memory=16,vcpus=1,weight=256,cpus=0,cmdline=test=timer").unwrap(),
            built
        );
        assert_eq!(built.module_cmdline(), "domain name=n memory=16 vcpus=1 weight=256 cpus=0 cmdline=test=timer");
    }

    #[test]
    fn modules_need_files() {
        let dir = std::env::temp_dir().join(format!("ferrovisor-domain-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("kernel");
        let initrd = dir.join("rd");
        std::fs::write(&kernel, b"k").unwrap();
        std::fs::write(&initrd, b"r").unwrap();
        let d = DomainSpec::new(&kernel).initrd(&initrd).cmdline("test=hello");
        let m = d.modules().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].cmdline, "domain cmdline=test=hello");
        assert_eq!(m[1].cmdline, "initrd");
        assert_eq!(m[1].file, initrd);
        let all = modules_for(&[d.clone(), DomainSpec::new(&kernel)]).unwrap();
        assert_eq!(
            all.iter().map(|m| m.cmdline.as_str()).collect::<Vec<_>>(),
            ["domain cmdline=test=hello", "initrd", "domain"]
        );
        assert!(DomainSpec::new(dir.join("missing")).modules().unwrap_err().contains("does not exist"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! A small command-line parser: `--name VALUE`, `--name=VALUE`, `--flag`,
//! repeatable options, and everything after `--` passed through untouched.

use std::collections::BTreeMap;

/// Parsed options of one subcommand.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    values: BTreeMap<String, String>,
    repeated: BTreeMap<String, Vec<String>>,
    flags: Vec<String>,
    /// Arguments after `--`.
    pub rest: Vec<String>,
}

impl Parsed {
    /// The value of option `--name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every value of the repeatable option `--name`, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.repeated.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether flag `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

/// Parses `args` for a subcommand taking the options in `valued` (with a
/// value) and `flags` (without). Names are given without the leading `--`.
pub fn parse(args: &[String], valued: &[&str], flags: &[&str]) -> Result<Parsed, String> {
    parse_with_repeated(args, valued, &[], flags)
}

/// Like [`parse`], with options in `repeated` that may be given any number of
/// times (read them with [`Parsed::values`]).
pub fn parse_with_repeated(
    args: &[String],
    valued: &[&str],
    repeated: &[&str],
    flags: &[&str],
) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            p.rest = it.cloned().collect();
            break;
        }
        let Some(body) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument `{arg}`"));
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        if repeated.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| format!("option `--{name}` needs a value"))?,
            };
            p.repeated.entry(name.to_owned()).or_default().push(value);
        } else if valued.contains(&name) {
            let value = match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| format!("option `--{name}` needs a value"))?,
            };
            if p.values.insert(name.to_owned(), value).is_some() {
                return Err(format!("option `--{name}` given twice"));
            }
        } else if flags.contains(&name) {
            if inline.is_some() {
                return Err(format!("option `--{name}` takes no value"));
            }
            p.flags.push(name.to_owned());
        } else {
            return Err(format!("unknown option `{arg}`"));
        }
    }
    Ok(p)
}

/// A CPU count: 1 to 255 (QEMU q35 with the xAPIC).
pub fn parse_smp(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=255).contains(&n) => Ok(n),
        _ => Err(format!("--smp `{s}`: expected a CPU count from 1 to 255")),
    }
}

/// A memory size QEMU understands: digits with an optional `M`/`G` suffix
/// (also `K`, `T`; lower case accepted), at least 64 MiB.
pub fn parse_memory(s: &str) -> Result<String, String> {
    let bad = || format!("--memory `{s}`: expected a size like 512M or 5G (at least 64M)");
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_uppercase())),
        _ => (s, None),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mib = match unit {
        None | Some('M') => Some(n),
        Some('K') => Some(n / 1024),
        Some('G') => n.checked_mul(1024),
        Some('T') => n.checked_mul(1024 * 1024),
        Some(_) => None,
    }
    .ok_or_else(bad)?;
    if mib < 64 {
        return Err(bad());
    }
    Ok(s.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_flags_and_rest() {
        let p =
            parse(&v(&["--smp", "2", "--memory=1G", "--iso", "--", "-s", "-S"]), &["smp", "memory"], &["iso", "uefi"])
                .unwrap();
        assert_eq!(p.value("smp"), Some("2"));
        assert_eq!(p.value("memory"), Some("1G"));
        assert!(p.flag("iso"));
        assert!(!p.flag("uefi"));
        assert_eq!(p.rest, ["-s", "-S"]);
    }

    #[test]
    fn value_may_contain_spaces_and_equals() {
        let p = parse(&v(&["--cmdline", "loglvl=debug x=1"]), &["cmdline"], &[]).unwrap();
        assert_eq!(p.value("cmdline"), Some("loglvl=debug x=1"));
        let p = parse(&v(&["--cmdline=a=b"]), &["cmdline"], &[]).unwrap();
        assert_eq!(p.value("cmdline"), Some("a=b"));
    }

    #[test]
    fn repeated_options() {
        let p = parse_with_repeated(
            &v(&["--domain", "a,cmdline=x y", "--smp", "2", "--domain=b,memory=5", "--exit-when-idle"]),
            &["smp"],
            &["domain"],
            &["exit-when-idle"],
        )
        .unwrap();
        assert_eq!(p.values("domain"), ["a,cmdline=x y", "b,memory=5"]);
        assert!(p.values("other").is_empty());
        assert_eq!(p.value("smp"), Some("2"));
        assert!(p.flag("exit-when-idle"));
        assert!(parse_with_repeated(&v(&["--domain"]), &[], &["domain"], &[]).is_err());
        // Not repeatable unless declared so.
        assert!(parse(&v(&["--domain", "a"]), &[], &[]).is_err());
    }

    #[test]
    fn errors() {
        assert!(parse(&v(&["--bogus"]), &[], &[]).is_err());
        assert!(parse(&v(&["positional"]), &[], &[]).is_err());
        assert!(parse(&v(&["--smp"]), &["smp"], &[]).is_err());
        assert!(parse(&v(&["--smp", "1", "--smp", "2"]), &["smp"], &[]).is_err());
        assert!(parse(&v(&["--iso=yes"]), &[], &["iso"]).is_err());
    }

    #[test]
    fn smp_and_memory() {
        assert_eq!(parse_smp("4"), Ok(4));
        assert!(parse_smp("0").is_err());
        assert!(parse_smp("x").is_err());
        assert!(parse_smp("256").is_err());
        assert_eq!(parse_memory("512M").unwrap(), "512M");
        assert_eq!(parse_memory("5g").unwrap(), "5G");
        assert_eq!(parse_memory("1024").unwrap(), "1024");
        assert!(parse_memory("32M").is_err());
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("5X").is_err());
        assert!(parse_memory("").is_err());
    }
}

//! Parsing the machine-readable `SELFTEST` lines of a serial log, and small
//! text predicates used on exception and panic reports.
//!
//! A self-test line is `SELFTEST <kind> key=value key="quoted value" ...`,
//! either at the start of a line or after the usual log prefix
//! (`[    1.234567] CPU0 INFO  SELFTEST boot cpus_online=4 ...`).
//! Quoted values run to the closing `"` that ends the line or is followed by
//! ` key=`; quotes inside a value are therefore tolerated.

use std::fmt;

/// Marks a self-test line.
pub const MARKER: &str = "SELFTEST";

/// One parsed `SELFTEST` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelftestLine {
    /// The word after `SELFTEST` (`boot`, `module`, `frames`, ...); `cmdline=`
    /// lines (`SELFTEST cmdline="..."`) have the kind `cmdline`.
    pub kind: String,
    /// The `key=value` pairs in order; quotes removed.
    pub fields: Vec<(String, String)>,
    /// The line as printed, from `SELFTEST` on.
    pub raw: String,
}

/// What went wrong reading a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

impl SelftestLine {
    /// Parses one line; `None` unless it carries a `SELFTEST` marker.
    pub fn parse(line: &str) -> Option<Self> {
        Self::parse_marked(line, MARKER)
    }

    /// Parses one line with another marker word in place of `SELFTEST` (the same
    /// `MARKER kind key=value ...` shape: `DOMAIN`, `DOMAINS`, `GUEST` lines).
    pub fn parse_marked(line: &str, marker: &str) -> Option<Self> {
        let cleaned = strip_terminal_controls(line);
        let line = cleaned.as_str();
        let start = find_marker(line, marker)?;
        let raw = &line[start..];
        let rest = raw[marker.len()..].trim_start();
        if rest.is_empty() {
            return None;
        }
        // `SELFTEST cmdline="..."`: the first word is itself a field.
        let (kind, mut rest) = match rest.split_once(char::is_whitespace) {
            Some((first, tail)) if !first.contains('=') => (first.to_owned(), tail),
            None if !rest.contains('=') => (rest.to_owned(), ""),
            _ => {
                let key = rest.split('=').next().unwrap_or_default();
                (key.to_owned(), rest)
            }
        };
        let mut fields = Vec::new();
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let Some(eq) = rest[..word_end].find('=') else {
                // A bare word: keep it as a key without a value.
                fields.push((rest[..word_end].to_owned(), String::new()));
                rest = &rest[word_end..];
                continue;
            };
            let key = rest[..eq].to_owned();
            let after = &rest[eq + 1..];
            if let Some(quoted) = after.strip_prefix('"') {
                let close = closing_quote(quoted);
                match close {
                    Some(end) => {
                        fields.push((key, quoted[..end].to_owned()));
                        rest = &quoted[end + 1..];
                    }
                    None => {
                        // Unterminated: take the rest of the line.
                        fields.push((key, quoted.to_owned()));
                        rest = "";
                    }
                }
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                fields.push((key, after[..end].to_owned()));
                rest = &after[end..];
            }
        }
        Some(SelftestLine { kind, fields, raw: raw.to_owned() })
    }

    /// The value of `key` (the first, if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or an error naming the line.
    pub fn str(&self, key: &str) -> Result<&str, FieldError> {
        self.get(key).ok_or_else(|| FieldError(format!("no field `{key}` in line: {}", self.raw)))
    }

    /// The value of `key` as an unsigned number (decimal, or hex with `0x`).
    pub fn u64(&self, key: &str) -> Result<u64, FieldError> {
        let v = self.str(key)?;
        parse_u64(v).ok_or_else(|| FieldError(format!("field `{key}`=`{v}` is not a number in line: {}", self.raw)))
    }
}

/// Every `SELFTEST` line in `log`, in order.
pub fn parse_all(log: &str) -> Vec<SelftestLine> {
    log.lines().filter_map(SelftestLine::parse).collect()
}

/// `line` without ANSI escape sequences (firmware and GRUB paint the screen
/// on the same serial port) and without other control characters.
pub fn strip_terminal_controls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            match chars.peek() {
                // CSI: ESC [ parameters... final byte in 0x40..=0x7e.
                Some('[') => {
                    chars.next();
                    for f in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&f) {
                            break;
                        }
                    }
                }
                // Two-byte sequences (ESC c, ESC 7, ESC (B, ...).
                Some('(') | Some(')') => {
                    chars.next();
                    chars.next();
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// Parses `123` or `0x7b` (any case, `_` separators allowed).
pub fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// The start of `marker` (e.g. `SELFTEST`) in `line`: at the start of the line or
/// after a character that is not a letter, digit or `_`, and followed by
/// whitespace.
fn find_marker(line: &str, marker: &str) -> Option<usize> {
    if marker.is_empty() {
        return None;
    }
    let mut from = 0;
    while let Some(pos) = line[from..].find(marker) {
        let start = from + pos;
        let end = start + marker.len();
        let before_ok = line[..start].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after_ok = line[end..].starts_with(char::is_whitespace);
        if before_ok && after_ok {
            return Some(start);
        }
        from = end;
    }
    None
}

/// Index of the `"` closing a quoted value that starts at `s`: the first `"`
/// followed by the end of the line or by whitespace and `key=`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut first = None;
    for (i, c) in s.char_indices() {
        if c != '"' {
            continue;
        }
        first.get_or_insert(i);
        let after = &s[i + 1..];
        if after.trim().is_empty() || starts_with_field(after) {
            return Some(i);
        }
    }
    first
}

/// `s` is whitespace followed by `identifier=`.
fn starts_with_field(s: &str) -> bool {
    let t = s.trim_start();
    if t.len() == s.len() {
        return false;
    }
    let key_len = t.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(t.len());
    key_len > 0 && t[key_len..].starts_with('=')
}

/// `line` contains `needle` starting at a word boundary (not preceded by an
/// ASCII letter, digit or `_`): `R8=` matches `R8=0x1` but not `CR8=0x1`.
pub fn contains_word(line: &str, needle: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = line[from..].find(needle) {
        let start = from + pos;
        let boundary = line[..start].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        if boundary {
            return true;
        }
        from = start + needle.len().max(1);
    }
    false
}

/// The number written after `key` (e.g. `CR2=`) in `line`, decimal or `0x` hex.
pub fn number_after(line: &str, key: &str) -> Option<u64> {
    let mut from = 0;
    while let Some(pos) = line[from..].find(key) {
        let start = from + pos;
        let boundary = line[..start].chars().next_back().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let after = line[start + key.len()..].trim_start();
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        if boundary {
            if let Some(v) = parse_u64(&after[..end]) {
                return Some(v);
            }
        }
        from = start + key.len().max(1);
    }
    None
}

/// `line` mentions the number `value` as a token of its own: decimal
/// (`14`, `vector=14`, `(14)`) or `0x` hex (`0xe`, `0x0E`).
pub fn mentions_number(line: &str, value: u64) -> bool {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .any(|t| parse_u64(t) == Some(value))
}

/// `line` contains a source location `src/<path>.rs:<line>`.
pub fn has_source_location(line: &str) -> bool {
    let mut from = 0;
    while let Some(pos) = line[from..].find("src/") {
        let start = from + pos;
        let rest = &line[start..];
        let path_end = rest.find(|c: char| c.is_whitespace() || c == ':').unwrap_or(rest.len());
        let path = &rest[..path_end];
        if path.ends_with(".rs") && path.len() > "src/.rs".len() {
            let after = &rest[path_end..];
            if let Some(num) = after.strip_prefix(':') {
                if num.starts_with(|c: char| c.is_ascii_digit()) {
                    return true;
                }
            }
        }
        from = start + 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boot_line_with_prefix() {
        let l = SelftestLine::parse(
            "[    1.234567] CPU0 INFO  SELFTEST boot cpus_online=4 cpus_in_madt=4 timers_ticking=4 free_frames=120000 used_frames=300\r\n",
        )
        .unwrap();
        assert_eq!(l.kind, "boot");
        assert_eq!(l.u64("cpus_online").unwrap(), 4);
        assert_eq!(l.u64("free_frames").unwrap(), 120000);
        assert_eq!(l.u64("used_frames").unwrap(), 300);
        assert!(l.raw.starts_with("SELFTEST boot"));
        assert!(l.u64("missing").is_err());
    }

    #[test]
    fn parses_bare_line() {
        let l =
            SelftestLine::parse("SELFTEST frames cpus=4 allocations=4000 duplicates=0 free_before=10 free_after=10")
                .unwrap();
        assert_eq!(l.kind, "frames");
        assert_eq!(l.fields.len(), 5);
        assert_eq!(l.get("duplicates"), Some("0"));
    }

    #[test]
    fn parses_module_line_with_quoted_cmdline() {
        let l = SelftestLine::parse(
            r#"SELFTEST module index=1 size=102400 fnv1a64=0x0123456789abcdef cmdline="second module beta=7""#,
        )
        .unwrap();
        assert_eq!(l.kind, "module");
        assert_eq!(l.u64("index").unwrap(), 1);
        assert_eq!(l.u64("fnv1a64").unwrap(), 0x0123456789abcdef);
        assert_eq!(l.get("fnv1a64"), Some("0x0123456789abcdef"));
        assert_eq!(l.get("cmdline"), Some("second module beta=7"));
    }

    #[test]
    fn empty_and_inner_quotes() {
        let l = SelftestLine::parse(r#"SELFTEST module index=0 size=1 fnv1a64=0x1 cmdline="""#).unwrap();
        assert_eq!(l.get("cmdline"), Some(""));
        let l = SelftestLine::parse(r#"SELFTEST cmdline="a "quoted" word" x=1"#).unwrap();
        assert_eq!(l.get("cmdline"), Some(r#"a "quoted" word"#));
        assert_eq!(l.get("x"), Some("1"));
        let l = SelftestLine::parse(r#"SELFTEST module cmdline="unterminated"#).unwrap();
        assert_eq!(l.get("cmdline"), Some("unterminated"));
    }

    #[test]
    fn parses_cmdline_line() {
        let l =
            SelftestLine::parse(r#"[    0.100000] CPU0 INFO  SELFTEST cmdline="selftest=boot loglvl=info marker=abc""#)
                .unwrap();
        assert_eq!(l.kind, "cmdline");
        assert_eq!(l.get("cmdline"), Some("selftest=boot loglvl=info marker=abc"));
    }

    #[test]
    fn ignores_other_lines() {
        assert!(SelftestLine::parse("[    1.0] CPU0 INFO  ready").is_none());
        assert!(SelftestLine::parse("NOSELFTEST boot x=1").is_none());
        assert!(SelftestLine::parse("SELFTESTS boot").is_none());
        assert!(SelftestLine::parse("SELFTEST").is_none());
        assert!(SelftestLine::parse("SELFTEST   ").is_none());
        let log = "a\nSELFTEST boot cpus_online=1\nb\n[ 0.1] CPU0 INFO  SELFTEST module index=0\n";
        let all = parse_all(log);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].kind, "module");
    }

    #[test]
    fn terminal_noise_is_ignored() {
        let l = SelftestLine::parse("\u{1b}[0m\u{1b}[2J\u{1b}[01;01H\rSELFTEST boot cpus_online=2\r").unwrap();
        assert_eq!(l.kind, "boot");
        assert_eq!(l.u64("cpus_online").unwrap(), 2);
        assert_eq!(l.raw, "SELFTEST boot cpus_online=2");
        assert_eq!(strip_terminal_controls("a\u{1b}(Bb\u{1b}7c\u{7}d"), "abcd");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0x2A"), Some(42));
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("1_000"), Some(1000));
        assert_eq!(parse_u64("abc"), None);
    }

    #[test]
    fn report_predicates() {
        let l = "EXCEPTION #PF (vector 14) error=0x6 on CPU0";
        assert!(mentions_number(l, 14));
        assert!(mentions_number("EXCEPTION #PF vector=0xe", 14));
        assert!(!mentions_number("EXCEPTION #PF vector=140", 14));
        assert!(contains_word("RAX=0 R8=1", "R8="));
        assert!(!contains_word("CR8=1", "R8="));
        assert_eq!(number_after("RIP=0x1 CR2=0x00007fffdeadb000", "CR2="), Some(0x7fffdeadb000));
        assert_eq!(number_after("CR2 = 0x10", "CR2"), None);
        assert_eq!(number_after("XCR2=5 CR2=6", "CR2="), Some(6));
        assert!(has_source_location("PANIC at hypervisor/src/selftest.rs:42:5: boom"));
        assert!(has_source_location("location src/main.rs:7"));
        assert!(!has_source_location("src/.rs:1 and src/main.rs"));
    }
}

//! Small pure helpers: FNV-1a 64, a seeded pseudo-random generator for test
//! data, unique tokens, and shell-style quoting for printing command lines.

use std::ffi::OsStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// FNV-1a 64 offset basis.
pub const FNV1A64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
pub const FNV1A64_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over `bytes` (the hash the `selftest=boot` module lines print).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV1A64_OFFSET, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(FNV1A64_PRIME))
}

/// A small deterministic generator (xorshift64*) for test data; not for
/// anything security related.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // splitmix64 step so that similar seeds give unrelated streams and
        // the state is never zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// A generator seeded from the clock and the process id, for data that
    /// should differ from run to run. Print the seed so a failure can be replayed.
    pub fn from_time() -> (Self, u64) {
        let seed = seed_from_time();
        (Self::new(seed), seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A token of 16 lowercase hex digits, safe on any command line.
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }
}

/// A seed from the wall clock (nanoseconds) mixed with the process id.
pub fn seed_from_time() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// Quotes one argument for a POSIX shell, only when needed, so that printed
/// command lines can be copied and pasted.
pub fn shell_quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ',' | ':' | '=' | '+' | '@' | '%')
        });
    if safe {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// A whole command line, shell-quoted (program first).
pub fn shell_join<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().map(|a| shell_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// The last `n` lines of `text` (all of it if it has fewer).
pub fn tail_lines(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let mut count = 0;
    for (i, b) in trimmed.bytes().enumerate().rev() {
        if b == b'\n' {
            count += 1;
            if count == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_vectors() {
        // Reference values of the FNV-1a 64 specification.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn rng_is_deterministic_and_seed_sensitive() {
        let a = Rng::new(1).bytes(1000);
        let b = Rng::new(1).bytes(1000);
        let c = Rng::new(2).bytes(1000);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 1000);
        assert_eq!(Rng::new(0).bytes(3).len(), 3);
        // Not degenerate: many distinct byte values.
        let mut seen = [false; 256];
        for &x in &a {
            seen[usize::from(x)] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 200);
    }

    #[test]
    fn token_is_hex() {
        let t = Rng::new(7).token();
        assert_eq!(t.len(), 16);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote(OsStr::new("-m")), "-m");
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(shell_join(["qemu", "-append", "loglvl=info x=1"]), "qemu -append 'loglvl=info x=1'");
    }

    #[test]
    fn tail() {
        assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(tail_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail_lines("", 3), "");
        assert_eq!(tail_lines("x", 0), "");
    }
}

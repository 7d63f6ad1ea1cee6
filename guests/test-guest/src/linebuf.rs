//! A fixed-size text buffer for formatting one line without a heap; text beyond its capacity
//! is dropped and the line ends with `...` to show it was cut.

use core::fmt;

/// A line of at most `N` bytes.
#[derive(Debug, Clone)]
pub struct LineBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuf<N> {
    /// An empty line.
    pub const fn new() -> Self {
        LineBuf { buf: [0; N], len: 0, truncated: false }
    }

    /// Appends bytes, dropping what does not fit.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let room = N - self.len;
        let take = bytes.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        if take < bytes.len() {
            self.truncated = true;
        }
    }

    /// The text so far; a cut line ends with `...`.
    pub fn as_bytes(&mut self) -> &[u8] {
        if self.truncated && N >= 3 {
            self.buf[N - 3..].copy_from_slice(b"...");
            self.len = N;
        }
        &self.buf[..self.len]
    }

    /// Whether text was dropped.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes used.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> fmt::Write for LineBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write;

    #[test]
    fn formats_and_truncates() {
        let mut l = LineBuf::<16>::new();
        assert!(l.is_empty());
        write!(l, "x={} y={:#x}", 5, 255).unwrap();
        assert_eq!(l.as_bytes(), b"x=5 y=0xff");
        assert!(!l.truncated());
        write!(l, " and much more text").unwrap();
        assert!(l.truncated());
        assert_eq!(l.len(), 16);
        assert_eq!(l.as_bytes(), b"x=5 y=0xff an...");
    }
}

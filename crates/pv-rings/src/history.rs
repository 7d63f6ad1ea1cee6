//! Bounded byte history and line assembly for console output.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The last `capacity` bytes written to it (oldest dropped), e.g. a domain's console history
/// for `xl console`-style replay or a management API.
#[derive(Debug, Clone)]
pub struct History {
    buf: VecDeque<u8>,
    capacity: usize,
    dropped: u64,
}

impl History {
    /// An empty history keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> History {
        History { buf: VecDeque::new(), capacity, dropped: 0 }
    }

    /// Appends `bytes`, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, bytes: &[u8]) {
        let keep = if bytes.len() > self.capacity {
            self.dropped += (bytes.len() - self.capacity) as u64;
            &bytes[bytes.len() - self.capacity..]
        } else {
            bytes
        };
        let excess = (self.buf.len() + keep.len()).saturating_sub(self.capacity);
        if excess > 0 {
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
        self.buf.extend(keep.iter().copied());
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes dropped so far because the history was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The held bytes, oldest first, as two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        self.buf.as_slices()
    }

    /// The held bytes, oldest first.
    pub fn to_vec(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }

    /// Forgets the held bytes.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Splits a byte stream into lines for logging: a line ends at `\n`; the `\n` and any `\r`
/// right before it are removed. A line longer than `max_line` bytes is emitted in pieces of
/// `max_line` bytes (so memory stays bounded whatever the guest writes).
#[derive(Debug, Clone)]
pub struct LineAssembler {
    line: Vec<u8>,
    max_line: usize,
}

impl LineAssembler {
    /// An assembler emitting lines of at most `max_line` (at least 1) bytes.
    pub fn new(max_line: usize) -> LineAssembler {
        LineAssembler { line: Vec::new(), max_line: max_line.max(1) }
    }

    /// Feeds `bytes`, calling `emit` with each completed line (without its line ending).
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        for &b in bytes {
            if b == b'\n' {
                while self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                emit(&self.line);
                self.line.clear();
            } else {
                if self.line.len() == self.max_line {
                    emit(&self.line);
                    self.line.clear();
                }
                self.line.push(b);
            }
        }
    }

    /// Bytes of the incomplete line held.
    pub fn pending(&self) -> &[u8] {
        &self.line
    }

    /// Emits the incomplete line, if any (e.g. when the domain dies), with trailing `\r`
    /// removed.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8])) {
        while self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if !self.line.is_empty() {
            emit(&self.line);
        }
        self.line.clear();
    }
}

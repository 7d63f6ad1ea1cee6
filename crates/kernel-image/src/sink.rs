//! The bounded output buffer shared by the decompressors.

use alloc::vec::Vec;

use crate::Error;

/// Size of the scratch buffers the streaming decoders read into.
pub(crate) const CHUNK: usize = 32 * 1024;

/// Decompressed output that refuses to grow past a limit, and reports allocation failure
/// instead of aborting.
pub(crate) struct Sink {
    out: Vec<u8>,
    limit: usize,
}

impl Sink {
    /// A sink expecting about `size_hint` bytes (0: unknown). The hint, capped at the limit,
    /// is reserved at once, so a correct one means one allocation of the right size instead
    /// of doubling (which needs three times the output while the last copy is made); if it
    /// cannot be had, the sink grows as needed.
    pub(crate) fn new(limit: usize, size_hint: usize) -> Self {
        let mut out = Vec::new();
        let _ = out.try_reserve_exact(size_hint.min(limit));
        Sink { out, limit }
    }

    /// Appends `data`, or fails if the total would exceed the limit.
    pub(crate) fn extend(&mut self, data: &[u8]) -> Result<(), Error> {
        let len = self.out.len();
        if data.len() > self.limit - len {
            return Err(Error::OutputTooLarge { limit: self.limit });
        }
        let needed = len + data.len();
        if needed > self.out.capacity() {
            // Amortised doubling, but never past the limit.
            let target = needed.max(self.out.capacity().saturating_mul(2)).min(self.limit);
            self.out.try_reserve_exact(target - len).map_err(|_| Error::OutOfMemory { bytes: target })?;
        }
        self.out.extend_from_slice(data);
        Ok(())
    }

    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// The output from `start` on (for per-block checks).
    pub(crate) fn since(&self, start: usize) -> &[u8] {
        self.out.get(start..).unwrap_or(&[])
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.out
    }
}

/// A zeroed scratch buffer of `len` bytes, or [`Error::OutOfMemory`].
pub(crate) fn scratch(len: usize) -> Result<Vec<u8>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory { bytes: len })?;
    v.resize(len, 0);
    Ok(v)
}

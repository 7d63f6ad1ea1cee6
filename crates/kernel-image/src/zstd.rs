//! zstd: one frame, decoded by `ruzstd`, with its content checksum verified when present.
//! Bytes after the frame (Linux appends the decompressed size) are ignored.

use alloc::vec::Vec;

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};
use ruzstd::io::{ErrorKind, Read};

use crate::sink::{scratch, Sink, CHUNK};
use crate::{Compression, Error};

/// The largest window accepted: 128 MiB (window log 27), the default limit of the reference
/// decoder and of `ruzstd`. The decoder reserves the window up front.
pub(crate) const MAX_WINDOW: u64 = 128 << 20;

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptStream { format: Compression::Zstd, reason }
}

pub(crate) fn decompress(data: &[u8], limit: usize, size_hint: usize) -> Result<Vec<u8>, Error> {
    if !data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(corrupt("bad frame magic (expected 28 b5 2f fd)"));
    }
    let mut input = data;
    let mut frame = FrameDecoder::new();
    frame.set_max_window_size(MAX_WINDOW);
    let mut dec = StreamingDecoder::new_with_decoder(&mut input, frame).map_err(|e| {
        use ruzstd::decoding::errors::FrameDecoderError as E;
        corrupt(match e {
            E::WindowSizeTooBig { .. } => "window larger than 128 MiB",
            E::DictNotProvided { .. } => "frame needs a dictionary",
            _ => "invalid frame header",
        })
    })?;
    let declared = dec.decoder.content_size();
    if declared > limit as u64 {
        return Err(Error::OutputTooLarge { limit });
    }
    let mut buf = scratch(CHUNK)?;
    let mut sink = Sink::new(limit, size_hint);
    loop {
        let n = dec.read(&mut buf).map_err(|e| {
            corrupt(if e.kind() == ErrorKind::UnexpectedEof { "frame ends early" } else { "invalid block data" })
        })?;
        if n == 0 {
            break;
        }
        sink.extend(buf.get(..n).ok_or(corrupt("decoder overran its buffer"))?)?;
    }
    if !dec.decoder.is_finished() {
        return Err(corrupt("frame ends early"));
    }
    if declared != 0 && declared != sink.len() as u64 {
        return Err(corrupt("content size mismatch"));
    }
    if let Some(stored) = dec.decoder.get_checksum_from_data() {
        if dec.decoder.get_calculated_checksum() != Some(stored) {
            return Err(corrupt("content checksum mismatch"));
        }
    }
    Ok(sink.into_vec())
}

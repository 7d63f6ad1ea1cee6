//! gzip (RFC 1952): the member header is parsed here, the raw deflate body is inflated by
//! `miniz_oxide`, and the trailer's CRC-32 and size are checked. Bytes after the member (Linux
//! appends the decompressed size) are ignored.

use alloc::vec::Vec;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::crc::{crc32, Crc32};
use crate::sink::{scratch, Sink, CHUNK};
use crate::{Compression, Error};

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;
/// CM = 8: deflate, the only method RFC 1952 defines.
const CM_DEFLATE: u8 = 8;

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptStream { format: Compression::Gzip, reason }
}

/// The length of the member header (where the deflate data starts).
fn header_len(data: &[u8]) -> Result<usize, Error> {
    let fixed = data.get(..10).ok_or(corrupt("truncated header"))?;
    if fixed[..2] != [0x1f, 0x8b] {
        return Err(corrupt("bad magic (expected 1f 8b)"));
    }
    if fixed[2] != CM_DEFLATE {
        return Err(corrupt("compression method is not deflate"));
    }
    let flags = fixed[3];
    if flags & FRESERVED != 0 {
        return Err(corrupt("reserved header flags set"));
    }
    let mut pos = 10usize;
    if flags & FEXTRA != 0 {
        let xlen = data.get(pos..pos + 2).ok_or(corrupt("truncated FEXTRA length"))?;
        let xlen = usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        pos += 2;
        if data.len() - pos < xlen {
            return Err(corrupt("truncated FEXTRA field"));
        }
        pos += xlen;
    }
    for (flag, what) in [(FNAME, "unterminated FNAME field"), (FCOMMENT, "unterminated FCOMMENT field")] {
        if flags & flag != 0 {
            let rest = data.get(pos..).unwrap_or(&[]);
            let nul = rest.iter().position(|&b| b == 0).ok_or(corrupt(what))?;
            pos += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        let stored = data.get(pos..pos + 2).ok_or(corrupt("truncated FHCRC field"))?;
        let stored = u16::from_le_bytes([stored[0], stored[1]]);
        if stored != crc32(&data[..pos]) as u16 {
            return Err(corrupt("header CRC16 mismatch"));
        }
        pos += 2;
    }
    Ok(pos)
}

pub(crate) fn decompress(data: &[u8], limit: usize, size_hint: usize) -> Result<Vec<u8>, Error> {
    let start = header_len(data)?;
    let mut input = &data[start..];
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut buf = scratch(CHUNK)?;
    let mut sink = Sink::new(limit, size_hint);
    let mut crc = Crc32::new();
    loop {
        let r = inflate(&mut state, input, &mut buf, MZFlush::None);
        let written = buf.get(..r.bytes_written).ok_or(corrupt("inflate overran its buffer"))?;
        sink.extend(written)?;
        crc.update(written);
        input = input.get(r.bytes_consumed..).ok_or(corrupt("inflate overran its input"))?;
        match r.status {
            Ok(MZStatus::StreamEnd) => break,
            Ok(MZStatus::Ok) if r.bytes_consumed > 0 || r.bytes_written > 0 => {}
            Ok(MZStatus::Ok) | Err(MZError::Buf) => {
                if input.is_empty() {
                    return Err(corrupt("deflate data ends early"));
                }
                // No progress with input and output space left: the decoder is stuck.
                if r.bytes_consumed == 0 && r.bytes_written == 0 {
                    return Err(corrupt("invalid deflate data"));
                }
            }
            Ok(MZStatus::NeedDict) => return Err(corrupt("deflate data needs a preset dictionary")),
            Err(_) => return Err(corrupt("invalid deflate data")),
        }
    }
    let trailer = input.get(..8).ok_or(corrupt("truncated trailer"))?;
    let stored_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let stored_size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    if stored_crc != crc.finish() {
        return Err(corrupt("CRC-32 mismatch"));
    }
    if stored_size != sink.len() as u32 {
        return Err(corrupt("size (ISIZE) mismatch"));
    }
    Ok(sink.into_vec())
}

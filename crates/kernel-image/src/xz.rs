//! xz (the `.xz` file format, version 1.x): the container is parsed here (stream header,
//! block headers, block padding and check, index, stream footer); the filters are
//! `lzma-rust2`'s LZMA2 decoder, optionally followed by its x86 BCJ decoder — the chain
//! Linux's `scripts/xz_wrap.sh` produces for x86. Checks: none, CRC32 (Linux's choice) and
//! CRC64. One stream is decoded; bytes after it are ignored.
//!
//! Parsing the container here, rather than using `lzma-rust2`'s `xz` feature, keeps `sha2`
//! (whose SIMD backend does not build for `x86_64-unknown-none`) out of the build.

use alloc::vec::Vec;

use lzma_rust2::filter::bcj::BcjReader;
use lzma_rust2::{Lzma2Reader, Read};

use crate::crc::{crc32, crc64, Crc32};
use crate::sink::{scratch, Sink, CHUNK};
use crate::{Compression, Error};

const HEADER_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
const FOOTER_MAGIC: [u8; 2] = *b"YZ";
const FILTER_X86: u64 = 0x04;
const FILTER_LZMA2: u64 = 0x21;
const CHECK_NONE: u8 = 0x00;
const CHECK_CRC32: u8 = 0x01;
const CHECK_CRC64: u8 = 0x04;

fn corrupt(reason: &'static str) -> Error {
    Error::CorruptStream { format: Compression::Xz, reason }
}

/// A bounds-checked cursor over the stream.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(corrupt(what))?;
        let s = self.data.get(self.pos..end).ok_or(corrupt(what))?;
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An xz variable-length integer: at most 9 bytes, 7 bits each, least significant first,
    /// minimally encoded.
    fn varint(&mut self, what: &'static str) -> Result<u64, Error> {
        let mut v = 0u64;
        for i in 0..9 {
            let b = self.u8(what)?;
            if i > 0 && b == 0 {
                return Err(corrupt("non-minimal variable-length integer"));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("variable-length integer longer than 9 bytes"))
    }

    /// Skips zero padding up to a multiple of four from `base`.
    fn padding(&mut self, base: usize, what: &'static str) -> Result<(), Error> {
        let n = (4 - (self.pos - base) % 4) % 4;
        if self.take(n, what)?.iter().any(|&b| b != 0) {
            return Err(corrupt("non-zero padding"));
        }
        Ok(())
    }
}

/// The size of a check field, by check ID (xz file format 1.x, section 3.4).
fn check_size(id: u8) -> usize {
    match id {
        0 => 0,
        1..=3 => 4,
        4..=6 => 8,
        7..=9 => 16,
        10..=12 => 32,
        _ => 64,
    }
}

/// The LZMA2 dictionary size encoded in its one property byte.
fn lzma2_dict_size(prop: u8) -> Result<u32, Error> {
    match prop {
        0..=39 => Ok((2 | u32::from(prop & 1)) << (prop / 2 + 11)),
        40 => Ok(u32::MAX),
        _ => Err(corrupt("invalid LZMA2 dictionary size")),
    }
}

/// One parsed block header.
struct BlockHeader {
    size: usize,
    compressed_size: Option<u64>,
    uncompressed_size: Option<u64>,
    dict_size: u32,
    /// `Some(start offset)` when the x86 BCJ filter precedes LZMA2.
    x86: Option<u32>,
}

fn block_header(c: &mut Cursor<'_>) -> Result<BlockHeader, Error> {
    let start = c.pos;
    let size = (usize::from(c.u8("truncated block header")?) + 1) * 4;
    let raw = c.data.get(start..start + size).ok_or(corrupt("truncated block header"))?;
    let (body, stored) = raw.split_at(size - 4);
    if crc32(body) != u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]) {
        return Err(corrupt("block header CRC32 mismatch"));
    }
    // Parse within the header only (its CRC is checked, its end is known).
    let mut h = Cursor { data: body, pos: 1 };
    let flags = h.u8("truncated block header")?;
    if flags & 0x3c != 0 {
        return Err(corrupt("reserved block flags set"));
    }
    let compressed_size = if flags & 0x40 != 0 { Some(h.varint("truncated block header")?) } else { None };
    let uncompressed_size = if flags & 0x80 != 0 { Some(h.varint("truncated block header")?) } else { None };
    if compressed_size == Some(0) {
        return Err(corrupt("zero compressed size"));
    }
    let filters = usize::from(flags & 3) + 1;
    let mut x86 = None;
    let mut dict_size = None;
    for i in 0..filters {
        let id = h.varint("truncated filter flags")?;
        let props_len = h.varint("truncated filter flags")?;
        let props_len = usize::try_from(props_len).map_err(|_| corrupt("truncated filter properties"))?;
        let props = h.take(props_len, "truncated filter properties")?;
        let last = i + 1 == filters;
        match id {
            FILTER_LZMA2 if last => {
                let [prop] = props else {
                    return Err(corrupt("LZMA2 filter properties are not one byte"));
                };
                dict_size = Some(lzma2_dict_size(*prop)?);
            }
            FILTER_X86 if !last && x86.is_none() => {
                x86 = Some(match props {
                    [] => 0,
                    [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
                    _ => return Err(corrupt("x86 BCJ filter properties are not 0 or 4 bytes")),
                });
            }
            FILTER_LZMA2 => return Err(corrupt("LZMA2 is not the last filter")),
            other => return Err(Error::UnsupportedXzFilter { id: other }),
        }
    }
    let dict_size = dict_size.ok_or(corrupt("last filter is not LZMA2"))?;
    if h.data[h.pos..].iter().any(|&b| b != 0) {
        return Err(corrupt("non-zero block header padding"));
    }
    c.pos = start + size;
    Ok(BlockHeader { size, compressed_size, uncompressed_size, dict_size, x86 })
}

/// The decoder's error as ours; its allocations are the dictionary, of `dict` bytes.
fn map_err(e: lzma_rust2::Error, dict: usize) -> Error {
    use lzma_rust2::Error as E;
    match e {
        E::Eof => corrupt("LZMA2 data ends early"),
        E::OutOfMemory(_) => Error::OutOfMemory { bytes: dict },
        E::InvalidData(s) | E::InvalidInput(s) | E::Other(s) | E::Unsupported(s) | E::WriteZero(s) => corrupt(s),
        E::Interrupted => corrupt("LZMA2 decoder interrupted"),
    }
}

/// Reads `r` (a decoder with a `dict`-byte dictionary) to its end into `sink`.
fn drain(mut r: impl Read, sink: &mut Sink, buf: &mut [u8], dict: usize) -> Result<(), Error> {
    loop {
        let n = r.read(buf).map_err(|e| map_err(e, dict))?;
        if n == 0 {
            return Ok(());
        }
        sink.extend(buf.get(..n).ok_or(corrupt("decoder overran its buffer"))?)?;
    }
}

pub(crate) fn decompress(data: &[u8], limit: usize, size_hint: usize) -> Result<Vec<u8>, Error> {
    let mut c = Cursor { data, pos: 0 };
    if c.take(6, "truncated stream header")? != HEADER_MAGIC {
        return Err(corrupt("bad stream header magic"));
    }
    let flags = c.take(2, "truncated stream header")?;
    let flags = [flags[0], flags[1]];
    if c.u32("truncated stream header")? != crc32(&flags) {
        return Err(corrupt("stream header CRC32 mismatch"));
    }
    if flags[0] != 0 || flags[1] & 0xf0 != 0 {
        return Err(corrupt("reserved stream flags set"));
    }
    let check = flags[1];
    if !matches!(check, CHECK_NONE | CHECK_CRC32 | CHECK_CRC64) {
        return Err(Error::UnsupportedXzCheck { id: check });
    }

    let mut sink = Sink::new(limit, size_hint);
    let mut buf = scratch(CHUNK)?;
    // (unpadded size, uncompressed size) of each block, to compare with the index.
    let mut records: Vec<(u64, u64)> = Vec::new();
    while *data.get(c.pos).ok_or(corrupt("truncated stream: no index"))? != 0 {
        let block_start = c.pos;
        let h = block_header(&mut c)?;
        // The dictionary never needs to exceed the output, which is bounded by the limit; an
        // untrusted header must not make the decoder allocate up to 4 GiB.
        let dict = h.dict_size.min(u32::try_from(sink.limit().max(4096)).unwrap_or(u32::MAX));
        let out_start = sink.len();
        let mut input = data.get(c.pos..).unwrap_or(&[]);
        let before = input.len();
        let lzma2 = Lzma2Reader::new(&mut input, dict, None);
        match h.x86 {
            Some(start) => drain(BcjReader::new_x86(lzma2, start as usize), &mut sink, &mut buf, dict as usize)?,
            None => drain(lzma2, &mut sink, &mut buf, dict as usize)?,
        }
        let consumed = before - input.len();
        let out_len = (sink.len() - out_start) as u64;
        if h.compressed_size.is_some_and(|s| s != consumed as u64) {
            return Err(corrupt("compressed size differs from the block header"));
        }
        if h.uncompressed_size.is_some_and(|s| s != out_len) {
            return Err(corrupt("uncompressed size differs from the block header"));
        }
        c.pos += consumed;
        c.padding(block_start, "truncated block padding")?;
        let stored = c.take(check_size(check), "truncated block check")?;
        let out = sink.since(out_start);
        let ok = match check {
            CHECK_CRC32 => stored == crc32(out).to_le_bytes(),
            CHECK_CRC64 => stored == crc64(out).to_le_bytes(),
            _ => true,
        };
        if !ok {
            return Err(corrupt("block check mismatch"));
        }
        let unpadded = (h.size + consumed + check_size(check)) as u64;
        records.try_reserve(1).map_err(|_| Error::OutOfMemory { bytes: 16 })?;
        records.push((unpadded, out_len));
    }

    // Index.
    let index_start = c.pos;
    c.pos += 1; // the zero index indicator, checked by the loop above
    if c.varint("truncated index")? != records.len() as u64 {
        return Err(corrupt("index record count differs from the blocks"));
    }
    for &(unpadded, uncompressed) in &records {
        if c.varint("truncated index")? != unpadded || c.varint("truncated index")? != uncompressed {
            return Err(corrupt("index record differs from the block"));
        }
    }
    c.padding(index_start, "truncated index padding")?;
    let mut index_crc = Crc32::new();
    index_crc.update(&data[index_start..c.pos]);
    if c.u32("truncated index")? != index_crc.finish() {
        return Err(corrupt("index CRC32 mismatch"));
    }
    let index_size = c.pos - index_start;

    // Footer.
    let footer_crc = c.u32("truncated stream footer")?;
    let footer = c.take(6, "truncated stream footer")?;
    if crc32(footer) != footer_crc {
        return Err(corrupt("stream footer CRC32 mismatch"));
    }
    let backward = (u64::from(u32::from_le_bytes([footer[0], footer[1], footer[2], footer[3]])) + 1) * 4;
    if backward != index_size as u64 {
        return Err(corrupt("stream footer backward size differs from the index"));
    }
    if footer[4..6] != flags {
        return Err(corrupt("stream footer flags differ from the header"));
    }
    if c.take(2, "truncated stream footer")? != FOOTER_MAGIC {
        return Err(corrupt("bad stream footer magic"));
    }
    Ok(sink.into_vec())
}

//! Turns a guest kernel file into the ELF image that the PVH loader (`pvh-loader`) needs, for
//! the dom0 agent's domain builder: the counterpart of Xen's `xc_dom_bzimageloader.c` plus the
//! ELF check of libelf.
//!
//! This crate owns:
//! - recognising the input: an ELF is returned as it is (borrowed, no copy); a Linux x86
//!   bzImage is located through its boot protocol setup header ([`parse_bzimage`]);
//! - decompressing the bzImage payload by its magic number ([`Compression`]): gzip (RFC 1952
//!   container parsed here, raw deflate by `miniz_oxide`), xz (container parsed here: stream
//!   header, block headers, the x86 BCJ filter and LZMA2 by `lzma-rust2`, CRC32/CRC64 checks,
//!   index and footer) and zstd (`ruzstd`, content checksum verified, windows up to 128 MiB);
//!   bzip2, LZMA, LZO and LZ4 payloads are recognised and refused by name;
//! - bounding the output by a caller-given size ([`unpack`]'s `max_output_bytes`), against
//!   decompression bombs;
//! - checking that the result starts with the ELF magic. Parsing the ELF (program headers,
//!   the PVH entry note) is the loader's job, not this crate's.
//!
//! Input is untrusted: every malformed file yields an [`Error`], never a panic, an overflow or
//! an out-of-bounds access.
//!
//! Boot protocol facts used (Linux `Documentation/arch/x86/boot.rst`, `arch/x86/boot/header.S`):
//! `setup_sects` is the byte at 0x1f1 (0 means 4); the protected-mode code starts at
//! `(setup_sects + 1) * 512`; the `"HdrS"` signature is at 0x202 and the little-endian
//! protocol version at 0x206; from version 2.08 (0x0208) `payload_offset` (0x248, relative to
//! the protected-mode code) and `payload_length` (0x24c) locate the compressed kernel. The
//! compression magic numbers are those of Linux's `lib/decompress.c`.

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod crc;
mod gzip;
mod sink;
mod xz;
mod zstd;

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

/// The ELF magic number.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// The bzImage setup header signature at [`HDRS_OFFSET`].
pub const HDRS_MAGIC: [u8; 4] = *b"HdrS";
/// Offset of `setup_sects` (one byte).
pub const SETUP_SECTS_OFFSET: usize = 0x1f1;
/// Offset of the `"HdrS"` signature.
pub const HDRS_OFFSET: usize = 0x202;
/// Offset of the boot protocol version (u16, `major << 8 | minor`).
pub const VERSION_OFFSET: usize = 0x206;
/// Offset of `payload_offset` (u32, protocol 2.08+).
pub const PAYLOAD_OFFSET_OFFSET: usize = 0x248;
/// Offset of `payload_length` (u32, protocol 2.08+).
pub const PAYLOAD_LENGTH_OFFSET: usize = 0x24c;
/// The first boot protocol version with `payload_offset`/`payload_length`: 2.08.
pub const MIN_PROTOCOL_VERSION: u16 = 0x0208;
/// A bzImage sector: setup sizes count these.
pub const SECTOR_SIZE: usize = 512;

/// The compression of a bzImage payload, recognised by the magic numbers of Linux's
/// `lib/decompress.c` (the first two bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip, `1f 8b` (decompressed).
    Gzip,
    /// xz, `fd 37` (`fd 37 7a 58 5a 00`) (decompressed).
    Xz,
    /// zstd, `28 b5` (`28 b5 2f fd`) (decompressed).
    Zstd,
    /// bzip2, `42 5a` (`BZh`): not supported.
    Bzip2,
    /// Legacy LZMA ("lzma-alone"), `5d 00`: not supported.
    Lzma,
    /// LZO (lzop), `89 4c` (`\x89LZO`): not supported.
    Lzo,
    /// LZ4 legacy frame, `02 21`: not supported.
    Lz4,
}

impl Compression {
    /// The compression whose magic number starts `data`, if any.
    pub fn detect(data: &[u8]) -> Option<Compression> {
        Some(match data.get(..2)? {
            [0x1f, 0x8b] => Compression::Gzip,
            [0xfd, 0x37] => Compression::Xz,
            [0x28, 0xb5] => Compression::Zstd,
            [0x42, 0x5a] => Compression::Bzip2,
            [0x5d, 0x00] => Compression::Lzma,
            [0x89, 0x4c] => Compression::Lzo,
            [0x02, 0x21] => Compression::Lz4,
            _ => return None,
        })
    }

    /// Whether [`decompress`] handles it.
    pub fn is_supported(self) -> bool {
        matches!(self, Compression::Gzip | Compression::Xz | Compression::Zstd)
    }

    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Bzip2 => "bzip2",
            Compression::Lzma => "lzma",
            Compression::Lzo => "lzo",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a kernel file cannot be turned into an ELF image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not an ELF, and too short to hold the bzImage setup header fields that are needed.
    TruncatedHeader {
        /// The file's length.
        len: usize,
        /// The length those header fields need.
        needed: usize,
    },
    /// Neither the ELF magic at 0 nor the `"HdrS"` signature at 0x202.
    UnknownFormat {
        /// The first four bytes of the file.
        magic: [u8; 4],
    },
    /// A bzImage whose boot protocol predates 2.08, so it has no `payload_offset`.
    ProtocolTooOld {
        /// The version field (`major << 8 | minor`).
        version: u16,
    },
    /// `payload_offset` or `payload_length` is zero.
    NoPayload,
    /// The payload does not lie within the file.
    PayloadOutOfBounds {
        /// Its absolute start in the file: `(setup_sects + 1) * 512 + payload_offset`.
        start: u64,
        /// `payload_length`.
        length: u64,
        /// The file's length.
        file_len: usize,
    },
    /// A payload compression that this crate recognises but does not decompress.
    UnsupportedCompression(Compression),
    /// A payload that starts with no known compression magic.
    UnknownCompression {
        /// Its first bytes (zero-padded if it is shorter).
        magic: [u8; 4],
    },
    /// A compressed stream that is malformed, truncated or fails its checksum.
    CorruptStream {
        /// Its format.
        format: Compression,
        /// What is wrong.
        reason: &'static str,
    },
    /// An xz stream using a filter other than LZMA2 preceded optionally by x86 BCJ.
    UnsupportedXzFilter {
        /// The filter ID.
        id: u64,
    },
    /// An xz stream whose integrity check is not none, CRC32 or CRC64.
    UnsupportedXzCheck {
        /// The check ID (e.g. 0x0a for SHA-256).
        id: u8,
    },
    /// The image, or the decompressed kernel, would be larger than the caller's limit.
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An allocation failed.
    OutOfMemory {
        /// The size requested, in bytes.
        bytes: usize,
    },
    /// The decompressed payload is not an ELF file.
    NotElf {
        /// Its first bytes (zero-padded if it is shorter).
        magic: [u8; 4],
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TruncatedHeader { len, needed } => write!(
                f,
                "kernel image is {len} bytes: too short for a bzImage setup header (needs {needed} bytes) and not an ELF"
            ),
            Error::UnknownFormat { magic } => write!(
                f,
                "kernel image is neither an ELF nor a bzImage (starts {:02x} {:02x} {:02x} {:02x}, no \"HdrS\" at 0x202)",
                magic[0], magic[1], magic[2], magic[3]
            ),
            Error::ProtocolTooOld { version } => write!(
                f,
                "bzImage boot protocol {}.{:02} is older than 2.08: no payload_offset/payload_length",
                version >> 8,
                version & 0xff
            ),
            Error::NoPayload => f.write_str("bzImage has a zero payload_offset or payload_length"),
            Error::PayloadOutOfBounds { start, length, file_len } => write!(
                f,
                "bzImage payload at {start:#x} of {length:#x} bytes lies outside the {file_len:#x}-byte file"
            ),
            Error::UnsupportedCompression(c) => write!(f, "unsupported compression: the bzImage payload is {c}"),
            Error::UnknownCompression { magic } => write!(
                f,
                "unknown compression: the bzImage payload starts {:02x} {:02x} {:02x} {:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
            Error::CorruptStream { format, reason } => write!(f, "corrupt {format} payload: {reason}"),
            Error::UnsupportedXzFilter { id } => {
                write!(f, "unsupported xz filter {id:#x} (only x86 BCJ and LZMA2 are supported)")
            }
            Error::UnsupportedXzCheck { id } => {
                write!(f, "unsupported xz check type {id:#x} (only none, CRC32 and CRC64 are supported)")
            }
            Error::OutputTooLarge { limit } => write!(f, "kernel image exceeds the {limit}-byte limit"),
            Error::OutOfMemory { bytes } => write!(f, "out of memory allocating {bytes} bytes"),
            Error::NotElf { magic } => write!(
                f,
                "decompressed kernel is not an ELF (starts {:02x} {:02x} {:02x} {:02x})",
                magic[0], magic[1], magic[2], magic[3]
            ),
        }
    }
}

impl core::error::Error for Error {}

/// The first four bytes of `data`, zero-padded.
fn magic4(data: &[u8]) -> [u8; 4] {
    let mut m = [0; 4];
    for (d, s) in m.iter_mut().zip(data) {
        *d = *s;
    }
    m
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// What [`parse_bzimage`] found in a bzImage's setup header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BzImage<'a> {
    /// The boot protocol version (`major << 8 | minor`), at least 2.08.
    pub protocol_version: u16,
    /// The number of setup sectors (the header's 0 already replaced by 4).
    pub setup_sects: u16,
    /// Where the payload starts in the file.
    pub payload_start: usize,
    /// The payload (`payload_length` bytes).
    pub payload: &'a [u8],
    /// Its compression, if the magic number is known.
    pub compression: Option<Compression>,
}

/// Locates the payload of a bzImage through its boot protocol setup header.
pub fn parse_bzimage(image: &[u8]) -> Result<BzImage<'_>, Error> {
    let needed = VERSION_OFFSET + 2;
    if image.len() < needed {
        return Err(Error::TruncatedHeader { len: image.len(), needed });
    }
    if image[HDRS_OFFSET..HDRS_OFFSET + 4] != HDRS_MAGIC {
        return Err(Error::UnknownFormat { magic: magic4(image) });
    }
    let version = u16_at(image, VERSION_OFFSET).ok_or(Error::TruncatedHeader { len: image.len(), needed })?;
    if version < MIN_PROTOCOL_VERSION {
        return Err(Error::ProtocolTooOld { version });
    }
    let needed = PAYLOAD_LENGTH_OFFSET + 4;
    let truncated = Error::TruncatedHeader { len: image.len(), needed };
    let payload_offset = u32_at(image, PAYLOAD_OFFSET_OFFSET).ok_or(truncated.clone())?;
    let payload_length = u32_at(image, PAYLOAD_LENGTH_OFFSET).ok_or(truncated)?;
    let setup_sects = match image[SETUP_SECTS_OFFSET] {
        0 => 4,
        n => u16::from(n),
    };
    if payload_offset == 0 || payload_length == 0 {
        return Err(Error::NoPayload);
    }
    // All in u64: (255 + 1) * 512 + u32::MAX + u32::MAX cannot overflow.
    let start = (u64::from(setup_sects) + 1) * SECTOR_SIZE as u64 + u64::from(payload_offset);
    let end = start + u64::from(payload_length);
    let out_of_bounds = Error::PayloadOutOfBounds { start, length: u64::from(payload_length), file_len: image.len() };
    let (Ok(start_us), Ok(end_us)) = (usize::try_from(start), usize::try_from(end)) else {
        return Err(out_of_bounds);
    };
    let payload = image.get(start_us..end_us).ok_or(out_of_bounds)?;
    Ok(BzImage {
        protocol_version: version,
        setup_sects,
        payload_start: start_us,
        payload,
        compression: Compression::detect(payload),
    })
}

/// Decompresses one `compression` stream from the start of `data` (bytes after the stream are
/// ignored, such as the decompressed size Linux appends), producing at most
/// `max_output_bytes` bytes.
pub fn decompress(compression: Compression, data: &[u8], max_output_bytes: usize) -> Result<Vec<u8>, Error> {
    decompress_with_hint(compression, data, max_output_bytes, 0)
}

/// [`decompress`] expecting about `size_hint` output bytes (0: unknown), reserved up front.
pub fn decompress_with_hint(
    compression: Compression,
    data: &[u8],
    max_output_bytes: usize,
    size_hint: usize,
) -> Result<Vec<u8>, Error> {
    match compression {
        Compression::Gzip => gzip::decompress(data, max_output_bytes, size_hint),
        Compression::Xz => xz::decompress(data, max_output_bytes, size_hint),
        Compression::Zstd => zstd::decompress(data, max_output_bytes, size_hint),
        other => Err(Error::UnsupportedCompression(other)),
    }
}

/// The ELF image in a kernel file: the file itself if it is an ELF (borrowed), else the
/// decompressed payload of a bzImage, checked to start with the ELF magic. The result is at
/// most `max_output_bytes` long (an ELF input longer than that is refused too).
pub fn unpack(image: &[u8], max_output_bytes: usize) -> Result<Cow<'_, [u8]>, Error> {
    if image.starts_with(&ELF_MAGIC) {
        if image.len() > max_output_bytes {
            return Err(Error::OutputTooLarge { limit: max_output_bytes });
        }
        return Ok(Cow::Borrowed(image));
    }
    let bz = parse_bzimage(image)?;
    let compression = bz.compression.ok_or(Error::UnknownCompression { magic: magic4(bz.payload) })?;
    // Linux appends the decompressed size to every payload (`size_append` in
    // arch/x86/boot/compressed/Makefile): a hint only, the stream decides.
    let hint = bz
        .payload
        .len()
        .checked_sub(4)
        .and_then(|at| bz.payload.get(at..))
        .map_or(0, |tail| u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize);
    let elf = decompress_with_hint(compression, bz.payload, max_output_bytes, hint)?;
    if !elf.starts_with(&ELF_MAGIC) {
        return Err(Error::NotElf { magic: magic4(&elf) });
    }
    Ok(Cow::Owned(elf))
}

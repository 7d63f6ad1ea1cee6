//! Host tests of `kernel-image` on synthetic bzImages built around the fixtures in `data/`
//! (see `data/generate.sh`), and on Debian's kernel when `cargo xtask linux` has cached it.

use std::borrow::Cow;

use kernel_image::{decompress, parse_bzimage, unpack, Compression, Error};

const PAYLOAD_ELF: &[u8] = include_bytes!("data/payload.elf");
const GZ: &[u8] = include_bytes!("data/payload.elf.gz");
const GZ_NAMED: &[u8] = include_bytes!("data/payload-named.elf.gz");
const XZ: &[u8] = include_bytes!("data/payload.elf.xz");
const XZ_CRC64: &[u8] = include_bytes!("data/payload-crc64.elf.xz");
const XZ_NOCHECK: &[u8] = include_bytes!("data/payload-nocheck.elf.xz");
const XZ_SHA256: &[u8] = include_bytes!("data/payload-sha256.elf.xz");
const XZ_DELTA: &[u8] = include_bytes!("data/payload-delta.elf.xz");
const ZST: &[u8] = include_bytes!("data/payload.elf.zst");
const ZEROS_GZ: &[u8] = include_bytes!("data/zeros.elf.gz");
const ZEROS_XZ: &[u8] = include_bytes!("data/zeros.elf.xz");
const ZEROS_ZST: &[u8] = include_bytes!("data/zeros.elf.zst");
const NOT_ELF: &[u8] = include_bytes!("data/not-elf.txt");
const NOT_ELF_GZ: &[u8] = include_bytes!("data/not-elf.txt.gz");
const NOT_ELF_XZ: &[u8] = include_bytes!("data/not-elf.txt.xz");
const NOT_ELF_ZST: &[u8] = include_bytes!("data/not-elf.txt.zst");
/// The decompressed size of the `zeros.elf.*` fixtures.
const ZEROS_LEN: usize = 4 << 20;
const LIMIT: usize = 64 << 20;

/// A distinctive `payload_offset`, like the `ZO_input_data` of real kernels.
const PAYLOAD_OFFSET: u32 = 0x3a5;

/// A bzImage: boot sector and `setup_sects` setup sectors (0 meaning 4), the protected-mode
/// code with the payload `PAYLOAD_OFFSET` bytes in, then the decompressed size Linux appends.
fn bzimage(setup_sects: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let sects = if setup_sects == 0 { 4 } else { usize::from(setup_sects) };
    let start = (sects + 1) * 512 + PAYLOAD_OFFSET as usize;
    let mut b = vec![0xccu8; start];
    b[0x1f1] = setup_sects;
    b[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    b[0x200..0x202].copy_from_slice(&[0xeb, 0x66]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&version.to_le_bytes());
    b[0x248..0x24c].copy_from_slice(&PAYLOAD_OFFSET.to_le_bytes());
    b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    b.extend_from_slice(&0x0123_4567u32.to_le_bytes());
    b
}

fn bz(payload: &[u8]) -> Vec<u8> {
    bzimage(27, 0x020f, payload)
}

fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// CRC-32 (IEEE), bitwise: independent of the crate's table-driven one.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fn unpacked(image: &[u8]) -> Vec<u8> {
    match unpack(image, LIMIT) {
        Ok(Cow::Owned(v)) => v,
        Ok(Cow::Borrowed(_)) => panic!("a bzImage must be decompressed"),
        Err(e) => panic!("unpack failed: {e}"),
    }
}

fn corrupt_format(e: &Error) -> Option<Compression> {
    match e {
        Error::CorruptStream { format, .. } => Some(*format),
        _ => None,
    }
}

// --- ELF passthrough -------------------------------------------------------------------

#[test]
fn elf_is_returned_borrowed() {
    let out = unpack(PAYLOAD_ELF, LIMIT).unwrap();
    assert!(matches!(out, Cow::Borrowed(b) if std::ptr::eq(b, PAYLOAD_ELF)));
}

#[test]
fn elf_over_the_limit_is_refused() {
    let e = unpack(PAYLOAD_ELF, PAYLOAD_ELF.len() - 1).unwrap_err();
    assert_eq!(e, Error::OutputTooLarge { limit: PAYLOAD_ELF.len() - 1 });
    assert!(unpack(PAYLOAD_ELF, PAYLOAD_ELF.len()).is_ok());
}

// --- Supported compressions ------------------------------------------------------------

#[test]
fn gzip_bzimage() {
    assert_eq!(unpacked(&bz(GZ)), PAYLOAD_ELF);
    let image = bz(GZ);
    let info = parse_bzimage(&image).unwrap();
    assert_eq!(info.compression, Some(Compression::Gzip));
    assert_eq!(info.protocol_version, 0x020f);
    assert_eq!(info.setup_sects, 27);
    assert_eq!(info.payload_start, 28 * 512 + PAYLOAD_OFFSET as usize);
    assert_eq!(info.payload, GZ);
}

#[test]
fn gzip_with_file_name() {
    assert_eq!(GZ_NAMED[3] & 0x08, 0x08, "fixture must have FNAME");
    assert_eq!(unpacked(&bz(GZ_NAMED)), PAYLOAD_ELF);
}

/// A gzip member with every optional header field: FEXTRA, FNAME, FCOMMENT and FHCRC.
fn gzip_all_fields(bad_hcrc: bool) -> Vec<u8> {
    assert_eq!(GZ[3], 0, "fixture must have no optional fields");
    let mut g = vec![0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 2, 3];
    g.extend_from_slice(&5u16.to_le_bytes());
    g.extend_from_slice(b"AB\x03\x00z");
    g.extend_from_slice(b"vmlinux\0a comment\0");
    let hcrc = crc32(&g) as u16 ^ u16::from(bad_hcrc);
    g.extend_from_slice(&hcrc.to_le_bytes());
    g.extend_from_slice(&GZ[10..]);
    g
}

#[test]
fn gzip_with_every_optional_header_field() {
    assert_eq!(unpacked(&bz(&gzip_all_fields(false))), PAYLOAD_ELF);
    let e = unpack(&bz(&gzip_all_fields(true)), LIMIT).unwrap_err();
    assert_eq!(e, Error::CorruptStream { format: Compression::Gzip, reason: "header CRC16 mismatch" });
}

#[test]
fn xz_bzimage_like_linux() {
    // CRC32 check, x86 BCJ filter, LZMA2: what scripts/xz_wrap.sh makes for x86.
    assert_eq!(unpacked(&bz(XZ)), PAYLOAD_ELF);
    assert_eq!(parse_bzimage(&bz(XZ)).unwrap().compression, Some(Compression::Xz));
}

#[test]
fn xz_crc64_and_no_check() {
    assert_eq!(unpacked(&bz(XZ_CRC64)), PAYLOAD_ELF);
    assert_eq!(unpacked(&bz(XZ_NOCHECK)), PAYLOAD_ELF);
}

#[test]
fn zstd_bzimage() {
    assert_eq!(unpacked(&bz(ZST)), PAYLOAD_ELF);
    assert_eq!(parse_bzimage(&bz(ZST)).unwrap().compression, Some(Compression::Zstd));
}

#[test]
fn setup_sects_zero_means_four() {
    let image = bzimage(0, 0x0208, GZ);
    assert_eq!(parse_bzimage(&image).unwrap().payload_start, 5 * 512 + PAYLOAD_OFFSET as usize);
    assert_eq!(unpacked(&image), PAYLOAD_ELF);
}

#[test]
fn payload_without_trailing_size() {
    let mut image = bz(XZ);
    image.truncate(image.len() - 4);
    assert_eq!(unpacked(&image), PAYLOAD_ELF);
}

// --- Header errors ---------------------------------------------------------------------

#[test]
fn truncated_header() {
    let e = unpack(&[0u8; 0x100], LIMIT).unwrap_err();
    assert_eq!(e, Error::TruncatedHeader { len: 0x100, needed: 0x208 });
    assert_eq!(unpack(&[], LIMIT).unwrap_err(), Error::TruncatedHeader { len: 0, needed: 0x208 });
    // "HdrS" and a 2.08 version, but the file ends before payload_length.
    let image = bz(GZ);
    let e = unpack(&image[..0x24e], LIMIT).unwrap_err();
    assert_eq!(e, Error::TruncatedHeader { len: 0x24e, needed: 0x250 });
}

#[test]
fn bad_magic() {
    let mut image = bz(GZ);
    image[0x202..0x206].copy_from_slice(b"HdrT");
    image[..4].copy_from_slice(b"MZ\x90\x00");
    assert_eq!(unpack(&image, LIMIT).unwrap_err(), Error::UnknownFormat { magic: *b"MZ\x90\x00" });
}

#[test]
fn old_protocol_version() {
    let e = unpack(&bzimage(27, 0x0207, GZ), LIMIT).unwrap_err();
    assert_eq!(e, Error::ProtocolTooOld { version: 0x0207 });
    assert!(e.to_string().contains("2.07"), "{e}");
    assert!(unpack(&bzimage(27, 0x0208, GZ), LIMIT).is_ok());
}

#[test]
fn zero_payload_fields() {
    let mut image = bz(GZ);
    set_u32(&mut image, 0x248, 0);
    assert_eq!(unpack(&image, LIMIT).unwrap_err(), Error::NoPayload);
    let mut image = bz(GZ);
    set_u32(&mut image, 0x24c, 0);
    assert_eq!(unpack(&image, LIMIT).unwrap_err(), Error::NoPayload);
}

#[test]
fn payload_out_of_bounds() {
    let image = bz(GZ);
    let start = 28 * 512 + u64::from(PAYLOAD_OFFSET);
    // Length one past the end of the file.
    let mut long = image.clone();
    let len = (image.len() as u64 - start + 1) as u32;
    set_u32(&mut long, 0x24c, len);
    let e = unpack(&long, LIMIT).unwrap_err();
    assert_eq!(e, Error::PayloadOutOfBounds { start, length: u64::from(len), file_len: image.len() });
    // Offsets and lengths at the u32 maximum must not overflow.
    let mut huge = image.clone();
    set_u32(&mut huge, 0x248, u32::MAX);
    set_u32(&mut huge, 0x24c, u32::MAX);
    let e = unpack(&huge, LIMIT).unwrap_err();
    assert!(matches!(e, Error::PayloadOutOfBounds { length, .. } if length == u64::from(u32::MAX)), "{e:?}");
    // A bzImage cut inside its payload.
    let e = unpack(&image[..start as usize + 10], LIMIT).unwrap_err();
    assert!(matches!(e, Error::PayloadOutOfBounds { .. }), "{e:?}");
}

// --- Compression errors ----------------------------------------------------------------

#[test]
fn unsupported_compressions_are_named() {
    for (magic, c) in [
        (&b"BZh91AY&SY"[..], Compression::Bzip2),
        (&[0x5d, 0x00, 0x00, 0x80, 0x00][..], Compression::Lzma),
        (&b"\x89LZO\x00\r\n\x1a\n"[..], Compression::Lzo),
        (&[0x02, 0x21, 0x4c, 0x18][..], Compression::Lz4),
    ] {
        let mut payload = magic.to_vec();
        payload.extend_from_slice(&[0x55; 64]);
        let e = unpack(&bz(&payload), LIMIT).unwrap_err();
        assert_eq!(e, Error::UnsupportedCompression(c));
        let msg = e.to_string();
        assert!(msg.contains("unsupported compression") && msg.contains(c.name()), "{msg}");
        assert_eq!(decompress(c, &payload, LIMIT).unwrap_err(), Error::UnsupportedCompression(c));
    }
}

#[test]
fn unknown_compression() {
    let e = unpack(&bz(b"\x7fELF is not compressed"), LIMIT).unwrap_err();
    assert_eq!(e, Error::UnknownCompression { magic: *b"\x7fELF" });
    let e = unpack(&bz(b"Z"), LIMIT).unwrap_err();
    assert_eq!(e, Error::UnknownCompression { magic: [b'Z', 0, 0, 0] });
    assert!(e.to_string().contains("unknown compression"), "{e}");
}

#[test]
fn corrupt_streams() {
    for (stream, c) in [(GZ, Compression::Gzip), (XZ, Compression::Xz), (ZST, Compression::Zstd)] {
        // A flipped byte in the middle of the compressed data.
        let mut bad = stream.to_vec();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x5a;
        let e = unpack(&bz(&bad), LIMIT).unwrap_err();
        assert_eq!(corrupt_format(&e), Some(c), "{c}: {e:?}");
        // Cut short.
        let e = unpack(&bz(&stream[..stream.len() / 2]), LIMIT).unwrap_err();
        assert_eq!(corrupt_format(&e), Some(c), "{c}: {e:?}");
        // Only the magic.
        let e = unpack(&bz(&stream[..2]), LIMIT).unwrap_err();
        assert_eq!(corrupt_format(&e), Some(c), "{c}: {e:?}");
        assert!(e.to_string().starts_with(&format!("corrupt {c} payload: ")), "{e}");
    }
}

#[test]
fn checksum_mismatches() {
    // gzip trailer CRC-32, then ISIZE.
    let mut g = GZ.to_vec();
    let n = g.len();
    g[n - 8] ^= 1;
    assert_eq!(
        unpack(&bz(&g), LIMIT).unwrap_err(),
        Error::CorruptStream { format: Compression::Gzip, reason: "CRC-32 mismatch" }
    );
    let mut g = GZ.to_vec();
    g[n - 4] ^= 1;
    assert_eq!(
        unpack(&bz(&g), LIMIT).unwrap_err(),
        Error::CorruptStream { format: Compression::Gzip, reason: "size (ISIZE) mismatch" }
    );
    // zstd content checksum: the last four bytes of the frame.
    let mut z = ZST.to_vec();
    let n = z.len();
    z[n - 1] ^= 1;
    assert_eq!(
        unpack(&bz(&z), LIMIT).unwrap_err(),
        Error::CorruptStream { format: Compression::Zstd, reason: "content checksum mismatch" }
    );
    // xz stream footer: CRC32, backward size, flags, "YZ".
    let mut x = XZ.to_vec();
    let n = x.len();
    x[n - 2] = b'X';
    assert_eq!(
        unpack(&bz(&x), LIMIT).unwrap_err(),
        Error::CorruptStream { format: Compression::Xz, reason: "bad stream footer magic" }
    );
}

#[test]
fn xz_block_check_mismatch() {
    // The CRC32 of the only block sits just before the index; find the index through the
    // footer's backward size and flip a bit of the check.
    let mut x = XZ.to_vec();
    let n = x.len();
    let backward = (u32::from_le_bytes(x[n - 8..n - 4].try_into().unwrap()) as usize + 1) * 4;
    let index = n - 12 - backward;
    x[index - 1] ^= 0x80;
    assert_eq!(
        unpack(&bz(&x), LIMIT).unwrap_err(),
        Error::CorruptStream { format: Compression::Xz, reason: "block check mismatch" }
    );
}

#[test]
fn xz_unsupported_check_and_filter() {
    assert_eq!(unpack(&bz(XZ_SHA256), LIMIT).unwrap_err(), Error::UnsupportedXzCheck { id: 0x0a });
    assert_eq!(unpack(&bz(XZ_DELTA), LIMIT).unwrap_err(), Error::UnsupportedXzFilter { id: 0x03 });
}

#[test]
fn output_over_the_limit() {
    for (stream, c) in [(ZEROS_GZ, Compression::Gzip), (ZEROS_XZ, Compression::Xz), (ZEROS_ZST, Compression::Zstd)] {
        let limit = 1 << 20;
        let e = unpack(&bz(stream), limit).unwrap_err();
        assert_eq!(e, Error::OutputTooLarge { limit }, "{c}");
        assert_eq!(unpack(&bz(stream), ZEROS_LEN - 1).unwrap_err(), Error::OutputTooLarge { limit: ZEROS_LEN - 1 });
        // Exactly at the limit is fine.
        let image = bz(stream);
        let out = unpack(&image, ZEROS_LEN).unwrap();
        assert_eq!(out.len(), ZEROS_LEN, "{c}");
        assert!(out.starts_with(b"\x7fELF") && out[4..].iter().all(|&b| b == 0), "{c}");
        assert_eq!(unpack(&bz(stream), 0).unwrap_err(), Error::OutputTooLarge { limit: 0 });
    }
}

#[test]
fn payload_that_is_not_elf() {
    for (stream, c) in
        [(NOT_ELF_GZ, Compression::Gzip), (NOT_ELF_XZ, Compression::Xz), (NOT_ELF_ZST, Compression::Zstd)]
    {
        assert_eq!(decompress(c, stream, LIMIT).unwrap(), NOT_ELF, "{c}");
        let e = unpack(&bz(stream), LIMIT).unwrap_err();
        assert_eq!(e, Error::NotElf { magic: *b"#!/b" }, "{c}");
        assert!(e.to_string().contains("not an ELF"), "{e}");
    }
}

/// Every truncation and many single-byte corruptions of each stream give a result or an
/// error, never a panic, and never output past the limit.
#[test]
fn mangled_streams_never_panic() {
    let limit = 16 << 10;
    for (stream, c) in [(GZ, Compression::Gzip), (XZ, Compression::Xz), (ZST, Compression::Zstd)] {
        for len in 0..stream.len() {
            if let Ok(out) = decompress(c, &stream[..len], limit) {
                assert!(out.len() <= limit);
            }
        }
        for pos in (0..stream.len()).step_by(3) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = stream.to_vec();
                bad[pos] ^= flip;
                if let Ok(out) = decompress(c, &bad, limit) {
                    assert!(out.len() <= limit);
                }
            }
        }
    }
    // The setup header fields too.
    let image = bz(GZ);
    for off in [0x1f1, 0x206, 0x207, 0x248, 0x24b, 0x24c, 0x24f] {
        for v in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = image.clone();
            bad[off] = v;
            let _ = unpack(&bad, limit);
        }
    }
}

// --- Debian's kernel -------------------------------------------------------------------

/// Debian's bzImage (xz, x86 BCJ) as `cargo xtask linux` caches it under
/// `target/linux/kernel/boot/`, compared with the vmlinux that `xz` extracted next to it.
/// Runs only when that cache exists; otherwise it prints "skipped".
#[test]
fn debian_vmlinuz_if_cached() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/linux");
    let find = |dir: &std::path::Path, prefix: &str| {
        std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
    };
    let Some(vmlinuz) = find(&root.join("kernel/boot"), "vmlinuz-") else {
        println!("skipped: no Debian vmlinuz under {} (run `cargo xtask linux`)", root.display());
        return;
    };
    let image = std::fs::read(&vmlinuz).unwrap();
    let info = parse_bzimage(&image).unwrap();
    assert!(info.protocol_version >= 0x0208);
    let t = std::time::Instant::now();
    let elf = unpack(&image, 512 << 20).unwrap_or_else(|e| panic!("{}: {e}", vmlinuz.display()));
    println!(
        "{}: protocol {:#06x}, {} payload of {} bytes -> {} byte ELF in {:?}",
        vmlinuz.display(),
        info.protocol_version,
        info.compression.map_or("unknown", Compression::name),
        info.payload.len(),
        elf.len(),
        t.elapsed()
    );
    assert!(elf.starts_with(b"\x7fELF\x02\x01"), "not an ELF64 little-endian file");
    if let Some(vmlinux) = find(&root, "vmlinux-") {
        let expected = std::fs::read(&vmlinux).unwrap();
        assert!(*elf == expected[..], "differs from {}", vmlinux.display());
    }
}

//! `write_start_info` and `guest_memmap`: layout read back at the documented offsets, errors.

use super::builder::{get_u32, get_u64, TestMemory};
use crate::*;

const GUEST: usize = 4 << 20;

/// A NUL-terminated string at `paddr` in `mem`.
fn c_string(mem: &[u8], paddr: u64) -> &[u8] {
    let s = &mem[paddr as usize..];
    &s[..s.iter().position(|&b| b == 0).expect("NUL-terminated")]
}

fn sample_memmap() -> Vec<MemmapEntry> {
    let mut map = vec![MemmapEntry { addr: 0, size: 0, kind: 0 }; 4];
    let n = guest_memmap(GUEST as u64, &mut map).unwrap();
    map.truncate(n);
    map.push(MemmapEntry { addr: 0xfc00_0000, size: 0x1000, kind: E820_NVS });
    map
}

#[test]
fn layout_reads_back_at_the_documented_offsets() {
    let modules = [
        Module { paddr: 0x20_0000, size: 0x1234, cmdline: b"initrd" },
        Module { paddr: 0x30_0000, size: 0x10, cmdline: b"" },
        Module { paddr: 0x31_0000, size: 0, cmdline: b"config x=1" },
    ];
    let memmap = sample_memmap();
    let info = StartInfo {
        cmdline: b"console=hvc0 root=/dev/xvda1 ro",
        modules: &modules,
        memmap: &memmap,
        rsdp_paddr: 0xe_0000,
        flags: SIF_PRIVILEGED | SIF_INITDOMAIN,
    };
    let at = 0x10_5003;
    let limit = 0x10_6000;
    let mut mem = TestMemory::new(GUEST);
    let si = write_start_info(&info, &mut mem, at, limit).unwrap();
    assert_eq!(si, 0x10_5008, "8-byte aligned");
    let m = &mem.bytes;
    let s = si as usize;

    // struct hvm_start_info
    assert_eq!(get_u32(m, s), 0x336e_c578);
    assert_eq!(get_u32(m, s + 4), 1);
    assert_eq!(get_u32(m, s + 8), 3);
    assert_eq!(get_u32(m, s + 12), 3);
    let modlist = get_u64(m, s + 16);
    let cmdline = get_u64(m, s + 24);
    assert_eq!(get_u64(m, s + 32), 0xe_0000);
    let memmap_paddr = get_u64(m, s + 40);
    assert_eq!(get_u32(m, s + 48), memmap.len() as u32);
    assert_eq!(get_u32(m, s + 52), 0);
    assert_eq!(c_string(m, cmdline), b"console=hvc0 root=/dev/xvda1 ro");

    // struct hvm_modlist_entry[3]
    for (i, module) in modules.iter().enumerate() {
        let e = modlist as usize + 32 * i;
        assert_eq!(get_u64(m, e), module.paddr);
        assert_eq!(get_u64(m, e + 8), module.size);
        let cmd = get_u64(m, e + 16);
        if module.cmdline.is_empty() {
            assert_eq!(cmd, 0, "empty command line is absent");
        } else {
            assert_eq!(c_string(m, cmd), module.cmdline);
            assert_eq!(cmd % 8, 0);
        }
        assert_eq!(get_u64(m, e + 24), 0);
    }

    // struct hvm_memmap_table_entry[]
    for (i, entry) in memmap.iter().enumerate() {
        let e = memmap_paddr as usize + 24 * i;
        assert_eq!(get_u64(m, e), entry.addr);
        assert_eq!(get_u64(m, e + 8), entry.size);
        assert_eq!(get_u32(m, e + 16), entry.kind);
        assert_eq!(get_u32(m, e + 20), 0);
    }

    // Everything is 8-byte aligned, in the window, and does not overlap.
    for p in [modlist, cmdline, memmap_paddr] {
        assert_eq!(p % 8, 0);
        assert!(p >= si + 56 && p < limit);
    }
    assert!(modlist + 3 * 32 <= memmap_paddr);
    assert!(memmap_paddr + 24 * memmap.len() as u64 <= cmdline);
    let used = info.size().unwrap();
    let end = si + used;
    assert!(end <= limit);
    // The last byte used is the NUL of the last string.
    assert_eq!(m[end as usize - 1], 0);
    assert_eq!(&m[end as usize - 11..end as usize - 1], b"config x=1");
    // Outside [si, end) nothing is touched.
    assert!(m[..s].iter().all(|&b| b == 0xaa));
    assert!(m[end as usize..].iter().all(|&b| b == 0xaa));
}

#[test]
fn absent_items_have_address_zero() {
    let info = StartInfo { cmdline: b"", modules: &[], memmap: &[], rsdp_paddr: 0, flags: 0 };
    assert_eq!(info.size(), Some(56));
    let mut mem = TestMemory::new(0x2000);
    let si = write_start_info(&info, &mut mem, 0x1000, 0x1038).unwrap();
    assert_eq!(si, 0x1000);
    let m = &mem.bytes;
    assert_eq!(get_u32(m, 0x1000), XEN_HVM_START_MAGIC_VALUE);
    assert_eq!(get_u32(m, 0x1004), HVM_START_INFO_VERSION);
    for off in [8, 12, 48, 52] {
        assert_eq!(get_u32(m, 0x1000 + off), 0, "u32 at {off}");
    }
    for off in [16, 24, 32, 40] {
        assert_eq!(get_u64(m, 0x1000 + off), 0, "u64 at {off}");
    }
    assert_eq!(m[0x1038], 0xaa);
}

#[test]
fn start_info_too_large() {
    let memmap = sample_memmap();
    let modules = [Module { paddr: 0x20_0000, size: 0x1000, cmdline: b"initrd" }];
    let info = StartInfo { cmdline: b"quiet", modules: &modules, memmap: &memmap, rsdp_paddr: 0, flags: 0 };
    let size = info.size().unwrap();
    assert_eq!(size, 56 + 32 + 24 * memmap.len() as u64 + 8 + 7);

    // One byte short, with a misaligned `at`.
    let mut mem = TestMemory::new(GUEST);
    let e = write_start_info(&info, &mut mem, 0x8001, 0x8008 + size - 1).unwrap_err();
    assert_eq!(e, LoadError::StartInfoTooLarge { needed: size, available: size - 1 });
    assert_eq!(mem.calls, 0, "nothing written");
    // Just enough.
    assert_eq!(write_start_info(&info, &mut mem, 0x8001, 0x8008 + size), Ok(0x8008));

    // A window that ends before it starts, and one at the top of the address space.
    let e = write_start_info(&info, &mut mem, 0x9000, 0x8000).unwrap_err();
    assert_eq!(e, LoadError::StartInfoTooLarge { needed: size, available: 0 });
    let e = write_start_info(&info, &mut mem, u64::MAX - 16, u64::MAX).unwrap_err();
    assert_eq!(e, LoadError::StartInfoTooLarge { needed: u64::MAX, available: 15 });
    let e = write_start_info(&info, &mut mem, u64::MAX, u64::MAX).unwrap_err();
    assert_eq!(e, LoadError::StartInfoTooLarge { needed: u64::MAX, available: 0 });
}

#[test]
fn cmdline_contains_nul() {
    let mut mem = TestMemory::new(GUEST);
    let info = StartInfo { cmdline: b"a\0b", modules: &[], memmap: &[], rsdp_paddr: 0, flags: 0 };
    assert_eq!(write_start_info(&info, &mut mem, 0, 0x1000), Err(LoadError::CmdlineContainsNul { module: None }));
    let modules = [Module { paddr: 0, size: 0, cmdline: b"ok" }, Module { paddr: 0, size: 0, cmdline: b"x\0" }];
    let info = StartInfo { cmdline: b"", modules: &modules, memmap: &[], rsdp_paddr: 0, flags: 0 };
    assert_eq!(write_start_info(&info, &mut mem, 0, 0x1000), Err(LoadError::CmdlineContainsNul { module: Some(1) }));
    assert_eq!(mem.calls, 0);
}

#[test]
fn bad_module() {
    let mut mem = TestMemory::new(GUEST);
    let modules = [Module { paddr: u64::MAX - 1, size: 2, cmdline: b"" }];
    let info = StartInfo { cmdline: b"", modules: &modules, memmap: &[], rsdp_paddr: 0, flags: 0 };
    assert_eq!(write_start_info(&info, &mut mem, 0, 0x1000), Err(LoadError::BadModule { index: 0 }));
}

#[test]
fn window_beyond_guest_memory() {
    let info = StartInfo { cmdline: b"console=hvc0", modules: &[], memmap: &[], rsdp_paddr: 0, flags: 0 };
    let mut mem = TestMemory::new(0x1000);
    let e = write_start_info(&info, &mut mem, 0xfc0, 0x2000).unwrap_err();
    assert_eq!(e, LoadError::Guest(GuestMemoryError { gpa: 0xfc0, len: 56 + 13 }));
    assert_eq!(mem.calls, 0);

    // Guest memory refusing a write part way.
    let mut mem = TestMemory::new(0x2000);
    mem.fail_call = Some(1);
    let e = write_start_info(&info, &mut mem, 0, 0x2000).unwrap_err();
    assert!(matches!(e, LoadError::Guest(_)), "{e:?}");
}

#[test]
fn guest_memmap_shapes() {
    let ram = |addr, size| MemmapEntry { addr, size, kind: E820_RAM };
    let hole = MemmapEntry { addr: 0xa_0000, size: 0x6_0000, kind: E820_RESERVED };
    let cases: [(u64, &[MemmapEntry]); 7] = [
        (0, &[]),
        (0x8000, &[ram(0, 0x8000)]),
        (0xa_0000, &[ram(0, 0xa_0000)]),
        (0xc_0000, &[ram(0, 0xa_0000), hole]),
        (0x10_0000, &[ram(0, 0xa_0000), hole]),
        (0x10_1000, &[ram(0, 0xa_0000), hole, ram(0x10_0000, 0x1000)]),
        (u64::MAX, &[ram(0, 0xa_0000), hole, ram(0x10_0000, u64::MAX - 0x10_0000)]),
    ];
    for (ram_bytes, want) in cases {
        let mut out = [MemmapEntry { addr: 7, size: 7, kind: 7 }; GUEST_MEMMAP_MAX_ENTRIES + 1];
        let n = guest_memmap(ram_bytes, &mut out).unwrap();
        assert_eq!(&out[..n], want, "{ram_bytes:#x}");
        assert_eq!(out[n], MemmapEntry { addr: 7, size: 7, kind: 7 }, "rest untouched");
    }
    let mut exact = [MemmapEntry { addr: 0, size: 0, kind: 0 }; GUEST_MEMMAP_MAX_ENTRIES];
    assert_eq!(guest_memmap(64 << 20, &mut exact), Ok(3));
}

#[test]
fn memmap_buffer_too_small() {
    let mut out = [MemmapEntry { addr: 0, size: 0, kind: 0 }; 2];
    assert_eq!(guest_memmap(64 << 20, &mut out), Err(LoadError::MemmapBufferTooSmall { needed: 3 }));
    assert_eq!(guest_memmap(0, &mut []), Ok(0));
}

#[test]
fn every_error_displays() {
    let all = [
        LoadError::TruncatedHeader,
        LoadError::BadMagic,
        LoadError::UnsupportedClass(3),
        LoadError::NotLittleEndian(2),
        LoadError::UnsupportedVersion(0),
        LoadError::NotExecutable(3),
        LoadError::UnsupportedMachine(40),
        LoadError::BadProgramHeaders(TableProblem::Missing),
        LoadError::BadProgramHeaders(TableProblem::EntrySize(7)),
        LoadError::BadProgramHeaders(TableProblem::OutsideFile),
        LoadError::BadProgramHeaders(TableProblem::ExtendedNumbering),
        LoadError::BadSectionHeaders(TableProblem::OutsideFile),
        LoadError::SegmentOutOfFile { index: 5 },
        LoadError::SegmentMemSmallerThanFile { index: 5 },
        LoadError::AddressOverflow { index: 5 },
        LoadError::NoLoadableSegments,
        LoadError::TooManySegments,
        LoadError::SegmentsOverlap { a: 5, b: 6 },
        LoadError::SectionOutOfFile { index: 5 },
        LoadError::NoPvhEntryNote,
        LoadError::BadNote { location: NoteLocation::Segment(5), problem: NoteProblem::Truncated },
        LoadError::BadNote { location: NoteLocation::Section(5), problem: NoteProblem::EntrySize(2) },
        LoadError::BadNote { location: NoteLocation::Segment(5), problem: NoteProblem::ConflictingEntries },
        LoadError::EntryAbove4G(0x1_0000_0000),
        LoadError::EntryOutsideSegments(0x5000),
        LoadError::SegmentOutsideGuest { index: 5, paddr: 0x1000, end: 0x3000, guest_size: 0x2000 },
        LoadError::StartInfoTooLarge { needed: 0x100, available: 0x80 },
        LoadError::CmdlineContainsNul { module: None },
        LoadError::CmdlineContainsNul { module: Some(5) },
        LoadError::BadModule { index: 5 },
        LoadError::MemmapBufferTooSmall { needed: 3 },
        LoadError::Guest(GuestMemoryError { gpa: 0x1000, len: 5 }),
    ];
    let mut seen = std::collections::HashSet::new();
    for e in all {
        let text = e.to_string();
        assert!(!text.is_empty());
        assert!(seen.insert(text.clone()), "duplicate message {text}");
    }
    let e = LoadError::SegmentOutsideGuest { index: 2, paddr: 0x10_0000, end: 0x50_0000, guest_size: 0x40_0000 };
    assert_eq!(e.to_string(), "segment 2 [0x100000, 0x500000) does not fit in guest memory of 0x400000 bytes");
    let e = LoadError::BadNote { location: NoteLocation::Section(7), problem: NoteProblem::EntrySize(2) };
    assert_eq!(
        e.to_string(),
        "bad ELF note in SHT_NOTE section 7: the PHYS32_ENTRY descriptor is 2 bytes (want 4 or 8)"
    );
}

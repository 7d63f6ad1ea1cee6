//! Relocatable kernels: the `XEN_ELFNOTE_PHYS32_RELOC` note (parsing, defaults, every malformed
//! note), `load_at` (displaced contents, entry and extent; every refusal) and `placement`.

use super::builder::*;
use crate::*;

const CLASSES: [ElfClass; 2] = [ElfClass::Elf64, ElfClass::Elf32];
const GUEST: usize = 8 << 20;
/// The standard image's extent and size.
const START: u64 = TEXT_PADDR;
const END: u64 = DATA_PADDR + DATA_MEMSZ;
const SIZE: u64 = END - START;
/// What x86-64 Linux emits: CONFIG_PHYSICAL_ALIGN, LOAD_PHYSICAL_ADDR, KERNEL_IMAGE_SIZE - 1.
const LINUX: [u32; 3] = [0x20_0000, 0x100_0000, 0x3fff_ffff];

fn parse_err(bytes: &[u8]) -> LoadError {
    parse(bytes).expect_err("image should be rejected")
}

fn bad_note(location: NoteLocation, problem: NoteProblem) -> LoadError {
    LoadError::BadNote { location, problem }
}

fn reloc(align: u64, min: u64, max: u64) -> Option<Relocation> {
    Some(Relocation { align, min, max })
}

fn bad_base(base: u64, problem: BaseProblem) -> LoadError {
    LoadError::BadLoadBase { base, problem }
}

// ---------------------------------------------------------------- parsing the note

#[test]
fn images_without_the_note_are_not_relocatable() {
    for class in CLASSES {
        let built = standard(class).build();
        assert_eq!(parse(&built.bytes).unwrap().relocation(), None);
    }
}

#[test]
fn note_in_a_pt_note_segment() {
    for class in CLASSES {
        let built = relocatable(class, &LINUX).build();
        let k = parse(&built.bytes).unwrap();
        assert_eq!(k.relocation(), reloc(0x20_0000, 0x100_0000, 0x3fff_ffff));
        // Nothing else changes.
        assert_eq!((k.entry(), k.extent(), k.segments().len()), (ENTRY, (START, END), 2));
    }
}

#[test]
fn note_in_a_separate_pt_note_and_with_8_byte_padding() {
    let b = standard(ElfClass::Elf64).seg(note_seg(reloc_note(&LINUX)));
    assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x20_0000, 0x100_0000, 0x3fff_ffff));

    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg(
        [
            note_aligned(b"Xen\0", 18, &u64::from(ENTRY).to_le_bytes(), 8),
            note_aligned(b"Xen\0", 19, &[0x00, 0x10, 0, 0, 0, 0, 0x20, 0], 8),
        ]
        .concat(),
    );
    b.segs[0].align = 8;
    assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x1000, 0x20_0000, RELOC_DEFAULT_MAX));
}

#[test]
fn note_in_an_sht_note_section() {
    for class in CLASSES {
        // No PT_NOTE: both notes come from the section.
        let mut b = standard(class);
        b.segs.remove(0);
        let b = b.sec(SHT_PROGBITS, vec![1, 2, 3], 1).sec(
            SHT_NOTE,
            [standard_notes(ENTRY), reloc_note(&LINUX)].concat(),
            4,
        );
        let built = b.build();
        let k = parse(&built.bytes).unwrap();
        assert_eq!(k.relocation(), reloc(0x20_0000, 0x100_0000, 0x3fff_ffff));

        // A PT_NOTE without the entry note (but with the relocation note) and a section with the
        // entry: both are read, and an identical relocation note in the section is fine.
        let mut b = standard(class);
        b.segs[0] = note_seg(reloc_note(&[0x1000]));
        let b = b.sec(SHT_NOTE, [entry_note(ENTRY), reloc_note(&[0x1000])].concat(), 4);
        assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x1000, 0, RELOC_DEFAULT_MAX));
    }
}

#[test]
fn sections_are_not_read_when_a_segment_has_the_entry() {
    // As for the entry note: a PT_NOTE with the entry ends the search, so a relocation note
    // only in a section is not seen.
    let b = standard(ElfClass::Elf64).sec(SHT_NOTE, reloc_note(&LINUX), 4);
    assert_eq!(parse(&b.build().bytes).unwrap().relocation(), None);
}

#[test]
fn defaults_for_missing_values() {
    for class in CLASSES {
        // 8 bytes: align and min given, max defaults to 4 GiB - 1.
        let k = relocatable(class, &[0x4000, 0x8000]).build();
        assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(0x4000, 0x8000, 0xffff_ffff));
        // 4 bytes: min defaults to 0.
        let k = relocatable(class, &[0x4000]).build();
        assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(0x4000, 0, 0xffff_ffff));
        // An alignment of 1 is a power of two: any base.
        let k = relocatable(class, &[1]).build();
        assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(1, 0, 0xffff_ffff));
    }
}

#[test]
fn missing_alignment_comes_from_p_align_or_defaults_to_2m() {
    for class in CLASSES {
        // Empty descriptor: the largest PT_LOAD p_align (0x1000 in the standard image).
        let k = relocatable(class, &[]).build();
        assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(0x1000, 0, RELOC_DEFAULT_MAX));

        // The largest p_align wins, whichever segment has it.
        let mut b = relocatable(class, &[]);
        b.segs[2].align = 0x20_0000;
        assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x20_0000, 0, RELOC_DEFAULT_MAX));

        // Below 4 KiB (or 0): Xen's default of 2 MiB.
        for small in [0, 1, 16, 0x800, 0xfff] {
            let mut b = relocatable(class, &[]);
            b.segs[1].align = small;
            b.segs[2].align = small;
            let built = b.build();
            let k = parse(&built.bytes).unwrap();
            assert_eq!(k.relocation(), reloc(RELOC_DEFAULT_ALIGN, 0, RELOC_DEFAULT_MAX), "{small:#x}");
        }

        // p_align of non-PT_LOAD segments does not count.
        let mut b = relocatable(class, &[]);
        b.segs[3].align = 0x40_0000;
        assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x1000, 0, RELOC_DEFAULT_MAX));
    }
}

#[test]
fn segment_alignment_not_a_power_of_two() {
    for class in CLASSES {
        let mut b = relocatable(class, &[]);
        b.segs[2].align = 0x3000;
        assert_eq!(parse_err(&b.build().bytes), LoadError::SegmentAlignment { index: 2, align: 0x3000 });

        // Irrelevant when the note gives an alignment, or when the image is not relocatable.
        let mut b = relocatable(class, &[0x1000]);
        b.segs[2].align = 0x3000;
        assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x1000, 0, RELOC_DEFAULT_MAX));
        let mut b = standard(class);
        b.segs[2].align = 0x3000;
        assert_eq!(parse(&b.build().bytes).unwrap().relocation(), None);
    }
}

// ---------------------------------------------------------------- malformed notes

#[test]
fn bad_note_reloc_size() {
    for size in [1usize, 2, 3, 5, 7, 9, 11, 13, 16, 24] {
        let mut b = standard(ElfClass::Elf64);
        b.segs[0] = note_seg([standard_notes(ENTRY), note(b"Xen\0", 19, &vec![0; size])].concat());
        let e = parse_err(&b.build().bytes);
        assert_eq!(e, bad_note(NoteLocation::Segment(0), NoteProblem::RelocSize(size as u32)), "{size}");
    }
}

#[test]
fn bad_note_reloc_alignment() {
    for class in CLASSES {
        for align in [0u32, 3, 0x1001, 0x30_0000, u32::MAX] {
            let e = parse_err(&relocatable(class, &[align, 0, 0xffff_ffff]).build().bytes);
            assert_eq!(e, bad_note(NoteLocation::Segment(0), NoteProblem::RelocAlignment(align)), "{align:#x}");
        }
    }
    // The largest power of two is fine.
    let k = relocatable(ElfClass::Elf64, &[0x8000_0000]).build();
    assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(0x8000_0000, 0, RELOC_DEFAULT_MAX));
}

#[test]
fn bad_note_reloc_min_above_max() {
    for class in CLASSES {
        let e = parse_err(&relocatable(class, &[0x1000, 0x200_0000, 0x1ff_ffff]).build().bytes);
        let problem = NoteProblem::RelocMinAboveMax { min: 0x200_0000, max: 0x1ff_ffff };
        assert_eq!(e, bad_note(NoteLocation::Segment(0), problem));
        // min == max is consistent (if useless for anything but a one-byte image).
        let k = relocatable(class, &[0x1000, 0x200_0000, 0x200_0000]).build();
        assert_eq!(parse(&k.bytes).unwrap().relocation(), reloc(0x1000, 0x200_0000, 0x200_0000));
    }
}

#[test]
fn bad_note_conflicting_relocations() {
    // Within one segment, and across two segments.
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg([standard_notes(ENTRY), reloc_note(&LINUX), reloc_note(&[0x1000])].concat());
    let e = parse_err(&b.build().bytes);
    assert_eq!(e, bad_note(NoteLocation::Segment(0), NoteProblem::ConflictingRelocations));
    let b = relocatable(ElfClass::Elf32, &LINUX).seg(note_seg(reloc_note(&[0x20_0000, 0x100_0000])));
    let e = parse_err(&b.build().bytes);
    assert_eq!(e, bad_note(NoteLocation::Segment(4), NoteProblem::ConflictingRelocations));

    // Identical duplicates are accepted.
    let b = relocatable(ElfClass::Elf64, &LINUX).seg(note_seg(reloc_note(&LINUX)));
    assert_eq!(parse(&b.build().bytes).unwrap().relocation(), reloc(0x20_0000, 0x100_0000, 0x3fff_ffff));
}

#[test]
fn bad_reloc_note_in_a_section() {
    let mut b = standard(ElfClass::Elf64);
    b.segs.remove(0);
    let b = b.sec(SHT_PROGBITS, vec![0; 8], 8).sec(SHT_NOTE, [entry_note(ENTRY), reloc_note(&[6])].concat(), 4);
    let e = parse_err(&b.build().bytes);
    assert_eq!(e, bad_note(NoteLocation::Section(2), NoteProblem::RelocAlignment(6)));
}

#[test]
fn reloc_note_under_another_owner_is_ignored() {
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg([standard_notes(ENTRY), note(b"GNU\0", 19, &[1, 2, 3])].concat());
    assert_eq!(parse(&b.build().bytes).unwrap().relocation(), None);
}

// ---------------------------------------------------------------- load_at

/// Checks that the standard image is in `mem` at `base`, zero-filled, and nothing else touched.
fn assert_standard_at(mem: &[u8], base: u64) {
    let text = base as usize;
    let data = (base + (DATA_PADDR - TEXT_PADDR)) as usize;
    let data_end = data + DATA_MEMSZ as usize;
    assert_eq!(&mem[text..text + TEXT_SIZE], &pattern(TEXT_SIZE, 1)[..]);
    assert_eq!(&mem[data..data + DATA_FILESZ], &pattern(DATA_FILESZ, 2)[..]);
    assert!(mem[data + DATA_FILESZ..data_end].iter().all(|&b| b == 0), "bss is zeroed");
    assert!(mem[..text].iter().all(|&b| b == 0xaa));
    assert!(mem[text + TEXT_SIZE..data].iter().all(|&b| b == 0xaa));
    assert!(mem[data_end..].iter().all(|&b| b == 0xaa));
}

#[test]
fn load_at_displaces_segments_entry_and_extent() {
    for class in CLASSES {
        let built = relocatable(class, &[0x1000]).build();
        let k = parse(&built.bytes).unwrap();
        // Up, down to 0, and to an odd page.
        for base in [0x40_0000u64, 0, 0x1000, 0x23_f000] {
            let mut mem = TestMemory::new(GUEST);
            let loaded = load_at(&k, &mut mem, base).unwrap();
            let entry = (u64::from(ENTRY) - START + base) as u32;
            assert_eq!(loaded, LoadedKernel { entry, extent: (base, base + SIZE) }, "{class:?} {base:#x}");
            assert_standard_at(&mem.bytes, base);
            assert_eq!(mem.calls, 3);
        }
    }
}

#[test]
fn load_at_with_linux_constraints() {
    let built = relocatable(ElfClass::Elf64, &LINUX).build();
    let k = parse(&built.bytes).unwrap();
    let mut mem = TestMemory::new(0x180_0000);
    let loaded = load_at(&k, &mut mem, 0x120_0000).unwrap();
    assert_eq!(loaded.entry, ENTRY - START as u32 + 0x120_0000);
    assert_eq!(loaded.extent, (0x120_0000, 0x120_0000 + SIZE));
    assert_standard_at(&mem.bytes, 0x120_0000);
}

#[test]
fn load_at_own_base_is_load() {
    // Any image, relocatable or not, even when the note's constraints exclude its own base
    // (min above it, misaligned for align): Xen loads a kernel at its link address if free.
    for b in [standard(ElfClass::Elf64), standard(ElfClass::Elf32), relocatable(ElfClass::Elf64, &LINUX)] {
        let built = b.build();
        let k = parse(&built.bytes).unwrap();
        let (mut m1, mut m2) = (TestMemory::new(GUEST), TestMemory::new(GUEST));
        let l1 = load(&k, &mut m1).unwrap();
        let l2 = load_at(&k, &mut m2, START).unwrap();
        assert_eq!(l1, l2);
        assert_eq!(l1, LoadedKernel { entry: ENTRY, extent: (START, END) });
        assert_eq!(m1.bytes, m2.bytes);
        assert_standard_at(&m1.bytes, START);
    }
}

#[test]
fn plain_load_ignores_the_note() {
    // `load` of a relocatable image is exactly `load` of the same image without the note.
    for class in CLASSES {
        let (plain, reloc) = (standard(class).build(), relocatable(class, &LINUX).build());
        let (kp, kr) = (parse(&plain.bytes).unwrap(), parse(&reloc.bytes).unwrap());
        let (mut mp, mut mr) = (TestMemory::new(GUEST), TestMemory::new(GUEST));
        assert_eq!(load(&kp, &mut mp).unwrap(), load(&kr, &mut mr).unwrap());
        assert_eq!((mp.bytes, mp.calls), (mr.bytes, mr.calls));
    }
}

#[test]
fn load_at_refusals_write_nothing() {
    let not_reloc = standard(ElfClass::Elf64).build();
    let linux = relocatable(ElfClass::Elf64, &LINUX).build();
    let linux32 = relocatable(ElfClass::Elf32, &LINUX).build();
    let small_max = relocatable(ElfClass::Elf64, &[0x1000, 0, 0x20_0fff]).build();
    let any_align = relocatable(ElfClass::Elf64, &[1]).build();
    let cases: [(&Built, u64, BaseProblem); 10] = [
        (&not_reloc, START + 0x1000, BaseProblem::NotRelocatable),
        (&not_reloc, 0, BaseProblem::NotRelocatable),
        (&linux, 0x110_0000, BaseProblem::Misaligned { align: 0x20_0000 }),
        (&linux, 0x120_0001, BaseProblem::Misaligned { align: 0x20_0000 }),
        (&linux, 0xe0_0000, BaseProblem::BelowMinimum { min: 0x100_0000 }),
        (&linux32, 0, BaseProblem::BelowMinimum { min: 0x100_0000 }),
        // The last byte would be at 0x4000_4fff > 0x3fff_ffff.
        (&linux, 0x4000_0000, BaseProblem::AboveMaximum { end: 0x4000_0000 + SIZE, max: 0x3fff_ffff }),
        (&linux32, 0xffe0_0000, BaseProblem::AboveMaximum { end: 0xffe0_0000 + SIZE, max: 0x3fff_ffff }),
        (&small_max, 0x1f_d000, BaseProblem::AboveMaximum { end: 0x20_2000, max: 0x20_0fff }),
        // base + size overflows 64 bits (checked before the maximum).
        (&any_align, u64::MAX - 0x1000, BaseProblem::Overflow),
    ];
    for (built, base, problem) in cases {
        let k = parse(&built.bytes).unwrap();
        let mut mem = TestMemory::new(GUEST);
        assert_eq!(load_at(&k, &mut mem, base).unwrap_err(), bad_base(base, problem), "{base:#x}");
        assert_eq!(mem.calls, 0);
        assert!(mem.bytes.iter().all(|&b| b == 0xaa));
    }
}

#[test]
fn load_at_boundaries_of_min_and_max() {
    let built = relocatable(ElfClass::Elf64, &[0x1000, 0x20_0000, 0x30_4fff]).build();
    let k = parse(&built.bytes).unwrap();
    // Exactly at min, and with the last byte exactly at max.
    for base in [0x20_0000, 0x30_0000] {
        let mut mem = TestMemory::new(GUEST);
        assert_eq!(load_at(&k, &mut mem, base).unwrap().extent, (base, base + SIZE));
    }
    let mut mem = TestMemory::new(GUEST);
    let e = load_at(&k, &mut mem, 0x30_1000).unwrap_err();
    assert_eq!(e, bad_base(0x30_1000, BaseProblem::AboveMaximum { end: 0x30_6000, max: 0x30_4fff }));
    let e = load_at(&k, &mut mem, 0x1f_f000).unwrap_err();
    assert_eq!(e, bad_base(0x1f_f000, BaseProblem::BelowMinimum { min: 0x20_0000 }));
}

#[test]
fn load_at_reports_the_displaced_segment_outside_guest() {
    let built = relocatable(ElfClass::Elf64, &[0x1000]).build();
    let k = parse(&built.bytes).unwrap();
    // The image fits at its own address but not at 0x7f_e000 in 8 MiB.
    let mut mem = TestMemory::new(GUEST);
    let e = load_at(&k, &mut mem, 0x7f_e000).unwrap_err();
    let data = 0x7f_e000 + (DATA_PADDR - TEXT_PADDR);
    let want =
        LoadError::SegmentOutsideGuest { index: 2, paddr: data, end: data + DATA_MEMSZ, guest_size: GUEST as u64 };
    assert_eq!(e, want);
    assert_eq!(mem.calls, 0);
}

#[test]
fn load_at_reports_guest_memory_refusal_at_displaced_addresses() {
    let built = relocatable(ElfClass::Elf32, &[0x1000]).build();
    let k = parse(&built.bytes).unwrap();
    let mut mem = TestMemory::new(GUEST);
    mem.fail_call = Some(0);
    let e = load_at(&k, &mut mem, 0x50_0000).unwrap_err();
    assert_eq!(e, LoadError::Guest(GuestMemoryError { gpa: 0x50_0000, len: TEXT_SIZE as u64 }));
}

// ---------------------------------------------------------------- placement

#[test]
fn placement_picks_the_lowest_acceptable_base() {
    let built = relocatable(ElfClass::Elf64, &LINUX).build();
    let k = parse(&built.bytes).unwrap();
    let mb = 0x10_0000u64;
    // Window start aligned up; min raises it; exact fit at the window's end.
    assert_eq!(placement(&k, 0x100_0000, 0x200_0000), Some(0x100_0000));
    assert_eq!(placement(&k, 0x100_0001, 0x200_0000), Some(0x120_0000));
    assert_eq!(placement(&k, 0x131_0000, 0x200_0000), Some(0x140_0000));
    assert_eq!(placement(&k, 0, 0x200_0000), Some(0x100_0000));
    assert_eq!(placement(&k, 0x140_0000, 0x140_0000 + SIZE), Some(0x140_0000));
    // Too small a window, or nothing aligned inside it.
    assert_eq!(placement(&k, 0x140_0000, 0x140_0000 + SIZE - 1), None);
    assert_eq!(placement(&k, 0x140_0001, 0x160_0000), None);
    assert_eq!(placement(&k, 0x200_0000, 0x100_0000), None);
    assert_eq!(placement(&k, 0, 0xff_ffff), None);
    // Max: the last byte may be at 0x3fff_ffff, no higher.
    assert_eq!(placement(&k, 0x3fc0_0001, 64 << 30), Some(0x3fe0_0000));
    assert_eq!(placement(&k, 0x3fe0_0000, 64 << 30), Some(0x3fe0_0000));
    assert_eq!(placement(&k, 0x3fe0_0001, 64 << 30), None);
    // No overflow near the top of the address space.
    assert_eq!(placement(&k, u64::MAX - 1, u64::MAX), None);
    assert_eq!(placement(&k, u64::MAX - 4 * mb, u64::MAX), None);

    // A base placement returns is one load_at accepts.
    let base = placement(&k, 0x101_2345, 0x180_0000).unwrap();
    assert_eq!(base, 0x120_0000);
    let mut mem = TestMemory::new(0x180_0000);
    assert_eq!(load_at(&k, &mut mem, base).unwrap().extent, (base, base + SIZE));
}

#[test]
fn placement_with_a_max_bounding_the_window() {
    let built = relocatable(ElfClass::Elf32, &[0x1000, 0, 0x4fff]).build();
    let k = parse(&built.bytes).unwrap();
    assert_eq!(placement(&k, 0, 64 << 20), Some(0));
    assert_eq!(placement(&k, 1, 64 << 20), None); // next aligned base 0x1000 ends past max
    let built = relocatable(ElfClass::Elf32, &[0x1000, 0, 0x5fff]).build();
    let k = parse(&built.bytes).unwrap();
    assert_eq!(placement(&k, 1, 64 << 20), Some(0x1000));
}

#[test]
fn placement_of_a_non_relocatable_image_is_its_own_base() {
    let built = standard(ElfClass::Elf64).build();
    let k = parse(&built.bytes).unwrap();
    assert_eq!(placement(&k, 0, GUEST as u64), Some(START));
    assert_eq!(placement(&k, START, END), Some(START));
    assert_eq!(placement(&k, START + 1, GUEST as u64), None);
    assert_eq!(placement(&k, 0, END - 1), None);
    assert_eq!(placement(&k, 0x40_0000, 0x80_0000), None);
}

#[test]
fn relocation_errors_display() {
    let errors = [
        LoadError::SegmentAlignment { index: 2, align: 0x3000 },
        bad_note(NoteLocation::Segment(0), NoteProblem::RelocSize(5)),
        bad_note(NoteLocation::Segment(0), NoteProblem::RelocAlignment(3)),
        bad_note(NoteLocation::Section(1), NoteProblem::RelocMinAboveMax { min: 2, max: 1 }),
        bad_note(NoteLocation::Segment(0), NoteProblem::ConflictingRelocations),
        bad_base(1, BaseProblem::NotRelocatable),
        bad_base(1, BaseProblem::Misaligned { align: 0x1000 }),
        bad_base(1, BaseProblem::BelowMinimum { min: 0x1000 }),
        bad_base(1, BaseProblem::AboveMaximum { end: 0x2000, max: 0xfff }),
        bad_base(1, BaseProblem::Overflow),
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.len() > 20, "{text}");
    }
    assert_eq!(
        bad_base(0x1234, BaseProblem::Misaligned { align: 0x1000 }).to_string(),
        "cannot load the kernel at 0x1234: it is not a multiple of the required alignment 0x1000"
    );
}

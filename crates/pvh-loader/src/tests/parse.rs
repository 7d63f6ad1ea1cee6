//! `parse`: valid images of both classes, and every parse-time error.

use super::builder::*;
use crate::{parse, ElfClass, LoadError, NoteLocation, NoteProblem, TableProblem};

const CLASSES: [ElfClass; 2] = [ElfClass::Elf64, ElfClass::Elf32];

fn parse_err(bytes: &[u8]) -> LoadError {
    parse(bytes).expect_err("image should be rejected")
}

fn bad_note(location: NoteLocation, problem: NoteProblem) -> LoadError {
    LoadError::BadNote { location, problem }
}

#[test]
fn standard_images_parse() {
    for class in CLASSES {
        let built = standard(class).build();
        let k = parse(&built.bytes).unwrap();
        assert_eq!(k.class(), class);
        assert_eq!(k.entry(), ENTRY);
        assert_eq!(k.extent(), (TEXT_PADDR, DATA_PADDR + DATA_MEMSZ));
        let segs = k.segments();
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[0].index, segs[0].paddr, segs[0].memsz), (1, TEXT_PADDR, TEXT_SIZE as u64));
        assert_eq!(segs[0].data, &pattern(TEXT_SIZE, 1)[..]);
        assert_eq!(segs[0].end(), TEXT_PADDR + TEXT_SIZE as u64);
        assert_eq!((segs[1].index, segs[1].paddr, segs[1].memsz), (2, DATA_PADDR, DATA_MEMSZ));
        assert_eq!(segs[1].data, &pattern(DATA_FILESZ, 2)[..]);
        assert_eq!(segs[1].filesz(), DATA_FILESZ as u64);
    }
}

#[test]
fn entry_note_with_8_byte_descriptor() {
    for class in CLASSES {
        let mut b = standard(class);
        b.segs[0] = note_seg(note(b"Xen\0", 18, &u64::from(ENTRY + 4).to_le_bytes()));
        assert_eq!(parse(&b.build().bytes).unwrap().entry(), ENTRY + 4);
    }
}

#[test]
fn notes_padded_to_8_in_an_8_aligned_segment() {
    let mut notes = note_aligned(b"GNU\0", 5, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 8);
    notes.extend(note_aligned(b"Xen\0", 18, &ENTRY.to_le_bytes(), 8));
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg(notes);
    b.segs[0].align = 8;
    assert_eq!(parse(&b.build().bytes).unwrap().entry(), ENTRY);
}

#[test]
fn entry_note_found_in_a_section_when_no_segment_has_it() {
    for class in CLASSES {
        // No PT_NOTE at all.
        let mut b = standard(class);
        b.segs.remove(0);
        let b = b.sec(SHT_PROGBITS, vec![1, 2, 3], 1).sec(SHT_NOTE, standard_notes(ENTRY + 8), 4);
        let built = b.build();
        let k = parse(&built.bytes).unwrap();
        assert_eq!(k.entry(), ENTRY + 8);
        assert_eq!(k.segments()[0].index, 0);

        // A PT_NOTE without the entry note: the sections are searched.
        let mut b = standard(class);
        b.segs[0] = note_seg(note(b"Xen\0", 6, b"linux\0"));
        let b = b.sec(SHT_NOTE, entry_note(ENTRY + 12), 4);
        assert_eq!(parse(&b.build().bytes).unwrap().entry(), ENTRY + 12);
    }
}

#[test]
fn segment_note_wins_and_sections_are_not_read() {
    // The section table is garbage, but the PT_NOTE already has the entry.
    let mut built = standard(ElfClass::Elf64).sec(SHT_NOTE, entry_note(ENTRY + 4), 4).build();
    let (_, _, _, _, shentsize_at, _) = built.ehdr_offsets();
    set_u16(&mut built.bytes, shentsize_at, 7);
    assert_eq!(parse(&built.bytes).unwrap().entry(), ENTRY);
}

#[test]
fn identical_duplicate_entry_notes_are_accepted() {
    let mut b = standard(ElfClass::Elf64);
    let mut notes = entry_note(ENTRY);
    notes.extend(entry_note(ENTRY));
    b.segs.push(note_seg(notes));
    assert_eq!(parse(&b.build().bytes).unwrap().entry(), ENTRY);
}

#[test]
fn empty_load_segments_are_ignored() {
    let b = standard(ElfClass::Elf64).seg(load_seg(0x10_0000, vec![], 0));
    let built = b.build();
    let k = parse(&built.bytes).unwrap();
    assert_eq!(k.segments().len(), 2);
}

#[test]
fn missing_padding_after_the_last_note_is_accepted() {
    let mut notes = entry_note(ENTRY);
    notes.extend(note(b"Xen\0", 6, b"ab\0"));
    notes.pop(); // the descriptor ends the segment without its padding byte
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg(notes);
    assert_eq!(parse(&b.build().bytes).unwrap().entry(), ENTRY);
}

#[test]
fn adjacent_segments_and_a_segment_ending_at_4g_are_fine() {
    let mut b = standard(ElfClass::Elf32);
    b.segs[2].paddr = TEXT_PADDR + TEXT_SIZE as u64; // touches the text segment
    b.segs.push(load_seg(0xffff_f000, vec![], 0x1000)); // ends exactly at 4 GiB
    let built = b.build();
    let k = parse(&built.bytes).unwrap();
    assert_eq!(k.extent(), (TEXT_PADDR, 1 << 32));
}

// ---------------------------------------------------------------- ELF header errors

#[test]
fn truncated_header() {
    assert_eq!(parse_err(&[]), LoadError::TruncatedHeader);
    assert_eq!(parse_err(b"\x7fEL"), LoadError::TruncatedHeader);
    assert_eq!(parse_err(b"\x7fELF\x02\x01\x01"), LoadError::TruncatedHeader);
    for class in CLASSES {
        let built = standard(class).build();
        let ehsize = if class == ElfClass::Elf64 { 64 } else { 52 };
        for len in 0..ehsize {
            assert_eq!(parse_err(&built.bytes[..len]), LoadError::TruncatedHeader, "{class:?} len {len}");
        }
    }
}

#[test]
fn bad_magic() {
    assert_eq!(parse_err(b"MZ\x90\x00"), LoadError::BadMagic);
    assert_eq!(parse_err(b"x"), LoadError::BadMagic);
    let mut built = standard(ElfClass::Elf64).build();
    built.bytes[3] = b'f';
    assert_eq!(parse_err(&built.bytes), LoadError::BadMagic);
}

#[test]
fn unsupported_class() {
    for bad in [0u8, 3, 0xff] {
        let mut built = standard(ElfClass::Elf64).build();
        built.bytes[4] = bad;
        assert_eq!(parse_err(&built.bytes), LoadError::UnsupportedClass(bad));
    }
}

#[test]
fn not_little_endian() {
    for bad in [0u8, 2, 9] {
        let mut built = standard(ElfClass::Elf32).build();
        built.bytes[5] = bad;
        assert_eq!(parse_err(&built.bytes), LoadError::NotLittleEndian(bad));
    }
}

#[test]
fn unsupported_version() {
    for class in CLASSES {
        let mut built = standard(class).build();
        built.bytes[6] = 0;
        assert_eq!(parse_err(&built.bytes), LoadError::UnsupportedVersion(0));
        let mut built = standard(class).build();
        set_u32(&mut built.bytes, 20, 2);
        assert_eq!(parse_err(&built.bytes), LoadError::UnsupportedVersion(2));
    }
}

#[test]
fn not_executable() {
    for (e_type, class) in [(3u16, ElfClass::Elf64), (1, ElfClass::Elf32), (4, ElfClass::Elf64)] {
        let mut built = standard(class).build();
        set_u16(&mut built.bytes, 16, e_type);
        assert_eq!(parse_err(&built.bytes), LoadError::NotExecutable(e_type));
    }
}

#[test]
fn unsupported_machine() {
    // Each class only with its own machine: no x32-style or 64-bit-i386 mixes.
    for (class, machine) in
        [(ElfClass::Elf64, 3u16), (ElfClass::Elf32, 62), (ElfClass::Elf64, 183), (ElfClass::Elf32, 40)]
    {
        let mut built = standard(class).build();
        set_u16(&mut built.bytes, 18, machine);
        assert_eq!(parse_err(&built.bytes), LoadError::UnsupportedMachine(machine));
    }
}

// ---------------------------------------------------------------- program headers

#[test]
fn bad_program_headers() {
    for class in CLASSES {
        let built = standard(class).build();
        let (phoff_at, _, phentsize_at, phnum_at, _, _) = built.ehdr_offsets();

        let mut b = standard(class).build();
        set_u16(&mut b.bytes, phnum_at, 0);
        assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::Missing));

        let mut b = standard(class).build();
        b.set_word(phoff_at, 0);
        assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::Missing));

        let mut b = standard(class).build();
        set_u16(&mut b.bytes, phnum_at, 0xffff);
        assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::ExtendedNumbering));

        let wrong = if class == ElfClass::Elf64 { 32 } else { 56 };
        let mut b = standard(class).build();
        set_u16(&mut b.bytes, phentsize_at, wrong);
        assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::EntrySize(wrong)));

        let len = built.bytes.len() as u64;
        let max_word = if class == ElfClass::Elf64 { u64::MAX } else { u64::from(u32::MAX) };
        for phoff in [len, len - 8, max_word, max_word - 3] {
            let mut b = standard(class).build();
            b.set_word(phoff_at, phoff);
            assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::OutsideFile), "{phoff:#x}");
        }

        let mut b = standard(class).build();
        set_u16(&mut b.bytes, phnum_at, 0xfffe);
        assert_eq!(parse_err(&b.bytes), LoadError::BadProgramHeaders(TableProblem::OutsideFile));
    }
}

#[test]
fn segment_out_of_file() {
    for class in CLASSES {
        let max_word = if class == ElfClass::Elf64 { u64::MAX } else { u64::from(u32::MAX) };
        let len = standard(class).build().bytes.len() as u64;
        // Text (a PT_LOAD, index 1) and the PT_NOTE (index 0).
        for index in [1usize, 0] {
            for (offset, filesz) in [(len, 1), (len - 4, 5), (max_word, 1), (max_word - 1, 2), (8, max_word)] {
                let mut b = standard(class).build();
                b.set_ph(index, PhField::Offset, offset);
                b.set_ph(index, PhField::Filesz, filesz);
                b.set_ph(index, PhField::Memsz, max_word.min(filesz.max(0x1000)));
                b.set_ph(index, PhField::Paddr, 0x20_0000);
                let e = parse_err(&b.bytes);
                assert_eq!(e, LoadError::SegmentOutOfFile { index }, "{class:?} {offset:#x}+{filesz:#x}");
            }
        }
    }
}

#[test]
fn segment_mem_smaller_than_file() {
    for class in CLASSES {
        let mut b = standard(class).build();
        b.set_ph(2, PhField::Memsz, DATA_FILESZ as u64 - 1);
        assert_eq!(parse_err(&b.bytes), LoadError::SegmentMemSmallerThanFile { index: 2 });
    }
}

#[test]
fn address_overflow() {
    let mut b = standard(ElfClass::Elf64).build();
    b.set_ph(2, PhField::Paddr, u64::MAX - 0x10);
    assert_eq!(parse_err(&b.bytes), LoadError::AddressOverflow { index: 2 });

    // An ELF32 segment may not wrap past 4 GiB.
    let mut b = standard(ElfClass::Elf32).build();
    b.set_ph(2, PhField::Paddr, 0xffff_f000);
    assert_eq!(parse_err(&b.bytes), LoadError::AddressOverflow { index: 2 });
}

#[test]
fn no_loadable_segments() {
    for class in CLASSES {
        let b = ElfBuilder::new(class).seg(note_seg(entry_note(ENTRY)));
        assert_eq!(parse_err(&b.build().bytes), LoadError::NoLoadableSegments);
        let b = ElfBuilder::new(class).seg(note_seg(entry_note(ENTRY))).seg(load_seg(TEXT_PADDR, vec![], 0));
        assert_eq!(parse_err(&b.build().bytes), LoadError::NoLoadableSegments);
    }
}

#[test]
fn too_many_segments() {
    let image = |n: usize| {
        let mut b = ElfBuilder::new(ElfClass::Elf64).seg(note_seg(entry_note(ENTRY)));
        for i in 0..n {
            b = b.seg(load_seg(TEXT_PADDR + 0x1000 * i as u64, pattern(0x100, i as u8), 0x1000));
        }
        b.build()
    };
    assert_eq!(parse(&image(crate::MAX_LOAD_SEGMENTS).bytes).unwrap().segments().len(), crate::MAX_LOAD_SEGMENTS);
    assert_eq!(parse_err(&image(crate::MAX_LOAD_SEGMENTS + 1).bytes), LoadError::TooManySegments);
}

#[test]
fn segments_overlap() {
    for class in CLASSES {
        // Data starts inside text.
        let mut b = standard(class);
        b.segs[2].paddr = TEXT_PADDR + 0x800;
        assert_eq!(parse_err(&b.build().bytes), LoadError::SegmentsOverlap { a: 1, b: 2 });
        // Text's zero-filled tail reaches into data.
        let mut b = standard(class);
        b.segs[1].memsz = DATA_PADDR - TEXT_PADDR + 1;
        assert_eq!(parse_err(&b.build().bytes), LoadError::SegmentsOverlap { a: 1, b: 2 });
        // A later segment containing an earlier one entirely.
        let b = standard(class).seg(load_seg(0, vec![], 0x20_0000));
        assert_eq!(parse_err(&b.build().bytes), LoadError::SegmentsOverlap { a: 1, b: 4 });
    }
}

// ---------------------------------------------------------------- sections

#[test]
fn section_out_of_file() {
    for class in CLASSES {
        let mut b = standard(class);
        b.segs.remove(0);
        let mut built = b.sec(SHT_NOTE, entry_note(ENTRY), 4).build();
        let size_at = built.shoff + if class == ElfClass::Elf64 { 64 + 32 } else { 40 + 20 };
        match class {
            ElfClass::Elf64 => set_u64(&mut built.bytes, size_at, u64::MAX),
            ElfClass::Elf32 => set_u32(&mut built.bytes, size_at, 0x10_0000),
        }
        assert_eq!(parse_err(&built.bytes), LoadError::SectionOutOfFile { index: 1 });
    }
}

#[test]
fn bad_section_headers() {
    for class in CLASSES {
        let mut b = standard(class);
        b.segs.remove(0);
        let b = b.sec(SHT_NOTE, entry_note(ENTRY), 4);
        let built = b.build();
        let (_, shoff_at, _, _, shentsize_at, shnum_at) = built.ehdr_offsets();

        let mut bad = b.build();
        set_u16(&mut bad.bytes, shentsize_at, 16);
        assert_eq!(parse_err(&bad.bytes), LoadError::BadSectionHeaders(TableProblem::EntrySize(16)));

        let mut bad = b.build();
        set_u16(&mut bad.bytes, shnum_at, 100);
        assert_eq!(parse_err(&bad.bytes), LoadError::BadSectionHeaders(TableProblem::OutsideFile));

        let mut bad = b.build();
        bad.set_word(shoff_at, built.bytes.len() as u64 - 4);
        assert_eq!(parse_err(&bad.bytes), LoadError::BadSectionHeaders(TableProblem::OutsideFile));

        // No section table at all: simply no note.
        let mut bad = b.build();
        bad.set_word(shoff_at, 0);
        assert_eq!(parse_err(&bad.bytes), LoadError::NoPvhEntryNote);
    }
}

// ---------------------------------------------------------------- notes

#[test]
fn no_pvh_entry_note() {
    for class in CLASSES {
        let variants: Vec<Vec<u8>> = vec![
            // Other Xen notes only (a PV-only kernel).
            [note(b"Xen\0", 6, b"linux\0"), note(b"Xen\0", 1, &0xffff_ffff_8100_0000u64.to_le_bytes())].concat(),
            // Type 18 under another owner.
            note(b"GNU\0", 18, &ENTRY.to_le_bytes()),
            // "Xen" without its NUL is a different name.
            note(b"Xen", 18, &ENTRY.to_le_bytes()),
            // Empty note segment.
            vec![],
        ];
        for notes in variants {
            let mut b = standard(class);
            b.segs[0] = note_seg(notes);
            assert_eq!(parse_err(&b.build().bytes), LoadError::NoPvhEntryNote);
        }
        // No PT_NOTE and no sections.
        let mut b = standard(class);
        b.segs.remove(0);
        assert_eq!(parse_err(&b.build().bytes), LoadError::NoPvhEntryNote);
    }
}

#[test]
fn bad_note_truncated() {
    let seg0 = NoteLocation::Segment(0);
    let truncated = bad_note(seg0, NoteProblem::Truncated);
    for class in CLASSES {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Header cut short.
        cases.push(entry_note(ENTRY)[..8].to_vec());
        // Trailing bytes too few for a header.
        cases.push([entry_note(ENTRY), vec![0; 5]].concat());
        // Name runs past the end.
        let mut n = entry_note(ENTRY);
        set_u32(&mut n, 0, 0x100);
        cases.push(n);
        // Descriptor runs past the end.
        let mut n = entry_note(ENTRY);
        set_u32(&mut n, 4, 0x100);
        cases.push(n);
        // Sizes that overflow.
        for (field, v) in [(0, u32::MAX), (4, u32::MAX), (0, u32::MAX - 13), (4, u32::MAX - 3)] {
            let mut n = entry_note(ENTRY);
            set_u32(&mut n, field, v);
            cases.push(n);
        }
        for notes in cases {
            let mut b = standard(class);
            b.segs[0] = note_seg(notes.clone());
            assert_eq!(parse_err(&b.build().bytes), truncated, "{class:?} {notes:02x?}");
        }
    }
}

#[test]
fn bad_note_entry_size() {
    for size in [0usize, 2, 6, 16] {
        let mut b = standard(ElfClass::Elf64);
        b.segs[0] = note_seg(note(b"Xen\0", 18, &vec![0x40; size]));
        let e = parse_err(&b.build().bytes);
        assert_eq!(e, bad_note(NoteLocation::Segment(0), NoteProblem::EntrySize(size as u32)));
    }
}

#[test]
fn bad_note_conflicting_entries() {
    // Within one segment, and across two segments.
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg([entry_note(ENTRY), entry_note(ENTRY + 4)].concat());
    assert_eq!(parse_err(&b.build().bytes), bad_note(NoteLocation::Segment(0), NoteProblem::ConflictingEntries));
    let b = standard(ElfClass::Elf32).seg(note_seg(entry_note(ENTRY + 4)));
    assert_eq!(parse_err(&b.build().bytes), bad_note(NoteLocation::Segment(4), NoteProblem::ConflictingEntries));
}

#[test]
fn bad_note_in_a_section() {
    let mut b = standard(ElfClass::Elf64);
    b.segs.remove(0);
    let b = b.sec(SHT_PROGBITS, vec![0; 8], 8).sec(SHT_NOTE, entry_note(ENTRY)[..14].to_vec(), 4);
    assert_eq!(parse_err(&b.build().bytes), bad_note(NoteLocation::Section(2), NoteProblem::Truncated));
}

#[test]
fn entry_above_4g() {
    let mut b = standard(ElfClass::Elf64);
    b.segs[0] = note_seg(note(b"Xen\0", 18, &0x1_0000_0000u64.to_le_bytes()));
    assert_eq!(parse_err(&b.build().bytes), LoadError::EntryAbove4G(0x1_0000_0000));
}

#[test]
fn entry_outside_segments() {
    let bss = (DATA_PADDR + DATA_FILESZ as u64) as u32;
    let text_end = (TEXT_PADDR + TEXT_SIZE as u64) as u32;
    for class in CLASSES {
        for entry in [0, 0x1000, TEXT_PADDR as u32 - 1, text_end, bss, bss + 0x100, u32::MAX] {
            let mut b = standard(class);
            b.segs[0] = note_seg(entry_note(entry));
            assert_eq!(parse_err(&b.build().bytes), LoadError::EntryOutsideSegments(entry), "{entry:#x}");
        }
        // The first and last file-backed bytes are fine.
        for entry in [TEXT_PADDR as u32, text_end - 1, bss - 1] {
            let mut b = standard(class);
            b.segs[0] = note_seg(entry_note(entry));
            assert_eq!(parse(&b.build().bytes).unwrap().entry(), entry);
        }
    }
}

//! Validating parser for PVH kernel images (ELF32/ELF64, little-endian, `ET_EXEC`).

use crate::bytes::{align_up_usize, range, u16_at, u32_at, u64_at, u8_at};
use crate::error::{LoadError, NoteLocation, NoteProblem, TableProblem};

/// `XEN_ELFNOTE_PHYS32_ENTRY` (Xen `public/elfnote.h`): the 32-bit physical entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// `XEN_ELFNOTE_PHYS32_RELOC` (Xen `public/elfnote.h`): the kernel can run at a physical address
/// other than the one it is linked at; the descriptor holds up to three `u32` constraints
/// (alignment, minimum start, maximum last byte). See [`Relocation`].
pub const XEN_ELFNOTE_PHYS32_RELOC: u32 = 19;

/// The alignment Xen uses when a PHYS32_RELOC note gives none and no `PT_LOAD` has a `p_align`
/// of at least [`RELOC_MIN_SEGMENT_ALIGN`] (`MB(2)` in Xen's `find_kernel_memory`).
pub const RELOC_DEFAULT_ALIGN: u64 = 0x20_0000;

/// The smallest `PT_LOAD` `p_align` Xen takes as the alignment of a relocatable image whose note
/// gives none (`PAGE_SIZE`).
pub const RELOC_MIN_SEGMENT_ALIGN: u64 = 0x1000;

/// The maximum last-byte address when a PHYS32_RELOC note gives none (x86's
/// `ARCH_PHYS_MAX_DEFAULT` in Xen's libelf, `GB(4) - 1`). The default minimum is 0.
pub const RELOC_DEFAULT_MAX: u64 = 0xffff_ffff;

/// The most non-empty `PT_LOAD` segments an image may have (Linux has 4 or 5). The bound keeps
/// [`KernelImage`] heap-free and the overlap check cheap on hostile images.
pub const MAX_LOAD_SEGMENTS: usize = 16;

const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
const EI_NIDENT: usize = 16;
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;
const EI_VERSION: usize = 6;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u32 = 1;
const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PN_XNUM: u16 = 0xffff;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_NOTE: u32 = 7;
/// A note header: `namesz`, `descsz`, `type`, each a `u32` in both classes.
const NOTE_HEADER_SIZE: usize = 12;
const XEN_NOTE_NAME: &[u8] = b"Xen\0";

/// The ELF class of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// `ELFCLASS32` with `EM_386`.
    Elf32,
    /// `ELFCLASS64` with `EM_X86_64`.
    Elf64,
}

/// A loadable (`PT_LOAD`, non-empty) segment of a validated image.
///
/// Invariants established by [`parse`]: `data.len() <= memsz`, `paddr + memsz` does not
/// overflow (nor exceed 4 GiB for ELF32), `memsz > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Index of the segment's program header (as `readelf -l` counts).
    pub index: usize,
    /// Physical load address (`p_paddr`).
    pub paddr: u64,
    /// Size in memory (`p_memsz`); bytes past `data.len()` are zero-filled.
    pub memsz: u64,
    /// The bytes copied from the image (`p_filesz` bytes at `p_offset`).
    pub data: &'a [u8],
}

impl Segment<'_> {
    const EMPTY: Segment<'static> = Segment { index: 0, paddr: 0, memsz: 0, data: &[] };

    /// One past the last physical address the segment occupies (`paddr + memsz`).
    pub fn end(&self) -> u64 {
        // `parse` guarantees this does not overflow; saturate rather than trust it blindly.
        self.paddr.saturating_add(self.memsz)
    }

    /// `p_filesz` as a `u64`.
    pub fn filesz(&self) -> u64 {
        u64::try_from(self.data.len()).unwrap_or(u64::MAX)
    }
}

/// The physical placement constraints of a relocatable kernel, from its
/// [`XEN_ELFNOTE_PHYS32_RELOC`] note (with Xen's defaults for the values it leaves out).
///
/// The whole image moves by one offset: its lowest physical address
/// ([`KernelImage::extent`]`.0`) becomes the *base*, every segment keeps its distance from it and
/// the entry point moves by the same offset. A base is acceptable when it is a multiple of
/// `align`, at least `min`, and the image's last byte (`base + size - 1`) is at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relocation {
    /// Required alignment of the base, a power of two. The note's first value if it has one;
    /// otherwise the largest `p_align` of the `PT_LOAD` segments if that is at least
    /// [`RELOC_MIN_SEGMENT_ALIGN`]; otherwise [`RELOC_DEFAULT_ALIGN`] (Xen's rule).
    pub align: u64,
    /// The lowest acceptable base: the note's second value, else 0.
    pub min: u64,
    /// The highest address the image's **last byte** may occupy (inclusive, as Xen and Linux
    /// use it): the note's third value, else [`RELOC_DEFAULT_MAX`]. Always `>= min`.
    pub max: u64,
}

/// A validated PVH kernel image, borrowing the image bytes.
///
/// Guarantees: at least one and at most [`MAX_LOAD_SEGMENTS`] loadable segments, pairwise
/// non-overlapping in physical memory, each satisfying the [`Segment`] invariants; the entry
/// point lies in the file-backed bytes of one of them; a [`Relocation`], if any, has a
/// power-of-two `align` and `min <= max`.
#[derive(Debug, Clone)]
pub struct KernelImage<'a> {
    class: ElfClass,
    entry: u32,
    segments: [Segment<'a>; MAX_LOAD_SEGMENTS],
    nr_segments: usize,
    extent: (u64, u64),
    relocation: Option<Relocation>,
}

impl<'a> KernelImage<'a> {
    /// ELF32 or ELF64.
    pub fn class(&self) -> ElfClass {
        self.class
    }

    /// The physical entry point from the `XEN_ELFNOTE_PHYS32_ENTRY` note.
    pub fn entry(&self) -> u32 {
        self.entry
    }

    /// The non-empty `PT_LOAD` segments, in program header order.
    pub fn segments(&self) -> &[Segment<'a>] {
        self.segments.get(..self.nr_segments).unwrap_or(&[])
    }

    /// The physical range `[start, end)` from the lowest segment address to the highest segment
    /// end. Segments need not be contiguous: holes inside the extent are not written by
    /// [`load`](crate::load).
    pub fn extent(&self) -> (u64, u64) {
        self.extent
    }

    /// The relocation constraints if the image has a [`XEN_ELFNOTE_PHYS32_RELOC`] note, `None`
    /// if it can only run at its own physical addresses. See [`load_at`](crate::load_at).
    pub fn relocation(&self) -> Option<Relocation> {
        self.relocation
    }
}

/// The Xen notes [`parse`] looks for, as found so far.
#[derive(Default)]
struct Notes {
    /// The PHYS32 entry point.
    entry: Option<u32>,
    /// The PHYS32_RELOC descriptor's values.
    reloc: Option<RelocNote>,
}

/// A PHYS32_RELOC descriptor: the alignment if given, and min/max with Xen's defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RelocNote {
    align: Option<u32>,
    min: u32,
    max: u32,
}

/// The fields of the ELF header this parser uses, widened to `u64`.
struct Header {
    class: ElfClass,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
}

/// The fields of a program header this parser uses.
struct ProgramHeader {
    p_type: u32,
    offset: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// The fields of a section header this parser uses.
struct SectionHeader {
    sh_type: u32,
    offset: u64,
    size: u64,
    addralign: u64,
}

impl ElfClass {
    fn ehdr_size(self) -> usize {
        match self {
            ElfClass::Elf32 => 52,
            ElfClass::Elf64 => 64,
        }
    }

    fn phdr_size(self) -> u16 {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 56,
        }
    }

    fn shdr_size(self) -> u16 {
        match self {
            ElfClass::Elf32 => 40,
            ElfClass::Elf64 => 64,
        }
    }

    fn machine(self) -> u16 {
        match self {
            ElfClass::Elf32 => EM_386,
            ElfClass::Elf64 => EM_X86_64,
        }
    }

    /// Reads a class-width address/offset field (`u32` for ELF32, `u64` for ELF64).
    fn word_at(self, b: &[u8], off: usize) -> Option<u64> {
        match self {
            ElfClass::Elf32 => u32_at(b, off).map(u64::from),
            ElfClass::Elf64 => u64_at(b, off),
        }
    }

    fn address_limit(self) -> u64 {
        match self {
            ElfClass::Elf32 => 1 << 32,
            ElfClass::Elf64 => u64::MAX,
        }
    }
}

/// Validates `image` as a PVH kernel and finds its entry point.
///
/// Checks, in order: the ELF header (magic, class, byte order, version, `ET_EXEC`, machine);
/// the program header table (present, right entry size, inside the image); every `PT_LOAD`
/// (`p_filesz <= p_memsz`, file bytes inside the image, no address overflow) and every
/// `PT_NOTE` (inside the image, well-formed notes); the number of non-empty `PT_LOAD`s
/// (1..=[`MAX_LOAD_SEGMENTS`]) and that they do not overlap; the PHYS32 entry note and the
/// optional PHYS32_RELOC note (from the `PT_NOTE`s, else the `SHT_NOTE` sections); that the
/// entry lies in a segment's file bytes; for a relocatable image without an alignment in its
/// note, that the `p_align` used instead is a power of two. Other segment types
/// (`PT_GNU_STACK`, `PT_TLS`, ...) are ignored, as are empty `PT_LOAD`s.
pub fn parse(image: &[u8]) -> Result<KernelImage<'_>, LoadError> {
    let hdr = parse_header(image)?;
    let class = hdr.class;
    let phdr_table = table(image, hdr.phoff, hdr.phentsize, hdr.phnum)
        .ok_or(LoadError::BadProgramHeaders(TableProblem::OutsideFile))?;

    let mut segments = [Segment::EMPTY; MAX_LOAD_SEGMENTS];
    let mut nr_segments = 0usize;
    let mut notes = Notes::default();
    // The first non-empty `PT_LOAD` with the largest `p_align`: (index, p_align).
    let mut max_align: Option<(usize, u64)> = None;

    for (index, raw) in phdr_table.chunks_exact(usize::from(hdr.phentsize)).enumerate() {
        let ph = read_phdr(class, raw).ok_or(LoadError::BadProgramHeaders(TableProblem::OutsideFile))?;
        match ph.p_type {
            PT_LOAD => {
                if ph.filesz > ph.memsz {
                    return Err(LoadError::SegmentMemSmallerThanFile { index });
                }
                let data = range(image, ph.offset, ph.filesz).ok_or(LoadError::SegmentOutOfFile { index })?;
                match ph.paddr.checked_add(ph.memsz) {
                    Some(end) if end <= class.address_limit() => {}
                    _ => return Err(LoadError::AddressOverflow { index }),
                }
                if ph.memsz == 0 {
                    continue;
                }
                let slot = segments.get_mut(nr_segments).ok_or(LoadError::TooManySegments)?;
                *slot = Segment { index, paddr: ph.paddr, memsz: ph.memsz, data };
                nr_segments = nr_segments.checked_add(1).ok_or(LoadError::TooManySegments)?;
                if max_align.is_none_or(|(_, align)| ph.align > align) {
                    max_align = Some((index, ph.align));
                }
            }
            PT_NOTE => {
                let data = range(image, ph.offset, ph.filesz).ok_or(LoadError::SegmentOutOfFile { index })?;
                scan_notes(data, note_align(ph.align), NoteLocation::Segment(index), &mut notes)?;
            }
            _ => {}
        }
    }

    let loaded = segments.get(..nr_segments).unwrap_or(&[]);
    if loaded.is_empty() {
        return Err(LoadError::NoLoadableSegments);
    }
    check_overlaps(loaded)?;

    if notes.entry.is_none() {
        scan_section_notes(image, &hdr, &mut notes)?;
    }
    let entry = notes.entry.ok_or(LoadError::NoPvhEntryNote)?;
    let entry64 = u64::from(entry);
    if !loaded.iter().any(|s| entry64.checked_sub(s.paddr).is_some_and(|off| off < s.filesz())) {
        return Err(LoadError::EntryOutsideSegments(entry));
    }

    let start = loaded.iter().map(|s| s.paddr).min().unwrap_or(0);
    let end = loaded.iter().map(Segment::end).max().unwrap_or(0);
    let relocation = match notes.reloc {
        Some(note) => Some(resolve_relocation(note, max_align)?),
        None => None,
    };
    Ok(KernelImage { class, entry, segments, nr_segments, extent: (start, end), relocation })
}

/// The constraints of a PHYS32_RELOC note, its missing alignment filled in as Xen's
/// `find_kernel_memory` does from the largest `PT_LOAD` `p_align` (`max_align`).
fn resolve_relocation(note: RelocNote, max_align: Option<(usize, u64)>) -> Result<Relocation, LoadError> {
    let align = match (note.align, max_align) {
        (Some(align), _) => u64::from(align),
        (None, Some((index, align))) if align >= RELOC_MIN_SEGMENT_ALIGN => {
            if !align.is_power_of_two() {
                return Err(LoadError::SegmentAlignment { index, align });
            }
            align
        }
        (None, _) => RELOC_DEFAULT_ALIGN,
    };
    Ok(Relocation { align, min: note.min.into(), max: note.max.into() })
}

fn parse_header(image: &[u8]) -> Result<Header, LoadError> {
    let prefix = image.get(..ELF_MAGIC.len()).unwrap_or(image);
    if !ELF_MAGIC.starts_with(prefix) {
        return Err(LoadError::BadMagic);
    }
    if image.len() < EI_NIDENT {
        return Err(LoadError::TruncatedHeader);
    }
    let class = match u8_at(image, EI_CLASS) {
        Some(ELFCLASS32) => ElfClass::Elf32,
        Some(ELFCLASS64) => ElfClass::Elf64,
        other => return Err(LoadError::UnsupportedClass(other.unwrap_or(0))),
    };
    match u8_at(image, EI_DATA) {
        Some(ELFDATA2LSB) => {}
        other => return Err(LoadError::NotLittleEndian(other.unwrap_or(0))),
    }
    let ident_version = u32::from(u8_at(image, EI_VERSION).unwrap_or(0));
    if ident_version != EV_CURRENT {
        return Err(LoadError::UnsupportedVersion(ident_version));
    }
    if image.len() < class.ehdr_size() {
        return Err(LoadError::TruncatedHeader);
    }
    let field16 = |off| u16_at(image, off).ok_or(LoadError::TruncatedHeader);
    let field32 = |off| u32_at(image, off).ok_or(LoadError::TruncatedHeader);
    let word = |off| class.word_at(image, off).ok_or(LoadError::TruncatedHeader);

    let e_type = field16(16)?;
    if e_type != ET_EXEC {
        return Err(LoadError::NotExecutable(e_type));
    }
    let machine = field16(18)?;
    if machine != class.machine() {
        return Err(LoadError::UnsupportedMachine(machine));
    }
    let version = field32(20)?;
    if version != EV_CURRENT {
        return Err(LoadError::UnsupportedVersion(version));
    }
    // Offsets of e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum.
    let (phoff_at, shoff_at, phentsize_at, phnum_at, shentsize_at, shnum_at) = match class {
        ElfClass::Elf32 => (28, 32, 42, 44, 46, 48),
        ElfClass::Elf64 => (32, 40, 54, 56, 58, 60),
    };
    let hdr = Header {
        class,
        phoff: word(phoff_at)?,
        phentsize: field16(phentsize_at)?,
        phnum: field16(phnum_at)?,
        shoff: word(shoff_at)?,
        shentsize: field16(shentsize_at)?,
        shnum: field16(shnum_at)?,
    };
    if hdr.phnum == PN_XNUM {
        return Err(LoadError::BadProgramHeaders(TableProblem::ExtendedNumbering));
    }
    if hdr.phnum == 0 || hdr.phoff == 0 {
        return Err(LoadError::BadProgramHeaders(TableProblem::Missing));
    }
    if hdr.phentsize != class.phdr_size() {
        return Err(LoadError::BadProgramHeaders(TableProblem::EntrySize(hdr.phentsize)));
    }
    Ok(hdr)
}

/// The bytes of a header table of `num` entries of `entsize` bytes at file offset `off`.
fn table(image: &[u8], off: u64, entsize: u16, num: u16) -> Option<&[u8]> {
    let len = u64::from(entsize).checked_mul(u64::from(num))?;
    range(image, off, len)
}

fn read_phdr(class: ElfClass, raw: &[u8]) -> Option<ProgramHeader> {
    Some(match class {
        ElfClass::Elf32 => ProgramHeader {
            p_type: u32_at(raw, 0)?,
            offset: u32_at(raw, 4)?.into(),
            paddr: u32_at(raw, 12)?.into(),
            filesz: u32_at(raw, 16)?.into(),
            memsz: u32_at(raw, 20)?.into(),
            align: u32_at(raw, 28)?.into(),
        },
        ElfClass::Elf64 => ProgramHeader {
            p_type: u32_at(raw, 0)?,
            offset: u64_at(raw, 8)?,
            paddr: u64_at(raw, 24)?,
            filesz: u64_at(raw, 32)?,
            memsz: u64_at(raw, 40)?,
            align: u64_at(raw, 48)?,
        },
    })
}

fn read_shdr(class: ElfClass, raw: &[u8]) -> Option<SectionHeader> {
    Some(match class {
        ElfClass::Elf32 => SectionHeader {
            sh_type: u32_at(raw, 4)?,
            offset: u32_at(raw, 16)?.into(),
            size: u32_at(raw, 20)?.into(),
            addralign: u32_at(raw, 32)?.into(),
        },
        ElfClass::Elf64 => SectionHeader {
            sh_type: u32_at(raw, 4)?,
            offset: u64_at(raw, 24)?,
            size: u64_at(raw, 32)?,
            addralign: u64_at(raw, 48)?,
        },
    })
}

/// Notes are padded to 4 bytes, or to 8 in segments/sections aligned to 8 (as readelf reads them).
fn note_align(align: u64) -> usize {
    if align == 8 {
        8
    } else {
        4
    }
}

fn check_overlaps(segments: &[Segment<'_>]) -> Result<(), LoadError> {
    for (i, a) in segments.iter().enumerate() {
        for b in segments.iter().skip(i.saturating_add(1)) {
            if a.paddr < b.end() && b.paddr < a.end() {
                return Err(LoadError::SegmentsOverlap { a: a.index, b: b.index });
            }
        }
    }
    Ok(())
}

/// Fallback when no `PT_NOTE` has the entry note: the `SHT_NOTE` sections. A missing section
/// table (`e_shoff == 0` or `e_shnum == 0`) simply has no notes.
fn scan_section_notes(image: &[u8], hdr: &Header, notes: &mut Notes) -> Result<(), LoadError> {
    if hdr.shoff == 0 || hdr.shnum == 0 {
        return Ok(());
    }
    if hdr.shentsize != hdr.class.shdr_size() {
        return Err(LoadError::BadSectionHeaders(TableProblem::EntrySize(hdr.shentsize)));
    }
    let shdr_table = table(image, hdr.shoff, hdr.shentsize, hdr.shnum)
        .ok_or(LoadError::BadSectionHeaders(TableProblem::OutsideFile))?;
    for (index, raw) in shdr_table.chunks_exact(usize::from(hdr.shentsize)).enumerate() {
        let sh = read_shdr(hdr.class, raw).ok_or(LoadError::BadSectionHeaders(TableProblem::OutsideFile))?;
        if sh.sh_type != SHT_NOTE {
            continue;
        }
        let data = range(image, sh.offset, sh.size).ok_or(LoadError::SectionOutOfFile { index })?;
        scan_notes(data, note_align(sh.addralign), NoteLocation::Section(index), notes)?;
    }
    Ok(())
}

/// Walks the notes in `data`, recording a PHYS32 entry note's address and a PHYS32_RELOC note's
/// values in `notes`.
///
/// Every note must lie entirely inside `data`, except that the padding after the last
/// descriptor may be missing. Fewer than 12 trailing bytes after the last note are an error.
fn scan_notes(data: &[u8], align: usize, location: NoteLocation, notes: &mut Notes) -> Result<(), LoadError> {
    let bad = |problem| LoadError::BadNote { location, problem };
    let truncated = bad(NoteProblem::Truncated);
    let mut off = 0usize;
    while off < data.len() {
        let (namesz, descsz, note_type) =
            match (u32_at(data, off), u32_at(data, off.saturating_add(4)), u32_at(data, off.saturating_add(8))) {
                (Some(n), Some(d), Some(t)) => (n, d, t),
                _ => return Err(truncated),
            };
        let name_off = off.checked_add(NOTE_HEADER_SIZE).ok_or(truncated)?;
        let name_end = name_off.checked_add(usize::try_from(namesz).map_err(|_| truncated)?).ok_or(truncated)?;
        let name = data.get(name_off..name_end).ok_or(truncated)?;
        let desc_off = align_up_usize(name_end, align).ok_or(truncated)?;
        let desc_end = desc_off.checked_add(usize::try_from(descsz).map_err(|_| truncated)?).ok_or(truncated)?;
        let desc = if descsz == 0 { &[][..] } else { data.get(desc_off..desc_end).ok_or(truncated)? };

        if name == XEN_NOTE_NAME && note_type == XEN_ELFNOTE_PHYS32_ENTRY {
            let value = match desc.len() {
                4 => u32_at(desc, 0).map(u64::from),
                8 => u64_at(desc, 0),
                _ => None,
            }
            .ok_or(bad(NoteProblem::EntrySize(descsz)))?;
            let value = u32::try_from(value).map_err(|_| LoadError::EntryAbove4G(value))?;
            match notes.entry {
                Some(previous) if previous != value => return Err(bad(NoteProblem::ConflictingEntries)),
                _ => notes.entry = Some(value),
            }
        }
        if name == XEN_NOTE_NAME && note_type == XEN_ELFNOTE_PHYS32_RELOC {
            let value = parse_reloc(desc).map_err(bad)?;
            match notes.reloc {
                Some(previous) if previous != value => return Err(bad(NoteProblem::ConflictingRelocations)),
                _ => notes.reloc = Some(value),
            }
        }

        // With descsz == 0 the descriptor offset may already be past the end (missing padding).
        off = match align_up_usize(desc_end, align) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(())
}

/// Reads a PHYS32_RELOC descriptor: 0, 4, 8 or 12 bytes holding the alignment, the minimum
/// start and the maximum last-byte address, in that order, each a `u32` (Xen's libelf reads
/// each value only if the descriptor is long enough for it and keeps its default otherwise).
fn parse_reloc(desc: &[u8]) -> Result<RelocNote, NoteProblem> {
    if !matches!(desc.len(), 0 | 4 | 8 | 12) {
        return Err(NoteProblem::RelocSize(u32::try_from(desc.len()).unwrap_or(u32::MAX)));
    }
    let align = u32_at(desc, 0);
    let min = u32_at(desc, 4).unwrap_or(0);
    let max = u32_at(desc, 8).unwrap_or(u32::MAX);
    if let Some(align) = align {
        if !align.is_power_of_two() {
            return Err(NoteProblem::RelocAlignment(align));
        }
    }
    if min > max {
        return Err(NoteProblem::RelocMinAboveMax { min, max });
    }
    Ok(RelocNote { align, min, max })
}

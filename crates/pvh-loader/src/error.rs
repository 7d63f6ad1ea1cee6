//! Every way loading a PVH kernel or writing its start info can fail.

use core::fmt;

use crate::GuestMemoryError;

/// Why an image could not be parsed or loaded, or the start info could not be written.
///
/// Segment and section `index`es are positions in the program / section header table (what
/// `readelf -l` / `readelf -S` number), not positions among the loadable segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    // --- ELF header ---
    /// The image is shorter than its ELF header (16 bytes of `e_ident`, then 52 bytes for
    /// ELF32 or 64 bytes for ELF64).
    TruncatedHeader,
    /// The image does not start with `\x7fELF`.
    BadMagic,
    /// `e_ident[EI_CLASS]` is neither `ELFCLASS32` (1) nor `ELFCLASS64` (2).
    UnsupportedClass(u8),
    /// `e_ident[EI_DATA]` is not `ELFDATA2LSB` (1); the value found.
    NotLittleEndian(u8),
    /// `e_ident[EI_VERSION]` or `e_version` is not `EV_CURRENT` (1); the value found.
    UnsupportedVersion(u32),
    /// `e_type` is not `ET_EXEC` (2); the value found.
    NotExecutable(u16),
    /// `e_machine` is not `EM_X86_64` (62) for ELF64 or `EM_386` (3) for ELF32; the value found.
    UnsupportedMachine(u16),

    // --- program and section header tables ---
    /// The program header table is missing or malformed.
    BadProgramHeaders(TableProblem),
    /// The section header table is malformed (it is only read when no `PT_NOTE` segment has
    /// the PVH entry note).
    BadSectionHeaders(TableProblem),

    // --- segments ---
    /// A `PT_LOAD` or `PT_NOTE` segment's file bytes `[p_offset, p_offset + p_filesz)` are not
    /// inside the image.
    SegmentOutOfFile { index: usize },
    /// A `PT_LOAD` segment has `p_filesz > p_memsz`.
    SegmentMemSmallerThanFile { index: usize },
    /// A `PT_LOAD` segment's `p_paddr + p_memsz` overflows the address space of its class
    /// (64 bits for ELF64, 32 bits for ELF32).
    AddressOverflow { index: usize },
    /// The image has no non-empty `PT_LOAD` segment.
    NoLoadableSegments,
    /// The image has more than [`MAX_LOAD_SEGMENTS`](crate::MAX_LOAD_SEGMENTS) non-empty
    /// `PT_LOAD` segments.
    TooManySegments,
    /// Two `PT_LOAD` segments' physical ranges overlap (program header indexes `a < b`).
    SegmentsOverlap { a: usize, b: usize },
    /// An `SHT_NOTE` section's bytes `[sh_offset, sh_offset + sh_size)` are not inside the image.
    SectionOutOfFile { index: usize },

    // --- the PVH entry note ---
    /// No `"Xen"` note of type `XEN_ELFNOTE_PHYS32_ENTRY`: not a PVH kernel.
    NoPvhEntryNote,
    /// A note in a `PT_NOTE` segment or an `SHT_NOTE` section is malformed.
    BadNote { location: NoteLocation, problem: NoteProblem },
    /// The PHYS32 entry note holds an 8-byte address at or above 4 GiB; the value found.
    EntryAbove4G(u64),
    /// The entry address does not lie in the file-backed bytes of any `PT_LOAD` segment
    /// (`[p_paddr, p_paddr + p_filesz)`: an entry in zero-filled memory would execute zeros).
    EntryOutsideSegments(u32),

    // --- loading into guest memory ---
    /// A segment's physical range `[paddr, end)` does not fit in guest memory `[0, guest_size)`.
    SegmentOutsideGuest { index: usize, paddr: u64, end: u64, guest_size: u64 },

    // --- start info ---
    /// The start info, module list, memory map and strings need `needed` bytes from the
    /// 8-byte-aligned start of the window, which has only `available` bytes before `limit`.
    /// `needed` is `u64::MAX` when the size overflows.
    StartInfoTooLarge { needed: u64, available: u64 },
    /// A command line contains a NUL byte (`module` is `None` for the kernel's own command
    /// line, `Some(i)` for module `i`'s).
    CmdlineContainsNul { module: Option<usize> },
    /// Module `index`'s `paddr + size` overflows.
    BadModule { index: usize },
    /// The output slice given to [`guest_memmap`](crate::guest_memmap) holds fewer than
    /// `needed` entries.
    MemmapBufferTooSmall { needed: usize },

    /// Guest memory refused a write.
    Guest(GuestMemoryError),
}

/// What is wrong with a program or section header table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableProblem {
    /// `e_phnum` is 0 (or `e_phoff` is 0): nothing could be loaded.
    Missing,
    /// `e_phentsize` / `e_shentsize` is not the size of one header of this ELF class
    /// (56/32 for program headers, 64/40 for section headers); the value found.
    EntrySize(u16),
    /// The table `[offset, offset + count * entsize)` is not inside the image.
    OutsideFile,
    /// `e_phnum` is `PN_XNUM` (0xffff): extended numbering, which no kernel needs.
    ExtendedNumbering,
}

/// Where a malformed note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteLocation {
    /// In the `PT_NOTE` segment with this program header index.
    Segment(usize),
    /// In the `SHT_NOTE` section with this section header index.
    Section(usize),
}

/// What is wrong with a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteProblem {
    /// A note's header, name or descriptor runs past the end of its segment or section (or
    /// fewer than 12 bytes are left over after the last note).
    Truncated,
    /// The PHYS32 entry note's descriptor is neither 4 nor 8 bytes; the size found.
    EntrySize(u32),
    /// Two PHYS32 entry notes give different entry addresses.
    ConflictingEntries,
}

impl From<GuestMemoryError> for LoadError {
    fn from(e: GuestMemoryError) -> Self {
        LoadError::Guest(e)
    }
}

impl fmt::Display for TableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableProblem::Missing => f.write_str("the table is missing"),
            TableProblem::EntrySize(s) => write!(f, "entry size {s} is wrong for this ELF class"),
            TableProblem::OutsideFile => f.write_str("the table extends past the end of the image"),
            TableProblem::ExtendedNumbering => f.write_str("extended numbering (PN_XNUM) is not supported"),
        }
    }
}

impl fmt::Display for NoteLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteLocation::Segment(i) => write!(f, "PT_NOTE segment {i}"),
            NoteLocation::Section(i) => write!(f, "SHT_NOTE section {i}"),
        }
    }
}

impl fmt::Display for NoteProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoteProblem::Truncated => f.write_str("a note is truncated"),
            NoteProblem::EntrySize(s) => {
                write!(f, "the PHYS32_ENTRY descriptor is {s} bytes (want 4 or 8)")
            }
            NoteProblem::ConflictingEntries => f.write_str("PHYS32_ENTRY notes give different entry addresses"),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LoadError::TruncatedHeader => f.write_str("image is shorter than its ELF header"),
            LoadError::BadMagic => f.write_str("not an ELF image (bad magic)"),
            LoadError::UnsupportedClass(c) => write!(f, "unsupported ELF class {c} (want 1 or 2)"),
            LoadError::NotLittleEndian(d) => write!(f, "ELF data encoding {d} is not little-endian (1)"),
            LoadError::UnsupportedVersion(v) => write!(f, "unsupported ELF version {v} (want 1)"),
            LoadError::NotExecutable(t) => write!(f, "ELF type {t} is not ET_EXEC (2)"),
            LoadError::UnsupportedMachine(m) => {
                write!(f, "unsupported ELF machine {m} (want 62 for ELF64, 3 for ELF32)")
            }
            LoadError::BadProgramHeaders(p) => write!(f, "bad program header table: {p}"),
            LoadError::BadSectionHeaders(p) => write!(f, "bad section header table: {p}"),
            LoadError::SegmentOutOfFile { index } => {
                write!(f, "segment {index}'s file bytes extend past the end of the image")
            }
            LoadError::SegmentMemSmallerThanFile { index } => {
                write!(f, "segment {index} has p_filesz > p_memsz")
            }
            LoadError::AddressOverflow { index } => {
                write!(f, "segment {index}'s physical address range overflows")
            }
            LoadError::NoLoadableSegments => f.write_str("image has no non-empty PT_LOAD segment"),
            LoadError::TooManySegments => {
                write!(f, "image has more than {} PT_LOAD segments", crate::MAX_LOAD_SEGMENTS)
            }
            LoadError::SegmentsOverlap { a, b } => {
                write!(f, "segments {a} and {b} overlap in physical memory")
            }
            LoadError::SectionOutOfFile { index } => {
                write!(f, "note section {index} extends past the end of the image")
            }
            LoadError::NoPvhEntryNote => {
                f.write_str("no Xen PHYS32_ENTRY note: not a PVH kernel (built without PVH support?)")
            }
            LoadError::BadNote { location, problem } => write!(f, "bad ELF note in {location}: {problem}"),
            LoadError::EntryAbove4G(e) => write!(f, "PVH entry {e:#x} is above 4 GiB"),
            LoadError::EntryOutsideSegments(e) => {
                write!(f, "PVH entry {e:#x} is not inside the file bytes of any PT_LOAD segment")
            }
            LoadError::SegmentOutsideGuest { index, paddr, end, guest_size } => write!(
                f,
                "segment {index} [{paddr:#x}, {end:#x}) does not fit in guest memory of {guest_size:#x} bytes"
            ),
            LoadError::StartInfoTooLarge { needed, available } => {
                write!(f, "start info needs {needed:#x} bytes but only {available:#x} are available")
            }
            LoadError::CmdlineContainsNul { module: None } => f.write_str("kernel command line contains a NUL byte"),
            LoadError::CmdlineContainsNul { module: Some(i) } => {
                write!(f, "module {i}'s command line contains a NUL byte")
            }
            LoadError::BadModule { index } => write!(f, "module {index}'s address range overflows"),
            LoadError::MemmapBufferTooSmall { needed } => {
                write!(f, "memory map buffer too small: {needed} entries needed")
            }
            LoadError::Guest(e) => write!(f, "{e}"),
        }
    }
}

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

    // --- the PVH relocation note ---
    /// The PHYS32_RELOC note gives no alignment, so the largest `p_align` of the `PT_LOAD`
    /// segments is used instead (Xen's rule, since it is at least
    /// [`RELOC_MIN_SEGMENT_ALIGN`](crate::RELOC_MIN_SEGMENT_ALIGN)), but that value, in program
    /// header `index`, is not a power of two.
    SegmentAlignment { index: usize, align: u64 },
    /// [`load_at`](crate::load_at) cannot place the image at `base` (the physical address its
    /// lowest segment address would move to).
    BadLoadBase { base: u64, problem: BaseProblem },

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
    /// The kernel, the modules and the start info need RAM up to `needed`; RAM ends at
    /// `ram_end`.
    BootDataDoesNotFit { needed: u64, ram_end: u64 },
    /// More boot modules than [`MAX_BOOT_MODULES`](crate::MAX_BOOT_MODULES).
    TooManyModules(usize),

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
    /// The PHYS32_RELOC note's descriptor is not 0, 4, 8 or 12 bytes (up to three `u32`s);
    /// the size found.
    RelocSize(u32),
    /// The PHYS32_RELOC note's alignment is not a power of two (0 included); the value found.
    RelocAlignment(u32),
    /// The PHYS32_RELOC note's minimum address is above its maximum.
    RelocMinAboveMax { min: u32, max: u32 },
    /// Two PHYS32_RELOC notes give different values.
    ConflictingRelocations,
}

/// Why [`load_at`](crate::load_at) refuses a base address (see [`Relocation`](crate::Relocation)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseProblem {
    /// The image has no PHYS32_RELOC note, so it can only be loaded at its own addresses.
    NotRelocatable,
    /// The base is not a multiple of the required alignment.
    Misaligned { align: u64 },
    /// The base is below the minimum the note allows.
    BelowMinimum { min: u64 },
    /// The image would end at `end` (exclusive), so its last byte would be above `max`.
    AboveMaximum { end: u64, max: u64 },
    /// The displaced image's end (or entry point) does not fit in 64 (or 32) bits.
    Overflow,
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
            NoteProblem::RelocSize(s) => {
                write!(f, "the PHYS32_RELOC descriptor is {s} bytes (want 0, 4, 8 or 12)")
            }
            NoteProblem::RelocAlignment(a) => write!(f, "the PHYS32_RELOC alignment {a:#x} is not a power of two"),
            NoteProblem::RelocMinAboveMax { min, max } => {
                write!(f, "the PHYS32_RELOC minimum {min:#x} is above its maximum {max:#x}")
            }
            NoteProblem::ConflictingRelocations => f.write_str("PHYS32_RELOC notes give different values"),
        }
    }
}

impl fmt::Display for BaseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaseProblem::NotRelocatable => f.write_str("the image has no PHYS32_RELOC note and cannot be moved"),
            BaseProblem::Misaligned { align } => write!(f, "it is not a multiple of the required alignment {align:#x}"),
            BaseProblem::BelowMinimum { min } => write!(f, "it is below the minimum {min:#x}"),
            BaseProblem::AboveMaximum { end, max } => {
                write!(f, "the image would end at {end:#x}, past the maximum last byte {max:#x}")
            }
            BaseProblem::Overflow => f.write_str("the displaced image's addresses overflow"),
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
            LoadError::SegmentAlignment { index, align } => write!(
                f,
                "segment {index}'s p_align {align:#x} (the PHYS32_RELOC alignment by default) is not a power of two"
            ),
            LoadError::BadLoadBase { base, problem } => write!(f, "cannot load the kernel at {base:#x}: {problem}"),
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
            LoadError::BootDataDoesNotFit { needed, ram_end } => {
                write!(f, "the kernel, modules and start info need RAM up to {needed:#x}, but RAM ends at {ram_end:#x}")
            }
            LoadError::TooManyModules(n) => {
                write!(f, "{n} boot modules (at most {})", crate::MAX_BOOT_MODULES)
            }
            LoadError::MemmapBufferTooSmall { needed } => {
                write!(f, "memory map buffer too small: {needed} entries needed")
            }
            LoadError::Guest(e) => write!(f, "{e}"),
        }
    }
}

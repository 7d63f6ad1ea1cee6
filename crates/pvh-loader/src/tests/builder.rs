//! Builds small ELF32/ELF64 images for the tests, and patches fields in them.

use crate::{ElfClass, GuestMemory, GuestMemoryError};

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_NOTE: u32 = 7;

/// The entry point and layout of [`standard`] images.
pub const ENTRY: u32 = 0x10_0040;
pub const TEXT_PADDR: u64 = 0x10_0000;
pub const TEXT_SIZE: usize = 0x1000;
pub const DATA_PADDR: u64 = 0x10_2000;
pub const DATA_FILESZ: usize = 0x200;
pub const DATA_MEMSZ: u64 = 0x3000;

/// One program header and the file bytes it covers.
#[derive(Clone)]
pub struct Seg {
    pub p_type: u32,
    pub paddr: u64,
    pub data: Vec<u8>,
    pub memsz: u64,
    pub align: u64,
}

/// One section header (after the null section 0, which the builder adds) and its bytes.
#[derive(Clone)]
pub struct Sec {
    pub sh_type: u32,
    pub data: Vec<u8>,
    pub align: u64,
}

#[derive(Clone)]
pub struct ElfBuilder {
    pub class: ElfClass,
    pub segs: Vec<Seg>,
    pub secs: Vec<Sec>,
}

/// A built image and where its parts are.
pub struct Built {
    pub class: ElfClass,
    pub bytes: Vec<u8>,
    pub phoff: usize,
    /// File offset of each segment's bytes.
    pub seg_offsets: Vec<usize>,
    /// Section header table offset (0 if no sections).
    pub shoff: usize,
}

/// Program header fields that tests patch.
#[derive(Clone, Copy, Debug)]
pub enum PhField {
    Type,
    Offset,
    Paddr,
    Filesz,
    Memsz,
    Align,
}

impl Built {
    pub fn phdr_size(&self) -> usize {
        match self.class {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 56,
        }
    }

    /// Sets field `f` of program header `index`.
    pub fn set_ph(&mut self, index: usize, f: PhField, value: u64) {
        let base = self.phoff + index * self.phdr_size();
        match self.class {
            ElfClass::Elf32 => {
                let off = match f {
                    PhField::Type => 0,
                    PhField::Offset => 4,
                    PhField::Paddr => 12,
                    PhField::Filesz => 16,
                    PhField::Memsz => 20,
                    PhField::Align => 28,
                };
                set_u32(&mut self.bytes, base + off, u32::try_from(value).expect("ELF32 field"));
            }
            ElfClass::Elf64 => {
                if let PhField::Type = f {
                    set_u32(&mut self.bytes, base, u32::try_from(value).expect("p_type"));
                    return;
                }
                let off = match f {
                    PhField::Type => unreachable!(),
                    PhField::Offset => 8,
                    PhField::Paddr => 24,
                    PhField::Filesz => 32,
                    PhField::Memsz => 40,
                    PhField::Align => 48,
                };
                set_u64(&mut self.bytes, base + off, value);
            }
        }
    }

    /// Offsets of (e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum).
    pub fn ehdr_offsets(&self) -> (usize, usize, usize, usize, usize, usize) {
        match self.class {
            ElfClass::Elf32 => (28, 32, 42, 44, 46, 48),
            ElfClass::Elf64 => (32, 40, 54, 56, 58, 60),
        }
    }

    /// Writes a class-width word (e_phoff/e_shoff) at `off`.
    pub fn set_word(&mut self, off: usize, value: u64) {
        match self.class {
            ElfClass::Elf32 => set_u32(&mut self.bytes, off, u32::try_from(value).expect("ELF32 word")),
            ElfClass::Elf64 => set_u64(&mut self.bytes, off, value),
        }
    }
}

pub fn set_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn set_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn set_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
pub fn get_u64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn pad_to(v: &mut Vec<u8>, align: usize) {
    while v.len() % align != 0 {
        v.push(0);
    }
}

/// One ELF note, name and descriptor padded to `align`.
pub fn note_aligned(name: &[u8], note_type: u32, desc: &[u8], align: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u32::try_from(name.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&note_type.to_le_bytes());
    v.extend_from_slice(name);
    pad_to(&mut v, align);
    v.extend_from_slice(desc);
    pad_to(&mut v, align);
    v
}

pub fn note(name: &[u8], note_type: u32, desc: &[u8]) -> Vec<u8> {
    note_aligned(name, note_type, desc, 4)
}

pub fn entry_note(entry: u32) -> Vec<u8> {
    note(b"Xen\0", 18, &entry.to_le_bytes())
}

/// A `XEN_ELFNOTE_PHYS32_RELOC` note whose descriptor is `values` (align, min, max, each optional
/// from the end).
pub fn reloc_note(values: &[u32]) -> Vec<u8> {
    let desc: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    note(b"Xen\0", 19, &desc)
}

/// The standard image with a PHYS32_RELOC note (descriptor `values`) after its other notes.
pub fn relocatable(class: ElfClass, values: &[u32]) -> ElfBuilder {
    let mut b = standard(class);
    b.segs[0] = note_seg([standard_notes(ENTRY), reloc_note(values)].concat());
    b
}

/// The notes of the standard image: a GNU build id, Xen GUEST_OS, the PHYS32 entry, Xen LOADER.
pub fn standard_notes(entry: u32) -> Vec<u8> {
    let mut v = note(b"GNU\0", 3, &[0x5a; 20]);
    v.extend(note(b"Xen\0", 6, b"linux\0"));
    v.extend(entry_note(entry));
    v.extend(note(b"Xen\0", 8, b"generic\0"));
    v
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed) | 1).collect()
}

pub fn load_seg(paddr: u64, data: Vec<u8>, memsz: u64) -> Seg {
    Seg { p_type: PT_LOAD, paddr, data, memsz, align: 0x1000 }
}

pub fn note_seg(notes: Vec<u8>) -> Seg {
    let len = notes.len() as u64;
    Seg { p_type: PT_NOTE, paddr: 0, data: notes, memsz: len, align: 4 }
}

/// A PVH kernel: PT_NOTE (with the entry note), text, data+bss, PT_GNU_STACK.
pub fn standard(class: ElfClass) -> ElfBuilder {
    ElfBuilder {
        class,
        segs: vec![
            note_seg(standard_notes(ENTRY)),
            load_seg(TEXT_PADDR, pattern(TEXT_SIZE, 1), TEXT_SIZE as u64),
            load_seg(DATA_PADDR, pattern(DATA_FILESZ, 2), DATA_MEMSZ),
            Seg { p_type: PT_GNU_STACK, paddr: 0, data: vec![], memsz: 0, align: 16 },
        ],
        secs: vec![],
    }
}

impl ElfBuilder {
    pub fn new(class: ElfClass) -> Self {
        ElfBuilder { class, segs: vec![], secs: vec![] }
    }

    pub fn seg(mut self, s: Seg) -> Self {
        self.segs.push(s);
        self
    }

    pub fn sec(mut self, sh_type: u32, data: Vec<u8>, align: u64) -> Self {
        self.secs.push(Sec { sh_type, data, align });
        self
    }

    pub fn build(&self) -> Built {
        let (ehsize, phentsize, shentsize) = match self.class {
            ElfClass::Elf32 => (52usize, 32usize, 40usize),
            ElfClass::Elf64 => (64, 56, 64),
        };
        let phoff = ehsize;
        let mut b = vec![0u8; phoff + phentsize * self.segs.len()];

        // Segment bytes.
        let mut seg_offsets = Vec::new();
        for s in &self.segs {
            pad_to(&mut b, 16);
            seg_offsets.push(b.len());
            b.extend_from_slice(&s.data);
        }
        // Section bytes and header table.
        let mut sec_offsets = Vec::new();
        for s in &self.secs {
            pad_to(&mut b, 16);
            sec_offsets.push(b.len());
            b.extend_from_slice(&s.data);
        }
        let shoff = if self.secs.is_empty() {
            0
        } else {
            pad_to(&mut b, 8);
            let shoff = b.len();
            b.resize(shoff + shentsize * (self.secs.len() + 1), 0);
            for (i, (s, &off)) in self.secs.iter().zip(&sec_offsets).enumerate() {
                let h = shoff + shentsize * (i + 1);
                set_u32(&mut b, h, 1 + i as u32); // sh_name (no string table: unused)
                set_u32(&mut b, h + 4, s.sh_type);
                match self.class {
                    ElfClass::Elf32 => {
                        set_u32(&mut b, h + 16, off as u32);
                        set_u32(&mut b, h + 20, s.data.len() as u32);
                        set_u32(&mut b, h + 32, s.align as u32);
                    }
                    ElfClass::Elf64 => {
                        set_u64(&mut b, h + 24, off as u64);
                        set_u64(&mut b, h + 32, s.data.len() as u64);
                        set_u64(&mut b, h + 48, s.align);
                    }
                }
            }
            shoff
        };

        // ELF header.
        b[0..4].copy_from_slice(b"\x7fELF");
        b[4] = match self.class {
            ElfClass::Elf32 => 1,
            ElfClass::Elf64 => 2,
        };
        b[5] = 1; // little-endian
        b[6] = 1; // EV_CURRENT
        set_u16(&mut b, 16, 2); // ET_EXEC
        set_u16(
            &mut b,
            18,
            match self.class {
                ElfClass::Elf32 => 3,
                ElfClass::Elf64 => 62,
            },
        );
        set_u32(&mut b, 20, 1);
        let mut built = Built { class: self.class, bytes: b, phoff, seg_offsets, shoff };
        let (phoff_at, shoff_at, phentsize_at, phnum_at, shentsize_at, shnum_at) = built.ehdr_offsets();
        // e_entry: a virtual address, deliberately unrelated to the PVH entry.
        match self.class {
            ElfClass::Elf32 => set_u32(&mut built.bytes, 24, 0xc100_0000),
            ElfClass::Elf64 => set_u64(&mut built.bytes, 24, 0xffff_ffff_8100_0000),
        }
        built.set_word(phoff_at, phoff as u64);
        built.set_word(shoff_at, shoff as u64);
        set_u16(&mut built.bytes, ehsize - 12, ehsize as u16); // e_ehsize
        set_u16(&mut built.bytes, phentsize_at, phentsize as u16);
        set_u16(&mut built.bytes, phnum_at, self.segs.len() as u16);
        set_u16(&mut built.bytes, shentsize_at, if self.secs.is_empty() { 0 } else { shentsize as u16 });
        set_u16(&mut built.bytes, shnum_at, if self.secs.is_empty() { 0 } else { self.secs.len() as u16 + 1 });

        // Program headers.
        for (i, s) in self.segs.iter().enumerate() {
            let off = built.seg_offsets[i] as u64;
            built.set_ph(i, PhField::Type, u64::from(s.p_type));
            built.set_ph(i, PhField::Offset, off);
            built.set_ph(i, PhField::Paddr, s.paddr);
            built.set_ph(i, PhField::Filesz, s.data.len() as u64);
            built.set_ph(i, PhField::Memsz, s.memsz);
            built.set_ph(i, PhField::Align, s.align);
            // p_vaddr: a high-half alias, never used by the loader.
            let vaddr_at = built.phoff + i * phentsize + if self.class == ElfClass::Elf32 { 8 } else { 16 };
            match self.class {
                ElfClass::Elf32 => set_u32(&mut built.bytes, vaddr_at, 0xc000_0000 | s.paddr as u32),
                ElfClass::Elf64 => set_u64(&mut built.bytes, vaddr_at, 0xffff_ffff_8000_0000 | s.paddr),
            }
        }
        built
    }
}

/// Guest memory over a Vec that counts calls and can be told to refuse the n-th one.
pub struct TestMemory {
    pub bytes: Vec<u8>,
    pub calls: usize,
    pub fail_call: Option<usize>,
}

impl TestMemory {
    /// `size` bytes of 0xAA (so zero-filling is visible).
    pub fn new(size: usize) -> Self {
        TestMemory { bytes: vec![0xaa; size], calls: 0, fail_call: None }
    }

    fn call(&mut self, gpa: u64, len: u64) -> Result<(), GuestMemoryError> {
        let n = self.calls;
        self.calls += 1;
        if self.fail_call == Some(n) {
            return Err(GuestMemoryError { gpa, len });
        }
        Ok(())
    }
}

impl GuestMemory for TestMemory {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn write(&mut self, gpa: u64, bytes: &[u8]) -> Result<(), GuestMemoryError> {
        self.call(gpa, bytes.len() as u64)?;
        GuestMemory::write(self.bytes.as_mut_slice(), gpa, bytes)
    }

    fn fill(&mut self, gpa: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError> {
        self.call(gpa, len)?;
        GuestMemory::fill(self.bytes.as_mut_slice(), gpa, len, byte)
    }
}

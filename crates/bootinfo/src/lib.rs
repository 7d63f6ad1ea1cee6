//! What the boot loader handed over, parsed into one owned [`BootInfo`].
//!
//! Ferrovisor is entered by two protocols (DESIGN.md §5): PVH (`struct hvm_start_info`,
//! Xen's `public/arch-x86/hvm/start_info.h`, used by QEMU `-kernel`) and multiboot2 (GRUB).
//! Both describe the same things: the hypervisor's command line, the firmware memory map,
//! boot modules with their command lines, and where the ACPI RSDP is. This crate copies
//! them out of the loader's structures so the memory those structures live in can be
//! reused, and so the rest of the hypervisor never cares which protocol booted it.
//!
//! Physical memory is reached through the [`PhysMemory`] trait: the hypervisor implements
//! it over its identity map, host tests over a byte buffer. Every read is bounds-checked
//! by the implementation; a structure that points outside memory is an error, not a crash.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use core::fmt;

/// Reads physical memory for the parsers.
pub trait PhysMemory {
    /// Fills `buf` from physical address `paddr`, or fails if any byte is not readable.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Unreadable>;
}

/// A read of physical memory that the [`PhysMemory`] implementation refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable {
    pub paddr: u64,
    pub len: usize,
}

/// Why the boot information could not be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootInfoError {
    /// A structure or string lies outside readable memory.
    Unreadable(Unreadable),
    /// `hvm_start_info.magic` is not `XEN_HVM_START_MAGIC_VALUE`.
    BadPvhMagic(u32),
    /// The multiboot2 information structure is malformed (size or tag layout).
    BadMultiboot2(&'static str),
    /// More memory-map entries than [`MAX_MEMORY_REGIONS`].
    TooManyMemoryRegions,
    /// More modules than [`MAX_MODULES`].
    TooManyModules,
    /// A command line longer than its buffer (the `usize` is the buffer's capacity).
    CmdlineTooLong(usize),
    /// A command line that is not UTF-8.
    CmdlineNotUtf8,
    /// A module whose end lies before its start or overflows.
    BadModule { index: usize },
}

impl From<Unreadable> for BootInfoError {
    fn from(e: Unreadable) -> Self {
        BootInfoError::Unreadable(e)
    }
}

impl fmt::Display for BootInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootInfoError::Unreadable(u) => {
                write!(f, "boot structure at {:#x} (+{}) is not readable", u.paddr, u.len)
            }
            BootInfoError::BadPvhMagic(m) => write!(f, "hvm_start_info magic {m:#x} is wrong"),
            BootInfoError::BadMultiboot2(why) => write!(f, "malformed multiboot2 information: {why}"),
            BootInfoError::TooManyMemoryRegions => {
                write!(f, "memory map has more than {MAX_MEMORY_REGIONS} entries")
            }
            BootInfoError::TooManyModules => write!(f, "more than {MAX_MODULES} boot modules"),
            BootInfoError::CmdlineTooLong(cap) => {
                write!(f, "a command line is longer than {cap} bytes")
            }
            BootInfoError::CmdlineNotUtf8 => write!(f, "a command line is not UTF-8"),
            BootInfoError::BadModule { index } => write!(f, "module {index} has a bad address range"),
        }
    }
}

pub const MAX_MEMORY_REGIONS: usize = 128;
pub const MAX_MODULES: usize = 128;
pub const CMDLINE_CAPACITY: usize = 2048;
pub const MODULE_CMDLINE_CAPACITY: usize = 512;

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const PVH_START_MAGIC: u32 = 0x336e_c578;
/// The value multiboot2 loaders leave in `eax`.
pub const MULTIBOOT2_BOOTLOADER_MAGIC: u32 = 0x36d7_6289;

/// Which protocol entered the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pvh,
    Multiboot2,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Pvh => "PVH",
            Protocol::Multiboot2 => "multiboot2",
        })
    }
}

/// A string copied out of the loader's memory into a fixed buffer.
#[derive(Clone, Copy)]
pub struct FixedStr<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    pub const fn new() -> Self {
        FixedStr { bytes: [0; N], len: 0 }
    }

    fn set(&mut self, s: &[u8]) -> Result<(), BootInfoError> {
        if s.len() > N {
            return Err(BootInfoError::CmdlineTooLong(N));
        }
        core::str::from_utf8(s).map_err(|_| BootInfoError::CmdlineNotUtf8)?;
        self.bytes[..s.len()].copy_from_slice(s);
        self.len = s.len();
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        // `set` admits only UTF-8, so this cannot fail; fall back to "" rather than panic.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// What a firmware memory-map entry says about its range (E820 numbering, which both
/// protocols use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    Usable,
    Reserved,
    AcpiReclaimable,
    AcpiNvs,
    Defective,
    /// Persistent memory and vendor types: never used as RAM.
    Other(u32),
}

impl MemoryKind {
    pub fn from_e820(kind: u32) -> Self {
        match kind {
            1 => MemoryKind::Usable,
            2 => MemoryKind::Reserved,
            3 => MemoryKind::AcpiReclaimable,
            4 => MemoryKind::AcpiNvs,
            5 => MemoryKind::Defective,
            other => MemoryKind::Other(other),
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryKind::Usable => f.write_str("usable"),
            MemoryKind::Reserved => f.write_str("reserved"),
            MemoryKind::AcpiReclaimable => f.write_str("ACPI data"),
            MemoryKind::AcpiNvs => f.write_str("ACPI NVS"),
            MemoryKind::Defective => f.write_str("defective"),
            MemoryKind::Other(t) => write!(f, "type {t}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    pub start: u64,
    pub len: u64,
    pub kind: MemoryKind,
}

impl MemoryRegion {
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A boot module: bytes the loader placed in memory, and the command line given with it.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    pub start: u64,
    pub end: u64,
    pub cmdline: FixedStr<MODULE_CMDLINE_CAPACITY>,
}

impl Module {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Where the ACPI root pointer is. Multiboot2 hands over a copy of the RSDP rather than
/// its address, so that case carries the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsdpLocation {
    Address(u64),
    Copied { bytes: [u8; RSDP_MAX_LEN], len: usize },
}

/// Size of an ACPI 2.0+ RSDP (the 1.0 one is 20 bytes).
pub const RSDP_MAX_LEN: usize = 36;

/// Everything the hypervisor needs from its loader.
#[derive(Debug, Clone)]
pub struct BootInfo {
    pub protocol: Protocol,
    pub cmdline: FixedStr<CMDLINE_CAPACITY>,
    pub loader_name: FixedStr<64>,
    memory: [MemoryRegion; MAX_MEMORY_REGIONS],
    memory_len: usize,
    modules: [Module; MAX_MODULES],
    modules_len: usize,
    pub rsdp: Option<RsdpLocation>,
}

const NO_REGION: MemoryRegion = MemoryRegion { start: 0, len: 0, kind: MemoryKind::Reserved };
const NO_MODULE: Module = Module { start: 0, end: 0, cmdline: FixedStr::new() };

impl BootInfo {
    /// An empty `BootInfo`, const so it can live in a static (it is ~20 KiB: too big to
    /// pass around on an early boot stack).
    pub const fn new() -> Self {
        BootInfo {
            protocol: Protocol::Pvh,
            cmdline: FixedStr::new(),
            loader_name: FixedStr::new(),
            memory: [NO_REGION; MAX_MEMORY_REGIONS],
            memory_len: 0,
            modules: [NO_MODULE; MAX_MODULES],
            modules_len: 0,
            rsdp: None,
        }
    }

    pub fn memory_map(&self) -> &[MemoryRegion] {
        &self.memory[..self.memory_len]
    }

    pub fn modules(&self) -> &[Module] {
        &self.modules[..self.modules_len]
    }

    fn push_region(&mut self, region: MemoryRegion) -> Result<(), BootInfoError> {
        if region.len == 0 {
            return Ok(());
        }
        let slot = self.memory.get_mut(self.memory_len).ok_or(BootInfoError::TooManyMemoryRegions)?;
        *slot = region;
        self.memory_len += 1;
        Ok(())
    }

    fn push_module(&mut self, start: u64, end: u64, cmdline: &[u8]) -> Result<(), BootInfoError> {
        let index = self.modules_len;
        if end < start {
            return Err(BootInfoError::BadModule { index });
        }
        let slot = self.modules.get_mut(index).ok_or(BootInfoError::TooManyModules)?;
        slot.start = start;
        slot.end = end;
        slot.cmdline.set(cmdline)?;
        self.modules_len += 1;
        Ok(())
    }

    /// Takes over a PVH `struct hvm_start_info` at physical address `start_info`.
    pub fn parse_pvh(&mut self, mem: &impl PhysMemory, start_info: u64) -> Result<(), BootInfoError> {
        *self = BootInfo::new();
        self.protocol = Protocol::Pvh;
        self.loader_name.set(b"PVH")?;
        let mut raw = [0u8; pvh::START_INFO_SIZE];
        mem.read(start_info, &mut raw)?;
        let magic = le_u32(&raw, pvh::MAGIC);
        if magic != PVH_START_MAGIC {
            return Err(BootInfoError::BadPvhMagic(magic));
        }
        let version = le_u32(&raw, pvh::VERSION);
        let nr_modules = le_u32(&raw, pvh::NR_MODULES) as usize;
        let modlist = le_u64(&raw, pvh::MODLIST_PADDR);
        let cmdline = le_u64(&raw, pvh::CMDLINE_PADDR);
        let rsdp = le_u64(&raw, pvh::RSDP_PADDR);

        let mut buf = [0u8; CMDLINE_CAPACITY];
        let line = read_c_string(mem, cmdline, &mut buf)?;
        self.cmdline.set(line)?;

        if nr_modules > MAX_MODULES {
            return Err(BootInfoError::TooManyModules);
        }
        for i in 0..nr_modules {
            let mut entry = [0u8; pvh::MODLIST_ENTRY_SIZE];
            mem.read(modlist + (i * pvh::MODLIST_ENTRY_SIZE) as u64, &mut entry)?;
            let paddr = le_u64(&entry, 0);
            let size = le_u64(&entry, 8);
            let cmdline = le_u64(&entry, 16);
            let mut buf = [0u8; MODULE_CMDLINE_CAPACITY];
            let line = read_c_string(mem, cmdline, &mut buf)?;
            let end = paddr.checked_add(size).ok_or(BootInfoError::BadModule { index: i })?;
            self.push_module(paddr, end, line)?;
        }

        // The memory map arrived with version 1 of the structure.
        if version >= 1 {
            let mut tail = [0u8; pvh::START_INFO_V1_SIZE - pvh::START_INFO_SIZE];
            mem.read(start_info + pvh::START_INFO_SIZE as u64, &mut tail)?;
            let mut full = [0u8; pvh::START_INFO_V1_SIZE];
            full[..pvh::START_INFO_SIZE].copy_from_slice(&raw);
            full[pvh::START_INFO_SIZE..].copy_from_slice(&tail);
            let memmap = le_u64(&full, pvh::MEMMAP_PADDR);
            let entries = le_u32(&full, pvh::MEMMAP_ENTRIES) as usize;
            if entries > MAX_MEMORY_REGIONS {
                return Err(BootInfoError::TooManyMemoryRegions);
            }
            for i in 0..entries {
                let mut entry = [0u8; pvh::MEMMAP_ENTRY_SIZE];
                mem.read(memmap + (i * pvh::MEMMAP_ENTRY_SIZE) as u64, &mut entry)?;
                self.push_region(MemoryRegion {
                    start: le_u64(&entry, 0),
                    len: le_u64(&entry, 8),
                    kind: MemoryKind::from_e820(le_u32(&entry, 16)),
                })?;
            }
        }
        self.rsdp = (rsdp != 0).then_some(RsdpLocation::Address(rsdp));
        Ok(())
    }

    /// Takes over a multiboot2 boot information structure at physical address `mbi`.
    pub fn parse_multiboot2(&mut self, mem: &impl PhysMemory, mbi: u64) -> Result<(), BootInfoError> {
        *self = BootInfo::new();
        self.protocol = Protocol::Multiboot2;
        let mut header = [0u8; 8];
        mem.read(mbi, &mut header)?;
        let total = le_u32(&header, 0) as u64;
        if total < 16 {
            return Err(BootInfoError::BadMultiboot2("total size below 16"));
        }
        let end = mbi + total;
        let mut tag = mbi + 8;
        let mut saw_end = false;
        let mut rsdp_v2 = false;
        while tag + 8 <= end {
            let mut head = [0u8; 8];
            mem.read(tag, &mut head)?;
            let kind = le_u32(&head, 0);
            let size = le_u32(&head, 4) as u64;
            if size < 8 || tag + size > end {
                return Err(BootInfoError::BadMultiboot2("tag size out of bounds"));
            }
            let body = tag + 8;
            let body_len = (size - 8) as usize;
            match kind {
                mb2::TAG_END => {
                    saw_end = true;
                    break;
                }
                mb2::TAG_CMDLINE => {
                    let mut buf = [0u8; CMDLINE_CAPACITY];
                    let line = read_bounded_string(mem, body, body_len, &mut buf)?;
                    self.cmdline.set(line)?;
                }
                mb2::TAG_LOADER_NAME => {
                    // A long loader name is cosmetic: keep what fits.
                    let mut buf = [0u8; 64];
                    let name = read_bounded_string(mem, body, body_len.min(buf.len()), &mut buf)?;
                    self.loader_name.set(name)?;
                }
                mb2::TAG_MODULE => {
                    if body_len < 8 {
                        return Err(BootInfoError::BadMultiboot2("module tag too short"));
                    }
                    let mut range = [0u8; 8];
                    mem.read(body, &mut range)?;
                    let mut buf = [0u8; MODULE_CMDLINE_CAPACITY];
                    let line = read_bounded_string(mem, body + 8, body_len - 8, &mut buf)?;
                    self.push_module(le_u32(&range, 0).into(), le_u32(&range, 4).into(), line)?;
                }
                mb2::TAG_MMAP => {
                    if body_len < 8 {
                        return Err(BootInfoError::BadMultiboot2("memory map tag too short"));
                    }
                    let mut sizes = [0u8; 8];
                    mem.read(body, &mut sizes)?;
                    let entry_size = le_u32(&sizes, 0) as usize;
                    if entry_size < mb2::MMAP_ENTRY_MIN_SIZE {
                        return Err(BootInfoError::BadMultiboot2("memory map entry size below 24"));
                    }
                    let count = (body_len - 8) / entry_size;
                    for i in 0..count {
                        let mut entry = [0u8; mb2::MMAP_ENTRY_MIN_SIZE];
                        mem.read(body + 8 + (i * entry_size) as u64, &mut entry)?;
                        self.push_region(MemoryRegion {
                            start: le_u64(&entry, 0),
                            len: le_u64(&entry, 8),
                            kind: MemoryKind::from_e820(le_u32(&entry, 16)),
                        })?;
                    }
                }
                mb2::TAG_ACPI_OLD | mb2::TAG_ACPI_NEW => {
                    // Prefer the ACPI 2.0 RSDP (XSDT) when both are present.
                    let newer = kind == mb2::TAG_ACPI_NEW;
                    if newer || !rsdp_v2 {
                        let len = body_len.min(RSDP_MAX_LEN);
                        let mut bytes = [0u8; RSDP_MAX_LEN];
                        mem.read(body, &mut bytes[..len])?;
                        self.rsdp = Some(RsdpLocation::Copied { bytes, len });
                        rsdp_v2 |= newer;
                    }
                }
                _ => {}
            }
            tag += (size + 7) & !7;
        }
        if !saw_end {
            return Err(BootInfoError::BadMultiboot2("no end tag"));
        }
        Ok(())
    }
}

impl Default for BootInfo {
    fn default() -> Self {
        Self::new()
    }
}

/// Offsets in `struct hvm_start_info` and its satellites (`start_info.h`).
mod pvh {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const NR_MODULES: usize = 12;
    pub const MODLIST_PADDR: usize = 16;
    pub const CMDLINE_PADDR: usize = 24;
    pub const RSDP_PADDR: usize = 32;
    pub const MEMMAP_PADDR: usize = 40;
    pub const MEMMAP_ENTRIES: usize = 48;
    pub const START_INFO_SIZE: usize = 40;
    pub const START_INFO_V1_SIZE: usize = 56;
    pub const MODLIST_ENTRY_SIZE: usize = 32;
    pub const MEMMAP_ENTRY_SIZE: usize = 24;
}

/// Multiboot2 tag types and sizes (the Multiboot2 specification, §3.6).
mod mb2 {
    pub const TAG_END: u32 = 0;
    pub const TAG_CMDLINE: u32 = 1;
    pub const TAG_LOADER_NAME: u32 = 2;
    pub const TAG_MODULE: u32 = 3;
    pub const TAG_MMAP: u32 = 6;
    pub const TAG_ACPI_OLD: u32 = 14;
    pub const TAG_ACPI_NEW: u32 = 15;
    pub const MMAP_ENTRY_MIN_SIZE: usize = 24;
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

/// Reads a NUL-terminated string at `paddr` (0 means "none": empty) into `buf`.
fn read_c_string<'a>(mem: &impl PhysMemory, paddr: u64, buf: &'a mut [u8]) -> Result<&'a [u8], BootInfoError> {
    if paddr == 0 {
        return Ok(&buf[..0]);
    }
    for i in 0..buf.len() {
        let mut byte = [0u8; 1];
        mem.read(paddr + i as u64, &mut byte)?;
        if byte[0] == 0 {
            return Ok(&buf[..i]);
        }
        buf[i] = byte[0];
    }
    Err(BootInfoError::CmdlineTooLong(buf.len()))
}

/// Reads a string stored in `len` bytes at `paddr`, ending at the first NUL if any.
fn read_bounded_string<'a>(
    mem: &impl PhysMemory,
    paddr: u64,
    len: usize,
    buf: &'a mut [u8],
) -> Result<&'a [u8], BootInfoError> {
    let take = len.min(buf.len());
    mem.read(paddr, &mut buf[..take])?;
    match buf[..take].iter().position(|&b| b == 0) {
        Some(nul) => Ok(&buf[..nul]),
        None if len > buf.len() => Err(BootInfoError::CmdlineTooLong(buf.len())),
        None => Ok(&buf[..take]),
    }
}

#[cfg(test)]
mod tests;

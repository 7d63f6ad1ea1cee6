//! `struct hvm_start_info` (Xen's `public/arch-x86/hvm/start_info.h`) and its memory map,
//! parsed from bytes the guest copied out of memory.

use crate::abi::{E820_RAM, XEN_HVM_START_MAGIC_VALUE};

/// Bytes of `struct hvm_start_info` up to and including `rsdp_paddr` (version 0).
pub const START_INFO_V0_SIZE: usize = 40;
/// Bytes of `struct hvm_start_info` version 1 (with the memory map fields).
pub const START_INFO_SIZE: usize = 56;
/// Bytes of one `struct hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;
/// Bytes of one `struct hvm_modlist_entry`.
pub const MODLIST_ENTRY_SIZE: usize = 32;

/// The fields of `struct hvm_start_info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StartInfo {
    /// `version`.
    pub version: u32,
    /// `flags` (`SIF_*`).
    pub flags: u32,
    /// `nr_modules`.
    pub nr_modules: u32,
    /// `modlist_paddr`.
    pub modlist_paddr: u64,
    /// `cmdline_paddr` (0: none).
    pub cmdline_paddr: u64,
    /// `rsdp_paddr`.
    pub rsdp_paddr: u64,
    /// `memmap_paddr` (version 1 and later, else 0).
    pub memmap_paddr: u64,
    /// `memmap_entries` (version 1 and later, else 0).
    pub memmap_entries: u32,
}

/// Why the start info is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// `magic` is not `XEN_HVM_START_MAGIC_VALUE`; the value found.
    BadMagic(u32),
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(v)
}

impl StartInfo {
    /// Parses the structure from its first [`START_INFO_SIZE`] bytes (the memory map fields
    /// are read only for `version >= 1`; a version 0 structure needs 40 bytes).
    pub fn parse(b: &[u8]) -> Result<StartInfo, StartInfoError> {
        if b.len() < START_INFO_V0_SIZE {
            return Err(StartInfoError::Truncated);
        }
        let magic = u32_at(b, 0);
        if magic != XEN_HVM_START_MAGIC_VALUE {
            return Err(StartInfoError::BadMagic(magic));
        }
        let version = u32_at(b, 4);
        let mut si = StartInfo {
            version,
            flags: u32_at(b, 8),
            nr_modules: u32_at(b, 12),
            modlist_paddr: u64_at(b, 16),
            cmdline_paddr: u64_at(b, 24),
            rsdp_paddr: u64_at(b, 32),
            memmap_paddr: 0,
            memmap_entries: 0,
        };
        if version >= 1 {
            if b.len() < START_INFO_SIZE {
                return Err(StartInfoError::Truncated);
            }
            si.memmap_paddr = u64_at(b, 40);
            si.memmap_entries = u32_at(b, 48);
        }
        Ok(si)
    }
}

/// One `struct hvm_memmap_table_entry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemmapEntry {
    /// Start address.
    pub addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// E820 type (1 = RAM).
    pub kind: u32,
}

impl MemmapEntry {
    /// Parses one entry from [`MEMMAP_ENTRY_SIZE`] bytes.
    pub fn parse(b: &[u8]) -> Option<MemmapEntry> {
        if b.len() < MEMMAP_ENTRY_SIZE {
            return None;
        }
        Some(MemmapEntry { addr: u64_at(b, 0), size: u64_at(b, 8), kind: u32_at(b, 16) })
    }

    /// The end address (saturating).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }
}

/// One past the highest RAM byte of the map: the guest's RAM size when RAM starts at 0.
pub fn ram_end(entries: impl IntoIterator<Item = MemmapEntry>) -> Option<u64> {
    entries.into_iter().filter(|e| e.kind == E820_RAM && e.size > 0).map(|e| e.end()).max()
}

/// Total bytes of RAM in the map.
pub fn ram_bytes(entries: impl IntoIterator<Item = MemmapEntry>) -> u64 {
    entries.into_iter().filter(|e| e.kind == E820_RAM).fold(0u64, |sum, e| sum.saturating_add(e.size))
}

/// The bytes before the first NUL (all of `b` if there is none).
pub fn c_str(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| c == 0) {
        Some(n) => &b[..n],
        None => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start_info(version: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
        b.extend_from_slice(&version.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes()); // flags
        b.extend_from_slice(&1u32.to_le_bytes()); // nr_modules
        b.extend_from_slice(&0x1000u64.to_le_bytes()); // modlist
        b.extend_from_slice(&0x2000u64.to_le_bytes()); // cmdline
        b.extend_from_slice(&0x3000u64.to_le_bytes()); // rsdp
        b.extend_from_slice(&0x4000u64.to_le_bytes()); // memmap
        b.extend_from_slice(&3u32.to_le_bytes()); // entries
        b.extend_from_slice(&0u32.to_le_bytes()); // reserved
        assert_eq!(b.len(), START_INFO_SIZE);
        b
    }

    #[test]
    fn parses_v1() {
        let si = StartInfo::parse(&start_info(1)).unwrap();
        assert_eq!(
            si,
            StartInfo {
                version: 1,
                flags: 2,
                nr_modules: 1,
                modlist_paddr: 0x1000,
                cmdline_paddr: 0x2000,
                rsdp_paddr: 0x3000,
                memmap_paddr: 0x4000,
                memmap_entries: 3,
            }
        );
    }

    #[test]
    fn v0_ignores_memmap() {
        let b = start_info(0);
        let si = StartInfo::parse(&b[..START_INFO_V0_SIZE]).unwrap();
        assert_eq!(si.memmap_entries, 0);
        assert_eq!(si.cmdline_paddr, 0x2000);
    }

    #[test]
    fn errors() {
        let b = start_info(1);
        assert_eq!(StartInfo::parse(&b[..39]), Err(StartInfoError::Truncated));
        assert_eq!(StartInfo::parse(&b[..50]), Err(StartInfoError::Truncated));
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert_eq!(StartInfo::parse(&bad), Err(StartInfoError::BadMagic(XEN_HVM_START_MAGIC_VALUE ^ 1)));
    }

    #[test]
    fn memmap() {
        let mut b = Vec::new();
        for (addr, size, kind) in [(0u64, 0xa0000u64, 1u32), (0xa0000, 0x60000, 2), (0x100000, 0x1f00000, 1)] {
            b.extend_from_slice(&addr.to_le_bytes());
            b.extend_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&kind.to_le_bytes());
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        let entries: Vec<_> = b.chunks(MEMMAP_ENTRY_SIZE).map(|c| MemmapEntry::parse(c).unwrap()).collect();
        assert_eq!(entries[1], MemmapEntry { addr: 0xa0000, size: 0x60000, kind: 2 });
        assert_eq!(ram_end(entries.iter().copied()), Some(0x200_0000));
        assert_eq!(ram_bytes(entries.iter().copied()), 0x200_0000 - 0x60000);
        assert_eq!(ram_end([]), None);
        assert!(MemmapEntry::parse(&b[..23]).is_none());
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"test=hello\0junk"), b"test=hello");
        assert_eq!(c_str(b"no nul"), b"no nul");
        assert_eq!(c_str(b"\0"), b"");
    }
}

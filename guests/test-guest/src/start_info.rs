//! Reading `struct hvm_start_info` and its memory map (`xen_abi::start_info`) from the bytes the
//! guest copied out of memory.

use xen_abi::start_info::XEN_HVM_START_MAGIC_VALUE;
use xen_abi::start_info::{HvmMemmapTableEntry, HvmStartInfo, HVM_START_INFO_V0_SIZE, XEN_HVM_MEMMAP_TYPE_RAM};
use xen_abi::XenStruct;

/// Why the start info is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// Fewer bytes than the structure needs.
    Truncated,
    /// `magic` is not `XEN_HVM_START_MAGIC_VALUE`; the value found.
    BadMagic(u32),
}

/// Parses the start info from its first bytes: [`HVM_START_INFO_V0_SIZE`] for a version 0
/// structure (whose memory map fields then read as 0), `HvmStartInfo::SIZE` for version 1 and
/// later.
pub fn parse(b: &[u8]) -> Result<HvmStartInfo, StartInfoError> {
    let mut raw = [0u8; HvmStartInfo::SIZE];
    let head = b.get(..HVM_START_INFO_V0_SIZE).ok_or(StartInfoError::Truncated)?;
    raw[..HVM_START_INFO_V0_SIZE].copy_from_slice(head);
    let v0 = HvmStartInfo::from_bytes(&raw);
    if v0.magic != XEN_HVM_START_MAGIC_VALUE {
        return Err(StartInfoError::BadMagic(v0.magic));
    }
    if v0.version == 0 {
        return Ok(v0);
    }
    HvmStartInfo::read_from(b).map_err(|_| StartInfoError::Truncated)
}

/// One past the last byte of a memory map entry (saturating).
pub fn entry_end(e: &HvmMemmapTableEntry) -> u64 {
    e.addr.saturating_add(e.size)
}

/// One past the highest RAM byte of the map: the guest's RAM size when RAM starts at 0.
pub fn ram_end(entries: impl IntoIterator<Item = HvmMemmapTableEntry>) -> Option<u64> {
    entries.into_iter().filter(|e| e.type_ == XEN_HVM_MEMMAP_TYPE_RAM && e.size > 0).map(|e| entry_end(&e)).max()
}

/// Total bytes of RAM in the map.
pub fn ram_bytes(entries: impl IntoIterator<Item = HvmMemmapTableEntry>) -> u64 {
    entries.into_iter().filter(|e| e.type_ == XEN_HVM_MEMMAP_TYPE_RAM).fold(0u64, |sum, e| sum.saturating_add(e.size))
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
        HvmStartInfo {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version,
            flags: 2,
            nr_modules: 1,
            modlist_paddr: 0x1000,
            cmdline_paddr: 0x2000,
            rsdp_paddr: 0x3000,
            memmap_paddr: 0x4000,
            memmap_entries: 3,
            reserved: 0,
        }
        .to_bytes()
        .to_vec()
    }

    #[test]
    fn parses_v1() {
        let si = parse(&start_info(1)).unwrap();
        assert_eq!((si.version, si.flags, si.nr_modules), (1, 2, 1));
        assert_eq!((si.modlist_paddr, si.cmdline_paddr, si.rsdp_paddr), (0x1000, 0x2000, 0x3000));
        assert_eq!((si.memmap_paddr, si.memmap_entries), (0x4000, 3));
    }

    #[test]
    fn v0_ignores_memmap() {
        let b = start_info(0);
        let si = parse(&b[..HVM_START_INFO_V0_SIZE]).unwrap();
        assert_eq!((si.memmap_paddr, si.memmap_entries), (0, 0));
        assert_eq!(si.cmdline_paddr, 0x2000);
        // Bytes beyond a version 0 structure are not looked at.
        assert_eq!(parse(&b).unwrap().memmap_entries, 0);
    }

    #[test]
    fn errors() {
        let b = start_info(1);
        assert_eq!(parse(&b[..39]), Err(StartInfoError::Truncated));
        assert_eq!(parse(&b[..50]), Err(StartInfoError::Truncated));
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert_eq!(parse(&bad), Err(StartInfoError::BadMagic(XEN_HVM_START_MAGIC_VALUE ^ 1)));
    }

    #[test]
    fn memmap() {
        let mut b = Vec::new();
        for (addr, size, type_) in [(0u64, 0xa0000u64, 1u32), (0xa0000, 0x60000, 2), (0x100000, 0x1f00000, 1)] {
            b.extend_from_slice(&HvmMemmapTableEntry { addr, size, type_, reserved: 0 }.to_bytes());
        }
        let entries: Vec<_> =
            b.chunks(HvmMemmapTableEntry::SIZE).map(|c| HvmMemmapTableEntry::read_from(c).unwrap()).collect();
        assert_eq!(entries[1], HvmMemmapTableEntry { addr: 0xa0000, size: 0x60000, type_: 2, reserved: 0 });
        assert_eq!(entry_end(&entries[1]), 0x100000);
        assert_eq!(ram_end(entries.iter().copied()), Some(0x200_0000));
        assert_eq!(ram_bytes(entries.iter().copied()), 0x200_0000 - 0x60000);
        assert_eq!(ram_end([]), None);
        assert!(HvmMemmapTableEntry::read_from(&b[..23]).is_err());
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"test=hello\0junk"), b"test=hello");
        assert_eq!(c_str(b"no nul"), b"no nul");
        assert_eq!(c_str(b"\0"), b"");
    }
}

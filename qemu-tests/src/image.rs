//! Static checks of a hypervisor image file: it must be an x86-64 ELF64 with
//! a PVH entry note (how QEMU `-kernel` boots it) and a multiboot2 header
//! (how GRUB boots it).

use std::fmt;

/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Multiboot2 header magic.
pub const MULTIBOOT2_HEADER_MAGIC: u32 = 0xe852_50d6;
/// A multiboot2 header must lie within this many bytes from the file start.
pub const MULTIBOOT2_SEARCH: usize = 32768;

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// ELF `e_entry`.
    pub elf_entry: u64,
    /// The PVH 32-bit entry address from the `Xen` note.
    pub pvh_entry: u64,
    /// File offset of the multiboot2 header.
    pub multiboot2_offset: usize,
}

/// Why an image is not bootable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError(pub String);

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImageError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ImageError> {
    Err(ImageError(msg.into()))
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Checks the whole image.
pub fn inspect(image: &[u8]) -> Result<ImageInfo, ImageError> {
    let elf_entry = check_elf64(image)?;
    let pvh_entry = pvh_entry(image)?;
    let multiboot2_offset = multiboot2_header(image)?;
    Ok(ImageInfo { elf_entry, pvh_entry, multiboot2_offset })
}

/// ELF64, little endian, executable (or PIE), x86-64; returns `e_entry`.
pub fn check_elf64(b: &[u8]) -> Result<u64, ImageError> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return err("not an ELF file");
    }
    if b[4] != 2 {
        return err(format!("not ELF64 (EI_CLASS={})", b[4]));
    }
    if b[5] != 1 {
        return err("not little endian");
    }
    let e_type = u16_at(b, 16).unwrap_or(0);
    if e_type != 2 && e_type != 3 {
        return err(format!("not an executable (e_type={e_type}, want ET_EXEC=2 or ET_DYN=3)"));
    }
    let machine = u16_at(b, 18).unwrap_or(0);
    if machine != 62 {
        return err(format!("not x86-64 (e_machine={machine})"));
    }
    Ok(u64_at(b, 24).unwrap_or(0))
}

/// The PVH entry from a `Xen` note of type 18 in a `PT_NOTE` segment (where
/// QEMU looks for it).
pub fn pvh_entry(b: &[u8]) -> Result<u64, ImageError> {
    let phoff = u64_at(b, 32).ok_or_else(|| ImageError("truncated ELF header".into()))? as usize;
    let phentsize = usize::from(u16_at(b, 54).unwrap_or(0));
    let phnum = usize::from(u16_at(b, 56).unwrap_or(0));
    if phentsize < 56 {
        return err(format!("bad e_phentsize {phentsize}"));
    }
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let Some(p_type) = u32_at(b, ph) else {
            return err("program headers beyond the end of the file");
        };
        if p_type != 4 {
            continue; // not PT_NOTE
        }
        let off = u64_at(b, ph + 8).unwrap_or(0) as usize;
        let size = u64_at(b, ph + 32).unwrap_or(0) as usize;
        let Some(notes) = b.get(off..off.saturating_add(size)) else {
            return err("PT_NOTE segment beyond the end of the file");
        };
        if let Some(entry) = find_xen_entry_note(notes) {
            return Ok(entry);
        }
    }
    err("no PVH entry note (name \"Xen\", type XEN_ELFNOTE_PHYS32_ENTRY=18) in any PT_NOTE segment")
}

fn find_xen_entry_note(mut notes: &[u8]) -> Option<u64> {
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let namesz = u32_at(notes, 0)? as usize;
        let descsz = u32_at(notes, 4)? as usize;
        let ntype = u32_at(notes, 8)?;
        let name = notes.get(12..12 + namesz)?;
        let desc_off = 12 + align4(namesz);
        let desc = notes.get(desc_off..desc_off + descsz)?;
        if name.strip_suffix(b"\0").unwrap_or(name) == b"Xen" && ntype == XEN_ELFNOTE_PHYS32_ENTRY {
            return match descsz {
                4 => u32_at(desc, 0).map(u64::from),
                8 => u64_at(desc, 0),
                _ => None,
            };
        }
        notes = notes.get(desc_off + align4(descsz)..)?;
    }
    None
}

/// File offset of a valid multiboot2 header (8-byte aligned, within the first
/// 32 KiB, architecture i386, checksum correct).
pub fn multiboot2_header(b: &[u8]) -> Result<usize, ImageError> {
    let limit = b.len().min(MULTIBOOT2_SEARCH);
    let mut off = 0;
    while off + 16 <= limit {
        if u32_at(b, off) == Some(MULTIBOOT2_HEADER_MAGIC) {
            let arch = u32_at(b, off + 4).unwrap_or(u32::MAX);
            let len = u32_at(b, off + 8).unwrap_or(0);
            let sum = u32_at(b, off + 12).unwrap_or(0);
            let total = MULTIBOOT2_HEADER_MAGIC.wrapping_add(arch).wrapping_add(len).wrapping_add(sum);
            if total == 0 && arch == 0 && len >= 16 {
                return Ok(off);
            }
        }
        off += 8;
    }
    err("no valid multiboot2 header (magic 0xe85250d6, arch 0, checksum) in the first 32 KiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_NOTE segment and a multiboot2 header.
    fn fake_image(entry_note: bool, mb2: bool, desc8: bool) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[6] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&62u16.to_le_bytes());
        b[24..32].copy_from_slice(&0x10_0000u64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&1u16.to_le_bytes());
        // Note contents at 0x200.
        let mut note = Vec::new();
        // An unrelated note first.
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&3u32.to_le_bytes());
        note.extend_from_slice(b"GNU\0");
        note.extend_from_slice(&[1, 2, 3, 4]);
        if entry_note {
            note.extend_from_slice(&4u32.to_le_bytes());
            note.extend_from_slice(&(if desc8 { 8u32 } else { 4 }).to_le_bytes());
            note.extend_from_slice(&XEN_ELFNOTE_PHYS32_ENTRY.to_le_bytes());
            note.extend_from_slice(b"Xen\0");
            if desc8 {
                note.extend_from_slice(&0x10_0040u64.to_le_bytes());
            } else {
                note.extend_from_slice(&0x10_0040u32.to_le_bytes());
            }
        }
        b[0x200..0x200 + note.len()].copy_from_slice(&note);
        // Program header: PT_NOTE, offset 0x200, filesz.
        b[64..68].copy_from_slice(&4u32.to_le_bytes());
        b[64 + 8..64 + 16].copy_from_slice(&0x200u64.to_le_bytes());
        b[64 + 32..64 + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        if mb2 {
            let off = 0x400;
            let len = 24u32;
            let arch = 0u32;
            let sum = 0u32.wrapping_sub(MULTIBOOT2_HEADER_MAGIC).wrapping_sub(arch).wrapping_sub(len);
            b[off..off + 4].copy_from_slice(&MULTIBOOT2_HEADER_MAGIC.to_le_bytes());
            b[off + 4..off + 8].copy_from_slice(&arch.to_le_bytes());
            b[off + 8..off + 12].copy_from_slice(&len.to_le_bytes());
            b[off + 12..off + 16].copy_from_slice(&sum.to_le_bytes());
        }
        b
    }

    #[test]
    fn good_image() {
        let info = inspect(&fake_image(true, true, false)).unwrap();
        assert_eq!(info.pvh_entry, 0x10_0040);
        assert_eq!(info.elf_entry, 0x10_0000);
        assert_eq!(info.multiboot2_offset, 0x400);
        assert_eq!(inspect(&fake_image(true, true, true)).unwrap().pvh_entry, 0x10_0040);
    }

    #[test]
    fn missing_parts() {
        assert!(pvh_entry(&fake_image(false, true, false)).is_err());
        assert!(multiboot2_header(&fake_image(true, false, false)).is_err());
        assert!(check_elf64(b"MZ not an elf at all, but long enough to have a header.......").is_err());
        let mut bad_sum = fake_image(true, true, false);
        bad_sum[0x40c] ^= 1;
        assert!(multiboot2_header(&bad_sum).is_err());
        let mut elf32 = fake_image(true, true, false);
        elf32[4] = 1;
        assert!(check_elf64(&elf32).is_err());
    }
}

//! Builds PVH and multiboot2 structures in a fake physical memory and parses them back.

use super::*;

/// Physical memory `[base, base + bytes.len())`; everything else is unreadable.
struct FakeMemory {
    base: u64,
    bytes: Vec<u8>,
}

impl FakeMemory {
    fn new(base: u64, size: usize) -> Self {
        FakeMemory { base, bytes: vec![0; size] }
    }

    fn put(&mut self, paddr: u64, data: &[u8]) {
        let at = (paddr - self.base) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }
}

impl PhysMemory for FakeMemory {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
        let bad = Unreadable { paddr, len: buf.len() };
        let at = paddr.checked_sub(self.base).ok_or(bad)? as usize;
        let src = self.bytes.get(at..at + buf.len()).ok_or(bad)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

const BASE: u64 = 0x10_0000;

fn pvh_image(version: u32, magic: u32) -> FakeMemory {
    let mut m = FakeMemory::new(BASE, 0x4000);
    let si = BASE;
    let modlist = BASE + 0x100;
    let memmap = BASE + 0x200;
    let cmdline = BASE + 0x400;
    let modcmd = BASE + 0x500;
    m.put(cmdline, b"loglvl=debug selftest=boot\0");
    m.put(modcmd, b"dom0 arg=1\0");
    let mut s = Vec::new();
    s.extend_from_slice(&magic.to_le_bytes());
    s.extend_from_slice(&version.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes()); // flags
    s.extend_from_slice(&2u32.to_le_bytes()); // nr_modules
    s.extend_from_slice(&modlist.to_le_bytes());
    s.extend_from_slice(&cmdline.to_le_bytes());
    s.extend_from_slice(&0xf5a40u64.to_le_bytes()); // rsdp
    s.extend_from_slice(&memmap.to_le_bytes());
    s.extend_from_slice(&3u32.to_le_bytes());
    s.extend_from_slice(&0u32.to_le_bytes());
    m.put(si, &s);
    let mut ml = Vec::new();
    for (paddr, size, cmd) in [(0x200_0000u64, 0x1234u64, modcmd), (0x300_0000, 0x10, 0)] {
        ml.extend_from_slice(&paddr.to_le_bytes());
        ml.extend_from_slice(&size.to_le_bytes());
        ml.extend_from_slice(&cmd.to_le_bytes());
        ml.extend_from_slice(&0u64.to_le_bytes());
    }
    m.put(modlist, &ml);
    let mut mm = Vec::new();
    for (addr, size, kind) in [(0u64, 0x9fc00u64, 1u32), (0xf0000, 0x10000, 2), (0x10_0000, 0x7ff0_0000, 1)] {
        mm.extend_from_slice(&addr.to_le_bytes());
        mm.extend_from_slice(&size.to_le_bytes());
        mm.extend_from_slice(&kind.to_le_bytes());
        mm.extend_from_slice(&0u32.to_le_bytes());
    }
    m.put(memmap, &mm);
    m
}

#[test]
fn pvh_start_info_is_taken_over() {
    let m = pvh_image(1, PVH_START_MAGIC);
    let mut info = BootInfo::new();
    info.parse_pvh(&m, BASE).unwrap();
    assert_eq!(info.protocol, Protocol::Pvh);
    assert_eq!(info.cmdline.as_str(), "loglvl=debug selftest=boot");
    assert_eq!(info.modules().len(), 2);
    assert_eq!(info.modules()[0].start, 0x200_0000);
    assert_eq!(info.modules()[0].len(), 0x1234);
    assert_eq!(info.modules()[0].cmdline.as_str(), "dom0 arg=1");
    assert_eq!(info.modules()[1].cmdline.as_str(), "");
    assert_eq!(info.memory_map().len(), 3);
    assert_eq!(info.memory_map()[2], MemoryRegion { start: 0x10_0000, len: 0x7ff0_0000, kind: MemoryKind::Usable });
    assert_eq!(info.memory_map()[1].kind, MemoryKind::Reserved);
    assert_eq!(info.rsdp, Some(RsdpLocation::Address(0xf5a40)));
}

#[test]
fn pvh_version_0_has_no_memory_map() {
    let m = pvh_image(0, PVH_START_MAGIC);
    let mut info = BootInfo::new();
    info.parse_pvh(&m, BASE).unwrap();
    assert!(info.memory_map().is_empty());
    assert_eq!(info.modules().len(), 2);
}

#[test]
fn pvh_bad_magic_is_refused() {
    let m = pvh_image(1, 0xdead_beef);
    let mut info = BootInfo::new();
    assert_eq!(info.parse_pvh(&m, BASE).unwrap_err(), BootInfoError::BadPvhMagic(0xdead_beef));
}

#[test]
fn pvh_pointer_outside_memory_is_an_error() {
    let mut m = pvh_image(1, PVH_START_MAGIC);
    m.put(BASE + 24, &0xffff_0000u64.to_le_bytes()); // cmdline_paddr
    let mut info = BootInfo::new();
    assert!(matches!(info.parse_pvh(&m, BASE), Err(BootInfoError::Unreadable(_))));
}

#[test]
fn pvh_unterminated_cmdline_is_too_long() {
    let mut m = FakeMemory::new(BASE, 0x4000);
    let mut s = vec![0u8; 56];
    s[0..4].copy_from_slice(&PVH_START_MAGIC.to_le_bytes());
    s[24..32].copy_from_slice(&(BASE + 0x100).to_le_bytes());
    m.put(BASE, &s);
    m.put(BASE + 0x100, &[b'a'; CMDLINE_CAPACITY + 10]);
    let mut info = BootInfo::new();
    assert_eq!(info.parse_pvh(&m, BASE).unwrap_err(), BootInfoError::CmdlineTooLong(CMDLINE_CAPACITY));
}

/// Appends one multiboot2 tag, padded to 8 bytes.
fn tag(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(8 + body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

fn mb2_image(tags: impl FnOnce(&mut Vec<u8>)) -> FakeMemory {
    let mut body = Vec::new();
    tags(&mut body);
    let mut mbi = Vec::new();
    mbi.extend_from_slice(&((8 + body.len()) as u32).to_le_bytes());
    mbi.extend_from_slice(&0u32.to_le_bytes());
    mbi.extend_from_slice(&body);
    let mut m = FakeMemory::new(BASE, 0x4000);
    m.put(BASE, &mbi);
    m
}

fn standard_mb2_tags(t: &mut Vec<u8>) {
    tag(t, 1, b"loglvl=info marker=xyz\0");
    tag(t, 2, b"GRUB 2.06\0");
    let mut module = Vec::new();
    module.extend_from_slice(&0x40_0000u32.to_le_bytes());
    module.extend_from_slice(&0x40_2000u32.to_le_bytes());
    module.extend_from_slice(b"guest.elf memory=64\0");
    tag(t, 3, &module);
    let mut mmap = Vec::new();
    mmap.extend_from_slice(&24u32.to_le_bytes());
    mmap.extend_from_slice(&0u32.to_le_bytes());
    for (addr, len, kind) in [(0u64, 0x9f000u64, 1u32), (0x10_0000, 0x3ff0_0000, 1), (0xfec0_0000, 0x1000, 2)] {
        mmap.extend_from_slice(&addr.to_le_bytes());
        mmap.extend_from_slice(&len.to_le_bytes());
        mmap.extend_from_slice(&kind.to_le_bytes());
        mmap.extend_from_slice(&0u32.to_le_bytes());
    }
    tag(t, 6, &mmap);
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.resize(20, 7);
    tag(t, 14, &rsdp);
    tag(t, 0, &[]);
}

#[test]
fn multiboot2_information_is_taken_over() {
    let m = mb2_image(standard_mb2_tags);
    let mut info = BootInfo::new();
    info.parse_multiboot2(&m, BASE).unwrap();
    assert_eq!(info.protocol, Protocol::Multiboot2);
    assert_eq!(info.cmdline.as_str(), "loglvl=info marker=xyz");
    assert_eq!(info.loader_name.as_str(), "GRUB 2.06");
    assert_eq!(info.modules().len(), 1);
    assert_eq!(info.modules()[0].start, 0x40_0000);
    assert_eq!(info.modules()[0].len(), 0x2000);
    assert_eq!(info.modules()[0].cmdline.as_str(), "guest.elf memory=64");
    assert_eq!(info.memory_map().len(), 3);
    assert_eq!(info.memory_map()[2].kind, MemoryKind::Reserved);
    match info.rsdp {
        Some(RsdpLocation::Copied { bytes, len }) => {
            assert_eq!(len, 20);
            assert_eq!(&bytes[..8], b"RSD PTR ");
        }
        other => panic!("unexpected rsdp {other:?}"),
    }
}

#[test]
fn multiboot2_prefers_the_acpi2_rsdp() {
    let m = mb2_image(|t| {
        let mut v2 = b"RSD PTR ".to_vec();
        v2.resize(36, 2);
        tag(t, 15, &v2);
        let mut v1 = b"RSD PTR ".to_vec();
        v1.resize(20, 1);
        tag(t, 14, &v1);
        tag(t, 0, &[]);
    });
    let mut info = BootInfo::new();
    info.parse_multiboot2(&m, BASE).unwrap();
    assert!(matches!(info.rsdp, Some(RsdpLocation::Copied { len: 36, .. })));
}

#[test]
fn multiboot2_without_end_tag_is_refused() {
    let m = mb2_image(|t| tag(t, 1, b"x\0"));
    let mut info = BootInfo::new();
    assert_eq!(info.parse_multiboot2(&m, BASE).unwrap_err(), BootInfoError::BadMultiboot2("no end tag"));
}

#[test]
fn multiboot2_tag_overrunning_the_structure_is_refused() {
    let mut m = mb2_image(standard_mb2_tags);
    m.put(BASE + 12, &0x1000u32.to_le_bytes()); // first tag's size
    let mut info = BootInfo::new();
    assert_eq!(info.parse_multiboot2(&m, BASE).unwrap_err(), BootInfoError::BadMultiboot2("tag size out of bounds"));
}

#[test]
fn multiboot2_module_ending_before_start_is_refused() {
    let m = mb2_image(|t| {
        let mut module = Vec::new();
        module.extend_from_slice(&0x50_0000u32.to_le_bytes());
        module.extend_from_slice(&0x40_0000u32.to_le_bytes());
        module.push(0);
        tag(t, 3, &module);
        tag(t, 0, &[]);
    });
    let mut info = BootInfo::new();
    assert_eq!(info.parse_multiboot2(&m, BASE).unwrap_err(), BootInfoError::BadModule { index: 0 });
}

#[test]
fn too_many_modules_are_refused() {
    let m = mb2_image(|t| {
        for _ in 0..=MAX_MODULES {
            let mut module = Vec::new();
            module.extend_from_slice(&0x40_0000u32.to_le_bytes());
            module.extend_from_slice(&0x40_1000u32.to_le_bytes());
            module.push(0);
            tag(t, 3, &module);
        }
        tag(t, 0, &[]);
    });
    let mut info = BootInfo::new();
    assert_eq!(info.parse_multiboot2(&m, BASE).unwrap_err(), BootInfoError::TooManyModules);
}

#[test]
fn non_utf8_cmdline_is_refused() {
    let m = mb2_image(|t| {
        tag(t, 1, &[0xff, 0xfe, 0]);
        tag(t, 0, &[]);
    });
    let mut info = BootInfo::new();
    assert_eq!(info.parse_multiboot2(&m, BASE).unwrap_err(), BootInfoError::CmdlineNotUtf8);
}

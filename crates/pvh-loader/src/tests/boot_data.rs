//! Placing modules and the start info after a kernel, and a domain's memory map.

use crate::start_info::offsets;
use crate::*;

fn u64_at(mem: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(mem[at..at + 8].try_into().unwrap())
}

fn u32_at(mem: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(mem[at..at + 4].try_into().unwrap())
}

#[test]
fn modules_follow_the_kernel_page_aligned_then_the_start_info() {
    let mut mem = vec![0u8; 1 << 20];
    let memmap = [MemmapEntry { addr: 0, size: 1 << 20, kind: E820_RAM }];
    let modules = [ModuleData { bytes: b"initrd!", cmdline: b"" }, ModuleData { bytes: &[7; 5000], cmdline: b"two" }];
    let data = BootData {
        kernel_end: 0x1_0123,
        ram_end: 1 << 20,
        cmdline: b"console=hvc0",
        modules: &modules,
        memmap: &memmap,
        rsdp_paddr: 0xdead_0000,
        flags: SIF_PRIVILEGED,
    };
    let at = place_boot_data(&mut mem[..], &data).unwrap();
    assert_eq!(&mem[0x1_1000..0x1_1007], b"initrd!");
    assert_eq!(&mem[0x1_2000..0x1_2000 + 5000], &[7; 5000][..]);
    // After the second module (two pages).
    assert_eq!(at, 0x1_4000);
    let si = at as usize;
    assert_eq!(u32_at(&mem, si), XEN_HVM_START_MAGIC_VALUE);
    assert_eq!(u32_at(&mem, si + offsets::NR_MODULES), 2);
    assert_eq!(u64_at(&mem, si + offsets::RSDP_PADDR), 0xdead_0000);
    assert_eq!(u32_at(&mem, si + offsets::FLAGS), SIF_PRIVILEGED);
    let modlist = u64_at(&mem, si + offsets::MODLIST_PADDR) as usize;
    assert_eq!(u64_at(&mem, modlist), 0x1_1000);
    assert_eq!(u64_at(&mem, modlist + 8), 7);
    assert_eq!(u64_at(&mem, modlist + SIZE_OF_MODLIST_ENTRY), 0x1_2000);
}

#[test]
fn what_does_not_fit_is_refused_before_anything_is_written() {
    let mut mem = vec![0u8; 1 << 20];
    let big = vec![1u8; 0x8_0000];
    let modules = [ModuleData { bytes: &big, cmdline: b"" }];
    let data = BootData {
        kernel_end: 0x8_0000,
        ram_end: 0x10_0000 - 0x1000,
        cmdline: b"",
        modules: &modules,
        memmap: &[],
        rsdp_paddr: 0,
        flags: 0,
    };
    let err = place_boot_data(&mut mem[..], &data).unwrap_err();
    assert!(matches!(err, LoadError::BootDataDoesNotFit { ram_end: 0xf_f000, .. }), "{err:?}");
    assert!(mem.iter().all(|&b| b == 0));
}

#[test]
fn too_many_modules_are_refused() {
    let mut mem = vec![0u8; 1 << 20];
    let modules = vec![ModuleData { bytes: b"x", cmdline: b"" }; MAX_BOOT_MODULES + 1];
    let data = BootData {
        kernel_end: 0,
        ram_end: 1 << 20,
        cmdline: b"",
        modules: &modules,
        memmap: &[],
        rsdp_paddr: 0,
        flags: 0,
    };
    assert_eq!(place_boot_data(&mut mem[..], &data), Err(LoadError::TooManyModules(MAX_BOOT_MODULES + 1)));
}

#[test]
fn domain_memory_maps() {
    let mut map = [MemmapEntry { addr: 0, size: 0, kind: 0 }; DOMAIN_MEMMAP_MAX_ENTRIES];
    // RAM from 0: the ISA hole, then the reserved special pages right after RAM.
    let n = domain_memmap(0, 64 << 20, 8, &mut map).unwrap();
    assert_eq!(n, 4);
    assert_eq!(map[1], MemmapEntry { addr: ISA_HOLE_START, size: ISA_HOLE_END - ISA_HOLE_START, kind: E820_RESERVED });
    assert_eq!(map[3], MemmapEntry { addr: 64 << 20, size: 8 * 4096, kind: E820_RESERVED });
    // Identity-mapped RAM elsewhere: one RAM entry.
    let n = domain_memmap(0x1a0_0000, 0x9e0_0000, 8, &mut map).unwrap();
    assert_eq!(n, 2);
    assert_eq!(map[0], MemmapEntry { addr: 0x1a0_0000, size: 0x9e0_0000 - 0x1a0_0000, kind: E820_RAM });
    assert_eq!(map[1], MemmapEntry { addr: 0x9e0_0000, size: 8 * 4096, kind: E820_RESERVED });
    assert!(domain_memmap(2, 1, 8, &mut map).is_err());
}

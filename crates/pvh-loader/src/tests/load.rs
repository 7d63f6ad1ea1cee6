//! `load`: contents of guest memory after loading, and load-time errors.

use super::builder::*;
use crate::{load, parse, ElfClass, GuestMemory, GuestMemoryError, LoadError, LoadedKernel};

const GUEST: usize = 4 << 20;

#[test]
fn loads_segments_at_physical_addresses_and_zero_fills() {
    for class in [ElfClass::Elf64, ElfClass::Elf32] {
        let built = standard(class).build();
        let k = parse(&built.bytes).unwrap();
        let mut mem = TestMemory::new(GUEST);
        let loaded = load(&k, &mut mem).unwrap();
        assert_eq!(loaded, LoadedKernel { entry: ENTRY, extent: (TEXT_PADDR, DATA_PADDR + DATA_MEMSZ) });

        let m = &mem.bytes;
        let text = TEXT_PADDR as usize;
        let data = DATA_PADDR as usize;
        let data_end = data + DATA_MEMSZ as usize;
        assert_eq!(&m[text..text + TEXT_SIZE], &pattern(TEXT_SIZE, 1)[..]);
        assert_eq!(&m[data..data + DATA_FILESZ], &pattern(DATA_FILESZ, 2)[..]);
        assert!(m[data + DATA_FILESZ..data_end].iter().all(|&b| b == 0), "bss is zeroed");
        // Nothing else is touched: below, in the hole between text and data, above.
        assert!(m[..text].iter().all(|&b| b == 0xaa));
        assert!(m[text + TEXT_SIZE..data].iter().all(|&b| b == 0xaa));
        assert!(m[data_end..].iter().all(|&b| b == 0xaa));
        // One write per segment, one fill for the bss.
        assert_eq!(mem.calls, 3);
    }
}

#[test]
fn loads_into_a_plain_byte_slice() {
    let built = standard(ElfClass::Elf64).build();
    let k = parse(&built.bytes).unwrap();
    let mut mem = vec![0xaau8; GUEST];
    load(&k, mem.as_mut_slice()).unwrap();
    assert_eq!(mem[TEXT_PADDR as usize], pattern(1, 1)[0]);
    assert_eq!(mem[(DATA_PADDR + DATA_MEMSZ) as usize - 1], 0);
}

#[test]
fn a_bss_only_segment_is_filled_without_a_write() {
    let b = standard(ElfClass::Elf64).seg(load_seg(0x20_0000, vec![], 0x2000));
    let built = b.build();
    let k = parse(&built.bytes).unwrap();
    let mut mem = TestMemory::new(GUEST);
    load(&k, &mut mem).unwrap();
    assert!(mem.bytes[0x20_0000..0x20_2000].iter().all(|&b| b == 0));
    assert_eq!(mem.calls, 4);
}

#[test]
fn segment_outside_guest_writes_nothing() {
    let built = standard(ElfClass::Elf64).build();
    let k = parse(&built.bytes).unwrap();
    // Data (the second segment) ends one byte past the guest; text fits but is not written.
    let guest_size = (DATA_PADDR + DATA_MEMSZ - 1) as usize;
    let mut mem = TestMemory::new(guest_size);
    assert_eq!(
        load(&k, &mut mem).unwrap_err(),
        LoadError::SegmentOutsideGuest {
            index: 2,
            paddr: DATA_PADDR,
            end: DATA_PADDR + DATA_MEMSZ,
            guest_size: guest_size as u64
        }
    );
    assert_eq!(mem.calls, 0);
    assert!(mem.bytes.iter().all(|&b| b == 0xaa));

    // Exactly fitting is fine.
    let mut mem = TestMemory::new(guest_size + 1);
    load(&k, &mut mem).unwrap();

    // A guest too small even for the first segment.
    let mut mem = TestMemory::new(0x1000);
    let e = load(&k, &mut mem).unwrap_err();
    assert!(matches!(e, LoadError::SegmentOutsideGuest { index: 1, paddr: TEXT_PADDR, guest_size: 0x1000, .. }));
}

#[test]
fn guest_memory_refusal_is_reported() {
    let built = standard(ElfClass::Elf32).build();
    let k = parse(&built.bytes).unwrap();
    // Refuse the first write, then (in a fresh memory) the bss fill.
    for (fail_call, gpa, len) in
        [(0, TEXT_PADDR, TEXT_SIZE as u64), (2, DATA_PADDR + DATA_FILESZ as u64, DATA_MEMSZ - DATA_FILESZ as u64)]
    {
        let mut mem = TestMemory::new(GUEST);
        mem.fail_call = Some(fail_call);
        assert_eq!(load(&k, &mut mem).unwrap_err(), LoadError::Guest(GuestMemoryError { gpa, len }));
    }
}

#[test]
fn slice_guest_memory_refuses_out_of_range_accesses() {
    let mut mem = vec![0u8; 16];
    let m = mem.as_mut_slice();
    assert_eq!(m.size(), 16);
    assert!(m.write(12, &[1, 2, 3, 4]).is_ok());
    assert_eq!(m.write(13, &[1, 2, 3, 4]), Err(GuestMemoryError { gpa: 13, len: 4 }));
    assert_eq!(m.write(u64::MAX, &[1]), Err(GuestMemoryError { gpa: u64::MAX, len: 1 }));
    assert!(GuestMemory::fill(m, 0, 16, 7).is_ok());
    assert_eq!(GuestMemory::fill(m, 1, 16, 7), Err(GuestMemoryError { gpa: 1, len: 16 }));
    assert_eq!(GuestMemory::fill(m, 8, u64::MAX, 7), Err(GuestMemoryError { gpa: 8, len: u64::MAX }));
    assert_eq!(mem, [7; 16]);
}

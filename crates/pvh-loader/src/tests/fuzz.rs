//! Robustness: thousands of mutated and truncated images (fixed-seed xorshift PRNG) must never
//! make `parse`, `load`, `load_at`, `placement` or `write_start_info` panic, overflow (tests build with overflow checks)
//! or break the documented guarantees of a `KernelImage`. A fuzz-style test as a plain unit test.

use std::collections::HashSet;
use std::mem::discriminant;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::builder::*;
use crate::*;

const GUEST: usize = 2 << 20;
const ITERATIONS_PER_BASE: usize = 20_000;

/// xorshift64* (Vigna): small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Valid images exercising every parser path: both classes, section notes, 8-aligned notes.
fn bases() -> Vec<Built> {
    let mut with_sections = standard(ElfClass::Elf64);
    with_sections.segs.remove(0);
    let with_sections = with_sections.sec(SHT_PROGBITS, vec![0x90; 24], 8).sec(SHT_NOTE, standard_notes(ENTRY), 4);
    let mut elf32_sections = standard(ElfClass::Elf32);
    elf32_sections.segs[0] = note_seg(note(b"Xen\0", 6, b"linux\0"));
    let elf32_sections = elf32_sections.sec(SHT_NOTE, entry_note(ENTRY), 4);
    let mut aligned8 = standard(ElfClass::Elf64);
    aligned8.segs[0] = note_seg(
        [note_aligned(b"GNU\0", 5, &[3; 12], 8), note_aligned(b"Xen\0", 18, &u64::from(ENTRY).to_le_bytes(), 8)]
            .concat(),
    );
    aligned8.segs[0].align = 8;
    vec![
        standard(ElfClass::Elf64).build(),
        standard(ElfClass::Elf32).build(),
        with_sections.build(),
        elf32_sections.build(),
        aligned8.build(),
        relocatable(ElfClass::Elf64, &[0x1000, 0, 0x1f_ffff]).build(),
        relocatable(ElfClass::Elf32, &[]).build(),
    ]
}

const INTERESTING: [u64; 14] =
    [0, 1, 2, 4, 8, 0x7f, 0xff, 0xffff, 0xfffe, 0x7fff_ffff, 0xffff_ffff, 0x1_0000_0000, u64::MAX, u64::MAX - 7];

/// Applies 1..=8 random mutations: byte writes (biased to the headers and notes), interesting
/// 2/4/8-byte values at aligned offsets, truncation, extension.
fn mutate(rng: &mut Rng, base: &Built) -> Vec<u8> {
    let mut img = base.bytes.clone();
    let hot_end = (base.phoff + 4 * base.phdr_size()).min(img.len());
    let notes = base.seg_offsets.first().copied().unwrap_or(0);
    for _ in 0..1 + rng.below(8) {
        if img.is_empty() {
            break;
        }
        let len = img.len();
        match rng.below(10) {
            0..=2 => {
                let at = rng.below(hot_end.min(len));
                img[at] = rng.next() as u8;
            }
            3 => {
                let at = (notes + rng.below(64)).min(len - 1);
                img[at] = rng.next() as u8;
            }
            4 => {
                let at = rng.below(len);
                img[at] ^= 1 << rng.below(8);
            }
            5..=7 => {
                let width = [2usize, 4, 8][rng.below(3)];
                let region = if rng.below(4) == 0 { len } else { hot_end.min(len) };
                let at = rng.below(region) & !(width - 1);
                let mut v = match rng.below(3) {
                    0 => INTERESTING[rng.below(INTERESTING.len())],
                    1 => (len as u64).saturating_sub(rng.below(16) as u64),
                    _ => rng.next(),
                };
                if rng.below(4) == 0 {
                    v = v.wrapping_add(rng.below(9) as u64).wrapping_sub(4);
                }
                let bytes = v.to_le_bytes();
                let end = (at + width).min(len);
                img[at..end].copy_from_slice(&bytes[..end - at]);
            }
            8 => img.truncate(rng.below(len + 1)),
            _ => {
                for _ in 0..rng.below(64) {
                    img.push(rng.next() as u8);
                }
            }
        }
    }
    img
}

/// The guarantees `parse` documents for a successful result.
fn check_image(k: &KernelImage<'_>, img: &[u8]) {
    let segs = k.segments();
    assert!(!segs.is_empty() && segs.len() <= MAX_LOAD_SEGMENTS);
    let img_range = img.as_ptr() as usize..img.as_ptr() as usize + img.len();
    for s in segs {
        assert!(s.memsz > 0 && s.data.len() as u64 <= s.memsz);
        let end = s.paddr.checked_add(s.memsz).expect("no overflow");
        if k.class() == ElfClass::Elf32 {
            assert!(end <= 1 << 32);
        }
        let p = s.data.as_ptr() as usize;
        assert!(s.data.is_empty() || (img_range.contains(&p) && p + s.data.len() <= img_range.end));
    }
    for (i, a) in segs.iter().enumerate() {
        for b in &segs[i + 1..] {
            assert!(a.end() <= b.paddr || b.end() <= a.paddr, "overlap");
        }
    }
    let entry = u64::from(k.entry());
    assert!(segs.iter().any(|s| entry >= s.paddr && entry < s.paddr + s.data.len() as u64));
    let (lo, hi) = k.extent();
    assert_eq!(lo, segs.iter().map(|s| s.paddr).min().unwrap());
    assert_eq!(hi, segs.iter().map(|s| s.end()).max().unwrap());
}

/// After a successful load at `base` every segment's bytes are in memory (displaced by
/// `base - extent.0`), followed by zeros.
fn check_loaded(k: &KernelImage<'_>, mem: &[u8], zeros: &[u8], base: u64) {
    for s in k.segments() {
        let p = (s.paddr - k.extent().0 + base) as usize;
        let file_end = p + s.data.len();
        assert_eq!(&mem[p..file_end], s.data);
        let bss_end = p + s.memsz as usize;
        assert_eq!(&mem[file_end..bss_end], &zeros[..bss_end - file_end]);
    }
}

#[test]
fn mutated_images_never_panic() {
    let mut mem = vec![0u8; GUEST];
    let zeros = vec![0u8; GUEST];
    let mut parsed_ok = 0usize;
    let mut loaded_ok = 0usize;
    let mut errors = HashSet::new();
    for (b, base) in bases().iter().enumerate() {
        // The base image itself is valid.
        let k = parse(&base.bytes).unwrap_or_else(|e| panic!("base {b}: {e}"));
        check_image(&k, &base.bytes);

        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (b as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
        for i in 0..ITERATIONS_PER_BASE {
            let img = mutate(&mut rng, base);
            let (window_start, random_base) = (rng.below(GUEST) as u64, rng.next() & !0xfff);
            let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), LoadError> {
                let k = parse(&img)?;
                check_image(&k, &img);
                // Any base: refused cleanly, or loaded.
                match load_at(&k, mem.as_mut_slice(), random_base) {
                    Ok(_) => check_loaded(&k, &mem, &zeros, random_base),
                    Err(LoadError::BadLoadBase { .. } | LoadError::SegmentOutsideGuest { .. }) => {}
                    Err(e) => panic!("load_at({random_base:#x}): {e}"),
                }
                // A base placement picks inside guest memory is accepted, and moves everything.
                if let Some(at) = placement(&k, window_start, GUEST as u64) {
                    let loaded = load_at(&k, mem.as_mut_slice(), at).expect("placement's base is accepted");
                    check_loaded(&k, &mem, &zeros, at);
                    let (start, end) = k.extent();
                    let entry = (u64::from(k.entry()) - start + at) as u32;
                    assert_eq!(loaded, LoadedKernel { entry, extent: (at, end - start + at) });
                    assert!(at >= window_start && (at == start || k.relocation().is_some()));
                }
                let loaded = load(&k, mem.as_mut_slice())?;
                check_loaded(&k, &mem, &zeros, k.extent().0);
                assert_eq!(loaded, LoadedKernel { entry: k.entry(), extent: k.extent() });
                Ok(())
            }));
            match outcome {
                Err(_) => panic!("base {b} iteration {i}: panicked on image {img:02x?}"),
                Ok(Ok(())) => {
                    parsed_ok += 1;
                    loaded_ok += 1;
                }
                Ok(Err(LoadError::SegmentOutsideGuest { .. })) => parsed_ok += 1,
                Ok(Err(e)) => {
                    assert!(!matches!(e, LoadError::Guest(_)), "load checks ranges before writing");
                    assert!(!e.to_string().is_empty());
                    errors.insert(discriminant(&e));
                }
            }
        }
    }
    println!(
        "{} mutated images: {parsed_ok} parsed, {loaded_ok} loaded, {} distinct parse errors",
        bases().len() * ITERATIONS_PER_BASE,
        errors.len()
    );
    // The mutations reach deep: many images still parse, and most error kinds are produced.
    assert!(parsed_ok > 100, "{parsed_ok}");
    assert!(errors.len() >= 15, "only {} distinct errors", errors.len());
}

#[test]
fn every_truncation_of_valid_images_is_rejected_cleanly() {
    for base in bases() {
        for len in 0..base.bytes.len() {
            // Every prefix either parses (truncating only unused trailing bytes) or errors.
            if let Ok(k) = parse(&base.bytes[..len]) {
                check_image(&k, &base.bytes[..len]);
            }
        }
    }
}

#[test]
fn random_start_info_never_panics() {
    let mut rng = Rng(0x5eed_0000_0000_0001);
    let mut mem = vec![0u8; 0x4000];
    let pick = |rng: &mut Rng| -> u64 {
        match rng.below(4) {
            0 => INTERESTING[rng.below(INTERESTING.len())],
            1 => rng.below(0x5000) as u64,
            2 => u64::MAX - rng.below(0x100) as u64,
            _ => rng.next(),
        }
    };
    let strings: [&[u8]; 4] = [b"", b"console=hvc0", b"a\0b", b"x"];
    for _ in 0..4000 {
        let modules: Vec<Module<'_>> = (0..rng.below(4))
            .map(|_| Module { paddr: pick(&mut rng), size: pick(&mut rng), cmdline: strings[rng.below(4)] })
            .collect();
        let memmap: Vec<MemmapEntry> = (0..rng.below(6))
            .map(|_| MemmapEntry { addr: pick(&mut rng), size: pick(&mut rng), kind: rng.next() as u32 })
            .collect();
        let info = StartInfo {
            cmdline: strings[rng.below(4)],
            modules: &modules,
            memmap: &memmap,
            rsdp_paddr: pick(&mut rng),
            flags: rng.next() as u32,
        };
        let (at, limit) = (pick(&mut rng), pick(&mut rng));
        if let Ok(si) = write_start_info(&info, mem.as_mut_slice(), at, limit) {
            let end = si + info.size().unwrap();
            assert!(si >= at && si % 8 == 0 && end <= limit && end <= mem.len() as u64);
            assert_eq!(get_u32(&mem, si as usize), XEN_HVM_START_MAGIC_VALUE);
        }
        let mut out = [MemmapEntry { addr: 0, size: 0, kind: 0 }; 3];
        let n = guest_memmap(pick(&mut rng), &mut out[..rng.below(4)]);
        assert!(n.map_or(true, |n| n <= 3));
    }
}

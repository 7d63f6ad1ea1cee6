use std::collections::{BTreeSet, HashSet};
use std::sync::Mutex;

use super::*;
use crate::test_util::XorShift;

const F: u64 = FRAME_SIZE;

fn frames(a: u64, b: u64) -> PhysRange {
    PhysRange::new(a * F, b * F)
}

fn storage(nframes: u64) -> Vec<u64> {
    // Pre-fill with garbage so a missing clear in `new` would show up.
    vec![u64::MAX; storage_words(nframes)]
}

fn check_counters(b: &FrameBitmap<'_>) {
    let s = b.stats();
    assert_eq!(s.managed, s.free + s.used);
    assert_eq!(s, b.recount());
}

#[test]
fn storage_words_layout() {
    assert_eq!(storage_words(0), 0);
    assert_eq!(storage_words(1), 2);
    assert_eq!(storage_words(64), 2);
    assert_eq!(storage_words(65), 4);
    assert_eq!(storage_words(1 << 20), 2 * (1 << 14));
    assert_eq!((MAX_FRAMES - 1) * F, u64::MAX - (F - 1));
}

#[test]
fn new_starts_unmanaged() {
    let mut st = storage(100);
    let mut b = FrameBitmap::new(&mut st, 100);
    assert_eq!(b.nframes(), 100);
    assert_eq!(b.stats(), FrameStats::default());
    check_counters(&b);
    assert_eq!(b.alloc(), None);
    assert_eq!(b.alloc_contiguous(1, 1), None);
    for f in 0..100 {
        assert!(!b.is_free(f * F));
        assert!(!b.is_managed(f * F));
    }
    assert_eq!(b.free(0), Err(FreeError::Unmanaged));
}

#[test]
fn oversized_storage_is_fine() {
    let mut st = vec![u64::MAX; 10];
    {
        let mut b = FrameBitmap::new(&mut st, 3);
        b.add_free(frames(0, 3));
        check_counters(&b);
    }
    // Words past storage_words(nframes) are not the allocator's.
    assert_eq!(st[2..], [u64::MAX; 8]);
}

#[test]
#[should_panic(expected = "storage has 3 u64 words but 200 frames need 8")]
fn new_panics_on_small_storage() {
    let mut st = vec![0; 3];
    let _ = FrameBitmap::new(&mut st, 200);
}

#[test]
#[should_panic(expected = "nframes exceeds MAX_FRAMES")]
fn new_panics_on_too_many_frames() {
    let _ = FrameBitmap::new(&mut [], MAX_FRAMES + 1);
}

#[test]
fn add_free_shrinks_inward_and_clips() {
    let mut st = storage(100);
    let mut b = FrameBitmap::new(&mut st, 100);
    // Ragged edges: frames 1..=9 only (frame 0 and frame 10 are partial).
    assert_eq!(b.add_free(PhysRange::new(F / 2, 10 * F + 7)), 9);
    assert!(!b.is_managed(0));
    assert!(b.is_managed(F) && b.is_free(F));
    assert!(b.is_free(9 * F + 123), "is_free looks at the containing frame");
    assert!(!b.is_managed(10 * F));
    // Past nframes is clipped.
    assert_eq!(b.add_free(frames(90, 1000)), 10);
    assert!(!b.is_managed(100 * F));
    assert!(!b.is_free(u64::MAX));
    // Sub-frame range adds nothing.
    assert_eq!(b.add_free(PhysRange::new(50 * F + 1, 51 * F - 1)), 0);
    assert_eq!(b.managed_frames(), 19);
    assert_eq!(b.free_frames(), 19);
    check_counters(&b);
}

#[test]
fn add_free_never_frees_used_frames() {
    let mut st = storage(64);
    let mut b = FrameBitmap::new(&mut st, 64);
    b.add_free(frames(0, 64));
    let a = b.alloc().unwrap();
    b.reserve(frames(10, 12));
    let before = b.stats();
    assert_eq!(b.add_free(frames(0, 64)), 0);
    assert_eq!(b.stats(), before);
    assert!(!b.is_free(a));
    assert!(!b.is_free(10 * F) && !b.is_free(11 * F));
    check_counters(&b);
}

#[test]
fn reserve_widens_outward_and_skips_unmanaged() {
    let mut st = storage(200);
    let mut b = FrameBitmap::new(&mut st, 200);
    b.add_free(frames(0, 100));
    // One byte in frame 5 and one byte in frame 6 reserve both frames.
    assert_eq!(b.reserve(PhysRange::new(5 * F + F - 1, 6 * F + 1)), 2);
    assert!(!b.is_free(5 * F) && !b.is_free(6 * F));
    assert!(b.is_managed(5 * F));
    assert!(b.is_free(4 * F) && b.is_free(7 * F));
    // Reserving again, an empty range, or unmanaged memory takes nothing.
    assert_eq!(b.reserve(frames(5, 7)), 0);
    assert_eq!(b.reserve(PhysRange::new(50 * F, 50 * F)), 0);
    assert_eq!(b.reserve(frames(100, 200)), 0);
    assert!(!b.is_managed(150 * F));
    // Ranges reaching the top of the address space do not overflow.
    assert_eq!(b.reserve(PhysRange::new(99 * F, u64::MAX)), 1);
    assert_eq!(b.stats(), FrameStats { managed: 100, free: 97, used: 3 });
    check_counters(&b);
}

/// Allocates until exhaustion over a map with holes and reservations.
#[test]
fn never_hands_out_a_frame_twice() {
    let n = 1000;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    // Frame 0 is not added (partial), 300..400 is a hole, 1000+ is clipped.
    b.add_free(PhysRange::new(F / 2, 300 * F));
    b.add_free(PhysRange::new(400 * F + 1, 1000 * F + 123));
    b.reserve(PhysRange::new(500 * F + 10, 502 * F + 1));
    b.reserve(frames(350, 360));
    let expected: HashSet<u64> = (1..300).chain(401..500).chain(503..1000).map(|f| f * F).collect();
    assert_eq!(b.free_frames(), expected.len() as u64);
    assert_eq!(b.used_frames(), 3);
    check_counters(&b);

    let mut got = HashSet::new();
    while let Some(a) = b.alloc() {
        assert_eq!(a % F, 0);
        assert!(got.insert(a), "frame {a:#x} handed out twice");
        assert!(expected.contains(&a), "frame {a:#x} was not added as free");
    }
    assert_eq!(got, expected);
    assert_eq!(b.free_frames(), 0);
    assert_eq!(b.used_frames(), b.managed_frames());
    assert_eq!(b.alloc_contiguous(1, 1), None);
    check_counters(&b);
}

#[test]
fn bad_frees_change_nothing() {
    let n = 130;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(1, 60));
    b.add_free(frames(70, 130));
    let a = b.alloc().unwrap();
    let run = b.alloc_contiguous(4, 1).unwrap();
    let before = b.stats();
    let free_before: Vec<bool> = (0..n).map(|f| b.is_free(f * F)).collect();

    assert_eq!(b.free(a + 1), Err(FreeError::NotAligned));
    assert_eq!(b.free(a + F / 2), Err(FreeError::NotAligned));
    assert_eq!(b.free(n * F), Err(FreeError::OutOfRange));
    assert_eq!(b.free(!(F - 1)), Err(FreeError::OutOfRange));
    assert_eq!(b.free(0), Err(FreeError::Unmanaged));
    assert_eq!(b.free(65 * F), Err(FreeError::Unmanaged));
    assert_eq!(b.free(100 * F), Err(FreeError::DoubleFree));
    // Whole-range checks: a bad frame anywhere in the run frees nothing.
    assert_eq!(b.free_contiguous(run, 5), Err(FreeError::DoubleFree));
    assert_eq!(b.free_contiguous(58 * F, 4), Err(FreeError::Unmanaged));
    assert_eq!(b.free_contiguous(run, u64::MAX), Err(FreeError::OutOfRange));
    assert_eq!(b.free_contiguous(128 * F, 3), Err(FreeError::OutOfRange));
    assert_eq!(b.free_contiguous(run + 1, 4), Err(FreeError::NotAligned));

    assert_eq!(b.stats(), before);
    let free_after: Vec<bool> = (0..n).map(|f| b.is_free(f * F)).collect();
    assert_eq!(free_before, free_after);
    check_counters(&b);

    // The legitimate frees still work afterwards, exactly once.
    b.free(a).unwrap();
    assert_eq!(b.free(a), Err(FreeError::DoubleFree));
    b.free_contiguous(run, 4).unwrap();
    assert_eq!(b.free_contiguous(run, 4), Err(FreeError::DoubleFree));
    b.free_contiguous(run, 0).unwrap();
    assert_eq!(b.stats(), FrameStats { managed: 119, free: 119, used: 0 });
    check_counters(&b);
}

#[test]
fn free_error_display() {
    assert_eq!(FreeError::DoubleFree.to_string(), "frame is already free");
    assert_eq!(FreeError::Unmanaged.to_string(), "frame is not managed by the allocator");
}

#[test]
fn contiguous_alignment_and_no_overlap() {
    let n = 4096;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(3, n));
    let mut owned: HashSet<u64> = HashSet::new();
    for _ in 0..37 {
        assert!(owned.insert(b.alloc().unwrap()));
    }
    for &(count, align) in &[(1, 1), (8, 8), (3, 16), (512, 512), (5, 0), (64, 64), (7, 3)] {
        let a = b.alloc_contiguous(count, align).unwrap();
        assert_eq!((a / F) % align.max(1), 0, "count {count} align {align}");
        for f in 0..count {
            assert!(owned.insert(a + f * F), "overlap at {:#x}", a + f * F);
            assert!(!b.is_free(a + f * F));
            assert!(b.is_managed(a + f * F));
        }
    }
    // Singles allocated afterwards do not land in any run either.
    for _ in 0..100 {
        assert!(owned.insert(b.alloc().unwrap()));
    }
    assert_eq!(b.used_frames(), owned.len() as u64);
    check_counters(&b);

    assert_eq!(b.alloc_contiguous(0, 1), None);
    assert_eq!(b.alloc_contiguous(n, 1), None);
    assert_eq!(b.alloc_contiguous(1, u64::MAX), None);
}

#[test]
fn contiguous_first_fit_and_fragmentation() {
    let n = 256;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(0, n));
    // Free only every other frame: plenty free, no run of two.
    let all = b.alloc_contiguous(n, 1).unwrap();
    assert_eq!(all, 0);
    for f in (0..n).step_by(2) {
        b.free(f * F).unwrap();
    }
    assert_eq!(b.free_frames(), n / 2);
    assert_eq!(b.alloc_contiguous(2, 1), None);
    // Open a run of exactly 3 at frames 100..103 (100 and 102 are free).
    b.free(101 * F).unwrap();
    assert_eq!(b.alloc_contiguous(3, 4), Some(100 * F));
    assert_eq!(b.alloc_contiguous(2, 1), None);
    // Free a run spanning a word boundary and get it back exactly.
    for f in (60..70).filter(|f| f % 2 == 1) {
        b.free(f * F).unwrap();
    }
    assert_eq!(b.alloc_contiguous(10, 1), Some(60 * F));
    b.free_contiguous(60 * F, 10).unwrap();
    assert_eq!(b.alloc_contiguous(10, 4), Some(60 * F));
    assert_eq!(b.alloc_contiguous(1, 1), Some(0));
    check_counters(&b);
}

#[test]
fn free_then_realloc() {
    let n = 300;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(0, n));
    let all: Vec<u64> = std::iter::from_fn(|| b.alloc()).collect();
    assert_eq!(all.len() as u64, n);
    // The next-fit hint sits near the top; a low frame must still be found.
    b.free(5 * F).unwrap();
    assert!(b.is_free(5 * F));
    assert_eq!(b.alloc(), Some(5 * F));
    assert_eq!(b.alloc(), None);
    b.free(299 * F).unwrap();
    b.free(64 * F).unwrap();
    let mut again = vec![b.alloc().unwrap(), b.alloc().unwrap()];
    again.sort_unstable();
    assert_eq!(again, [64 * F, 299 * F]);
    assert_eq!(b.alloc(), None);
    check_counters(&b);
}

#[test]
fn large_bitmap_is_fast_enough() {
    // 4 GiB of frames, mostly used: exercises whole-word skipping.
    let n = 1 << 20;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(0, n));
    assert_eq!(b.alloc_contiguous(n - 100, 1), Some(0));
    let mut got = BTreeSet::new();
    while let Some(a) = b.alloc() {
        assert!(got.insert(a));
    }
    assert_eq!(got.len(), 100);
    assert_eq!(*got.first().unwrap(), (n - 100) * F);
    b.free_contiguous(0, n - 100).unwrap();
    for _ in 0..(n - 100) {
        b.alloc().unwrap();
    }
    assert_eq!(b.free_frames(), 0);
    check_counters(&b);
}

/// Random operations compared against a simple set-based model.
#[test]
fn randomized_against_model() {
    let n: u64 = 700; // not a multiple of 64
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    let managed: HashSet<u64> = (2..200).chain(230..450).chain(452..n).collect();
    b.add_free(frames(2, 200));
    b.add_free(frames(230, 450));
    b.add_free(frames(452, n));
    let mut used: HashSet<u64> = HashSet::new();
    // Runs we allocated contiguously and can free as a unit: (first, count).
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut rng = XorShift::new(0xdead_beef_cafe);

    for op in 0..10_000 {
        // Alternate alloc-heavy and free-heavy phases so the run visits both
        // an exhausted allocator and a mostly empty one.
        let alloc_pct = if (op / 1000) % 2 == 0 { 65 } else { 20 };
        match rng.below(100) {
            r if r < alloc_pct => match b.alloc() {
                Some(a) => {
                    let f = a / F;
                    assert!(managed.contains(&f) && used.insert(f), "op {op}: bad alloc {f}");
                }
                None => assert_eq!(used.len(), managed.len(), "op {op}: spurious None"),
            },
            r if r < 80 => {
                // Free a random single frame we own (runs are freed whole).
                let singles: Vec<u64> =
                    used.iter().copied().filter(|f| !runs.iter().any(|&(s, c)| (s..s + c).contains(f))).collect();
                if let Some(&f) = singles.get(rng.below(singles.len().max(1) as u64) as usize) {
                    b.free(f * F).unwrap();
                    used.remove(&f);
                }
            }
            80..=87 => {
                let count = rng.below(8) + 1;
                let align = [1, 2, 4, 8][rng.below(4) as usize];
                if let Some(a) = b.alloc_contiguous(count, align) {
                    let s = a / F;
                    assert_eq!(s % align, 0);
                    for f in s..s + count {
                        assert!(managed.contains(&f) && used.insert(f), "op {op}: bad run");
                    }
                    runs.push((s, count));
                } else {
                    // The model must agree that no aligned free run exists.
                    let exists = (0..n)
                        .step_by(align as usize)
                        .any(|s| s + count <= n && (s..s + count).all(|f| managed.contains(&f) && !used.contains(&f)));
                    assert!(!exists, "op {op}: missed a run of {count} align {align}");
                }
            }
            88..=93 => {
                if !runs.is_empty() {
                    let (s, c) = runs.swap_remove(rng.below(runs.len() as u64) as usize);
                    b.free_contiguous(s * F, c).unwrap();
                    for f in s..s + c {
                        used.remove(&f);
                    }
                }
            }
            _ => {
                // A random, probably bad, free: must match the model's verdict.
                let addr = if rng.below(5) == 0 { rng.below((n + 10) * F) } else { rng.below(n + 10) * F };
                let count = rng.below(4);
                let f = addr / F;
                let expect = if addr % F != 0 {
                    Err(FreeError::NotAligned)
                } else if f + count > n {
                    Err(FreeError::OutOfRange)
                } else {
                    // The bitmap validates word by word from the bottom and
                    // reports Unmanaged before DoubleFree within a word.
                    let mut verdict = Ok(());
                    for word in f / 64..(f + count).div_ceil(64) {
                        let in_word = (f..f + count).filter(|g| g / 64 == word);
                        let (mut unmanaged, mut free) = (false, false);
                        for g in in_word {
                            unmanaged |= !managed.contains(&g);
                            free |= managed.contains(&g) && !used.contains(&g);
                        }
                        if unmanaged {
                            verdict = Err(FreeError::Unmanaged);
                            break;
                        }
                        if free {
                            verdict = Err(FreeError::DoubleFree);
                            break;
                        }
                    }
                    verdict
                };
                let before = b.stats();
                let got = b.free_contiguous(addr, count);
                assert_eq!(got, expect, "op {op}: free_contiguous({addr:#x}, {count})");
                if got.is_ok() {
                    for g in f..f + count {
                        used.remove(&g);
                    }
                    // Those frames may have belonged to runs; forget any run
                    // no longer wholly owned so it is not freed twice.
                    runs.retain(|&(s, c)| (s..s + c).all(|g| used.contains(&g)));
                } else {
                    assert_eq!(b.stats(), before, "op {op}: failed free changed counters");
                }
            }
        }
        let s = b.stats();
        assert_eq!(s.used, used.len() as u64, "op {op}");
        assert_eq!(s.managed, managed.len() as u64);
        if op % 500 == 0 {
            assert_eq!(s, b.recount());
            for f in 0..n {
                assert_eq!(b.is_free(f * F), managed.contains(&f) && !used.contains(&f));
            }
        }
    }
    check_counters(&b);
}

/// Four threads share the allocator behind a mutex; a shared set of owned
/// frames proves no frame is ever held by two owners at once.
#[test]
fn multithreaded_no_double_handout() {
    let n = 2048;
    let mut st = storage(n);
    let mut b = FrameBitmap::new(&mut st, n);
    b.add_free(frames(1, 1000));
    b.add_free(frames(1100, n));
    let initial = b.stats();
    let alloc = Mutex::new(b);
    let owned: Mutex<HashSet<u64>> = Mutex::new(HashSet::new());

    std::thread::scope(|s| {
        for t in 0..4u64 {
            let alloc = &alloc;
            let owned = &owned;
            s.spawn(move || {
                let mut rng = XorShift::new(0x1234_5678 + t);
                let mut mine: Vec<(u64, u64)> = Vec::new();
                for _ in 0..5000 {
                    if mine.is_empty() || rng.below(100) < 55 {
                        let count = if rng.below(10) == 0 { rng.below(6) + 1 } else { 1 };
                        let got = if count == 1 {
                            alloc.lock().unwrap().alloc()
                        } else {
                            alloc.lock().unwrap().alloc_contiguous(count, 1)
                        };
                        if let Some(a) = got {
                            let mut set = owned.lock().unwrap();
                            for f in 0..count {
                                assert!(set.insert(a + f * F), "frame {:#x} handed out twice", a + f * F);
                            }
                            mine.push((a, count));
                        }
                    } else {
                        let (a, count) = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                        // Give up ownership before freeing: once freed another
                        // thread may legitimately receive the frame.
                        {
                            let mut set = owned.lock().unwrap();
                            for f in 0..count {
                                assert!(set.remove(&(a + f * F)));
                            }
                        }
                        alloc.lock().unwrap().free_contiguous(a, count).unwrap();
                    }
                }
                for (a, count) in mine {
                    {
                        let mut set = owned.lock().unwrap();
                        for f in 0..count {
                            assert!(set.remove(&(a + f * F)));
                        }
                    }
                    alloc.lock().unwrap().free_contiguous(a, count).unwrap();
                }
            });
        }
    });

    let b = alloc.into_inner().unwrap();
    assert!(owned.into_inner().unwrap().is_empty());
    assert_eq!(b.stats(), initial);
    check_counters(&b);
}

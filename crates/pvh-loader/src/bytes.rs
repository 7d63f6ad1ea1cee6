//! Bounds-checked little-endian access to untrusted byte slices. Every function returns `None`
//! rather than panicking when the requested bytes are not all inside the slice.

/// `N` bytes of `b` at `off`.
fn array_at<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    b.get(off..end)?.try_into().ok()
}

pub(crate) fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    array_at(b, off).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    array_at(b, off).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    array_at(b, off).map(u64::from_le_bytes)
}

/// `b[off .. off + len]` for file offsets and sizes taken from the image (any width).
pub(crate) fn range(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    b.get(start..end)
}

/// `x` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
pub(crate) fn align_up_usize(x: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    let mask = align.checked_sub(1)?;
    Some(x.checked_add(mask)? & !mask)
}

/// `x` rounded up to a multiple of `align` (a power of two), or `None` on overflow.
pub(crate) fn align_up_u64(x: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    let mask = align.checked_sub(1)?;
    Some(x.checked_add(mask)? & !mask)
}

/// Copies `src` into `dst` at `off`; the caller's offsets are compile-time constants checked by
/// `const` assertions, so nothing is ever cut off (but nothing could panic if it were).
pub(crate) fn put(dst: &mut [u8], off: usize, src: &[u8]) {
    for (d, s) in dst.iter_mut().skip(off).zip(src) {
        *d = *s;
    }
}

//! Byte scans for the per-row checks, eight bytes at a time: HR values are short and
//! almost never hold what these look for, so the common answer ("no") must be cheap.

/// What a value must not hold to be written into JSON as it is and to pass as a person's
/// name: controls (below 0x20, and 0x7f and the lead byte 0xc2 of the C1 controls), a
/// quote, a backslash. A record without any of these needs no look at its values.
pub const PLAIN: [u8; 4] = [b'"', b'\\', 0x7f, 0xc2];

/// Whether `b` holds a byte below 0x20 or equal to one of `eq`. Exact: the word tests
/// ("has a zero byte", "has a byte below n" for n <= 128) have no false positives on
/// the question of whether any byte matches.
#[inline]
pub fn has_control_or<const N: usize>(b: &[u8], eq: [u8; N]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let hit = |x: u64| {
        let zero = |y: u64| y.wrapping_sub(ONES) & !y;
        eq.iter().fold(x.wrapping_sub(ONES * 0x20) & !x, |acc, &e| {
            acc | zero(x ^ (ONES * e as u64))
        }) & HIGH
            != 0
    };
    let load = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    let n = b.len();
    if n >= 8 {
        let mut i = 0;
        while i + 8 <= n {
            if hit(load(i)) {
                return true;
            }
            i += 8;
        }
        // The tail as the last eight bytes, overlapping what was checked.
        return i < n && hit(load(n - 8));
    }
    if n >= 4 {
        // Two overlapping halves, padded with a letter.
        let half = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or_default());
        let pad = 0x4141_4141_u64 << 32;
        return hit(half(0) as u64 | pad) || hit(half(n - 4) as u64 | pad);
    }
    b.iter().any(|&c| c < 0x20 || eq.contains(&c))
}

/// The first `c` in `b` at or after `from`, eight bytes at a time: for the short spans
/// between two quotes this beats a memchr call, whose set-up costs more than the scan.
#[inline]
pub fn find_byte(b: &[u8], from: usize, c: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut i = from;
    while i + 8 <= b.len() {
        let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default()) ^ (ONES * c as u64);
        // High bit of each byte that is zero, exactly (no borrow between bytes).
        let zero = !(((v & LOW7) + LOW7) | v | LOW7);
        if zero != 0 {
            return Some(i + zero.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    b[i.min(b.len())..]
        .iter()
        .position(|&x| x == c)
        .map(|p| i + p)
}

/// `a == b` for short keys without a memcmp call: overlapping word loads.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or_default());
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or_default());
    match n {
        0..4 => a == b,
        4..8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        8..=16 => w8(a, 0) == w8(b, 0) && w8(a, n - 8) == w8(b, n - 8),
        _ => a == b,
    }
}

/// (has a byte >= 0x80, has an ASCII letter of the case that starts at `first`: b'A'
/// for capitals, b'a' for small letters), in one pass.
#[inline]
pub fn wide_or_letter(b: &[u8], first: u8) -> (bool, bool) {
    let (mut wide, mut letter) = (false, false);
    for &c in b {
        wide |= c >= 0x80;
        letter |= c.wrapping_sub(first) < 26;
    }
    (wide, letter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_scan_matches_the_byte_by_byte_answer() {
        let eq = [b'"', 0x7f, 0xc2];
        // Every length and position the word-at-a-time check splits differently.
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(!has_control_or(&plain, eq));
            for pos in 0..len {
                for c in [
                    0u8, 1, 0x1f, 0x20, b'"', b'\\', 0x7e, 0x7f, 0x80, 0xc2, 0xc3, 0xff,
                ] {
                    let mut v = plain.clone();
                    v[pos] = c;
                    let want = c < 0x20 || eq.contains(&c);
                    assert_eq!(has_control_or(&v, eq), want, "{c:#x} at {pos} of {len}");
                }
            }
        }
        for len in 0..40 {
            for pos in 0..len {
                let mut v = vec![b'a'; len];
                v[pos] = b'"';
                if pos + 3 < len {
                    v[pos + 3] = b'"';
                }
                for from in 0..=len {
                    let want = v[from.min(len)..]
                        .iter()
                        .position(|&x| x == b'"')
                        .map(|p| from + p);
                    assert_eq!(find_byte(&v, from, b'"'), want, "{pos} {from} {len}");
                }
            }
        }
        assert_eq!(find_byte(b"\x22\xa2\"", 1, b'"'), Some(2));
        for len in 0..24usize {
            let a: Vec<u8> = (0..len as u8).map(|i| b'a' + i).collect();
            assert!(same(&a, &a.clone()));
            assert!(!same(&a, &a[..len.saturating_sub(1)]) || len == 0);
            for pos in 0..len {
                let mut b = a.clone();
                b[pos] = b'#';
                assert!(!same(&a, &b), "{pos} of {len}");
            }
        }
        assert_eq!(wide_or_letter("abc".as_bytes(), b'A'), (false, false));
        assert_eq!(wide_or_letter("aBc".as_bytes(), b'A'), (false, true));
        assert_eq!(wide_or_letter("é@Z".as_bytes(), b'A'), (true, true));
        assert_eq!(wide_or_letter("ABC[".as_bytes(), b'a'), (false, false));
        assert_eq!(wide_or_letter("AbC".as_bytes(), b'a'), (false, true));
    }
}

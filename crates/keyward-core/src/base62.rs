//! Base62 (`0-9A-Za-z`) helpers for the token format.

pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `c` is a base62 digit.
pub(crate) fn is_digit(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// Encodes `value` as exactly `width` base62 digits, most significant first, zero-padded.
/// `width` must be large enough for `value` (6 digits hold any `u32`).
pub(crate) fn encode_fixed(mut value: u64, width: usize, out: &mut String) {
    let mut digits = [b'0'; 11];
    for slot in digits.iter_mut().take(width).rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    for &d in digits.iter().take(width) {
        out.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_zero_padded() {
        let mut s = String::new();
        encode_fixed(0, 6, &mut s);
        assert_eq!(s, "000000");
        let mut s = String::new();
        encode_fixed(u64::from(u32::MAX), 6, &mut s);
        assert_eq!(s, "4gfFC3");
        let mut s = String::new();
        encode_fixed(61, 2, &mut s);
        assert_eq!(s, "0z");
    }
}

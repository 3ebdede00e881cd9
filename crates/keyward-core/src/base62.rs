//! Base62 (`0-9A-Za-z`) helpers for the token format.

pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `c` is a base62 digit.
pub(crate) fn is_digit(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// Encodes `value` as exactly `N` base62 digits, most significant first, zero-padded.
/// `N` must be large enough for `value` (6 digits hold any `u32`).
pub(crate) fn encode_fixed<const N: usize>(mut value: u64) -> [u8; N] {
    let mut digits = [b'0'; N];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_zero_padded() {
        assert_eq!(&encode_fixed::<6>(0), b"000000");
        assert_eq!(&encode_fixed::<6>(u64::from(u32::MAX)), b"4gfFC3");
        assert_eq!(&encode_fixed::<2>(61), b"0z");
    }
}

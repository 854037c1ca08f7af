//! Support codes: `XXX-XXX-XXX` from 31 unambiguous characters (no 0 O 1 I L).
//!
//! Nine characters of a 31-letter alphabet give 9·log2(31) ≈ 44.6 bits. Each
//! character is drawn from one CSPRNG byte with rejection sampling (bytes ≥ 248 are
//! redrawn), so every character is exactly uniform.

use rand::TryRngCore;
use std::fmt;

/// The 31 characters a code is made of.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters in a code, without dashes.
pub const CODE_LEN: usize = 9;

/// Largest multiple of 31 that fits in a byte; bytes at or above it are rejected.
const REJECT_FROM: u8 = 248;

/// A well-formed support code in canonical form (`ABC-DEF-GHJ`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SupportCode([u8; CODE_LEN]);

/// Why a string is not a support code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SupportCodeError {
    /// Wrong length or a character outside the alphabet.
    #[error("a support code is nine letters and digits like ABC-DEF-GHJ; check it and try again")]
    Malformed,
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

impl SupportCode {
    /// Generates a code from `rng`, which must be a CSPRNG (the server passes `OsRng`).
    ///
    /// # Errors
    /// [`SupportCodeError::Random`] when the generator fails.
    pub fn generate<R: TryRngCore>(rng: &mut R) -> Result<Self, SupportCodeError> {
        let mut out = [0u8; CODE_LEN];
        let mut filled = 0;
        let mut buf = [0u8; 16];
        while filled < CODE_LEN {
            rng.try_fill_bytes(&mut buf)
                .map_err(|_| SupportCodeError::Random)?;
            for b in buf {
                if b < REJECT_FROM && filled < CODE_LEN {
                    out[filled] = ALPHABET[usize::from(b % 31)];
                    filled += 1;
                }
            }
        }
        Ok(Self(out))
    }

    /// Reads what a person typed: case-insensitive, dashes and spaces ignored.
    /// Ambiguous look-alikes are not guessed at: `0 O 1 I L` are refused.
    ///
    /// # Errors
    /// [`SupportCodeError::Malformed`] unless exactly nine alphabet characters remain.
    pub fn parse(input: &str) -> Result<Self, SupportCodeError> {
        if input.len() > 64 {
            return Err(SupportCodeError::Malformed);
        }
        let mut out = [0u8; CODE_LEN];
        let mut n = 0;
        for c in input.bytes() {
            if c == b'-' || c == b' ' {
                continue;
            }
            let c = c.to_ascii_uppercase();
            if !ALPHABET.contains(&c) || n == CODE_LEN {
                return Err(SupportCodeError::Malformed);
            }
            out[n] = c;
            n += 1;
        }
        if n != CODE_LEN {
            return Err(SupportCodeError::Malformed);
        }
        Ok(Self(out))
    }

    /// Canonical form `XXX-XXX-XXX`.
    pub fn as_string(&self) -> String {
        let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&self.0[r]).into_owned();
        format!("{}-{}-{}", s(0..3), s(3..6), s(6..9))
    }
}

impl fmt::Display for SupportCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// Codes are short-lived secrets: debug output shows only the first group.
impl fmt::Debug for SupportCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SupportCode({}-***-***)",
            String::from_utf8_lossy(&self.0[..3])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_alphabet_has_31_unambiguous_characters() {
        assert_eq!(ALPHABET.len(), 31);
        for bad in b"01OIL" {
            assert!(!ALPHABET.contains(bad));
        }
    }

    #[test]
    fn generated_codes_are_canonical_and_parse_back() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let code = SupportCode::generate(&mut rng).unwrap();
            let s = code.as_string();
            assert_eq!(s.len(), 11);
            assert_eq!(&s[3..4], "-");
            assert_eq!(SupportCode::parse(&s), Ok(code));
        }
    }

    #[test]
    fn every_character_is_used_roughly_uniformly() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0u32; 31];
        for _ in 0..10_000 {
            let code = SupportCode::generate(&mut rng).unwrap();
            for c in code.0 {
                let i = ALPHABET.iter().position(|a| *a == c).unwrap();
                counts[i] += 1;
            }
        }
        // 90,000 draws, 2,903 expected per character; allow ±10 %.
        for c in counts {
            assert!((2613..3194).contains(&c), "count {c}");
        }
    }

    #[test]
    fn typed_input_is_normalised() {
        let want = SupportCode::parse("ABC-DEF-GHJ").unwrap();
        assert_eq!(SupportCode::parse("abcdefghj"), Ok(want.clone()));
        assert_eq!(SupportCode::parse(" abc def ghj "), Ok(want));
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            "",
            "ABC-DEF-GH",
            "ABC-DEF-GHJK",
            "AB0-DEF-GHJ",
            "ABI-DEF-GHJ",
            "ÄBC-DEF-GHJ",
        ] {
            assert_eq!(
                SupportCode::parse(bad),
                Err(SupportCodeError::Malformed),
                "{bad}"
            );
        }
        assert!(SupportCode::parse(&"A".repeat(10_000)).is_err());
    }

    #[test]
    fn debug_output_hides_most_of_the_code() {
        let code = SupportCode::parse("ABC-DEF-GHJ").unwrap();
        assert_eq!(format!("{code:?}"), "SupportCode(ABC-***-***)");
    }
}

//! Agent keys: `cak_` followed by 256 random bits as 64 lowercase hex digits.
//!
//! The key is shown once when issued; the server stores only its SHA-256
//! ([`AgentKeyHash`]) and compares hashes in constant time.

use rand::TryRngCore;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// Prefix of every agent key.
pub const PREFIX: &str = "cak_";

const RANDOM_BYTES: usize = 32;
const KEY_LEN: usize = PREFIX.len() + 2 * RANDOM_BYTES;

/// A full agent key. Its `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentKey(String);

/// SHA-256 of an agent key, the only form the server stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentKeyHash([u8; 32]);

/// Why a string is not an agent key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentKeyError {
    /// Not `cak_` + 64 hex digits.
    #[error(
        "an agent key looks like cak_ followed by 64 hex digits; copy it again from the console"
    )]
    Malformed,
    /// The operating system's random generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}

impl AgentKey {
    /// Generates a key from `rng`, which must be a CSPRNG (the server passes `OsRng`).
    ///
    /// # Errors
    /// [`AgentKeyError::Random`] when the generator fails.
    pub fn generate<R: TryRngCore>(rng: &mut R) -> Result<Self, AgentKeyError> {
        let mut bytes = [0u8; RANDOM_BYTES];
        rng.try_fill_bytes(&mut bytes)
            .map_err(|_| AgentKeyError::Random)?;
        Ok(Self(format!("{PREFIX}{}", hex::encode(bytes))))
    }

    /// Checks the shape of a presented key (not whether it is valid on a server).
    ///
    /// # Errors
    /// [`AgentKeyError::Malformed`] unless `cak_` + 64 lowercase hex digits.
    pub fn parse(input: &str) -> Result<Self, AgentKeyError> {
        let well_formed = input.len() == KEY_LEN
            && input.starts_with(PREFIX)
            && input[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(AgentKeyError::Malformed);
        }
        Ok(Self(input.to_owned()))
    }

    /// The secret itself, to show once or to send in `AgentAuth`.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form.
    pub fn hash(&self) -> AgentKeyHash {
        AgentKeyHash(Sha256::digest(self.0.as_bytes()).into())
    }

    /// A short non-secret label for listings (`cak_1a2b…`): 16 of 256 bits.
    pub fn display_prefix(&self) -> String {
        format!("{}…", &self.0[..PREFIX.len() + 4])
    }
}

impl fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentKey(cak_***)")
    }
}

impl AgentKeyHash {
    /// Lowercase hex, as stored in the database.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the stored hex form.
    ///
    /// # Errors
    /// [`AgentKeyError::Malformed`] unless 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, AgentKeyError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| AgentKeyError::Malformed)?;
        Ok(Self(out))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for AgentKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentKeyHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn a_generated_key_has_the_documented_shape_and_parses() {
        let mut rng = StdRng::seed_from_u64(3);
        let key = AgentKey::generate(&mut rng).unwrap();
        assert_eq!(key.expose().len(), 68);
        assert!(key.expose().starts_with("cak_"));
        assert_eq!(AgentKey::parse(key.expose()), Ok(key));
    }

    #[test]
    fn two_keys_differ() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = AgentKey::generate(&mut rng).unwrap();
        let b = AgentKey::generate(&mut rng).unwrap();
        assert_ne!(a, b);
        assert!(!a.hash().ct_eq(&b.hash()));
    }

    #[test]
    fn the_hash_round_trips_through_hex_and_compares_equal() {
        let key = AgentKey::parse(&format!("cak_{}", "ab".repeat(32))).unwrap();
        let stored = AgentKeyHash::from_hex(&key.hash().to_hex()).unwrap();
        assert!(stored.ct_eq(&key.hash()));
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "",
            "cak_",
            &format!("cak_{}", "AB".repeat(32)),
            &format!("cak_{}", "ab".repeat(33)),
            &format!("cek_{}", "ab".repeat(32)),
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        ] {
            assert_eq!(AgentKey::parse(bad), Err(AgentKeyError::Malformed), "{bad}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = AgentKey::parse(&format!("cak_{}", "ab".repeat(32))).unwrap();
        assert!(!format!("{key:?}").contains("abab"));
    }
}

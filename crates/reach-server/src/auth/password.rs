//! Argon2id password hashing, run off the async runtime.
//!
//! Verification of an unknown user's login still hashes (against a dummy hash made at start),
//! so a wrong user name and a wrong password cost the same time.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore as _;
use serde::Deserialize;

/// Shortest accepted password (characters).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password (bytes), so hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for HashCost {
    /// OWASP's Argon2id recommendation (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    /// The cheapest valid cost; for tests only.
    pub const fn insecure_for_tests() -> Self {
        Self {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        }
    }
}

/// Why hashing failed (bad cost parameters, or the blocking task died).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Hashes and verifies passwords with one cost.
#[derive(Debug, Clone)]
pub struct Passwords {
    cost: HashCost,
    dummy_hash: String,
}

impl Passwords {
    /// Prepares a hasher (computes the dummy hash once).
    ///
    /// # Errors
    /// When the cost parameters are invalid.
    pub fn new(cost: HashCost) -> Result<Self, HashError> {
        let dummy_hash = hash_blocking(cost, "reach-dummy-password")?;
        Ok(Self { cost, dummy_hash })
    }

    /// Hashes a password into a PHC string.
    ///
    /// # Errors
    /// See [`HashError`].
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let cost = self.cost;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_blocking(cost, &password))
            .await
            .map_err(|e| HashError(e.to_string()))?
    }

    /// Checks a password against a stored hash, or against the dummy hash when there is no
    /// user (the answer is then always `false`, after the same work).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let real = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        ok && real
    }
}

fn hash_blocking(cost: HashCost, password: &str) -> Result<String, HashError> {
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| HashError(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Checks a new password against the policy.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "passwords need at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "passwords may have at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let passwords = Passwords::new(HashCost::insecure_for_tests()).unwrap();
        let hash = passwords.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords.verify("correct horse", Some(&hash)).await);
        assert!(!passwords.verify("wrong horse", Some(&hash)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let passwords = Passwords::new(HashCost::insecure_for_tests()).unwrap();
        assert!(!passwords.verify("reach-dummy-password", None).await);
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(check_policy("long enough").is_ok());
    }
}

//! The server secret: generated on first start into `<data_dir>/server-secret` (mode 0600) or
//! supplied through configuration (`REACH_TOKEN_SECRET`). Keys for separate uses are derived
//! from it, so a token key can never be used as the audit-head key.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

/// File name of the generated secret inside the data directory.
pub const SECRET_FILE: &str = "server-secret";

/// Why the secret could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Reading or writing the secret file failed.
    #[error("secret file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is readable by group or others.
    #[error("secret file {0} is readable by other users; run `chmod 600 {0}`")]
    TooOpen(String),
    /// The file does not hold 64 hex digits, or the configured secret is too short.
    #[error("{0}")]
    Invalid(String),
}

/// A secret string (password, token, configured secret) whose `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub const fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

/// The 256-bit server secret. Never printed.
pub struct ServerSecret([u8; 32]);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl ServerSecret {
    /// Uses the configured secret (at least 32 characters), else loads or creates the file.
    ///
    /// # Errors
    /// See [`SecretError`].
    pub fn load(data_dir: &Path, configured: Option<&str>) -> Result<Self, SecretError> {
        if let Some(text) = configured {
            if text.len() < 32 {
                return Err(SecretError::Invalid(
                    "REACH_TOKEN_SECRET must be at least 32 characters".into(),
                ));
            }
            return Ok(Self(Sha256::digest(text.as_bytes()).into()));
        }
        let path = data_dir.join(SECRET_FILE);
        let shown = path.display().to_string();
        let io = |source| SecretError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(SecretError::TooOpen(shown));
                }
                let text = std::fs::read_to_string(&path).map_err(io)?;
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key)
                    .map_err(|_| SecretError::Invalid(format!("{shown} is not 64 hex digits")))?;
                Ok(Self(key))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(format!("{}\n", hex::encode(key)).as_bytes())
                    .map_err(io)?;
                Ok(Self(key))
            }
            Err(err) => Err(io(err)),
        }
    }

    /// A key for one purpose, `HMAC-SHA256(secret, label)`.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_secret_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServerSecret::load(dir.path(), None).unwrap();
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = ServerSecret::load(dir.path(), None).unwrap();
        assert_eq!(first.derive("x"), second.derive("x"));
        assert_ne!(first.derive("x"), first.derive("y"));
    }

    #[test]
    fn a_world_readable_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ServerSecret::load(dir.path(), None).unwrap();
        let path = dir.path().join(SECRET_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServerSecret::load(dir.path(), None),
            Err(SecretError::TooOpen(_))
        ));
    }

    #[test]
    fn a_short_configured_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ServerSecret::load(dir.path(), Some("short")).is_err());
        assert!(ServerSecret::load(dir.path(), Some(&"s".repeat(32))).is_ok());
    }
}

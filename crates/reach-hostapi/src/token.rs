//! The API's bearer token: generated on first start, stored with mode 0600 in the config
//! directory, compared in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The token file's name in the config directory.
pub const TOKEN_FILE: &str = "usb-api-token";

/// The bearer token the API accepts.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// What [`load_or_create`] found.
#[derive(Debug)]
pub struct Loaded {
    /// The token to check requests against.
    pub token: Token,
    /// The token's text when it was created now (print it once); `None` when it existed.
    pub created: Option<String>,
    /// Where it is stored.
    pub path: PathBuf,
}

impl Token {
    /// A token for `text`.
    pub fn new(text: &str) -> Self {
        Self {
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Whether `presented` is the token. Both sides are hashed first, so the comparison takes
    /// the same time whatever the length or content of `presented`.
    pub fn matches(&self, presented: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&other).into()
    }
}

/// Reads the token from `config_dir`, or generates and stores one (mode 0600).
///
/// # Errors
/// [`ApiError::Token`] when the file cannot be read or written, or is empty.
pub fn load_or_create(config_dir: &Path) -> Result<Loaded, ApiError> {
    let path = config_dir.join(TOKEN_FILE);
    let err = |e: std::io::Error| ApiError::Token(path.clone(), e.to_string());
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Err(ApiError::Token(path.clone(), "the file is empty".into()));
            }
            return Ok(Loaded {
                token: Token::new(text),
                created: None,
                path,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(err(e)),
    }
    std::fs::create_dir_all(config_dir).map_err(err)?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = format!("rua_{}", hex::encode(bytes));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(err)?;
    file.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(err)?;
    Ok(Loaded {
        token: Token::new(&text),
        created: Some(text),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_created_once_with_mode_0600_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let text = first.created.clone().unwrap();
        assert!(first.token.matches(&text));
        assert!(!first.token.matches(&text[..text.len() - 1]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load_or_create(dir.path()).unwrap();
        assert!(second.created.is_none(), "printed only on first start");
        assert!(second.token.matches(&text));
    }
}

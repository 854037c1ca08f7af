//! The signed ACL file: JSON at `<acl>`, HMAC-SHA256 of its exact bytes in `<acl>.sig` (hex), key
//! in `<acl>.key` (32 random bytes, mode 0600, created on first save) or supplied by the
//! deployment. Loading fails closed; saving is atomic.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use super::{ACL_VERSION, AclFile, UsbAcl};
use crate::audit::write_atomic;

type HmacSha256 = Hmac<Sha256>;

/// Where the signing key comes from.
#[derive(Clone)]
pub enum AclKey {
    /// `<acl>.key`, created on first save.
    File,
    /// Supplied by the deployment (e.g. a keychain).
    Supplied(Vec<u8>),
}

impl std::fmt::Debug for AclKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::File => "AclKey::File",
            Self::Supplied(_) => "AclKey::Supplied(…)",
        })
    }
}

/// How to load.
#[derive(Debug, Clone)]
pub struct AclOptions {
    /// Key source.
    pub key: AclKey,
    /// Refuse unsigned (legacy) files.
    pub require_signature: bool,
}

impl Default for AclOptions {
    fn default() -> Self {
        Self {
            key: AclKey::File,
            require_signature: false,
        }
    }
}

/// Saving failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AclSaveError {
    /// Writing a file failed.
    #[error("cannot write the ACL: {0}")]
    Io(String),
}

fn sidecar(path: &Path, ext: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(ext);
    PathBuf::from(p)
}

/// `<acl>.sig`.
pub fn sig_path(path: &Path) -> PathBuf {
    sidecar(path, ".sig")
}

/// `<acl>.key`.
pub fn key_path(path: &Path) -> PathBuf {
    sidecar(path, ".key")
}

#[cfg(unix)]
fn insecure_mode(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o022 != 0).then(|| {
        format!(
            "{} is group/world-writable (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn insecure_mode(_path: &Path) -> Option<String> {
    None
}

fn read_key(path: &Path, key: &AclKey) -> Option<Vec<u8>> {
    match key {
        AclKey::Supplied(k) => Some(k.clone()),
        AclKey::File => std::fs::read(key_path(path)).ok(),
    }
}

fn mac(key: &[u8], bytes: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(bytes);
    m
}

/// Loads an ACL, failing closed on any integrity problem. A missing file is an empty,
/// default-deny ACL.
pub fn load(path: &Path, options: &AclOptions) -> UsbAcl {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return UsbAcl {
                file: AclFile::default(),
                integrity_ok: true,
                problem: None,
                signed: false,
            };
        }
        Err(e) => return UsbAcl::failed_closed(format!("cannot read {}: {e}", path.display())),
    };
    for p in [path.to_owned(), key_path(path)] {
        if let Some(problem) = insecure_mode(&p) {
            return UsbAcl::failed_closed(problem);
        }
    }
    let key = read_key(path, &options.key);
    let signed = match (std::fs::read_to_string(sig_path(path)), &key) {
        (Ok(sig), Some(key)) => {
            let valid =
                hex::decode(sig.trim()).is_ok_and(|s| mac(key, &bytes).verify_slice(&s).is_ok());
            if !valid {
                return UsbAcl::failed_closed(
                    "ACL signature mismatch: the file was changed outside Reach".into(),
                );
            }
            true
        }
        (Ok(_), None) => {
            return UsbAcl::failed_closed("ACL is signed but the key is missing".into());
        }
        (Err(_), Some(_)) if matches!(options.key, AclKey::File) => {
            return UsbAcl::failed_closed("ACL signature file is missing but a key exists".into());
        }
        (Err(_), _) if options.require_signature => {
            return UsbAcl::failed_closed("ACL is unsigned and require_signature is set".into());
        }
        (Err(_), _) => false,
    };
    let file: AclFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return UsbAcl::failed_closed(format!("ACL is not valid JSON: {e}")),
    };
    if file.version != ACL_VERSION {
        return UsbAcl::failed_closed(format!(
            "unknown ACL version {}; this agent reads version {ACL_VERSION}",
            file.version
        ));
    }
    UsbAcl {
        file,
        integrity_ok: true,
        problem: None,
        signed,
    }
}

/// Saves and signs an ACL atomically (file and sidecar written to temp files, then renamed).
///
/// # Errors
/// [`AclSaveError`] when a file cannot be written.
pub fn save(path: &Path, file: &AclFile, key: &AclKey) -> Result<(), AclSaveError> {
    let io = |e: crate::audit::AuditError| AclSaveError::Io(e.to_string());
    let key = match key {
        AclKey::Supplied(k) => k.clone(),
        AclKey::File => match std::fs::read(key_path(path)) {
            Ok(k) => k,
            Err(_) => {
                let mut k = vec![0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut k[..]);
                write_atomic(&key_path(path), &k).map_err(io)?;
                k
            }
        },
    };
    let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| AclSaveError::Io(e.to_string()))?;
    bytes.push(b'\n');
    let sig = hex::encode(mac(&key, &bytes).finalize().into_bytes());
    write_atomic(path, &bytes).map_err(io)?;
    write_atomic(&sig_path(path), sig.as_bytes()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclRule, Verdict};

    fn sample() -> AclFile {
        AclFile {
            version: 1,
            default: Verdict::Deny,
            rules: vec![AclRule {
                vendor_id: Some(0x1050),
                allow: true,
                ..Default::default()
            }],
        }
    }

    #[test]
    fn saved_acl_loads_signed_with_a_0600_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usb-acl.json");
        save(&path, &sample(), &AclKey::File).unwrap();
        let acl = load(&path, &AclOptions::default());
        assert!(acl.integrity_ok && acl.signed, "{:?}", acl.problem);
        assert_eq!(acl.file, sample());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [key_path(&path), path.clone()] {
                assert_eq!(
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
        }
    }

    #[test]
    fn tampered_json_or_signature_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        save(&path, &sample(), &AclKey::File).unwrap();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"deny\"", "\"allow\"");
        std::fs::write(&path, text).unwrap();
        assert!(!load(&path, &AclOptions::default()).integrity_ok);
        save(&path, &sample(), &AclKey::File).unwrap();
        std::fs::write(sig_path(&path), "00".repeat(32)).unwrap();
        let acl = load(&path, &AclOptions::default());
        assert!(!acl.integrity_ok);
        assert!(acl.problem.unwrap().contains("signature"));
    }

    #[test]
    fn deleting_the_signature_while_a_key_exists_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        save(&path, &sample(), &AclKey::File).unwrap();
        std::fs::remove_file(sig_path(&path)).unwrap();
        assert!(!load(&path, &AclOptions::default()).integrity_ok);
    }

    #[cfg(unix)]
    #[test]
    fn group_writable_file_fails_closed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        save(&path, &sample(), &AclKey::File).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let acl = load(&path, &AclOptions::default());
        assert!(!acl.integrity_ok);
        assert!(acl.problem.unwrap().contains("chmod 600"));
    }

    #[test]
    fn legacy_unsigned_file_loads_unless_signatures_are_required() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        std::fs::write(&path, r#"{"version":1,"default":"deny","rules":[]}"#).unwrap();
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let legacy = load(&path, &AclOptions::default());
        assert!(legacy.integrity_ok && !legacy.signed);
        let strict = load(
            &path,
            &AclOptions {
                require_signature: true,
                ..Default::default()
            },
        );
        assert!(!strict.integrity_ok);
        save(&path, &legacy.file, &AclKey::File).unwrap();
        assert!(
            load(
                &path,
                &AclOptions {
                    require_signature: true,
                    ..Default::default()
                }
            )
            .signed
        );
    }

    #[test]
    fn bad_json_and_unknown_version_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        for text in ["{not json", r#"{"version":2,"default":"deny","rules":[]}"#] {
            std::fs::write(&path, text).unwrap();
            #[cfg(unix)]
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            assert!(!load(&path, &AclOptions::default()).integrity_ok, "{text}");
        }
    }

    #[test]
    fn supplied_key_signs_and_verifies_without_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.json");
        let key = AclKey::Supplied(b"deployment secret".to_vec());
        save(&path, &sample(), &key).unwrap();
        assert!(!key_path(&path).exists());
        assert!(
            load(
                &path,
                &AclOptions {
                    key: key.clone(),
                    require_signature: true
                }
            )
            .signed
        );
        let other = AclKey::Supplied(b"other".to_vec());
        assert!(
            !load(
                &path,
                &AclOptions {
                    key: other,
                    require_signature: false
                }
            )
            .integrity_ok
        );
    }
}

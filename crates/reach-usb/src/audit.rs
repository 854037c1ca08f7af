//! The host's local, tamper-evident USB audit log (SPEC §9.8, §11).
//!
//! One JSON record per line (`reach_audit::AuditRecord`), chained with the shared scheme, plus a
//! head file `<log>.head` rewritten atomically after every append so truncation is detected.
//! Records carry device ids, claim ids and the viewer identity — never transfer payloads.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use reach_audit::{AuditRecord, ChainHead, GENESIS_HASH, verify_chain};
use serde_json::{Value, json};
use thiserror::Error;

use crate::proto::DeviceInfo;

/// Audit file failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Reading or writing the log failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("audit log line {line} is not a valid record")]
    Corrupt {
        /// 1-based line.
        line: usize,
    },
}

/// Result of [`verify_file`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// Whether the chain is intact.
    pub ok: bool,
    /// Records checked.
    pub records: usize,
    /// First broken id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_at_id: Option<i64>,
}

struct Tail {
    last_id: i64,
    last_hash: String,
}

/// Sees every record's actor and details as it is appended (e.g. to forward the decision to
/// the server's audit log). Called before the write, so it sees records a full disk loses.
pub type AuditMirror = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// An append-only local audit log.
pub struct LocalAudit {
    path: PathBuf,
    tenant: String,
    tail: Arc<Mutex<Tail>>,
    mirror: Option<AuditMirror>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn read_records(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(path))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|_| AuditError::Corrupt { line: i + 1 })?);
    }
    Ok(out)
}

impl LocalAudit {
    /// Opens (or creates) the log; `tenant` is the machine name.
    ///
    /// # Errors
    /// [`AuditError`] when the file cannot be read.
    pub fn open(path: &Path, tenant: &str) -> Result<Self, AuditError> {
        let records = read_records(path)?;
        let tail = records.last().map_or(
            Tail {
                last_id: 0,
                last_hash: GENESIS_HASH.into(),
            },
            |r| Tail {
                last_id: r.id,
                last_hash: r.hash.clone(),
            },
        );
        Ok(Self {
            path: path.to_owned(),
            tenant: tenant.to_owned(),
            tail: Arc::new(Mutex::new(tail)),
            mirror: None,
        })
    }

    /// Another handle on the same log and chain (appends stay in one chain) whose appends are
    /// also passed to `mirror`.
    pub fn with_mirror(&self, mirror: AuditMirror) -> Self {
        Self {
            path: self.path.clone(),
            tenant: self.tenant.clone(),
            tail: Arc::clone(&self.tail),
            mirror: Some(mirror),
        }
    }

    /// Appends one `usb_passthrough` record.
    ///
    /// # Errors
    /// [`AuditError::Io`] when the write fails.
    pub fn append(&self, actor: &str, details: Value) -> Result<(), AuditError> {
        if let Some(mirror) = &self.mirror {
            mirror(actor, &details);
        }
        let mut tail = self
            .tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let record = AuditRecord::new(
            tail.last_id + 1,
            ts_ms,
            &self.tenant,
            actor,
            "usb_passthrough",
            details,
            tail.last_hash.clone(),
        );
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(&self.path).map_err(io_err(&self.path))?;
        file.write_all(&line).map_err(io_err(&self.path))?;
        file.sync_data().map_err(io_err(&self.path))?;
        let head = ChainHead {
            id: record.id,
            hash: record.hash.clone(),
        };
        write_atomic(
            &head_path(&self.path),
            &serde_json::to_vec(&head).unwrap_or_default(),
        )?;
        tail.last_id = record.id;
        tail.last_hash = record.hash;
        Ok(())
    }

    /// Appends an event about a device (ids only).
    ///
    /// # Errors
    /// [`AuditError::Io`] when the write fails.
    pub fn device_event(
        &self,
        viewer: &str,
        action: &str,
        claim: Option<u16>,
        device: &DeviceInfo,
        extra: Value,
    ) -> Result<(), AuditError> {
        let mut details = json!({
            "action": action,
            "vendor_id": format!("{:04x}", device.vendor_id),
            "product_id": format!("{:04x}", device.product_id),
            "serial": device.serial,
            "bus_id": device.bus_id,
            "viewer": viewer,
        });
        if let Some(claim) = claim {
            details["claim_id"] = json!(claim);
        }
        if let (Value::Object(d), Value::Object(e)) = (&mut details, extra) {
            d.extend(e);
        }
        self.append(&format!("viewer:{viewer}"), details)
    }

    /// The log path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes a file atomically with mode 0600 (temp file + rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut opts = OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Verifies a log file and its head.
///
/// # Errors
/// [`AuditError`] when the file cannot be read at all (a corrupt line is reported as broken).
pub fn verify_file(path: &Path) -> Result<VerifyReport, AuditError> {
    let records = match read_records(path) {
        Ok(r) => r,
        Err(AuditError::Corrupt { line }) => {
            return Ok(VerifyReport {
                ok: false,
                records: line - 1,
                broken_at_id: Some(line as i64),
            });
        }
        Err(e) => return Err(e),
    };
    let head: Option<ChainHead> = std::fs::read(head_path(path))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let result = verify_chain(&records, head.as_ref());
    Ok(VerifyReport {
        ok: result.is_ok(),
        records: records.len(),
        broken_at_id: result.err().map(|b| b.broken_at_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_records_verify_and_an_edit_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usb-audit.jsonl");
        let audit = LocalAudit::open(&path, "host1").unwrap();
        for i in 0..3 {
            audit
                .append("viewer:alice", json!({"action": "open", "n": i}))
                .unwrap();
        }
        assert_eq!(
            verify_file(&path).unwrap(),
            VerifyReport {
                ok: true,
                records: 3,
                broken_at_id: None
            }
        );
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"n\":1", "\"n\":7");
        std::fs::write(&path, text).unwrap();
        assert_eq!(verify_file(&path).unwrap().broken_at_id, Some(2));
    }

    #[test]
    fn truncation_is_detected_through_the_head_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let audit = LocalAudit::open(&path, "h").unwrap();
        audit.append("x", json!({})).unwrap();
        audit.append("x", json!({})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap().to_owned() + "\n";
        std::fs::write(&path, first).unwrap();
        assert_eq!(verify_file(&path).unwrap().broken_at_id, Some(2));
        let reopened = LocalAudit::open(&path, "h").unwrap();
        drop(reopened);
    }
}

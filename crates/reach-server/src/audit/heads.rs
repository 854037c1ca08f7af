//! Recorded chain heads: the newest `(seq, hash)` of each tenant's chain, authenticated with
//! an HMAC keyed by the server secret, stored in table `audit_heads` and mirrored into
//! `<data_dir>/audit-heads.json` (mode 0600). Verification uses whichever valid head is further
//! along, so deleting the newest records is detected even if the `audit_heads` row is deleted
//! or rolled back as well. A head never moves backwards.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use hmac::{Hmac, Mac};
use reach_audit::ChainHead;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row as _;

use crate::db::{self, Db};

/// File name of the head mirror inside the data directory.
pub const HEAD_MIRROR_FILE: &str = "audit-heads.json";

/// A head as stored, with its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredHead {
    seq: i64,
    hash: String,
    mac: String,
}

pub(super) enum HeadState {
    None,
    Valid(ChainHead),
    /// A stored head's MAC does not match: someone rewrote it.
    Forged(i64),
}

fn head_mac(key: &[u8; 32], tenant_id: &str, seq: i64, hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    let text = format!(
        "reach-audit-head-v1\n{}:{tenant_id}\n{seq}\n{hash}",
        tenant_id.len()
    );
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn check(key: &[u8; 32], tenant_id: &str, stored: StoredHead) -> HeadState {
    let expected = head_mac(key, tenant_id, stored.seq, &stored.hash);
    if subtle::ConstantTimeEq::ct_eq(stored.mac.as_bytes(), expected.as_bytes()).into() {
        HeadState::Valid(ChainHead {
            id: stored.seq,
            hash: stored.hash,
        })
    } else {
        HeadState::Forged(stored.seq)
    }
}

async fn from_db(db: &Db, tenant_id: &str) -> Result<Option<StoredHead>, sqlx::Error> {
    let row = sqlx::query("SELECT seq, hash, mac FROM audit_heads WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(db)
        .await?;
    row.map(|row| {
        Ok(StoredHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            mac: row.try_get("mac")?,
        })
    })
    .transpose()
}

fn read_mirror(path: &Path) -> BTreeMap<String, StoredHead> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
            tracing::warn!(path = %path.display(), error = %err, "unreadable audit head mirror");
            BTreeMap::new()
        }),
        Err(_) => BTreeMap::new(),
    }
}

/// The newest valid head of a tenant from the database and the mirror; a forged one wins,
/// so tampering is reported.
pub(super) async fn newest(
    db: &Db,
    key: &[u8; 32],
    tenant_id: &str,
    mirror: Option<&Path>,
) -> Result<HeadState, sqlx::Error> {
    let mut candidates = Vec::new();
    candidates.extend(from_db(db, tenant_id).await?);
    if let Some(path) = mirror {
        candidates.extend(read_mirror(path).remove(tenant_id));
    }
    let mut best = HeadState::None;
    for stored in candidates {
        match (check(key, tenant_id, stored), &best) {
            (forged @ HeadState::Forged(_), _) => return Ok(forged),
            (HeadState::Valid(head), HeadState::Valid(old)) if head.id <= old.id => {}
            (valid, _) => best = valid,
        }
    }
    Ok(best)
}

/// Records the current head of every tenant's chain in `audit_heads` (never moving a head
/// backwards, so a chain shorter than its recorded head keeps the old head and verification
/// reports the truncation).
///
/// # Errors
/// On database failure.
pub async fn record_heads(db: &Db, key: &[u8; 32]) -> Result<(), sqlx::Error> {
    let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_log")
        .fetch_all(db)
        .await?;
    for tenant_id in tenants {
        let (seq, hash) = super::last(db, &tenant_id).await?;
        let mac = head_mac(key, &tenant_id, seq, &hash);
        sqlx::query(
            "INSERT INTO audit_heads (tenant_id, seq, hash, recorded_at, mac) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             recorded_at = excluded.recorded_at, mac = excluded.mac \
             WHERE audit_heads.seq < excluded.seq",
        )
        .bind(&tenant_id)
        .bind(seq)
        .bind(&hash)
        .bind(db::now_ms())
        .bind(&mac)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// Records heads ([`record_heads`]) and mirrors every valid recorded head into the file at
/// `mirror`, keeping the file's entry where it is further along. Run periodically and at
/// shutdown.
///
/// # Errors
/// On database failure or when the mirror cannot be written.
pub async fn checkpoint(db: &Db, key: &[u8; 32], mirror: &Path) -> anyhow::Result<()> {
    record_heads(db, key).await?;
    let rows = sqlx::query("SELECT tenant_id, seq, hash, mac FROM audit_heads")
        .fetch_all(db)
        .await?;
    let mut heads = read_mirror(mirror);
    for row in rows {
        let tenant_id: String = row.try_get("tenant_id")?;
        let stored = StoredHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            mac: row.try_get("mac")?,
        };
        let valid = matches!(check(key, &tenant_id, stored.clone()), HeadState::Valid(_));
        let further = heads.get(&tenant_id).is_none_or(|old| old.seq < stored.seq);
        if valid && further {
            heads.insert(tenant_id, stored);
        }
    }
    write_private(mirror, &serde_json::to_vec_pretty(&heads)?)?;
    Ok(())
}

/// Writes a file atomically (temporary file, then rename) with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

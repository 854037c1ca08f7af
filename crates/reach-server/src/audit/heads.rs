//! Recorded chain heads: the newest `(seq, hash)` of each tenant's chain, authenticated with
//! an HMAC keyed by the server secret, stored in table `audit_heads` and mirrored into
//! `<data_dir>/audit-heads.json` (mode 0600).
//!
//! A head moves forward only after the chain from the previous valid head up to the new
//! newest record verifies (with the chain key), so a rewritten history is never signed. A
//! stored head whose MAC fails is never overwritten: it stays and is reported. Verification
//! checks the chain against every valid head it has (database and mirror), so deleting the
//! newest records is detected even if the `audit_heads` row is deleted or rolled back.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use hmac::{Hmac, Mac};
use reach_audit::{ChainCheck, ChainHead};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row as _;
use utoipa::ToSchema;

use super::AuditKeys;
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

/// A recorded head that verification could not square with the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BadHead {
    /// Where it is stored: `database` or `mirror`.
    pub source: &'static str,
    /// The record id it claims.
    pub seq: i64,
    /// `mac`: its MAC does not match (rewritten without the server secret); `disagrees`:
    /// authentic, but the chain no longer has that record with that hash.
    pub reason: &'static str,
}

/// The heads of one tenant: the authentic ones (with where they are stored) and the forged
/// ones.
#[derive(Debug, Default)]
pub(super) struct Heads {
    pub(super) valid: Vec<(&'static str, ChainHead)>,
    pub(super) bad: Vec<BadHead>,
}

impl Heads {
    /// The valid head furthest along.
    pub(super) fn furthest(&self) -> Option<&ChainHead> {
        self.valid.iter().map(|(_, h)| h).max_by_key(|h| h.id)
    }

    /// The authentic heads.
    pub(super) fn chain_heads(&self) -> Vec<ChainHead> {
        self.valid.iter().map(|(_, h)| h.clone()).collect()
    }
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

fn authentic(key: &[u8; 32], tenant_id: &str, stored: &StoredHead) -> bool {
    let expected = head_mac(key, tenant_id, stored.seq, &stored.hash);
    subtle::ConstantTimeEq::ct_eq(stored.mac.as_bytes(), expected.as_bytes()).into()
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

/// Every recorded head of a tenant (database and, if given, the mirror), sorted into
/// authentic and forged.
pub(super) async fn all(
    db: &Db,
    key: &[u8; 32],
    tenant_id: &str,
    mirror: Option<&Path>,
) -> Result<Heads, sqlx::Error> {
    let mut stored = Vec::new();
    stored.extend(from_db(db, tenant_id).await?.map(|h| ("database", h)));
    if let Some(path) = mirror {
        stored.extend(read_mirror(path).remove(tenant_id).map(|h| ("mirror", h)));
    }
    let mut heads = Heads::default();
    for (source, head) in stored {
        if authentic(key, tenant_id, &head) {
            let chain_head = ChainHead {
                id: head.seq,
                hash: head.hash,
            };
            heads.valid.push((source, chain_head));
        } else {
            heads.bad.push(BadHead {
                source,
                seq: head.seq,
                reason: "mac",
            });
        }
    }
    Ok(heads)
}

/// Moves each tenant's recorded head to its newest record — only when the chain from the
/// furthest valid head (or from the genesis) verifies with `chain_key`, and never over a
/// forged head row (that is left for verification to report). A head never moves backwards.
///
/// # Errors
/// On database failure.
pub async fn record_heads(
    db: &Db,
    keys: &AuditKeys,
    mirror: Option<&Path>,
) -> Result<(), sqlx::Error> {
    let tenants: Vec<String> = sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_log")
        .fetch_all(db)
        .await?;
    for tenant_id in tenants {
        let heads = all(db, &keys.head, &tenant_id, mirror).await?;
        if let Some(bad) = heads.bad.iter().find(|b| b.source == "database") {
            tracing::warn!(tenant = %tenant_id, seq = bad.seq, "forged audit head left in place");
            continue;
        }
        let Some(newest) = verified_newest(db, &keys.chain, &tenant_id, heads.furthest()).await?
        else {
            continue;
        };
        let mac = head_mac(&keys.head, &tenant_id, newest.id, &newest.hash);
        sqlx::query(
            "INSERT INTO audit_heads (tenant_id, seq, hash, recorded_at, mac) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             recorded_at = excluded.recorded_at, mac = excluded.mac \
             WHERE audit_heads.seq < excluded.seq",
        )
        .bind(&tenant_id)
        .bind(newest.id)
        .bind(&newest.hash)
        .bind(db::now_ms())
        .bind(&mac)
        .execute(db)
        .await?;
    }
    Ok(())
}

/// The newest record, when the chain from `from` (or the genesis) to it verifies.
async fn verified_newest(
    db: &Db,
    chain_key: &[u8; 32],
    tenant_id: &str,
    from: Option<&ChainHead>,
) -> Result<Option<ChainHead>, sqlx::Error> {
    let records = super::records_from(db, tenant_id, from.map_or(1, |h| h.id)).await?;
    let mut check = match from {
        Some(head) => ChainCheck::from_head(head, Some(chain_key)),
        None => ChainCheck::from_genesis(Some(chain_key)),
    };
    for record in &records {
        if let Err(broken) = check.push(record) {
            tracing::warn!(tenant = %tenant_id, broken_at_id = broken.broken_at_id,
                "audit chain broken; its head is not moved");
            return Ok(None);
        }
    }
    if let Some(head) = from
        && records.is_empty()
    {
        tracing::warn!(tenant = %tenant_id, head = head.id, "audit head record missing");
    }
    Ok(records.last().map(|r| ChainHead {
        id: r.id,
        hash: r.hash.clone(),
    }))
}

/// Records heads ([`record_heads`]) and mirrors every valid recorded head into the file at
/// `mirror`, keeping the file's entry where it is further along or forged (to be reported). Run periodically and at
/// shutdown.
///
/// # Errors
/// On database failure or when the mirror cannot be written.
pub async fn checkpoint(db: &Db, keys: &AuditKeys, mirror: &Path) -> anyhow::Result<()> {
    record_heads(db, keys, Some(mirror)).await?;
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
        let valid = authentic(&keys.head, &tenant_id, &stored);
        // A forged mirror entry stays, so verification keeps reporting it.
        let further = heads
            .get(&tenant_id)
            .is_none_or(|old| authentic(&keys.head, &tenant_id, old) && old.seq < stored.seq);
        if valid && further {
            heads.insert(tenant_id, stored);
        }
    }
    write_private(mirror, &serde_json::to_vec_pretty(&heads)?)?;
    Ok(())
}

/// Writes a file atomically (a temporary file of this writer's own, then rename) with mode
/// 0600; instances sharing a data directory never write into each other's temporary file.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("json.{}.tmp", db::new_id("w")));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

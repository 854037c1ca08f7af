//! The tamper-evident hash chain shared by every Reach audit trail.
//!
//! The server's audit table and the agent's local USB audit file store the same record shape and
//! chain it the same way, so one verifier serves both. This crate is pure: it encodes, hashes and
//! verifies; storage lives with each caller.
//!
//! # Format
//! Each record's hash is `SHA-256(canonical_bytes)` where the canonical bytes are
//!
//! ```text
//! "reach-audit-v1\n" id "\n" ts_ms "\n" tenant "\n" actor "\n" event_type "\n" details "\n" prev_hash
//! ```
//!
//! every field as decimal or UTF-8 text, each text field prefixed by its byte length (`len:`), so
//! no choice of field content can make two different records encode alike. `details` is the
//! record's JSON details re-serialised with sorted keys. `prev_hash` is the lowercase hex hash of
//! the previous record, or [`GENESIS_HASH`] for the first one.
//!
//! A **keyed** record (the server's log) stores instead `k1:` followed by the lowercase hex
//! `HMAC-SHA256(chain_key, canonical_bytes)`, so whoever lacks the key cannot recompute a
//! chain after editing it. Once a chain has a keyed record, every later one must be keyed
//! ([`ChainCheck`]).
//!
//! # Example
//! ```
//! use reach_audit::{AuditRecord, GENESIS_HASH, verify_chain};
//! let first = AuditRecord::new(1, 1_700_000_000_000, "default", "admin", "login_ok",
//!     serde_json::json!({"ip": "127.0.0.1"}), GENESIS_HASH.to_string());
//! let second = AuditRecord::new(2, 1_700_000_000_500, "default", "admin", "logout",
//!     serde_json::json!({}), first.hash.clone());
//! assert_eq!(verify_chain([&first, &second], None), Ok(()));
//! ```
#![deny(missing_docs)]

mod check;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use check::{ChainCheck, verify_chain_against};

/// Prefix of a keyed record hash (`k1:<hex HMAC-SHA256>`).
pub const KEYED_PREFIX: &str = "k1:";

/// The `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain; strictly increasing, gap-free from 1.
    pub id: i64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// Tenant the record belongs to (the agent's local log uses its machine name).
    pub tenant: String,
    /// Who acted: a user name, `agent:<machine>`, `viewer:<user>` or `system`.
    pub actor: String,
    /// Event type, e.g. `login_ok`, `usb_passthrough`.
    pub event_type: String,
    /// Event details; never secrets or payloads.
    pub details: serde_json::Value,
    /// Hash of the previous record, or [`GENESIS_HASH`].
    pub prev_hash: String,
    /// This record's hash over [`AuditRecord::canonical_bytes`].
    pub hash: String,
}

impl AuditRecord {
    /// Builds a record and computes its hash.
    pub fn new(
        id: i64,
        ts_ms: i64,
        tenant: &str,
        actor: &str,
        event_type: &str,
        details: serde_json::Value,
        prev_hash: String,
    ) -> Self {
        let mut record = Self {
            id,
            ts_ms,
            tenant: tenant.to_owned(),
            actor: actor.to_owned(),
            event_type: event_type.to_owned(),
            details,
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    /// The exact bytes the hash covers (see the crate docs' `# Format`).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let details = canonical_json(&self.details);
        let mut out = Vec::with_capacity(128 + details.len());
        out.extend_from_slice(b"reach-audit-v1\n");
        for text in [
            self.id.to_string().as_str(),
            self.ts_ms.to_string().as_str(),
            &self.tenant,
            &self.actor,
            &self.event_type,
            &details,
            &self.prev_hash,
        ] {
            out.extend_from_slice(text.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(text.as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// Recomputes this record's hash from its fields.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_bytes()))
    }

    /// The keyed hash of this record's fields: `k1:` + hex `HMAC-SHA256(key, canonical_bytes)`.
    pub fn compute_keyed_hash(&self, key: &[u8; 32]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(&self.canonical_bytes());
        format!("{KEYED_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// This record with its hash replaced by the keyed hash.
    #[must_use]
    pub fn keyed(mut self, key: &[u8; 32]) -> Self {
        self.hash = self.compute_keyed_hash(key);
        self
    }
}

/// Serialises JSON with object keys sorted at every level, so equal values hash equally.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<_> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for key in keys {
                    out.insert(key.clone(), sorted(&map[key]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    // serde_json's Map keeps insertion order only with `preserve_order`; without it the map is a
    // BTreeMap and already sorted. Sorting explicitly keeps the encoding stable either way.
    sorted(value).to_string()
}

/// Where a chain stops being trustworthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainBroken {
    /// The first record id whose content, link or position is wrong (for a truncated chain: the
    /// id the missing record should have had).
    pub broken_at_id: i64,
}

/// The newest record a chain is known to have reached, recorded separately from the records
/// (the "head"), so that deleting the newest records is detected too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Id of the newest record when the head was recorded.
    pub id: i64,
    /// Its hash.
    pub hash: String,
}

/// Verifies unkeyed records given in id order (keyed records fail: see
/// [`verify_chain_against`]).
///
/// Checks that ids run 1, 2, 3… without gaps, that every hash matches its record, that every
/// `prev_hash` links to its predecessor, and, with a `head`, that the chain still contains the
/// recorded head record unchanged.
///
/// # Errors
/// [`ChainBroken`] with the first id that fails.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    head: Option<&ChainHead>,
) -> Result<(), ChainBroken> {
    verify_chain_against(
        records,
        head.map(std::slice::from_ref).unwrap_or_default(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for id in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_owned(), |r| r.hash.clone());
            out.push(AuditRecord::new(
                id,
                1000 + id,
                "default",
                "admin",
                "login_ok",
                json!({"ip": "127.0.0.1", "n": id}),
                prev,
            ));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify_chain(&chain(5), None), Ok(()));
    }

    #[test]
    fn edited_record_is_reported_at_its_id() {
        let mut records = chain(5);
        records[2].actor = "mallory".into();
        assert_eq!(
            verify_chain(&records, None),
            Err(ChainBroken { broken_at_id: 3 })
        );
    }

    #[test]
    fn rehashed_edit_breaks_the_next_link() {
        let mut records = chain(5);
        records[2].actor = "mallory".into();
        records[2].hash = records[2].compute_hash();
        assert_eq!(
            verify_chain(&records, None),
            Err(ChainBroken { broken_at_id: 4 })
        );
    }

    #[test]
    fn deleted_record_is_reported_at_the_gap() {
        let mut records = chain(5);
        records.remove(1);
        assert_eq!(
            verify_chain(&records, None),
            Err(ChainBroken { broken_at_id: 2 })
        );
    }

    #[test]
    fn truncation_is_detected_through_the_head() {
        let records = chain(5);
        let head = ChainHead {
            id: 5,
            hash: records[4].hash.clone(),
        };
        assert_eq!(verify_chain(&records, Some(&head)), Ok(()));
        assert_eq!(
            verify_chain(&records[..3], Some(&head)),
            Err(ChainBroken { broken_at_id: 4 })
        );
    }

    fn keyed_chain(n: i64, key: &[u8; 32]) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for id in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_owned(), |r| r.hash.clone());
            let record = AuditRecord::new(id, 1000 + id, "t", "admin", "e", json!({"n": id}), prev);
            out.push(record.keyed(key));
        }
        out
    }

    #[test]
    fn a_keyed_chain_verifies_only_with_its_key() {
        let records = keyed_chain(4, &[1; 32]);
        assert_eq!(verify_chain_against(&records, &[], Some(&[1; 32])), Ok(()));
        assert_eq!(
            verify_chain_against(&records, &[], Some(&[2; 32])),
            Err(ChainBroken { broken_at_id: 1 })
        );
        assert_eq!(
            verify_chain(&records, None),
            Err(ChainBroken { broken_at_id: 1 })
        );
    }

    #[test]
    fn an_edit_rehashed_without_the_key_is_reported_at_the_edit() {
        let key = [1; 32];
        let mut records = keyed_chain(5, &key);
        records[2].actor = "mallory".into();
        for i in 2..5 {
            if i > 2 {
                records[i].prev_hash = records[i - 1].hash.clone();
            }
            records[i].hash = records[i].compute_hash();
        }
        assert_eq!(
            verify_chain_against(&records, &[], Some(&key)),
            Err(ChainBroken { broken_at_id: 3 })
        );
    }

    #[test]
    fn plain_records_are_accepted_only_before_the_first_keyed_one() {
        let key = [1; 32];
        let mut records = chain(2);
        let next = |id: i64, prev: &AuditRecord| {
            AuditRecord::new(
                id,
                2000,
                "default",
                "admin",
                "e",
                json!({}),
                prev.hash.clone(),
            )
        };
        let keyed = next(3, &records[1]).keyed(&key);
        records.push(keyed);
        assert_eq!(verify_chain_against(&records, &[], Some(&key)), Ok(()));
        let plain_after_keyed = next(4, &records[2]);
        records.push(plain_after_keyed);
        assert_eq!(
            verify_chain_against(&records, &[], Some(&key)),
            Err(ChainBroken { broken_at_id: 4 })
        );
    }

    #[test]
    fn every_head_must_agree_with_the_chain() {
        let key = [1; 32];
        let records = keyed_chain(5, &key);
        let head = |i: usize| ChainHead {
            id: records[i].id,
            hash: records[i].hash.clone(),
        };
        assert_eq!(
            verify_chain_against(&records, &[head(1), head(4)], Some(&key)),
            Ok(())
        );
        let wrong = ChainHead {
            id: 2,
            hash: records[3].hash.clone(),
        };
        assert_eq!(
            verify_chain_against(&records, &[wrong, head(4)], Some(&key)),
            Err(ChainBroken { broken_at_id: 2 })
        );
    }

    #[test]
    fn a_check_from_a_head_needs_that_heads_record_first() {
        let key = [1; 32];
        let records = keyed_chain(5, &key);
        let head = ChainHead {
            id: 3,
            hash: records[2].hash.clone(),
        };
        let mut check = ChainCheck::from_head(&head, Some(&key));
        for r in &records[2..] {
            assert_eq!(check.push(r), Ok(()));
        }
        let mut wrong = ChainCheck::from_head(&head, Some(&key));
        assert_eq!(
            wrong.push(&records[3]),
            Err(ChainBroken { broken_at_id: 3 })
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let a = AuditRecord::new(1, 1, "ab", "c", "e", json!({}), GENESIS_HASH.into());
        let b = AuditRecord::new(1, 1, "a", "bc", "e", json!({}), GENESIS_HASH.into());
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":{"d":2,"c":3}}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":{"c":3,"d":2},"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
    }
}

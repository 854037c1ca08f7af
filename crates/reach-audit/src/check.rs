//! Incremental chain verification, from the genesis or from a trusted head, with or without
//! the chain key.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq as _;

use crate::{AuditRecord, ChainBroken, ChainHead, GENESIS_HASH, KEYED_PREFIX};

/// Checks records one at a time, in id order.
///
/// A record is intact when its id is the next one, its `prev_hash` links to its
/// predecessor, and its hash matches its content: a keyed hash (`k1:…`) with the chain key,
/// a plain SHA-256 otherwise. Once a keyed record was seen, every later record must be keyed
/// too, so a rewrite without the key cannot fall back to plain hashes.
#[derive(Debug, Clone)]
pub struct ChainCheck<'k> {
    key: Option<&'k [u8; 32]>,
    expected_id: i64,
    prev_hash: String,
    /// Starting from a head: the first record must be that head's record.
    anchor: Option<String>,
    seen_keyed: bool,
}

impl<'k> ChainCheck<'k> {
    /// Starts at record 1 (whose `prev_hash` must be [`GENESIS_HASH`]).
    pub fn from_genesis(key: Option<&'k [u8; 32]>) -> Self {
        Self {
            key,
            expected_id: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            anchor: None,
            seen_keyed: false,
        }
    }

    /// Starts at a trusted head: the first record pushed must be the head's record with the
    /// head's hash; the records before it are not looked at.
    pub fn from_head(head: &ChainHead, key: Option<&'k [u8; 32]>) -> Self {
        Self {
            key,
            expected_id: head.id,
            prev_hash: String::new(),
            anchor: Some(head.hash.clone()),
            seen_keyed: head.hash.starts_with(KEYED_PREFIX),
        }
    }

    /// The id the next record must have.
    pub const fn next_id(&self) -> i64 {
        self.expected_id
    }

    /// Checks the next record.
    ///
    /// # Errors
    /// [`ChainBroken`] at the expected id when the record is not intact.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), ChainBroken> {
        let broken = ChainBroken {
            broken_at_id: self.expected_id,
        };
        if record.id != self.expected_id {
            return Err(broken);
        }
        let linked = match &self.anchor {
            Some(anchor) => record.hash == *anchor,
            None => record.prev_hash == self.prev_hash,
        };
        if !linked || !self.hash_ok(record) {
            return Err(broken);
        }
        self.anchor = None;
        self.seen_keyed |= record.hash.starts_with(KEYED_PREFIX);
        self.prev_hash.clone_from(&record.hash);
        self.expected_id += 1;
        Ok(())
    }

    fn hash_ok(&self, record: &AuditRecord) -> bool {
        if record.hash.starts_with(KEYED_PREFIX) {
            let Some(key) = self.key else {
                return false;
            };
            let expected = record.compute_keyed_hash(key);
            return expected.as_bytes().ct_eq(record.hash.as_bytes()).into();
        }
        !self.seen_keyed && record.compute_hash() == record.hash
    }
}

/// Verifies records given in id order from record 1 against every given head: each head's
/// record must still be there with the head's hash. With `key`, keyed records are checked.
///
/// # Errors
/// [`ChainBroken`] with the first id that fails.
pub fn verify_chain_against<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
    heads: &[ChainHead],
    key: Option<&[u8; 32]>,
) -> Result<(), ChainBroken> {
    let by_id: BTreeMap<i64, &str> = heads.iter().map(|h| (h.id, h.hash.as_str())).collect();
    let mut check = ChainCheck::from_genesis(key);
    for record in records {
        check.push(record)?;
        if by_id.get(&record.id).is_some_and(|h| *h != record.hash) {
            return Err(ChainBroken {
                broken_at_id: record.id,
            });
        }
    }
    match by_id.last_key_value() {
        Some((id, _)) if *id >= check.next_id() => Err(ChainBroken {
            broken_at_id: check.next_id(),
        }),
        _ => Ok(()),
    }
}

//! Audit chain verification over arbitrary JSON lines (the agent's local log format): never
//! panics, a reported break lies inside the chain, and a chain rebuilt honestly verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_audit::{AuditRecord, ChainHead, GENESIS_HASH, verify_chain};

const MAX_RECORDS: usize = 256;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let head: Option<ChainHead> = lines.next().and_then(|l| serde_json::from_str(l).ok());
    let records: Vec<AuditRecord> = lines
        .take(MAX_RECORDS)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if let Err(broken) = verify_chain(&records, head.as_ref()) {
        let len = i64::try_from(records.len()).unwrap_or(i64::MAX);
        let reach = head.as_ref().map_or(len, |h| h.id.max(len));
        assert!(broken.broken_at_id >= 1 && broken.broken_at_id <= reach.saturating_add(1));
    }
    // The same contents chained honestly always verify.
    let mut prev = GENESIS_HASH.to_owned();
    let honest: Vec<AuditRecord> = records
        .iter()
        .zip(1..)
        .map(|(r, id)| {
            let rec = AuditRecord::new(id, r.ts_ms, &r.tenant, &r.actor, &r.event_type, r.details.clone(), prev.clone());
            prev.clone_from(&rec.hash);
            rec
        })
        .collect();
    assert!(verify_chain(&honest, None).is_ok());
});

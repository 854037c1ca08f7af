//! Support-code and agent-key parsing: never panics, and whatever parses prints back to a
//! string that parses to the same credential.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_proto::agent_key::AgentKey;
use reach_proto::support_code::SupportCode;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(code) = SupportCode::parse(text) {
        let printed = code.as_string();
        assert_eq!(printed.len(), 11);
        assert_eq!(SupportCode::parse(&printed).map(|c| c.as_string()).ok(), Some(printed));
    }
    if let Ok(key) = AgentKey::parse(text) {
        let again = AgentKey::parse(key.expose()).expect("a parsed key parses again");
        assert!(key.hash().ct_eq(&again.hash()));
        let stored = key.hash().to_hex();
        assert!(reach_proto::agent_key::AgentKeyHash::from_hex(&stored).is_ok_and(|h| h.ct_eq(&key.hash())));
        let _ = key.display_prefix();
    }
});

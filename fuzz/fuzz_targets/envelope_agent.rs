//! The agent socket's envelope decoding, as the server runs it: the first message before
//! authentication (must be `AgentAuth`, then `AgentHello`), every later one after, each
//! judged by the relay policy. Never panics; whatever decodes re-encodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_proto::codec;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::policy::judge_agent_message;
use reach_proto::v1::envelope::Body;

/// Before authentication only a message the size of the credential is plausible.
const PRE_AUTH_MAX: usize = 8 * 1024;

fuzz_target!(|data: &[u8]| {
    // 0xFE splits the input into successive socket messages.
    let mut parts = data.split(|b| *b == 0xFE);
    if let Some(first) = parts.next() {
        if let Ok(env) = codec::decode(first, PRE_AUTH_MAX) {
            // Only a credential opens the socket; anything else is refused by the server.
            let _ = matches!(env.body, Some(Body::AgentAuth(_)));
            assert_eq!(codec::decode(&codec::encode(&env), PRE_AUTH_MAX).ok(), Some(env));
        }
    }
    for part in parts {
        let Ok(env) = codec::decode(part, AGENT_MAX_MESSAGE) else { continue };
        if let Some(body) = &env.body {
            let _ = judge_agent_message(body);
            let _ = codec::body_name(body);
        }
        assert_eq!(codec::decode(&codec::encode(&env), AGENT_MAX_MESSAGE).ok(), Some(env));
    }
});

//! Token decoding: never panics on any string; only the signer's own tokens decode; a token
//! it signed decodes to the claims it signed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reach_proto::token::{Claims, Purpose, TokenSigner};

fuzz_target!(|data: &[u8]| {
    let signer = TokenSigner::new([7; 32]);
    let other = TokenSigner::new([8; 32]);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = signer.decode(text, 0);
    // Whatever the input says as claims, a foreign key's signature never verifies.
    let claims = Claims {
        purpose: Purpose::Login,
        tenant_id: text.chars().take(64).collect(),
        user_id: String::new(),
        iat: 0,
        exp: i64::from(data.first().copied().unwrap_or(1)) + 1,
        jti: text.chars().rev().take(32).collect(),
        parent_jti: None,
    };
    let signed = signer.sign(&claims);
    if signed.len() <= reach_proto::token::MAX_TOKEN_LEN {
        assert_eq!(signer.decode(&signed, 0).ok(), Some(claims));
        assert!(other.decode(&signed, 0).is_err());
    }
});

//! Signed tokens of the Reach server: format, claims and purposes (pure; no IO).
//!
//! # Format
//! `rt1.<payload>.<mac>` where `payload` is base64url (no padding) of the compact JSON
//! [`Claims`] and `mac` is base64url of `HMAC-SHA256(key, "reach-token-v1." || payload)`.
//! The key is derived from the server secret (kept by the server). Tokens longer than
//! [`MAX_TOKEN_LEN`] are rejected before any decoding.
//!
//! A token carries its [`Purpose`]; every surface verifies for exactly one purpose, so a login
//! token is never accepted where a viewer token is expected and vice versa. Whether a token
//! was revoked is the server's business (its database), not this module's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 2048;
/// How far in the future a token's `iat` may lie (clock skew between server instances).
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;
const PREFIX: &str = "rt1.";
const MAC_CONTEXT: &[u8] = b"reach-token-v1.";

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a Reach token at all (bad shape, encoding, JSON or length).
    #[error("malformed token")]
    Malformed,
    /// The signature does not match (forged or from another server).
    #[error("bad token signature")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued in the future (beyond [`MAX_CLOCK_SKEW_SECS`]): not minted by a sane clock.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Valid, but issued for another purpose than the one this surface accepts.
    #[error("token used for the wrong purpose")]
    WrongPurpose,
}

pub use crate::access::ViewerAccess;

/// What a token may be used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// REST API access for a logged-in user.
    Login,
    /// Joining one session's viewer socket.
    Viewer {
        /// The session the token opens.
        session_id: String,
        /// What the viewer may do (the grant of the one access rule when minted).
        access: ViewerAccess,
        /// USB was granted when minted (the host's switch is checked live by the relay).
        #[serde(default)]
        usb: bool,
    },
}

impl Purpose {
    /// Short name stored in the `auth_tokens` table.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Viewer { .. } => "viewer",
        }
    }
}

/// The signed body of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// What the token may be used for.
    pub purpose: Purpose,
    /// Tenant id.
    pub tenant_id: String,
    /// User id (the technician, for viewer tokens).
    pub user_id: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The login token that minted this one (viewer tokens), revoked together with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_jti: Option<String>,
}

/// Signs and checks tokens with one key.
pub struct TokenSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { key: <redacted> }")
    }
}

impl TokenSigner {
    /// A signer with a 256-bit key.
    pub const fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(MAC_CONTEXT);
        mac.update(payload.as_bytes());
        mac
    }

    /// Encodes and signs `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = self.mac(&payload).finalize().into_bytes();
        format!("{PREFIX}{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Checks shape, signature (in constant time), expiry and issue time at `now_secs`.
    ///
    /// # Errors
    /// [`TokenError::Malformed`], [`TokenError::BadSignature`], [`TokenError::Expired`] or
    /// [`TokenError::IssuedInFuture`].
    pub fn decode(&self, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (payload, tag) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now_secs {
            return Err(TokenError::Expired);
        }
        if claims.iat > now_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            purpose: Purpose::Login,
            tenant_id: "t".into(),
            user_id: "u".into(),
            iat: 0,
            exp,
            jti: "j".into(),
            parent_jti: None,
        }
    }

    #[test]
    fn a_signed_token_decodes_to_its_claims() {
        let signer = TokenSigner::new([7; 32]);
        let token = signer.sign(&claims(100));
        assert_eq!(signer.decode(&token, 50).unwrap(), claims(100));
    }

    #[test]
    fn a_token_from_another_key_is_a_bad_signature() {
        let token = TokenSigner::new([1; 32]).sign(&claims(100));
        let err = TokenSigner::new([2; 32]).decode(&token, 50).unwrap_err();
        assert!(matches!(err, TokenError::BadSignature));
    }

    #[test]
    fn an_edited_payload_is_a_bad_signature() {
        let signer = TokenSigner::new([7; 32]);
        let token = signer.sign(&claims(100));
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(999)).unwrap());
        let tag = token.rsplit('.').next().unwrap();
        let forged = format!("rt1.{forged_payload}.{tag}");
        assert!(matches!(
            signer.decode(&forged, 50),
            Err(TokenError::BadSignature)
        ));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let signer = TokenSigner::new([7; 32]);
        let token = signer.sign(&claims(100));
        assert!(matches!(
            signer.decode(&token, 100),
            Err(TokenError::Expired)
        ));
    }

    #[test]
    fn a_token_issued_in_the_future_beyond_the_skew_is_refused() {
        let signer = TokenSigner::new([7; 32]);
        let mut future = claims(10_000);
        future.iat = 50 + MAX_CLOCK_SKEW_SECS + 1;
        assert!(matches!(
            signer.decode(&signer.sign(&future), 50),
            Err(TokenError::IssuedInFuture)
        ));
        future.iat = 50 + MAX_CLOCK_SKEW_SECS;
        assert!(signer.decode(&signer.sign(&future), 50).is_ok());
    }

    #[test]
    fn garbage_and_oversized_tokens_are_malformed() {
        let signer = TokenSigner::new([7; 32]);
        for bad in ["", "rt1.", "rt1.a", "abc.def.ghi", "rt1.!!!.???"] {
            assert!(
                matches!(signer.decode(bad, 0), Err(TokenError::Malformed)),
                "{bad}"
            );
        }
        let huge = format!("rt1.{}", "a".repeat(MAX_TOKEN_LEN));
        assert!(matches!(
            signer.decode(&huge, 0),
            Err(TokenError::Malformed)
        ));
    }

    #[test]
    fn viewer_purpose_serialises_with_its_session_and_access() {
        let purpose = Purpose::Viewer {
            session_id: "s1".into(),
            access: ViewerAccess::ViewOnly,
            usb: false,
        };
        let json = serde_json::to_string(&purpose).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"viewer","session_id":"s1","access":"view_only","usb":false}"#
        );
    }
}

//! Signed tokens: the format lives in [`reach_proto::token`] (pure, fuzzed); this module adds
//! the server's error type, which also covers revocation (checked against the database by
//! [`crate::auth::tokens`]).

pub use reach_proto::token::{
    Claims, MAX_CLOCK_SKEW_SECS, MAX_TOKEN_LEN, Purpose, TokenSigner, ViewerAccess,
};

/// The format's own refusals (shape, signature, expiry, issue time, purpose).
pub use reach_proto::token::TokenError as FormatError;

/// Why a token was refused: the format's refusal, or what only the server knows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Malformed, forged, expired, issued in the future or for another purpose.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Revoked (logout, password change, user removal) or unknown to the server.
    #[error("token revoked")]
    Revoked,
    /// The revocation list could not be read.
    #[error("database error while checking the token")]
    Database(#[from] sqlx::Error),
}

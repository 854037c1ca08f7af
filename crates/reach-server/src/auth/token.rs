//! Signed tokens: the format lives in [`reach_proto::token`] (pure, fuzzed); this module adds
//! the server's error type, which also covers revocation (checked against the database by
//! [`crate::auth::tokens`]).

pub use reach_proto::token::{
    Claims, MAX_CLOCK_SKEW_SECS, MAX_TOKEN_LEN, Purpose, TokenSigner, ViewerAccess,
};

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
    /// Issued in the future (beyond [`MAX_CLOCK_SKEW_SECS`]).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Valid, but issued for another purpose than the one this surface accepts.
    #[error("token used for the wrong purpose")]
    WrongPurpose,
    /// Revoked (logout, password change, user removal) or unknown to the server.
    #[error("token revoked")]
    Revoked,
    /// The revocation list could not be read.
    #[error("database error while checking the token")]
    Database(#[from] sqlx::Error),
}

impl From<reach_proto::token::TokenError> for TokenError {
    fn from(err: reach_proto::token::TokenError) -> Self {
        use reach_proto::token::TokenError as Format;
        match err {
            Format::BadSignature => Self::BadSignature,
            Format::Expired => Self::Expired,
            Format::IssuedInFuture => Self::IssuedInFuture,
            Format::WrongPurpose => Self::WrongPurpose,
            _ => Self::Malformed,
        }
    }
}

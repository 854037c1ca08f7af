//! Identity: password hashing, signed tokens and their revocation, permissions.

pub mod password;
pub mod permissions;
pub mod token;
pub mod tokens;

//! WebSocket close codes used by the server, and what they mean to a client.
//!
//! 1xxx codes are RFC 6455's; 4xxx are Reach's own (4000–4999 is the private range).
//! Clients branch on them: an agent stops retrying on [`UNAUTHORIZED`] and
//! [`REVOKED`], and retries with backoff on everything else.

/// Normal closure.
pub const NORMAL: u16 = 1000;
/// The server is shutting down.
pub const GOING_AWAY: u16 = 1001;
/// Oversized frame or a message that breaks the rules (RFC 6455 policy violation).
pub const POLICY: u16 = 1008;
/// Credential missing, malformed, wrong kind, unknown, expired or already used.
pub const UNAUTHORIZED: u16 = 4401;
/// Credential valid but not for this (e.g. a viewer token for another session).
pub const FORBIDDEN: u16 = 4403;
/// The session does not exist or has ended.
pub const SESSION_ENDED: u16 = 4404;
/// The `Origin` header is not the server's public URL.
pub const BAD_ORIGIN: u16 = 4400;
/// The credential was revoked while the socket was open.
pub const REVOKED: u16 = 4410;
/// Another connection took over this machine.
pub const REPLACED: u16 = 4409;
/// Consent was denied, timed out or the prompt closed.
pub const CONSENT_DENIED: u16 = 4430;
/// The client did not authenticate in time.
pub const AUTH_TIMEOUT: u16 = 4408;

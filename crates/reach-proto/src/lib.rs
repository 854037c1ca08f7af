//! Wire messages shared by the Reach agent, server and viewers, and the sans-IO rules
//! that go with them.
//!
//! Sans-IO: this crate defines, encodes and checks messages and credentials; it never
//! touches sockets or clocks. Time is always passed in as an [`std::time::Instant`].
//!
//! # Layout
//! - [`v1`]: types generated from `proto/reach/v1/envelope.proto` (one [`v1::Envelope`]
//!   per WebSocket binary message).
//! - [`codec`]: size-capped encode/decode of envelopes.
//! - [`limits`]: every bound on wire input, in one place.
//! - [`close`]: WebSocket close codes the server uses.
//! - [`support_code`], [`agent_key`]: the two agent credentials; [`token`]: the signed
//!   login and viewer tokens.
//! - [`access`]: what a viewer may do in a session (the one access rule).
//! - [`policy`]: what a viewer may send, by grant (the allow-list).
//! - [`rate`]: token bucket for viewer input.
//! - [`consent`]: the consent state machine.
//!
//! # Example
//! ```
//! use reach_proto::{codec, limits, v1};
//! let hello = v1::Envelope {
//!     body: Some(v1::envelope::Body::AgentHello(v1::AgentHello {
//!         agent_version: "0.1.0".into(),
//!         ..Default::default()
//!     })),
//!     ..Default::default()
//! };
//! let bytes = codec::encode(&hello);
//! let back = codec::decode(&bytes, limits::AGENT_MAX_MESSAGE).unwrap();
//! assert_eq!(back, hello);
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod access;
pub mod agent_key;
pub mod bus;
pub mod close;
pub mod codec;
pub mod consent;
pub mod limits;
pub mod policy;
pub mod rate;
pub mod support_code;
pub mod token;

/// Version 1 of the wire protocol, generated from `proto/reach/v1/envelope.proto`.
///
/// Field numbers are additive-only; see `docs/wire-protocol.md`.
#[allow(missing_docs, clippy::all, unreachable_pub)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/reach.v1.rs"));
}

//! The Reach agent: connects out to the server over WebSocket, authenticates with an
//! agent key (managed) or a support code (attended), answers consent prompts, and
//! relays session traffic.
//!
//! # Layout
//! - [`agent`]: the connection loop ([`spawn`], [`run`]) and its [`AgentEvent`]s.
//! - [`config`]: [`AgentConfig`] and [`Credential`].
//! - [`consent`]: prompt providers behind [`consent::ConsentPrompt`].
//! - [`backoff`]: capped exponential reconnect delays with jitter (sans-IO).
//! - socket code and the viewer client come from `reach-client` (re-exported as [`ws`] and
//!   [`viewer`]).
//! - [`usb`]: USB passthrough through live sessions (one host session per viewer).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), reach_agent::ClientError> {
//! use reach_agent::{AgentConfig, Credential, consent::DenyAll};
//! use reach_proto::agent_key::AgentKey;
//! let key = AgentKey::parse(&std::env::var("REACH_AGENT_KEY").unwrap_or_default())
//!     .expect("a cak_ key");
//! let config = AgentConfig::new(
//!     "https://reach.example.com".into(),
//!     Credential::Key(key),
//!     std::sync::Arc::new(DenyAll),
//! );
//! let mut agent = reach_agent::spawn(config);
//! while let Some(event) = agent.events.recv().await {
//!     println!("{event:?}");
//! }
//! agent.join().await
//! # }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod agent;
pub mod backoff;
pub mod config;
pub mod consent;
pub mod desktop;
pub mod usb;
/// The technician's client (REST, viewer sockets, USB channel) lives in `reach-client`; these
/// names stay for code written against the agent crate.
pub use reach_client::{viewer, ws};

pub use agent::{AgentEvent, AgentHandle, run, spawn};
pub use config::{AgentConfig, Credential};
pub use reach_client::ClientError;

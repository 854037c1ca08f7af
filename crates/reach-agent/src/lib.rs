//! The Reach agent: connects out to the server over WebSocket, authenticates with an
//! agent key (managed) or a support code (attended), answers consent prompts, and
//! relays session traffic. Also a small viewer client used by tests and the CLI.
//!
//! # Layout
//! - [`agent`]: the connection loop ([`spawn`], [`run`]) and its [`AgentEvent`]s.
//! - [`config`]: [`AgentConfig`] and [`Credential`].
//! - [`consent`]: prompt providers behind [`consent::ConsentPrompt`].
//! - [`backoff`]: capped exponential reconnect delays with jitter (sans-IO).
//! - [`ws`]: the only socket code: connect, send and receive envelopes.
//! - [`usb`]: USB passthrough through live sessions (one host session per viewer).
//! - [`viewer`]: viewer client: log in, mint a viewer token, join a session.
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
mod error;
pub mod usb;
pub mod viewer;
pub mod ws;

pub use agent::{AgentEvent, AgentHandle, run, spawn};
pub use config::{AgentConfig, Credential};
pub use error::ClientError;

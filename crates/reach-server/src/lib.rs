//! The Reach server: REST API, identity, database and audit log.
//!
//! # Layout
//! - [`config`]: the one configuration loader (defaults → TOML file → flags/env).
//! - [`state`]: [`AppState`], built once by [`AppState::open`] (database, migrations, secret,
//!   first-start bootstrap) and shared by every handler.
//! - [`http`]: one module per feature exposing `router()`, merged in [`http::router`]; the
//!   one [`http::Error`]; extractors [`http::AuthUser`] and [`http::ClientIp`]; the rate-limit
//!   layer [`http::limit`].
//! - [`auth`]: Argon2id passwords, signed tokens with purposes, revocation, permissions.
//! - [`audit`]: the hash-chained audit log (scheme from `reach-audit`).
//! - [`users`], [`tenants`]: storage. [`db`]: pool, migrations, portable-SQL helpers.
//! - [`login_backoff`]: per-account login backoff that slows, never locks.
//! - [`counters`]: rate-limit, lockout and backoff counters shared by every instance.
//! - [`ratelimit`], [`client_ip`], [`metrics`], [`secrets`]: small pure building blocks.
//! - [`conn`]: per-IP connection caps and the pre-authentication read budget.
//! - [`server`]: binding (plain or TLS), background tasks, graceful shutdown.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = reach_server::Config::for_tests(std::path::Path::new("/tmp/reach"));
//! let (state, _first_start) = reach_server::AppState::open(config).await?;
//! let running = reach_server::server::start(state).await?;
//! println!("listening on {}", running.url());
//! running.shutdown().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod bus;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod console_events;
pub mod counters;
pub mod db;
pub mod http;
pub mod instances;
pub mod login_backoff;
pub mod metrics;
pub mod ratelimit;
pub mod read_ahead;
pub mod relay;
pub mod secrets;
pub mod server;
pub mod state;
pub mod tenants;
pub mod usb_attached;
pub mod users;
pub mod ws;

pub use config::{Config, ConfigOverrides};
pub use state::AppState;

/// The application router for `state` (see [`http::router`]).
pub fn app(state: AppState) -> axum::Router {
    http::router(state)
}

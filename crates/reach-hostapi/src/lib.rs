//! The host-local USB REST API (SPEC §9.9): the same operations as `reach usb …`, action files
//! and MCP — every handler calls `reach_usb::ops::HostOp::run` or `reach_usb::tools` — over HTTP
//! on the agent machine, behind a bearer token kept in the config directory.
//!
//! Served by `reach usb serve` (default `127.0.0.1:9939`) and `reach agent --usb-api ADDR`.
//! Non-loopback addresses need TLS. ACL export/import stay CLI-only.

pub mod error;
pub mod events;
mod routes;
pub mod server;
pub mod sources;
pub mod token;

pub use error::ApiError;
pub use server::{ApiConfig, DEFAULT_LISTEN, RunningApi, openapi, start};

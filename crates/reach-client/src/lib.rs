//! The client side of a Reach server, in one place: REST calls ([`viewer::ApiClient`]), the
//! technician's stored login ([`login::Login`]), the WebSocket code every agent and viewer
//! connection uses ([`ws`]), a viewer's connection to a live session
//! ([`viewer::ViewerConnection`], [`viewer::LiveViewer`]) and the USB channel that rides it
//! ([`viewer::LiveViewer::usb_client`]).
//!
//! The agent, the `reach` command, the benchmarks and automation all use this crate; none of
//! them keeps its own copy of the REST helpers.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), reach_client::ClientError> {
//! use reach_client::viewer::ApiClient;
//! let mut api = ApiClient::new("https://reach.example.com")?;
//! api.login("alice", "a password").await?;
//! let mut live = api.join("a-session-id").await?.into_live();
//! let usb = live.usb_client().expect("the session's USB channel");
//! println!("{:?}", usb.list().await);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod actions;
mod error;
pub mod login;
pub mod ops;
pub mod remote;
pub mod viewer;
pub mod ws;

pub use error::ClientError;

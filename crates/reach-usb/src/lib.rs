//! USB passthrough (SPEC §9): protocol, host session, client, ACL, backends and local audit.
//!
//! The protocol and both sessions are sans-IO state machines in the `reach-usb-proto` crate
//! (no async runtime): input through `handle_*(now, …)`, output through `poll_*`, time always
//! passed in. This crate re-exports them under the same paths and adds the edges: async drivers,
//! transports, device backends, the signed ACL file and the local audit log.
//!
//! # Layout
//! - [`limits`], [`proto`], [`host`], [`error`]: re-exported from `reach-usb-proto`.
//! - [`client`]: the consumer-side session (re-exported) and the async [`client::UsbClient`].
//! - [`backend`]: the backend trait, the scriptable `fake` device and the Linux `nusb` backend.
//! - [`net`]: message transports (in-memory, TCP, delaying) and the host driver.
//! - [`acl`]: the signed ACL file and the one permission check, [`acl::UsbAcl::decide`].
//! - [`audit`]: the host's local hash-chained audit log.
//! - [`enablement`]: the passthrough on/off switch.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod backend;
pub mod client;
pub mod net;

pub use reach_usb_proto::{error, host, limits, proto};

pub use error::UsbError;
pub mod acl;
pub mod bench;
pub mod enablement;
pub mod ops;
pub mod tools;

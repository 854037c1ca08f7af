//! The sans-IO core of USB passthrough (SPEC §9): no sockets, no tasks, no async runtime.
//!
//! Both sessions are state machines: input through `handle_*(now, …)`, output through
//! `poll_*`, time always passed in. The async drivers, transports and device backends live in
//! `reach-usb`, which re-exports every module here under the same path; the fuzz targets depend
//! on this crate alone.
//!
//! # Layout
//! - [`limits`]: every bound on network input.
//! - [`proto`]: frames, fragmentation, reassembly, flow control, binary and JSON bodies.
//! - [`host`]: the device-side session ([`host::HostSession`]).
//! - [`client`]: the consumer-side session ([`client::ClientSession`]).
//! - [`acl`]: ACL rules and the one permission check, [`acl::UsbAcl::decide`].
//! - [`error`]: the client-facing error type.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod acl;
pub mod client;
pub mod error;
pub mod host;
pub mod limits;
pub mod proto;

pub use error::UsbError;

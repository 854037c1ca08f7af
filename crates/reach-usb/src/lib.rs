//! USB passthrough (SPEC §9): protocol, host session, client, ACL, backends and local audit.
//!
//! The protocol and both sessions are sans-IO state machines: input through `handle_*(now, …)`,
//! output through `poll_*`, time always passed in. Async drivers, transports and device backends
//! sit at the edges.
//!
//! # Layout
//! - [`limits`]: every bound on network input.
//! - [`proto`]: frames, fragmentation, reassembly, binary and JSON bodies.
//! - [`host`]: the device-side session ([`host::HostSession`]).
//! - [`client`]: the consumer-side session and the async [`client::UsbClient`].
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
pub mod error;
pub mod host;
pub mod limits;
pub mod net;
pub mod proto;

pub use error::UsbError;
pub mod acl;
pub mod bench;
pub mod enablement;
pub mod tools;

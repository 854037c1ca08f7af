//! `reach usb attach`: a device shared by a Reach host appears in this machine's kernel through
//! USB/IP's virtual host controller (`vhci-hcd`), so ordinary drivers use it.
//!
//! The kernel's USB/IP tools are not used: vhci gets one end of a socket pair, and the other end
//! is translated to the Reach USB protocol (`reach-usb`'s [`reach_usb::client::UsbHandle`]).
//!
//! # Layout
//! - [`wire`]: USB/IP message encode/decode (sans-IO, bounded).
//! - [`errno`]: Reach status ↔ URB status table.
//! - [`request`]: a URB in Reach terms; the endpoint table.
//! - [`translator`]: the sans-IO state machine between vhci and a Reach claim.
//! - [`interrupt`]: interrupt IN URBs served from Reach receive streams (sans-IO).
//! - [`vhci`]: vhci-hcd's sysfs files (ports, attach, detach, device nodes).
//! - [`pump`]: the async driver running a translator between vhci's socket and a claim.
//! - [`attach`]: `reach usb attach` (claim, attach, pump, detach).
//! - [`serve`]: `reach usb serve`, a host over TCP for `--via tcp://`.
#![warn(missing_docs)]

pub mod attach;
pub mod counters;
pub mod errno;
pub mod interrupt;
pub mod pump;
pub mod request;
pub mod serve;
pub mod translator;
pub mod vhci;
pub mod wire;

pub use request::{EndpointKind, EndpointTable, Submit, SubmitKind};
pub use translator::{Completion, Event, Translator};

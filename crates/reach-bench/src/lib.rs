//! The bodies of `reach bench …`: each module runs one benchmark against real parts (a real
//! server with a fresh SQLite database, real agent and viewer connections over loopback, a real
//! X display where screens are involved; the fake USB device is the only fake) and prints its
//! figures with units. `reach-cli` only parses the arguments and calls [`run`](api::run) and
//! friends; [`local`] holds the local server + agent helpers the demo shares.
#![forbid(unsafe_code)]

pub mod api;
pub mod direct;
pub mod latency;
pub mod link;
pub mod local;
pub mod media;
pub mod motion;
pub mod relay;
mod relay_cross;
pub mod server_process;
pub mod usb;
pub mod usb_relay;

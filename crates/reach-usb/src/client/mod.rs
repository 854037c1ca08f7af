//! The consumer side: the sans-IO [`ClientSession`] (from `reach-usb-proto`) and the async
//! [`UsbClient`] over it.

mod api;
mod driver;

pub use api::{PendingTransfer, StreamReceiver, UsbClient, UsbHandle};
pub use reach_usb_proto::client::{ClientEvent, ClientSession};

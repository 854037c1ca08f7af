//! The consumer side: the sans-IO [`ClientSession`] and the async [`UsbClient`] over it.

mod api;
mod driver;
mod session;

pub use api::{PendingTransfer, StreamReceiver, UsbClient, UsbHandle};
pub use session::{ClientEvent, ClientSession};

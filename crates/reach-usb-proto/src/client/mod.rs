//! The consumer side without IO: [`ClientSession`], a state machine mirroring
//! [`crate::host::HostSession`]. The async `UsbClient` over it lives in `reach-usb`.

mod session;

pub use session::{ClientEvent, ClientSession};

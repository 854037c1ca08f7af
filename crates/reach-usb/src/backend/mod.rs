//! Device backends behind one trait (SPEC §9.7).
//!
//! A backend lists devices, opens one by bus id and reports hotplug events; an opened device runs
//! transfers and configuration operations as futures. Cancelling a transfer is dropping its future,
//! so a backend must release the transfer when dropped. Nothing here may block the runtime.
//!
//! - [`fake`]: a scriptable in-process device for tests, demos and benchmarks.
//! - [`usbfs`]: Linux usbfs through `nusb` (chosen in [`system_backend`]).

pub mod fake;
pub mod usbfs;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::mpsc;

use crate::proto::{ConfigOp, DeviceInfo, TransferReply, TransferRequest, TransferStatus};

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Backend failures a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No USB bus on this machine (no `/sys/bus/usb`): listing returns nothing.
    #[error("no USB bus on this machine")]
    NoBus,
    /// The device is gone.
    #[error("device {0} is not connected")]
    NoDevice(String),
    /// The device is held by someone else.
    #[error("device {0} is busy (claimed by another program or session)")]
    Busy(String),
    /// The OS refused access.
    #[error("permission denied opening {0}: run as a user with access to /dev/bus/usb")]
    PermissionDenied(String),
    /// Any other OS error.
    #[error("USB I/O error: {0}")]
    Io(String),
}

/// A hotplug event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotplugEvent {
    /// A device appeared.
    Added(DeviceInfo),
    /// A device disappeared.
    Removed(DeviceInfo),
}

/// A source of USB devices.
pub trait UsbBackend: Send + Sync + 'static {
    /// Short name (`fake`, `usbfs`).
    fn name(&self) -> &'static str;
    /// Lists connected devices.
    fn list(&self) -> BoxFuture<'_, Result<Vec<DeviceInfo>, BackendError>>;
    /// Opens a device by bus id, detaching kernel drivers of the interfaces it claims.
    fn open(&self, bus_id: &str) -> BoxFuture<'_, Result<Arc<dyn UsbDevice>, BackendError>>;
    /// Subscribes to hotplug events, if the backend supports them.
    fn watch(&self) -> Option<mpsc::UnboundedReceiver<HotplugEvent>>;
}

/// An opened device.
pub trait UsbDevice: Send + Sync + 'static {
    /// Full description (as in OPENED).
    fn info(&self) -> DeviceInfo;
    /// Runs one transfer. Backends queue it on the device when called (not when first polled),
    /// so transfers on one endpoint keep their submission order. Dropping the future cancels it.
    fn transfer(self: Arc<Self>, request: TransferRequest) -> BoxFuture<'static, TransferReply>;
    /// Runs a configuration operation.
    fn configure(self: Arc<Self>, op: ConfigOp) -> BoxFuture<'static, TransferStatus>;
    /// Releases the device and re-attaches exactly the kernel drivers detached on open.
    fn close(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

/// The backend for real devices on this OS.
pub fn system_backend() -> Arc<dyn UsbBackend> {
    Arc::new(usbfs::UsbfsBackend::new())
}

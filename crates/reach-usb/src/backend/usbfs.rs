//! Linux usbfs backend (placeholder until the nusb backend lands): reports whether a bus exists.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{BackendError, BoxFuture, HotplugEvent, UsbBackend, UsbDevice};
use crate::proto::DeviceInfo;

/// Real devices through the OS.
#[derive(Debug, Default)]
pub struct UsbfsBackend;

impl UsbfsBackend {
    /// Creates the backend.
    pub fn new() -> Self {
        Self
    }
}

/// Whether this machine has a USB bus at all.
pub fn has_usb_bus() -> bool {
    std::path::Path::new("/sys/bus/usb/devices").exists()
}

impl UsbBackend for UsbfsBackend {
    fn name(&self) -> &'static str {
        "usbfs"
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<DeviceInfo>, BackendError>> {
        Box::pin(async {
            if has_usb_bus() {
                Err(BackendError::Io("usbfs backend not built yet".into()))
            } else {
                Err(BackendError::NoBus)
            }
        })
    }

    fn open(&self, bus_id: &str) -> BoxFuture<'_, Result<Arc<dyn UsbDevice>, BackendError>> {
        let bus_id = bus_id.to_owned();
        Box::pin(async move { Err(BackendError::NoDevice(bus_id)) })
    }

    fn watch(&self) -> Option<mpsc::UnboundedReceiver<HotplugEvent>> {
        None
    }
}

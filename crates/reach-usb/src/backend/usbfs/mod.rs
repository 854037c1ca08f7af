//! Real devices through the OS with `nusb` (Linux usbfs; nusb also covers Windows and macOS).
//!
//! On open every interface of the active configuration is claimed; on Linux the kernel driver of
//! each interface that had one is detached first, and exactly those are re-attached on close, after
//! every interface has been released. Bulk and
//! interrupt endpoints are driven by one task each ([`endpoint`]), so transfers never block the
//! runtime; a disconnected device turns every pending transfer into `no_device`.

mod endpoint;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nusb::transfer::{ControlIn, ControlOut, ControlType, Recipient, TransferError};
use tokio::sync::mpsc;

use super::{BackendError, BoxFuture, HotplugEvent, UsbBackend, UsbDevice};
use crate::proto::{
    ConfigOp, DeviceInfo, EndpointInfo, InterfaceInfo, Setup, TransferKind, TransferReply,
    TransferRequest, TransferStatus,
};
use endpoint::EndpointHandle;

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
    !cfg!(target_os = "linux") || std::path::Path::new("/sys/bus/usb/devices").exists()
}

fn map_error(e: &nusb::Error, bus_id: &str) -> BackendError {
    match e.kind() {
        nusb::ErrorKind::Disconnected | nusb::ErrorKind::NotFound => {
            BackendError::NoDevice(bus_id.to_owned())
        }
        nusb::ErrorKind::Busy => BackendError::Busy(bus_id.to_owned()),
        nusb::ErrorKind::PermissionDenied => BackendError::PermissionDenied(bus_id.to_owned()),
        _ => BackendError::Io(e.to_string()),
    }
}

pub(crate) fn map_transfer_error(e: TransferError) -> TransferStatus {
    match e {
        TransferError::Cancelled => TransferStatus::Cancelled,
        TransferError::Stall => TransferStatus::Stall,
        TransferError::Disconnected => TransferStatus::NoDevice,
        TransferError::InvalidArgument => TransferStatus::Invalid,
        TransferError::Fault | TransferError::Unknown(_) => TransferStatus::IoError,
    }
}

fn speed_name(speed: Option<nusb::Speed>) -> String {
    match speed {
        Some(nusb::Speed::Low) => "low",
        Some(nusb::Speed::Full) => "full",
        Some(nusb::Speed::High) => "high",
        Some(nusb::Speed::Super) => "super",
        Some(nusb::Speed::SuperPlus) => "super_plus",
        _ => "unknown",
    }
    .into()
}

/// The Linux sysfs name of a device: `<bus>-<port>.<port>…` (`usb<bus>` for a root hub).
fn bus_id_of(d: &nusb::DeviceInfo) -> String {
    let chain: Vec<String> = d.port_chain().iter().map(u8::to_string).collect();
    if chain.is_empty() {
        format!("usb{}", d.busnum())
    } else {
        format!("{}-{}", d.busnum(), chain.join("."))
    }
}

fn describe(d: &nusb::DeviceInfo) -> DeviceInfo {
    let bus_id = bus_id_of(d);
    let interfaces = d
        .interfaces()
        .map(|i| InterfaceInfo {
            number: i.interface_number(),
            alt: 0,
            class: i.class(),
            subclass: i.subclass(),
            protocol: i.protocol(),
            endpoints: vec![],
        })
        .collect();
    DeviceInfo {
        port_path: bus_id.clone(),
        bus_id,
        vendor_id: d.vendor_id(),
        product_id: d.product_id(),
        serial: d.serial_number().map(str::to_owned),
        manufacturer: d.manufacturer_string().map(str::to_owned),
        product: d.product_string().map(str::to_owned),
        speed: speed_name(d.speed()),
        bcd_device: d.device_version(),
        class: d.class(),
        subclass: d.subclass(),
        protocol: d.protocol(),
        active_configuration: 0,
        interfaces,
    }
}

/// Fills interfaces (every alt setting, with endpoints) from the active configuration.
fn describe_open(base: &DeviceInfo, device: &nusb::Device) -> DeviceInfo {
    let mut info = base.clone();
    if let Ok(config) = device.active_configuration() {
        info.active_configuration = config.configuration_value();
        info.interfaces = config
            .interface_alt_settings()
            .map(|alt| InterfaceInfo {
                number: alt.interface_number(),
                alt: alt.alternate_setting(),
                class: alt.class(),
                subclass: alt.subclass(),
                protocol: alt.protocol(),
                endpoints: alt
                    .endpoints()
                    .map(|e| EndpointInfo {
                        address: e.address(),
                        kind: format!("{:?}", e.transfer_type()).to_lowercase(),
                        max_packet_size: e.max_packet_size() as u16,
                        interval: e.interval(),
                    })
                    .collect(),
            })
            .collect();
    }
    info
}

async fn list_raw() -> Result<Vec<nusb::DeviceInfo>, BackendError> {
    if !has_usb_bus() {
        return Err(BackendError::NoBus);
    }
    let devices = nusb::list_devices()
        .await
        .map_err(|e| BackendError::Io(e.to_string()))?;
    Ok(devices.collect())
}

/// Whether the kernel has a driver bound to an interface (Linux sysfs).
fn has_kernel_driver(bus_id: &str, config: u8, interface: u8) -> bool {
    std::path::Path::new(&format!(
        "/sys/bus/usb/devices/{bus_id}:{config}.{interface}/driver"
    ))
    .exists()
}

impl UsbBackend for UsbfsBackend {
    fn name(&self) -> &'static str {
        "usbfs"
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<DeviceInfo>, BackendError>> {
        Box::pin(async { Ok(list_raw().await?.iter().map(describe).collect()) })
    }

    fn open(&self, bus_id: &str) -> BoxFuture<'_, Result<Arc<dyn UsbDevice>, BackendError>> {
        let bus_id = bus_id.to_owned();
        Box::pin(async move {
            let raw = list_raw()
                .await?
                .into_iter()
                .find(|d| bus_id_of(d) == bus_id)
                .ok_or_else(|| BackendError::NoDevice(bus_id.clone()))?;
            let base = describe(&raw);
            let device = raw.open().await.map_err(|e| map_error(&e, &bus_id))?;
            let info = describe_open(&base, &device);
            let mut numbers: Vec<u8> = info.interfaces.iter().map(|i| i.number).collect();
            numbers.dedup();
            let mut interfaces = HashMap::new();
            let mut detached = Vec::new();
            for n in numbers {
                // Detach first and claim plainly, so release does not re-probe drivers one
                // interface at a time (a CDC-ACM driver needs both of its interfaces free).
                if has_kernel_driver(&bus_id, info.active_configuration, n) {
                    device
                        .detach_kernel_driver(n)
                        .map_err(|e| map_error(&e, &bus_id))?;
                    detached.push(n);
                }
                let interface = device
                    .claim_interface(n)
                    .await
                    .map_err(|e| map_error(&e, &bus_id));
                match interface {
                    Ok(i) => drop(interfaces.insert(n, i)),
                    Err(e) => {
                        drop(interfaces);
                        reattach(&device, &detached);
                        return Err(e);
                    }
                }
            }
            tracing::info!(bus_id, ?detached, "usb device opened");
            Ok(Arc::new(OpenUsbfs {
                info,
                device,
                interfaces: Mutex::new(interfaces),
                detached,
                endpoints: Mutex::new(HashMap::new()),
            }) as Arc<dyn UsbDevice>)
        })
    }

    fn watch(&self) -> Option<mpsc::UnboundedReceiver<HotplugEvent>> {
        if !has_usb_bus() {
            return None;
        }
        let watch = nusb::watch_devices().ok()?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(endpoint::forward_hotplug(watch, tx));
        Some(rx)
    }
}

struct OpenUsbfs {
    info: DeviceInfo,
    device: nusb::Device,
    interfaces: Mutex<HashMap<u8, nusb::Interface>>,
    /// Interfaces whose kernel driver was detached on open: re-attached on close.
    detached: Vec<u8>,
    endpoints: Mutex<HashMap<u8, EndpointHandle>>,
}

/// Re-attaches the kernel drivers of exactly these interfaces.
fn reattach(device: &nusb::Device, interfaces: &[u8]) {
    for n in interfaces {
        if let Err(e) = device.attach_kernel_driver(*n) {
            tracing::warn!(interface = n, error = %e, "re-attaching the kernel driver failed");
        }
    }
}

impl OpenUsbfs {
    /// The endpoint's driver task, started on first use.
    fn endpoint(&self, address: u8) -> Result<EndpointHandle, TransferStatus> {
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = endpoints.get(&address).filter(|h| !h.is_closed()) {
            return Ok(h.clone());
        }
        let interfaces = self
            .interfaces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let handle = interfaces
            .values()
            .find_map(|i| EndpointHandle::open(i, address))
            .ok_or(TransferStatus::Invalid)?;
        endpoints.insert(address, handle.clone());
        Ok(handle)
    }

    async fn control(&self, setup: Setup, req: &TransferRequest) -> TransferReply {
        let control_type = match (setup.request_type >> 5) & 3 {
            0 => ControlType::Standard,
            1 => ControlType::Class,
            _ => ControlType::Vendor,
        };
        let recipient = match setup.request_type & 0x1f {
            0 => Recipient::Device,
            1 => Recipient::Interface,
            2 => Recipient::Endpoint,
            _ => Recipient::Other,
        };
        let timeout = if req.timeout_ms == 0 {
            Duration::from_secs(30)
        } else {
            Duration::from_millis(u64::from(req.timeout_ms))
        };
        if setup.is_in() {
            let c = ControlIn {
                control_type,
                recipient,
                request: setup.request,
                value: setup.value,
                index: setup.index,
                length: setup.length,
            };
            match self.device.control_in(c, timeout).await {
                Ok(data) => TransferReply {
                    status: TransferStatus::Ok,
                    actual_length: data.len() as u32,
                    data: Bytes::from(data),
                },
                Err(e) => TransferReply::status(map_transfer_error(e)),
            }
        } else {
            let c = ControlOut {
                control_type,
                recipient,
                request: setup.request,
                value: setup.value,
                index: setup.index,
                data: &req.data,
            };
            match self.device.control_out(c, timeout).await {
                Ok(()) => TransferReply {
                    status: TransferStatus::Ok,
                    actual_length: req.data.len() as u32,
                    data: Bytes::new(),
                },
                Err(e) => TransferReply::status(map_transfer_error(e)),
            }
        }
    }

    /// Starts a transfer: bulk/interrupt transfers are queued on their endpoint immediately, in
    /// call order; the returned future waits for the reply.
    fn start(self: Arc<Self>, req: TransferRequest) -> BoxFuture<'static, TransferReply> {
        let address = match req.kind {
            TransferKind::Control(setup) => {
                return Box::pin(async move { self.control(setup, &req).await });
            }
            TransferKind::Bulk(ep) | TransferKind::Interrupt(ep) => ep,
        };
        let queued = self.endpoint(address).map(|handle| handle.submit(req));
        Box::pin(async move {
            let reply = match queued {
                Ok(reply) => reply.await,
                Err(status) => TransferReply::status(status),
            };
            if reply.status == TransferStatus::IoError && self.gone().await {
                return TransferReply::status(TransferStatus::NoDevice);
            }
            reply
        })
    }

    /// Whether the device left the bus. A hot-unplug can fail pending URBs with a protocol
    /// error just before the kernel removes the device, so look for up to ~250 ms.
    async fn gone(&self) -> bool {
        let path = format!("/sys/bus/usb/devices/{}", self.info.bus_id);
        for _ in 0..10 {
            if !std::path::Path::new(&path).exists() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    async fn configure_op(self: Arc<Self>, op: ConfigOp) -> TransferStatus {
        let status_of = |r: Result<(), nusb::Error>| match r {
            Ok(()) => TransferStatus::Ok,
            Err(e) if e.kind() == nusb::ErrorKind::Disconnected => TransferStatus::NoDevice,
            Err(_) => TransferStatus::Stall,
        };
        match op {
            ConfigOp::SetConfiguration(c) if c == self.info.active_configuration => {
                TransferStatus::Ok
            }
            ConfigOp::SetConfiguration(c) => status_of(self.device.set_configuration(c).await),
            ConfigOp::SetInterface(i, alt) => {
                self.drop_endpoints_of(i);
                let interface = self
                    .interfaces
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&i)
                    .cloned();
                match interface {
                    Some(interface) => status_of(interface.set_alt_setting(alt).await),
                    None => TransferStatus::Invalid,
                }
            }
            ConfigOp::ClearHalt(ep) => match self.endpoint(ep) {
                Ok(handle) => handle.clear_halt().await,
                Err(status) => status,
            },
            ConfigOp::Reset => status_of(self.device.reset().await),
        }
    }

    fn drop_endpoints_of(&self, interface: u8) {
        let addresses: Vec<u8> = self
            .info
            .interfaces
            .iter()
            .filter(|i| i.number == interface)
            .flat_map(|i| i.endpoints.iter().map(|e| e.address))
            .collect();
        let mut endpoints = self
            .endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        addresses.iter().for_each(|a| drop(endpoints.remove(a)));
    }
}

impl UsbDevice for OpenUsbfs {
    fn info(&self) -> DeviceInfo {
        self.info.clone()
    }

    fn transfer(self: Arc<Self>, request: TransferRequest) -> BoxFuture<'static, TransferReply> {
        self.start(request)
    }

    fn configure(self: Arc<Self>, op: ConfigOp) -> BoxFuture<'static, TransferStatus> {
        Box::pin(self.configure_op(op))
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let handles: Vec<EndpointHandle> = self
                .endpoints
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain()
                .map(|(_, h)| h)
                .collect();
            for h in handles {
                h.shutdown().await;
            }
            let interfaces: Vec<(u8, nusb::Interface)> = self
                .interfaces
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .drain()
                .collect();
            for (n, interface) in interfaces {
                if let Err(e) = interface.release().await {
                    tracing::warn!(interface = n, error = %e, "USB interface release");
                }
            }
            // All interfaces are free now, so multi-interface drivers can bind again.
            reattach(&self.device, &self.detached);
            tracing::info!(bus_id = %self.info.bus_id, "usb device released");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_machine_without_usb_bus_lists_nothing_and_reports_no_bus() {
        let backend = UsbfsBackend::new();
        match backend.list().await {
            Err(BackendError::NoBus) => assert!(!has_usb_bus()),
            Ok(devices) => assert!(
                has_usb_bus(),
                "listed {} devices without a bus",
                devices.len()
            ),
            Err(other) => panic!("listing failed: {other}"),
        }
        if !has_usb_bus() {
            assert!(backend.watch().is_none());
            assert!(matches!(
                backend.open("1-1").await,
                Err(BackendError::NoBus)
            ));
        }
    }

    #[test]
    fn short_in_buffers_round_up_and_excess_is_overflow() {
        assert_eq!(
            endpoint::in_reply(vec![1, 2, 3], 3, 8).status,
            TransferStatus::Ok
        );
        assert_eq!(
            endpoint::in_reply(vec![0; 512], 512, 100).status,
            TransferStatus::Overflow
        );
        assert_eq!(endpoint::in_reply(vec![0; 512], 10, 100).actual_length, 10);
    }
}

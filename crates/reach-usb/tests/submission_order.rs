//! Transfers reach the device in request order: the host starts each backend call in action
//! order (bulk data on an endpoint must not be reordered by task scheduling).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use common::within;
use reach_usb::backend::fake::{FakeBackend, FakeDevice};
use reach_usb::backend::{BackendError, BoxFuture, HotplugEvent, UsbBackend, UsbDevice};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{AllowAll, HostRunner, memory_pair};
use reach_usb::proto::{
    ConfigOp, DeviceFilter, DeviceInfo, TransferKind, TransferReply, TransferRequest,
    TransferStatus,
};
use tokio::sync::mpsc;

/// Wraps the fake device and records the order in which `transfer` is *called*.
struct Recording {
    inner: Arc<dyn UsbDevice>,
    calls: Arc<Mutex<Vec<u32>>>,
}

impl UsbDevice for Recording {
    fn info(&self) -> DeviceInfo {
        self.inner.info()
    }
    fn transfer(self: Arc<Self>, request: TransferRequest) -> BoxFuture<'static, TransferReply> {
        self.calls.lock().unwrap().push(request.length);
        self.inner.clone().transfer(request)
    }
    fn configure(self: Arc<Self>, op: ConfigOp) -> BoxFuture<'static, TransferStatus> {
        self.inner.clone().configure(op)
    }
    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        self.inner.clone().close()
    }
}

struct RecordingBackend {
    fake: FakeBackend,
    calls: Arc<Mutex<Vec<u32>>>,
}

impl UsbBackend for RecordingBackend {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<DeviceInfo>, BackendError>> {
        self.fake.list()
    }
    fn open(&self, bus_id: &str) -> BoxFuture<'_, Result<Arc<dyn UsbDevice>, BackendError>> {
        let calls = self.calls.clone();
        let opening = self.fake.open(bus_id);
        Box::pin(async move {
            Ok(Arc::new(Recording {
                inner: opening.await?,
                calls,
            }) as Arc<dyn UsbDevice>)
        })
    }
    fn watch(&self) -> Option<mpsc::UnboundedReceiver<HotplugEvent>> {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_reach_the_device_in_the_order_they_were_sent() {
    let fake = FakeBackend::new();
    fake.add(FakeDevice::loopback());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let backend = Arc::new(RecordingBackend {
        fake,
        calls: calls.clone(),
    });
    let (host_end, client_end) = memory_pair();
    tokio::spawn(
        HostRunner::new(
            HostSession::new(HostConfig::enabled(), Instant::now()),
            backend,
            Arc::new(AllowAll),
            "alice",
        )
        .serve(host_end),
    );
    let client = UsbClient::connect(client_end);
    let dev = within(client.open(DeviceFilter::default())).await.unwrap();
    let mut pending = Vec::new();
    for len in 1..=200u32 {
        let req = TransferRequest {
            kind: TransferKind::Bulk(0x04),
            flags: Default::default(),
            timeout_ms: 0,
            length: len,
            data: Bytes::from(vec![0u8; len as usize]),
        };
        pending.push(within(dev.submit(req)).await.unwrap());
    }
    for p in pending {
        within(p.wait()).await.unwrap();
    }
    assert_eq!(*calls.lock().unwrap(), (1..=200).collect::<Vec<u32>>());
}

//! Shared setup: a fake backend, a host runner and a client over an in-memory transport.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reach_usb::backend::fake::{FakeBackend, FakeDevice, FakeHandle};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{AccessPolicy, AllowAll, HostRunner, MessageChannel, memory_pair};
use tokio::sync::mpsc;

pub struct Rig {
    pub client: UsbClient,
    pub device: FakeHandle,
    pub backend: FakeBackend,
    /// Send a new host-side channel here to simulate a reconnect.
    pub host_transports: mpsc::Sender<MessageChannel>,
    pub host_task: tokio::task::JoinHandle<()>,
}

pub fn rig() -> Rig {
    rig_with(Arc::new(AllowAll), HostConfig::enabled())
}

pub fn rig_with(policy: Arc<dyn AccessPolicy>, config: HostConfig) -> Rig {
    let backend = FakeBackend::new();
    let device = backend.add(FakeDevice::loopback());
    let (host_end, client_end) = memory_pair();
    let (host_transports, rx) = mpsc::channel(4);
    host_transports.try_send(host_end).expect("fresh channel");
    let runner = HostRunner::new(
        HostSession::new(config, Instant::now()),
        Arc::new(backend.clone()),
        policy,
        "alice",
    );
    let host_task = tokio::spawn(runner.run(rx));
    let client = UsbClient::connect(client_end).with_timeout(Duration::from_secs(10));
    Rig {
        client,
        device,
        backend,
        host_transports,
        host_task,
    }
}

/// Awaits a future with a generous bound so a hang fails the test instead of blocking CI.
pub async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test step timed out")
}

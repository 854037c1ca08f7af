//! Resume over the real async stack: the transport drops mid-transfer and is replaced.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{rig_with, within};
use reach_usb::UsbError;
use reach_usb::backend::fake::{FakeBackend, FakeDevice};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{AllowAll, HostRunner, memory_pair};
use reach_usb::proto::{DeviceFilter, TransferKind, TransferRequest};
use std::sync::Arc;
use tokio::sync::mpsc;

fn bulk_out(data: &'static [u8]) -> TransferRequest {
    TransferRequest {
        kind: TransferKind::Bulk(0x02),
        flags: Default::default(),
        timeout_ms: 0,
        length: data.len() as u32,
        data: Bytes::from_static(data),
    }
}

#[tokio::test(start_paused = true)]
async fn resume_keeps_the_claim_delivers_once_and_never_repeats_a_bulk_out() {
    let backend = FakeBackend::new();
    let device = backend.add(FakeDevice::loopback().with_latency(Duration::from_millis(500)));
    let (host_end, client_end) = memory_pair();
    let (transports, rx) = mpsc::channel(4);
    transports.send(host_end).await.unwrap();
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), std::time::Instant::now()),
        Arc::new(backend),
        Arc::new(AllowAll),
        "alice",
    );
    tokio::spawn(runner.run(rx));
    let client = UsbClient::connect(client_end);
    let dev = within(client.open(DeviceFilter::default())).await.unwrap();
    let claim = dev.claim_id();

    let pending = dev.submit(bulk_out(b"once")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // host has it; device still busy
    let (host_end, client_end) = memory_pair();
    transports.send(host_end).await.unwrap(); // the old connection is dropped
    within(client.resume(client_end)).await.unwrap();

    let reply = within(pending.wait()).await.unwrap();
    assert_eq!(reply.actual_length, 4);
    assert_eq!(dev.claim_id(), claim);
    let echoed = within(dev.bulk_in(0x81, 64)).await.unwrap();
    assert_eq!(&echoed[..], b"once");
    let quick = UsbClient::clone(&client).with_timeout(Duration::from_secs(2));
    let again = within(quick.open(DeviceFilter::default())).await.err();
    assert!(
        matches!(again, Some(UsbError::Busy(_))),
        "device still held by the resumed claim: {again:?}"
    );
    assert!(device.is_open());
}

#[tokio::test(start_paused = true)]
async fn after_the_retention_window_the_claim_is_closed_and_the_device_released() {
    let config = HostConfig {
        retention: Duration::from_secs(30),
        ..HostConfig::enabled()
    };
    let rig = rig_with(Arc::new(AllowAll), config);
    let dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    assert!(rig.device.is_open());
    let (dead_host_end, _dead_client_end) = memory_pair();
    rig.host_transports.send(dead_host_end).await.unwrap(); // the live connection is dropped
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(!rig.device.is_open(), "device released after the window");
    let (host_end, client_end) = memory_pair();
    rig.host_transports.send(host_end).await.unwrap();
    let err = within(rig.client.resume(client_end)).await;
    assert!(err.is_err(), "resume after the window must fail: {err:?}");
    let _ = dev;
}

#[tokio::test(start_paused = true)]
async fn when_no_transport_can_come_back_the_claims_close_at_once_despite_the_window() {
    let config = HostConfig {
        retention: Duration::from_secs(30),
        ..HostConfig::enabled()
    };
    let rig = rig_with(Arc::new(AllowAll), config);
    let _dev = within(rig.client.open(DeviceFilter::default()))
        .await
        .unwrap();
    assert!(rig.device.is_open());
    let (dead_host_end, dead_client_end) = memory_pair();
    rig.host_transports.send(dead_host_end).await.unwrap(); // the live connection is replaced
    drop(dead_client_end); // which drops too
    drop(rig.host_transports); // and no other will come
    tokio::time::timeout(Duration::from_secs(1), rig.host_task)
        .await
        .expect("the runner ends well within the window")
        .expect("the runner does not panic");
    let released = tokio::time::timeout(Duration::from_secs(1), async {
        while rig.device.is_open() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    released
        .await
        .expect("device released without waiting 30 s");
}

//! The passthrough switch (SPEC §9.1) enforced by the host over the full stack: while it is
//! off, LIST and OPEN are refused, nothing is opened, the refusal is audited, and the session
//! keeps serving.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::within;
use reach_usb::UsbError;
use reach_usb::audit::{LocalAudit, verify_file};
use reach_usb::backend::fake::{FakeBackend, FakeDevice};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession, PASSTHROUGH_DISABLED};
use reach_usb::net::{AllowAll, HostRunner, memory_pair};
use reach_usb::proto::DeviceFilter;

#[tokio::test]
async fn a_host_with_passthrough_off_refuses_list_and_open_and_audits_the_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("usb-audit.jsonl");
    let backend = FakeBackend::new();
    let device = backend.add(FakeDevice::loopback());
    let (host_end, client_end) = memory_pair();
    let runner = HostRunner::new(
        HostSession::new(HostConfig::default(), Instant::now()),
        Arc::new(backend),
        Arc::new(AllowAll),
        "alice",
    )
    .with_audit(Arc::new(LocalAudit::open(&audit_path, "host1").unwrap()));
    tokio::spawn(runner.serve(host_end));
    let client = UsbClient::connect(client_end).with_timeout(Duration::from_secs(10));

    let refused = Some(UsbError::Denied(PASSTHROUGH_DISABLED.into()));
    assert_eq!(within(client.list()).await.err(), refused);
    assert_eq!(
        within(client.open(DeviceFilter::default())).await.err(),
        refused
    );
    assert!(!device.is_open(), "nothing was opened");
    // The session survives: the next request is answered, not dropped or closed.
    assert_eq!(within(client.list()).await.err(), refused);

    let log = std::fs::read_to_string(&audit_path).unwrap();
    let details: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["details"].clone())
        .collect();
    let refusals = details
        .iter()
        .filter(|d| d["action"] == "error" && d["message"] == PASSTHROUGH_DISABLED)
        .count();
    assert_eq!(refusals, 3, "{log}");
    assert!(details.iter().all(|d| d["action"] == "error"), "{log}");
    assert!(verify_file(&audit_path).unwrap().ok);
}

#[tokio::test]
async fn a_runner_following_the_switch_closes_claims_when_it_goes_off_and_opens_again_when_on() {
    let backend = FakeBackend::new();
    let device = backend.add(FakeDevice::loopback());
    let (host_end, client_end) = memory_pair();
    let (switch, watching) = tokio::sync::watch::channel(true);
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), Instant::now()),
        Arc::new(backend),
        Arc::new(AllowAll),
        "alice",
    )
    .with_switch(watching);
    tokio::spawn(runner.serve(host_end));
    let client = UsbClient::connect(client_end).with_timeout(Duration::from_secs(10));
    let dev = within(client.open(DeviceFilter::default())).await.unwrap();
    assert!(device.is_open());

    switch.send_replace(false);
    within(async {
        while device.is_open() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let write = within(dev.bulk_out(0x02, bytes::Bytes::from_static(b"x"))).await;
    assert!(
        matches!(&write, Err(UsbError::Closed(_))),
        "the claim is closed and the client told: {write:?}"
    );
    let refused = Some(UsbError::Denied(PASSTHROUGH_DISABLED.into()));
    assert_eq!(
        within(client.open(DeviceFilter::default())).await.err(),
        refused
    );

    switch.send_replace(true);
    let again = within(client.open(DeviceFilter::default())).await;
    assert!(again.is_ok(), "opens again once the switch is on");
    assert!(device.is_open());
}

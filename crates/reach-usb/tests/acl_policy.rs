//! The signed ACL and prompt enforced by the host over the full stack; the local audit trail.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::within;
use reach_usb::UsbError;
use reach_usb::acl::policy::{AclPolicy, OpenPrompt, PromptAnswer};
use reach_usb::acl::store::{self, AclKey, AclOptions};
use reach_usb::acl::{AclFile, AclRule, Verdict};
use reach_usb::audit::{LocalAudit, verify_file};
use reach_usb::backend::BoxFuture;
use reach_usb::backend::fake::{FakeBackend, FakeDevice};
use reach_usb::client::UsbClient;
use reach_usb::host::{HostConfig, HostSession};
use reach_usb::net::{HostRunner, memory_pair};
use reach_usb::proto::{DeviceFilter, DeviceInfo};

struct CountingPrompt {
    answer: PromptAnswer,
    asked: AtomicUsize,
}

impl OpenPrompt for CountingPrompt {
    fn ask<'a>(&'a self, _device: &'a DeviceInfo, viewer: &'a str) -> BoxFuture<'a, PromptAnswer> {
        assert_eq!(viewer, "alice");
        self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { self.answer })
    }
}

struct Setup {
    client: UsbClient,
    prompt: Arc<CountingPrompt>,
    acl_path: std::path::PathBuf,
    audit_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn setup(rules: Vec<AclRule>, answer: PromptAnswer) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let acl_path = dir.path().join("usb-acl.json");
    store::save(
        &acl_path,
        &AclFile {
            version: 1,
            default: Verdict::Deny,
            rules,
        },
        &AclKey::File,
    )
    .unwrap();
    let backend = FakeBackend::new();
    backend.add(FakeDevice::loopback());
    backend.add(FakeDevice::loopback().with_info(|d| {
        d.bus_id = "fake-2".into();
        d.vendor_id = 0x1234;
        d.serial = Some("SECRET-DEVICE".into());
    }));
    let prompt = Arc::new(CountingPrompt {
        answer,
        asked: AtomicUsize::new(0),
    });
    let policy = AclPolicy::load(acl_path.clone(), AclOptions::default(), prompt.clone());
    let audit_path = dir.path().join("usb-audit.jsonl");
    let audit = Arc::new(LocalAudit::open(&audit_path, "host1").unwrap());
    let (host_end, client_end) = memory_pair();
    let runner = HostRunner::new(
        HostSession::new(HostConfig::enabled(), Instant::now()),
        Arc::new(backend),
        Arc::new(policy),
        "alice",
    )
    .with_audit(audit);
    tokio::spawn(runner.serve(host_end));
    let client = UsbClient::connect(client_end).with_timeout(Duration::from_secs(10));
    Setup {
        client,
        prompt,
        acl_path,
        audit_path,
        _dir: dir,
    }
}

fn allow_gadget(prompt_on_open: bool) -> AclRule {
    AclRule {
        vendor_id: Some(0x0525),
        product_id: Some(0xa4a0),
        allow: true,
        prompt_on_open,
        ..Default::default()
    }
}

#[tokio::test]
async fn list_never_reveals_a_denied_device_and_open_of_it_is_denied() {
    let s = setup(vec![allow_gadget(false)], PromptAnswer::Deny);
    let devices = within(s.client.list()).await.unwrap();
    assert_eq!(
        devices.iter().map(|d| d.vendor_id).collect::<Vec<_>>(),
        vec![0x0525]
    );
    let err = within(s.client.open(DeviceFilter {
        vendor_id: Some(0x1234),
        ..Default::default()
    }))
    .await
    .err();
    assert_eq!(err, Some(UsbError::Denied("denied by ACL policy".into())));
    assert!(
        within(s.client.open(DeviceFilter {
            vendor_id: Some(0x0525),
            ..Default::default()
        }))
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn prompt_allow_opens_and_prompt_deny_refuses() {
    let allow = setup(vec![allow_gadget(true)], PromptAnswer::Allow);
    assert!(
        within(allow.client.open(DeviceFilter {
            vendor_id: Some(0x0525),
            ..Default::default()
        }))
        .await
        .is_ok()
    );
    assert_eq!(allow.prompt.asked.load(Ordering::SeqCst), 1);
    let deny = setup(vec![allow_gadget(true)], PromptAnswer::Deny);
    let err = within(deny.client.open(DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    }))
    .await
    .err();
    assert!(matches!(err, Some(UsbError::Denied(_))));
}

#[tokio::test]
async fn prompt_remember_persists_a_signed_allow_rule() {
    let s = setup(vec![allow_gadget(true)], PromptAnswer::AllowAndRemember);
    let dev = within(s.client.open(DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    }))
    .await
    .unwrap();
    within(dev.close()).await;
    let acl = store::load(
        &s.acl_path,
        &AclOptions {
            require_signature: true,
            ..Default::default()
        },
    );
    assert!(acl.integrity_ok && acl.signed);
    assert_eq!(acl.file.rules[0].serial.as_deref(), Some("FAKE0001"));
    assert!(!acl.file.rules[0].prompt_on_open);
}

#[tokio::test]
async fn tampered_acl_denies_everything_and_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acl.json");
    store::save(
        &path,
        &AclFile {
            version: 1,
            default: Verdict::Allow,
            rules: vec![],
        },
        &AclKey::File,
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap() + " ";
    std::fs::write(&path, text).unwrap();
    let policy = AclPolicy::load(
        path,
        AclOptions::default(),
        Arc::new(reach_usb::acl::policy::FixedAnswer(PromptAnswer::Allow)),
    );
    assert!(!policy.snapshot().integrity_ok);
    let backend = FakeBackend::new();
    backend.add(FakeDevice::loopback());
    let (host_end, client_end) = memory_pair();
    tokio::spawn(
        HostRunner::new(
            HostSession::new(HostConfig::enabled(), Instant::now()),
            Arc::new(backend),
            Arc::new(policy),
            "alice",
        )
        .serve(host_end),
    );
    let client = UsbClient::connect(client_end);
    assert!(within(client.list()).await.unwrap().is_empty());
    assert!(matches!(
        within(client.open(DeviceFilter::default())).await.err(),
        Some(UsbError::Denied(_))
    ));
}

#[tokio::test]
async fn audit_records_open_opened_close_and_denials_without_payloads() {
    let s = setup(vec![allow_gadget(false)], PromptAnswer::Deny);
    let _ = within(s.client.open(DeviceFilter {
        vendor_id: Some(0x1234),
        ..Default::default()
    }))
    .await;
    let dev = within(s.client.open(DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    }))
    .await
    .unwrap();
    within(dev.bulk_out(0x02, bytes::Bytes::from_static(b"PAYLOAD-MARKER")))
        .await
        .unwrap();
    within(dev.close()).await;
    let text = std::fs::read_to_string(&s.audit_path).unwrap();
    let actions: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["details"]["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        vec!["open", "denied", "error", "open", "opened", "closed"]
    );
    assert!(!text.contains("PAYLOAD-MARKER"));
    assert!(text.contains("\"viewer\":\"alice\""));
    assert!(verify_file(&s.audit_path).unwrap().ok);
}

#[tokio::test]
async fn hotplug_events_reach_the_client_only_for_devices_the_acl_shows() {
    let dir = tempfile::tempdir().unwrap();
    let acl_path = dir.path().join("usb-acl.json");
    store::save(
        &acl_path,
        &AclFile {
            version: 1,
            default: Verdict::Deny,
            rules: vec![allow_gadget(false)],
        },
        &AclKey::File,
    )
    .unwrap();
    let backend = FakeBackend::new();
    let shown = backend.add(FakeDevice::loopback());
    let hidden = backend.add(FakeDevice::loopback().with_info(|d| {
        d.bus_id = "fake-2".into();
        d.vendor_id = 0x1234;
    }));
    let policy = AclPolicy::load(
        acl_path,
        AclOptions::default(),
        Arc::new(reach_usb::acl::policy::FixedAnswer(PromptAnswer::Deny)),
    );
    let (host_end, client_end) = memory_pair();
    tokio::spawn(
        HostRunner::new(
            HostSession::new(HostConfig::enabled(), Instant::now()),
            Arc::new(backend),
            Arc::new(policy),
            "alice",
        )
        .serve(host_end),
    );
    let client = UsbClient::connect(client_end);
    let mut events = client.device_events();
    within(client.list()).await.unwrap(); // the link is up
    hidden.unplug();
    shown.reenumerate();
    let first = within(events.recv()).await.unwrap();
    let second = within(events.recv()).await.unwrap();
    assert_eq!(
        (first.event.as_str(), first.device.vendor_id),
        ("removed", 0x0525)
    );
    assert_eq!(
        (second.event.as_str(), second.device.vendor_id),
        ("added", 0x0525)
    );
    assert!(events.try_recv().is_err(), "no event for the denied device");
}

#[tokio::test]
async fn a_running_host_follows_rules_saved_later_and_a_later_tampered_file_denies_everything() {
    // Default deny, no rule for the gadget: the open is refused.
    let s = setup(vec![], PromptAnswer::Deny);
    let gadget = || DeviceFilter {
        vendor_id: Some(0x0525),
        ..Default::default()
    };
    let err = within(s.client.open(gadget())).await.err();
    assert_eq!(err, Some(UsbError::Denied("denied by ACL policy".into())));
    // `reach usb acl add` (another process) saves a rule: the same running host now allows it.
    let mut file = store::load(&s.acl_path, &AclOptions::default()).file;
    file.rules.push(allow_gadget(false));
    store::save(&s.acl_path, &file, &AclKey::File).unwrap();
    let handle = within(s.client.open(gadget())).await.unwrap();
    handle.close().await;
    // Someone edits the file by hand (the signature no longer matches): nothing opens.
    let text = std::fs::read_to_string(&s.acl_path)
        .unwrap()
        .replace("true", "false ");
    std::fs::write(&s.acl_path, text).unwrap();
    assert!(within(s.client.list()).await.unwrap().is_empty());
    assert!(matches!(
        within(s.client.open(gadget())).await.err(),
        Some(UsbError::Denied(_))
    ));
}

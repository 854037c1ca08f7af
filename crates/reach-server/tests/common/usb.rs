//! USB-through-the-relay helpers: an in-process agent with the fake USB device, its host
//! configuration (signed ACL, local audit, switch) in a temp dir, and a technician's USB client.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use reach_agent::consent::{ConsentPrompt, DenyAll};
use reach_agent::usb::{DenyPrompt, UsbOptions, UsbSwitch};
use reach_agent::viewer::{ApiClient, LiveViewer};
use reach_agent::{AgentHandle, Credential};
use reach_usb::acl::store::{self, AclKey};
use reach_usb::acl::{AclFile, AclRule, Verdict};
use reach_usb::backend::fake::{FakeBackend, FakeDevice, FakeHandle};
use reach_usb::client::UsbClient;
use reach_usb::tools::UsbPaths;
use serde_json::json;

use super::common::TestServer;
use super::relay::{agent_config, create_machine, issue_key, wait_connected};

/// The demo loopback device's ids (allowed by [`allow_loopback_only`]).
pub const LOOPBACK: (u16, u16) = (0x0525, 0xa4a0);
/// A second fake device the ACL denies.
pub const OTHER: (u16, u16) = (0x1234, 0x5678);

/// The host side of a test: the fake devices, the switch and the config directory.
pub struct UsbHost {
    pub loopback: FakeHandle,
    pub other: FakeHandle,
    pub switch: UsbSwitch,
    pub paths: UsbPaths,
    _dir: tempfile::TempDir,
}

/// An ACL allowing the loopback device only (default deny).
pub fn allow_loopback_only() -> AclFile {
    AclFile {
        default: Verdict::Deny,
        rules: vec![AclRule {
            vendor_id: Some(LOOPBACK.0),
            product_id: Some(LOOPBACK.1),
            allow: true,
            ..AclRule::default()
        }],
        ..AclFile::default()
    }
}

/// Host configuration in a temp dir: `acl` saved signed, the switch at `enabled`, two fake
/// devices (the loopback device and [`OTHER`]).
pub fn usb_host(acl: &AclFile, enabled: bool) -> (UsbHost, UsbOptions) {
    usb_host_asking(acl, enabled, Arc::new(DenyPrompt))
}

/// As [`usb_host`], with `prompt_on_open` rules answered by `prompt`.
pub fn usb_host_asking(
    acl: &AclFile,
    enabled: bool,
    prompt: Arc<dyn reach_usb::acl::policy::OpenPrompt>,
) -> (UsbHost, UsbOptions) {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths = UsbPaths {
        config_dir: dir.path().to_owned(),
    };
    store::save(&paths.acl(), acl, &AclKey::File).expect("save ACL");
    let backend = FakeBackend::new();
    let loopback = backend.add(FakeDevice::loopback());
    let other = backend.add(FakeDevice::loopback().with_info(|d| {
        d.vendor_id = OTHER.0;
        d.product_id = OTHER.1;
        d.serial = Some("OTHER-1".into());
    }));
    let mut options = UsbOptions::from_paths(&paths, Arc::new(backend), prompt);
    options.switch = UsbSwitch::new(enabled);
    let host = UsbHost {
        loopback,
        other,
        switch: options.switch.clone(),
        paths,
        _dir: dir,
    };
    (host, options)
}

/// A managed machine whose in-process agent shares `options`: (machine id, agent). The agent's
/// events are drained by a task (USB never goes through them).
pub async fn usb_agent(s: &TestServer, name: &str, options: UsbOptions) -> (String, AgentHandle) {
    let m = create_machine(s, json!({"name": name})).await;
    let id = m["id"].as_str().unwrap().to_owned();
    let (_, key) = issue_key(s, &id).await;
    let prompt: Arc<dyn ConsentPrompt> = Arc::new(DenyAll);
    let mut config = agent_config(s, Credential::Key(key), prompt);
    config.usb = Some(options);
    let mut agent = reach_agent::spawn(config);
    wait_connected(&mut agent).await;
    let mut events = std::mem::replace(&mut agent.events, tokio::sync::mpsc::channel(1).1);
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    (id, agent)
}

/// Opens a session with `body` (machine id added) as `token`; returns its id.
pub async fn open_usb_session(s: &TestServer, token: &str, machine_id: &str, usb: bool) -> String {
    let body = json!({"machine_id": machine_id, "usb": usb});
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/sessions",
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// Joins `session_id` as `token`'s user and starts a USB client over the session.
pub async fn technician(s: &TestServer, token: &str, session_id: &str) -> (LiveViewer, UsbClient) {
    let api = ApiClient::new(&s.url).unwrap().with_token(token.to_owned());
    let mut viewer = api
        .join(session_id)
        .await
        .expect("viewer joins")
        .into_live();
    let client = viewer
        .usb_client()
        .expect("USB channel")
        .with_timeout(Duration::from_secs(10));
    (viewer, client)
}

/// Waits until `done()` holds, checking every 5 ms, for at most `within`; panics with `what`.
pub async fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(within, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "not within {within:?}: {what}");
}

/// `usb_passthrough` audit records of the admin's tenant, oldest first.
pub async fn usb_audit(s: &TestServer) -> Vec<serde_json::Value> {
    let (status, page) = s
        .call(
            reqwest::Method::GET,
            "/api/audit?limit=500",
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let mut items: Vec<serde_json::Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "usb_passthrough")
        .cloned()
        .collect();
    items.reverse();
    items
}

//! Who may use a remote device: the host's ACL and switch (enforced by the agent) and the
//! server's audit of every decision. The relay-gate cases (view-only, no `usb` permission,
//! session or consent without USB, agent without USB) end in the same refusal.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::time::Duration;

use reach_agent::ws::Incoming;
use reach_proto::v1::envelope::Body;
use reach_usb::UsbError;
use reach_usb::proto::DeviceFilter;
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use usb::*;

fn other_filter() -> DeviceFilter {
    DeviceFilter {
        vendor_id: Some(OTHER.0),
        ..DeviceFilter::default()
    }
}

#[tokio::test]
async fn opening_a_device_the_acl_denies_is_refused_with_denied_by_acl_policy() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "acl-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    match client.open(other_filter()).await {
        Err(UsbError::Denied(message)) => assert_eq!(message, "denied by ACL policy"),
        Err(other) => panic!("expected a denial, got {other}"),
        Ok(_) => panic!("a denied device was opened"),
    }
    assert!(!host.other.is_open());
}

#[tokio::test]
async fn with_the_host_switch_off_nothing_is_listed_or_opened() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), false);
    let (machine_id, _agent) = usb_agent(&s, "off-1", options).await;
    let usb = s.state.relay.agent_usb(&machine_id).expect("agent online");
    assert!(usb.supported && !usb.enabled, "{usb:?}");
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    refused_by_the_relay(&s, &s.admin_token, &session_id, &host).await;
}

#[tokio::test]
async fn the_agent_reports_the_switch_at_once_and_switching_off_releases_claims() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), false);
    let (machine_id, _agent) = usb_agent(&s, "switch-1", options).await;
    let relay = &s.state.relay;
    eventually(
        Duration::from_secs(5),
        "hub knows the switch is off",
        || {
            relay
                .agent_usb(&machine_id)
                .is_some_and(|u| u.supported && !u.enabled)
        },
    )
    .await;
    host.switch.set(true);
    eventually(Duration::from_secs(1), "status with usb_enabled", || {
        relay.agent_usb(&machine_id).is_some_and(|u| u.enabled)
    })
    .await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let _dev = client.open(DeviceFilter::default()).await.expect("open");
    host.switch.set(false);
    eventually(
        Duration::from_secs(1),
        "claims released and switch reported off",
        || !host.loopback.is_open() && relay.agent_usb(&machine_id).is_some_and(|u| !u.enabled),
    )
    .await;
}

#[tokio::test]
async fn usb_decisions_reach_the_tenants_audit_chain_with_the_technician_and_machine() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "audit-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let viewer_id = viewer.viewer_id;
    assert!(client.open(other_filter()).await.is_err());
    let dev = client
        .open(DeviceFilter {
            vendor_id: Some(LOOPBACK.0),
            ..Default::default()
        })
        .await
        .expect("open");
    dev.close().await;

    let mut records = Vec::new();
    let wanted = ["open", "denied", "error", "open", "opened", "closed"];
    let within = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            records = usb_audit(&s).await;
            if records.len() >= wanted.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    within.await.expect("six usb_passthrough records");
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["details"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, wanted);
    for r in &records {
        assert_eq!(r["actor"], "viewer:admin");
        assert_eq!(r["details"]["machine_id"], machine_id.as_str());
        assert_eq!(r["details"]["session_id"], session_id.as_str());
        assert_eq!(r["details"]["viewer_id"], viewer_id);
        assert!(r["details"].get("data").is_none(), "no payload in {r}");
    }
    assert_eq!(records[1]["details"]["vendor_id"], "1234");
    assert_eq!(records[1]["details"]["reason"], "denied by ACL policy");
    assert_eq!(
        records[2]["details"]["reason"],
        "denied: denied by ACL policy"
    );
    assert_eq!(records[4]["details"]["vendor_id"], "0525");
    assert_eq!(records[5]["details"]["reason"], "requested");
    let (status, verify) = s
        .call(Method::GET, "/api/audit/verify", Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 200, "{verify}");

    let local = reach_usb::audit::verify_file(&host.paths.audit()).expect("local log");
    assert!(local.ok && local.records >= 5, "{local:?}");
}

#[tokio::test]
async fn a_tampered_acl_denies_everything_and_is_reported_to_the_server() {
    let s = TestServer::start().await;
    let (host, _) = usb_host(&allow_loopback_only(), true);
    let acl = std::fs::read_to_string(host.paths.acl()).unwrap();
    std::fs::write(host.paths.acl(), acl.replace("\"deny\"", "\"allow\"")).unwrap();
    let backend = reach_usb::tools::backend_named("fake").unwrap();
    let mut options = reach_agent::usb::UsbOptions::from_paths(
        &host.paths,
        backend,
        std::sync::Arc::new(reach_agent::usb::DenyPrompt),
    );
    options.switch = reach_agent::usb::UsbSwitch::new(true);
    let (machine_id, _agent) = usb_agent(&s, "tamper-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    assert_eq!(client.list().await.expect("list"), vec![]);
    let records = usb_audit(&s).await;
    let failed = records
        .iter()
        .find(|r| r["details"]["action"] == "acl_integrity_failed")
        .expect("integrity failure audited");
    assert_eq!(failed["actor"], format!("agent:{machine_id}"));
}

#[tokio::test]
async fn a_prompt_on_open_device_is_opened_only_after_the_person_at_the_machine_says_yes() {
    let s = TestServer::start().await;
    let mut acl = allow_loopback_only();
    acl.rules[0].prompt_on_open = true;
    let (prompt, control) = reach_agent::consent::ScriptedPrompt::new();
    let prompt = reach_agent::usb::ConsentOpenPrompt::new(std::sync::Arc::new(prompt));
    let (host, options) = usb_host_asking(&acl, true, std::sync::Arc::new(prompt));
    let (machine_id, _agent) = usb_agent(&s, "prompt-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    let (_viewer, client) = technician(&s, &s.admin_token, &session_id).await;
    let control = std::sync::Arc::new(control);

    control.answer(reach_agent::consent::ConsentAnswer::No);
    match client.open(DeviceFilter::default()).await {
        Err(UsbError::Denied(message)) => assert_eq!(message, "denied by ACL policy"),
        other => panic!(
            "a refused prompt must deny, got {:?}",
            other.map(|d| d.claim_id())
        ),
    }
    assert!(!host.loopback.is_open());

    control.answer(reach_agent::consent::ConsentAnswer::Yes);
    let dev = client
        .open(DeviceFilter::default())
        .await
        .expect("opened after a yes");
    assert!(host.loopback.is_open());
    let asked = {
        let control = std::sync::Arc::clone(&control);
        tokio::task::spawn_blocking(move || {
            let first = control.next_question(Duration::from_secs(5));
            let second = control.next_question(Duration::from_secs(5));
            (first, second)
        })
        .await
        .unwrap()
    };
    for question in [asked.0, asked.1] {
        let question = question.expect("the person was asked");
        assert_eq!(question.session_id, session_id);
        let sentence = question.sentence();
        assert!(sentence.contains("USB device 0525:a4a0"), "{sentence}");
    }
    drop(dev);
}

/// Sends one USB message and expects the relay to refuse it with an error envelope, and the
/// device to stay closed.
async fn refused_by_the_relay(s: &TestServer, token: &str, session_id: &str, host: &UsbHost) {
    let (mut viewer, client) = technician(s, token, session_id).await;
    let open = tokio::spawn(async move { client.open(DeviceFilter::default()).await.is_ok() });
    let refusal = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match viewer.recv().await {
                Some(Incoming::Envelope(env)) => {
                    if let Some(Body::Error(e)) = env.body {
                        return e;
                    }
                }
                other => panic!("no refusal before {other:?}"),
            }
        }
    })
    .await
    .expect("a refusal");
    assert!(refusal.code.starts_with("usb"), "{refusal:?}");
    assert!(!host.loopback.is_open());
    assert!(
        !open.is_finished() || !open.await.unwrap(),
        "opened through the relay"
    );
}

#[tokio::test]
async fn a_view_only_viewer_cannot_use_usb() {
    let s = TestServer::start().await;
    s.create_user("watcher", "watcher-password", "viewer").await;
    let watcher = s.login_token(None, "watcher", "watcher-password").await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "view-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    refused_by_the_relay(&s, &watcher, &session_id, &host).await;
}

#[tokio::test]
async fn a_controller_without_the_usb_permission_cannot_use_usb() {
    let s = TestServer::start().await;
    s.create_user("op", "operator-password", "technician").await;
    s.sql("DELETE FROM role_permissions WHERE role = 'technician' AND permission = 'usb'")
        .await;
    let op = s.login_token(None, "op", "operator-password").await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "perm-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    refused_by_the_relay(&s, &op, &session_id, &host).await;
}

#[tokio::test]
async fn a_session_opened_without_usb_carries_no_usb() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _agent) = usb_agent(&s, "nousb-1", options).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, false).await;
    refused_by_the_relay(&s, &s.admin_token, &session_id, &host).await;
}

#[tokio::test]
async fn an_agent_without_usb_gets_no_usb_frames() {
    let s = TestServer::start().await;
    let (host, _) = usb_host(&allow_loopback_only(), true);
    let (machine_id, _key, _agent) = relay::managed_agent(&s, "plain-1").await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, true).await;
    refused_by_the_relay(&s, &s.admin_token, &session_id, &host).await;
}

#[tokio::test]
async fn consent_given_without_usb_carries_no_usb() {
    let s = TestServer::start().await;
    let (host, options) = usb_host(&allow_loopback_only(), true);
    let body = json!({"name": "consent-1", "require_consent": true});
    let m = relay::create_machine(&s, body).await;
    let machine_id = m["id"].as_str().unwrap().to_owned();
    let (_, key) = relay::issue_key(&s, &machine_id).await;
    let (prompt, control) = reach_agent::consent::ScriptedPrompt::new();
    control.answer(reach_agent::consent::ConsentAnswer::Yes);
    let prompt = std::sync::Arc::new(prompt);
    let mut config = relay::agent_config(&s, reach_agent::Credential::Key(key), prompt);
    config.usb = Some(options);
    let mut agent = reach_agent::spawn(config);
    relay::wait_connected(&mut agent).await;
    let session_id = open_usb_session(&s, &s.admin_token, &machine_id, false).await;
    refused_by_the_relay(&s, &s.admin_token, &session_id, &host).await;
    drop((agent, control));
}

//! `prompt_on_open` through a live session: the person at the host answers *allow once*,
//! *allow and remember* (a signed allow rule is written to the host's ACL), *deny*, or nothing
//! (denied after the timeout). Every answer is audited on both sides: the agent's local chain
//! and the server's `usb_passthrough` events.

mod common;
#[path = "common/relay.rs"]
mod relay;
#[path = "common/usb.rs"]
mod usb;

use std::sync::Arc;
use std::time::Duration;

use reach_agent::consent::{ConsentAnswer, ScriptedPrompt, ScriptedPromptControl};
use reach_agent::usb::ConsentOpenPrompt;
use reach_usb::UsbError;
use reach_usb::acl::store;
use reach_usb::proto::DeviceFilter;

use common::TestServer;
use usb::*;

const WAIT: Duration = Duration::from_secs(10);

/// A host whose loopback device is `prompt_on_open`, its agent, a session with USB and a
/// technician's client; the prompt's control answers.
async fn prompting(
    s: &TestServer,
    name: &str,
    timeout: Duration,
) -> (
    UsbHost,
    Arc<ScriptedPromptControl>,
    reach_agent::AgentHandle,
    reach_agent::viewer::LiveViewer,
    reach_usb::client::UsbClient,
) {
    let mut acl = allow_loopback_only();
    acl.rules[0].prompt_on_open = true;
    let (prompt, control) = ScriptedPrompt::new();
    let prompt = ConsentOpenPrompt::new(Arc::new(prompt)).with_timeout(timeout);
    let (host, options) = usb_host_asking(&acl, true, Arc::new(prompt));
    let (machine_id, agent) = usb_agent(s, name, options).await;
    let session_id = open_usb_session(s, &s.admin_token, &machine_id, true).await;
    let (viewer, client) = technician(s, &s.admin_token, &session_id).await;
    (host, Arc::new(control), agent, viewer, client)
}

/// The `prompted` answers the server recorded, oldest first (waits for `count`).
async fn server_answers(s: &TestServer, count: usize) -> Vec<String> {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let answers: Vec<String> = usb_audit(s)
                .await
                .iter()
                .filter(|r| r["details"]["action"] == "prompted")
                .map(|r| {
                    assert_eq!(r["actor"], "viewer:admin");
                    assert_eq!(r["details"]["vendor_id"], "0525");
                    r["details"]["reason"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
            if answers.len() >= count {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    found.await.expect("prompt answers audited on the server")
}

/// The `prompted` answers in the host's local chain (which must verify).
fn local_answers(host: &UsbHost) -> Vec<String> {
    let report = reach_usb::audit::verify_file(&host.paths.audit()).expect("local log");
    assert!(report.ok, "{report:?}");
    std::fs::read_to_string(host.paths.audit())
        .expect("local log")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["details"]["action"] == "prompted")
        .map(|r| {
            r["details"]["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn expect_denied(result: Result<reach_usb::client::UsbHandle, UsbError>) {
    match result {
        Err(UsbError::Denied(message)) => assert_eq!(message, "denied by ACL policy"),
        other => panic!("expected a denial, got {:?}", other.map(|d| d.claim_id())),
    }
}

#[tokio::test]
async fn allow_once_opens_this_time_only_and_deny_refuses_each_audited_on_both_sides() {
    let s = TestServer::start().await;
    let (host, control, _agent, _viewer, client) = prompting(&s, "prompt-once", WAIT).await;
    control.answer(ConsentAnswer::Yes);
    let dev = client
        .open(DeviceFilter::default())
        .await
        .expect("allowed once");
    assert!(host.loopback.is_open());
    let asked = {
        let control = Arc::clone(&control);
        tokio::task::spawn_blocking(move || control.next_question(WAIT))
            .await
            .unwrap()
            .expect("the person was asked")
    };
    assert_eq!(asked.technician, "admin", "the name the server verified");
    assert!(
        asked
            .sentence()
            .starts_with("admin asks to use the USB device 0525:a4a0")
    );
    dev.close().await;
    control.answer(ConsentAnswer::No);
    expect_denied(client.open(DeviceFilter::default()).await);
    assert!(!host.loopback.is_open());

    assert_eq!(server_answers(&s, 2).await, ["allow_once", "deny"]);
    assert_eq!(local_answers(&host), ["allow_once", "deny"]);
    let acl = store::load(&host.paths.acl(), &host.paths.acl_options());
    assert!(acl.integrity_ok);
    assert!(
        acl.file.rules.iter().all(|r| r.prompt_on_open),
        "allow once writes no rule"
    );
}

#[tokio::test]
async fn allow_and_remember_writes_a_signed_rule_and_is_not_asked_again() {
    let s = TestServer::start().await;
    let (host, control, _agent, _viewer, client) = prompting(&s, "prompt-remember", WAIT).await;
    control.answer(ConsentAnswer::YesRemember);
    let dev = client.open(DeviceFilter::default()).await.expect("allowed");
    dev.close().await;

    let acl = store::load(&host.paths.acl(), &host.paths.acl_options());
    assert!(
        acl.integrity_ok && acl.signed,
        "the ACL stays signed: {acl:?}"
    );
    let remembered = &acl.file.rules[0];
    assert!(remembered.allow && !remembered.prompt_on_open);
    assert_eq!(
        (remembered.vendor_id, remembered.product_id),
        (Some(LOOPBACK.0), Some(LOOPBACK.1))
    );

    // No answer is queued: a second question would time out and deny.
    let again = client
        .open(DeviceFilter::default())
        .await
        .expect("no prompt");
    again.close().await;
    assert_eq!(server_answers(&s, 1).await, ["allow_and_remember"]);
    assert_eq!(local_answers(&host), ["allow_and_remember"]);
}

#[tokio::test]
async fn nobody_answering_within_the_timeout_denies() {
    let s = TestServer::start().await;
    let (host, control, _agent, _viewer, client) =
        prompting(&s, "prompt-timeout", Duration::from_millis(200)).await;
    expect_denied(client.open(DeviceFilter::default()).await);
    assert!(!host.loopback.is_open());
    assert_eq!(server_answers(&s, 1).await, ["timeout"]);
    assert_eq!(local_answers(&host), ["timeout"]);
    // Frees the prompt still waiting on its thread.
    control.answer(ConsentAnswer::No);
}

//! Every endpoint with good and bad input over a real socket.

mod common;

use common::Host;
use reqwest::Method;
use serde_json::{Value, json};

/// ACL, switch and audit as they are now (to show a bad request changed nothing).
async fn snapshot(host: &Host) -> (Value, Value, usize) {
    let acl = host.get("/usb/acl").await.1;
    let switch = host.get("/usb/passthrough").await.1;
    (acl, switch, host.audit_records().len())
}

#[tokio::test]
async fn acl_edits_are_signed_and_audited_as_api_changes() {
    let host = Host::start().await;
    let rule = json!({"rule": {"vendor_id": "0525", "product_id": "a4a0", "allow": true, "label": "gadget"}});
    let (status, acl) = host.send_json(Method::POST, "/usb/acl/rules", rule).await;
    assert_eq!(status, 200, "{acl}");
    assert_eq!(acl["rules"][0]["vendor_id"], "0525");
    assert_eq!(
        (acl["signed"].clone(), acl["integrity_ok"].clone()),
        (json!(true), json!(true))
    );
    let first = json!({"rule": {"vendor_id": "1234", "allow": false}, "first": true});
    let (_, acl) = host.send_json(Method::POST, "/usb/acl/rules", first).await;
    assert_eq!(acl["rules"][0]["vendor_id"], "1234");
    let (status, acl) = host
        .send_json(Method::PUT, "/usb/acl/default", json!({"verdict": "allow"}))
        .await;
    assert_eq!((status, acl["default"].clone()), (200, json!("allow")));
    let (status, acl) = host
        .call(host.req(Method::DELETE, "/usb/acl/rules/0"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(acl["rules"].as_array().unwrap().len(), 1);
    assert_eq!(acl["rules"][0]["vendor_id"], "0525");

    let records = host.audit_records();
    let ops: Vec<_> = records
        .iter()
        .map(|r| r["details"]["op"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ops,
        [
            "usb_acl_add",
            "usb_acl_add",
            "usb_acl_set_default",
            "usb_acl_remove"
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r["details"]["action"] == "api_change" && r["actor"] == "api:usb")
    );
    assert_eq!(records[3]["details"]["index"], 0);
    let (status, verify) = host.get("/usb/audit/verify").await;
    assert_eq!(status, 200);
    assert_eq!(verify, json!({"ok": true, "records": 4}));
}

#[tokio::test]
async fn bad_bodies_get_a_4xx_json_error_and_change_nothing() {
    let host = Host::start().await;
    host.send_json(
        Method::POST,
        "/usb/acl/rules",
        json!({"rule": {"vendor_id": "0525", "allow": true}}),
    )
    .await;
    let before = snapshot(&host).await;
    let big = format!(
        "{{\"rule\": {{\"allow\": true, \"label\": \"{}\"}}}}",
        "x".repeat(64 * 1024)
    );
    let cases: Vec<(Method, &str, Vec<u8>, u16)> = vec![
        (
            Method::POST,
            "/usb/acl/rules",
            b"{\"rule\": {".to_vec(),
            400,
        ),
        (
            Method::POST,
            "/usb/acl/rules",
            br#"{"rule": {"allow": true}, "extra": 1}"#.to_vec(),
            422,
        ),
        (
            Method::POST,
            "/usb/acl/rules",
            br#"{"rule": {"allow": true, "colour": "red"}}"#.to_vec(),
            422,
        ),
        (
            Method::POST,
            "/usb/acl/rules",
            br#"{"rule": {"vendor_id": "zz", "allow": true}}"#.to_vec(),
            422,
        ),
        (Method::POST, "/usb/acl/rules", big.into_bytes(), 413),
        (
            Method::PUT,
            "/usb/acl/default",
            br#"{"verdict": "maybe"}"#.to_vec(),
            422,
        ),
        (
            Method::PUT,
            "/usb/acl/default",
            br#"{"verdict": "allow", "why": "x"}"#.to_vec(),
            422,
        ),
        (
            Method::POST,
            "/usb/passthrough",
            br#"{"enabled": "yes"}"#.to_vec(),
            422,
        ),
        (
            Method::POST,
            "/usb/passthrough",
            br#"{"enabled": true, "for": 5}"#.to_vec(),
            422,
        ),
        (Method::POST, "/usb/passthrough", b"not json".to_vec(), 400),
        (
            Method::POST,
            "/usb/loopback/open",
            br#"{"vendor": "0525"}"#.to_vec(),
            422,
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, answer) = host.send_raw(method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let no_type = host
        .req(Method::POST, "/usb/passthrough")
        .body(r#"{"enabled": true}"#);
    let (status, answer) = host.call(no_type).await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = host
        .call(host.req(Method::DELETE, "/usb/acl/rules/7"))
        .await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no rule at index 7")
    );
    let (status, _) = host
        .call(host.req(Method::DELETE, "/usb/acl/rules/first"))
        .await;
    assert_eq!(status, 400);
    assert_eq!(snapshot(&host).await, before, "nothing changed");
}

#[tokio::test]
async fn an_acl_that_failed_its_integrity_check_is_not_re_signed_through_the_api() {
    let host = Host::start().await;
    host.send_json(
        Method::POST,
        "/usb/acl/rules",
        json!({"rule": {"vendor_id": "0525", "allow": false}}),
    )
    .await;
    let text = std::fs::read_to_string(host.paths.acl())
        .unwrap()
        .replace("false", "true");
    std::fs::write(host.paths.acl(), text).unwrap();
    let (status, answer) = host
        .send_json(Method::PUT, "/usb/acl/default", json!({"verdict": "allow"}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(host.get("/usb/acl").await.1["integrity_ok"], false);
    assert_eq!(host.audit_records().len(), 1);
}

#[tokio::test]
async fn the_switch_devices_and_loopback_work_through_the_api() {
    let host = Host::start().await;
    let (status, devices) = host.get("/usb/devices").await;
    assert_eq!(status, 200);
    assert_eq!(devices["devices"][0]["vendor_id"], "0525", "{devices}");
    assert_eq!(devices["devices"][0]["verdict"], "deny");
    let (status, answer) = host.get("/usb/loopback/devices").await;
    assert_eq!(status, 409, "passthrough is off: {answer}");
    let (status, on) = host
        .send_json(Method::POST, "/usb/passthrough", json!({"enabled": true}))
        .await;
    assert_eq!((status, on["enabled"].clone()), (200, json!(true)));
    assert_eq!(host.get("/usb/passthrough").await.1["enabled"], true);
    let (_, listed) = host.get("/usb/loopback/devices").await;
    assert_eq!(
        listed["devices"],
        json!([]),
        "the ACL denies by default: {listed}"
    );
    let (status, answer) = host
        .send_json(Method::POST, "/usb/loopback/open", json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");
    host.send_json(
        Method::POST,
        "/usb/acl/rules",
        json!({"rule": {"vendor_id": "0525", "allow": true}}),
    )
    .await;
    assert_eq!(
        host.get("/usb/devices").await.1["devices"][0]["verdict"],
        "allow"
    );
    let (_, listed) = host.get("/usb/loopback/devices").await;
    assert_eq!(listed["devices"][0]["product_id"], "a4a0", "{listed}");
    let open = json!({"vendor_id": "0525", "product_id": "a4a0"});
    let (status, opened) = host
        .send_json(Method::POST, "/usb/loopback/open", open)
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["descriptor_ids"], "0525:a4a0");
    assert!(
        !host.device.is_open(),
        "released after reading the descriptor"
    );
    let (_, off) = host
        .send_json(Method::POST, "/usb/passthrough", json!({"enabled": false}))
        .await;
    assert_eq!(off["enabled"], false);
    let actions: Vec<_> = host
        .audit_records()
        .iter()
        .map(|r| {
            r["details"]["op"]
                .as_str()
                .or(r["details"]["action"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        actions.contains(&"usb_passthrough_enable".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"opened".to_owned()) && actions.contains(&"closed".to_owned()),
        "{actions:?}"
    );
    assert_eq!(
        actions.last().map(String::as_str),
        Some("usb_passthrough_disable")
    );
    assert_eq!(host.get("/usb/audit/verify").await.1["ok"], true);
}

#[tokio::test]
async fn with_the_agents_audit_chain_api_changes_and_claims_keep_it_intact() {
    let host = Host::start_with(true).await;
    let agent = host.audit.clone().unwrap();
    agent.append("agent", json!({"action": "started"})).unwrap();
    host.send_json(Method::POST, "/usb/passthrough", json!({"enabled": true}))
        .await;
    host.send_json(
        Method::POST,
        "/usb/acl/rules",
        json!({"rule": {"vendor_id": "0525", "allow": true}}),
    )
    .await;
    let (status, opened) = host
        .send_json(Method::POST, "/usb/loopback/open", json!({}))
        .await;
    assert_eq!(status, 200, "{opened}");
    agent.append("agent", json!({"action": "stopped"})).unwrap();
    let (_, verify) = host.get("/usb/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
    let tenants: Vec<_> = host
        .audit_records()
        .iter()
        .map(|r| r["tenant"].clone())
        .collect();
    assert!(
        tenants.iter().all(|t| t == "agent"),
        "one chain: {tenants:?}"
    );
    assert!(host.audit_records().len() >= 6);
}

//! The bearer token and the bind rules.

mod common;

use std::sync::Arc;

use common::Host;
use reach_hostapi::{ApiConfig, ApiError};
use reach_usb::backend::fake::FakeBackend;
use reach_usb::tools::UsbPaths;

#[tokio::test]
async fn requests_without_the_right_token_get_a_401_json_error() {
    let host = Host::start().await;
    let same_length = {
        let mut t = host.token.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'0' { b'1' } else { b'0' };
        String::from_utf8(t).unwrap()
    };
    let url = host.url("/usb/acl");
    let attempts = [
        host.http.get(&url),
        host.http.get(&url).bearer_auth("wrong"),
        host.http.get(&url).bearer_auth(&same_length),
        host.http.get(&url).basic_auth("x", Some(&host.token)),
        host.http.get(host.url("/usb/events")),
        host.http
            .post(host.url("/usb/passthrough"))
            .json(&serde_json::json!({"enabled": true})),
    ];
    for req in attempts {
        let (status, body) = host.call(req).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("usb-api-token"),
            "{body}"
        );
    }
    assert_eq!(
        host.get("/usb/passthrough").await.1["enabled"],
        false,
        "nothing changed"
    );
    assert!(host.audit_records().is_empty());
    let (status, _) = host.get("/usb/acl").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_token_is_printed_only_on_first_start_and_kept_for_the_next() {
    let host = Host::start().await;
    let again = reach_hostapi::start(ApiConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        paths: host.paths.clone(),
        backend: Arc::new(FakeBackend::new()),
        audit: None,
    })
    .await
    .unwrap();
    assert!(again.new_token.is_none());
    let resp = host
        .http
        .get(format!("http://{}/usb/acl", again.addr))
        .bearer_auth(&host.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_non_loopback_bind_without_tls_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let result = reach_hostapi::start(ApiConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        tls: None,
        paths: UsbPaths {
            config_dir: dir.path().to_path_buf(),
        },
        backend: Arc::new(FakeBackend::new()),
        audit: None,
    })
    .await;
    let Err(err @ ApiError::NonLoopback(_)) = result else {
        panic!("expected a refusal");
    };
    assert!(err.to_string().contains("--tls-cert"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_and_unknown_paths_are_json_404() {
    let host = Host::start().await;
    let (status, doc) = host.call(host.http.get(host.url("/openapi.json"))).await;
    assert_eq!(status, 200);
    for path in [
        "/usb/devices",
        "/usb/passthrough",
        "/usb/acl",
        "/usb/acl/rules",
        "/usb/acl/rules/{index}",
        "/usb/acl/default",
        "/usb/loopback/devices",
        "/usb/loopback/open",
        "/usb/audit/verify",
        "/usb/events",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(
        doc["paths"].get("/usb/acl/export").is_none(),
        "export stays CLI-only"
    );
    let (status, body) = host.get("/usb/nothing").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = host
        .call(host.req(reqwest::Method::PATCH, "/usb/acl"))
        .await;
    assert_eq!(status, 405, "{body}");
}

#[tokio::test]
async fn a_non_loopback_bind_with_tls_serves_https_and_still_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let api = reach_hostapi::start(ApiConfig {
        listen: "0.0.0.0:0".parse().unwrap(),
        tls: Some((cert_path, key_path)),
        paths: UsbPaths {
            config_dir: dir.path().join("config"),
        },
        backend: Arc::new(FakeBackend::new()),
        audit: None,
    })
    .await
    .unwrap();
    assert!(api.tls());
    let token = api.new_token.clone().unwrap();
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(root)
        .resolve("localhost", ([127, 0, 0, 1], api.addr.port()).into())
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/usb/acl", api.addr.port());
    let anonymous = client.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let answer = client.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let got = plain
        .get(format!("http://127.0.0.1:{}/usb/acl", api.addr.port()))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(
        got.map(|r| r.status() != 200).unwrap_or(true),
        "no plain HTTP"
    );
}

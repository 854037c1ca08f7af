//! Built-in TLS: the server serves HTTPS from PEM certificate and key files.

mod common;

use reach_server::{AppState, Config};

#[tokio::test]
async fn the_server_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    let mut config = Config::for_tests(&dir.path().join("data"));
    config.tls_cert = Some(cert_path);
    config.tls_key = Some(key_path);
    let (state, _) = AppState::open(config).await.unwrap();
    let running = reach_server::server::start(state).await.unwrap();
    assert!(running.url().starts_with("https://"));

    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(root)
        .resolve("localhost", running.addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/healthz", running.addr.port());
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // Plain HTTP to the TLS port does not get an answer from the API.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap();
    let got = plain
        .get(format!("http://{}/healthz", running.addr))
        .send()
        .await;
    assert!(got.map(|r| r.status() != 200).unwrap_or(true));
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_tls_files_fail_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.tls_cert = Some(dir.path().join("nope.pem"));
    config.tls_key = Some(dir.path().join("nope.key"));
    let (state, _) = AppState::open(config).await.unwrap();
    let err = reach_server::server::start(state).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot listen"), "{err}");
}

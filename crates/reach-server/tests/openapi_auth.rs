//! Every endpoint in the OpenAPI document exists and rejects unauthenticated calls, except
//! the public ones (login, health, the document itself).

mod common;

use common::TestServer;
use reqwest::Method;

const PUBLIC: [(&str, &str); 5] = [
    ("post", "/api/auth/login"),
    ("post", "/api/support-codes/validate"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];

#[tokio::test]
async fn every_openapi_path_rejects_unauthenticated_calls() {
    let server = TestServer::start().await;
    let (status, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 8, "{paths:?}");
    let mut checked = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else {
                continue;
            };
            if PUBLIC.contains(&(method, path.as_str())) {
                assert!(
                    operation.get("security").is_none(),
                    "{method} {path} documents security"
                );
                continue;
            }
            assert!(
                operation.get("security").is_some(),
                "{method} {path} lacks security"
            );
            let concrete = path.replace("{id}", "usr_00000000000000000000000000000000");
            let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some("garbage"), Some("rt1.e30.AAAA")] {
                let got = server
                    .call(
                        http_method.clone(),
                        &concrete,
                        token,
                        Some(serde_json::json!({})),
                    )
                    .await;
                assert_eq!(got.0, 401, "{method} {path} with {token:?}: {}", got.1);
                assert!(got.1["error"].is_string(), "{method} {path}: {}", got.1);
            }
            checked += 1;
        }
    }
    assert!(checked >= 9, "checked {checked} operations");
}

#[tokio::test]
async fn the_public_endpoints_answer_without_a_token() {
    let server = TestServer::start().await;
    let (status, health) = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, doc) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for documented in [
        "/api/auth/login",
        "/api/users/{id}",
        "/api/audit/verify",
        "/metrics",
    ] {
        assert!(
            doc["paths"].get(documented).is_some(),
            "{documented} missing"
        );
    }
}

//! Bad input table: every malformed request gets a clear 4xx JSON error, never a 500, and the
//! server keeps serving.

mod common;

use common::TestServer;
use reach_server::auth::token::{Claims, Purpose, TokenSigner};
use reqwest::Method;

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    token: TokenKind,
    status: u16,
    code: &'static str,
}

enum TokenKind {
    None,
    Admin,
    Raw(String),
}

fn expired_token(server: &TestServer) -> String {
    // Signed with the right key but expired: read the key-derived signer from the state.
    let auth_claims = Claims {
        purpose: Purpose::Login,
        tenant_id: "t".into(),
        user_id: "u".into(),
        iat: 1,
        exp: 2,
        jti: "tok_x".into(),
        parent_jti: None,
    };
    server.state.tokens.sign(&auth_claims)
}

fn forged_token() -> String {
    let claims = Claims {
        purpose: Purpose::Login,
        tenant_id: "t".into(),
        user_id: "u".into(),
        iat: 1,
        exp: i64::MAX / 2,
        jti: "tok_y".into(),
        parent_jti: None,
    };
    TokenSigner::new([9; 32]).sign(&claims)
}

fn cases(server: &TestServer) -> Vec<Case> {
    let json = Some("application/json");
    let user = |body: &str| body.as_bytes().to_vec();
    let case = |name, method, path, content_type, body, token, status, code| Case {
        name,
        method,
        path,
        content_type,
        body,
        token,
        status,
        code,
    };
    vec![
        case(
            "malformed json",
            Method::POST,
            "/api/auth/login",
            json,
            user("{\"username\":"),
            TokenKind::None,
            400,
            "malformed_json",
        ),
        case(
            "wrong types",
            Method::POST,
            "/api/auth/login",
            json,
            user("{\"username\":1,\"password\":[]}"),
            TokenKind::None,
            400,
            "invalid_body",
        ),
        case(
            "missing field",
            Method::POST,
            "/api/users",
            json,
            user("{\"username\":\"x\"}"),
            TokenKind::Admin,
            400,
            "invalid_body",
        ),
        case(
            "unknown field",
            Method::POST,
            "/api/users",
            json,
            user(
                "{\"username\":\"x\",\"password\":\"12345678\",\"role\":\"viewer\",\"admin\":true}",
            ),
            TokenKind::Admin,
            400,
            "invalid_body",
        ),
        case(
            "unknown role",
            Method::POST,
            "/api/users",
            json,
            user("{\"username\":\"x\",\"password\":\"12345678\",\"role\":\"root\"}"),
            TokenKind::Admin,
            400,
            "invalid_body",
        ),
        case(
            "bad user name",
            Method::POST,
            "/api/users",
            json,
            user("{\"username\":\"a b\",\"password\":\"12345678\",\"role\":\"viewer\"}"),
            TokenKind::Admin,
            400,
            "invalid_username",
        ),
        case(
            "huge body",
            Method::POST,
            "/api/users",
            json,
            vec![b' '; 2 * 1024 * 1024],
            TokenKind::Admin,
            413,
            "payload_too_large",
        ),
        case(
            "wrong content type",
            Method::POST,
            "/api/auth/login",
            Some("text/plain"),
            user("{}"),
            TokenKind::None,
            415,
            "unsupported_media_type",
        ),
        case(
            "no content type",
            Method::POST,
            "/api/users",
            None,
            user("{}"),
            TokenKind::Admin,
            415,
            "unsupported_media_type",
        ),
        case(
            "garbage token",
            Method::GET,
            "/api/me",
            None,
            vec![],
            TokenKind::Raw("garbage".into()),
            401,
            "invalid_token",
        ),
        case(
            "oversized token",
            Method::GET,
            "/api/me",
            None,
            vec![],
            TokenKind::Raw(format!("rt1.{}", "A".repeat(5000))),
            401,
            "invalid_token",
        ),
        case(
            "forged token",
            Method::GET,
            "/api/me",
            None,
            vec![],
            TokenKind::Raw(forged_token()),
            401,
            "invalid_token",
        ),
        case(
            "expired token",
            Method::GET,
            "/api/me",
            None,
            vec![],
            TokenKind::Raw(expired_token(server)),
            401,
            "token_expired",
        ),
        case(
            "bad query",
            Method::GET,
            "/api/audit?limit=abc",
            None,
            vec![],
            TokenKind::Admin,
            400,
            "invalid_query",
        ),
        case(
            "page too big",
            Method::GET,
            "/api/audit?limit=100000",
            None,
            vec![],
            TokenKind::Admin,
            400,
            "invalid_query",
        ),
        case(
            "unknown route",
            Method::GET,
            "/api/nope",
            None,
            vec![],
            TokenKind::None,
            404,
            "not_found",
        ),
        case(
            "wrong method",
            Method::PUT,
            "/api/me",
            None,
            vec![],
            TokenKind::None,
            405,
            "method_not_allowed",
        ),
    ]
}

#[tokio::test]
async fn every_bad_request_gets_a_json_4xx_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    for case in cases(&server) {
        let token = match &case.token {
            TokenKind::None => None,
            TokenKind::Admin => Some(server.admin_token.as_str()),
            TokenKind::Raw(raw) => Some(raw.as_str()),
        };
        let mut request = server.request(case.method.clone(), case.path, token);
        if let Some(content_type) = case.content_type {
            request = request.header("content-type", content_type);
        }
        let response = request
            .body(case.body.clone())
            .send()
            .await
            .expect(case.name);
        let status = response.status().as_u16();
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            (status, body["error"].as_str()),
            (case.status, Some(case.code)),
            "{}: {body}",
            case.name
        );
        assert!(body["message"].is_string(), "{}", case.name);
    }
    let (status, _) = server
        .call(Method::GET, "/api/me", Some(&server.admin_token), None)
        .await;
    assert_eq!(status, 200);
    let (_, users) = server
        .call(Method::GET, "/api/users", Some(&server.admin_token), None)
        .await;
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "no bad request created anything"
    );
}

//! Viewer tokens: only a viewer token for that session opens `/ws/viewer`; expired and
//! revoked tokens are refused; logout and role downgrade close live viewer sockets;
//! browser sockets from a foreign origin are refused; viewer tokens do not work on REST.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reach_agent::ClientError;
use reach_agent::viewer::ViewerConnection;
use reach_agent::ws::{self, Incoming};
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, envelope::Body};
use reach_proto::{close, codec};
use reach_server::auth::token::{Claims, Purpose, ViewerAccess};
use reqwest::Method;
use serde_json::json;

use common::TestServer;
use relay::*;

async fn refused(s: &TestServer, token: &str) -> u16 {
    match ViewerConnection::join(&s.url, token).await {
        Err(ClientError::Rejected { code, .. } | ClientError::Closed { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn login_tokens_and_garbage_are_refused_on_the_viewer_socket() {
    let s = TestServer::start().await;
    assert_eq!(refused(&s, &s.admin_token).await, close::UNAUTHORIZED);
    assert_eq!(refused(&s, "rt1.e30.AAAA").await, close::UNAUTHORIZED);
    assert_eq!(refused(&s, "").await, close::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_for_session_a_cannot_reach_session_b() {
    let s = TestServer::start().await;
    let (ma, _, agent_a) = managed_agent(&s, "a").await;
    let (mb, _, mut agent_b) = managed_agent(&s, "b").await;
    let sa = open_session(&s, &s.admin_token, &ma).await;
    let sb = open_session(&s, &s.admin_token, &mb).await;
    let mut viewer_a = join(&s, &s.admin_token, &sa).await;
    let mut viewer_b = join(&s, &s.admin_token, &sb).await;
    let mut spoof = codec::envelope(&sb, key("KeyX"));
    spoof.viewer_id = viewer_b.viewer_id;
    viewer_a.send_raw(codec::encode(&spoof)).await.unwrap();
    assert_eq!(viewer_closed(&mut viewer_a).await.0, close::FORBIDDEN);
    viewer_b.send(key("KeyB")).await.unwrap();
    assert!(matches!(agent_input(&mut agent_b).await.body, Some(Body::Key(k)) if k.code == "KeyB"));
    agent_a.send(frame(&sa, 1)).await.unwrap();
    let token_a = viewer_token(&s, &s.admin_token, &sa).await;
    let again = ViewerConnection::join(&s.url, &token_a).await.unwrap();
    assert_eq!(
        again.session_id, sa,
        "the token's session, whatever the client wants"
    );
    again.leave().await;
}

#[tokio::test]
async fn expired_viewer_tokens_are_refused() {
    let s = TestServer::start().await;
    let (m, _, _agent) = managed_agent(&s, "exp").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let login = reach_server::http::AuthUser::from_token(&s.state, &s.admin_token)
        .await
        .unwrap();
    let now = reach_server::db::now_ms() / 1000;
    let claims = Claims {
        purpose: Purpose::Viewer {
            session_id: sid,
            access: ViewerAccess::Control,
            usb: false,
        },
        tenant_id: login.tenant_id.clone(),
        user_id: login.user_id.clone(),
        iat: now - 600,
        exp: now - 300,
        jti: "tok_expired".into(),
        parent_jti: Some(login.claims.jti.clone()),
    };
    assert_eq!(
        refused(&s, &s.state.tokens.sign(&claims)).await,
        close::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_closes_live_viewer_sockets_and_revokes_their_tokens() {
    let s = TestServer::start().await;
    let (m, _, _agent) = managed_agent(&s, "logout").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let login = s.login_token(None, "admin", common::ADMIN_PASSWORD).await;
    let token = viewer_token(&s, &login, &sid).await;
    let mut viewer = ViewerConnection::join(&s.url, &token).await.unwrap();
    let (status, _) = s
        .call(Method::POST, "/api/auth/logout", Some(&login), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(viewer_closed(&mut viewer).await.0, close::REVOKED);
    assert_eq!(refused(&s, &token).await, close::UNAUTHORIZED);
    let other = join(&s, &s.admin_token, &sid).await;
    other.leave().await;
}

#[tokio::test]
async fn a_role_downgrade_closes_a_control_viewer() {
    let s = TestServer::start().await;
    let user = s.create_user("tech", "tech-password", "technician").await;
    let tech = s.login_token(None, "tech", "tech-password").await;
    let (m, _, _agent) = managed_agent(&s, "downgrade").await;
    let sid = open_session(&s, &tech, &m).await;
    let mut viewer = join(&s, &tech, &sid).await;
    let path = format!("/api/users/{}", user["id"].as_str().unwrap());
    let (status, body) = s
        .call(
            Method::PATCH,
            &path,
            Some(&s.admin_token),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(viewer_closed(&mut viewer).await.0, close::REVOKED);
}

#[tokio::test]
async fn viewer_tokens_do_not_work_on_the_rest_api() {
    let s = TestServer::start().await;
    let (m, _, _agent) = managed_agent(&s, "rest").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let token = viewer_token(&s, &s.admin_token, &sid).await;
    let got = s
        .call(Method::GET, "/api/sessions", Some(&token), None)
        .await;
    assert_eq!(got.0, 401, "{}", got.1);
    let got = s
        .call(
            Method::POST,
            &format!("/api/sessions/{sid}/viewer-token"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(got.0, 401, "{}", got.1);
}

#[tokio::test]
async fn a_browser_socket_from_a_foreign_origin_is_refused() {
    let s = TestServer::start().await;
    let (m, _, _agent) = managed_agent(&s, "origin").await;
    let sid = open_session(&s, &s.admin_token, &m).await;
    let token = viewer_token(&s, &s.admin_token, &sid).await;
    let url = format!("{}/ws/viewer", s.url.replacen("http", "ws", 1));
    let mut ws = ws::connect_with_headers(
        &url,
        &[("origin", "https://evil.example")],
        AGENT_MAX_MESSAGE,
    )
    .await
    .unwrap();
    let auth = Body::ViewerAuth(v1::ViewerAuth {
        token: token.clone(),
    });
    let _ = ws::send(&mut ws, &codec::envelope("", auth)).await;
    match tokio::time::timeout(WAIT, ws::recv(&mut ws, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Closed { code, .. } => assert_eq!(code, close::BAD_ORIGIN),
        Incoming::Envelope(e) => panic!("joined from a foreign origin: {e:?}"),
    }
    let own = s.url.clone();
    let mut ws = ws::connect_with_headers(&url, &[("origin", own.as_str())], AGENT_MAX_MESSAGE)
        .await
        .unwrap();
    let auth = Body::ViewerAuth(v1::ViewerAuth { token });
    ws::send(&mut ws, &codec::envelope("", auth)).await.unwrap();
    let ok = tokio::time::timeout(WAIT, ws::recv(&mut ws, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ok, Incoming::Envelope(e) if matches!(e.body, Some(Body::AuthOk(_)))));
}

//! Logout revokes the login token and every viewer token it minted; token kinds never cross.

mod common;

use common::{TestServer, assert_error};
use reach_proto::access::{UsbDenial, ViewerGrant};
use reach_server::auth::token::{FormatError, TokenError, ViewerAccess};
use reach_server::auth::tokens;
use reach_server::http::AuthUser;
use reqwest::Method;

#[tokio::test]
async fn logout_makes_the_token_and_its_viewer_tokens_unusable() {
    let server = TestServer::start().await;
    let token = server.admin_token.clone();
    let auth = AuthUser::from_token(&server.state, &token).await.unwrap();
    let grant = ViewerGrant {
        access: ViewerAccess::Control,
        usb: Ok(()),
    };
    let viewer = tokens::issue_viewer(&server.state, &auth.claims, "ses_1", &grant)
        .await
        .unwrap();
    let ticket = tokens::verify_viewer(&server.state, &viewer.token)
        .await
        .unwrap();
    assert_eq!(
        (ticket.session_id.as_str(), ticket.access, ticket.usb),
        ("ses_1", ViewerAccess::Control, true)
    );

    let (status, _) = server
        .call(Method::POST, "/api/auth/logout", Some(&token), None)
        .await;
    assert_eq!(status, 204);
    assert_error(
        &server
            .call(Method::GET, "/api/me", Some(&token), None)
            .await,
        401,
        "token_revoked",
    );
    assert_error(
        &server
            .call(Method::POST, "/api/auth/logout", Some(&token), None)
            .await,
        401,
        "token_revoked",
    );
    assert!(matches!(
        tokens::verify_viewer(&server.state, &viewer.token).await,
        Err(TokenError::Revoked)
    ));
    let (status, page) = server
        .call(
            Method::GET,
            "/api/audit?event_type=logout",
            Some(
                &server
                    .login_token(None, "admin", common::ADMIN_PASSWORD)
                    .await,
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn viewer_tokens_are_refused_by_the_api_and_login_tokens_by_the_viewer_surface() {
    let server = TestServer::start().await;
    let auth = AuthUser::from_token(&server.state, &server.admin_token)
        .await
        .unwrap();
    let grant = ViewerGrant {
        access: ViewerAccess::ViewOnly,
        usb: Err(UsbDenial::ViewOnly),
    };
    let viewer = tokens::issue_viewer(&server.state, &auth.claims, "ses_2", &grant)
        .await
        .unwrap();
    assert_error(
        &server
            .call(Method::GET, "/api/me", Some(&viewer.token), None)
            .await,
        401,
        "invalid_token",
    );
    assert!(matches!(
        tokens::verify_viewer(&server.state, &server.admin_token).await,
        Err(TokenError::Format(FormatError::WrongPurpose))
    ));
}

//! Managed session end to end: key → agent online → session → viewer joins → messages flow
//! both ways → ending the session closes the viewer; everything audited.

mod common;
#[path = "common/relay.rs"]
mod relay;

use reach_proto::close;
use reach_proto::v1::envelope::Body;
use reqwest::Method;

use common::TestServer;
use relay::*;

#[tokio::test]
async fn a_managed_session_relays_both_ways_and_ends_cleanly() {
    let s = TestServer::start().await;
    let (machine_id, _key, mut agent) = managed_agent(&s, "kiosk-1").await;
    let (status, m) = s
        .call(
            Method::GET,
            &format!("/api/machines/{machine_id}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(m["online"], true, "{m}");
    assert!(
        m["os"].as_str().is_some_and(|os| !os.is_empty()),
        "hello stored: {m}"
    );

    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut viewer = join(&s, &s.admin_token, &session_id).await;
    assert_eq!(viewer.access, reach_proto::policy::ViewerAccess::Control);

    viewer.send(key("KeyA")).await.unwrap();
    let got = agent_input(&mut agent).await;
    assert_eq!(got.session_id, session_id, "stamped with the session");
    assert_eq!(got.viewer_id, viewer.viewer_id, "stamped with the viewer");
    assert!(matches!(got.body, Some(Body::Key(k)) if k.code == "KeyA"));

    agent.send(frame(&session_id, 7)).await.unwrap();
    let seen = viewer_media(&mut viewer).await;
    assert!(matches!(seen.body, Some(Body::VideoFrame(f)) if f.sequence == 7));

    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/sessions/{session_id}"),
            Some(&s.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::NORMAL);
    let v = session_as_admin(&s, &session_id).await;
    assert_eq!(v["end_reason"], "ended_by_user", "{v}");

    let types = audit_types(&s).await;
    for t in [
        "key_issued",
        "session_started",
        "viewer_joined",
        "viewer_left",
        "session_ended",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let (_, verify) = s
        .call(Method::GET, "/api/audit/verify", Some(&s.admin_token), None)
        .await;
    assert_eq!(verify["ok"], true);
}

#[tokio::test]
async fn several_viewers_share_a_session_and_an_ended_session_refuses_new_tokens() {
    let s = TestServer::start().await;
    let (machine_id, _key, agent) = managed_agent(&s, "shared").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut a = join(&s, &s.admin_token, &session_id).await;
    let mut b = join(&s, &s.admin_token, &session_id).await;
    assert_ne!(a.viewer_id, b.viewer_id);
    agent.send(frame(&session_id, 1)).await.unwrap();
    for v in [&mut a, &mut b] {
        assert!(matches!(
            viewer_media(v).await.body,
            Some(Body::VideoFrame(_))
        ));
    }
    let (status, list) = s
        .call(Method::GET, "/api/sessions", Some(&s.admin_token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["viewers"], 2, "{list}");

    s.call(
        Method::DELETE,
        &format!("/api/sessions/{session_id}"),
        Some(&s.admin_token),
        None,
    )
    .await;
    assert_eq!(viewer_closed(&mut a).await.0, close::NORMAL);
    assert_eq!(viewer_closed(&mut b).await.0, close::NORMAL);
    let path = format!("/api/sessions/{session_id}/viewer-token");
    let got = s
        .call(Method::POST, &path, Some(&s.admin_token), None)
        .await;
    common::assert_error(&got, 409, "session_ended");
}

#[tokio::test]
async fn a_session_to_an_offline_or_unknown_machine_is_refused() {
    let s = TestServer::start().await;
    let m = create_machine(&s, serde_json::json!({"name": "offline"})).await;
    let body = serde_json::json!({"machine_id": m["id"]});
    let got = s
        .call(
            Method::POST,
            "/api/sessions",
            Some(&s.admin_token),
            Some(body),
        )
        .await;
    common::assert_error(&got, 409, "machine_offline");
    let body = serde_json::json!({"machine_id": "mch_nope"});
    let got = s
        .call(
            Method::POST,
            "/api/sessions",
            Some(&s.admin_token),
            Some(body),
        )
        .await;
    common::assert_error(&got, 404, "not_found");
}

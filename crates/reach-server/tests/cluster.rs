//! Several instances on one database and a real `nats-server`: an agent on one instance and a
//! viewer on another share a session; revocations, key revokes, session ends and tenant
//! suspensions reach sockets on every instance; support codes stay single-use across them.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/nats.rs"]
mod nats;
#[path = "common/relay.rs"]
mod relay;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reach_agent::Credential;
use reach_agent::consent::DenyAll;
use reach_agent::ws::{self as agent_ws, Incoming};
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, envelope::Body};
use reach_proto::{close, codec};
use reqwest::Method;
use serde_json::json;

use cluster::{WITHIN, cluster};
use relay::*;

fn big_frame(session_id: &str, len: usize) -> v1::Envelope {
    codec::envelope(
        session_id,
        Body::VideoFrame(v1::VideoFrame {
            codec: v1::VideoCodec::H264.into(),
            sequence: 99,
            bitstream: (0..len).map(|i| (i % 251) as u8).collect(),
            ..Default::default()
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_and_a_viewer_on_b_share_a_session_both_ways() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (machine, _, mut agent) = managed_agent(a, "on-a").await;

    // B sees the machine online and opens the session where the agent is.
    let m = machine_of(b, &machine).await;
    assert_eq!(m["online"], true, "{m}");
    let session = open_session(b, &b.admin_token, &machine).await;
    assert_eq!(a.state.relay.viewer_count(&session), 0, "held by A");

    let mut viewer = join(b, &b.admin_token, &session).await;
    viewer.send(key("KeyQ")).await.unwrap();
    let input = agent_input(&mut agent).await;
    assert!(
        matches!(&input.body, Some(Body::Key(k)) if k.code == "KeyQ"),
        "{input:?}"
    );
    assert!(input.viewer_id > 0, "stamped with the viewer id");
    assert_eq!(a.state.relay.viewer_count(&session), 1, "served by A");

    // Video both small and larger than a bus piece (cut and joined), in order.
    agent.send(frame(&session, 1)).await.unwrap();
    agent
        .send(big_frame(&session, 3 * 1024 * 1024 / 2))
        .await
        .unwrap();
    agent.send(frame(&session, 2)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        if let Some(Body::VideoFrame(f)) = viewer_media(&mut viewer).await.body {
            seen.push((f.sequence, f.bitstream.len()));
        }
    }
    assert_eq!(seen, vec![(1, 0), (99, 3 * 1024 * 1024 / 2), (2, 0)]);

    // Ending it on B closes the viewer that B relays for A.
    let (status, _) = b
        .call(
            Method::DELETE,
            &format!("/api/sessions/{session}"),
            Some(&b.admin_token),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::NORMAL);
    assert_eq!(a.state.relay.viewer_count(&session), 0);
    no_tunnels_left(&servers).await;
    let listed = audit_types(a).await;
    for event in [
        "session_started",
        "viewer_joined",
        "viewer_left",
        "session_ended",
    ] {
        assert!(listed.iter().any(|t| t == event), "{event} in {listed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_token_for_a_session_on_a_is_checked_there_and_a_bad_one_is_refused() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let (machine, _, _agent) = managed_agent(a, "on-a").await;
    let session = open_session(a, &a.admin_token, &machine).await;
    let token = viewer_token(b, &b.admin_token, &session).await;
    // Revoked before use: the home refuses it, and the edge passes the close on.
    let (status, _) = b
        .call(Method::POST, "/api/auth/logout", Some(&b.admin_token), None)
        .await;
    assert_eq!(status, 204);
    let url = format!("{}/ws/viewer", b.url.replacen("http", "ws", 1));
    let mut ws = agent_ws::connect(&url, AGENT_MAX_MESSAGE).await.unwrap();
    let auth = Body::ViewerAuth(v1::ViewerAuth { token });
    agent_ws::send(&mut ws, &codec::envelope("", auth))
        .await
        .unwrap();
    match tokio::time::timeout(WAIT, agent_ws::recv(&mut ws, AGENT_MAX_MESSAGE))
        .await
        .unwrap()
        .unwrap()
    {
        Incoming::Closed { code, .. } => assert_eq!(code, close::UNAUTHORIZED),
        Incoming::Envelope(e) => panic!("joined with a revoked token: {e:?}"),
    }
    assert_eq!(a.state.relay.viewer_count(&session), 0);
    no_tunnels_left(&servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_on_a_closes_a_viewer_on_b_and_a_key_revoked_on_b_closes_the_agent_on_a() {
    let (_bus, servers) = cluster(2).await;
    let (a, b) = (&servers[0], &servers[1]);
    b.create_user("tech", "tech-password-1", "technician").await;
    let tech = a.login_token(None, "tech", "tech-password-1").await;
    let (machine_b, _, _agent_b) = managed_agent(b, "on-b").await;
    let session = open_session(b, &tech, &machine_b).await;
    let mut viewer = join(b, &tech, &session).await;
    viewer_next(&mut viewer).await; // started or pending

    let (status, _) = a
        .call(Method::POST, "/api/auth/logout", Some(&tech), None)
        .await;
    assert_eq!(status, 204);
    let start = Instant::now();
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::REVOKED);
    assert!(
        start.elapsed() < WITHIN,
        "closed after {:?}",
        start.elapsed()
    );

    let (machine_a, key_a, mut agent_a) = managed_agent(a, "on-a").await;
    let path = format!("/api/machines/{machine_a}/keys/{key_a}");
    let (status, _) = b
        .call(Method::DELETE, &path, Some(&b.admin_token), None)
        .await;
    assert_eq!(status, 204);
    let start = Instant::now();
    agent_disconnected(&mut agent_a).await;
    assert!(
        start.elapsed() < WITHIN,
        "closed after {:?}",
        start.elapsed()
    );
    let offline = tokio::time::timeout(WAIT, async {
        while machine_of(b, &machine_a).await["online"] != false {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(offline.is_ok(), "the revoked machine shows offline on B");
}

/// Waits until no instance serves or relays a tunnel any more (none is left behind).
async fn no_tunnels_left(servers: &[common::TestServer]) {
    let done = tokio::time::timeout(WAIT, async {
        loop {
            let left: Vec<(usize, usize)> = servers
                .iter()
                .map(|s| s.state.bus.as_ref().map_or((0, 0), |b| b.tunnels()))
                .collect();
            if left.iter().all(|t| *t == (0, 0)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "tunnels left behind");
}

/// `GET /api/machines/{id}` as the admin (asserting 200).
async fn machine_of(s: &common::TestServer, id: &str) -> serde_json::Value {
    let path = format!("/api/machines/{id}");
    let (status, m) = s.call(Method::GET, &path, Some(&s.admin_token), None).await;
    assert_eq!(status, 200, "{m}");
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_suspended_on_c_is_shut_out_on_every_instance() {
    let (_bus, servers) = cluster(3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let body = json!({"name": "acme", "admin_username": "boss", "admin_password": "boss-password"});
    let (status, t) = c
        .call(
            Method::POST,
            "/api/tenants",
            Some(&c.admin_token),
            Some(body),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let acme = t["tenant"]["id"].as_str().unwrap().to_owned();
    let boss = a.login_token(Some("acme"), "boss", "boss-password").await;
    let (status, m) = a
        .call(
            Method::POST,
            "/api/machines",
            Some(&boss),
            Some(json!({"name": "acme-pc"})),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let machine = m["id"].as_str().unwrap().to_owned();
    let (status, k) = a
        .call(
            Method::POST,
            &format!("/api/machines/{machine}/keys"),
            Some(&boss),
            None,
        )
        .await;
    assert_eq!(status, 201, "{k}");
    let acme_key = reach_proto::agent_key::AgentKey::parse(k["key"].as_str().unwrap()).unwrap();
    let credential = Credential::Key(acme_key);
    let mut agent = reach_agent::spawn(agent_config(a, credential, Arc::new(DenyAll)));
    wait_connected(&mut agent).await;
    let session = open_session(b, &boss, &machine).await;
    let mut viewer = join(b, &boss, &session).await;
    let (own_machine, _, _own_agent) = managed_agent(b, "provider-pc").await;
    let own_session = open_session(a, &a.admin_token, &own_machine).await;
    let mut own_viewer = join(c, &c.admin_token, &own_session).await;

    let (status, _) = c
        .call(
            Method::PATCH,
            &format!("/api/tenants/{acme}"),
            Some(&c.admin_token),
            Some(json!({"suspended": true})),
        )
        .await;
    assert_eq!(status, 200);
    let start = Instant::now();
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_ne!(code, close::NORMAL);
    let why = agent_disconnected(&mut agent).await;
    assert!(why.contains("suspended"), "{why}");
    assert!(
        start.elapsed() < WITHIN,
        "shut out after {:?}",
        start.elapsed()
    );
    for s in [a, b, c] {
        let got = s.login(Some("acme"), "boss", "boss-password").await;
        assert_eq!(got.status(), 401);
    }
    // The provider's session, relayed across instances, is untouched.
    own_viewer.send(key("KeyZ")).await.unwrap();
    let (_, v) = a
        .call(
            Method::GET,
            &format!("/api/sessions/{own_session}"),
            Some(&a.admin_token),
            None,
        )
        .await;
    assert!(v["ended_at_ms"].is_null(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_agents_racing_one_code_across_three_instances_give_exactly_one_winner() {
    let (_bus, servers) = cluster(3).await;
    for round in 0..20u8 {
        let (status, v) = servers[0]
            .call(
                Method::POST,
                "/api/support-codes",
                Some(&servers[0].admin_token),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 201);
        let code = v["code"].as_str().unwrap().to_owned();
        let tasks: Vec<_> = (0..50u8)
            .map(|i| {
                let server = servers[usize::from(i) % 3].url.clone();
                let local = IpAddr::V4(Ipv4Addr::new(127, 20 + round, i, 1));
                let code = code.clone();
                tokio::spawn(async move { present_code(&server, local, code).await.is_ok() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}: exactly one agent binds");
    }
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE kind = 'attended'")
        .fetch_one(&servers[0].state.db)
        .await
        .unwrap();
    assert_eq!(sessions, 20, "one attended session per code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_b_tells_a_viewer_it_relays_for_a_to_reconnect_and_a_keeps_the_session() {
    let (_bus, mut servers) = cluster(2).await;
    let b = servers.pop().unwrap();
    let a = &servers[0];
    let (machine, _, mut agent) = managed_agent(a, "on-a").await;
    let session = open_session(a, &a.admin_token, &machine).await;
    let mut viewer = join(&b, &b.admin_token, &session).await;
    viewer.send(key("KeyD")).await.unwrap();
    agent_input(&mut agent).await;

    let _dir = b.stop().await;
    let (code, _) = viewer_closed(&mut viewer).await;
    assert_eq!(code, close::GOING_AWAY);
    // The viewer rejoins through A; the session never ended.
    let mut again = join(a, &a.admin_token, &session).await;
    again.send(key("KeyE")).await.unwrap();
    loop {
        // Stream control (the old viewer's leave stops the stream) may come first.
        if let Some(Body::Key(k)) = agent_input(&mut agent).await.body {
            assert_eq!(k.code, "KeyE");
            break;
        }
    }
}

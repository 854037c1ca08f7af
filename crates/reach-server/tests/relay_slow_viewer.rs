//! A viewer that stays behind past the deadline is closed, also when its socket is idle: its
//! task has no timer while it keeps up, and starts one when it falls behind.

mod common;
#[path = "common/relay.rs"]
mod relay;

use std::time::{Duration, Instant};

use reach_agent::viewer::ViewerConnection;
use reach_agent::ws::Incoming;
use reach_proto::close;
use reach_server::relay::budget::{Offer, SLOW_VIEWER_DEADLINE};

use common::TestServer;
use relay::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_behind_past_the_deadline_is_closed_and_one_that_catches_up_is_not() {
    let s = TestServer::start().await;
    let (machine_id, _key, _agent) = managed_agent(&s, "slow viewer").await;
    let session_id = open_session(&s, &s.admin_token, &machine_id).await;
    let mut behind = join(&s, &s.admin_token, &session_id).await;
    let mut recovers = join(&s, &s.admin_token, &session_id).await;
    let budgets = tokio::time::timeout(WAIT, async {
        loop {
            let budgets = s.state.relay.viewer_budgets(&session_id);
            if budgets.len() == 2 {
                return budgets;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both viewers joined");
    // Both fall behind now (skipping to a keyframe that does not come) while their sockets
    // stay idle: no write can time out, only the behind check can close them.
    let fell = Instant::now();
    for budget in &budgets {
        budget.give_up(fell);
    }
    // The second catches up after a while: a keyframe fits again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let keyframe = 1024;
    assert_eq!(
        budgets[1].offer_video(keyframe, true, Instant::now()),
        Offer::Queue
    );
    budgets[1].sent(keyframe);
    let (code, which) = tokio::time::timeout(
        SLOW_VIEWER_DEADLINE + WAIT,
        first_closed(&mut behind, &mut recovers),
    )
    .await
    .expect("the viewer still behind is closed");
    assert_eq!((code, which), (close::POLICY, 0), "the one still behind");
    assert!(
        fell.elapsed() >= SLOW_VIEWER_DEADLINE,
        "closed only after the deadline ({:?})",
        fell.elapsed()
    );
    assert_eq!(
        s.state.relay.viewer_count(&session_id),
        1,
        "the viewer that caught up stays"
    );
}

/// Whichever of the two viewers is closed first: its close code and which one it was.
async fn first_closed(a: &mut ViewerConnection, b: &mut ViewerConnection) -> (u16, usize) {
    loop {
        tokio::select! {
            m = a.recv() => if let Ok(Incoming::Closed { code, .. }) = m { return (code, 0) },
            m = b.recv() => if let Ok(Incoming::Closed { code, .. }) = m { return (code, 1) },
        }
    }
}

//! The session watch and the resume after a drop (real server, agent and fake backend).

use std::sync::atomic::Ordering;
use std::time::Duration;

use reach_client::viewer::ApiClient;
use reach_server::{AppState, Config};
use reach_usb::proto::DeviceFilter;
use reach_usbip::pump::{PumpEnd, pump};
use reach_usbip::request::EndpointTable;
use reach_usbip::wire::{CmdSubmit, Direction, Reply, decode_reply};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::*;
use reach_bench::usb_relay::{agent_config, drive_agent, enroll, wait_connected};

const WAIT: Duration = Duration::from_secs(15);

async fn attach_connection(api: &ApiClient, machine_id: &str) -> (String, Connection) {
    let body = json!({"machine_id": machine_id, "usb": true});
    let session = api.post_json("/api/sessions", &body).await.unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    let mut viewer = api.join(&id).await.unwrap().into_live();
    let client = viewer.usb_client().unwrap();
    let rejoin = Rejoin {
        api: api.clone(),
        session: id.clone(),
        window: RESUME_WINDOW,
    };
    (
        id,
        connection(
            viewer,
            client,
            rejoin,
            Arc::new(|_| {}),
            Notifier::default(),
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_learns_when_its_session_ends_or_the_hosts_agent_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(dir.path());
    config.admin_password = Some("session-watch-password".to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    let running = reach_server::server::start(state).await.unwrap();
    let url = running.url();
    let mut api = ApiClient::new(&url).unwrap();
    api.login("admin", "session-watch-password").await.unwrap();
    let (machine_id, key) = enroll(&api).await.unwrap();
    let mut agent = reach_agent::spawn(agent_config(&url, key));
    wait_connected(&mut agent).await.unwrap();
    let (stop_agent, agent_task) = drive_agent(agent);

    // A user ends the session.
    let (first, by_user) = attach_connection(&api, &machine_id).await;
    let path = format!("/api/sessions/{first}");
    api.request(reqwest::Method::DELETE, &path, None)
        .await
        .unwrap();
    let why = tokio::time::timeout(WAIT, by_user.lost).await.unwrap();
    assert!(why.contains("session"), "{why}");

    // In a new session (a live one is shared, not created twice), the host's agent stops:
    // the claims are gone with it.
    let (second, by_agent) = attach_connection(&api, &machine_id).await;
    assert_ne!(first, second);
    stop_agent.store(2, Ordering::Relaxed);
    let why = tokio::time::timeout(WAIT, by_agent.lost).await.unwrap();
    assert_eq!(why, "the host's agent went offline");
    let _ = agent_task.await;
    running.shutdown().await.unwrap();
}

/// A server, an agent sharing the fake loopback device (claims kept `retention` after a drop),
/// and a technician whose every connection to the server crosses a link the test can cut.
struct Outage {
    running: reach_server::server::Running,
    link: reach_bench::link::DelayLink,
    api: ApiClient,
    session: String,
    _agent: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Outage {
    async fn start(retention: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path());
        config.admin_password = Some("session-outage-password".to_owned().into());
        let (state, _) = AppState::open(config).await.unwrap();
        let running = reach_server::server::start(state).await.unwrap();
        let url = running.url();
        let target = url.trim_start_matches("http://").parse().unwrap();
        let link = reach_bench::link::DelayLink::start(target, Duration::ZERO)
            .await
            .unwrap();
        let mut api = ApiClient::new(&format!("http://{}", link.addr())).unwrap();
        api.login("admin", "session-outage-password").await.unwrap();
        let (machine_id, key) = enroll(&api).await.unwrap();
        let mut config = agent_config(&url, key);
        config.usb.as_mut().unwrap().retention = retention;
        let mut agent = reach_agent::spawn(config);
        wait_connected(&mut agent).await.unwrap();
        let (_, agent) = drive_agent(agent);
        let body = json!({"machine_id": machine_id, "usb": true});
        let session = api.post_json("/api/sessions", &body).await.unwrap();
        let session = session["id"].as_str().unwrap().to_owned();
        Self {
            running,
            link,
            api,
            session,
            _agent: agent,
            _dir: dir,
        }
    }

    /// Joins through the link; the progress events arrive on the receiver.
    async fn attach(
        &self,
        window: Duration,
    ) -> (Connection, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let mut viewer = self.api.join(&self.session).await.unwrap().into_live();
        let client = viewer.usb_client().unwrap();
        let rejoin = Rejoin {
            api: self.api.clone(),
            session: self.session.clone(),
            window,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let progress = Arc::new(move |p: Progress| {
            let _ = tx.send(match p {
                Progress::Resuming(_) => "resuming".to_owned(),
                Progress::Resumed => "resumed".to_owned(),
                other => format!("{other:?}"),
            });
        });
        (
            connection(viewer, client, rejoin, progress, Notifier::default()),
            rx,
        )
    }
}

async fn next_event(events: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a progress event in time")
        .expect("progress open")
}

fn submit(seqnum: u32, ep: u8, direction: Direction, len: u32, data: &[u8]) -> bytes::Bytes {
    CmdSubmit {
        seqnum,
        devid: 1,
        direction,
        ep,
        transfer_flags: 0,
        buffer_length: len,
        interval: 0,
        setup: [0; 8],
        data: bytes::Bytes::copy_from_slice(data),
    }
    .encode()
}

/// Reads one USB/IP reply from the pump's socket (bounded).
async fn reply(sock: &mut UnixStream, buf: &mut Vec<u8>, ins: &[u32]) -> Reply {
    loop {
        if let Some((r, used)) = decode_reply(buf, |s| ins.contains(&s)).unwrap() {
            buf.drain(..used);
            return r;
        }
        let mut chunk = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(WAIT, sock.read(&mut chunk))
            .await
            .expect("a reply in time")
            .unwrap();
        assert!(n > 0, "the pump closed the socket");
        buf.extend_from_slice(&chunk[..n]);
    }
}

const OUTAGE: Duration = Duration::from_secs(5);
const CHUNK: u32 = 16 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_whose_connection_drops_for_five_seconds_resumes_and_its_transfers_complete_byte_exact()
 {
    let world = Outage::start(reach_agent::usb::CLAIM_RETENTION).await;
    let (conn, mut events) = world.attach(RESUME_WINDOW).await;
    let Connection { client, lost } = conn;
    let client = client.with_timeout(reach_usbip::attach::TRANSFER_TIMEOUT);
    let mut lost = tokio::spawn(lost);
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    let table = EndpointTable::from_device(handle.device());
    let (ours, mut vhci) = UnixStream::pair().unwrap();
    let pumping = tokio::spawn(pump(handle, ours, table));

    // 8 bulk INs wait on the echo (0x81); half the OUTs (0x02) go before the cut, half during it.
    let (mut sent, mut ins) = (Vec::new(), Vec::new());
    for i in 0..8u32 {
        ins.push(i);
        let urb = submit(i, 1, Direction::In, CHUNK, &[]);
        vhci.write_all(&urb).await.unwrap();
    }
    let mut out = |i: u32| {
        let data: Vec<u8> = (0..CHUNK).map(|b| (b * 7 + i) as u8).collect();
        sent.extend_from_slice(&data);
        submit(100 + i, 2, Direction::Out, CHUNK, &data)
    };
    let before: Vec<_> = (0..4).map(&mut out).collect();
    let during: Vec<_> = (4..8).map(&mut out).collect();
    for urb in before {
        vhci.write_all(&urb).await.unwrap();
    }
    world.link.cut();
    assert_eq!(next_event(&mut events).await, "resuming");
    for urb in during {
        vhci.write_all(&urb).await.unwrap();
    }
    tokio::time::sleep(OUTAGE).await;
    world.link.restore();
    assert_eq!(next_event(&mut events).await, "resumed");

    let (mut got, mut buf) = (Vec::new(), Vec::new());
    let mut outs_done = 0;
    for _ in 0..16 {
        let Reply::Submit(r) = reply(&mut vhci, &mut buf, &ins).await else {
            panic!("expected RET_SUBMIT");
        };
        assert_eq!(r.status, 0, "seqnum {}", r.seqnum);
        if ins.contains(&r.seqnum) {
            got.extend_from_slice(&r.data);
        } else {
            assert_eq!(r.actual_length, CHUNK, "seqnum {}", r.seqnum);
            outs_done += 1;
        }
    }
    assert_eq!(outs_done, 8);
    assert!(
        got == sent,
        "every OUT ran once, in order, and no IN was lost"
    );
    // Nothing more is echoed: an OUT repeated after the resume would show up here.
    vhci.write_all(&submit(50, 1, Direction::In, CHUNK, &[]))
        .await
        .unwrap();
    vhci.write_all(&submit(51, 2, Direction::Out, 3, b"end"))
        .await
        .unwrap();
    let mut tail = Vec::new();
    for _ in 0..2 {
        if let Reply::Submit(r) = reply(&mut vhci, &mut buf, &[50]).await
            && r.seqnum == 50
        {
            tail.extend_from_slice(&r.data);
        }
    }
    assert_eq!(tail, b"end");
    assert!(
        tokio::time::timeout(Duration::from_millis(1), &mut lost)
            .await
            .is_err(),
        "the attach goes on"
    );

    drop(vhci);
    let end = tokio::time::timeout(WAIT, pumping).await.unwrap().unwrap();
    assert!(matches!(end, PumpEnd::Detached), "{end:?}");
    world.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_longer_than_the_hosts_retention_ends_the_attach_with_the_reason() {
    let world = Outage::start(Duration::from_secs(1)).await;
    let (conn, mut events) = world.attach(RESUME_WINDOW).await;
    let Connection { client, lost } = conn;
    let lost = tokio::spawn(lost);
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    world.link.cut();
    assert_eq!(next_event(&mut events).await, "resuming");
    // Past the host's retention: the claim is released there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.link.restore();
    let why = tokio::time::timeout(WAIT, lost).await.unwrap().unwrap();
    assert!(why.contains("did not resume"), "{why}");
    assert!(events.try_recv().is_err(), "no resumed event");

    // The device is free again for a new claim in the session.
    let mut viewer = world.api.join(&world.session).await.unwrap().into_live();
    let again = viewer.usb_client().unwrap();
    let reopened = again.open(DeviceFilter::default()).await;
    assert!(reopened.is_ok(), "{:?}", reopened.err());
    drop(handle);
    world.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_that_cannot_rejoin_within_its_window_ends_with_the_reason() {
    let world = Outage::start(reach_agent::usb::CLAIM_RETENTION).await;
    let (conn, mut events) = world.attach(Duration::from_secs(2)).await;
    let Connection { client, lost } = conn;
    let _handle = client.open(DeviceFilter::default()).await.unwrap();
    world.link.cut();
    let why = tokio::time::timeout(WAIT, lost).await.unwrap();
    assert!(why.contains("could not be rejoined within 2s"), "{why}");
    assert_eq!(next_event(&mut events).await, "resuming");
    world.running.shutdown().await.unwrap();
}

/// Polls the session until `check` holds on its `usb_attached` (bounded).
async fn session_shows(
    world: &Outage,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let path = format!("/api/sessions/{}", world.session);
    tokio::time::timeout(WAIT, async {
        loop {
            let s = world.api.get_json(&path).await.unwrap();
            if check(&s["usb_attached"]) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the session shows it in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_claim_shows_on_the_session_with_the_technicians_host_until_it_is_detached() {
    let world = Outage::start(reach_agent::usb::CLAIM_RETENTION).await;
    let mut viewer = world.api.join(&world.session).await.unwrap().into_live();
    let client = viewer.usb_client().unwrap();
    let notifier = Notifier::default();
    notifier.set(&viewer);
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    assert!(notifier.note(true, handle.claim_id(), handle.device()));
    let s = session_shows(&world, |a| a.as_array().is_some_and(|l| !l.is_empty())).await;
    let shown = &s["usb_attached"][0];
    assert_eq!(shown["host"], host_name().as_str(), "{s}");
    assert_eq!(shown["claim_id"], u64::from(handle.claim_id()), "{s}");
    assert_eq!(shown["vendor_id"], "0525", "{s}");

    assert!(notifier.note(false, handle.claim_id(), handle.device()));
    session_shows(&world, |a| a.as_array().is_some_and(Vec::is_empty)).await;
    viewer.leave().await;
    world.running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_goes_silent_is_noticed_by_its_keepalive_and_the_attach_resumes_after_it()
{
    let world = Outage::start(reach_agent::usb::CLAIM_RETENTION).await;
    let (conn, mut events) = world.attach(RESUME_WINDOW).await;
    let Connection { client, lost } = conn;
    let client = client.with_timeout(reach_usbip::attach::TRANSFER_TIMEOUT);
    let _lost = tokio::spawn(lost);
    let handle = client.open(DeviceFilter::default()).await.unwrap();
    let table = EndpointTable::from_device(handle.device());
    let (ours, mut vhci) = UnixStream::pair().unwrap();
    let _pumping = tokio::spawn(pump(handle, ours, table));

    // The path starts swallowing packets: no close, no reset — neither side is told. An IN
    // waits on the echo and an OUT is sent into the void.
    let ins = [1u32];
    vhci.write_all(&submit(1, 1, Direction::In, CHUNK, &[]))
        .await
        .unwrap();
    world.link.stall();
    let data: Vec<u8> = (0..CHUNK).map(|b| (b * 3) as u8).collect();
    vhci.write_all(&submit(100, 2, Direction::Out, CHUNK, &data))
        .await
        .unwrap();
    // The keepalive notices within SILENCE + KEEPALIVE; then the link works again.
    let noticed = reach_client::viewer::SILENCE + reach_client::viewer::KEEPALIVE + WAIT;
    let event = tokio::time::timeout(noticed, events.recv()).await;
    assert_eq!(
        event.expect("the silence is noticed").as_deref(),
        Some("resuming")
    );
    world.link.restore();
    assert_eq!(next_event(&mut events).await, "resumed");
    let mut buf = Vec::new();
    let mut echoed = Vec::new();
    for _ in 0..2 {
        let Reply::Submit(r) = reply(&mut vhci, &mut buf, &ins).await else {
            panic!("expected RET_SUBMIT");
        };
        assert_eq!(r.status, 0, "seqnum {}", r.seqnum);
        if r.seqnum == 1 {
            echoed = r.data.to_vec();
        }
    }
    assert_eq!(
        echoed, data,
        "the OUT sent into the silent path ran once, after the resume"
    );
}

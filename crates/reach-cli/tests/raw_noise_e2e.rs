//! A photo-like desktop viewed in raw, end to end: real server, real agent on a private Xvfb
//! painted with noise, and a Rust viewer. The noisy 1080p keyframe (~8 MB of tile data) must
//! reach the viewer whole, in parts under the relay's 4 MiB cap, without the server closing
//! the agent.

use std::time::Duration;

use reach_agent::consent::DenyAll;
use reach_agent::desktop::frames::{Assembled, FrameAssembler, encoded_frame};
use reach_agent::desktop::{self, DesktopOptions};
use reach_agent::viewer::{ApiClient, ViewerConnection};
use reach_agent::ws::Incoming;
use reach_agent::{AgentConfig, Credential};
use reach_media::{Frame, RawDecoder, VirtualDisplay};
use reach_proto::agent_key::AgentKey;
use reach_proto::limits::AGENT_MAX_MESSAGE;
use reach_proto::v1::{self, envelope::Body};
use reach_server::secrets::SecretString;
use reach_server::{AppState, Config, ConfigOverrides};
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

const PASSWORD: &str = "raw noise test password";
const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const WAIT: Duration = Duration::from_secs(60);

/// Deterministic noise (xorshift), BGRX rows.
fn noise(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..width as usize * height as usize * 4)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Paints `pixels` (BGRX) over the whole root window, in strips small enough for one request.
fn paint(display: &str, pixels: &[u8]) {
    let (conn, screen) = x11rb::connect(Some(display)).expect("connect to Xvfb");
    let root = conn.setup().roots[screen].root;
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, root, &Default::default()).unwrap();
    let stride = WIDTH as usize * 4;
    for (strip, rows) in pixels.chunks(stride * 32).enumerate() {
        let height = (rows.len() / stride) as u16;
        let y = (strip * 32) as i16;
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            root,
            gc,
            WIDTH as u16,
            height,
            0,
            y,
            0,
            24,
            rows,
        )
        .unwrap();
    }
    conn.get_input_focus().unwrap().reply().unwrap();
}

async fn enroll(url: &str) -> AgentKey {
    let mut api = ApiClient::new(url).unwrap();
    api.login("admin", PASSWORD).await.unwrap();
    let machine = api
        .post_json("/api/machines", &serde_json::json!({ "name": "noise" }))
        .await
        .unwrap();
    let id = machine["id"].as_str().unwrap();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &serde_json::json!({}))
        .await
        .unwrap();
    AgentKey::parse(key["key"].as_str().unwrap()).unwrap()
}

async fn run_agent(url: String, key: AgentKey, display: String) {
    let mut config = AgentConfig::new(url, Credential::Key(key), std::sync::Arc::new(DenyAll));
    config.hello.capabilities = Some(desktop::capabilities(Some(&display), false).unwrap());
    // The on-screen indicator would cover part of the noise the test compares.
    let options = DesktopOptions {
        display: Some(display),
        hide_indicator: true,
        ..DesktopOptions::default()
    };
    let _ = desktop::serve_desktop(reach_agent::spawn(config), options).await;
}

async fn open_session(api: &ApiClient) -> String {
    let machines = api.get_json("/api/machines").await.unwrap();
    let id = machines[0]["id"].as_str().unwrap().to_owned();
    let body = serde_json::json!({ "machine_id": id });
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(session) = api.post_json("/api/sessions", &body).await
                && let Some(session_id) = session["id"].as_str()
            {
                return session_id.to_owned();
            }
            // The agent is not online yet; the server answers at once, so poll gently.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the agent came online")
}

/// Receives until one whole frame is assembled; returns it with the number of parts it came in.
async fn next_whole_frame(viewer: &mut ViewerConnection) -> (v1::VideoFrame, usize) {
    let mut assembler = FrameAssembler::new();
    let mut parts = 0;
    loop {
        let incoming = tokio::time::timeout(WAIT, viewer.recv())
            .await
            .expect("a frame in time")
            .unwrap();
        let envelope = match incoming {
            Incoming::Envelope(envelope) => envelope,
            Incoming::Closed { code, reason } => panic!("viewer closed: {code} {reason}"),
        };
        let size = reach_proto::codec::encode(&envelope).len();
        assert!(
            size <= AGENT_MAX_MESSAGE,
            "a {size}-byte message was relayed"
        );
        let Some(Body::VideoFrame(part)) = envelope.body else {
            continue;
        };
        parts += 1;
        match assembler.push(part) {
            Assembled::Complete(frame) => return (frame, parts),
            Assembled::Waiting => {}
            Assembled::Lost(why) => panic!("frame lost: {why}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noise_desktop_viewed_in_raw_arrives_whole_in_parts_under_the_relay_cap() {
    let xvfb = VirtualDisplay::start(WIDTH, HEIGHT).unwrap();
    let pixels = noise(WIDTH, HEIGHT);
    paint(xvfb.name(), &pixels);

    let data = tempfile::tempdir().unwrap();
    let overrides = ConfigOverrides {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data.path().to_path_buf()),
        admin_password: Some(SecretString::new(PASSWORD.to_owned())),
        ..ConfigOverrides::default()
    };
    let (state, _) = AppState::open(Config::load(None, overrides).unwrap())
        .await
        .unwrap();
    let server = reach_server::server::start(state).await.unwrap();
    let url = server.url();
    let key = enroll(&url).await;
    let agent = tokio::spawn(run_agent(url.clone(), key, xvfb.name().to_owned()));
    let mut api = ApiClient::new(&url).unwrap();
    api.login("admin", PASSWORD).await.unwrap();
    let session = open_session(&api).await;

    let mut viewer = api.join(&session).await.unwrap();
    let start = v1::StartStream {
        codec: v1::VideoCodec::Raw.into(),
        screen: 0,
        max_fps: 30,
    };
    viewer.send(Body::StartStream(start)).await.unwrap();
    let (keyframe, parts) = next_whole_frame(&mut viewer).await;
    assert!(keyframe.keyframe);
    assert!(parts > 4, "an ~8 MB keyframe came in {parts} parts");

    let mut decoder = RawDecoder::new();
    let canvas = decoder.decode(&encoded_frame(&keyframe)).unwrap();
    let mut expected = pixels;
    expected
        .iter_mut()
        .skip(3)
        .step_by(4)
        .for_each(|a| *a = 255);
    let expected = Frame::from_bgra(WIDTH, HEIGHT, expected).unwrap();
    assert!(
        *canvas == expected,
        "the viewer's canvas is the noise desktop"
    );

    // The session survived the keyframe: a second one (asked for) arrives too.
    viewer
        .send(Body::KeyframeRequest(v1::KeyframeRequest {}))
        .await
        .unwrap();
    let (again, _) = next_whole_frame(&mut viewer).await;
    assert!(again.keyframe);
    assert!(*RawDecoder::new().decode(&encoded_frame(&again)).unwrap() == expected);

    viewer.leave().await;
    agent.abort();
    server.shutdown().await.unwrap();
}

//! The indicator on the shared screen, on a real Xvfb with a real agent and server: while a
//! technician is connected a window named "Reach: admin is connected to this computer" is
//! mapped on the display; clicking its Stop sharing button (through XTest, as a mouse would)
//! ends the session at once — the viewer is closed, the session's end reason says so — and the
//! window goes away.

use std::time::Duration;

use reach_agent::consent::DenyAll;
use reach_agent::desktop::{self, DesktopOptions};
use reach_agent::{AgentConfig, Credential};
use reach_client::viewer::ApiClient;
use reach_client::ws::Incoming;
use reach_media::VirtualDisplay;
use reach_proto::agent_key::AgentKey;
use reach_server::{AppState, Config};
use serde_json::json;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt as _, ImageFormat, MapState, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

const PASSWORD: &str = "indicator test password";
const WAIT: Duration = Duration::from_secs(30);

async fn run_agent(url: String, key: AgentKey, display: String) {
    let mut config = AgentConfig::new(url, Credential::Key(key), std::sync::Arc::new(DenyAll));
    config.hello.capabilities = Some(desktop::capabilities(Some(&display), false).unwrap());
    let options = DesktopOptions {
        display: Some(display),
        ..DesktopOptions::default()
    };
    let _ = desktop::serve_desktop(reach_agent::spawn(config), options).await;
}

/// The mapped top-level window whose name starts with `Reach: `: (window, name).
fn indicator(conn: &RustConnection, root: Window) -> Option<(Window, String)> {
    let tree = conn.query_tree(root).ok()?.reply().ok()?;
    tree.children.into_iter().find_map(|w| {
        let name = conn
            .get_property(false, w, AtomEnum::WM_NAME, AtomEnum::STRING, 0, 256)
            .ok()?
            .reply()
            .ok()?;
        let name = String::from_utf8_lossy(&name.value).into_owned();
        let mapped =
            conn.get_window_attributes(w).ok()?.reply().ok()?.map_state == MapState::VIEWABLE;
        (mapped && name.starts_with("Reach: ")).then_some((w, name))
    })
}

async fn wait_for<T>(mut probe: impl FnMut() -> Option<T>, what: &str) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(v) = probe() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indicator_shows_who_is_connected_and_stop_ends_the_session() {
    let xvfb = VirtualDisplay::start(1024, 768).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(data.path());
    config.admin_password = Some(PASSWORD.to_owned().into());
    let (state, _) = AppState::open(config).await.unwrap();
    let server = reach_server::server::start(state).await.unwrap();
    let url = server.url();
    let mut api = ApiClient::new(&url).unwrap();
    api.login("admin", PASSWORD).await.unwrap();
    let machine = api
        .post_json("/api/machines", &json!({"name": "desk"}))
        .await
        .unwrap();
    let machine_id = machine["id"].as_str().unwrap().to_owned();
    let key = api
        .post_json(&format!("/api/machines/{machine_id}/keys"), &json!({}))
        .await
        .unwrap();
    let key = AgentKey::parse(key["key"].as_str().unwrap()).unwrap();
    let agent = tokio::spawn(run_agent(url.clone(), key, xvfb.name().to_owned()));

    let (conn, screen) = x11rb::connect(Some(xvfb.name())).unwrap();
    let root = conn.setup().roots[screen].root;
    assert!(
        indicator(&conn, root).is_none(),
        "nothing shown before anyone connects"
    );
    let session_id = wait_for(
        || {
            let body = json!({"machine_id": machine_id});
            let session = futures_executor(api.post_json("/api/sessions", &body));
            session
                .ok()
                .and_then(|s| s["id"].as_str().map(str::to_owned))
        },
        "the agent comes online",
    )
    .await;
    let mut viewer = api.join(&session_id).await.unwrap();
    let (window, name) = wait_for(|| indicator(&conn, root), "the indicator is shown").await;
    assert_eq!(name, "Reach: admin is connected to this computer");
    screenshot(&conn, root);

    // Click Stop sharing: the right part of the window.
    let geometry = conn.get_geometry(window).unwrap().reply().unwrap();
    let (x, y) = (geometry.x + geometry.width as i16 - 40, geometry.y + 15);
    conn.xtest_fake_input(6, 0, 0, root, x, y, 0).unwrap(); // MotionNotify, absolute
    conn.xtest_fake_input(4, 1, 0, root, 0, 0, 0).unwrap(); // ButtonPress 1
    conn.xtest_fake_input(5, 1, 0, root, 0, 0, 0).unwrap(); // ButtonRelease 1
    conn.flush().unwrap();

    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match viewer.recv().await {
                Ok(Incoming::Closed { .. }) | Err(_) => return,
                Ok(Incoming::Envelope(_)) => {}
            }
        }
    });
    closed
        .await
        .expect("the viewer is closed when Stop is pressed");
    let session = api
        .get_json(&format!("/api/sessions/{session_id}"))
        .await
        .unwrap();
    assert_eq!(session["end_reason"], "stopped_at_machine", "{session}");
    wait_for(
        || indicator(&conn, root).is_none().then_some(()),
        "the indicator goes away",
    )
    .await;
    agent.abort();
    server.shutdown().await.unwrap();
}

/// Saves the screen as `artifacts/agent-indicator.png` for people to look at.
fn screenshot(conn: &RustConnection, root: Window) {
    let geometry = conn.get_geometry(root).unwrap().reply().unwrap();
    let (w, h) = (geometry.width, geometry.height);
    let image = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, w, h, !0)
        .unwrap()
        .reply()
        .unwrap();
    let mut raw = Vec::with_capacity(usize::from(h) * (usize::from(w) * 3 + 1));
    for row in image.data.chunks_exact(usize::from(w) * 4) {
        raw.push(0); // no filter
        for px in row.chunks_exact(4) {
            raw.extend_from_slice(&[px[2], px[1], px[0]]);
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("agent-indicator.png"),
        png(u32::from(w), u32::from(h), &raw),
    );
}

/// A minimal PNG (8-bit RGB, zlib stored blocks): enough for a test artifact.
fn png(width: u32, height: u32, raw: &[u8]) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// Runs a future to completion from a synchronous probe (the test's runtime has two workers).
fn futures_executor<F: Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

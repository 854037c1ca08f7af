//! The local stack `reach demo` and `reach bench latency` run: a private Xvfb, machine
//! enrolment through the public API, and an agent sharing a display.

use anyhow::Context as _;
use reach_agent::consent::DenyAll;
use reach_agent::desktop::{self, DesktopOptions};
use reach_agent::{AgentConfig, Credential};
use reach_client::viewer::ApiClient;
use reach_proto::agent_key::AgentKey;
use x11rb::connection::Connection as _;
use x11rb::protocol::xproto::{ChangeGCAux, ConnectionExt as _, CreateGCAux, Rectangle};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Creates a machine and an agent key for it through the public API, as an admin would.
pub async fn enroll_machine(url: &str, password: &str, name: &str) -> anyhow::Result<AgentKey> {
    let mut api = ApiClient::new(url)?;
    api.login("admin", password)
        .await
        .context("logging in as the demo admin (is REACH_ADMIN_PASSWORD the password of an existing --data-dir?)")?;
    let machine = api
        .post_json(
            "/api/machines",
            &serde_json::json!({ "name": name, "site": "this computer" }),
        )
        .await?;
    let id = machine["id"]
        .as_str()
        .context("machine answer has no id")?
        .to_owned();
    let key = api
        .post_json(&format!("/api/machines/{id}/keys"), &serde_json::json!({}))
        .await?;
    let key = key["key"].as_str().context("key answer has no key")?;
    Ok(AgentKey::parse(key)?)
}

pub async fn run_agent(
    url: String,
    key: AgentKey,
    display: String,
    usb: Option<reach_agent::usb::UsbOptions>,
) {
    let mut config = AgentConfig::new(url, Credential::Key(key), std::sync::Arc::new(DenyAll));
    config.usb = usb;
    match desktop::capabilities(Some(&display), false) {
        Ok(capabilities) => config.hello.capabilities = Some(capabilities),
        Err(error) => tracing::warn!(%error, "cannot read the display's screens"),
    }
    let options = DesktopOptions {
        display: Some(display),
        ..DesktopOptions::default()
    };
    if let Err(error) = desktop::serve_desktop(reach_agent::spawn(config), options).await {
        eprintln!("The demo agent stopped: {error}");
    }
}

/// Paints solid rectangles on the root window.
pub struct Painter {
    conn: RustConnection,
    root: u32,
    gc: u32,
}

impl Painter {
    pub fn open(display: &str) -> anyhow::Result<Self> {
        let (conn, screen) =
            x11rb::connect(Some(display)).context("connecting to the X display")?;
        let root = conn.setup().roots[screen].root;
        let gc = conn.generate_id()?;
        conn.create_gc(
            gc,
            root,
            &CreateGCAux::new()
                .subwindow_mode(x11rb::protocol::xproto::SubwindowMode::INCLUDE_INFERIORS),
        )?;
        Ok(Self { conn, root, gc })
    }

    /// Fills `rect` with `rgb` and returns once the X server has done it.
    pub fn fill(&mut self, rect: Rectangle, rgb: u32) -> anyhow::Result<()> {
        self.conn
            .change_gc(self.gc, &ChangeGCAux::new().foreground(rgb))?;
        self.conn.poly_fill_rectangle(self.root, self.gc, &[rect])?;
        self.conn.sync()?;
        Ok(())
    }
}

/// Paints a recognisable backdrop on an empty private display, so the demo's first session shows
/// something: a blue desktop with a few coloured "windows".
pub fn paint_demo_desktop(display: &str, width: u16, height: u16) -> anyhow::Result<()> {
    let mut painter = Painter::open(display)?;
    let rect = |x: u16, y: u16, w: u16, h: u16| Rectangle {
        x: x as i16,
        y: y as i16,
        width: w,
        height: h,
    };
    painter.fill(rect(0, 0, width, height), 0x001f_3b57)?;
    painter.fill(rect(80, 80, 520, 340), 0x00f2_f2f2)?;
    painter.fill(rect(80, 80, 520, 28), 0x0030_6090)?;
    painter.fill(rect(680, 160, 480, 300), 0x00f2_f2f2)?;
    painter.fill(rect(680, 160, 480, 28), 0x0090_3060)?;
    painter.fill(rect(0, height.saturating_sub(40), width, 40), 0x0010_1820)?;
    Ok(())
}

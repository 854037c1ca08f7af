//! The indicator on the shared screen: while a technician is connected, a small window stays
//! above everything in the top-right corner ("alice is connected to this computer") with a
//! Stop sharing button. Pressing it ends the session at once (the desktop loop sends
//! `SessionEvent { kind: ENDED }` and the server ends the session).
//!
//! It runs on its own thread with its own X connection; it is override-redirect (no window
//! manager decorations, always mapped above normal windows) and named `Reach: …` so tests and
//! people can find it.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;
use x11rb::connection::Connection as _;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeGCAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux,
    EventMask, PropMode, Rectangle, StackMode, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// Size and place of the window.
const WIDTH: u16 = 440;
const HEIGHT: u16 = 30;
const MARGIN: i16 = 10;
/// Where the Stop button starts (window coordinates).
const STOP_X: i16 = 320;
/// Colours (0xRRGGBB on a TrueColor visual).
const BACKGROUND: u32 = 0x00_8b_1a_1a;
const BUTTON: u32 = 0x00_ff_ff_ff;
const TEXT: u32 = 0x00_ff_ff_ff;

enum Command {
    Show(String),
    Hide,
}

/// A running indicator; dropping it closes the window.
#[derive(Debug)]
pub struct Indicator {
    commands: std_mpsc::Sender<Command>,
}

impl Indicator {
    /// Opens the indicator's connection to `display`; `stop` receives a message when the
    /// person presses Stop sharing. `None` (logged) when the display cannot be reached.
    pub fn spawn(display: &str, stop: mpsc::UnboundedSender<()>) -> Option<Self> {
        let (conn, screen) = match x11rb::connect(Some(display)) {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "no indicator window: cannot reach the display");
                return None;
            }
        };
        let (commands, rx) = std_mpsc::channel();
        std::thread::Builder::new()
            .name("reach-indicator".into())
            .spawn(move || {
                if let Err(error) = run(&conn, screen, &rx, &stop) {
                    tracing::warn!(%error, "the indicator window stopped");
                }
            })
            .ok()?;
        Some(Self { commands })
    }

    /// Shows (or updates) the window with `text`.
    pub fn show(&self, text: &str) {
        let _ = self.commands.send(Command::Show(text.to_owned()));
    }

    /// Hides the window.
    pub fn hide(&self) {
        let _ = self.commands.send(Command::Hide);
    }
}

/// Who is connected, per session, from the server's VIEWER_JOINED / VIEWER_LEFT / ENDED events.
#[derive(Debug, Default)]
pub struct Watchers {
    by_session: std::collections::BTreeMap<String, std::collections::BTreeMap<u64, String>>,
}

impl Watchers {
    /// Applies one session event; whether who is connected changed.
    pub fn on_event(
        &mut self,
        session_id: &str,
        viewer_id: u64,
        event: &reach_proto::v1::SessionEvent,
    ) -> bool {
        use reach_proto::v1::session_event::Kind;
        match event.kind() {
            Kind::ViewerJoined => {
                let name = if event.technician.is_empty() {
                    "A technician".to_owned()
                } else {
                    event.technician.clone()
                };
                self.by_session
                    .entry(session_id.to_owned())
                    .or_default()
                    .insert(viewer_id, name);
                true
            }
            Kind::ViewerLeft => {
                let viewers = self.by_session.get_mut(session_id);
                let changed = viewers.is_some_and(|v| v.remove(&viewer_id).is_some());
                self.by_session.retain(|_, v| !v.is_empty());
                changed
            }
            Kind::Ended => self.by_session.remove(session_id).is_some(),
            _ => false,
        }
    }

    /// Forgets everyone (the connection to the server was lost).
    pub fn clear(&mut self) {
        self.by_session.clear();
    }

    /// Sessions someone is connected to.
    pub fn sessions(&self) -> Vec<String> {
        self.by_session.keys().cloned().collect()
    }

    /// The distinct names of everyone connected.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .by_session
            .values()
            .flat_map(|v| v.values().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Shows or hides `indicator` to match.
    pub fn show_on(&self, indicator: Option<&Indicator>) {
        if let Some(indicator) = indicator {
            if self.by_session.is_empty() {
                indicator.hide();
            } else {
                indicator.show(&text_for(&self.names()));
            }
        }
    }
}

/// What the window says for these technician names.
pub fn text_for(names: &[String]) -> String {
    let who = match names {
        [] => "A technician".to_owned(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
    };
    let verb = if names.len() > 1 { "are" } else { "is" };
    format!("{who} {verb} connected to this computer")
}

/// Printable ASCII only (core X fonts are Latin-1; names come from the server).
fn latin(text: &str, max: usize) -> Vec<u8> {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c as u8
            } else {
                b'?'
            }
        })
        .take(max)
        .collect()
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn run(
    conn: &RustConnection,
    screen: usize,
    commands: &std_mpsc::Receiver<Command>,
    stop: &mpsc::UnboundedSender<()>,
) -> Result<(), Failure> {
    let root = conn
        .setup()
        .roots
        .get(screen)
        .ok_or("no such screen")?
        .clone();
    let window = conn.generate_id()?;
    let x = i16::try_from(root.width_in_pixels).unwrap_or(i16::MAX) - WIDTH as i16 - MARGIN;
    let aux = CreateWindowAux::new()
        .background_pixel(BACKGROUND)
        .override_redirect(1)
        .event_mask(EventMask::EXPOSURE | EventMask::BUTTON_PRESS);
    conn.create_window(
        root.root_depth,
        window,
        root.root,
        x.max(0),
        MARGIN,
        WIDTH,
        HEIGHT,
        1,
        WindowClass::INPUT_OUTPUT,
        root.root_visual,
        &aux,
    )?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"fixed")?;
    let gc = conn.generate_id()?;
    conn.create_gc(
        gc,
        window,
        &CreateGCAux::new()
            .font(font)
            .foreground(TEXT)
            .background(BACKGROUND),
    )?;
    conn.flush()?;
    let mut text = String::new();
    let mut shown = false;
    loop {
        while let Some(event) = conn.poll_for_event()? {
            match event {
                Event::Expose(_) => draw(conn, window, gc, &text)?,
                Event::ButtonPress(press) if press.event_x >= STOP_X => {
                    let _ = stop.send(());
                }
                _ => {}
            }
        }
        match commands.recv_timeout(Duration::from_millis(50)) {
            Ok(Command::Show(new)) => {
                text = new;
                let title = format!("Reach: {text}");
                conn.change_property8(
                    PropMode::REPLACE,
                    window,
                    AtomEnum::WM_NAME,
                    AtomEnum::STRING,
                    &latin(&title, 200),
                )?;
                if !shown {
                    conn.map_window(window)?;
                    shown = true;
                }
                conn.configure_window(
                    window,
                    &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
                )?;
                draw(conn, window, gc, &text)?;
            }
            Ok(Command::Hide) => {
                if shown {
                    conn.unmap_window(window)?;
                    shown = false;
                }
                conn.flush()?;
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                conn.destroy_window(window)?;
                conn.flush()?;
                return Ok(());
            }
        }
    }
}

fn draw(conn: &RustConnection, window: u32, gc: u32, text: &str) -> Result<(), Failure> {
    conn.clear_area(false, window, 0, 0, 0, 0)?;
    conn.image_text8(window, gc, 8, 19, &latin(text, 48))?;
    let button = Rectangle {
        x: STOP_X,
        y: 4,
        width: WIDTH - STOP_X as u16 - 8,
        height: HEIGHT - 9,
    };
    conn.change_gc(gc, &ChangeGCAux::new().foreground(BUTTON))?;
    conn.poly_rectangle(window, gc, &[button])?;
    conn.image_text8(window, gc, STOP_X + 14, 19, b"Stop sharing")?;
    conn.change_gc(gc, &ChangeGCAux::new().foreground(TEXT))?;
    conn.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchers_follow_joins_leaves_and_ends() {
        use reach_proto::v1::{SessionEvent, session_event::Kind};
        let joined = |name: &str| SessionEvent {
            kind: Kind::ViewerJoined.into(),
            technician: name.into(),
            ..Default::default()
        };
        let left = SessionEvent {
            kind: Kind::ViewerLeft.into(),
            ..Default::default()
        };
        let ended = SessionEvent {
            kind: Kind::Ended.into(),
            ..Default::default()
        };
        let mut w = Watchers::default();
        assert!(w.on_event("s1", 1, &joined("alice")));
        assert!(w.on_event("s1", 2, &joined("alice")));
        assert!(w.on_event("s2", 3, &joined("bob")));
        assert_eq!(w.names(), ["alice", "bob"]);
        assert!(w.on_event("s1", 1, &left));
        assert_eq!(w.sessions(), ["s1", "s2"]);
        assert!(w.on_event("s2", 0, &ended));
        assert_eq!(w.names(), ["alice"]);
        assert!(
            !w.on_event("s9", 1, &left),
            "unknown viewers change nothing"
        );
        w.clear();
        assert!(w.sessions().is_empty());
    }

    #[test]
    fn the_text_names_who_is_connected() {
        assert_eq!(
            text_for(&["alice".into()]),
            "alice is connected to this computer"
        );
        assert_eq!(
            text_for(&["alice".into(), "bob".into()]),
            "alice and 1 more are connected to this computer"
        );
        assert_eq!(latin("zoë\u{7}", 10), b"zo??".to_vec());
    }
}

//! The input thread: plays viewer input into the display through `reach-media`'s injector.
//!
//! The relay already dropped input from view-only viewers and throttled the rest; this thread
//! only translates. Everything it pressed is released on [`InputThread::release_all`] (a viewer
//! left, the session ended, the connection dropped) and when it stops.

use reach_media::{Clipboard, InputInjector, MediaError, PointerButton, SpecialKey};
use reach_proto::v1::{self, envelope::Body, special_key_event::Key};
use std::sync::mpsc;

/// Largest clipboard text pasted, in bytes (the relay caps viewer messages at 64 KiB anyway).
pub(crate) const MAX_PASTE_BYTES: usize = 60 * 1024;

/// Wire buttons bit → button (bit 0 left, 1 middle, 2 right, 3 back, 4 forward).
const BUTTONS: [(u32, PointerButton); 5] = [
    (1, PointerButton::Left),
    (2, PointerButton::Middle),
    (4, PointerButton::Right),
    (8, PointerButton::Back),
    (16, PointerButton::Forward),
];

enum Command {
    Input(Body),
    ReleaseAll,
}

/// Handle to the input thread; dropping it stops the thread after releasing every key.
pub(crate) struct InputThread {
    commands: mpsc::Sender<Command>,
}

impl InputThread {
    pub(crate) fn spawn(display: Option<String>) -> Self {
        let (commands, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("reach-input".into())
            .spawn(move || Player::new(display).run(&rx));
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the input thread; input is ignored");
        }
        Self { commands }
    }

    pub(crate) fn handle(&self, body: Body) {
        let _ = self.commands.send(Command::Input(body));
    }

    pub(crate) fn release_all(&self) {
        let _ = self.commands.send(Command::ReleaseAll);
    }
}

/// Owns the injector (opened lazily, per screen) and the pressed-button state.
struct Player {
    display: Option<String>,
    screen: u32,
    injector: Option<Box<dyn InputInjector>>,
    clipboard: Option<Box<dyn Clipboard>>,
    buttons: u32,
}

impl Player {
    fn new(display: Option<String>) -> Self {
        Self {
            display,
            screen: 0,
            injector: None,
            clipboard: None,
            buttons: 0,
        }
    }

    fn run(mut self, commands: &mpsc::Receiver<Command>) {
        while let Ok(command) = commands.recv() {
            let result = match command {
                Command::Input(body) => self.play(body),
                Command::ReleaseAll => self.release_all(),
            };
            if let Err(error) = result {
                tracing::debug!(%error, "input not played");
            }
        }
        let _ = self.release_all();
    }

    fn injector(&mut self, screen: u32) -> Result<&mut (dyn InputInjector + 'static), MediaError> {
        if self.injector.is_none() || self.screen != screen {
            if let Some(mut old) = self.injector.take() {
                let _ = old.release_all();
            }
            self.injector = Some(reach_media::open_injector(self.display.as_deref(), screen)?);
            self.screen = screen;
            self.buttons = 0;
        }
        self.injector
            .as_deref_mut()
            .ok_or(MediaError::Malformed("injector unavailable"))
    }

    fn play(&mut self, body: Body) -> Result<(), MediaError> {
        match body {
            Body::Pointer(pointer) => self.pointer(&pointer),
            Body::Wheel(wheel) => {
                let screen = self.screen;
                self.injector(screen)?
                    .wheel(notches(wheel.delta_x), notches(wheel.delta_y))
            }
            Body::Key(key) => {
                let screen = self.screen;
                self.injector(screen)?.key(&key.code, key.down)
            }
            Body::SpecialKey(special) => self.special_key(special.key()),
            Body::Clipboard(clip) => self.paste(&clip.text),
            _ => Ok(()),
        }
    }

    fn pointer(&mut self, pointer: &v1::PointerEvent) -> Result<(), MediaError> {
        let previous = self.buttons;
        let injector = self.injector(pointer.screen)?;
        let x = u32::try_from(pointer.x.max(0)).unwrap_or(0);
        let y = u32::try_from(pointer.y.max(0)).unwrap_or(0);
        injector.move_pointer(x, y)?;
        for (bit, button) in BUTTONS {
            let now = pointer.buttons & bit != 0;
            if now != (previous & bit != 0) {
                injector.button(button, now)?;
            }
        }
        self.buttons = pointer.buttons & 0x1f;
        Ok(())
    }

    fn special_key(&mut self, key: Key) -> Result<(), MediaError> {
        let screen = self.screen;
        let injector = self.injector(screen)?;
        let chord: &[&str] = match key {
            Key::CtrlAltDel => return injector.special_key(SpecialKey::CtrlAltDel),
            Key::AltTab => &["AltLeft", "Tab"],
            Key::AltEsc => &["AltLeft", "Escape"],
            Key::CtrlEsc => &["ControlLeft", "Escape"],
            Key::Win => &["MetaLeft"],
            Key::PrintScreen => &["PrintScreen"],
            Key::Unspecified => return Ok(()),
        };
        for code in chord {
            injector.key(code, true)?;
        }
        for code in chord.iter().rev() {
            injector.key(code, false)?;
        }
        Ok(())
    }

    fn paste(&mut self, text: &str) -> Result<(), MediaError> {
        if text.len() > MAX_PASTE_BYTES {
            return Err(MediaError::Malformed("clipboard text over the paste cap"));
        }
        if self.clipboard.is_none() {
            self.clipboard = Some(reach_media::open_clipboard(self.display.as_deref())?);
        }
        let screen = self.screen;
        self.injector(screen)?;
        match (self.injector.as_deref_mut(), self.clipboard.as_deref_mut()) {
            (Some(injector), Some(clipboard)) => reach_media::paste_text(injector, clipboard, text),
            _ => Ok(()),
        }
    }

    fn release_all(&mut self) -> Result<(), MediaError> {
        self.buttons = 0;
        match self.injector.as_deref_mut() {
            Some(injector) => injector.release_all(),
            None => Ok(()),
        }
    }
}

/// Wire wheel deltas are in 1/120 notches; at least one notch when non-zero.
fn notches(delta: i32) -> i32 {
    match delta {
        0 => 0,
        d if d.abs() < 120 => d.signum(),
        d => d / 120,
    }
}

#[cfg(test)]
mod tests {
    use super::notches;

    #[test]
    fn wheel_deltas_become_whole_notches_and_small_moves_still_count() {
        assert_eq!(notches(0), 0);
        assert_eq!(notches(120), 1);
        assert_eq!(notches(-360), -3);
        assert_eq!(notches(30), 1);
        assert_eq!(notches(-1), -1);
    }
}

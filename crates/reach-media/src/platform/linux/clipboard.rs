//! [`X11Clipboard`]: the CLIPBOARD selection. Setting text makes a helper thread the
//! selection owner, answering other programs' requests; reading converts the selection
//! to UTF-8 into a property of our own window; XFixes reports when another program
//! takes the clipboard. Text is capped at [`MAX_CLIPBOARD_BYTES`] both ways.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, SelectionNotifyEvent,
    SelectionRequestEvent, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use super::{connect, require_extension, wait_readable, x11};
use crate::limits::{CLIPBOARD_READ_TIMEOUT_MS, MAX_CLIPBOARD_BYTES};
use crate::{Clipboard, MediaError};

/// How long another program may take to hand over the clipboard text.
const READ_TIMEOUT: Duration = Duration::from_millis(CLIPBOARD_READ_TIMEOUT_MS);

#[derive(Debug, Clone, Copy)]
struct Atoms {
    clipboard: Atom,
    utf8: Atom,
    targets: Atom,
    incr: Atom,
    property: Atom,
}

impl Atoms {
    fn intern(conn: &RustConnection) -> Result<Self, MediaError> {
        let get = |name: &[u8]| -> Result<Atom, MediaError> {
            Ok(conn
                .intern_atom(false, name)
                .map_err(x11)?
                .reply()
                .map_err(x11)?
                .atom)
        };
        Ok(Self {
            clipboard: get(b"CLIPBOARD")?,
            utf8: get(b"UTF8_STRING")?,
            targets: get(b"TARGETS")?,
            incr: get(b"INCR")?,
            property: get(b"REACH_CLIPBOARD")?,
        })
    }
}

/// Text the owner thread serves; `None` once another program took the clipboard.
type Shared = Arc<Mutex<Option<Vec<u8>>>>;

/// The CLIPBOARD selection of one display.
pub(crate) struct X11Clipboard {
    conn: RustConnection,
    window: Window,
    atoms: Atoms,
    owner_conn: Arc<RustConnection>,
    owner_window: Window,
    owned: Shared,
    owner_thread: Option<JoinHandle<()>>,
}

fn create_window(conn: &RustConnection, mask: EventMask) -> Result<Window, MediaError> {
    let screen = &conn.setup().roots[0];
    let window = conn.generate_id().map_err(x11)?;
    let aux = CreateWindowAux::new().event_mask(mask);
    conn.create_window(
        0,
        window,
        screen.root,
        0,
        0,
        1,
        1,
        0,
        WindowClass::INPUT_ONLY,
        0,
        &aux,
    )
    .map_err(x11)?;
    Ok(window)
}

impl X11Clipboard {
    pub(crate) fn open(display: Option<&str>) -> Result<Self, MediaError> {
        let (conn, _) = connect(display)?;
        require_extension(&conn, x11rb::protocol::xfixes::X11_EXTENSION_NAME)?;
        conn.xfixes_query_version(5, 0)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        let atoms = Atoms::intern(&conn)?;
        let window = create_window(&conn, EventMask::PROPERTY_CHANGE)?;
        let mask = SelectionEventMask::SET_SELECTION_OWNER;
        conn.xfixes_select_selection_input(window, atoms.clipboard, mask)
            .map_err(x11)?;
        let (owner_conn, _) = connect(display)?;
        let owner_conn = Arc::new(owner_conn);
        let owner_window = create_window(&owner_conn, EventMask::STRUCTURE_NOTIFY)?;
        owner_conn.flush().map_err(x11)?;
        let owned: Shared = Arc::default();
        let thread = {
            let (conn, owned) = (Arc::clone(&owner_conn), Arc::clone(&owned));
            std::thread::Builder::new()
                .name("reach-clipboard".into())
                .spawn(move || serve_selection(&conn, owner_window, atoms, &owned))?
        };
        super::sync(&conn)?;
        Ok(Self {
            conn,
            window,
            atoms,
            owner_conn,
            owner_window,
            owned,
            owner_thread: Some(thread),
        })
    }

    /// Converts the selection into our property and reads it.
    fn read_selection(&mut self) -> Result<Option<String>, MediaError> {
        let a = self.atoms;
        self.conn
            .convert_selection(
                self.window,
                a.clipboard,
                a.utf8,
                a.property,
                x11rb::CURRENT_TIME,
            )
            .map_err(x11)?;
        self.conn.flush().map_err(x11)?;
        let notify = self.wait_event(READ_TIMEOUT, |e| match e {
            Event::SelectionNotify(n) if n.requestor == self.window => Some(*n),
            _ => None,
        })?;
        let notify =
            notify.ok_or_else(|| MediaError::Clipboard("the owner did not answer".into()))?;
        if notify.property == x11rb::NONE {
            return Ok(None);
        }
        let cap = (MAX_CLIPBOARD_BYTES / 4 + 1) as u32;
        let reply = self
            .conn
            .get_property(true, self.window, a.property, AtomEnum::ANY, 0, cap)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        if reply.type_ == a.incr || reply.bytes_after > 0 || reply.value.len() > MAX_CLIPBOARD_BYTES
        {
            let len = reply.value.len() + reply.bytes_after as usize;
            return Err(MediaError::ClipboardTooLarge {
                len,
                max: MAX_CLIPBOARD_BYTES,
            });
        }
        Ok(Some(String::from_utf8_lossy(&reply.value).into_owned()))
    }

    /// Waits for an event `pick` accepts, up to `timeout`; other events are dropped
    /// except clipboard-owner changes, which are remembered.
    fn wait_event<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<Option<T>, MediaError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(event) = self.conn.poll_for_event().map_err(x11)? {
                if let Some(found) = pick(&event) {
                    return Ok(Some(found));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            wait_readable(&self.conn, left)?;
        }
    }
}

impl Clipboard for X11Clipboard {
    fn set_text(&mut self, text: &str) -> Result<(), MediaError> {
        if text.len() > MAX_CLIPBOARD_BYTES {
            return Err(MediaError::ClipboardTooLarge {
                len: text.len(),
                max: MAX_CLIPBOARD_BYTES,
            });
        }
        *self.owned.lock().unwrap_or_else(PoisonError::into_inner) = Some(text.as_bytes().to_vec());
        let (a, owner) = (self.atoms, self.owner_window);
        self.owner_conn
            .set_selection_owner(owner, a.clipboard, x11rb::CURRENT_TIME)
            .map_err(x11)?;
        let reply = self
            .owner_conn
            .get_selection_owner(a.clipboard)
            .map_err(x11)?
            .reply()
            .map_err(x11)?;
        if reply.owner != owner {
            return Err(MediaError::Clipboard(
                "another program kept the clipboard".into(),
            ));
        }
        Ok(())
    }

    fn text(&mut self) -> Result<Option<String>, MediaError> {
        self.read_selection()
    }

    fn wait_change(&mut self, timeout: Duration) -> Result<Option<String>, MediaError> {
        let owner_window = self.owner_window;
        let changed = self.wait_event(timeout, |e| match e {
            Event::XfixesSelectionNotify(n)
                if n.owner != owner_window && n.owner != x11rb::NONE =>
            {
                Some(())
            }
            _ => None,
        })?;
        match changed {
            Some(()) => self.read_selection(),
            None => Ok(None),
        }
    }
}

impl Drop for X11Clipboard {
    fn drop(&mut self) {
        // Destroying the owner window ends the owner thread (DestroyNotify).
        let _ = self.owner_conn.destroy_window(self.owner_window);
        let _ = self.owner_conn.flush();
        if let Some(thread) = self.owner_thread.take() {
            let _ = thread.join();
        }
    }
}

/// The owner thread: answers selection requests until the window is destroyed.
fn serve_selection(conn: &RustConnection, window: Window, atoms: Atoms, owned: &Shared) {
    loop {
        match conn.wait_for_event() {
            Ok(Event::SelectionRequest(request)) => {
                let text = owned.lock().unwrap_or_else(PoisonError::into_inner).clone();
                if let Err(err) = answer_request(conn, &request, atoms, text.as_deref()) {
                    tracing::debug!(error = %err, "clipboard request not answered");
                }
            }
            Ok(Event::SelectionClear(_)) => {
                *owned.lock().unwrap_or_else(PoisonError::into_inner) = None;
            }
            Ok(Event::DestroyNotify(e)) if e.window == window => return,
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn answer_request(
    conn: &RustConnection,
    request: &SelectionRequestEvent,
    atoms: Atoms,
    text: Option<&[u8]>,
) -> Result<(), MediaError> {
    let property = if request.property == x11rb::NONE {
        request.target
    } else {
        request.property
    };
    let string = AtomEnum::STRING.into();
    let answered = match text {
        Some(_) if request.target == atoms.targets => {
            let targets = [atoms.targets, atoms.utf8, string];
            conn.change_property32(
                PropMode::REPLACE,
                request.requestor,
                property,
                AtomEnum::ATOM,
                &targets,
            )
            .map_err(x11)?;
            true
        }
        Some(bytes) if request.target == atoms.utf8 || request.target == string => {
            conn.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                request.target,
                bytes,
            )
            .map_err(x11)?;
            true
        }
        _ => false,
    };
    let event = SelectionNotifyEvent {
        response_type: x11rb::protocol::xproto::SELECTION_NOTIFY_EVENT,
        sequence: 0,
        time: request.time,
        requestor: request.requestor,
        selection: request.selection,
        target: request.target,
        property: if answered { property } else { x11rb::NONE },
    };
    conn.send_event(false, request.requestor, EventMask::NO_EVENT, event)
        .map_err(x11)?;
    conn.flush().map_err(x11)
}

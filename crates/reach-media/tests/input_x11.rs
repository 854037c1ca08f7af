//! XTEST injection under a real Xvfb, observed by a separate X client's window.

mod common;

use std::time::Duration;

use common::{Xvfb, sync, wait_for};
use reach_media::{PointerButton, SpecialKey, open_injector};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

const WAIT: Duration = Duration::from_secs(5);

/// A full-screen window with keyboard focus that records input events.
fn observer(x: &Xvfb) -> (RustConnection, Window) {
    let (conn, root) = x.client();
    let screen = &conn.setup().roots[0];
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let window = conn.generate_id().unwrap();
    let mask = EventMask::KEY_PRESS
        | EventMask::KEY_RELEASE
        | EventMask::BUTTON_PRESS
        | EventMask::BUTTON_RELEASE
        | EventMask::POINTER_MOTION
        | EventMask::EXPOSURE;
    let aux = CreateWindowAux::new().event_mask(mask);
    conn.create_window(
        0,
        window,
        root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )
    .unwrap();
    conn.map_window(window).unwrap();
    conn.flush().unwrap();
    wait_for(&conn, "the window to be exposed", WAIT, |e| {
        matches!(e, Event::Expose(_)).then_some(())
    });
    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .unwrap();
    sync(&conn);
    (conn, window)
}

/// The next key event: `(pressed, X keycode)`.
fn next_key(conn: &RustConnection) -> (bool, u8) {
    wait_for(conn, "a key event", WAIT, |e| match e {
        Event::KeyPress(k) => Some((true, k.detail)),
        Event::KeyRelease(k) => Some((false, k.detail)),
        _ => None,
    })
}

fn keys_down(conn: &RustConnection) -> Vec<u8> {
    let keymap = conn.query_keymap().unwrap().reply().unwrap().keys;
    (0..=255u8)
        .filter(|&k| keymap[k as usize / 8] & (1 << (k % 8)) != 0)
        .collect()
}

#[test]
fn keys_injected_by_physical_code_arrive_with_the_right_keycodes_including_extended_keys() {
    let x = Xvfb::start(320, 240);
    let (conn, _) = observer(&x);
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    // X keycode = evdev scancode + 8.
    let table = [
        ("KeyA", 38),
        ("ControlLeft", 37),
        ("ControlRight", 105),
        ("AltLeft", 64),
        ("AltRight", 108),
        ("ArrowUp", 111),
        ("Numpad8", 80),
        ("NumpadDivide", 106),
        ("Slash", 61),
        ("MetaLeft", 133),
        ("MetaRight", 134),
        ("NumpadEnter", 104),
    ];
    for (code, keycode) in table {
        injector.key(code, true).unwrap();
        injector.key(code, false).unwrap();
        assert_eq!(next_key(&conn), (true, keycode), "{code} press");
        assert_eq!(next_key(&conn), (false, keycode), "{code} release");
    }
    assert!(injector.key("Banana", true).is_err());
}

#[test]
fn pointer_moves_buttons_and_wheel_reach_the_window_under_the_pointer() {
    let x = Xvfb::start(320, 240);
    let (conn, window) = observer(&x);
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    injector.move_pointer(123, 45).unwrap();
    wait_for(&conn, "motion to 123,45", WAIT, |e| match e {
        Event::MotionNotify(m) => (m.event_x == 123 && m.event_y == 45).then_some(()),
        _ => None,
    });
    let pointer = conn.query_pointer(window).unwrap().reply().unwrap();
    assert_eq!((pointer.root_x, pointer.root_y), (123, 45));

    injector.button(PointerButton::Right, true).unwrap();
    injector.button(PointerButton::Right, false).unwrap();
    injector.wheel(0, 2).unwrap();
    injector.wheel(0, -1).unwrap();
    let mut presses = Vec::new();
    while presses.len() < 4 {
        presses.push(wait_for(&conn, "button presses", WAIT, |e| match e {
            Event::ButtonPress(b) => Some(b.detail),
            _ => None,
        }));
    }
    assert_eq!(presses, [3, 5, 5, 4]);
}

#[test]
fn pointer_coordinates_are_relative_to_the_selected_monitor() {
    let x = Xvfb::start(640, 240);
    let (conn, root) = x.client();
    add_monitor(&conn, root, b"RIGHT", 320);
    let right = reach_media::list_screens(Some(x.display()))
        .unwrap()
        .into_iter()
        .find(|s| s.name == "RIGHT")
        .unwrap();
    let mut injector = open_injector(Some(x.display()), right.id).unwrap();
    injector.move_pointer(10, 20).unwrap();
    injector.move_pointer(9999, 9999).unwrap();
    sync(&conn);
    let pointer = conn.query_pointer(root).unwrap().reply().unwrap();
    assert_eq!((pointer.root_x, pointer.root_y), (639, 239));
}

#[test]
fn release_all_lets_go_of_every_key_and_button_the_viewer_held() {
    let x = Xvfb::start(320, 240);
    let (conn, _) = observer(&x);
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    for code in ["ShiftLeft", "ControlRight", "KeyQ"] {
        injector.key(code, true).unwrap();
    }
    injector.button(PointerButton::Left, true).unwrap();
    sync(&conn);
    assert_eq!(keys_down(&conn), [24, 50, 105]);
    injector.release_all().unwrap();
    assert_eq!(keys_down(&conn), Vec::<u8>::new());
    let pointer = conn.query_pointer(x.client().1).unwrap().reply().unwrap();
    assert_eq!(u16::from(pointer.mask) & 0x100, 0, "button 1 still down");
}

#[test]
fn closing_the_injector_when_the_viewer_leaves_releases_held_keys() {
    let x = Xvfb::start(320, 240);
    let (conn, _) = observer(&x);
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    injector.key("AltRight", true).unwrap();
    sync(&conn);
    assert_eq!(keys_down(&conn), [108]);
    drop(injector);
    sync(&conn);
    assert_eq!(keys_down(&conn), Vec::<u8>::new());
}

#[test]
fn ctrl_alt_del_presses_the_three_keys_and_releases_them_in_reverse() {
    let x = Xvfb::start(320, 240);
    let (conn, _) = observer(&x);
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    injector.special_key(SpecialKey::CtrlAltDel).unwrap();
    let events: Vec<(bool, u8)> = (0..6).map(|_| next_key(&conn)).collect();
    let expected = [
        (true, 37),
        (true, 64),
        (true, 119),
        (false, 119),
        (false, 64),
        (false, 37),
    ];
    assert_eq!(events, expected);
}

fn add_monitor(conn: &RustConnection, root: u32, name: &[u8], x: i16) {
    use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
    conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let atom = conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let info = MonitorInfo {
        name: atom,
        primary: false,
        automatic: false,
        x,
        y: 0,
        width: 320,
        height: 240,
        width_in_millimeters: 100,
        height_in_millimeters: 100,
        outputs: vec![],
    };
    conn.randr_set_monitor(root, info).unwrap().check().unwrap();
}

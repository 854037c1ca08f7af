//! The CLIPBOARD selection under a real Xvfb, between two independent X clients.

mod common;

use std::time::Duration;

use common::{Xvfb, wait_for};
use reach_media::limits::MAX_CLIPBOARD_BYTES;
use reach_media::{MediaError, open_clipboard, open_injector, paste_text};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, WindowClass,
};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn text_the_agent_sets_is_read_by_another_program() {
    let x = Xvfb::start(64, 64);
    let mut agent = open_clipboard(Some(x.display())).unwrap();
    let mut other = open_clipboard(Some(x.display())).unwrap();
    agent.set_text("héllo ⌘ clipboard").unwrap();
    assert_eq!(other.text().unwrap().as_deref(), Some("héllo ⌘ clipboard"));
}

#[test]
fn an_empty_clipboard_reads_as_none() {
    let x = Xvfb::start(64, 64);
    let mut agent = open_clipboard(Some(x.display())).unwrap();
    assert_eq!(agent.text().unwrap(), None);
}

#[test]
fn a_copy_in_another_program_is_noticed_and_read() {
    let x = Xvfb::start(64, 64);
    let mut agent = open_clipboard(Some(x.display())).unwrap();
    let mut other = open_clipboard(Some(x.display())).unwrap();
    other.set_text("copied elsewhere").unwrap();
    let seen = agent.wait_change(WAIT).unwrap();
    assert_eq!(seen.as_deref(), Some("copied elsewhere"));
}

#[test]
fn the_agents_own_copy_is_not_reported_as_a_remote_change() {
    let x = Xvfb::start(64, 64);
    let mut agent = open_clipboard(Some(x.display())).unwrap();
    agent.set_text("mine").unwrap();
    assert_eq!(agent.wait_change(Duration::from_millis(300)).unwrap(), None);
}

#[test]
fn clipboard_text_over_the_cap_is_refused() {
    let x = Xvfb::start(64, 64);
    let mut agent = open_clipboard(Some(x.display())).unwrap();
    let big = "x".repeat(MAX_CLIPBOARD_BYTES + 1);
    assert!(matches!(
        agent.set_text(&big),
        Err(MediaError::ClipboardTooLarge { .. })
    ));
}

#[test]
fn paste_sets_the_clipboard_and_presses_ctrl_v() {
    let x = Xvfb::start(64, 64);
    let (conn, root) = x.client();
    let window = conn.generate_id().unwrap();
    let aux = CreateWindowAux::new().event_mask(EventMask::KEY_PRESS | EventMask::EXPOSURE);
    conn.create_window(
        0,
        window,
        root,
        0,
        0,
        64,
        64,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )
    .unwrap();
    conn.map_window(window).unwrap();
    conn.flush().unwrap();
    wait_for(&conn, "expose", WAIT, |e| {
        matches!(e, Event::Expose(_)).then_some(())
    });
    conn.set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
        .unwrap();
    common::sync(&conn);

    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    let mut clipboard = open_clipboard(Some(x.display())).unwrap();
    paste_text(injector.as_mut(), clipboard.as_mut(), "pasted").unwrap();
    let presses: Vec<u8> = (0..2)
        .map(|_| {
            wait_for(&conn, "key press", WAIT, |e| match e {
                Event::KeyPress(k) => Some(k.detail),
                _ => None,
            })
        })
        .collect();
    assert_eq!(presses, [37, 55]);
    let mut reader = open_clipboard(Some(x.display())).unwrap();
    assert_eq!(reader.text().unwrap().as_deref(), Some("pasted"));
}

//! Capture under a real Xvfb: pixels, damage-driven updates, idleness, monitors.

mod common;

use std::time::Duration;

use common::{Xvfb, bgr, fill, rect};
use reach_media::{
    CaptureOptions, RawDecoder, RawEncoder, Rect, ScreenCapturer, VideoEncoder, open_capturer,
};

const WAIT: Duration = Duration::from_secs(5);

fn open(x: &Xvfb, screen: u32, shm: bool) -> Box<dyn ScreenCapturer> {
    let options = CaptureOptions {
        use_shared_memory: shm,
    };
    let mut capturer = open_capturer(Some(x.display()), screen, options).unwrap();
    // The first update announces the cursor; take it out of the way.
    let first = capturer.wait_update(WAIT).unwrap();
    assert!(first.cursor_position.is_some());
    capturer
}

fn assert_pattern(capturer: &mut dyn ScreenCapturer) {
    let frame = capturer.capture_full().unwrap();
    let at = |x, y| <[u8; 3]>::try_from(&frame.pixel(x, y)[..3]).unwrap();
    assert_eq!(at(0, 0), bgr(0xff0000));
    assert_eq!(at(159, 119), bgr(0xff0000));
    assert_eq!(at(160, 0), bgr(0x00ff00));
    assert_eq!(at(0, 120), bgr(0x0000ff));
    assert_eq!(at(319, 239), bgr(0x123456));
}

fn draw_pattern(x: &Xvfb) {
    let (conn, root) = x.client();
    fill(&conn, root, 0xff0000, &[rect(0, 0, 160, 120)]);
    fill(&conn, root, 0x00ff00, &[rect(160, 0, 160, 120)]);
    fill(&conn, root, 0x0000ff, &[rect(0, 120, 160, 120)]);
    fill(&conn, root, 0x123456, &[rect(160, 120, 160, 120)]);
}

#[test]
fn captured_pixels_match_a_pattern_drawn_by_another_client_through_shared_memory() {
    let x = Xvfb::start(320, 240);
    let mut capturer = open(&x, 0, true);
    assert!(capturer.uses_shared_memory());
    draw_pattern(&x);
    assert_pattern(capturer.as_mut());
}

#[test]
fn captured_pixels_match_a_pattern_drawn_by_another_client_through_get_image() {
    let x = Xvfb::start(320, 240);
    let mut capturer = open(&x, 0, false);
    assert!(!capturer.uses_shared_memory());
    draw_pattern(&x);
    assert_pattern(capturer.as_mut());
}

#[test]
fn changing_one_region_updates_only_that_region_and_only_its_tiles_are_encoded() {
    let x = Xvfb::start(640, 480);
    let (conn, root) = x.client();
    fill(&conn, root, 0x202020, &[rect(0, 0, 640, 480)]);
    let mut capturer = open(&x, 0, true);
    let mut encoder = RawEncoder::new().unwrap();
    let mut decoder = RawDecoder::new();
    let full = capturer.capture_full().unwrap().clone();
    decoder
        .decode(&encoder.encode(&full, None).unwrap().unwrap())
        .unwrap();

    fill(&conn, root, 0xabcdef, &[rect(100, 70, 30, 20)]);
    let update = capturer.wait_update(WAIT).unwrap();
    let drawn = Rect::new(100, 70, 30, 20);
    let covered = update
        .damage
        .iter()
        .fold(Rect::default(), |acc, r| acc.union(r));
    assert_eq!(covered, drawn);
    assert_eq!(&capturer.frame().pixel(110, 80)[..3], &bgr(0xabcdef));

    let out = encoder
        .encode(capturer.frame(), Some(&update.damage))
        .unwrap()
        .unwrap();
    // x 100..130 straddles the tile border at 128 (two 64-wide tiles, merged); only
    // rows 70..90 changed.
    let tiles: Vec<Rect> = out.tiles.iter().map(|t| t.rect).collect();
    assert_eq!(tiles, vec![Rect::new(64, 70, 128, 20)]);
    // Decoded pixels equal the captured ones; the encoder sends alpha 255 for X's pad byte.
    let decoded = decoder.decode(&out).unwrap();
    assert_eq!(
        decoded.pixel(110, 80)[..3],
        capturer.frame().pixel(110, 80)[..3]
    );
    assert_eq!(decoded.pixel(110, 80)[3], 255);
}

#[test]
fn an_idle_screen_produces_no_update() {
    let x = Xvfb::start(320, 240);
    let mut capturer = open(&x, 0, true);
    capturer.capture_full().unwrap();
    let update = capturer.wait_update(Duration::from_millis(300)).unwrap();
    assert!(update.is_empty(), "{update:?}");
}

#[test]
fn monitors_are_listed_and_the_chosen_one_is_captured_at_its_offset() {
    let x = Xvfb::start(640, 240);
    let (conn, root) = x.client();
    add_monitor(&conn, root, b"LEFT", 0, 320);
    add_monitor(&conn, root, b"RIGHT", 320, 320);
    let screens = reach_media::list_screens(Some(x.display())).unwrap();
    let right = screens
        .iter()
        .find(|s| s.name == "RIGHT")
        .expect("RIGHT listed");
    assert_eq!(
        (right.x, right.y, right.width, right.height),
        (320, 0, 320, 240)
    );

    fill(&conn, root, 0x00ff00, &[rect(0, 0, 320, 240)]);
    fill(&conn, root, 0xff00ff, &[rect(320, 0, 320, 240)]);
    let mut capturer = open(&x, right.id, true);
    let frame = capturer.capture_full().unwrap();
    assert_eq!((frame.width(), frame.height()), (320, 240));
    assert_eq!(&frame.pixel(0, 0)[..3], &bgr(0xff00ff));
    assert!(matches!(
        open_capturer(Some(x.display()), 99, CaptureOptions::default()),
        Err(reach_media::MediaError::NoSuchScreen(99))
    ));
}

/// Declares a RandR 1.5 monitor without outputs, as `xrandr --setmonitor NAME … none` does.
pub(crate) fn add_monitor(
    conn: &x11rb::rust_connection::RustConnection,
    root: u32,
    name: &[u8],
    x: i16,
    width: u16,
) {
    use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
    use x11rb::protocol::xproto::ConnectionExt as _;
    conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let atom = conn.intern_atom(false, name).unwrap().reply().unwrap().atom;
    let info = MonitorInfo {
        name: atom,
        primary: false,
        automatic: false,
        x,
        y: 0,
        width,
        height: 240,
        width_in_millimeters: 100,
        height_in_millimeters: 100,
        outputs: vec![],
    };
    conn.randr_set_monitor(root, info).unwrap().check().unwrap();
}

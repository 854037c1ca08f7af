//! Scroll detection on a real X server: a terminal-like window scrolled with CopyArea.

mod common;

use std::time::Duration;

use common::Xvfb;
use reach_media::{CaptureOptions, CopyRect, RawDecoder, RawEncoder, VideoEncoder, open_capturer};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
use x11rb::rust_connection::RustConnection;

const WAIT: Duration = Duration::from_secs(5);
const WIDTH: u16 = 640;
const HEIGHT: u16 = 480;

/// BGRX pixels of terminal line `line`: 16 rows of glyph-like ink, different per line.
fn text_line(line: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::from(WIDTH) * 16 * 4);
    for row in 0..16u32 {
        for x in 0..u32::from(WIDTH) {
            let ink = (3..13).contains(&row)
                && ((x * 31 + line * 17 + row * 7) ^ (x / 8 * (line + 1))).is_multiple_of(5);
            out.extend_from_slice(if ink {
                &[220, 220, 220, 0]
            } else {
                &[30, 20, 20, 0]
            });
        }
    }
    out
}

fn put_line(conn: &RustConnection, root: u32, gc: u32, y: i16, line: u32) {
    let depth = conn.setup().roots[0].root_depth;
    conn.put_image(
        ImageFormat::Z_PIXMAP,
        root,
        gc,
        WIDTH,
        16,
        0,
        y,
        0,
        depth,
        &text_line(line),
    )
    .unwrap();
}

#[test]
fn a_terminal_scrolled_with_copy_area_is_sent_as_one_copy_and_the_new_line() {
    let x = Xvfb::start(u32::from(WIDTH), u32::from(HEIGHT));
    let (conn, root) = x.client();
    let gc = conn.generate_id().unwrap();
    conn.create_gc(gc, root, &Default::default()).unwrap();
    for line in 0..u32::from(HEIGHT / 16) {
        put_line(&conn, root, gc, (line * 16) as i16, line);
    }
    common::sync(&conn);

    let mut capturer = open_capturer(Some(x.display()), 0, CaptureOptions::default()).unwrap();
    capturer.wait_update(WAIT).unwrap();
    let mut encoder = RawEncoder::with_scroll_detection(true).unwrap();
    let mut viewer = RawDecoder::new();
    let key = encoder
        .encode(capturer.capture_full().unwrap(), None)
        .unwrap()
        .unwrap();
    viewer.decode(&key).unwrap();

    // Scroll up one line, as a terminal does, and draw the new bottom line.
    conn.copy_area(root, root, gc, 0, 16, 0, 0, WIDTH, HEIGHT - 16)
        .unwrap();
    put_line(&conn, root, gc, (HEIGHT - 16) as i16, 999);
    common::sync(&conn);

    let update = capturer.wait_update(WAIT).unwrap();
    let delta = encoder
        .encode(capturer.frame(), Some(&update.damage))
        .unwrap()
        .unwrap();
    // One copy moving content up by one line (rows that were blank before and after
    // need not be part of it), covering nearly the whole screen.
    assert_eq!(delta.copies.len(), 1, "{:?}", delta.copies);
    let copy: CopyRect = delta.copies[0];
    assert_eq!(
        (copy.src.x, copy.src.width, copy.dst_x),
        (0, u32::from(WIDTH), 0)
    );
    assert_eq!(copy.src.y - copy.dst_y, 16);
    assert!(copy.src.height >= u32::from(HEIGHT) - 32, "{copy:?}");
    let bottom = u32::from(HEIGHT) - 16;
    assert!(
        delta.tiles.iter().all(|t| t.rect.y >= bottom),
        "{:?}",
        delta.tiles
    );
    let sent: usize = delta.tiles.iter().map(|t| t.zstd_bgra.len()).sum();
    assert!(
        sent < 16 * usize::from(WIDTH) * 4,
        "{sent} bytes for one line"
    );

    let canvas = viewer.decode(&delta).unwrap();
    let frame = capturer.frame();
    let differing = canvas
        .data()
        .chunks_exact(4)
        .zip(frame.data().chunks_exact(4))
        .filter(|(a, b)| a[..3] != b[..3])
        .count();
    assert_eq!(differing, 0, "the viewer's canvas equals the screen");
}

//! The capture → encode stream under a real Xvfb, decoded as a viewer would.

mod common;

use std::time::Duration;

use common::{Xvfb, fill, rect};
use openh264::formats::YUVSource as _;
use reach_media::{Codec, EncoderConfig, RawDecoder, VideoStream, open_injector};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, WindowClass};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn a_raw_stream_starts_with_a_keyframe_then_sends_only_changes_and_nothing_when_idle() {
    let x = Xvfb::start(320, 240);
    let (conn, root) = x.client();
    fill(&conn, root, 0x101010, &[rect(0, 0, 320, 240)]);
    let mut stream =
        VideoStream::open(Some(x.display()), 0, Codec::Raw, &EncoderConfig::default()).unwrap();
    let mut viewer = RawDecoder::new();

    let first = stream.next_output(WAIT).unwrap().frame.expect("a keyframe");
    assert!(first.keyframe);
    viewer.decode(&first).unwrap();
    let cursor = stream.next_output(WAIT).unwrap();
    assert!(cursor.frame.is_none() && cursor.cursor_position.is_some());
    assert!(
        stream
            .next_output(Duration::from_millis(200))
            .unwrap()
            .is_empty()
    );

    fill(&conn, root, 0xfedcba, &[rect(200, 150, 10, 10)]);
    let delta = stream.next_output(WAIT).unwrap().frame.expect("a delta");
    assert!(!delta.keyframe);
    assert_eq!(delta.tiles.len(), 1);
    assert_eq!(
        delta.tiles[0].rect,
        reach_media::Rect::new(192, 150, 64, 10)
    );
    let canvas = viewer.decode(&delta).unwrap();
    assert_eq!(canvas.pixel(205, 155), [0xba, 0xdc, 0xfe, 255]);
    assert_eq!(canvas.pixel(5, 5), [0x10, 0x10, 0x10, 255]);

    stream.request_keyframe();
    let again = stream.next_output(WAIT).unwrap().frame.unwrap();
    assert!(again.keyframe);
    assert_eq!(
        RawDecoder::new().decode(&again).unwrap(),
        viewer.canvas().unwrap()
    );
}

#[test]
fn an_h264_stream_starts_with_a_decodable_keyframe_carrying_its_codec_string() {
    let x = Xvfb::start(320, 240);
    let mut stream =
        VideoStream::open(Some(x.display()), 0, Codec::H264, &EncoderConfig::default()).unwrap();
    let out = stream.next_output(WAIT).unwrap();
    let frame = out.frame.expect("a keyframe");
    assert!(out.fell_back_to_raw.is_none());
    assert_eq!((frame.codec, frame.keyframe), (Codec::H264, true));
    assert!(frame.codec_string.unwrap().starts_with("avc1.42"));
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    assert!(decoder.decode(&frame.bitstream).unwrap().is_some());
}

/// The next output that carries a video frame (cursor updates come separately).
fn next_frame(stream: &mut VideoStream) -> reach_media::EncodedFrame {
    for _ in 0..20 {
        if let Some(frame) = stream.next_output(WAIT).unwrap().frame {
            return frame;
        }
    }
    panic!("no video frame")
}

#[test]
fn an_h264_stream_sends_a_typed_glyph_as_raw_tiles_and_a_full_screen_change_as_h264() {
    let x = Xvfb::start(320, 240);
    let (conn, root) = x.client();
    fill(&conn, root, 0x101010, &[rect(0, 0, 320, 240)]);
    let mut stream =
        VideoStream::open(Some(x.display()), 0, Codec::H264, &EncoderConfig::default()).unwrap();
    let first = next_frame(&mut stream);
    assert_eq!((first.codec, first.keyframe), (Codec::H264, true));
    let mut decoder = openh264::decoder::Decoder::new().unwrap();
    assert!(decoder.decode(&first.bitstream).unwrap().is_some());

    fill(&conn, root, 0xfedcba, &[rect(100, 100, 8, 16)]);
    let glyph = next_frame(&mut stream);
    assert_eq!((glyph.codec, glyph.keyframe), (Codec::Raw, false));
    assert_eq!(stream.codec(), Codec::H264);

    fill(&conn, root, 0x2040a0, &[rect(0, 0, 320, 240)]);
    let motion = next_frame(&mut stream);
    assert_eq!(motion.codec, Codec::H264);
    let picture = decoder
        .decode(&motion.bitstream)
        .unwrap()
        .expect("a picture");
    let (w, h) = picture.dimensions();
    assert_eq!((w, h), (320, 240));
}

#[test]
fn cursor_shape_and_position_changes_are_reported_separately_from_video() {
    let x = Xvfb::start(320, 240);
    let (conn, root) = x.client();
    // A window whose cursor is the "hand" glyph of the X cursor font.
    let font = conn.generate_id().unwrap();
    conn.open_font(font, b"cursor").unwrap();
    let cursor = conn.generate_id().unwrap();
    conn.create_glyph_cursor(cursor, font, font, 60, 61, 0, 0, 0, 0xffff, 0xffff, 0xffff)
        .unwrap();
    let window = conn.generate_id().unwrap();
    let aux = CreateWindowAux::new().cursor(cursor);
    conn.create_window(
        0,
        window,
        root,
        200,
        0,
        120,
        240,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &aux,
    )
    .unwrap();
    conn.map_window(window).unwrap();
    common::sync(&conn);

    let mut stream =
        VideoStream::open(Some(x.display()), 0, Codec::Raw, &EncoderConfig::default()).unwrap();
    stream.next_output(WAIT).unwrap();
    let initial = (0..5)
        .find_map(|_| stream.next_output(WAIT).unwrap().cursor_shape)
        .expect("the initial cursor shape");
    let mut injector = open_injector(Some(x.display()), 0).unwrap();
    injector.move_pointer(250, 100).unwrap();
    let (mut shape, mut position) = (None, None);
    for _ in 0..20 {
        let out = stream.next_output(WAIT).unwrap();
        shape = shape.or(out.cursor_shape);
        position = out.cursor_position.or(position);
        if shape.is_some() && position.is_some_and(|p| p.x == 250 && p.y == 100) {
            break;
        }
    }
    let shape = shape.expect("a new cursor shape");
    assert_ne!(shape.serial, initial.serial);
    assert_eq!(shape.rgba.len(), (shape.width * shape.height * 4) as usize);
    let position = position.expect("a cursor position");
    assert_eq!((position.x, position.y), (250, 100));
}

#[test]
fn a_resized_screen_is_reopened_and_sent_as_a_keyframe_of_the_new_size() {
    use x11rb::protocol::randr::ConnectionExt as _;
    let x = Xvfb::start(640, 480);
    let (conn, root) = x.client();
    let mut stream =
        VideoStream::open(Some(x.display()), 0, Codec::Raw, &EncoderConfig::default()).unwrap();
    let first = stream.next_output(WAIT).unwrap().frame.unwrap();
    assert_eq!((first.width, first.height), (640, 480));
    stream.next_output(WAIT).unwrap();

    // Shrink the screen as `xrandr --fb 320x240` does: switch the CRTC off, resize.
    conn.randr_query_version(1, 5).unwrap().reply().unwrap();
    let resources = conn
        .randr_get_screen_resources(root)
        .unwrap()
        .reply()
        .unwrap();
    for crtc in &resources.crtcs {
        conn.randr_set_crtc_config(
            *crtc,
            x11rb::CURRENT_TIME,
            resources.config_timestamp,
            0,
            0,
            0,
            x11rb::protocol::randr::Rotation::ROTATE0,
            &[],
        )
        .unwrap()
        .reply()
        .unwrap();
    }
    conn.randr_set_screen_size(root, 320, 240, 81, 61)
        .unwrap()
        .check()
        .unwrap();
    common::sync(&conn);

    let resized = (0..5)
        .find_map(|_| stream.next_output(WAIT).unwrap().frame)
        .expect("a frame after the resize");
    assert!(resized.keyframe);
    assert_eq!((resized.width, resized.height), (320, 240));
    let mut viewer = RawDecoder::new();
    assert_eq!(viewer.decode(&resized).unwrap().width(), 320);
}

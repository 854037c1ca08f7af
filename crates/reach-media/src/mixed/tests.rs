use super::*;

const W: u32 = 320;
const H: u32 = 240;

fn paint(frame: &mut Frame, area: Rect, bgra: [u8; 4]) {
    for y in area.y..area.bottom() {
        for px in frame
            .row_span_mut(area.x, y, area.width)
            .chunks_exact_mut(4)
        {
            px.copy_from_slice(&bgra);
        }
    }
}

fn started() -> (MixedEncoder, Frame) {
    let mut encoder = MixedEncoder::new(&EncoderConfig::default()).unwrap();
    let frame = Frame::new(W, H).unwrap();
    let first = encoder.encode(&frame, None).unwrap().unwrap();
    assert_eq!((first.codec, first.keyframe), (Codec::H264, true));
    (encoder, frame)
}

#[test]
fn a_keystroke_goes_out_as_raw_tiles_and_a_full_screen_change_as_h264() {
    let (mut encoder, mut frame) = started();
    let glyph = Rect::new(40, 40, 8, 16);
    paint(&mut frame, glyph, [200, 200, 200, 255]);
    let typed = encoder.encode(&frame, Some(&[glyph])).unwrap().unwrap();
    assert_eq!((typed.codec, typed.keyframe), (Codec::Raw, false));
    assert_eq!(typed.tiles.len(), 1);
    assert_eq!(encoder.codec(), Codec::H264);

    let bounds = frame.bounds();
    paint(&mut frame, bounds, [10, 90, 10, 255]);
    let moved = encoder.encode(&frame, Some(&[bounds])).unwrap().unwrap();
    assert_eq!(moved.codec, Codec::H264);
    assert!(
        encoder.raw_only.is_empty(),
        "H.264 caught up with the raw-sent areas"
    );
}

#[test]
fn a_small_change_back_to_a_colour_last_sent_raw_is_still_sent_after_h264_covered_it() {
    let (mut encoder, mut frame) = started();
    let glyph = Rect::new(64, 64, 8, 16);
    paint(&mut frame, glyph, [1, 2, 3, 255]);
    assert!(encoder.encode(&frame, Some(&[glyph])).unwrap().is_some());
    let bounds = frame.bounds();
    paint(&mut frame, bounds, [50, 50, 50, 255]);
    let h264 = encoder.encode(&frame, Some(&[bounds])).unwrap().unwrap();
    assert_eq!(h264.codec, Codec::H264);
    paint(&mut frame, glyph, [1, 2, 3, 255]);
    let back = encoder.encode(&frame, Some(&[glyph])).unwrap();
    let back = back.expect("the glyph changed since H.264 covered it");
    assert_eq!(back.codec, Codec::Raw);
}

#[test]
fn a_keyframe_request_is_answered_with_h264_even_for_a_small_change() {
    let (mut encoder, mut frame) = started();
    encoder.request_keyframe();
    let glyph = Rect::new(0, 0, 8, 16);
    paint(&mut frame, glyph, [9, 9, 9, 255]);
    let out = encoder.encode(&frame, Some(&[glyph])).unwrap().unwrap();
    assert_eq!((out.codec, out.keyframe), (Codec::H264, true));
}

#[test]
fn small_changes_beyond_the_raw_budget_go_to_h264() {
    let (mut encoder, mut frame) = started();
    let area = Rect::new(0, 0, 256, 200);
    let mut seed = 1u32;
    let mut codecs = Vec::new();
    for _ in 0..12 {
        for y in area.y..area.bottom() {
            for byte in frame.row_span_mut(area.x, y, area.width) {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *byte = (seed >> 24) as u8;
            }
        }
        let out = encoder.encode(&frame, Some(&[area])).unwrap().unwrap();
        codecs.push(out.codec);
    }
    assert_eq!(codecs[0], Codec::Raw);
    assert_eq!(codecs.last(), Some(&Codec::H264), "{codecs:?}");
}

/// Text-like rows: every 16-pixel line has its own pattern.
fn terminal(frame: &mut Frame, first_line: u32) {
    let lines = frame.height() / 16;
    for line in 0..lines {
        let mut seed = (first_line + line).wrapping_mul(2_654_435_761);
        for y in line * 16..line * 16 + 16 {
            for px in frame.row_span_mut(0, y, W).chunks_exact_mut(4) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let ink = if (seed >> 16).is_multiple_of(5) {
                    220
                } else {
                    30
                };
                px.copy_from_slice(&[ink, ink, ink, 255]);
            }
        }
    }
}

#[test]
fn a_scrolled_terminal_goes_out_raw_as_a_copy_and_full_screen_noise_as_h264() {
    let mut encoder = MixedEncoder::new(&EncoderConfig::default()).unwrap();
    let mut frame = Frame::new(W, H).unwrap();
    terminal(&mut frame, 0);
    assert_eq!(
        encoder.encode(&frame, None).unwrap().unwrap().codec,
        Codec::H264
    );
    terminal(&mut frame, 1);
    let bounds = frame.bounds();
    let scrolled = encoder.encode(&frame, Some(&[bounds])).unwrap().unwrap();
    assert_eq!(scrolled.codec, Codec::Raw);
    assert_eq!(scrolled.copies.len(), 1);
    assert!(scrolled.byte_len() <= MAX_SCROLL_RAW_BYTES);

    let mut seed = 7u32;
    for byte in frame.data_mut() {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *byte = (seed >> 24) as u8;
    }
    let noise = encoder.encode(&frame, Some(&[bounds])).unwrap().unwrap();
    assert_eq!(noise.codec, Codec::H264);
}

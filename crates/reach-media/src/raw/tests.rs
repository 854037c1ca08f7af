use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;

fn noise(width: u32, height: u32, seed: u64) -> Frame {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut frame = Frame::new(width, height).unwrap();
    rng.fill(frame.data_mut());
    frame
        .data_mut()
        .iter_mut()
        .skip(3)
        .step_by(4)
        .for_each(|a| *a = 255);
    frame
}

fn paint(frame: &mut Frame, rect: Rect, bgra: [u8; 4]) {
    for y in rect.y..rect.bottom() {
        frame
            .row_span_mut(rect.x, y, rect.width)
            .chunks_exact_mut(4)
            .for_each(|px| px.copy_from_slice(&bgra));
    }
}

#[test]
fn raw_frames_round_trip_pixel_exactly() {
    let mut encoder = RawEncoder::new();
    let mut decoder = RawDecoder::new();
    let mut frame = noise(333, 211, 1);
    let key = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(key.keyframe);
    assert_eq!(decoder.decode(&key.data).unwrap(), &frame);

    paint(&mut frame, Rect::new(70, 70, 10, 10), [1, 2, 3, 255]);
    let delta = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(!delta.keyframe);
    assert_eq!(delta.rects, vec![Rect::new(64, 64, 64, 64)]);
    assert_eq!(decoder.decode(&delta.data).unwrap(), &frame);
}

#[test]
fn a_change_across_tile_borders_sends_only_the_touched_tiles() {
    let mut encoder = RawEncoder::new();
    let mut frame = noise(256, 256, 2);
    encoder.encode(&frame, None).unwrap();
    paint(&mut frame, Rect::new(60, 10, 8, 4), [9, 9, 9, 255]);
    let damage = [Rect::new(60, 10, 8, 4)];
    let delta = encoder.encode(&frame, Some(&damage)).unwrap().unwrap();
    assert_eq!(
        delta.rects,
        vec![Rect::new(0, 0, 64, 64), Rect::new(64, 0, 64, 64)]
    );
}

#[test]
fn an_unchanged_frame_produces_nothing() {
    let mut encoder = RawEncoder::new();
    let frame = noise(100, 100, 3);
    encoder.encode(&frame, None).unwrap();
    assert_eq!(encoder.encode(&frame, None).unwrap(), None);
    assert_eq!(encoder.encode(&frame, Some(&[])).unwrap(), None);
}

#[test]
fn a_requested_keyframe_resends_everything() {
    let mut encoder = RawEncoder::new();
    let frame = noise(100, 100, 4);
    encoder.encode(&frame, None).unwrap();
    encoder.request_keyframe();
    let key = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(key.keyframe);
    assert_eq!(RawDecoder::new().decode(&key.data).unwrap(), &frame);
}

#[test]
fn a_scrolled_page_is_sent_as_a_copy_and_the_exposed_strip() {
    let page = |scroll| scroll::tests::text_page(640, 480, scroll);
    let mut encoder = RawEncoder::new();
    let mut decoder = RawDecoder::new();
    let before = page(0);
    decoder
        .decode(&encoder.encode(&before, None).unwrap().unwrap().data)
        .unwrap();
    let after = page(20);
    let delta = encoder.encode(&after, None).unwrap().unwrap();
    assert_eq!(delta.rects[0], Rect::new(0, 0, 640, 460));
    let tile_rows: Vec<u32> = delta.rects[1..].iter().map(|t| t.y).collect();
    assert!(tile_rows.iter().all(|&y| y >= 448), "{tile_rows:?}");
    assert_eq!(decoder.decode(&delta.data).unwrap(), &after);
}

#[test]
fn a_malformed_frame_is_refused_and_leaves_the_canvas_alone() {
    let mut encoder = RawEncoder::new();
    let mut decoder = RawDecoder::new();
    let frame = noise(64, 64, 5);
    decoder
        .decode(&encoder.encode(&frame, None).unwrap().unwrap().data)
        .unwrap();
    let mut changed = frame.clone();
    paint(&mut changed, Rect::new(0, 0, 4, 4), [0, 0, 0, 255]);
    let mut delta = encoder.encode(&changed, None).unwrap().unwrap().data;
    let last = delta.len() - 1;
    delta.truncate(last);
    assert!(decoder.decode(&delta).is_err());
    assert_eq!(decoder.canvas(), Some(&frame));
    assert!(RawDecoder::new().decode(&delta[..10]).is_err());
}

#[test]
fn an_inter_frame_before_a_keyframe_is_refused() {
    let mut encoder = RawEncoder::new();
    let mut frame = noise(64, 64, 6);
    encoder.encode(&frame, None).unwrap();
    paint(&mut frame, Rect::new(0, 0, 4, 4), [0, 0, 0, 255]);
    let delta = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(matches!(
        RawDecoder::new().decode(&delta.data),
        Err(MediaError::Malformed(_))
    ));
}

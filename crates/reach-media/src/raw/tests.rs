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

fn tile_rects(frame: &EncodedFrame) -> Vec<Rect> {
    frame.tiles.iter().map(|t| t.rect).collect()
}

#[test]
fn raw_frames_round_trip_pixel_exactly() {
    let mut encoder = RawEncoder::new().unwrap();
    let mut decoder = RawDecoder::new();
    let mut frame = noise(333, 211, 1);
    let key = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(key.keyframe);
    assert_eq!(decoder.decode(&key).unwrap(), &frame);

    paint(&mut frame, Rect::new(70, 70, 10, 10), [1, 2, 3, 255]);
    let delta = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(!delta.keyframe);
    // The 64×64 tile at (64, 64), cropped to the ten rows that changed.
    assert_eq!(tile_rects(&delta), vec![Rect::new(64, 70, 64, 10)]);
    assert_eq!(decoder.decode(&delta).unwrap(), &frame);
}

#[test]
fn a_keyframe_uses_tiles_merged_up_to_the_width_limit() {
    let frame = noise(1100, 70, 9);
    let key = RawEncoder::new()
        .unwrap()
        .encode(&frame, None)
        .unwrap()
        .unwrap();
    let first_row: Vec<Rect> = tile_rects(&key).into_iter().filter(|t| t.y == 0).collect();
    assert_eq!(
        first_row,
        vec![
            Rect::new(0, 0, 512, 64),
            Rect::new(512, 0, 512, 64),
            Rect::new(1024, 0, 76, 64)
        ]
    );
    assert_eq!(RawDecoder::new().decode(&key).unwrap(), &frame);
}

#[test]
fn a_change_across_tile_borders_sends_only_the_touched_tiles() {
    let mut encoder = RawEncoder::new().unwrap();
    let mut frame = noise(256, 256, 2);
    encoder.encode(&frame, None).unwrap();
    paint(&mut frame, Rect::new(60, 10, 8, 4), [9, 9, 9, 255]);
    let damage = [Rect::new(60, 10, 8, 4)];
    let delta = encoder.encode(&frame, Some(&damage)).unwrap().unwrap();
    assert_eq!(tile_rects(&delta), vec![Rect::new(0, 10, 128, 4)]);
}

#[test]
fn an_unchanged_frame_produces_nothing() {
    let mut encoder = RawEncoder::new().unwrap();
    let frame = noise(100, 100, 3);
    encoder.encode(&frame, None).unwrap();
    assert_eq!(encoder.encode(&frame, None).unwrap(), None);
    assert_eq!(encoder.encode(&frame, Some(&[])).unwrap(), None);
}

#[test]
fn a_requested_keyframe_resends_everything() {
    let mut encoder = RawEncoder::new().unwrap();
    let frame = noise(100, 100, 4);
    encoder.encode(&frame, None).unwrap();
    encoder.request_keyframe();
    let key = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(key.keyframe);
    assert_eq!(RawDecoder::new().decode(&key).unwrap(), &frame);
}

#[test]
fn a_scrolled_page_is_sent_as_a_copy_and_the_exposed_strip() {
    let page = |scroll| scroll::tests::text_page(640, 480, scroll);
    let mut encoder = RawEncoder::with_scroll_detection(true).unwrap();
    let mut decoder = RawDecoder::new();
    let before = page(0);
    decoder
        .decode(&encoder.encode(&before, None).unwrap().unwrap())
        .unwrap();
    let after = page(20);
    let delta = encoder.encode(&after, None).unwrap().unwrap();
    let copy = CopyRect {
        src: Rect::new(0, 20, 640, 460),
        dst_x: 0,
        dst_y: 0,
    };
    assert_eq!(delta.copies, vec![copy]);
    assert_eq!(
        tile_rects(&delta),
        vec![Rect::new(0, 460, 512, 20), Rect::new(512, 460, 128, 20)]
    );
    assert_eq!(decoder.decode(&delta).unwrap(), &after);
}

#[test]
fn without_scroll_detection_a_scrolled_page_is_sent_as_tiles_only() {
    let page = |scroll| scroll::tests::text_page(640, 480, scroll);
    let mut encoder = RawEncoder::with_scroll_detection(false).unwrap();
    let mut decoder = RawDecoder::new();
    decoder
        .decode(&encoder.encode(&page(0), None).unwrap().unwrap())
        .unwrap();
    let delta = encoder.encode(&page(20), None).unwrap().unwrap();
    assert!(delta.copies.is_empty());
    assert_eq!(decoder.decode(&delta).unwrap(), &page(20));
}

#[test]
fn a_malformed_frame_is_refused_and_leaves_the_canvas_alone() {
    let mut encoder = RawEncoder::new().unwrap();
    let mut decoder = RawDecoder::new();
    let frame = noise(64, 64, 5);
    decoder
        .decode(&encoder.encode(&frame, None).unwrap().unwrap())
        .unwrap();
    let mut changed = frame.clone();
    paint(&mut changed, Rect::new(0, 0, 4, 4), [0, 0, 0, 255]);
    let delta = encoder.encode(&changed, None).unwrap().unwrap();

    let mut truncated = delta.clone();
    let len = truncated.tiles[0].zstd_bgra.len();
    truncated.tiles[0].zstd_bgra.truncate(len - 1);
    let mut outside = delta.clone();
    outside.tiles[0].rect.x = 60;
    let mut overlong = delta.clone();
    overlong.tiles[0].rect.height = 2;
    let mut bad_copy = delta.clone();
    bad_copy.copies.push(CopyRect {
        src: Rect::new(0, 1, 64, 64),
        dst_x: 0,
        dst_y: 0,
    });
    let mut too_many = delta.clone();
    too_many.tiles = vec![delta.tiles[0].clone(); 300];
    for bad in [truncated, outside, overlong, bad_copy, too_many] {
        assert!(
            matches!(decoder.decode(&bad), Err(MediaError::Malformed(_))),
            "{bad:?}"
        );
        assert_eq!(decoder.canvas(), Some(&frame));
    }
    assert_eq!(decoder.decode(&delta).unwrap(), &changed);
}

#[test]
fn an_inter_frame_before_a_keyframe_is_refused() {
    let mut encoder = RawEncoder::new().unwrap();
    let mut frame = noise(64, 64, 6);
    encoder.encode(&frame, None).unwrap();
    paint(&mut frame, Rect::new(0, 0, 4, 4), [0, 0, 0, 255]);
    let delta = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(matches!(
        RawDecoder::new().decode(&delta),
        Err(MediaError::Malformed(_))
    ));
}

use super::*;

fn tile(x: u32, len: usize) -> v1::Tile {
    v1::Tile {
        x,
        y: 0,
        width: 1,
        height: 1,
        zstd_bgra: Bytes::from(vec![x as u8; len]),
    }
}

fn raw_frame(tile_sizes: &[usize]) -> v1::VideoFrame {
    v1::VideoFrame {
        codec: v1::VideoCodec::Raw.into(),
        keyframe: true,
        width: 64,
        height: 64,
        sequence: 7,
        pts_micros: 99,
        copies: vec![v1::CopyRect {
            width: 1,
            height: 1,
            ..Default::default()
        }],
        tiles: tile_sizes
            .iter()
            .enumerate()
            .map(|(i, len)| tile(i as u32, *len))
            .collect(),
        ..Default::default()
    }
}

fn assemble(parts: Vec<v1::VideoFrame>) -> v1::VideoFrame {
    let mut assembler = FrameAssembler::new();
    let count = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        match assembler.push(part) {
            Assembled::Complete(frame) if i + 1 == count => return frame,
            Assembled::Waiting if i + 1 < count => {}
            other => panic!("part {i} of {count}: {other:?}"),
        }
    }
    unreachable!("no parts")
}

#[test]
fn a_frame_within_the_budget_travels_whole() {
    let frame = raw_frame(&[10, 10]);
    assert_eq!(split_frame(frame.clone(), 100), vec![frame]);
}

#[test]
fn raw_tiles_are_split_within_the_budget_and_reassembled_in_order() {
    let frame = raw_frame(&[40, 40, 40, 90, 10, 200]);
    let parts = split_frame(frame.clone(), 100);
    assert_eq!(parts.len(), 4);
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part.part, i as u32);
        assert_eq!(part.more, i + 1 < parts.len());
        assert_eq!(part.sequence, 7);
        assert_eq!(part.keyframe, i == 0, "keyframe rides on part 0 only");
        assert_eq!(part.copies.is_empty(), i != 0, "copies ride on part 0 only");
        assert!(payload_len(part) <= 100 || part.tiles.len() == 1);
    }
    assert_eq!(assemble(parts), frame);
}

#[test]
fn an_h264_access_unit_is_split_and_concatenated_back() {
    let bitstream: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
    let frame = v1::VideoFrame {
        codec: v1::VideoCodec::H264.into(),
        keyframe: true,
        sequence: 3,
        bitstream: Bytes::from(bitstream),
        ..Default::default()
    };
    let parts = split_frame(frame.clone(), 1000);
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| p.bitstream.len() <= 1000));
    assert_eq!(assemble(parts), frame);
}

#[test]
fn a_noisy_1080p_raw_keyframe_splits_into_messages_under_the_relay_cap() {
    // 30 × 17 tiles of 64×64 incompressible pixels: ~8 MB of tile data.
    let sizes = vec![64 * 64 * 4 + 16; 30 * 17];
    let parts = split_frame(raw_frame(&sizes), MAX_PART_PAYLOAD);
    assert!(parts.len() >= 8);
    for part in parts {
        let envelope = reach_proto::codec::envelope("s", v1::envelope::Body::VideoFrame(part));
        assert!(fits_agent_cap(&envelope));
    }
}

#[test]
fn a_missing_part_is_reported_lost_and_the_next_frame_still_assembles() {
    let mut parts = split_frame(raw_frame(&[60, 60, 60]), 100);
    assert_eq!(parts.len(), 3);
    parts.remove(1);
    let mut assembler = FrameAssembler::new();
    assert_eq!(assembler.push(parts[0].clone()), Assembled::Waiting);
    assert!(matches!(
        assembler.push(parts[1].clone()),
        Assembled::Lost(_)
    ));
    assert!(!assembler.is_pending());
    let whole = raw_frame(&[5]);
    assert_eq!(assembler.push(whole.clone()), Assembled::Complete(whole));
}

#[test]
fn a_new_frame_before_the_last_part_drops_the_unfinished_one() {
    let parts = split_frame(raw_frame(&[60, 60]), 100);
    let mut assembler = FrameAssembler::new();
    assert_eq!(assembler.push(parts[0].clone()), Assembled::Waiting);
    assert!(matches!(
        assembler.push(parts[0].clone()),
        Assembled::Lost(_)
    ));
    assert!(assembler.is_pending(), "the new frame's first part is kept");
    assert!(matches!(
        assembler.push(parts[1].clone()),
        Assembled::Complete(_)
    ));
}

#[test]
fn a_stray_later_part_is_refused() {
    let parts = split_frame(raw_frame(&[60, 60]), 100);
    let mut assembler = FrameAssembler::new();
    assert!(matches!(
        assembler.push(parts[1].clone()),
        Assembled::Lost(_)
    ));
    assert!(!assembler.is_pending());
}

#[test]
fn a_frame_with_too_many_parts_is_refused() {
    let mut assembler = FrameAssembler::new();
    let mut part = raw_frame(&[1]);
    part.more = true;
    assert_eq!(assembler.push(part.clone()), Assembled::Waiting);
    part.keyframe = false;
    let mut outcome = Assembled::Waiting;
    for index in 1..=MAX_FRAME_PARTS {
        part.part = index;
        outcome = assembler.push(part.clone());
        if outcome != Assembled::Waiting {
            break;
        }
    }
    assert!(matches!(outcome, Assembled::Lost(_)));
    assert!(!assembler.is_pending());
}

#[test]
fn wire_frames_map_back_onto_encoded_frames() {
    let encoded = EncodedFrame {
        codec: Codec::Raw,
        keyframe: true,
        width: 64,
        height: 32,
        bitstream: Vec::new(),
        copies: vec![CopyRect {
            src: Rect::new(0, 1, 64, 8),
            dst_x: 0,
            dst_y: 0,
        }],
        tiles: vec![EncodedTile {
            rect: Rect::new(0, 24, 64, 8),
            zstd_bgra: vec![1, 2, 3],
        }],
        codec_string: None,
    };
    let wire = video_frame(encoded.clone(), 0, 1, 2);
    assert_eq!(encoded_frame(&wire), encoded);
}

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::*;
use crate::codec::FallbackEncoder;

/// A desktop-like test image: flat panels, gradients and fine text-like detail.
fn desktop_image(width: u32, height: u32) -> Frame {
    let mut frame = Frame::new(width, height).unwrap();
    for y in 0..height {
        for (x, px) in frame
            .row_span_mut(0, y, width)
            .chunks_exact_mut(4)
            .enumerate()
        {
            let x = x as u32;
            let bgra = if y < 40 {
                [200, 120, 40, 255]
            } else if x < width / 3 {
                [(x * 255 / width) as u8, (y * 255 / height) as u8, 128, 255]
            } else if (x / 6 + y / 12).is_multiple_of(3) && (x % 6 < 4) {
                [30, 30, 30, 255]
            } else {
                [245, 245, 245, 255]
            };
            px.copy_from_slice(&bgra);
        }
    }
    frame
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        99.0
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// Luma plane of a decoded picture, without stride padding.
fn decoded_luma(decoder: &mut Decoder, data: &[u8]) -> Vec<u8> {
    let picture = decoder.decode(data).unwrap().expect("a picture");
    let (w, h) = picture.dimensions();
    let stride = picture.strides().0;
    (0..h)
        .flat_map(|y| picture.y()[y * stride..y * stride + w].to_vec())
        .collect()
}

#[test]
fn h264_round_trip_keeps_luma_psnr_above_35_db() {
    let frame = desktop_image(640, 360);
    let mut encoder = H264Encoder::new(&EncoderConfig::default()).unwrap();
    let out = encoder.encode(&frame, None).unwrap().unwrap();
    assert!(out.keyframe);
    assert!(out.codec_string.as_deref().unwrap().starts_with("avc1.42"));
    let mut decoder = Decoder::new().unwrap();
    let luma = decoded_luma(&mut decoder, &out.bitstream);
    let reference = crate::yuv::bgra_to_i420(frame.data(), 640, 360).y;
    let quality = psnr(&luma, &reference);
    assert!(quality > 35.0, "PSNR {quality:.1} dB");
}

#[test]
fn the_first_frame_and_requested_frames_are_keyframes_and_others_are_not() {
    let mut frame = desktop_image(320, 240);
    let mut encoder = H264Encoder::new(&EncoderConfig::default()).unwrap();
    assert!(encoder.encode(&frame, None).unwrap().unwrap().keyframe);
    frame.row_span_mut(100, 100, 8).fill(0);
    assert!(!encoder.encode(&frame, None).unwrap().unwrap().keyframe);
    encoder.request_keyframe();
    assert!(encoder.encode(&frame, None).unwrap().unwrap().keyframe);
    assert_eq!(encoder.encode(&frame, Some(&[])).unwrap(), None);
}

#[test]
fn a_frame_openh264_cannot_encode_falls_back_to_raw_and_says_why() {
    let mut encoder = FallbackEncoder::new(Codec::H264, &EncoderConfig::default()).unwrap();
    assert_eq!(encoder.codec(), Codec::H264);
    let too_wide = Frame::new(4000, 16).unwrap();
    let out = encoder.encode(&too_wide, None).unwrap().unwrap();
    assert_eq!((out.codec, out.keyframe), (Codec::Raw, true));
    assert!(matches!(
        encoder.take_fallback_reason(),
        Some(MediaError::Encoder(_))
    ));
}

#[test]
fn inter_frames_built_from_damaged_areas_decode_to_the_changed_picture() {
    let mut frame = desktop_image(320, 240);
    let mut encoder = H264Encoder::new(&EncoderConfig::default()).unwrap();
    let mut decoder = Decoder::new().unwrap();
    let key = encoder.encode(&frame, None).unwrap().unwrap();
    decoded_luma(&mut decoder, &key.bitstream);
    let mut last = Vec::new();
    for step in 0..5u32 {
        let damage = Rect::new(40 + step * 30, 100, 24, 40);
        for y in damage.y..damage.bottom() {
            frame
                .row_span_mut(damage.x, y, damage.width)
                .fill((step * 50) as u8);
        }
        let out = encoder.encode(&frame, Some(&[damage])).unwrap().unwrap();
        assert!(!out.keyframe);
        last = decoded_luma(&mut decoder, &out.bitstream);
    }
    let reference = crate::yuv::bgra_to_i420(frame.data(), 320, 240).y;
    let quality = psnr(&last, &reference);
    assert!(
        quality > 35.0,
        "PSNR {quality:.1} dB after five inter frames"
    );
}

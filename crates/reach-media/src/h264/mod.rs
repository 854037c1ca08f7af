//! The `h264` codec: openh264 (built from source) in screen-content real-time mode,
//! bitrate rate control, IDR on request. Output is Annex-B Constrained Baseline; the
//! browser codec string is read from the SPS of each keyframe.

mod sps;

use std::time::Instant;

use openh264::OpenH264API;
use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig as OhConfig, FrameRate, FrameType, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;

pub use sps::codec_string_from_annexb;

use crate::codec::{Codec, EncodedFrame, EncoderConfig, VideoEncoder};
use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::yuv::I420;

/// Software H.264 encoder.
pub struct H264Encoder {
    encoder: Encoder,
    keyframe_due: bool,
    codec_string: Option<String>,
    clock: FrameClock,
    /// The last converted picture; only damaged areas are converted again.
    picture: Option<I420>,
}

impl H264Encoder {
    /// Starts openh264 with `config`'s bitrate and frame rate.
    ///
    /// # Errors
    /// [`MediaError::Encoder`] when openh264 refuses the settings.
    pub fn new(config: &EncoderConfig) -> Result<Self, MediaError> {
        let settings = OhConfig::new()
            .usage_type(UsageType::ScreenContentRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(config.target_bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(config.max_fps))
            .skip_frames(false)
            .complexity(Complexity::Low);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), settings)
            .map_err(|e| MediaError::Encoder(format!("openh264 init: {e}")))?;
        Ok(Self {
            encoder,
            keyframe_due: true,
            codec_string: None,
            clock: FrameClock::new(config.max_fps),
            picture: None,
        })
    }
}

impl VideoEncoder for H264Encoder {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn encode(
        &mut self,
        frame: &Frame,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        if damage.is_some_and(<[Rect]>::is_empty) && !self.keyframe_due {
            return Ok(None);
        }
        convert(&mut self.picture, frame, damage);
        let Some(picture) = self.picture.take() else {
            unreachable!("convert leaves a picture")
        };
        let out = self.encode_picture(frame, &picture);
        self.picture = Some(picture);
        out
    }

    fn request_keyframe(&mut self) {
        self.keyframe_due = true;
    }

    fn encode_converted(
        &mut self,
        frame: &Frame,
        picture: &I420,
        damage: Option<&[Rect]>,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        if damage.is_some_and(<[Rect]>::is_empty) && !self.keyframe_due {
            return Ok(None);
        }
        // Our own picture no longer follows the source: convert in full if asked to again.
        self.picture = None;
        self.encode_picture(frame, picture)
    }

    fn wants_i420(&self) -> bool {
        true
    }
}

impl H264Encoder {
    fn encode_picture(
        &mut self,
        frame: &Frame,
        i420: &I420,
    ) -> Result<Option<EncodedFrame>, MediaError> {
        let half = i420.width / 2;
        let source = YUVSlices::new(
            (&i420.y, &i420.u, &i420.v),
            (i420.width, i420.height),
            (i420.width, half, half),
        );
        if self.keyframe_due {
            self.encoder.force_intra_frame();
        }
        let stream = self
            .encoder
            .encode_at(&source, self.clock.next())
            .map_err(|e| MediaError::Encoder(format!("openh264 encode: {e}")))?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR | FrameType::I);
        let bitstream = stream.to_vec();
        if bitstream.is_empty() {
            return Ok(None);
        }
        if keyframe {
            self.keyframe_due = false;
            self.codec_string = codec_string_from_annexb(&bitstream).or(self.codec_string.take());
        }
        Ok(Some(EncodedFrame {
            codec: Codec::H264,
            keyframe,
            width: frame.width(),
            height: frame.height(),
            bitstream,
            copies: Vec::new(),
            tiles: Vec::new(),
            codec_string: self.codec_string.clone(),
        }))
    }
}

/// Brings the I420 `picture` up to date with `frame`, converting only `damage` when
/// the size is unchanged.
fn convert(picture: &mut Option<I420>, frame: &Frame, damage: Option<&[Rect]>) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let planes = (width.div_ceil(2) * 2, height.div_ceil(2) * 2);
    let reusable = picture
        .as_ref()
        .is_some_and(|p| (p.width, p.height) == planes);
    let full = [frame.bounds()];
    let rects = match damage {
        Some(rects) if reusable => rects,
        _ => {
            *picture = Some(I420::new(width, height));
            &full[..]
        }
    };
    let Some(p) = picture.as_mut() else {
        unreachable!("the picture was just created")
    };
    for rect in rects {
        p.update(frame.data(), width, height, *rect);
    }
}

/// Presentation timestamps for rate control: wall-clock time, but never closer together
/// than one frame interval, so a burst of frames is not mistaken for a bitrate spike.
struct FrameClock {
    start: Instant,
    interval_ms: u64,
    last_ms: Option<u64>,
}

impl FrameClock {
    fn new(max_fps: f32) -> Self {
        Self {
            start: Instant::now(),
            interval_ms: (1000.0 / max_fps.clamp(1.0, 240.0)) as u64,
            last_ms: None,
        }
    }

    fn next(&mut self) -> Timestamp {
        let now = self.start.elapsed().as_millis() as u64;
        let ms = match self.last_ms {
            Some(last) => now.max(last + self.interval_ms),
            None => now,
        };
        self.last_ms = Some(ms);
        Timestamp::from_millis(ms)
    }
}

#[cfg(test)]
mod tests;

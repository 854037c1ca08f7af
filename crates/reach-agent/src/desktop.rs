//! Gives the agent eyes and hands: streams a screen on `StartStream` and plays viewer input.
//!
//! The connection core ([`crate::spawn`]) hands every message it does not handle itself to its
//! embedder as [`AgentEvent::Message`]; [`serve_desktop`] is the embedder for a machine with a
//! display. Capture and encoding run on one blocking thread per stream, input injection on one
//! blocking thread, so no X11 call ever blocks the async runtime.
//!
//! Frames go out through a channel of [`FRAMES_IN_FLIGHT`] slots: when the socket is slow the
//! stream thread waits instead of queueing, and its next capture reads the newest pixels (the X
//! server coalesces damage meanwhile), so viewers never receive stale frames.

use crate::ClientError;
use crate::agent::{AgentEvent, AgentHandle};
use reach_media::{Codec, EncoderConfig, MediaError, StreamOutput, VideoStream};
use reach_proto::codec as wire;
use reach_proto::v1::{self, Envelope, envelope::Body, session_event::Kind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

pub mod frames;
pub mod indicator;
mod input;

/// Encoded frames waiting for the socket, at most.
pub const FRAMES_IN_FLIGHT: usize = 2;
/// How long a stream thread waits for damage before checking for commands.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// Where and how to stream.
#[derive(Debug, Clone, Default)]
pub struct DesktopOptions {
    /// X display name (`None` = `$DISPLAY`).
    pub display: Option<String>,
    /// Target H.264 bitrate in bits per second (`0` = the encoder's default).
    pub bitrate_bps: u32,
    /// Do not show the on-screen indicator while someone is connected (only for tests that
    /// compare the shared screen pixel for pixel).
    pub hide_indicator: bool,
}

/// Commands for a running stream thread.
enum StreamCommand {
    Keyframe,
}

/// One running capture → encode thread.
struct Stream {
    session_id: String,
    codec: Codec,
    screen: u32,
    stop: Arc<AtomicBool>,
    commands: std_mpsc::Sender<StreamCommand>,
}

impl Stream {
    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the desktop side of an agent until the agent stops.
///
/// # Errors
/// The error that stopped the agent (as [`AgentHandle::join`]).
pub async fn serve_desktop(
    mut handle: AgentHandle,
    options: DesktopOptions,
) -> Result<(), ClientError> {
    let (frames_tx, mut frames) = mpsc::channel::<Envelope>(FRAMES_IN_FLIGHT);
    let input = input::InputThread::spawn(options.display.clone());
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel();
    let indicator = options
        .display
        .as_deref()
        .filter(|_| !options.hide_indicator)
        .and_then(|d| indicator::Indicator::spawn(d, stop_tx.clone()));
    let mut watchers = indicator::Watchers::default();
    let mut stream: Option<Stream> = None;
    loop {
        tokio::select! {
            event = handle.events.recv() => match event {
                Some(AgentEvent::Message(envelope)) => {
                    if let Some(Body::SessionEvent(e)) = &envelope.body
                        && watchers.on_event(&envelope.session_id, envelope.viewer_id, e)
                    {
                        watchers.show_on(indicator.as_ref());
                    }
                    on_message(envelope, &options, &frames_tx, &input, &mut stream);
                }
                Some(AgentEvent::Disconnected { reason }) => {
                    tracing::info!(%reason, "disconnected; streams stopped, input released");
                    stream = None;
                    input.release_all();
                    watchers.clear();
                    watchers.show_on(indicator.as_ref());
                }
                Some(AgentEvent::Connected { machine_id, session_id }) => {
                    tracing::info!(%machine_id, %session_id, "connected");
                }
                Some(AgentEvent::ConsentAnswered { session_id, granted }) => {
                    tracing::info!(%session_id, granted, "consent answered");
                }
                None => break,
            },
            Some(envelope) = frames.recv() => {
                if handle.send(envelope).await.is_err() {
                    break;
                }
            }
            Some(()) = stop_rx.recv() => {
                // Stop sharing, pressed at this machine: end every session someone watches.
                tracing::info!("stop pressed at this machine; ending the sessions");
                for session_id in watchers.sessions() {
                    let body = Body::SessionEvent(v1::SessionEvent {
                        kind: Kind::Ended.into(),
                        reason: "stopped_at_machine".into(),
                        ..Default::default()
                    });
                    let _ = handle.send(wire::envelope(&session_id, body)).await;
                }
                stream = None;
                input.release_all();
                watchers.clear();
                watchers.show_on(indicator.as_ref());
            }
        }
    }
    drop(stop_tx);
    drop(stream);
    input.release_all();
    handle.join().await
}

fn on_message(
    envelope: Envelope,
    options: &DesktopOptions,
    frames: &mpsc::Sender<Envelope>,
    input: &input::InputThread,
    stream: &mut Option<Stream>,
) {
    let session_id = envelope.session_id;
    match envelope.body {
        Some(Body::StartStream(start)) => {
            let codec = wire_codec(start.codec());
            match stream.as_ref() {
                // Another viewer of the same picture: a keyframe for it, not a restart.
                Some(s)
                    if s.session_id == session_id
                        && s.codec == codec
                        && s.screen == start.screen =>
                {
                    let _ = s.commands.send(StreamCommand::Keyframe);
                }
                _ => *stream = Some(start_stream(&session_id, &start, options, frames.clone())),
            }
        }
        Some(Body::StopStream(_)) => *stream = None,
        Some(Body::KeyframeRequest(_)) => {
            if let Some(running) = stream.as_ref() {
                let _ = running.commands.send(StreamCommand::Keyframe);
            }
        }
        Some(Body::SessionEvent(event)) => match event.kind() {
            Kind::Ended => {
                if stream.as_ref().is_some_and(|s| s.session_id == session_id) {
                    *stream = None;
                }
                input.release_all();
            }
            Kind::ViewerLeft | Kind::AgentOffline => input.release_all(),
            _ => {}
        },
        Some(body) => input.handle(body),
        None => {}
    }
}

fn start_stream(
    session_id: &str,
    start: &v1::StartStream,
    options: &DesktopOptions,
    frames: mpsc::Sender<Envelope>,
) -> Stream {
    let codec = wire_codec(start.codec());
    let mut config = EncoderConfig::default();
    if start.max_fps > 0 {
        config.max_fps = start.max_fps.min(60) as f32;
    }
    if options.bitrate_bps > 0 {
        config.target_bitrate_bps = options.bitrate_bps;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (commands, command_rx) = std_mpsc::channel();
    let job = StreamJob {
        session_id: session_id.to_owned(),
        display: options.display.clone(),
        screen: start.screen,
        codec,
        config,
        stop: Arc::clone(&stop),
        commands: command_rx,
        frames,
    };
    spawn_clipboard_watch(
        session_id,
        options.display.clone(),
        Arc::clone(&stop),
        job.frames.clone(),
    );
    tracing::info!(session = %session_id, %codec, screen = start.screen, "starting stream");
    std::thread::Builder::new()
        .name("reach-stream".into())
        .spawn(move || job.run())
        .map_err(|e| tracing::error!(error = %e, "cannot start the stream thread"))
        .ok();
    Stream {
        session_id: session_id.to_owned(),
        codec,
        screen: start.screen,
        stop,
        commands,
    }
}

/// Sends the remote clipboard to the viewers whenever another program takes it, while the
/// stream runs. Oversized clipboard text (over reach-media's cap) is not sent.
fn spawn_clipboard_watch(
    session_id: &str,
    display: Option<String>,
    stop: Arc<AtomicBool>,
    frames: mpsc::Sender<Envelope>,
) {
    let session_id = session_id.to_owned();
    let watch = move || {
        let mut clipboard = match reach_media::open_clipboard(display.as_deref()) {
            Ok(clipboard) => clipboard,
            Err(error) => return tracing::warn!(%error, "clipboard sync unavailable"),
        };
        while !stop.load(Ordering::SeqCst) {
            match clipboard.wait_change(IDLE_POLL * 2) {
                Ok(Some(text)) => {
                    let body = Body::Clipboard(v1::ClipboardText { text });
                    if frames
                        .blocking_send(wire::envelope(&session_id, body))
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "clipboard text not sent"),
            }
        }
    };
    if let Err(error) = std::thread::Builder::new()
        .name("reach-clipboard".into())
        .spawn(watch)
    {
        tracing::warn!(%error, "cannot start the clipboard thread");
    }
}

/// Everything one stream thread owns.
struct StreamJob {
    session_id: String,
    display: Option<String>,
    screen: u32,
    codec: Codec,
    config: EncoderConfig,
    stop: Arc<AtomicBool>,
    commands: std_mpsc::Receiver<StreamCommand>,
    frames: mpsc::Sender<Envelope>,
}

impl StreamJob {
    fn run(self) {
        let mut stream = match VideoStream::open(
            self.display.as_deref(),
            self.screen,
            self.codec,
            &self.config,
        ) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::error!(%error, "cannot capture the screen");
                self.send(error_body("capture_failed", &error));
                return;
            }
        };
        let mut sequence = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            while let Ok(StreamCommand::Keyframe) = self.commands.try_recv() {
                stream.request_keyframe();
            }
            let output = match stream.next_output(IDLE_POLL) {
                Ok(output) => output,
                Err(error) => {
                    tracing::error!(%error, "stream stopped");
                    self.send(error_body("capture_failed", &error));
                    return;
                }
            };
            if !self.send_output(output, &mut sequence) {
                return;
            }
        }
        tracing::info!(session = %self.session_id, "stream stopped");
    }

    /// Sends what one step produced; `false` when the agent is gone.
    fn send_output(&self, output: StreamOutput, sequence: &mut u64) -> bool {
        if let Some(reason) = output.fell_back_to_raw {
            tracing::warn!(%reason, "video encoder failed; streaming raw");
            self.send(error_body("codec_fallback", &reason));
        }
        if let Some(shape) = output.cursor_shape {
            self.send(Body::CursorShape(v1::CursorShape {
                id: u64::from(shape.serial),
                width: shape.width,
                height: shape.height,
                hotspot_x: shape.hot_x,
                hotspot_y: shape.hot_y,
                rgba: shape.rgba.into(),
            }));
        }
        if let Some(position) = output.cursor_position {
            self.send(Body::CursorPosition(v1::CursorPosition {
                x: position.x,
                y: position.y,
                visible: true,
                shape_id: 0,
            }));
        }
        match output.frame {
            Some(frame) => {
                *sequence += 1;
                let pts = output.captured_at.map_or_else(now_micros, epoch_micros);
                let whole = frames::video_frame(frame, self.screen, *sequence, pts);
                frames::split_frame(whole, frames::MAX_PART_PAYLOAD)
                    .into_iter()
                    .all(|part| self.send_part(part))
            }
            None => !self.frames.is_closed(),
        }
    }

    /// Sends one part of a frame; a part over the relay's cap (which would make the server close
    /// this agent) is dropped with an error instead. `false` when the agent is gone.
    fn send_part(&self, part: v1::VideoFrame) -> bool {
        let envelope = wire::envelope(&self.session_id, Body::VideoFrame(part));
        if !frames::fits_agent_cap(&envelope) {
            tracing::error!("a video frame part exceeds the relay's message cap; dropped");
            return !self.frames.is_closed();
        }
        self.frames.blocking_send(envelope).is_ok()
    }

    /// Blocks while the socket drains (never queues more than [`FRAMES_IN_FLIGHT`]).
    fn send(&self, body: Body) -> bool {
        self.frames
            .blocking_send(wire::envelope(&self.session_id, body))
            .is_ok()
    }
}

/// The media codec for the wire's codec (anything unknown streams raw, the guaranteed fallback).
fn wire_codec(codec: v1::VideoCodec) -> Codec {
    match codec {
        v1::VideoCodec::H264 => Codec::H264,
        _ => Codec::Raw,
    }
}

fn error_body(code: &str, error: &MediaError) -> Body {
    Body::Error(v1::Error {
        code: code.to_owned(),
        message: error.to_string(),
    })
}

/// Unix-epoch microseconds now.
fn now_micros() -> u64 {
    epoch_micros(SystemTime::now())
}

/// Unix-epoch microseconds of `at`: frames carry their capture time, so viewers on a shared
/// clock derive frame age from it.
fn epoch_micros(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// What this machine's display can do, for the agent's hello: H.264 support and its screens.
///
/// # Errors
/// [`MediaError::Connect`] when the display cannot be reached.
pub fn capabilities(
    display: Option<&str>,
    supports_usb: bool,
) -> Result<v1::Capabilities, MediaError> {
    let screens = reach_media::list_screens(display)?
        .into_iter()
        .map(|screen| v1::Screen {
            index: screen.id,
            x: screen.x,
            y: screen.y,
            width: screen.width,
            height: screen.height,
            primary: screen.primary,
            name: screen.name,
        })
        .collect();
    Ok(v1::Capabilities {
        supports_h264: reach_media::supports_h264(),
        supports_usb,
        screens,
        ..Default::default()
    })
}

//! The capture stage of a [`super::VideoStream`]: its own thread waits for damage on the
//! pacer's clock, reads the changed pixels and hands a snapshot to the encoder, so capturing
//! frame N+1 overlaps encoding frame N.
//!
//! The hand-off is a rendezvous: the stage captures ahead by at most one frame, and that frame
//! is at most one encode old when the encoder takes it; meanwhile the X server accumulates
//! damage, so every change is sent once and nothing stale queues up. Snapshots are recycled: a
//! returned buffer is brought up to date by copying only what changed since it was last filled.
//! For H.264 the stage also converts the snapshot to I420 (again only what changed), so the
//! encoder's thread does nothing but encode.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::FramePacer;
use crate::capture::{CaptureOptions, CursorPosition, CursorShape, ScreenCapturer, ScreenInfo};
use crate::error::MediaError;
use crate::frame::{Frame, Rect};
use crate::yuv::I420;

/// How long the stage waits for damage before checking whether it should stop.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// Reopens after a screen change at most this many times in a row.
const MAX_REOPENS: usize = 3;
/// Damage lists kept to bring recycled snapshots up to date.
const HISTORY: usize = 4;

/// A picture handed to the encoder, numbered by capture.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) frame: Frame,
    /// `frame` in I420, when the encoder wants it (converted here, off the encoder's thread).
    pub(super) picture: Option<I420>,
    capture: u64,
}

/// One step of the capture stage.
#[derive(Debug, Default)]
pub(super) struct Captured {
    /// New pixels: the snapshot and what changed (`None` = everything: encode a keyframe).
    pub(super) picture: Option<(Snapshot, Option<Vec<Rect>>)>,
    pub(super) cursor_shape: Option<CursorShape>,
    pub(super) cursor_position: Option<CursorPosition>,
    /// Set when the capturer was reopened for a new screen geometry.
    pub(super) screen: Option<ScreenInfo>,
    /// When the pixels of `picture` had been read.
    pub(super) captured_at: Option<SystemTime>,
}

/// The encoder's handle on the capture thread; stops and joins it on drop.
pub(super) struct CaptureStage {
    captured: Receiver<Result<Captured, MediaError>>,
    recycle: Sender<Snapshot>,
    keyframe: Arc<AtomicBool>,
    convert: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CaptureStage {
    /// Starts the thread. `reopen` names the display and screen to reopen after a change.
    pub(super) fn spawn(
        capturer: Box<dyn ScreenCapturer>,
        max_fps: f32,
        reopen: Option<(Option<String>, u32)>,
        convert: bool,
    ) -> Result<Self, MediaError> {
        let (tx, captured) = mpsc::sync_channel(0);
        let (recycle, recycled) = mpsc::channel();
        let keyframe = Arc::new(AtomicBool::new(true));
        let convert = Arc::new(AtomicBool::new(convert));
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            capturer,
            pacer: FramePacer::new(max_fps),
            reopen,
            tx,
            recycled,
            keyframe: Arc::clone(&keyframe),
            convert: Arc::clone(&convert),
            stop: Arc::clone(&stop),
            captures: 0,
            history: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("reach-capture".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            captured,
            recycle,
            keyframe,
            convert,
            stop,
            thread: Some(thread),
        })
    }

    /// Whether snapshots should carry an I420 conversion (the encoder changed codec).
    pub(super) fn set_convert(&self, convert: bool) {
        self.convert.store(convert, Ordering::Relaxed);
    }

    /// Makes the next capture a full one (and the next frame a keyframe).
    pub(super) fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::SeqCst);
    }

    /// The next step, or `None` when nothing arrived within `timeout`.
    pub(super) fn next(&self, timeout: Duration) -> Result<Option<Captured>, MediaError> {
        match self.captured.recv_timeout(timeout) {
            Ok(Ok(captured)) => Ok(Some(captured)),
            Ok(Err(error)) => Err(error),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(MediaError::CaptureStopped),
        }
    }

    /// Gives an encoded snapshot back for reuse.
    pub(super) fn recycle(&self, snapshot: Snapshot) {
        let _ = self.recycle.send(snapshot);
    }
}

impl Drop for CaptureStage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock a pending hand-off, then wait (at most one idle poll) for the thread.
        let (_, dead) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.captured, dead));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    capturer: Box<dyn ScreenCapturer>,
    pacer: FramePacer,
    reopen: Option<(Option<String>, u32)>,
    tx: SyncSender<Result<Captured, MediaError>>,
    recycled: Receiver<Snapshot>,
    keyframe: Arc<AtomicBool>,
    convert: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Captures taken so far (snapshot numbering).
    captures: u64,
    /// Damage of the most recent captures, newest last (`None` = full capture).
    history: VecDeque<(u64, Option<Vec<Rect>>)>,
}

impl Worker {
    fn run(mut self) {
        let mut reopens = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let delay = self.pacer.delay(Instant::now());
            if !delay.is_zero() {
                // Pacing, not synchronisation: changes meanwhile coalesce in the X server.
                std::thread::sleep(delay);
            }
            let step = match self.step() {
                Err(MediaError::ScreenChanged) if reopens < MAX_REOPENS => {
                    reopens += 1;
                    self.reopen_capturer()
                }
                other => other,
            };
            let step = match step {
                Ok(None) => continue,
                Ok(Some(captured)) => Ok(captured),
                Err(error) => Err(error),
            };
            if step.as_ref().is_ok_and(|c| c.picture.is_some()) {
                reopens = 0;
            }
            let failed = step.is_err();
            if self.tx.send(step).is_err() || failed {
                return;
            }
        }
    }

    fn reopen_capturer(&mut self) -> Result<Option<Captured>, MediaError> {
        let Some((display, screen)) = &self.reopen else {
            return Err(MediaError::ScreenChanged);
        };
        tracing::info!(screen, "screen changed, reopening the capturer");
        self.capturer =
            crate::open_capturer(display.as_deref(), *screen, CaptureOptions::default())?;
        self.keyframe.store(true, Ordering::SeqCst);
        let mut captured = self.step()?.unwrap_or_default();
        captured.screen = Some(self.capturer.screen().clone());
        Ok(Some(captured))
    }

    /// One capture: full when a keyframe is due, else whatever changed within the idle poll.
    fn step(&mut self) -> Result<Option<Captured>, MediaError> {
        if self.keyframe.swap(false, Ordering::SeqCst) {
            if let Err(error) = self.capturer.capture_full() {
                self.keyframe.store(true, Ordering::SeqCst);
                return Err(error);
            }
            let captured_at = Some(SystemTime::now());
            self.pacer.handle_capture(Instant::now());
            let snapshot = self.snapshot(None);
            return Ok(Some(Captured {
                picture: Some((snapshot, None)),
                captured_at,
                ..Captured::default()
            }));
        }
        let update = self.capturer.wait_update(IDLE_POLL)?;
        let mut captured = Captured {
            cursor_shape: update.cursor_shape,
            cursor_position: update.cursor_position,
            ..Captured::default()
        };
        if !update.damage.is_empty() {
            captured.captured_at = Some(SystemTime::now());
            self.pacer.handle_capture(Instant::now());
            let snapshot = self.snapshot(Some(&update.damage));
            captured.picture = Some((snapshot, Some(update.damage)));
        }
        let empty = captured.picture.is_none()
            && captured.cursor_shape.is_none()
            && captured.cursor_position.is_none();
        Ok((!empty).then_some(captured))
    }

    /// A copy of the capturer's frame, in a recycled buffer when one is back.
    fn snapshot(&mut self, damage: Option<&[Rect]>) -> Snapshot {
        self.captures += 1;
        self.history
            .push_back((self.captures, damage.map(<[Rect]>::to_vec)));
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
        let source = self.capturer.frame();
        let mut snapshot = self.recycled.try_recv().unwrap_or_else(|_| Snapshot {
            frame: source.clone(),
            picture: None,
            capture: 0,
        });
        let changed = match changes_since(&self.history, snapshot.capture) {
            Some(rects) if snapshot.capture > 0 && snapshot.frame.bounds() == source.bounds() => {
                for rect in &rects {
                    copy_rect(source, &mut snapshot.frame, *rect);
                }
                Some(rects)
            }
            _ => {
                snapshot.frame.clone_from(source);
                None
            }
        };
        snapshot.capture = self.captures;
        let convert = self.convert.load(Ordering::Relaxed);
        snapshot.picture =
            convert.then(|| to_i420(&snapshot.frame, snapshot.picture.take(), changed));
        snapshot
    }
}

/// `frame` in I420: `picture` brought up to date in the `changed` areas, or converted whole.
fn to_i420(frame: &Frame, picture: Option<I420>, changed: Option<Vec<Rect>>) -> I420 {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let planes = (width.div_ceil(2) * 2, height.div_ceil(2) * 2);
    match (picture, changed) {
        (Some(mut picture), Some(rects)) if (picture.width, picture.height) == planes => {
            for rect in rects {
                picture.update(frame.data(), width, height, rect);
            }
            picture
        }
        _ => crate::yuv::bgra_to_i420(frame.data(), width, height),
    }
}

/// The areas changed by the captures after `capture`, or `None` when unknown (a full
/// capture among them, or older than the history).
fn changes_since(history: &VecDeque<(u64, Option<Vec<Rect>>)>, capture: u64) -> Option<Vec<Rect>> {
    let oldest = history.front().map_or(u64::MAX, |(n, _)| *n);
    if capture + 1 < oldest {
        return None;
    }
    let mut rects = Vec::new();
    for (_, damage) in history.iter().filter(|(n, _)| *n > capture) {
        rects.extend_from_slice(damage.as_deref()?);
    }
    Some(rects)
}

fn copy_rect(source: &Frame, target: &mut Frame, rect: Rect) {
    let Some(rect) = rect.intersect(&source.bounds()) else {
        return;
    };
    for y in rect.y..rect.bottom() {
        target
            .row_span_mut(rect.x, y, rect.width)
            .copy_from_slice(source.row_span(rect.x, y, rect.width));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(entries: &[(u64, Option<Vec<Rect>>)]) -> VecDeque<(u64, Option<Vec<Rect>>)> {
        entries.iter().cloned().collect()
    }

    #[test]
    fn a_recycled_snapshot_gets_the_damage_of_every_later_capture() {
        let a = Rect::new(0, 0, 2, 2);
        let b = Rect::new(5, 5, 1, 1);
        let h = history(&[(3, None), (4, Some(vec![a])), (5, Some(vec![b]))]);
        assert_eq!(changes_since(&h, 3), Some(vec![a, b]));
        assert_eq!(changes_since(&h, 4), Some(vec![b]));
        assert_eq!(changes_since(&h, 5), Some(vec![]));
    }

    #[test]
    fn a_snapshot_older_than_the_history_or_before_a_full_capture_is_copied_whole() {
        let h = history(&[(3, None), (4, Some(vec![Rect::new(0, 0, 1, 1)]))]);
        assert_eq!(changes_since(&h, 2), None, "capture 3 was full");
        assert_eq!(changes_since(&h, 1), None, "older than the history");
    }

    #[test]
    fn a_recycled_i420_picture_updated_where_damaged_equals_a_full_conversion() {
        let mut frame = Frame::new(64, 48).unwrap();
        let old = to_i420(&frame, None, None);
        let area = Rect::new(10, 7, 13, 9);
        for y in area.y..area.bottom() {
            frame.row_span_mut(area.x, y, area.width).fill(200);
        }
        let updated = to_i420(&frame, Some(old), Some(vec![area]));
        assert_eq!(updated, to_i420(&frame, None, None));
    }

    #[test]
    fn copying_a_rectangle_clips_it_to_the_frame() {
        let mut source = Frame::new(4, 4).unwrap();
        source.row_span_mut(2, 3, 2).fill(7);
        let mut target = Frame::new(4, 4).unwrap();
        copy_rect(&source, &mut target, Rect::new(2, 3, 10, 10));
        assert_eq!(target, source);
    }
}

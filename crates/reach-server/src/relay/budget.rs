//! How much video one viewer may have queued: at most [`VIEWER_QUEUE_BYTES`].
//!
//! A viewer that reads slower than the agent sends falls behind: once its queue would pass
//! the budget, the frame waits up to [`ROOM_WAIT`] for room (a viewer that is only briefly
//! behind loses nothing); after that, its video frames are skipped — all of them, until a
//! keyframe fits again (a delta frame after a gap would decode to garbage), and the agent is
//! asked once for that keyframe. While a viewer is skipping, frames for it never wait. A viewer that stays behind longer than [`SLOW_VIEWER_DEADLINE`] is closed by
//! its socket task. Frames are `Bytes` shared between the viewers of a session, so slow
//! viewers together hold at most the budget of the slowest plus one frame each in flight.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes of video one viewer may have queued.
pub const VIEWER_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// How long a video frame waits for room in a full viewer queue before the viewer starts
/// skipping to the next keyframe.
pub const ROOM_WAIT: Duration = Duration::from_millis(500);

/// How long a viewer may stay behind (skipping frames, or stuck writing one) before it is
/// closed.
pub const SLOW_VIEWER_DEADLINE: Duration = Duration::from_secs(10);

/// What to do with one video frame for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queue it (its bytes are now counted; call [`ViewerBudget::sent`] once written).
    Queue,
    /// It does not fit: wait for [`ViewerBudget::room`] and offer again, or
    /// [`ViewerBudget::give_up`].
    Full,
    /// Skip it; when `ask_keyframe`, ask the agent for a keyframe.
    Skip {
        /// The queue has room again: ask the agent for a keyframe (once per gap).
        ask_keyframe: bool,
    },
}

/// One viewer's queued video bytes and whether it is skipping to the next keyframe.
#[derive(Debug, Default)]
pub struct ViewerBudget {
    queued: AtomicUsize,
    skipping: AtomicBool,
    asked: AtomicBool,
    behind_since: Mutex<Option<Instant>>,
    room: tokio::sync::Notify,
    fell_behind: tokio::sync::Notify,
}

impl ViewerBudget {
    fn behind(&self, now: Option<Instant>) {
        let mut since = self
            .behind_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match now {
            Some(now) if since.is_none() => {
                *since = Some(now);
                drop(since);
                self.fell_behind.notify_one();
            }
            Some(_) => {}
            None => *since = None,
        }
    }

    /// Resolves when the viewer starts falling behind (a permit is kept when nobody waits),
    /// so its socket task needs no clock while it keeps up.
    pub fn fell_behind(&self) -> tokio::sync::futures::Notified<'_> {
        self.fell_behind.notified()
    }

    /// Whether the viewer is behind now (skipping frames, or a frame gave up waiting).
    pub fn is_behind(&self) -> bool {
        self.behind_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Decides for a video frame of `len` bytes (a keyframe when `keyframe`) at `now`.
    pub fn offer_video(&self, len: usize, keyframe: bool, now: Instant) -> Offer {
        let fits = self.queued.load(Ordering::Acquire).saturating_add(len) <= VIEWER_QUEUE_BYTES;
        let skipping = self.skipping.load(Ordering::Acquire);
        if fits && (!skipping || keyframe) {
            self.queued.fetch_add(len, Ordering::AcqRel);
            self.skipping.store(false, Ordering::Release);
            self.asked.store(false, Ordering::Release);
            self.behind(None);
            return Offer::Queue;
        }
        if !skipping {
            return Offer::Full;
        }
        self.behind(Some(now));
        let ask_keyframe = fits && !self.asked.swap(true, Ordering::AcqRel);
        Offer::Skip { ask_keyframe }
    }

    /// Resolves when queued bytes were released (create it before offering, then await).
    pub fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }

    /// No room came in time: skip to the next keyframe from now on.
    pub fn give_up(&self, now: Instant) {
        self.skipping.store(true, Ordering::Release);
        self.behind(Some(now));
    }

    /// A queued frame was written (or dropped): its bytes no longer count.
    pub fn sent(&self, len: usize) {
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(len))
            });
        self.room.notify_waiters();
    }

    /// A queued frame could not be queued after all (the queue was full): skip to the next
    /// keyframe.
    pub fn unqueue(&self, len: usize, now: Instant) {
        self.sent(len);
        self.skipping.store(true, Ordering::Release);
        self.behind(Some(now));
    }

    /// Whether the viewer has been behind for longer than [`SLOW_VIEWER_DEADLINE`].
    pub fn too_far_behind(&self, now: Instant) -> bool {
        self.behind_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some_and(|since| now.duration_since(since) > SLOW_VIEWER_DEADLINE)
    }

    /// Bytes queued now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn frames_past_the_budget_are_skipped_until_a_keyframe_fits() {
        let b = ViewerBudget::default();
        let now = Instant::now();
        assert_eq!(b.offer_video(3 * MIB, true, now), Offer::Queue);
        assert_eq!(b.offer_video(3 * MIB, false, now), Offer::Queue);
        assert_eq!(b.offer_video(3 * MIB, false, now), Offer::Full);
        b.give_up(now);
        assert_eq!(
            b.offer_video(3 * MIB, false, now),
            Offer::Skip {
                ask_keyframe: false
            }
        );
        b.sent(3 * MIB);
        // Room again, but a delta frame after a gap is useless: skip it, ask once.
        assert_eq!(
            b.offer_video(MIB, false, now),
            Offer::Skip { ask_keyframe: true }
        );
        assert_eq!(
            b.offer_video(MIB, false, now),
            Offer::Skip {
                ask_keyframe: false
            }
        );
        assert_eq!(b.offer_video(3 * MIB, true, now), Offer::Queue);
        assert_eq!(b.offer_video(MIB, false, now), Offer::Queue);
        assert_eq!(b.queued(), 7 * MIB);
    }

    #[test]
    fn a_viewer_behind_past_the_deadline_is_reported() {
        let b = ViewerBudget::default();
        let t0 = Instant::now();
        assert_eq!(b.offer_video(VIEWER_QUEUE_BYTES + 1, true, t0), Offer::Full);
        b.give_up(t0);
        assert!(!b.too_far_behind(t0 + SLOW_VIEWER_DEADLINE));
        assert!(b.too_far_behind(t0 + SLOW_VIEWER_DEADLINE + Duration::from_millis(1)));
        assert_eq!(b.offer_video(MIB, true, t0), Offer::Queue);
        assert!(!b.too_far_behind(t0 + 2 * SLOW_VIEWER_DEADLINE));
    }

    #[tokio::test]
    async fn falling_behind_wakes_the_socket_task_once_per_fall() {
        let b = ViewerBudget::default();
        let t0 = Instant::now();
        let quiet = tokio::time::timeout(Duration::from_millis(20), b.fell_behind()).await;
        assert!(quiet.is_err(), "a viewer that keeps up is never woken");
        b.give_up(t0);
        b.give_up(t0 + Duration::from_secs(1));
        assert!(b.is_behind());
        // The fall was signalled while nobody waited: the permit is kept, once.
        b.fell_behind().await;
        let again = tokio::time::timeout(Duration::from_millis(20), b.fell_behind()).await;
        assert!(again.is_err(), "staying behind does not signal again");
        assert_eq!(b.offer_video(MIB, true, t0), Offer::Queue);
        assert!(!b.is_behind());
    }
}

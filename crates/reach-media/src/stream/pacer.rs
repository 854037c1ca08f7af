//! [`FramePacer`]: frame slots on a fixed clock (sans-IO: time is passed in).

use std::time::{Duration, Instant};

/// Hands out capture slots one interval apart on a fixed clock: the time a frame spends in
/// capture and encoding does not push the next slot back, so `max_fps` is reachable whenever
/// capture + encode fit in one interval. After a pause (an idle screen) the clock restarts at
/// the next capture, so a change after a pause is never delayed and never followed by a burst.
#[derive(Debug, Clone, Copy)]
pub struct FramePacer {
    interval: Duration,
    next: Option<Instant>,
}

impl FramePacer {
    /// A pacer for at most `max_fps` frames per second (clamped to 1..=240).
    pub fn new(max_fps: f32) -> Self {
        Self {
            interval: Duration::from_secs_f32(1.0 / max_fps.clamp(1.0, 240.0)),
            next: None,
        }
    }

    /// The time between slots.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long to wait at `now` before the next frame may be captured.
    pub fn delay(&self, now: Instant) -> Duration {
        self.next
            .map(|next| next.saturating_duration_since(now))
            .unwrap_or_default()
    }

    /// Records that a frame was captured at `at` (it took the current slot).
    pub fn handle_capture(&mut self, at: Instant) {
        let next = match self.next {
            // On time or a little late: the next slot stays on the clock.
            Some(slot) if at < slot + self.interval => slot + self.interval,
            // First frame, or more than a whole interval late: restart the clock.
            _ => at + self.interval,
        };
        self.next = Some(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_pacer_spaces_frames_one_interval_apart() {
        let mut pacer = FramePacer::new(50.0);
        let t0 = Instant::now();
        assert_eq!(pacer.delay(t0), Duration::ZERO);
        pacer.handle_capture(t0);
        assert_eq!(pacer.delay(t0 + 5 * MS), 15 * MS);
        assert_eq!(pacer.delay(t0 + 25 * MS), Duration::ZERO);
    }

    #[test]
    fn time_spent_after_the_slot_does_not_push_the_next_slot_back() {
        let mut pacer = FramePacer::new(50.0);
        let t0 = Instant::now();
        pacer.handle_capture(t0);
        // The second frame is captured 3 ms after its slot; the third slot is still t0 + 40 ms.
        pacer.handle_capture(t0 + 23 * MS);
        assert_eq!(pacer.delay(t0 + 35 * MS), 5 * MS);
        for slot in 2..10u32 {
            pacer.handle_capture(t0 + slot * 20 * MS + 2 * MS);
        }
        assert_eq!(
            pacer.delay(t0 + 195 * MS),
            5 * MS,
            "no drift over many frames"
        );
    }

    #[test]
    fn after_a_pause_the_clock_restarts_without_a_burst() {
        let mut pacer = FramePacer::new(50.0);
        let t0 = Instant::now();
        pacer.handle_capture(t0);
        let later = t0 + Duration::from_secs(2);
        assert_eq!(
            pacer.delay(later),
            Duration::ZERO,
            "a change after a pause goes at once"
        );
        pacer.handle_capture(later);
        assert_eq!(pacer.delay(later + MS), 19 * MS);
    }
}

//! Hotplug and claim events for `GET /usb/events`: a bounded in-memory ring (ids increase by
//! one) plus a broadcast to live subscribers, so `Last-Event-ID` resumes without a gap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

/// How many events are kept for `Last-Event-ID` resume.
pub const RING_CAPACITY: usize = 1024;

/// One event: `kind` is the SSE event name (`device_added`, `device_removed`, `claimed`,
/// `released`, `passthrough`), `data` its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Increasing id, from 1.
    pub id: u64,
    /// Event name.
    pub kind: &'static str,
    /// Payload.
    pub data: Value,
}

struct Ring {
    next_id: u64,
    events: VecDeque<Event>,
}

/// Where events are published and subscribed.
#[derive(Clone)]
pub struct EventHub {
    ring: Arc<Mutex<Ring>>,
    live: broadcast::Sender<Event>,
    capacity: usize,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::with_capacity(RING_CAPACITY)
    }
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

/// A subscription: the kept events after the requested id, then live ones.
pub struct Subscription {
    /// Events already kept (resume).
    pub backlog: Vec<Event>,
    /// Later events.
    pub live: broadcast::Receiver<Event>,
}

impl EventHub {
    /// A hub keeping the last `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            ring: Arc::new(Mutex::new(Ring {
                next_id: 1,
                events: VecDeque::with_capacity(capacity.min(RING_CAPACITY)),
            })),
            live: broadcast::channel(capacity.max(16)).0,
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an event; returns its id.
    pub fn publish(&self, kind: &'static str, data: Value) -> u64 {
        let mut ring = self.lock();
        let event = Event {
            id: ring.next_id,
            kind,
            data,
        };
        ring.next_id += 1;
        if ring.events.len() == self.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // Sent under the lock, so a subscriber's backlog and live stream neither overlap nor gap.
        let _ = self.live.send(event);
        ring.next_id - 1
    }

    /// Subscribes after `last_id` (`None`: only new events).
    pub fn subscribe(&self, last_id: Option<u64>) -> Subscription {
        let ring = self.lock();
        let backlog = match last_id {
            Some(last) => ring
                .events
                .iter()
                .filter(|e| e.id > last)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        Subscription {
            backlog,
            live: self.live.subscribe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resume_returns_exactly_the_kept_events_after_the_id() {
        let hub = EventHub::with_capacity(3);
        for n in 0..5 {
            hub.publish("claimed", json!({ "n": n }));
        }
        let ids = |s: &Subscription| s.backlog.iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids(&hub.subscribe(Some(3))), vec![4, 5]);
        assert_eq!(
            ids(&hub.subscribe(Some(0))),
            vec![3, 4, 5],
            "the ring is bounded"
        );
        assert!(hub.subscribe(None).backlog.is_empty());
        let mut sub = hub.subscribe(Some(5));
        assert_eq!(hub.publish("released", json!({})), 6);
        assert_eq!(sub.live.try_recv().unwrap().id, 6);
    }
}

//! A socket task's outbound queue: bounded, many senders, one receiver, and no memory held
//! while it is empty.
//!
//! Every agent and viewer socket has one. Tokio's bounded channel allocates a block of 32
//! slots (and cache-padded counters) when it is created and keeps them for the socket's
//! life, ≈ 1.8 KiB per socket; an idle session holds two sockets and usually nothing queued.
//! Here the items live in a `VecDeque` that is allocated on the first push and freed each
//! time the receiver empties it, so an idle socket's queue is its fixed ≈ 150 bytes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// Why an item was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The queue holds its capacity (for `send_timeout`: still, when the wait ended).
    #[error("the socket's queue is full")]
    Full,
    /// The receiving socket task has ended.
    #[error("the socket has closed")]
    Closed,
}

/// Creates a queue holding at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        readable: Notify::new(),
        writable: Notify::new(),
        capacity: capacity.max(1),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

#[derive(Debug)]
struct Shared<T> {
    state: Mutex<State<T>>,
    /// Signalled (one permit) when an item arrives or the last sender leaves.
    readable: Notify,
    /// Signalled (all waiters) when a full queue gets room or the receiver leaves.
    writable: Notify,
    capacity: usize,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending half; cloned for every route that writes to the socket.
#[derive(Debug)]
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.readable.notify_one();
        }
    }
}

impl<T> Sender<T> {
    /// Queues `item` now, or says why not.
    pub fn try_send(&self, item: T) -> Result<(), SendError> {
        self.push(item).map_err(|(e, _)| e)
    }

    /// Queues `item`, waiting up to `timeout` for room.
    pub async fn send_timeout(&self, item: T, timeout: Duration) -> Result<(), SendError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut item = item;
        loop {
            // Registered before the check, so room made in between is not missed.
            let room = self.shared.writable.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.push(item) {
                Ok(()) => return Ok(()),
                Err((SendError::Closed, _)) => return Err(SendError::Closed),
                Err((SendError::Full, back)) => item = back,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(SendError::Full);
            }
        }
    }

    fn push(&self, item: T) -> Result<(), (SendError, T)> {
        {
            let mut state = self.shared.lock();
            if !state.receiver {
                return Err((SendError::Closed, item));
            }
            if state.items.len() >= self.shared.capacity {
                return Err((SendError::Full, item));
            }
            state.items.push_back(item);
        }
        self.shared.readable.notify_one();
        Ok(())
    }
}

/// The receiving half, owned by the socket task.
#[derive(Debug)]
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.receiver = false;
            std::mem::take(&mut state.items)
        };
        drop(items);
        self.shared.writable.notify_waiters();
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once every sender is gone and nothing is left.
    /// Cancel safe: an item is taken only in the poll that returns it.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            let arrived = self.shared.readable.notified();
            if let Some(next) = self.take() {
                return next;
            }
            arrived.await;
        }
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.take().flatten()
    }

    /// `Some(Some(item))`, `Some(None)` when the queue is empty and has no senders left, or
    /// `None` when it is empty and may still get items.
    fn take(&self) -> Option<Option<T>> {
        let (item, had_no_room) = {
            let mut state = self.shared.lock();
            let had_no_room = state.items.len() >= self.shared.capacity;
            match state.items.pop_front() {
                Some(item) => {
                    if state.items.is_empty() {
                        // An idle socket keeps no buffer.
                        state.items = VecDeque::new();
                    }
                    (item, had_no_room)
                }
                None if state.senders == 0 => return Some(None),
                None => return None,
            }
        };
        if had_no_room {
            self.shared.writable.notify_waiters();
        }
        Some(Some(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_a_full_queue_refuses() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(SendError::Full));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(3));
        assert_eq!(rx.try_recv(), None);
    }

    #[tokio::test]
    async fn an_empty_queue_holds_no_buffer() {
        let (tx, mut rx) = channel(64);
        for i in 0..40 {
            tx.try_send(i).unwrap();
        }
        assert!(tx.shared.lock().items.capacity() >= 40);
        while rx.try_recv().is_some() {}
        assert_eq!(tx.shared.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn the_receiver_ends_when_the_last_sender_goes() {
        let (tx, mut rx) = channel(4);
        let other = tx.clone();
        tx.try_send(7).unwrap();
        drop(tx);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::task::yield_now().await;
        drop(other);
        assert_eq!(waiting.await.unwrap(), (Some(7), None));
    }

    #[tokio::test]
    async fn a_waiting_sender_gets_room_when_the_receiver_takes_an_item() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let sender = tokio::spawn(async move { tx.send_timeout(2, Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(sender.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
    }

    #[tokio::test]
    async fn a_sender_gives_up_after_its_timeout() {
        let (tx, _rx) = channel(1);
        tx.try_send(1).unwrap();
        let started = tokio::time::Instant::now();
        assert_eq!(
            tx.send_timeout(2, Duration::from_millis(50)).await,
            Err(SendError::Full)
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn senders_see_a_closed_socket_and_queued_items_are_dropped() {
        let (tx, rx) = channel(1);
        let item = Arc::new(());
        tx.try_send(Arc::clone(&item)).unwrap();
        let waiting = {
            let tx = tx.clone();
            let item = Arc::clone(&item);
            tokio::spawn(async move { tx.send_timeout(item, Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(SendError::Closed));
        assert_eq!(tx.try_send(Arc::clone(&item)), Err(SendError::Closed));
        assert_eq!(Arc::strong_count(&item), 1, "queued items were dropped");
    }

    #[tokio::test]
    async fn a_recv_cancelled_while_waiting_loses_nothing() {
        let (tx, mut rx) = channel(4);
        let cancelled = tokio::time::timeout(Duration::from_millis(10), rx.recv()).await;
        assert!(cancelled.is_err());
        tx.try_send(5).unwrap();
        assert_eq!(rx.recv().await, Some(5));
    }
}

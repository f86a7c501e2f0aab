//! The bounded outbound queue of one connection: the hub pushes frames
//! (`try_send`, never waiting), the connection's writer pops them.
//!
//! Like `tokio::sync::mpsc::channel`, but it allocates only what it holds:
//! tokio's bounded channel allocates a block of 32 slots and a cache-padded
//! header up front (1.5 KiB), which was a sixth of an idle connection's
//! memory. Here an empty queue is one small allocation, its buffer grows
//! with what is queued, and shrinks again after a burst.
//!
//! The queue is bounded in items and, optionally, in bytes: a few hundred
//! large relayed offers are megabytes, and the item bound alone would let a
//! reader that never reads pin that much.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// A queue that held more than this many items gives its memory back once
/// it is empty again.
const SHRINK_ABOVE: usize = 64;

struct State<T> {
    items: VecDeque<T>,
    /// Sum of the weights of `items`.
    bytes: usize,
    senders: usize,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Wakes the receiver; a notification sent while it is not waiting is
    /// kept (one permit), so none is lost between its check and its wait.
    wake: Notify,
    capacity: usize,
    max_bytes: usize,
    weigh: fn(&T) -> usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why [`Sender::try_send`] gave the item back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The queue holds `capacity` items, or this item would take it past
    /// its byte bound.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// The pushing side; clone it for more senders.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The popping side.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

/// A queue that holds at most `capacity` items (at least 1).
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    bounded(capacity, usize::MAX, |_| 0)
}

/// A queue that holds at most `capacity` items (at least 1) weighing at most
/// `max_bytes` together, as `weigh` counts them. An empty queue takes any
/// one item, so a single item above `max_bytes` is delayed, not refused
/// forever.
pub fn bounded<T>(
    capacity: usize,
    max_bytes: usize,
    weigh: fn(&T) -> usize,
) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            bytes: 0,
            senders: 1,
            receiver_gone: false,
        }),
        wake: Notify::new(),
        capacity: capacity.max(1),
        max_bytes,
        weigh,
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or the receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        {
            let mut state = self.shared.lock();
            if state.receiver_gone {
                return Err(TrySendError::Closed(item));
            }
            let weight = (self.shared.weigh)(&item);
            let too_heavy = !state.items.is_empty()
                && state.bytes.saturating_add(weight) > self.shared.max_bytes;
            if state.items.len() >= self.shared.capacity || too_heavy {
                return Err(TrySendError::Full(item));
            }
            state.bytes += weight;
            state.items.push_back(item);
        }
        self.shared.wake.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
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
            self.shared.wake.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        let mut state = self.shared.lock();
        let item = state.items.pop_front();
        if let Some(item) = &item {
            state.bytes -= (self.shared.weigh)(item);
        }
        if state.items.is_empty() && state.items.capacity() > SHRINK_ABOVE {
            state.items = VecDeque::new();
        }
        item
    }

    /// The next item; `None` once every sender is gone and the queue is empty.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
            if self.shared.lock().senders == 0 {
                return None;
            }
            self.shared.wake.notified().await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.receiver_gone = true;
        state.items = VecDeque::new();
        state.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bounded_and_in_order() {
        let (tx, mut rx) = channel(2);
        assert_eq!(tx.try_send(1), Ok(()));
        assert_eq!(tx.try_send(2), Ok(()));
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        assert_eq!(rx.try_recv(), Some(1));
        assert_eq!(tx.try_send(4), Ok(()));
        assert_eq!(rx.try_recv(), Some(2));
        assert_eq!(rx.try_recv(), Some(4));
        assert_eq!(rx.try_recv(), None);
        drop(rx);
        assert_eq!(tx.try_send(5), Err(TrySendError::Closed(5)));
    }

    #[test]
    fn the_byte_bound_holds_but_an_empty_queue_takes_anything() {
        let (tx, mut rx) = bounded(100, 10, |s: &String| s.len());
        assert_eq!(tx.try_send("123456".to_owned()), Ok(()));
        assert_eq!(tx.try_send("1234".to_owned()), Ok(()));
        assert_eq!(
            tx.try_send("1".to_owned()),
            Err(TrySendError::Full("1".to_owned()))
        );
        assert_eq!(rx.try_recv().as_deref(), Some("123456"));
        assert_eq!(tx.try_send("123456".to_owned()), Ok(()));
        assert_eq!(rx.try_recv().as_deref(), Some("1234"));
        assert_eq!(rx.try_recv().as_deref(), Some("123456"));
        // Bigger than the bound, but alone: taken.
        assert_eq!(tx.try_send("x".repeat(50)), Ok(()));
        assert!(tx.try_send("y".to_owned()).is_err());
        assert_eq!(rx.try_recv().map(|s| s.len()), Some(50));
        assert_eq!(rx.shared.lock().bytes, 0);
    }

    #[test]
    fn memory_comes_back_after_a_burst() {
        let (tx, mut rx) = channel(1000);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_some() {}
        assert_eq!(rx.shared.lock().items.capacity(), 0);
    }

    #[tokio::test]
    async fn recv_waits_and_ends_with_the_last_sender() {
        let (tx, mut rx) = channel(8);
        let tx2 = tx.clone();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
            got
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.try_send(1).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx2.try_send(2).unwrap();
        drop(tx);
        tx2.try_send(3).unwrap();
        drop(tx2);
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader ends")
            .unwrap();
        assert_eq!(got, [1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_lost_between_threads() {
        let (tx, mut rx) = channel(1 << 20);
        let writer = std::thread::spawn(move || {
            for i in 0..100_000u32 {
                tx.try_send(i).unwrap();
            }
        });
        let mut next = 0;
        while let Some(v) = rx.recv().await {
            assert_eq!(v, next);
            next += 1;
        }
        writer.join().unwrap();
        assert_eq!(next, 100_000);
    }
}

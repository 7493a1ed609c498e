//! The clock port: what time it is, and waiting for a moment. The runtime never reads the
//! system time directly, so tests run on a [`VirtualClock`] they move by hand and timers fire
//! when the test says, with no sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A boxed future, so clocks can live behind `dyn Clock`.
pub type Wait<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What time it is, and how to wait for a moment.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;

    /// Resolves once `now() >= at` (at once if it already is).
    fn sleep_until(&self, at: Timestamp) -> Wait<'_>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep_until(&self, at: Timestamp) -> Wait<'_> {
        Box::pin(async move {
            loop {
                let left = at.duration_since(Timestamp::now());
                if left <= SignedDuration::ZERO {
                    return;
                }
                let left = std::time::Duration::try_from(left).unwrap_or(std::time::Duration::from_secs(1));
                tokio::time::sleep(left).await;
            }
        })
    }
}

/// A clock that moves only when told; for tests and simulations.
#[derive(Debug)]
pub struct VirtualClock {
    now: Mutex<Timestamp>,
    tx: watch::Sender<Timestamp>,
}

impl VirtualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> VirtualClock {
        let (tx, _) = watch::channel(start);
        VirtualClock { now: Mutex::new(start), tx }
    }

    /// Moves the clock forward (never backwards); sleepers whose moment has come wake up.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Ok(next) = now.checked_add(by)
            && next > *now
        {
            *now = next;
            self.tx.send_replace(next);
        }
    }

    /// Sets the clock to `at` if that is later than now.
    pub fn set(&self, at: Timestamp) {
        let now = self.now();
        if at > now {
            self.advance(at.duration_since(now));
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sleep_until(&self, at: Timestamp) -> Wait<'_> {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= at || self.now() >= at {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The clock is gone; time will never come.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

/// Milliseconds since the epoch, as the store keeps times.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// A timestamp from stored milliseconds.
pub(crate) fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

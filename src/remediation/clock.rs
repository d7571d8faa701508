//! The receiver's one source of time. Remediation code asks its [`Clock`], never the system,
//! so tests can step the wall clock and the monotonic clock apart and check that the
//! time-based guards hold when an NTP step or an operator moves the wall clock.
//!
//! Two readings, because they answer different questions: the journal's times are wall-clock
//! (they survive a restart and are read by people); how long ago this run fenced a host, or
//! how long the receiver has run, is monotonic (no clock step can change it). Waits and
//! deadlines of the steps themselves (probe pauses, promotion and rejoin waits) run on tokio's
//! timer, which tests pause and advance on their own.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where remediation code reads the time.
pub trait Clock: Debug + Send + Sync {
    /// Seconds since the Unix epoch: the journal's times.
    fn unix(&self) -> f64;
    /// A monotonic reading: ages within this run.
    fn monotonic(&self) -> Instant;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix(&self) -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told: both readings together ([`advance`](Self::advance)), or
/// the wall clock alone ([`step_wall`](Self::step_wall), as NTP or an operator steps it).
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    state: Mutex<(f64, Duration)>,
}

impl ManualClock {
    /// A clock reading `unix` seconds since the epoch.
    pub fn new(unix: f64) -> ManualClock {
        ManualClock {
            base: Instant::now(),
            state: Mutex::new((unix, Duration::ZERO)),
        }
    }

    /// Time passes: both readings move by `by`.
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += by.as_secs_f64();
        state.1 += by;
    }

    /// The wall clock alone jumps by `seconds` (negative: back).
    pub fn step_wall(&self, seconds: f64) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += seconds;
    }
}

impl Clock for ManualClock {
    fn unix(&self) -> f64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn monotonic(&self) -> Instant {
        self.base + self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wall_step_moves_the_wall_reading_only() {
        let clock = ManualClock::new(1_000.0);
        let start = clock.monotonic();
        clock.advance(Duration::from_secs(10));
        clock.step_wall(-3_600.0);
        assert_eq!(clock.unix(), 1_000.0 + 10.0 - 3_600.0);
        assert_eq!(clock.monotonic() - start, Duration::from_secs(10));
    }
}

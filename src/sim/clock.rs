//! The simulated clock: real time multiplied by a scale, plus explicit jumps, so the 600 s
//! liveness timeout (xapi-notes.md §4.1) passes in seconds in tests.

use std::time::{Duration, Instant};

/// Simulated seconds since the simulator started.
#[derive(Debug, Clone)]
pub struct Clock {
    real_base: Instant,
    sim_base: f64,
    scale: f64,
}

impl Clock {
    /// A clock at 0 running `scale` simulated seconds per real second.
    pub fn new(scale: f64) -> Clock {
        Clock {
            real_base: Instant::now(),
            sim_base: 0.0,
            scale: scale.max(0.0),
        }
    }

    /// Simulated seconds now.
    pub fn now(&self) -> f64 {
        self.sim_base + self.real_base.elapsed().as_secs_f64() * self.scale
    }

    /// Jumps forward.
    pub fn advance(&mut self, seconds: f64) {
        self.sim_base += seconds.max(0.0);
    }

    /// Changes the rate from now on.
    pub fn set_scale(&mut self, scale: f64) {
        self.sim_base = self.now();
        self.real_base = Instant::now();
        self.scale = scale.max(0.0);
    }

    /// Simulated seconds per real second.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration of `seconds` simulated seconds; none while the clock is stopped
    /// (tests that stop the clock move it themselves and must not wait).
    pub fn real(&self, seconds: f64) -> Duration {
        if self.scale <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((seconds / self.scale).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_and_scale() {
        let mut c = Clock::new(0.0);
        assert_eq!(c.now(), 0.0);
        c.advance(600.0);
        assert_eq!(c.now(), 600.0);
        c.set_scale(60.0);
        assert!(c.now() >= 600.0);
        assert_eq!(c.real(60.0), Duration::from_secs(1));
    }
}

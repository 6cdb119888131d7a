//! A circuit breaker: fail at once while a dependency is known to be down, instead of making
//! every request wait out the driver's timeout.
//!
//! Closed, it lets every call through and counts consecutive connection-class failures (the
//! caller decides which failures count: a timeout or a refused connection does, a missing
//! record does not). After [`Breaker::new`]'s `threshold` of them in a row it opens for the
//! cool-down, during which [`Breaker::admit`] refuses at once and says how long is left. Then
//! it is half-open: one call (the probe) is let through and the others still refused; the
//! probe's success closes it, its failure opens it for another cool-down.
//!
//! It lives here, in the foundations, because both the database (`yds-store`) and object
//! storage (`yds-storage`) use it and neither may use the other. Plain `std` only: it must
//! never bring a dependency into this crate. Times are arguments (`*_at`) so the state machine
//! is tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open a breaker, by default.
pub const DEFAULT_THRESHOLD: u32 = 3;
/// How long an open breaker refuses calls before it lets a probe through, by default.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(5);

/// One dependency's breaker; share it (`Arc` or a `static`) between every caller of that
/// dependency.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are refused until `until`.
    Open { until: Instant },
    /// One probe is out since `since`; others are refused until it reports (or, should it
    /// never report, until a cool-down has passed, when another probe may go).
    HalfOpen { since: Instant },
}

/// Why a call was refused: the dependency is down, try again in `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub retry_after: Duration,
}

impl Refused {
    /// `retry_after` in whole seconds, rounded up, at least 1 (an HTTP `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new(DEFAULT_THRESHOLD, DEFAULT_COOL_DOWN)
    }
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures (at least 1) for
    /// `cool_down`.
    pub const fn new(threshold: u32, cool_down: Duration) -> Self {
        let threshold = if threshold == 0 { 1 } else { threshold };
        Self { threshold, cool_down, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    /// Whether a call may go now; `Err` says how long until one may.
    pub fn admit(&self) -> Result<(), Refused> {
        self.admit_at(Instant::now())
    }

    pub fn admit_at(&self, now: Instant) -> Result<(), Refused> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if now < until => Err(Refused { retry_after: until - now }),
            State::HalfOpen { since } if now < since + self.cool_down => {
                Err(Refused { retry_after: since + self.cool_down - now })
            }
            // The cool-down is over (or a probe never reported): this call is the probe.
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { since: now };
                Ok(())
            }
        }
    }

    /// A call went through and its dependency answered: closes the breaker.
    pub fn succeeded(&self) {
        let mut state = self.lock();
        match *state {
            // A call let in before the breaker opened says nothing about now.
            State::Open { .. } => {}
            State::Closed { .. } | State::HalfOpen { .. } => *state = State::Closed { failures: 0 },
        }
    }

    /// A call failed in a way that says the dependency is down (the caller's judgement).
    pub fn failed(&self) {
        self.failed_at(Instant::now())
    }

    pub fn failed_at(&self, now: Instant) {
        let mut state = self.lock();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            State::Closed { .. } | State::HalfOpen { .. } => State::Open { until: now + self.cool_down },
            open @ State::Open { .. } => open,
        };
    }

    /// When a call is refused or fails now: how long a client should wait before retrying
    /// (until the breaker half-opens, or 1 s while it is still closed).
    pub fn retry_after(&self) -> Refused {
        self.retry_after_at(Instant::now())
    }

    pub fn retry_after_at(&self, now: Instant) -> Refused {
        let retry_after = match *self.lock() {
            State::Open { until } => until.saturating_duration_since(now),
            State::HalfOpen { since } => (since + self.cool_down).saturating_duration_since(now),
            State::Closed { .. } => Duration::from_secs(1),
        };
        Refused { retry_after }
    }

    /// Whether calls are being refused (open, or half-open with its probe out).
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, always whole: a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL: Duration = Duration::from_secs(5);

    #[test]
    fn it_opens_after_the_threshold_of_consecutive_failures_and_refuses_at_once() {
        let breaker = Breaker::new(3, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        breaker.failed_at(t0);
        assert_eq!(breaker.admit_at(t0), Ok(()), "two failures of three: still closed");
        breaker.failed_at(t0);
        let refused = breaker.admit_at(t0 + Duration::from_millis(1500)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(3500));
        assert_eq!(refused.retry_after_secs(), 4);
        assert!(breaker.is_open());
    }

    #[test]
    fn a_success_resets_the_count_of_failures() {
        let breaker = Breaker::new(3, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        breaker.failed_at(t0);
        breaker.succeeded();
        breaker.failed_at(t0);
        breaker.failed_at(t0);
        assert_eq!(breaker.admit_at(t0), Ok(()), "the failures were not consecutive");
    }

    #[test]
    fn after_the_cool_down_one_probe_goes_and_its_success_closes_the_breaker() {
        let breaker = Breaker::new(1, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        let later = t0 + COOL;
        assert_eq!(breaker.admit_at(later), Ok(()), "the probe");
        let refused = breaker.admit_at(later + Duration::from_millis(10)).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO, "only one probe at a time");
        breaker.succeeded();
        assert_eq!(breaker.admit_at(later), Ok(()));
        assert_eq!(breaker.admit_at(later), Ok(()));
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_failed_probe_opens_it_for_another_cool_down() {
        let breaker = Breaker::new(2, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        breaker.failed_at(t0);
        let probe_at = t0 + COOL + Duration::from_secs(1);
        assert_eq!(breaker.admit_at(probe_at), Ok(()));
        breaker.failed_at(probe_at);
        let refused = breaker.admit_at(probe_at + Duration::from_secs(1)).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(4), "one failure reopens a half-open breaker");
        assert_eq!(breaker.admit_at(probe_at + COOL), Ok(()), "the next probe");
    }

    #[test]
    fn a_probe_that_never_reports_does_not_hold_the_breaker_forever() {
        let breaker = Breaker::new(1, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        assert_eq!(breaker.admit_at(t0 + COOL), Ok(()));
        assert!(breaker.admit_at(t0 + COOL + Duration::from_secs(1)).is_err());
        assert_eq!(breaker.admit_at(t0 + COOL + COOL), Ok(()), "another probe");
    }

    #[test]
    fn a_success_of_a_call_let_in_before_it_opened_does_not_close_it() {
        let breaker = Breaker::new(1, COOL);
        let t0 = Instant::now();
        breaker.failed_at(t0);
        breaker.succeeded();
        assert!(breaker.admit_at(t0).is_err());
        assert_eq!(breaker.retry_after_at(t0).retry_after_secs(), 5);
    }
}

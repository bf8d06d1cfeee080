//! Virtual time. The core never reads a clock: callers pass an [`Instant`]
//! taken from whatever monotonic source they use, which keeps tests exact.

use std::ops::Add;
use std::time::Duration;

/// Nanoseconds since an arbitrary epoch chosen by the caller (e.g. process
/// start, or 0 in tests). Only differences between instants mean anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// Tests and config speak milliseconds; this avoids `* 1_000_000` noise.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1_000_000))
    }

    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `None` on overflow, so a huge delay cannot wrap into the past.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let n = u64::try_from(d.as_nanos()).ok()?;
        self.0.checked_add(n).map(Instant)
    }

    /// Zero when `earlier` is actually later: callers may mix instants taken
    /// on different threads, and a negative age is meaningless.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates at the far future rather than panicking: a deadline that far
    /// away simply never fires.
    fn add(self, d: Duration) -> Instant {
        self.checked_add(d).unwrap_or(Instant(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_and_arithmetic() {
        let t = Instant::from_millis(5);
        assert_eq!(t.as_nanos(), 5_000_000);
        assert_eq!(t + Duration::from_millis(3), Instant::from_millis(8));
        assert_eq!(
            Instant::from_millis(8).saturating_duration_since(t),
            Duration::from_millis(3)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(8)),
            Duration::ZERO
        );
    }

    #[test]
    fn overflow_saturates_or_fails() {
        let t = Instant(u64::MAX - 1);
        assert_eq!(t.checked_add(Duration::from_nanos(2)), None);
        assert_eq!(t + Duration::from_secs(1), Instant(u64::MAX));
        assert_eq!(Instant::from_millis(u64::MAX), Instant(u64::MAX));
    }
}

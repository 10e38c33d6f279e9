//! Deadlines for queries and counts: a caller that must not wait long (a server answering on
//! its event loop, say) gives `Query::deadline` or `Collection::count_before`, and the read
//! stops with `Error::DeadlineExceeded` once the instant has passed, instead of running on.
//!
//! The clock is read once every `DEADLINE_CHECK_ENTRIES` entries examined (index entries,
//! documents, counted keys), so a check costs next to nothing per entry and a query stops
//! within that many entries of its deadline. A single slow read from disk is not cut short.
//!
//! Thread safety: a `Ticker` belongs to one running query.
//!
//! Invariant: a stopped query changed nothing; its partial results are dropped, never
//! returned.

use crate::{Error, Result};
use std::time::Instant;

/// Entries examined between two readings of the clock.
pub const DEADLINE_CHECK_ENTRIES: u64 = 64;

/// Counts the entries a query examines and checks its deadline every so often.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticker {
    deadline: Option<Instant>,
    examined: u64,
    stopped: bool,
}

impl Ticker {
    /// A ticker for `deadline` (`None`: never stops).
    pub(crate) fn new(deadline: Option<Instant>) -> Ticker {
        Ticker { deadline, examined: 0, stopped: false }
    }

    /// The deadline, if any.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Notes one more entry examined; `Error::DeadlineExceeded` once the deadline has passed.
    pub(crate) fn tick(&mut self) -> Result<()> {
        if self.keep_going() {
            Ok(())
        } else {
            Err(Error::DeadlineExceeded)
        }
    }

    /// `tick` as a bool, for a count that goes on while it is true; `check` afterwards
    /// turns a stop into the error.
    pub(crate) fn keep_going(&mut self) -> bool {
        if let Some(deadline) = self.deadline {
            self.examined += 1;
            if self.examined.is_multiple_of(DEADLINE_CHECK_ENTRIES) && Instant::now() >= deadline {
                self.stopped = true;
            }
        }
        !self.stopped
    }

    /// `Error::DeadlineExceeded` if a tick found the deadline passed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.stopped {
            Err(Error::DeadlineExceeded)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_passed_deadline_stops_at_the_next_check_and_none_never_does() {
        let mut none = Ticker::new(None);
        assert!((0..10_000).all(|_| none.tick().is_ok()));
        let mut past = Ticker::new(Some(Instant::now() - Duration::from_millis(1)));
        let stopped_at = (1..=DEADLINE_CHECK_ENTRIES * 2).find(|_| past.tick().is_err());
        assert_eq!(stopped_at, Some(DEADLINE_CHECK_ENTRIES));
        assert!(past.check().is_err() && !past.keep_going());
        let mut future = Ticker::new(Some(Instant::now() + Duration::from_secs(3600)));
        assert!((0..10_000).all(|_| future.tick().is_ok()));
        assert!(future.check().is_ok());
    }
}

//! Read budgets for queries and counts: a caller that must not wait long (a server answering
//! on its event loop, say) gives `Query::budget` or `Collection::count_within` a deadline, a
//! most number of entries to examine, or both, and the read stops with
//! `Error::BudgetExceeded` once either is spent, instead of running on.
//!
//! Entries examined are index entries, documents and counted keys, each one step of a read;
//! the storage iterators under a read also stop after that many stored entries, so older
//! versions and tombstones passed over between two keys count as well. The planner's probes
//! before a read are not counted (each is bounded on its own: at most
//! `PLAN_PROBE_ENTRIES_MAX` keys and `PLAN_PROBE_STEPS_MAX` stored entries per range), and a
//! find that must sort in memory after all reads again, within a new budget.
//! The entry limit is exact and independent of the machine's load; the clock is read once
//! every `DEADLINE_CHECK_ENTRIES` entries, so a check costs next to nothing per entry and a
//! read stops within that many entries of its deadline. A single slow read from disk is not
//! cut short.
//!
//! Thread safety: a `ReadBudget` is plain data; a `Ticker` belongs to one running read.
//!
//! Invariant: a stopped read changed nothing; its partial results are dropped, never
//! returned.

use crate::{Error, Result};
use nanodb_storage::Iter;
use std::time::Instant;

/// Entries examined between two readings of the clock.
pub const DEADLINE_CHECK_ENTRIES: u64 = 64;

/// How much a read may do before it stops with `Error::BudgetExceeded`; the default is
/// unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadBudget {
    /// Stop once this instant has passed.
    pub deadline: Option<Instant>,
    /// Stop before examining more than this many entries.
    pub entries_max: Option<u64>,
}

impl ReadBudget {
    /// No limit.
    pub const UNLIMITED: ReadBudget = ReadBudget { deadline: None, entries_max: None };

    /// At most `entries_max` entries examined.
    pub fn entries(entries_max: u64) -> ReadBudget {
        ReadBudget { entries_max: Some(entries_max), ..ReadBudget::UNLIMITED }
    }

    /// Until `deadline`.
    pub fn until(deadline: Instant) -> ReadBudget {
        ReadBudget { deadline: Some(deadline), ..ReadBudget::UNLIMITED }
    }
}

/// Counts the entries a read examines against its budget.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticker {
    budget: ReadBudget,
    /// False for an unlimited budget: then nothing is counted.
    limited: bool,
    examined: u64,
    stopped: Option<&'static str>,
}

impl Ticker {
    /// A ticker for `budget`.
    pub(crate) fn new(budget: ReadBudget) -> Ticker {
        let limited = budget != ReadBudget::UNLIMITED;
        Ticker { budget, limited, examined: 0, stopped: None }
    }

    /// The budget.
    pub(crate) fn budget(&self) -> ReadBudget {
        self.budget
    }

    /// `iter` with the budget's entry limit as its step limit, so stored entries it passes
    /// over inside one step (older versions, tombstones) count too.
    pub(crate) fn bound(&self, iter: Iter) -> Iter {
        match self.budget.entries_max {
            Some(max) => iter.limit_steps(max),
            None => iter,
        }
    }

    /// Notes one more entry examined; `Error::BudgetExceeded` once the budget is spent.
    pub(crate) fn tick(&mut self) -> Result<()> {
        self.keep_going();
        self.check()
    }

    /// `tick` as a bool, for a count that goes on while it is true; `check` afterwards
    /// turns a stop into the error.
    pub(crate) fn keep_going(&mut self) -> bool {
        if self.stopped.is_some() || !self.limited {
            return self.stopped.is_none();
        }
        self.examined += 1;
        if self.budget.entries_max.is_some_and(|max| self.examined > max) {
            self.stopped = Some("entries examined");
        } else if let Some(deadline) = self.budget.deadline {
            if self.examined.is_multiple_of(DEADLINE_CHECK_ENTRIES) && Instant::now() >= deadline {
                self.stopped = Some("deadline");
            }
        }
        self.stopped.is_none()
    }

    /// `Error::BudgetExceeded` if a tick found the budget spent.
    pub(crate) fn check(&self) -> Result<()> {
        match self.stopped {
            Some(spent) => Err(Error::BudgetExceeded { spent }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ticks_until_stopped(budget: ReadBudget, most: u64) -> Option<u64> {
        let mut ticker = Ticker::new(budget);
        (1..=most).find(|_| ticker.tick().is_err())
    }

    #[test]
    fn a_spent_budget_stops_at_the_next_check_and_none_never_does() {
        assert_eq!(ticks_until_stopped(ReadBudget::UNLIMITED, 10_000), None);
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            ticks_until_stopped(ReadBudget::until(past), 1000),
            Some(DEADLINE_CHECK_ENTRIES)
        );
        let future = Instant::now() + Duration::from_secs(3600);
        assert_eq!(ticks_until_stopped(ReadBudget::until(future), 10_000), None);
        // Exactly `entries_max` entries pass; the next one stops.
        assert_eq!(ticks_until_stopped(ReadBudget::entries(0), 10), Some(1));
        assert_eq!(ticks_until_stopped(ReadBudget::entries(100), 1000), Some(101));
        let both = ReadBudget { deadline: Some(past), entries_max: Some(10) };
        assert_eq!(ticks_until_stopped(both, 1000), Some(11));
        let mut ticker = Ticker::new(ReadBudget::entries(1));
        assert!(ticker.keep_going() && !ticker.keep_going() && !ticker.keep_going());
        assert!(matches!(ticker.check(), Err(Error::BudgetExceeded { spent: "entries examined" })));
    }
}

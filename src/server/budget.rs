//! Memory for client buffers, shared fairly. Every connection may hold up to
//! `HTTP_CONNECTION_BYTES_FREE` of buffers (input, unsent output, a decoded
//! chunked body) of its own; what it holds beyond that comes from one budget
//! of `HTTP_SHARED_BUFFER_BYTES` for the whole process. A connection that
//! needs more than the budget has left is refused instead of growing: a
//! partial request gets 503 and the close, a large answer to a read is
//! replaced by 503, and a connection that does not read its answers takes
//! no new request while the budget is spent. So a flood of slow or
//! never-reading clients exhausts the budget, not the process's memory, and
//! the connections that stay small (every well-behaved client) keep being
//! served. The worst case is written out in `config.rs`.

use crate::config::{HTTP_CONNECTION_BYTES_FREE, HTTP_SHARED_BUFFER_BYTES};
use crate::log::{self, Value};

#[derive(Debug)]
pub struct BufferBudget {
    used: usize,
    limit: usize,
    /// The budget ran out and has not come back to half since: logged
    /// once an episode, not once a refusal.
    spent: bool,
}

impl Default for BufferBudget {
    fn default() -> Self {
        BufferBudget {
            used: 0,
            limit: HTTP_SHARED_BUFFER_BYTES,
            spent: false,
        }
    }
}

/// What a connection may do with its buffers now: handed to it before each
/// operation (its `Limits`), settled after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes its buffers may still grow by.
    pub growth: usize,
    /// The shared budget is spent: a connection with unsent output takes no
    /// new request until the client has read it.
    pub budget_spent: bool,
    /// More than half the budget is in use: connections give back what
    /// they hold beyond their free share as soon as they are done with it.
    /// (Below that they keep it, so a warm connection answers without
    /// allocating.)
    pub budget_pressed: bool,
}

impl Limits {
    /// No limit beyond the per-connection ones (tests, and a fresh client).
    pub const UNBOUNDED: Limits = Limits {
        growth: usize::MAX,
        budget_spent: false,
        budget_pressed: false,
    };
}

impl BufferBudget {
    #[cfg(test)]
    fn with_limit(limit: usize) -> BufferBudget {
        BufferBudget {
            used: 0,
            limit,
            spent: false,
        }
    }

    /// Bytes of the shared budget in use.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The limits for a connection whose buffers hold `held` bytes.
    pub fn limits(&self, held: usize) -> Limits {
        let room = self.limit.saturating_sub(self.used);
        Limits {
            growth: HTTP_CONNECTION_BYTES_FREE.saturating_sub(held) + room,
            budget_spent: room == 0,
            budget_pressed: self.used > self.limit / 2,
        }
    }

    /// Records that a connection now holds `held` bytes; `charged` is what
    /// it drew from the budget before, and is updated.
    pub fn settle(&mut self, charged: &mut usize, held: usize) {
        let excess = held.saturating_sub(HTTP_CONNECTION_BYTES_FREE);
        self.used = self.used - *charged + excess;
        *charged = excess;
        if !self.spent && self.used >= self.limit {
            self.spent = true;
            log::event(
                "buffer_budget_spent",
                &[
                    ("budget_bytes", Value::Int(self.limit as i64)),
                    (
                        "effect",
                        Value::Str("growing requests and long answers are refused with 503"),
                    ),
                ],
            );
        } else if self.spent && self.used <= self.limit / 2 {
            self.spent = false;
            log::event("buffer_budget_available", &[]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_hold_their_free_share_then_draw_on_the_budget() {
        let free = HTTP_CONNECTION_BYTES_FREE;
        let mut budget = BufferBudget::with_limit(10_000);
        let (mut a, mut b) = (0, 0);
        assert_eq!(budget.limits(0).growth, free + 10_000);
        budget.settle(&mut a, free);
        assert_eq!((a, budget.used()), (0, 0), "within its free share");
        budget.settle(&mut a, free + 6_000);
        assert_eq!((a, budget.used()), (6_000, 6_000));
        assert_eq!(budget.limits(free + 6_000).growth, 4_000);
        assert_eq!(budget.limits(0).growth, free + 4_000, "b still has its own");
        assert!(budget.limits(0).budget_pressed, "6,000 of 10,000 in use");
        budget.settle(&mut b, free + 4_000);
        let spent = budget.limits(free);
        assert_eq!((spent.growth, spent.budget_spent), (0, true));
        assert!(spent.budget_pressed);
        budget.settle(&mut a, 100);
        assert_eq!((a, budget.used()), (0, 4_000), "shrinking gives back");
        budget.settle(&mut b, 0);
        assert_eq!(budget.used(), 0);
    }
}

//! The background expiry of holds (platform.md §2): every
//! `HOLD_SWEEP_INTERVAL_MS`, from the end of an event loop turn, one
//! `expire_holds` statement expires up to `HOLD_SWEEP_BATCH_MAX` past-due
//! holds. Never a thread, never a wait: the statement goes through the pool
//! like any other, at most one at a time, and its answer schedules the
//! next. A full sweep means a backlog: the next goes
//! `HOLD_SWEEP_BACKLOG_PAUSE` after it, not at once, so that thousands of
//! holds falling due together drain over seconds instead of taking the
//! database from the buyers (their units are back a little later; the holds
//! themselves count as expired from their deadline on, whoever sweeps).
//!
//! Both instances sweep; the database makes that safe (each sweep locks
//! the holds it takes and skips those locked by anyone else), and a
//! jittered interval keeps the two from meeting every time.

use std::time::{Duration, Instant};

use crate::api::holds::HoldFigures;
use crate::api::statements::id_of;
use crate::config::{HOLD_SWEEP_BACKLOG_PAUSE, HOLD_SWEEP_BATCH_MAX};
use crate::log::{self, Value};
use crate::pg::{oid, Param, Pool, Reply, Statement, StatementId};

crate::result_row! {
    /// What one sweep expired.
    pub struct SweepRow<'a> {
        holds: i32,
        units: i32,
    }
}

pub const EXPIRE_HOLDS: Statement = Statement {
    name: "expire_holds",
    sql: "SELECT * FROM expire_holds($1)",
    param_types: &[oid::INT4],
    column_names: SweepRow::COLUMN_NAMES,
    column_types: SweepRow::COLUMN_TYPES,
    writes: true,
    slow: false,
};
const EXPIRE_HOLDS_ID: StatementId = id_of(&EXPIRE_HOLDS);

/// The pool tag of a sweep: apart from the order batches' (bit 63) and
/// the queries' (small slot numbers).
pub const SWEEP_TAG: u64 = 1 << 62;

pub struct HoldSweeper {
    interval: Duration,
    next_at: Instant,
    /// When the sweep at the database was sent.
    sent_at: Option<Instant>,
}

impl HoldSweeper {
    pub fn new(interval: Duration, now: Instant) -> HoldSweeper {
        HoldSweeper {
            interval,
            next_at: now + jittered(interval),
            sent_at: None,
        }
    }

    /// When the loop must wake for the next sweep (`None` while one is out).
    pub fn next_at(&self) -> Option<Instant> {
        self.sent_at.is_none().then_some(self.next_at)
    }

    /// Sends a sweep when one is due and none is out. A pool that cannot
    /// take it now (overloaded, no connection) is asked again an interval
    /// later: expiry waits, orders do not.
    pub fn tick(&mut self, pool: &mut Pool, now: Instant) {
        if self.sent_at.is_some() || now < self.next_at {
            return;
        }
        let limit = [Param::Int4(HOLD_SWEEP_BATCH_MAX)];
        match pool.submit(SWEEP_TAG, EXPIRE_HOLDS_ID, &limit, now) {
            Ok(()) => self.sent_at = Some(now),
            Err(_) => self.next_at = now + jittered(self.interval),
        }
    }

    /// The sweep's answer: counted, logged when it expired anything, and
    /// the next one scheduled.
    pub fn on_reply(&mut self, reply: Reply<'_>, figures: &mut HoldFigures) {
        let Some(sent_at) = self.sent_at.take() else {
            return;
        };
        let mut backlog = false;
        match reply {
            Reply::Rows(rows) => {
                let swept = rows.first().as_ref().and_then(SweepRow::from_row);
                if let Some(swept) = swept {
                    figures.sweeps += 1;
                    figures.expired += u64::try_from(swept.holds).unwrap_or(0);
                    backlog = swept.holds >= HOLD_SWEEP_BATCH_MAX;
                    if swept.holds > 0 {
                        log::event(
                            "holds_expired",
                            &[
                                ("holds", Value::Int(swept.holds.into())),
                                ("units", Value::Int(swept.units.into())),
                            ],
                        );
                    }
                }
            }
            Reply::Failed(error) => log::database_error("hold_sweep_failed", &error, &[]),
            // The connection's loss is logged by the pool; the next sweep
            // takes whatever this one did not commit.
            Reply::Unavailable => {}
        }
        self.next_at = match backlog {
            true => sent_at + HOLD_SWEEP_BACKLOG_PAUSE.min(self.interval),
            false => sent_at + jittered(self.interval),
        };
    }
}

/// The interval, 10 % either way at random: two instances started together
/// do not sweep in step.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + 0.2 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jitter_stays_within_a_tenth() {
        let interval = Duration::from_millis(1000);
        for _ in 0..1000 {
            let got = jittered(interval);
            assert!(got >= Duration::from_millis(900) && got <= Duration::from_millis(1100));
        }
    }
}

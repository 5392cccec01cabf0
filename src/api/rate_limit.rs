//! The per-customer rate limit on writes (orders now; every customer-keyed
//! write may take it): a token bucket per customer, in a table of fixed
//! size allocated at start. Pure: the time is passed in, so it is tested
//! without sockets or sleeping.
//!
//! A bucket is kept as the instant it is full again (`full_at`; the
//! "theoretical arrival time" of GCRA, the same algorithm as a token
//! bucket in one number): at `now` it holds
//! `burst - (full_at - now) / token_interval` tokens, never more than
//! `burst`. Taking a token moves `full_at` one interval later; a request
//! that would move it more than `burst` intervals past `now` finds the
//! bucket empty and is refused, and changes nothing.
//!
//! Customers are keyed by a 64-bit SipHash of their id with keys drawn at
//! random when the process starts (`RandomState`), so a client cannot
//! choose ids that collide; the table keeps the hash, never the id. Two
//! customers whose hashes are equal would share a bucket: with 16384
//! customers remembered, a new id meets one with probability about
//! 2^-50, negligible.
//!
//! The table is open addressing: a customer's slot is one of
//! `RATE_LIMIT_PROBE_SLOTS` from the one its hash points at. A new customer
//! takes the slot among them whose bucket has the most tokens: an empty
//! one, or one full again (the same as absent: nothing is lost), or else
//! that of another customer, who is evicted and counted. An evicted
//! customer comes back with a full bucket, so a flood of new ids can at
//! worst reset buckets; it evicts customers who have spent the fewest
//! tokens first, and a customer being limited has spent them all.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

use crate::api::Refusal;
use crate::config::{
    RateLimit, LOAD_SHED_LOG_INTERVAL, RATE_LIMIT_CUSTOMERS_MAX, RATE_LIMIT_PROBE_SLOTS,
};
use crate::http::response::Header;
use crate::log::{self, Value};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// A slot no customer has (hashes are never 0, see [`RateLimiter::check`]).
const EMPTY: u64 = 0;

/// Whole seconds until the refused customer has a token again: rounded up,
/// at least 1 (the value of `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfterSecs(pub u32);

#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    /// Nanoseconds after the table's epoch; 0 for an empty slot (full).
    full_at_ns: u64,
}

/// The token buckets of up to a fixed number of customers.
pub struct RateLimiter<S = RandomState> {
    slots: Box<[Slot]>,
    keys: S,
    token_interval_ns: u64,
    /// `burst` intervals: how far `full_at` may run ahead of now.
    burst_ns: u64,
    /// Times are kept as nanoseconds after this instant.
    epoch: Instant,
    customers: usize,
    evictions: u64,
}

impl RateLimiter {
    /// A table of `RATE_LIMIT_CUSTOMERS_MAX` slots with random hash keys.
    pub fn new(limit: RateLimit, now: Instant) -> RateLimiter {
        RateLimiter::with_table(limit, RATE_LIMIT_CUSTOMERS_MAX, RandomState::new(), now)
    }
}

impl<S: BuildHasher> RateLimiter<S> {
    /// A table of `slots` slots (a power of two, at least the probe
    /// window), customers hashed with `keys`.
    pub fn with_table(limit: RateLimit, slots: usize, keys: S, now: Instant) -> RateLimiter<S> {
        assert!(slots.is_power_of_two() && slots >= RATE_LIMIT_PROBE_SLOTS);
        let token_interval_ns = nanos(limit.token_interval());
        assert!(token_interval_ns > 0 && limit.burst >= 1);
        let empty = Slot {
            hash: EMPTY,
            full_at_ns: 0,
        };
        RateLimiter {
            slots: vec![empty; slots].into_boxed_slice(),
            keys,
            token_interval_ns,
            burst_ns: token_interval_ns * u64::from(limit.burst),
            epoch: now,
            customers: 0,
            evictions: 0,
        }
    }

    /// Takes one of `customer`'s tokens at `now`, or says how long until
    /// there is one (taking nothing). Never allocates.
    pub fn check(&mut self, customer: &str, now: Instant) -> Result<(), RetryAfterSecs> {
        // 0 marks an empty slot; the one hash in 2^64 that is 0 shares 1's bucket.
        let hash = self.keys.hash_one(customer).max(1);
        let now_ns = nanos(now.saturating_duration_since(self.epoch));
        let slot = self.slot_of(hash, now_ns);
        let taken = self.slots[slot].full_at_ns.max(now_ns) + self.token_interval_ns;
        let ahead_ns = taken - now_ns;
        if ahead_ns > self.burst_ns {
            return Err(retry_after(ahead_ns - self.burst_ns));
        }
        self.slots[slot].full_at_ns = taken;
        Ok(())
    }

    /// The slot of the customer with `hash`, given to it if it has none.
    fn slot_of(&mut self, hash: u64, now_ns: u64) -> usize {
        let mask = self.slots.len() - 1;
        let first = hash as usize & mask;
        // The slot with the most tokens is the one full soonest; an empty
        // slot counts as full since the epoch.
        let mut victim = first;
        for probe in 0..RATE_LIMIT_PROBE_SLOTS {
            let index = (first + probe) & mask;
            let slot = self.slots[index];
            if slot.hash == hash {
                return index;
            }
            if slot.full_at_ns < self.slots[victim].full_at_ns {
                victim = index;
            }
        }
        let taken = self.slots[victim];
        if taken.hash == EMPTY {
            self.customers += 1;
        } else if taken.full_at_ns > now_ns {
            self.evictions += 1;
        }
        self.slots[victim] = Slot {
            hash,
            full_at_ns: now_ns,
        };
        victim
    }

    /// Customers in the table (slots taken; never more than its size).
    pub fn customers(&self) -> usize {
        self.customers
    }

    /// Customers evicted with tokens spent, since the start.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}

fn nanos(duration: Duration) -> u64 {
    // 2^64 ns is 584 years of uptime.
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX / 2)
}

fn retry_after(wait_ns: u64) -> RetryAfterSecs {
    let seconds = wait_ns.div_ceil(NANOS_PER_SECOND).max(1);
    RetryAfterSecs(u32::try_from(seconds).unwrap_or(u32::MAX))
}

/// The answer to a customer past its limit.
pub fn rate_limited(retry: RetryAfterSecs) -> Refusal {
    Refusal {
        status: 429,
        message: "too many orders from this customer, retry later",
        reason: Some("rate_limited"),
        header: Some(Header::RetryAfter(retry.0)),
    }
}

/// The limit as the application applies it: off, or a table; and the
/// refusals counted for the periodic `rate_limited` log event (never one
/// line per refusal).
pub struct CustomerRateLimit {
    limiter: Option<RateLimiter>,
    summary: SummaryInterval,
}

/// What the `rate_limited` event reports: the interval's refusals and
/// evictions, and the customers in the table at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub refused: u64,
    pub evictions: u64,
    pub customers: usize,
}

/// The interval the next summary reports on.
#[derive(Debug)]
struct SummaryInterval {
    next_at: Instant,
    refused: u64,
    /// [`RateLimiter::evictions`] when it began.
    evictions_before: u64,
}

impl CustomerRateLimit {
    /// `limit`'s table, allocated now; `None`: no limit, every customer
    /// passes and nothing is allocated.
    pub fn new(limit: Option<RateLimit>, now: Instant) -> CustomerRateLimit {
        CustomerRateLimit {
            limiter: limit.map(|limit| RateLimiter::new(limit, now)),
            summary: SummaryInterval {
                next_at: now + LOAD_SHED_LOG_INTERVAL,
                refused: 0,
                evictions_before: 0,
            },
        }
    }

    /// Lets one write of `customer` through at `now`, or refuses it with
    /// 429 and `Retry-After`. Call it before the write takes anything
    /// (stock, a batch slot, a database round trip).
    pub fn admit(&mut self, customer: &str, now: Instant) -> Result<(), Refusal> {
        let Some(limiter) = &mut self.limiter else {
            return Ok(());
        };
        limiter.check(customer, now).map_err(|retry| {
            self.summary.refused += 1;
            rate_limited(retry)
        })
    }

    pub fn customers(&self) -> usize {
        self.limiter.as_ref().map_or(0, RateLimiter::customers)
    }

    pub fn evictions(&self) -> u64 {
        self.limiter.as_ref().map_or(0, RateLimiter::evictions)
    }

    /// Logs the `rate_limited` event when an interval is over and anything
    /// was refused or evicted in it.
    pub fn end_of_turn(&mut self, now: Instant) {
        if now >= self.summary.next_at {
            if let Some(summary) = self.take_summary(now) {
                log_summary(summary);
            }
        }
    }

    /// Ends the interval: what happened in it, if anything did.
    fn take_summary(&mut self, now: Instant) -> Option<Summary> {
        let evictions = self.evictions();
        let summary = Summary {
            refused: self.summary.refused,
            evictions: evictions - self.summary.evictions_before,
            customers: self.customers(),
        };
        self.summary = SummaryInterval {
            next_at: now + LOAD_SHED_LOG_INTERVAL,
            refused: 0,
            evictions_before: evictions,
        };
        (summary.refused > 0 || summary.evictions > 0).then_some(summary)
    }
}

#[cold]
fn log_summary(summary: Summary) {
    log::event(
        "rate_limited",
        &[
            ("refused", Value::Int(summary.refused as i64)),
            ("evictions", Value::Int(summary.evictions as i64)),
            ("customers", Value::Int(summary.customers as i64)),
            (
                "seconds",
                Value::Int(LOAD_SHED_LOG_INTERVAL.as_secs() as i64),
            ),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RATE_LIMIT_SLOT_BYTES;
    use std::hash::Hasher;

    const SECOND: Duration = Duration::from_secs(1);

    fn limit(per_second: f64, burst: u32) -> RateLimit {
        RateLimit {
            per_second_millionths: (per_second * 1e6) as u64,
            burst,
        }
    }

    /// Hashes a customer id made of digits to that number, so a test
    /// chooses which slot each customer's probe starts at.
    #[derive(Default)]
    struct DigitsHasher(u64);

    impl Hasher for DigitsHasher {
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes.iter().filter(|b| b.is_ascii_digit()) {
                self.0 = self.0 * 10 + u64::from(b - b'0');
            }
        }

        fn finish(&self) -> u64 {
            self.0
        }
    }

    #[derive(Default)]
    struct Digits;

    impl BuildHasher for Digits {
        type Hasher = DigitsHasher;
        fn build_hasher(&self) -> DigitsHasher {
            DigitsHasher::default()
        }
    }

    impl<S: BuildHasher> RateLimiter<S> {
        /// Whether `customer` has a slot.
        fn remembers(&self, customer: &str) -> bool {
            let hash = self.keys.hash_one(customer).max(1);
            self.slots.iter().any(|slot| slot.hash == hash)
        }
    }

    #[test]
    fn a_slot_costs_what_config_says() {
        assert_eq!(std::mem::size_of::<Slot>(), RATE_LIMIT_SLOT_BYTES);
    }

    #[test]
    fn a_burst_passes_then_the_customer_is_refused() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(limit(1.0, 3), t0);
        for _ in 0..3 {
            assert_eq!(limiter.check("alice", t0), Ok(()));
        }
        // Refusals take nothing: the bucket is not pushed further away.
        for _ in 0..5 {
            assert_eq!(limiter.check("alice", t0), Err(RetryAfterSecs(1)));
        }
        assert_eq!(limiter.check("alice", t0 + SECOND), Ok(()));
        assert_eq!(limiter.check("alice", t0 + SECOND), Err(RetryAfterSecs(1)));
        assert_eq!(limiter.customers(), 1);
    }

    #[test]
    fn tokens_come_back_at_the_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let half_second = Duration::from_millis(500);
        let mut limiter = RateLimiter::new(limit(2.0, 2), t0);
        assert!(limiter.check("bob", t0).is_ok() && limiter.check("bob", t0).is_ok());
        let almost = t0 + half_second - Duration::from_nanos(1);
        assert!(limiter.check("bob", almost).is_err());
        assert!(limiter.check("bob", t0 + half_second).is_ok());
        assert!(limiter.check("bob", t0 + half_second).is_err());
        // A long pause refills the bucket, never past the burst.
        let later = t0 + 100 * SECOND;
        assert!(limiter.check("bob", later).is_ok() && limiter.check("bob", later).is_ok());
        assert!(limiter.check("bob", later).is_err());
        // Spread out at the rate, requests never run dry.
        for step in 1..=20 {
            assert!(limiter.check("bob", later + step * half_second).is_ok());
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // One token every two seconds.
        let mut slow = RateLimiter::new(limit(0.5, 1), t0);
        assert!(slow.check("c", t0).is_ok());
        assert_eq!(slow.check("c", t0), Err(RetryAfterSecs(2)));
        assert_eq!(slow.check("c", t0 + ms(1)), Err(RetryAfterSecs(2)));
        assert_eq!(slow.check("c", t0 + ms(1_000)), Err(RetryAfterSecs(1)));
        assert_eq!(slow.check("c", t0 + ms(1_999)), Err(RetryAfterSecs(1)));
        assert_eq!(slow.check("c", t0 + ms(2_000)), Ok(()));
        // One every 3.33 s: 4 s to wait.
        let mut odd = RateLimiter::new(limit(0.3, 1), t0);
        assert!(odd.check("c", t0).is_ok());
        assert_eq!(odd.check("c", t0), Err(RetryAfterSecs(4)));
        // A millisecond to wait is still a second to the client.
        let mut fast = RateLimiter::new(limit(1000.0, 1), t0);
        assert!(fast.check("c", t0).is_ok());
        assert_eq!(fast.check("c", t0), Err(RetryAfterSecs(1)));
        assert_eq!(fast.check("c", t0 + ms(1)), Ok(()));
        // The slowest allowed refill and the largest burst, all spent: the
        // wait for the next token is one interval.
        let mut slowest = RateLimiter::new(limit(0.001, 1000), t0);
        for _ in 0..1000 {
            assert!(slowest.check("c", t0).is_ok());
        }
        assert_eq!(slowest.check("c", t0), Err(RetryAfterSecs(1000)));
    }

    #[test]
    fn many_customers_never_grow_the_table() {
        let t0 = Instant::now();
        let mut small = RateLimiter::with_table(limit(1.0, 3), 64, RandomState::new(), t0);
        let slots = small.slots.as_ptr();
        for n in 0..10_000 {
            let customer = format!("customer-{n}");
            assert!(small.check(&customer, t0).is_ok(), "a new customer passes");
            assert!(small.customers() <= 64);
        }
        assert_eq!((small.customers(), small.capacity()), (64, 64));
        assert_eq!(small.slots.as_ptr(), slots, "the table never moves");
        assert!(small.evictions() > 9_000, "{}", small.evictions());

        let mut full_size = RateLimiter::new(limit(1.0, 3), t0);
        assert_eq!(full_size.capacity(), RATE_LIMIT_CUSTOMERS_MAX);
        for n in 0..50_000 {
            let _ = full_size.check(&n.to_string(), t0);
        }
        assert_eq!(full_size.customers(), RATE_LIMIT_CUSTOMERS_MAX);
    }

    #[test]
    fn a_limited_customer_stays_limited_while_others_pass() {
        let t0 = Instant::now();
        // A small table, so the flood lands in every probe window.
        let mut limiter = RateLimiter::with_table(limit(1.0, 3), 64, RandomState::new(), t0);
        while limiter.check("greedy", t0).is_ok() {}
        for n in 0..10_000 {
            let customer = format!("passer-by-{n}");
            assert!(limiter.check(&customer, t0).is_ok());
            assert!(limiter.check("greedy", t0).is_err(), "after {n} others");
        }
        assert!(limiter.remembers("greedy"));
        assert!(limiter.check("greedy", t0 + SECOND).is_ok());
    }

    #[test]
    fn eviction_takes_a_refilled_bucket_first_then_the_fullest() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::with_table(limit(1.0, 3), 64, Digits, t0);
        // Eight customers whose probes all start at slot 5 fill its window:
        // customer 5 spends one token, 69 two, the others three.
        let window: Vec<String> = (0..8).map(|i| (5 + 64 * i).to_string()).collect();
        for (i, customer) in window.iter().enumerate() {
            let spent = match i {
                0 => 1,
                1 => 2,
                _ => 3,
            };
            for _ in 0..spent {
                assert!(limiter.check(customer, t0).is_ok());
            }
        }
        assert_eq!((limiter.customers(), limiter.evictions()), (8, 0));
        // At 1.5 s, customer 5's bucket is full again (since 1 s): a
        // newcomer takes its slot, and no one is evicted.
        let later = t0 + Duration::from_millis(1_500);
        assert!(limiter.check("517", later).is_ok());
        assert!(!limiter.remembers("5") && limiter.remembers("517"));
        assert_eq!((limiter.customers(), limiter.evictions()), (8, 0));
        // Another newcomer: no bucket is full, customer 69's has the most
        // tokens (full at 2 s), so it goes, counted.
        assert!(limiter.check("581", later).is_ok());
        assert!(!limiter.remembers("69") && limiter.remembers("581"));
        assert_eq!((limiter.customers(), limiter.evictions()), (8, 1));
        for customer in &window[2..] {
            assert!(limiter.remembers(customer));
        }
        // A customer whose window reaches a free slot takes it: no eviction.
        assert!(limiter.check("6", later).is_ok());
        assert_eq!((limiter.customers(), limiter.evictions()), (9, 1));
    }

    #[test]
    fn the_application_gets_a_429_with_retry_after() {
        let t0 = Instant::now();
        let mut limit = CustomerRateLimit::new(Some(limit(1.0, 1)), t0);
        assert_eq!(limit.admit("c", t0), Ok(()));
        let refusal = limit.admit("c", t0).unwrap_err();
        assert_eq!(refusal.status, 429);
        assert_eq!(refusal.reason, Some("rate_limited"));
        assert_eq!(refusal.header, Some(Header::RetryAfter(1)));
        assert_eq!(limit.customers(), 1);

        let mut off = CustomerRateLimit::new(None, t0);
        for _ in 0..1000 {
            assert_eq!(off.admit("c", t0), Ok(()));
        }
        assert_eq!((off.customers(), off.evictions()), (0, 0));
        assert_eq!(off.take_summary(t0 + LOAD_SHED_LOG_INTERVAL), None);
    }

    #[test]
    fn the_summary_reports_each_interval_once() {
        let t0 = Instant::now();
        let mut limit = CustomerRateLimit::new(Some(limit(1.0, 1)), t0);
        assert!(limit.admit("c", t0).is_ok());
        for _ in 0..3 {
            assert!(limit.admit("c", t0).is_err());
        }
        let end = t0 + LOAD_SHED_LOG_INTERVAL;
        assert_eq!(
            limit.take_summary(end),
            Some(Summary {
                refused: 3,
                evictions: 0,
                customers: 1
            })
        );
        assert_eq!(limit.summary.next_at, end + LOAD_SHED_LOG_INTERVAL);
        // Nothing refused since: nothing to say.
        assert_eq!(limit.take_summary(end + LOAD_SHED_LOG_INTERVAL), None);
    }
}

//! A log-linear latency histogram in microseconds (the HdrHistogram idea,
//! sized for this tool): values below 64 µs are exact, above that every
//! power of two is split into 64 sub-buckets, so a reported percentile is
//! within 1/64 (1.6 %) of the true value. Fixed memory, O(1) record,
//! mergeable.

/// Sub-buckets per power of two, as a bit count (64 sub-buckets).
const SUB_BITS: u32 = 6;
const SUB_COUNT: u64 = 1 << SUB_BITS;
/// Largest recordable value: 2^40 µs (about 12 days); larger ones are clamped.
const MAX_BITS: u32 = 40;
pub const VALUE_MAX_US: u64 = (1 << MAX_BITS) - 1;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) * SUB_COUNT as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum_us: u128,
    min_us: u64,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max_us", &self.max_us)
            .finish()
    }
}

fn bucket_of(value_us: u64) -> usize {
    if value_us < SUB_COUNT {
        return value_us as usize;
    }
    let msb = 63 - value_us.leading_zeros();
    let shift = msb - SUB_BITS;
    let sub = (value_us >> shift) & (SUB_COUNT - 1);
    ((shift as u64 + 1) * SUB_COUNT + sub) as usize
}

/// The highest value that lands in `bucket` (what HdrHistogram reports).
fn bucket_high_us(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < SUB_COUNT {
        return bucket;
    }
    let shift = bucket / SUB_COUNT - 1;
    let sub = bucket % SUB_COUNT;
    ((SUB_COUNT + sub + 1) << shift) - 1
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum_us: 0,
            min_us: u64::MAX,
            max_us: 0,
        }
    }

    pub fn record_us(&mut self, value_us: u64) {
        let v = value_us.min(VALUE_MAX_US);
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum_us += v as u128;
        self.min_us = self.min_us.min(v);
        self.max_us = self.max_us.max(v);
    }

    pub fn record(&mut self, d: std::time::Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(VALUE_MAX_US));
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
        self.min_us = self.min_us.min(other.min_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    pub fn min_us(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_us
        }
    }

    pub fn mean_us(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest bucket whose
    /// cumulative count reaches ceil(q * count), never above the max seen.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_high_us(bucket).min(self.max_us);
            }
        }
        self.max_us
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.quantile_us(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        for v in 0..SUB_COUNT {
            assert_eq!(bucket_high_us(bucket_of(v)), v);
        }
    }

    #[test]
    fn buckets_are_monotonic_and_within_precision() {
        let mut last = 0;
        for v in (1..2_000_000u64).step_by(997).chain([VALUE_MAX_US]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went backwards");
            last = b;
            let high = bucket_high_us(b);
            assert!(high >= v, "{v} above its bucket's high {high}");
            assert!((high - v) as f64 <= v as f64 / SUB_COUNT as f64 + 1.0);
        }
        assert!(bucket_of(VALUE_MAX_US) < BUCKETS);
    }

    #[test]
    fn quantiles_of_a_uniform_range() {
        let mut h = Histogram::new();
        for v in 1..=10_000 {
            h.record_us(v);
        }
        let within = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 / 60.0;
        assert!(within(h.quantile_us(0.5), 5_000), "{}", h.quantile_us(0.5));
        assert!(
            within(h.quantile_us(0.99), 9_900),
            "{}",
            h.quantile_us(0.99)
        );
        assert_eq!(h.quantile_us(1.0), 10_000);
        assert_eq!(h.max_us(), 10_000);
        assert_eq!(h.min_us(), 1);
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record_us(10);
        b.record_us(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.quantile_us(1.0), 1_000_000);
        assert_eq!(a.quantile_us(0.5), 10);
    }

    #[test]
    fn empty_and_clamped() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile_us(0.99), 0);
        h.record_us(u64::MAX);
        assert_eq!(h.max_us(), VALUE_MAX_US);
    }
}

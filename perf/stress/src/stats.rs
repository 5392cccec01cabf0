//! Per-endpoint counters: answers by status, transport errors, requests that
//! failed (an error or a status the scenario did not expect), and a latency
//! histogram. Shared by all virtual users behind one mutex: a record is a
//! few additions, far below the cost of the request it describes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::histogram::Histogram;
use crate::http::HttpError;

#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    pub statuses: BTreeMap<u16, u64>,
    pub transport_errors: u64,
    pub timeouts: u64,
    /// Transport errors, timeouts and unexpected statuses.
    pub failed: u64,
    pub latency: Histogram,
}

impl EndpointStats {
    pub fn count(&self) -> u64 {
        self.statuses.values().sum::<u64>() + self.transport_errors + self.timeouts
    }

    pub fn count_5xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn merge(&mut self, other: &EndpointStats) {
        for (s, n) in &other.statuses {
            *self.statuses.entry(*s).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.timeouts += other.timeouts;
        self.failed += other.failed;
        self.latency.merge(&other.latency);
    }

    /// `201:12 409:300 err:1`
    pub fn statuses_text(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect();
        if self.transport_errors > 0 {
            parts.push(format!("err:{}", self.transport_errors));
        }
        if self.timeouts > 0 {
            parts.push(format!("timeout:{}", self.timeouts));
        }
        parts.join(" ")
    }

    pub fn to_json(&self, label: &str, window_s: f64) -> Value {
        let h = &self.latency;
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        json!({
            "endpoint": label,
            "count": self.count(),
            "statuses": statuses,
            "transport_errors": self.transport_errors,
            "timeouts": self.timeouts,
            "failed": self.failed,
            "throughput_per_s": rate(self.count(), window_s),
            "latency_ms": latency_json(h),
        })
    }
}

pub fn latency_json(h: &Histogram) -> Value {
    json!({
        "p50": h.quantile_ms(0.50),
        "p90": h.quantile_ms(0.90),
        "p99": h.quantile_ms(0.99),
        "p99_9": h.quantile_ms(0.999),
        "max": h.max_ms(),
        "mean": h.mean_us() / 1000.0,
    })
}

pub fn rate(count: u64, window_s: f64) -> f64 {
    if window_s > 0.0 {
        count as f64 / window_s
    } else {
        0.0
    }
}

/// What became of one request, for the books.
pub enum Outcome<'a> {
    Status(u16),
    Error(&'a HttpError),
}

pub struct Stats {
    endpoints: Mutex<BTreeMap<&'static str, EndpointStats>>,
    /// The same requests by the second they were answered in, counted from
    /// `started`, for the run's pictures (`report`).
    timeline: Mutex<Vec<EndpointStats>>,
    started: Instant,
    /// Phase boundaries: a name and when it began.
    marks: Mutex<Vec<(&'static str, Instant)>>,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            endpoints: Mutex::default(),
            timeline: Mutex::default(),
            started: Instant::now(),
            marks: Mutex::default(),
        }
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats::default()
    }

    pub fn record(&self, label: &'static str, outcome: Outcome, latency: Duration, expected: bool) {
        let second = self.started.elapsed().as_secs() as usize;
        let mut map = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        let e = map.entry(label).or_default();
        count(e, &outcome, latency, expected);
        drop(map);
        let mut timeline = self.timeline.lock().unwrap_or_else(|e| e.into_inner());
        if timeline.len() <= second {
            timeline.resize_with(second + 1, EndpointStats::default);
        }
        count(&mut timeline[second], &outcome, latency, expected);
    }

    /// Notes that the phase `name` begins now.
    pub fn mark(&self, name: &'static str) {
        let mut marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        marks.push((name, Instant::now()));
    }

    /// When counting began (second 0 of the timeline).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Requests by the second they were answered in.
    pub fn timeline(&self) -> Vec<EndpointStats> {
        self.timeline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Phase names and their start, in seconds since `started`.
    pub fn marks(&self) -> Vec<(&'static str, f64)> {
        let marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
        marks
            .iter()
            .map(|(name, at)| (*name, at.duration_since(self.started).as_secs_f64()))
            .collect()
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, EndpointStats> {
        self.endpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn count(e: &mut EndpointStats, outcome: &Outcome, latency: Duration, expected: bool) {
    match outcome {
        Outcome::Status(s) => *e.statuses.entry(*s).or_default() += 1,
        Outcome::Error(HttpError::Timeout) => e.timeouts += 1,
        Outcome::Error(_) => e.transport_errors += 1,
    }
    if !expected {
        e.failed += 1;
    }
    e.latency.record(latency);
}

/// All endpoints whose label satisfies `pick`, merged into one.
pub fn merged(
    map: &BTreeMap<&'static str, EndpointStats>,
    pick: impl Fn(&str) -> bool,
) -> EndpointStats {
    let mut all = EndpointStats::default();
    for (_, e) in map.iter().filter(|(l, _)| pick(l)) {
        all.merge(e);
    }
    all
}

/// A fixed-width table of endpoints: count, statuses, rate, latencies.
pub fn table(map: &BTreeMap<&'static str, EndpointStats>, window_s: f64) -> String {
    let mut out = format!(
        "{:<42} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}  statuses\n",
        "endpoint", "count", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9", "max ms", "failed"
    );
    for (label, e) in map {
        out.push_str(&row(label, e, window_s));
    }
    out
}

pub fn row(label: &str, e: &EndpointStats, window_s: f64) -> String {
    let h = &e.latency;
    format!(
        "{:<42} {:>7} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}  {}\n",
        label,
        e.count(),
        rate(e.count(), window_s),
        h.quantile_ms(0.5),
        h.quantile_ms(0.9),
        h.quantile_ms(0.99),
        h.quantile_ms(0.999),
        h.max_ms(),
        e.failed,
        e.statuses_text()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let s = Stats::new();
        s.record("a", Outcome::Status(201), Duration::from_millis(2), true);
        s.record("a", Outcome::Status(503), Duration::from_millis(4), false);
        s.record(
            "b",
            Outcome::Error(&HttpError::Timeout),
            Duration::from_secs(1),
            false,
        );
        let snap = s.snapshot();
        assert_eq!(snap["a"].count(), 2);
        assert_eq!(snap["a"].count_5xx(), 1);
        assert_eq!(snap["a"].failed, 1);
        assert_eq!(snap["b"].timeouts, 1);
        let all = merged(&snap, |_| true);
        assert_eq!(all.count(), 3);
        assert_eq!(all.failed, 2);
        assert_eq!(all.statuses_text(), "201:1 503:1 timeout:1");
    }
}

//! Capacity: the highest open-model arrival rate a stack holds. The rate
//! starts at `start_rate` and grows by `factor` per step of `step` length
//! until the p99 latency (from the scheduled start) exceeds the bound, a
//! request fails, or `max_rate` is passed. The last step that passed is
//! the capacity.
//!
//! With fixed `rates` instead, every listed rate runs whatever the step
//! before it showed: the overload test, which steps well past capacity to
//! see how the stack refuses the excess. Each step then also splits its
//! answers into admitted (a status the scenario expects), refused (429 or
//! 503: the stack said no, quickly or not) and the rest, with a latency
//! histogram each; goodput is the admitted answers per second.
//!
//! A failed step may be the load generator's fault, not the stack's: each
//! step records the scheduler's dispatch lag and the generator's CPU use,
//! and the result says when the generator (or the machine) was the limit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::histogram::Histogram;
use crate::http::{Client, Method, Target};
use crate::open_model::{self, Pool};
use crate::stats::{latency_json, Outcome, Stats};
use crate::sysinfo::{CpuUse, CpuWindow};
use crate::workload::{uuid_v4, PlaceRequest, PRODUCT_IDS};

/// A generator whose dispatch lag p99 exceeds this could not keep its
/// schedule: its latencies include its own delay.
pub const GENERATOR_LAG_P99_MS: f64 = 5.0;
/// A generator using this share of its worker threads' cores is saturated.
pub const GENERATOR_CPU_SHARE: f64 = 0.9;
/// The machine counts as saturated above this share of all cores busy.
pub const MACHINE_BUSY_SHARE: f64 = 0.95;
/// Stock per product the ample-stock scenario needs (the bench seed sets 1,000,000).
pub const AMPLE_STOCK_MIN: i64 = 100_000;
/// How long a stack may take to answer again after an overloaded step.
pub const RECOVERY_WAIT: Duration = Duration::from_secs(60);
/// SQL of the bench seed: every product gets ample stock.
pub const BENCH_SEED_SQL: &str =
    "UPDATE products SET initial_stock = 1000000, current_stock = 1000000";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// GET /products/{id}, ids 1..5.
    Products,
    /// POST /orders with the stress mix (toward scarce products, 1-5
    /// units): once stock is gone, most answers are 409.
    OrdersMix,
    /// POST /orders of 1 unit on products with ample stock: every answer a
    /// 201, a durable write each.
    OrdersAmple,
}

impl Scenario {
    pub fn parse(s: &str) -> Result<Scenario, String> {
        match s {
            "products" => Ok(Scenario::Products),
            "orders-mix" => Ok(Scenario::OrdersMix),
            "orders-ample" => Ok(Scenario::OrdersAmple),
            _ => Err(format!(
                "unknown scenario '{s}' (products, orders-mix, orders-ample)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Products => "products",
            Scenario::OrdersMix => "orders-mix",
            Scenario::OrdersAmple => "orders-ample",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Products => "GET /products/{id}",
            Scenario::OrdersMix => "POST /orders, realistic mix (most hit sold-out products)",
            Scenario::OrdersAmple => "POST /orders, ample stock (every order a durable write)",
        }
    }

    fn expected(self) -> &'static [u16] {
        match self {
            Scenario::Products => &[200],
            Scenario::OrdersMix => &[201, 409, 200],
            Scenario::OrdersAmple => &[201, 200],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub start_rate: f64,
    pub factor: f64,
    pub step: Duration,
    pub pause: Duration,
    pub p99_bound_ms: f64,
    pub max_rate: f64,
    pub max_conns: usize,
    pub timeout: Duration,
    pub threads: usize,
    /// Times a failed step is run again before it counts.
    pub retries: usize,
    /// Fixed rates, each run once whatever the step before showed; empty:
    /// step up by `factor` until a step fails.
    pub rates: Vec<f64>,
}

/// Statuses that mean the stack refused a request for load: 429 (too many
/// from one address) and 503 (no capacity left).
pub const REFUSAL_STATUSES: [u16; 2] = [429, 503];

#[derive(Clone, Debug)]
pub struct Step {
    pub rate: f64,
    pub completed: u64,
    pub achieved_per_s: f64,
    pub latency: Histogram,
    /// Answers with a status the scenario expects, and their latency.
    pub admitted: Histogram,
    /// 429 and 503 answers, and their latency.
    pub refused: Histogram,
    pub statuses: BTreeMap<u16, u64>,
    pub failed: u64,
    pub dispatch_lag: Histogram,
    pub conn_wait: Histogram,
    pub conns_opened: u64,
    pub unfinished: u64,
    pub cpu: CpuUse,
    /// Why the step failed; None = held.
    pub failure: Option<String>,
    pub generator_limited: bool,
    pub machine_saturated: bool,
}

impl Step {
    /// Admitted answers per second of the step's schedule.
    pub fn goodput_per_s(&self) -> f64 {
        if self.completed == 0 {
            return 0.0;
        }
        self.achieved_per_s * self.admitted.count() as f64 / self.completed as f64
    }
}

#[derive(Clone, Debug)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub steps: Vec<Step>,
    pub stop_reason: String,
}

impl ScenarioResult {
    /// The highest rate that held.
    pub fn held(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|s| s.failure.is_none())
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
    }

    /// The generator (not the stack) limited the step that ended the run.
    pub fn generator_limited(&self) -> bool {
        self.stop_reason.contains("LOAD GENERATOR")
    }
}

/// Waits until GET /products/1 answers 200 again, at most [`RECOVERY_WAIT`].
pub async fn recover(target: &Target) -> Result<(), String> {
    let start = Instant::now();
    let mut c = Client::new(target.clone(), Duration::from_secs(2));
    let mut waited = false;
    loop {
        let last = match c.send(Method::Get, "/products/1", None).await {
            Ok(r) if r.status == 200 => break,
            Ok(r) => format!("status {}", r.status),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= RECOVERY_WAIT {
            return Err(format!(
                "the stack did not recover within {RECOVERY_WAIT:?}: {last}"
            ));
        }
        if !waited {
            println!("  waiting for the stack to answer again (GET /products/1: {last})");
            waited = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if waited {
        println!(
            "  the stack answers again after {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Why a failed step ended the run, and whose limit it was.
pub fn stop_reason(step: &Step, cfg: &Config) -> String {
    let why = step.failure.clone().unwrap_or_default();
    let rate = step.rate;
    let server_queued = step.conn_wait.quantile_ms(0.99) > cfg.p99_bound_ms / 2.0;
    match (step.generator_limited, server_queued) {
        (false, _) => format!("{why} at {rate:.0}/s: the stack's limit"),
        (true, true) => format!(
            "{why} at {rate:.0}/s: the stack's limit (requests queued for busy connections), but the load generator was also late (machine {:.0} % busy): approximate",
            step.cpu.machine_busy * 100.0
        ),
        (true, false) => format!(
            "{why} at {rate:.0}/s: the LOAD GENERATOR was the limit (dispatch lag p99 {:.1} ms, {:.2} cores, machine {:.0} % busy): the capacity is at least the rate held",
            step.dispatch_lag.quantile_ms(0.99),
            step.cpu.generator_cores,
            step.cpu.machine_busy * 100.0
        ),
    }
}

/// Judges a measured step against the bound.
pub fn judge(step: &mut Step, cfg: &Config) {
    let threads = cfg.threads.max(1) as f64;
    step.generator_limited = step.dispatch_lag.quantile_ms(0.99) > GENERATOR_LAG_P99_MS
        || step.cpu.generator_cores >= GENERATOR_CPU_SHARE * threads;
    step.machine_saturated = step.cpu.machine_busy >= MACHINE_BUSY_SHARE;
    let p99 = step.latency.quantile_ms(0.99);
    step.failure = if step.failed > 0 {
        Some(format!("{} failed requests", step.failed))
    } else if step.unfinished > 0 {
        Some(format!("{} requests unfinished", step.unfinished))
    } else if p99 > cfg.p99_bound_ms {
        Some(format!("p99 {p99:.1} ms > {} ms", cfg.p99_bound_ms))
    } else {
        None
    };
}

/// Steps the rate up until a step fails; prints each step as it ends.
pub async fn run(target: &Target, scenario: Scenario, cfg: &Config) -> ScenarioResult {
    let pool = Arc::new(Pool::new(target.clone(), cfg.max_conns, cfg.timeout));
    let rng = Arc::new(Mutex::new(fastrand::Rng::new()));
    let mut result = ScenarioResult {
        scenario,
        steps: Vec::new(),
        stop_reason: String::new(),
    };
    println!("{}", step_header());
    if !cfg.rates.is_empty() {
        for (i, &rate) in cfg.rates.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(cfg.pause).await;
                if let Err(e) = recover(target).await {
                    result.stop_reason = e;
                    return result;
                }
            }
            let step = run_step(&pool, &rng, scenario, rate, cfg).await;
            println!("{}", step_row(&step));
            result.steps.push(step);
        }
        result.stop_reason = format!("ran the {} fixed rates", cfg.rates.len());
        return result;
    }
    let mut rate = cfg.start_rate;
    loop {
        if rate > cfg.max_rate {
            result.stop_reason = format!("reached --max-rate {}", cfg.max_rate);
            break;
        }
        let mut step = run_step(&pool, &rng, scenario, rate, cfg).await;
        println!("{}", step_row(&step));
        // A shared machine stalls now and then (an fsync, a neighbour):
        // a failed step counts only when it fails again.
        for _ in 0..cfg.retries {
            if step.failure.is_none() {
                break;
            }
            result.steps.push(step);
            tokio::time::sleep(cfg.pause).await;
            if let Err(e) = recover(target).await {
                result.stop_reason = e;
                return result;
            }
            step = run_step(&pool, &rng, scenario, rate, cfg).await;
            println!("{} (retry)", step_row(&step));
        }
        let failure = step.failure.clone();
        let reason = stop_reason(&step, cfg);
        result.steps.push(step);
        if failure.is_some() {
            result.stop_reason = reason;
            break;
        }
        rate = (rate * cfg.factor).round();
        tokio::time::sleep(cfg.pause).await;
    }
    result
}

async fn run_step(
    pool: &Arc<Pool>,
    rng: &Arc<Mutex<fastrand::Rng>>,
    scenario: Scenario,
    rate: f64,
    cfg: &Config,
) -> Step {
    let stats = Arc::new(Stats::new());
    let _ = pool.take_wait();
    let opened_before = pool.opened();
    let cpu = CpuWindow::start();
    let t = Instant::now();
    let drain = cfg.timeout + Duration::from_secs(1);
    let report = {
        let (pool, rng, stats) = (Arc::clone(pool), Arc::clone(rng), Arc::clone(&stats));
        open_model::run(rate, cfg.step, drain, move |_, scheduled| {
            let (pool, stats) = (Arc::clone(&pool), Arc::clone(&stats));
            let (method, path, body) =
                request(scenario, &mut rng.lock().unwrap_or_else(|e| e.into_inner()));
            Box::pin(async move {
                let r = pool.send(method, &path, body.as_deref()).await;
                let latency = scheduled.elapsed();
                match &r {
                    Ok(resp) => {
                        let ok = scenario.expected().contains(&resp.status);
                        stats.record(scenario.name(), Outcome::Status(resp.status), latency, ok);
                        let class = if ok {
                            Some(ADMITTED)
                        } else if REFUSAL_STATUSES.contains(&resp.status) {
                            Some(REFUSED)
                        } else {
                            None
                        };
                        if let Some(class) = class {
                            stats.record(class, Outcome::Status(resp.status), latency, ok);
                        }
                    }
                    Err(e) => stats.record(scenario.name(), Outcome::Error(e), latency, false),
                }
            })
        })
        .await
    };
    let elapsed_s = t.elapsed().as_secs_f64();
    let mut snapshot = stats.snapshot();
    let e = snapshot.remove(scenario.name()).unwrap_or_default();
    let mut class = |label| snapshot.remove(label).unwrap_or_default().latency;
    let mut step = Step {
        rate,
        completed: e.count(),
        achieved_per_s: e.count() as f64 / elapsed_s.max(1e-3),
        latency: e.latency.clone(),
        admitted: class(ADMITTED),
        refused: class(REFUSED),
        statuses: e.statuses.clone(),
        failed: e.failed + report.unfinished,
        dispatch_lag: report.dispatch_lag,
        conn_wait: pool.take_wait(),
        conns_opened: pool.opened() - opened_before,
        unfinished: report.unfinished,
        cpu: cpu.finish(),
        failure: None,
        generator_limited: false,
        machine_saturated: false,
    };
    judge(&mut step, cfg);
    step
}

/// Stats labels of the two classes of answers an overload step tells apart.
const ADMITTED: &str = "admitted";
const REFUSED: &str = "refused";

fn request(scenario: Scenario, rng: &mut fastrand::Rng) -> (Method, String, Option<Vec<u8>>) {
    match scenario {
        Scenario::Products => {
            let id = PRODUCT_IDS[rng.usize(..PRODUCT_IDS.len())];
            (Method::Get, format!("/products/{id}"), None)
        }
        Scenario::OrdersMix => {
            let req = PlaceRequest::random(rng, "capacity", 5);
            (Method::Post, "/orders".into(), Some(req.body()))
        }
        Scenario::OrdersAmple => {
            let req = PlaceRequest {
                key: uuid_v4(rng),
                product_id: PRODUCT_IDS[rng.usize(..PRODUCT_IDS.len())],
                customer_id: "capacity".into(),
                quantity: 1,
            };
            (Method::Post, "/orders".into(), Some(req.body()))
        }
    }
}

pub fn step_header() -> String {
    format!(
        "  {:>8} {:>9} {:>8} {:>8} {:>8} {:>6} {:>9} {:>9} {:>6} {:>6} {:>6}  {}",
        "rate/s",
        "achieved",
        "p50 ms",
        "p99 ms",
        "max ms",
        "failed",
        "lag p99",
        "connwait",
        "conns",
        "gen",
        "mach",
        "verdict / statuses"
    )
}

pub fn step_row(s: &Step) -> String {
    let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let mut verdict = match &s.failure {
        None => "held".to_owned(),
        Some(why) => format!("FAILED: {why}"),
    };
    if s.generator_limited {
        verdict.push_str(" [generator limited]");
    }
    if s.machine_saturated {
        verdict.push_str(" [machine saturated]");
    }
    format!(
        "  {:>8.0} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>9.2} {:>9.2} {:>6} {:>6.2} {:>5.0}%  {verdict}  {}",
        s.rate,
        s.achieved_per_s,
        s.latency.quantile_ms(0.5),
        s.latency.quantile_ms(0.99),
        s.latency.max_ms(),
        s.failed,
        s.dispatch_lag.quantile_ms(0.99),
        s.conn_wait.quantile_ms(0.99),
        s.conns_opened,
        s.cpu.generator_cores,
        s.cpu.machine_busy * 100.0,
        statuses.join(" ")
    )
}

/// The overload view of fixed-rate steps: goodput, admitted latency,
/// refusals and their latency, everything else.
pub fn overload_table(steps: &[Step]) -> String {
    let mut out = format!(
        "  {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {}\n",
        "rate/s",
        "achieved",
        "goodput",
        "adm p50",
        "adm p99",
        "refused",
        "ref p50",
        "ref p99",
        "other",
        "statuses"
    );
    for s in steps {
        let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let other = s.completed + s.unfinished - s.admitted.count() - s.refused.count();
        out.push_str(&format!(
            "  {:>8.0} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>8} {:>8.2} {:>8.2} {:>8}  {}\n",
            s.rate,
            s.achieved_per_s,
            s.goodput_per_s(),
            s.admitted.quantile_ms(0.5),
            s.admitted.quantile_ms(0.99),
            s.refused.count(),
            s.refused.quantile_ms(0.5),
            s.refused.quantile_ms(0.99),
            other,
            statuses.join(" ")
        ));
    }
    out
}

pub fn step_json(s: &Step) -> Value {
    json!({
        "rate_per_s": s.rate,
        "completed": s.completed,
        "achieved_per_s": s.achieved_per_s,
        "latency_ms": latency_json(&s.latency),
        "statuses": s.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "goodput_per_s": s.goodput_per_s(),
        "admitted": s.admitted.count(),
        "admitted_latency_ms": latency_json(&s.admitted),
        "refused": s.refused.count(),
        "refused_latency_ms": latency_json(&s.refused),
        "failed": s.failed,
        "unfinished": s.unfinished,
        "dispatch_lag_ms": latency_json(&s.dispatch_lag),
        "connection_wait_ms": latency_json(&s.conn_wait),
        "connections_opened": s.conns_opened,
        "generator_cores": s.cpu.generator_cores,
        "machine_busy": s.cpu.machine_busy,
        "generator_limited": s.generator_limited,
        "machine_saturated": s.machine_saturated,
        "failure": s.failure,
    })
}

pub fn result_json(r: &ScenarioResult) -> Value {
    let held = r.held();
    json!({
        "scenario": r.scenario.name(),
        "description": r.scenario.describe(),
        "held_rate_per_s": held.map(|s| s.rate),
        "held_achieved_per_s": held.map(|s| s.achieved_per_s),
        "held_p99_ms": held.map(|s| s.latency.quantile_ms(0.99)),
        "stop_reason": r.stop_reason,
        "generator_limited": r.generator_limited(),
        "steps": r.steps.iter().map(step_json).collect::<Vec<_>>(),
    })
}

/// One scenario of a capacity summary, as read back from its JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub scenario: String,
    pub rate: Option<f64>,
    pub p99_ms: Option<f64>,
    pub generator_limited: bool,
}

pub fn read_summary(v: &Value) -> Vec<Held> {
    v.get("scenarios")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| Held {
                    scenario: s
                        .get("scenario")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                    rate: s.get("held_rate_per_s").and_then(Value::as_f64),
                    p99_ms: s.get("held_p99_ms").and_then(Value::as_f64),
                    generator_limited: s
                        .get("generator_limited")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The ours/peer table of two capacity summaries.
pub fn ratio_table(ours: &[Held], peer: &[Held], labels: (&str, &str)) -> String {
    let mut out = format!(
        "{:<14} {:>14} {:>14} {:>10}  notes\n",
        "scenario",
        format!("{} req/s", labels.0),
        format!("{} req/s", labels.1),
        "ratio"
    );
    for o in ours {
        let p = peer.iter().find(|p| p.scenario == o.scenario);
        let fmt = |h: Option<&Held>| match h.and_then(|h| h.rate) {
            Some(r) => format!(
                "{r:.0}{}",
                if h.is_some_and(|h| h.generator_limited) {
                    "+"
                } else {
                    ""
                }
            ),
            None => "none held".to_owned(),
        };
        let ratio = match (o.rate, p.and_then(|p| p.rate)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".to_owned(),
        };
        let mut notes = Vec::new();
        if o.generator_limited || p.is_some_and(|p| p.generator_limited) {
            notes.push("+ = load generator was the limit: a lower bound");
        }
        out.push_str(&format!(
            "{:<14} {:>14} {:>14} {:>10}  {}\n",
            o.scenario,
            fmt(Some(o)),
            fmt(p),
            ratio,
            notes.join("; ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            start_rate: 100.0,
            factor: 1.5,
            step: Duration::from_secs(1),
            pause: Duration::ZERO,
            p99_bound_ms: 50.0,
            max_rate: 1e6,
            max_conns: 10,
            timeout: Duration::from_secs(1),
            threads: 1,
            retries: 1,
            rates: Vec::new(),
        }
    }

    fn step(p99_us: u64, failed: u64, lag_us: u64) -> Step {
        let mut latency = Histogram::new();
        latency.record_us(p99_us);
        let mut dispatch_lag = Histogram::new();
        dispatch_lag.record_us(lag_us);
        Step {
            rate: 100.0,
            completed: 1,
            achieved_per_s: 100.0,
            latency,
            admitted: Histogram::new(),
            refused: Histogram::new(),
            statuses: BTreeMap::new(),
            failed,
            dispatch_lag,
            conn_wait: Histogram::new(),
            conns_opened: 1,
            unfinished: 0,
            cpu: CpuUse::default(),
            failure: None,
            generator_limited: false,
            machine_saturated: false,
        }
    }

    #[test]
    fn judges_steps() {
        let mut s = step(10_000, 0, 100);
        judge(&mut s, &cfg());
        assert!(s.failure.is_none() && !s.generator_limited);
        let mut s = step(60_000, 0, 100);
        judge(&mut s, &cfg());
        assert!(s.failure.as_deref().unwrap().contains("p99"));
        let mut s = step(10_000, 3, 100);
        judge(&mut s, &cfg());
        assert!(s.failure.as_deref().unwrap().contains("failed"));
        let mut s = step(60_000, 0, 20_000);
        judge(&mut s, &cfg());
        assert!(s.generator_limited);
    }

    #[test]
    fn overload_steps_split_admitted_and_refused() {
        let mut s = step(10_000, 3, 100);
        s.completed = 10;
        s.achieved_per_s = 1000.0;
        for _ in 0..6 {
            s.admitted.record_us(20_000);
        }
        for _ in 0..3 {
            s.refused.record_us(1_000);
        }
        assert!((s.goodput_per_s() - 600.0).abs() < 1e-9);
        let t = overload_table(&[s]);
        let row = t.lines().nth(1).unwrap();
        let cols: Vec<&str> = row.split_whitespace().collect();
        // rate, achieved, goodput, adm p50, adm p99, refused, ref p50, ref p99, other
        assert_eq!(cols[2], "600.0", "{t}");
        assert_eq!(cols[5], "3", "{t}");
        assert_eq!(cols[8], "1", "{t}");
        let mut empty = step(1_000, 0, 100);
        empty.completed = 0;
        assert_eq!(empty.goodput_per_s(), 0.0);
    }

    #[test]
    fn ratios_of_two_summaries() {
        let ours = json!({"scenarios": [
            {"scenario": "products", "held_rate_per_s": 3000.0, "held_p99_ms": 4.0, "generator_limited": false},
            {"scenario": "orders-ample", "held_rate_per_s": 900.0, "generator_limited": true},
        ]});
        let peer = json!({"scenarios": [
            {"scenario": "products", "held_rate_per_s": 1000.0, "generator_limited": false},
            {"scenario": "orders-ample", "held_rate_per_s": null, "generator_limited": false},
        ]});
        let t = ratio_table(&read_summary(&ours), &read_summary(&peer), ("ours", "peer"));
        assert!(t.contains("3.00x"), "{t}");
        assert!(t.contains("900+"), "{t}");
        assert!(t.contains("none held"), "{t}");
    }
}

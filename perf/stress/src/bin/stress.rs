//! The challenge's stress test against a running stack; see perf/README.md.
//!
//!   stress [--url http://127.0.0.1:9999] [--burst-secs 60] [--cancel-secs 30]
//!          [--vus 50] [--replay-vus 10] [--cancel-vus 30] [--wave-order-vus 10]
//!          [--think-ms 200] [--rate 50] [--max-conns 256] [--quantity-max 5]
//!          [--cancel-fraction 0.3] [--dup-cancels 3] [--dup-keys 3]
//!          [--timeout-ms 10000] [--warmup-secs 60] [--p99-ms 500]
//!          [--failed-pct 1] [--verify-max 20000] [--threads 1] [--seed N]
//!          [--peer] [--json PATH] [--report PATH]
//!
//! `--report PATH` writes the run as a self-contained HTML page: requests
//! per second by status class, latency p50/p99 per second, stock per
//! product over time (phases marked), and the status mix.
//!
//! Exit status: 0 when every rule and criterion passes, 1 when one fails,
//! 2 when the run could not be made (bad options, stack not healthy).

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flashsale_stress::args::Args;
use flashsale_stress::http::Target;
use flashsale_stress::ledger::RuleReport;
use flashsale_stress::open_model::OpenReport;
use flashsale_stress::scenario::{self, Ctx, Options};
use flashsale_stress::stats::{self, latency_json, EndpointStats};
use flashsale_stress::sysinfo::{CpuUse, CpuWindow};
use flashsale_stress::workload::ProductView;
use serde_json::{json, Value};

const BURST_SECS_MAX: u64 = 3600;
const VUS_MAX: usize = 5000;
const RATE_MAX: f64 = 100_000.0;

struct Cli {
    url: String,
    opts: Options,
    threads: usize,
    json: Option<String>,
    report: Option<String>,
    p99_bound_ms: f64,
    failed_pct_max: f64,
}

fn parse_cli() -> Result<Cli, String> {
    let mut a = Args::parse(std::env::args().skip(1), &["peer"])?;
    let d = Options::default();
    let secs = |v: u64| Duration::from_secs(v.min(BURST_SECS_MAX));
    let ms = Duration::from_millis;
    let opts = Options {
        burst: secs(a.get("burst-secs", d.burst.as_secs())?),
        cancel: secs(a.get("cancel-secs", d.cancel.as_secs())?),
        vus: a.get("vus", d.vus)?.min(VUS_MAX),
        replay_vus: a.get("replay-vus", d.replay_vus)?.min(VUS_MAX),
        cancel_vus: a.get("cancel-vus", d.cancel_vus)?.min(VUS_MAX),
        wave_order_vus: a.get("wave-order-vus", d.wave_order_vus)?.min(VUS_MAX),
        think: ms(a.get("think-ms", d.think.as_millis() as u64)?),
        rate: a.get("rate", d.rate)?.clamp(0.0, RATE_MAX),
        max_conns: a.get("max-conns", d.max_conns)?,
        quantity_max: a.get("quantity-max", d.quantity_max)?,
        cancel_fraction: a.get("cancel-fraction", d.cancel_fraction)?.clamp(0.0, 1.0),
        dup_cancels: a.get("dup-cancels", d.dup_cancels)?.clamp(2, 16),
        dup_keys: a.get("dup-keys", d.dup_keys)?.clamp(2, 16),
        timeout: ms(a.get("timeout-ms", d.timeout.as_millis() as u64)?),
        warmup: secs(a.get("warmup-secs", d.warmup.as_secs())?),
        peer: a.flag("peer"),
        seed: a.get("seed", 0)?,
        verify_max: a.get("verify-max", d.verify_max)?,
    };
    let cli = Cli {
        url: a.get("url", "http://127.0.0.1:9999".to_owned())?,
        threads: a.get("threads", 1usize)?.clamp(1, 64),
        json: a.opt("json"),
        report: a.opt("report"),
        p99_bound_ms: a.get("p99-ms", 500.0)?,
        failed_pct_max: a.get("failed-pct", 1.0)?,
        opts,
    };
    let rest = a.finish()?;
    if !rest.is_empty() {
        return Err(format!("unexpected argument(s): {}", rest.join(" ")));
    }
    Ok(cli)
}

fn usage() -> String {
    let src = include_str!("stress.rs");
    src.lines()
        .skip(2)
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stress: {e}");
            return ExitCode::from(2);
        }
    };
    let target = match Target::parse(&cli.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("stress: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads)
        .enable_all()
        .build();
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stress: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(&cli, target)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("stress: {e}");
            ExitCode::from(2)
        }
    }
}

struct Criterion {
    name: &'static str,
    passed: bool,
    detail: String,
}

/// What the stack showed before the load: the stock and listings the
/// stock rules are checked against.
struct Baseline {
    products: BTreeMap<i64, ProductView>,
    /// Orders listed already (a stack that was not fresh).
    preexisting: HashSet<String>,
}

impl Baseline {
    /// No order listed and every product's stock untouched.
    fn fresh(&self) -> bool {
        self.products
            .values()
            .all(|p| p.current_stock == p.initial_stock)
            && self.preexisting.is_empty()
    }
}

/// How the burst and the cancellation wave went.
struct Phases {
    burst_s: f64,
    wave_s: f64,
    /// The open model's schedule (None when `--rate` is 0).
    open: Option<OpenReport>,
    /// CPU use over both phases.
    cpu: CpuUse,
}

impl Phases {
    /// The burst and the wave: the window of the throughput figures.
    fn window_s(&self) -> f64 {
        self.burst_s + self.wave_s
    }
}

/// The client's books at the end (after validation settled lost answers).
struct LedgerFacts {
    orders: usize,
    units: i64,
    cancelled_orders: usize,
    stock_min: BTreeMap<i64, i64>,
}

/// Everything a run found, gathered after validation: what the text report
/// prints and the JSON summary holds.
struct RunReport {
    fresh: bool,
    phases: Phases,
    /// Requests of the burst and the wave, per endpoint.
    load: BTreeMap<&'static str, EndpointStats>,
    /// `load` merged: every request, and every POST /orders.
    all: EndpointStats,
    placing: EndpointStats,
    /// Warm-up, baseline and validation requests (not in the criteria).
    checks: BTreeMap<&'static str, EndpointStats>,
    ledger: LedgerFacts,
    rules: Vec<RuleReport>,
    criteria: Vec<Criterion>,
    passed: bool,
}

impl RunReport {
    fn gather(cli: &Cli, ctx: &Ctx, fresh: bool, phases: Phases, rules: Vec<RuleReport>) -> Self {
        let load = ctx.stats.snapshot();
        let checks = ctx.check_stats.snapshot();
        let all = stats::merged(&load, |_| true);
        let placing = stats::merged(&load, |l| {
            l.starts_with("POST /orders") && !l.contains("/cancel")
        });
        let ledger = {
            let l = ctx.ledger();
            LedgerFacts {
                orders: l.order_count(),
                units: l.orders().map(|o| o.quantity).sum::<i64>(),
                cancelled_orders: l.orders().filter(|o| o.cancelled()).count(),
                stock_min: l.stock_min().clone(),
            }
        };
        let criteria = criteria(cli, &all, &placing, &checks, &rules);
        let passed = criteria.iter().all(|c| c.passed);
        RunReport {
            fresh,
            phases,
            load,
            all,
            placing,
            checks,
            ledger,
            rules,
            criteria,
            passed,
        }
    }
}

async fn run(cli: &Cli, target: Target) -> Result<bool, String> {
    let o = &cli.opts;
    let ctx = Ctx::new(o.clone(), target);
    println!(
        "stress: {}  burst {} s ({} users, {} replay users, open model {}/s), cancel wave {} s ({} cancel users, {} order users, the replay users){}",
        cli.url,
        o.burst.as_secs(),
        o.vus,
        o.replay_vus,
        o.rate,
        o.cancel.as_secs(),
        o.cancel_vus,
        o.wave_order_vus,
        if o.peer { ", challenge.md contract only (--peer)" } else { "" }
    );
    let baseline = warm_up(&ctx).await?;
    let fresh = baseline.fresh();
    let phases = burst_and_wave(&ctx).await;
    let (_final_state, rules) =
        scenario::validate(&ctx, baseline.products, baseline.preexisting).await?;
    let report = RunReport::gather(cli, &ctx, fresh, phases, rules);
    print_report(&report);

    if let Some(path) = &cli.json {
        let summary = summary_json(cli, &report);
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("summary written to {path}");
    }
    if let Some(path) = &cli.report {
        let html = report_page(cli, &ctx, &report);
        std::fs::write(path, html).map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("report written to {path}");
    }
    Ok(report.passed)
}

/// The run as pictures (`--report`).
fn report_page(cli: &Cli, ctx: &Arc<Ctx>, r: &RunReport) -> String {
    use flashsale_stress::report::{line_chart, page, Series};
    let timeline = ctx.stats.timeline();
    let marks = ctx.stats.marks();
    let per_second = |pick: &dyn Fn(&EndpointStats) -> f64| -> Vec<(f64, f64)> {
        timeline
            .iter()
            .enumerate()
            .map(|(second, e)| (second as f64 + 0.5, pick(e)))
            .collect()
    };
    let class = |low: u16, high: u16| {
        move |e: &EndpointStats| {
            e.statuses
                .iter()
                .filter(|(s, _)| (low..high).contains(*s))
                .map(|(_, n)| *n as f64)
                .sum::<f64>()
        }
    };
    let throughput = vec![
        Series {
            name: "2xx".into(),
            points: per_second(&class(200, 300)),
        },
        Series {
            name: "4xx".into(),
            points: per_second(&class(400, 500)),
        },
        Series {
            name: "5xx".into(),
            points: per_second(&class(500, 600)),
        },
        Series {
            name: "errors".into(),
            points: per_second(&|e: &EndpointStats| (e.timeouts + e.transport_errors) as f64),
        },
    ];
    let answered = |e: &EndpointStats| e.latency.count() > 0;
    let latency = |q: f64| -> Vec<(f64, f64)> {
        timeline
            .iter()
            .enumerate()
            .filter(|(_, e)| answered(e))
            .map(|(second, e)| (second as f64 + 0.5, e.latency.quantile_ms(q)))
            .collect()
    };
    let latencies = vec![
        Series {
            name: "p50".into(),
            points: latency(0.5),
        },
        Series {
            name: "p99".into(),
            points: latency(0.99),
        },
    ];
    let started = ctx.stats.started();
    let mut stock: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    for &(at, product, current) in ctx.ledger().stock_over_time() {
        let t = at.saturating_duration_since(started).as_secs_f64();
        stock.entry(product).or_default().push((t, current as f64));
    }
    let stock: Vec<Series> = stock
        .into_iter()
        .map(|(product, points)| Series {
            name: format!("product {product}"),
            points,
        })
        .collect();
    let charts = [
        line_chart(
            "Requests answered per second, by status class",
            "req/s",
            &throughput,
            &marks,
        ),
        line_chart("Latency per second", "ms", &latencies, &marks),
        line_chart(
            "Stock per product (GET /products samples)",
            "units",
            &stock,
            &marks,
        ),
    ];
    let all = &r.all;
    let mut table = vec![vec![
        "status".to_string(),
        "answers".to_string(),
        "share".to_string(),
    ]];
    let total = all.count().max(1) as f64;
    for (status, n) in &all.statuses {
        table.push(vec![
            status.to_string(),
            n.to_string(),
            format!("{:.1} %", *n as f64 / total * 100.0),
        ]);
    }
    let context = format!(
        "{}: {} requests, {} (burst {:.0} s, cancel wave {:.0} s; {} users, open model {}/s)",
        cli.url,
        all.count(),
        if r.passed {
            "every rule and criterion passed"
        } else {
            "FAILED"
        },
        r.phases.burst_s,
        r.phases.wave_s,
        cli.opts.vus,
        cli.opts.rate
    );
    page("flashsale stress run", &context, &charts, &table)
}

/// Phase 1: waits for the stack, then reads the baseline.
async fn warm_up(ctx: &Arc<Ctx>) -> Result<Baseline, String> {
    let healthy_after = scenario::warm_up(ctx).await?;
    println!(
        "phase 1 warm-up: GET /products/1 answered 200 after {:.1} s",
        healthy_after.as_secs_f64()
    );
    let baseline = Baseline {
        products: scenario::fetch_products(ctx).await?,
        preexisting: scenario::fetch_listings(ctx)
            .await?
            .into_values()
            .flatten()
            .map(|o| o.order_id)
            .collect(),
    };
    let stock_text: Vec<String> = baseline
        .products
        .values()
        .map(|p| format!("{}:{}/{}", p.id, p.current_stock, p.initial_stock))
        .collect();
    println!(
        "baseline: stock (current/initial) {}; {}",
        stock_text.join(" "),
        if baseline.fresh() {
            "fresh stack".to_owned()
        } else {
            format!(
                "NOT fresh ({} orders listed already): stock is checked relative to this start",
                baseline.preexisting.len()
            )
        }
    );
    Ok(baseline)
}

/// Phases 2 and 3: the flash-sale burst, then the cancellation wave.
async fn burst_and_wave(ctx: &Arc<Ctx>) -> Phases {
    let cpu = CpuWindow::start();
    ctx.stats.mark("burst");
    let t_burst = Instant::now();
    let open = scenario::burst(ctx).await;
    let burst_s = t_burst.elapsed().as_secs_f64();
    let (orders_after_burst, units_after_burst) = {
        let l = ctx.ledger();
        (l.order_count(), l.orders().map(|o| o.quantity).sum::<i64>())
    };
    println!("phase 2 burst: {burst_s:.1} s, {orders_after_burst} orders confirmed ({units_after_burst} units)");
    if let Some(r) = &open {
        println!(
            "  open model: {} scheduled at {}/s, dispatch lag p99 {:.2} ms max {:.2} ms, {} unfinished",
            r.scheduled,
            ctx.opts.rate,
            r.dispatch_lag.quantile_ms(0.99),
            r.dispatch_lag.max_ms(),
            r.unfinished
        );
    }
    ctx.stats.mark("cancel wave");
    let t_wave = Instant::now();
    let chosen = scenario::cancel_wave(ctx).await;
    let wave_s = t_wave.elapsed().as_secs_f64();
    ctx.stats.mark("end");
    let cpu = cpu.finish();
    let cancelled = ctx.ledger().orders().filter(|o| o.cancelled()).count();
    println!(
        "phase 3 cancellation wave: {wave_s:.1} s, {chosen} of {orders_after_burst} confirmed orders chosen, {cancelled} cancelled"
    );
    println!(
        "  load generator: {:.2} cores on average; machine {:.0} % busy ({} cores)",
        cpu.generator_cores,
        cpu.machine_busy * 100.0,
        flashsale_stress::sysinfo::cpu_count()
    );
    Phases {
        burst_s,
        wave_s,
        open,
        cpu,
    }
}

/// The text report after validation: request tables, rules, criteria.
fn print_report(r: &RunReport) {
    let window_s = r.phases.window_s();
    println!(
        "\nrequests of the burst and the wave (latency from send; open model: from schedule):"
    );
    print!("{}", stats::table(&r.load, window_s));
    print!("{}", stats::row("ALL REQUESTS", &r.all, window_s));
    print!(
        "{}",
        stats::row("ORDER PLACEMENT (every POST /orders)", &r.placing, window_s)
    );
    println!("\nwarm-up, baseline and validation requests (not in the criteria):");
    print!("{}", stats::table(&r.checks, window_s));

    println!("\nconsistency rules (challenge.md), from the client's ledger:");
    for rule in &r.rules {
        println!(
            "  {} {}: {}",
            pass_word(rule.passed),
            rule.rule.name(),
            rule.checked
        );
        for v in &rule.violations {
            println!("      - {v}");
        }
        if rule.violation_count > rule.violations.len() {
            println!(
                "      ... {} more",
                rule.violation_count - rule.violations.len()
            );
        }
    }
    println!("pass criteria:");
    for c in &r.criteria {
        println!("  {} {}: {}", pass_word(c.passed), c.name, c.detail);
    }
    println!("RESULT: {}", pass_word(r.passed));
}

fn pass_word(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn criteria(
    cli: &Cli,
    all: &EndpointStats,
    placing: &EndpointStats,
    checks: &BTreeMap<&'static str, EndpointStats>,
    rules: &[RuleReport],
) -> Vec<Criterion> {
    // Startup is the warm-up; the validation requests count for availability.
    let after_startup = stats::merged(checks, |l| l != scenario::L_WARMUP);
    let five = all.count_5xx() + after_startup.count_5xx();
    let broken = all.transport_errors
        + all.timeouts
        + after_startup.transport_errors
        + after_startup.timeouts;
    let order_p99 = placing.latency.quantile_ms(0.99);
    let all_p99 = all.latency.quantile_ms(0.99);
    let failed_pct = if all.count() == 0 {
        100.0
    } else {
        all.failed as f64 * 100.0 / all.count() as f64
    };
    let rules_ok = rules.iter().filter(|r| r.passed).count();
    vec![
        Criterion {
            name: "availability",
            passed: five == 0 && broken == 0,
            detail: format!("{five} answers 5xx, {broken} connection errors or timeouts outside startup (must be 0)"),
        },
        Criterion {
            name: "order placement p99",
            passed: placing.count() > 0 && order_p99 < cli.p99_bound_ms,
            detail: format!("{order_p99:.1} ms over {} requests (< {} ms)", placing.count(), cli.p99_bound_ms),
        },
        Criterion {
            name: "all requests p99 (published test)",
            passed: all_p99 < cli.p99_bound_ms,
            detail: format!("{all_p99:.1} ms over {} requests (< {} ms)", all.count(), cli.p99_bound_ms),
        },
        Criterion {
            name: "failed requests (published test)",
            passed: failed_pct < cli.failed_pct_max,
            detail: format!(
                "{failed_pct:.3} % ({} of {}: errors or unexpected statuses; < {} %)",
                all.failed,
                all.count(),
                cli.failed_pct_max
            ),
        },
        Criterion {
            name: "consistency rules",
            passed: rules_ok == rules.len(),
            detail: format!("{rules_ok} of {} pass", rules.len()),
        },
    ]
}

fn summary_json(cli: &Cli, r: &RunReport) -> Value {
    let o = &cli.opts;
    let window_s = r.phases.window_s();
    let unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "tool": "flashsale-stress",
        "finished_unix_s": unix_s,
        "target": cli.url,
        "fresh_stack": r.fresh,
        "options": {
            "burst_secs": o.burst.as_secs(), "cancel_secs": o.cancel.as_secs(), "vus": o.vus,
            "replay_vus": o.replay_vus, "cancel_vus": o.cancel_vus, "wave_order_vus": o.wave_order_vus,
            "think_ms": o.think.as_millis() as u64, "rate_per_s": o.rate, "quantity_max": o.quantity_max,
            "cancel_fraction": o.cancel_fraction, "peer": o.peer, "threads": cli.threads,
        },
        "phases_s": { "burst": r.phases.burst_s, "cancel_wave": r.phases.wave_s },
        "open_model": r.phases.open.as_ref().map(|open| json!({
            "scheduled": open.scheduled,
            "unfinished": open.unfinished,
            "dispatch_lag_ms": latency_json(&open.dispatch_lag),
        })),
        "load_generator": { "cores": r.phases.cpu.generator_cores, "machine_busy": r.phases.cpu.machine_busy },
        "endpoints": r.load.iter().map(|(k, e)| e.to_json(k, window_s)).collect::<Vec<_>>(),
        "all_requests": r.all.to_json("all", window_s),
        "order_placement": r.placing.to_json("POST /orders (all)", window_s),
        "check_requests": r.checks.iter().map(|(k, e)| e.to_json(k, window_s)).collect::<Vec<_>>(),
        "ledger": {
            "orders": r.ledger.orders,
            "units": r.ledger.units,
            "cancelled_orders": r.ledger.cancelled_orders,
            "stock_min": r.ledger.stock_min.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        },
        "rules": r.rules.iter().map(|rule| json!({
            "rule": rule.rule.name(), "passed": rule.passed, "checked": rule.checked,
            "violation_count": rule.violation_count, "violations": rule.violations,
        })).collect::<Vec<_>>(),
        "criteria": r.criteria.iter().map(|c| json!({
            "criterion": c.name, "passed": c.passed, "detail": c.detail,
        })).collect::<Vec<_>>(),
        "passed": r.passed,
    })
}

//! Capacity of a running stack under the open model; see perf/README.md.
//!
//!   capacity [--url http://127.0.0.1:9999] [--scenarios products,orders-mix,orders-ample]
//!            [--start-rate 200] [--factor 1.5] [--step-secs 10] [--pause-ms 1000]
//!            [--p99-ms 50] [--max-rate 50000] [--max-conns 512] [--timeout-ms 5000]
//!            [--retries 1] [--threads 1] [--label NAME] [--json PATH] [--bench-seed-cmd 'CMD']
//!            [--rates 4000,8000,12000,16000] [--report PATH]
//!   capacity --compare OURS.json PEER.json [--labels ours,peer]
//!
//! orders-ample needs the bench seed (every product with ample stock):
//!   UPDATE products SET initial_stock = 1000000, current_stock = 1000000
//! --bench-seed-cmd runs CMD with `sh -c`, that SQL on its stdin, before
//! orders-ample when stock is short (perf/capacity passes a psql command).
//! --rates runs each listed rate once, whatever the step before showed (no
//! stepping, no retries): the overload test. Each step's answers are split
//! into admitted, refused (429/503) and the rest, printed as a table of
//! goodput and admitted and refusal latency. --report PATH writes the run
//! as one self-contained HTML page: per scenario, achieved rate and
//! goodput against the offered rate, latency p50/p99 against it, and a
//! table of the steps.
//! Exit status: 0 when the measurements ran, 2 when they could not.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flashsale_stress::args::Args;
use flashsale_stress::capacity::{self, Config, Scenario, AMPLE_STOCK_MIN, BENCH_SEED_SQL};
use flashsale_stress::http::{Client, Method, Target};
use flashsale_stress::workload::{ProductView, PRODUCT_IDS};
use serde_json::{json, Value};

/// The realistic mix needs scarce stock; more than this in total is no flash sale.
const MIX_STOCK_MAX: i64 = 10_000;
const RATE_MAX: f64 = 200_000.0;
const STEP_SECS_MAX: u64 = 600;

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    match main_result() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capacity: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage() -> String {
    include_str!("capacity.rs")
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
        .collect::<Vec<_>>()
        .join("\n")
}

fn main_result() -> Result<(), String> {
    let mut a = Args::parse(std::env::args().skip(1), &[])?;
    if let Some(ours) = a.opt("compare") {
        let labels = a.get("labels", "ours,peer".to_owned())?;
        let rest = a.finish()?;
        let [peer] = rest.as_slice() else {
            return Err("--compare OURS.json PEER.json".into());
        };
        return compare(&ours, peer, &labels);
    }
    let url = a.get("url", "http://127.0.0.1:9999".to_owned())?;
    let scenarios = a.get("scenarios", "products,orders-mix,orders-ample".to_owned())?;
    let threads = a.get("threads", 1usize)?.clamp(1, 64);
    let cfg = Config {
        start_rate: a.get("start-rate", 200.0f64)?.clamp(1.0, RATE_MAX),
        factor: a.get("factor", 1.5f64)?.clamp(1.05, 10.0),
        step: Duration::from_secs(a.get("step-secs", 10u64)?.clamp(1, STEP_SECS_MAX)),
        pause: Duration::from_millis(a.get("pause-ms", 1000u64)?),
        p99_bound_ms: a.get("p99-ms", 50.0f64)?,
        max_rate: a.get("max-rate", 50_000.0f64)?.min(RATE_MAX),
        max_conns: a.get("max-conns", 512usize)?,
        timeout: Duration::from_millis(a.get("timeout-ms", 5000u64)?),
        threads,
        retries: a.get("retries", 1usize)?.min(5),
        rates: parse_rates(&a.get("rates", String::new())?)?,
    };
    let label = a.get("label", "stack".to_owned())?;
    let seed_cmd = a.opt("bench-seed-cmd");
    let json_path = a.opt("json");
    let report_path = a.opt("report");
    let rest = a.finish()?;
    if !rest.is_empty() {
        return Err(format!("unexpected argument(s): {}", rest.join(" ")));
    }
    let scenarios: Vec<Scenario> = scenarios
        .split(',')
        .filter(|s| !s.is_empty())
        .map(Scenario::parse)
        .collect::<Result<_, _>>()?;
    let target = Target::parse(&url)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let summary = rt.block_on(measure(
        &target,
        &url,
        &label,
        &scenarios,
        &cfg,
        seed_cmd.as_deref(),
    ))?;
    if let Some(path) = json_path {
        let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("summary written to {path}");
    }
    if let Some(path) = report_path {
        let html = report_page(&label, &url, &summary);
        std::fs::write(&path, html).map_err(|e| format!("cannot write {path}: {e}"))?;
        println!("report written to {path}");
    }
    Ok(())
}

/// The run as pictures (`--report`), read off the summary: per scenario,
/// what was achieved and how long it took against the offered rate.
fn report_page(label: &str, url: &str, summary: &Value) -> String {
    use flashsale_stress::report::{page, xy_chart, Series};
    let number = |v: &Value, path: &[&str]| -> f64 {
        path.iter()
            .try_fold(v, |v, key| v.get(key))
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    };
    let mut charts = Vec::new();
    let mut table = vec![[
        "scenario",
        "offered/s",
        "achieved/s",
        "goodput/s",
        "p50 ms",
        "p99 ms",
        "refused",
        "failed",
    ]
    .map(String::from)
    .to_vec()];
    let scenarios = summary
        .get("scenarios")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for scenario in &scenarios {
        let name = scenario
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let steps = scenario
            .get("steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let points = |path: &[&str]| -> Vec<(f64, f64)> {
            steps
                .iter()
                .map(|s| (number(s, &["rate_per_s"]), number(s, path)))
                .collect()
        };
        charts.push(xy_chart(
            &format!("{name}: answered per second against offered"),
            "/s",
            "req/s",
            &[
                Series {
                    name: "offered".into(),
                    points: points(&["rate_per_s"]),
                },
                Series {
                    name: "achieved".into(),
                    points: points(&["achieved_per_s"]),
                },
                Series {
                    name: "goodput".into(),
                    points: points(&["goodput_per_s"]),
                },
            ],
            &[],
        ));
        charts.push(xy_chart(
            &format!("{name}: latency against offered rate"),
            "/s",
            "ms",
            &[
                Series {
                    name: "p50".into(),
                    points: points(&["latency_ms", "p50"]),
                },
                Series {
                    name: "p99".into(),
                    points: points(&["latency_ms", "p99"]),
                },
            ],
            &[],
        ));
        for s in &steps {
            table.push(vec![
                name.to_string(),
                format!("{:.0}", number(s, &["rate_per_s"])),
                format!("{:.0}", number(s, &["achieved_per_s"])),
                format!("{:.0}", number(s, &["goodput_per_s"])),
                format!("{:.2}", number(s, &["latency_ms", "p50"])),
                format!("{:.2}", number(s, &["latency_ms", "p99"])),
                format!("{:.0}", number(s, &["refused"])),
                format!("{:.0}", number(s, &["failed"])),
            ]);
        }
    }
    let context = format!(
        "{label} at {url}: {} scenario(s), open model, latency from each request's scheduled start",
        scenarios.len()
    );
    page("flashsale capacity run", &context, &charts, &table)
}

async fn measure(
    target: &Target,
    url: &str,
    label: &str,
    scenarios: &[Scenario],
    cfg: &Config,
    seed_cmd: Option<&str>,
) -> Result<Value, String> {
    println!(
        "capacity of {label} at {url}: rate from {}/s x{} per {} s step until p99 > {} ms or a request fails",
        cfg.start_rate,
        cfg.factor,
        cfg.step.as_secs(),
        cfg.p99_bound_ms
    );
    println!("  (latency from each request's scheduled start; lag = how late the generator started it; connwait = wait for one of --max-conns {} connections; gen = generator cores; mach = machine busy)", cfg.max_conns);
    let mut results = Vec::new();
    for &scenario in scenarios {
        // A step past the limit may leave the stack refusing for a while
        // (nginx takes an upstream out after connect timeouts).
        capacity::recover(target).await?;
        let mut stock = stock(target).await?;
        let short = stock.iter().any(|p| p.current_stock < AMPLE_STOCK_MIN);
        if let (Scenario::OrdersAmple, true, Some(cmd)) = (scenario, short, seed_cmd) {
            println!("\napplying the bench seed: {BENCH_SEED_SQL}");
            apply_seed(cmd)?;
            stock = self::stock(target).await?;
        }
        let total: i64 = stock.iter().map(|p| p.current_stock).sum();
        match scenario {
            Scenario::OrdersAmple if stock.iter().any(|p| p.current_stock < AMPLE_STOCK_MIN) => {
                return Err(format!(
                    "orders-ample needs at least {AMPLE_STOCK_MIN} units of every product (have {}); apply the bench seed first: {BENCH_SEED_SQL} (perf/capacity --bench-seed does)",
                    stock.iter().map(|p| format!("{}:{}", p.id, p.current_stock)).collect::<Vec<_>>().join(" ")
                ));
            }
            Scenario::OrdersMix if total > MIX_STOCK_MAX => {
                println!("  warning: {total} units in stock: few orders will hit sold-out products (run orders-mix on the seed stock)");
            }
            _ => {}
        }
        println!("\n{}: {}", scenario.name(), scenario.describe());
        let r = capacity::run(target, scenario, cfg).await;
        if !cfg.rates.is_empty() {
            println!(
                "\n{} under overload (adm = admitted, ref = refused 429/503; latency in ms from the schedule):\n{}",
                scenario.name(),
                capacity::overload_table(&r.steps)
            );
        }
        match r.held() {
            Some(s) => println!(
                "=> {}: held {:.0}/s (achieved {:.1}/s, p99 {:.2} ms); stopped: {}",
                scenario.name(),
                s.rate,
                s.achieved_per_s,
                s.latency.quantile_ms(0.99),
                r.stop_reason
            ),
            None => println!(
                "=> {}: no step held; stopped: {}",
                scenario.name(),
                r.stop_reason
            ),
        }
        results.push(r);
        tokio::time::sleep(cfg.pause).await;
    }
    let unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(json!({
        "tool": "flashsale-stress capacity",
        "label": label,
        "target": url,
        "finished_unix_s": unix_s,
        "config": {
            "start_rate_per_s": cfg.start_rate, "factor": cfg.factor, "step_secs": cfg.step.as_secs(),
            "p99_bound_ms": cfg.p99_bound_ms, "max_rate_per_s": cfg.max_rate,
            "max_conns": cfg.max_conns, "threads": cfg.threads, "rates_per_s": cfg.rates,
        },
        "scenarios": results.iter().map(capacity::result_json).collect::<Vec<_>>(),
    }))
}

/// `4000,8000,12000`: rates per second, each within (0, RATE_MAX].
fn parse_rates(list: &str) -> Result<Vec<f64>, String> {
    list.split(',')
        .filter(|r| !r.is_empty())
        .map(|r| match r.trim().parse::<f64>() {
            Ok(v) if v > 0.0 && v <= RATE_MAX => Ok(v),
            _ => Err(format!("--rates: '{r}' is not a rate in (0, {RATE_MAX}]")),
        })
        .collect()
}

/// Runs `cmd` through `sh -c` with the bench seed SQL on its stdin.
fn apply_seed(cmd: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run the bench seed command: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{BENCH_SEED_SQL};").map_err(|e| format!("bench seed command: {e}"))?;
    }
    let status = child
        .wait()
        .map_err(|e| format!("bench seed command: {e}"))?;
    if !status.success() {
        return Err(format!("bench seed command failed ({status}): {cmd}"));
    }
    Ok(())
}

async fn stock(target: &Target) -> Result<Vec<ProductView>, String> {
    let mut c = Client::new(target.clone(), Duration::from_secs(5));
    let mut out = Vec::new();
    for id in PRODUCT_IDS {
        let r = c
            .send(Method::Get, &format!("/products/{id}"), None)
            .await
            .map_err(|e| format!("GET /products/{id}: {e}"))?;
        let p = ProductView::parse(&r.body)
            .ok_or_else(|| format!("GET /products/{id}: status {}, unreadable", r.status))?;
        out.push(p);
    }
    Ok(out)
}

fn compare(ours: &str, peer: &str, labels: &str) -> Result<(), String> {
    let read = |p: &str| -> Result<Value, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{p}: {e}"))
    };
    let (a, b) = (read(ours)?, read(peer)?);
    let (la, lb) = labels.split_once(',').unwrap_or(("ours", "peer"));
    println!(
        "highest open-model rate held (p99 bound {} ms), {la}/{lb}:",
        a["config"]["p99_bound_ms"]
    );
    print!(
        "{}",
        capacity::ratio_table(
            &capacity::read_summary(&a),
            &capacity::read_summary(&b),
            (la, lb)
        )
    );
    Ok(())
}

#[cfg(test)]
mod report_tests {
    use super::*;

    #[test]
    fn the_report_charts_every_scenario_and_lists_every_step() {
        let step = |rate: f64, p99: f64| {
            json!({"rate_per_s": rate, "achieved_per_s": rate, "goodput_per_s": rate,
                   "latency_ms": {"p50": 1.0, "p99": p99}, "refused": 0, "failed": 0})
        };
        let summary = json!({"scenarios": [
            {"scenario": "products", "steps": [step(200.0, 2.0), step(300.0, 3.0)]},
            {"scenario": "orders-ample", "steps": [step(200.0, 9.0)]},
        ]});
        let html = report_page("stack", "http://x", &summary);
        assert_eq!(html.matches("<svg").count(), 4);
        assert_eq!(html.matches("<tr>").count(), 4, "a head and three steps");
        assert!(html.contains("<td>orders-ample</td><td>200</td>"), "{html}");
    }
}

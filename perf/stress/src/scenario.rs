//! The challenge's stress test: warm-up, flash-sale burst, cancellation
//! wave, validation. Every answer goes into [`Stats`] (per endpoint) and,
//! when it confirms or cancels an order, into the [`Ledger`].
//!
//! Actors of the burst: closed-model order users (think time between
//! requests), replay users (sequential replays and concurrent duplicates of
//! one key), an open-model arrival stream, overselling waves, probes that
//! must answer 404/422, and a stock sampler. The wave adds cancel users
//! (about `cancel_fraction` of the confirmed orders, some cancelled by
//! several concurrent requests) next to fewer order users.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::http::{Client, HttpError, Method, Response, Target};
use crate::ledger::{Final, Ledger, Rule, RuleReport};
use crate::open_model::{self, Pool};
use crate::stats::{Outcome, Stats};
use crate::workload::{
    invalid_order_bodies, parse_cancel, parse_listing, OrderView, PlaceRequest, ProductView,
    PRODUCT_IDS, UNKNOWN_ORDER_ID, UNKNOWN_PRODUCT_ID,
};

pub const L_ORDER: &str = "POST /orders";
pub const L_ORDER_OPEN: &str = "POST /orders (open model)";
pub const L_ORDER_REPLAY: &str = "POST /orders (sequential replay)";
pub const L_ORDER_DUP: &str = "POST /orders (concurrent duplicate)";
pub const L_ORDER_OVERSELL: &str = "POST /orders (oversell wave)";
pub const L_ORDER_INVALID: &str = "POST /orders (invalid body)";
pub const L_ORDER_UNKNOWN: &str = "POST /orders (unknown product)";
pub const L_ORDER_RESOLVE: &str = "POST /orders (resolve lost answer)";
pub const L_LOOKUP: &str = "GET /orders/{id}";
pub const L_LOOKUP_PROBE: &str = "GET /orders/{id} (404/422 probe)";
pub const L_PRODUCT: &str = "GET /products/{id}";
pub const L_PRODUCT_UNKNOWN: &str = "GET /products/{id} (unknown)";
pub const L_LISTING: &str = "GET /orders?product_id";
pub const L_LISTING_PROBE: &str = "GET /orders?product_id (422 probe)";
pub const L_CANCEL: &str = "POST /orders/{id}/cancel";
pub const L_CANCEL_DUP: &str = "POST /orders/{id}/cancel (concurrent)";
pub const L_CANCEL_REPEAT: &str = "POST /orders/{id}/cancel (repeat)";
pub const L_CANCEL_WRONG: &str = "POST /orders/{id}/cancel (wrong product)";
pub const L_CANCEL_UNKNOWN: &str = "POST /orders/{id}/cancel (unknown order)";
pub const L_WARMUP: &str = "GET /products/1 (warm-up)";

/// Overselling waves never send more than this many requests at once.
const OVERSELL_WAVE_MAX: i64 = 40;
/// Units above the stock an overselling wave asks for.
const OVERSELL_EXCESS: i64 = 10;
const OVERSELL_EVERY: Duration = Duration::from_secs(5);
const PROBE_EVERY: Duration = Duration::from_millis(250);
const SAMPLE_EVERY: Duration = Duration::from_millis(500);
const WARMUP_POLL: Duration = Duration::from_secs(2);
/// Sequential replays per key, like the published test.
const REPLAYS_PER_KEY: usize = 3;
/// Concurrent look-ups during validation.
const VALIDATION_CONCURRENCY: usize = 8;

#[derive(Clone, Debug)]
pub struct Options {
    pub burst: Duration,
    pub cancel: Duration,
    pub vus: usize,
    pub replay_vus: usize,
    pub cancel_vus: usize,
    pub wave_order_vus: usize,
    pub think: Duration,
    /// Open-model arrivals per second during the burst (0: none).
    pub rate: f64,
    pub max_conns: usize,
    pub quantity_max: i64,
    pub cancel_fraction: f64,
    pub dup_cancels: usize,
    pub dup_keys: usize,
    pub timeout: Duration,
    pub warmup: Duration,
    /// Only challenge.md's contract: no GET /orders/{id}, every cancel has
    /// a body, no compat.md probes.
    pub peer: bool,
    pub seed: u64,
    /// Orders looked up one by one at the end, at most.
    pub verify_max: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            burst: Duration::from_secs(60),
            cancel: Duration::from_secs(30),
            vus: 50,
            replay_vus: 10,
            cancel_vus: 30,
            wave_order_vus: 10,
            think: Duration::from_millis(200),
            rate: 50.0,
            max_conns: 256,
            quantity_max: 5,
            cancel_fraction: 0.30,
            dup_cancels: 3,
            dup_keys: 3,
            timeout: Duration::from_secs(10),
            warmup: Duration::from_secs(60),
            peer: false,
            seed: 0,
            verify_max: 20_000,
        }
    }
}

pub struct Ctx {
    pub opts: Options,
    pub target: Target,
    /// Burst and wave requests (the pass criteria).
    pub stats: Arc<Stats>,
    /// Warm-up, baseline and validation requests (reported apart).
    pub check_stats: Arc<Stats>,
    pub ledger: Mutex<Ledger>,
    pub in_burst: AtomicBool,
    rng_seq: AtomicUsize,
}

impl Ctx {
    pub fn new(opts: Options, target: Target) -> Arc<Ctx> {
        Arc::new(Ctx {
            opts,
            target,
            stats: Arc::new(Stats::new()),
            check_stats: Arc::new(Stats::new()),
            ledger: Mutex::new(Ledger::new()),
            in_burst: AtomicBool::new(false),
            rng_seq: AtomicUsize::new(0),
        })
    }

    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rng(&self) -> fastrand::Rng {
        let n = self.rng_seq.fetch_add(1, Ordering::Relaxed) as u64;
        if self.opts.seed == 0 {
            fastrand::Rng::new()
        } else {
            fastrand::Rng::with_seed(self.opts.seed.wrapping_mul(1_000_003).wrapping_add(n))
        }
    }
}

/// What a POST /orders came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// 201 or 200 with this order id.
    Order(String, u16),
    /// An answer without an order (409, 404, 422, ...).
    Refused(u16),
    /// No answer, a 5xx, or an unreadable one: the order may exist.
    Unknown,
}

/// Books the answer to `req`.
pub fn settle_place(ctx: &Ctx, req: &PlaceRequest, r: &Result<Response, HttpError>) -> Placed {
    let resp = match r {
        Ok(resp) if resp.status < 500 => resp,
        _ => {
            ctx.ledger().on_unknown_place(req);
            return Placed::Unknown;
        }
    };
    if resp.status != 201 && resp.status != 200 {
        return Placed::Refused(resp.status);
    }
    let Some(view) = OrderView::parse(&resp.body) else {
        let mut l = ctx.ledger();
        let d = format!(
            "{} for key {} without a readable order object",
            resp.status, req.key
        );
        l.violate(Rule::OrderConsistency, d);
        l.on_unknown_place(req);
        return Placed::Unknown;
    };
    ctx.ledger().on_order(req, resp.status, &view);
    Placed::Order(view.order_id, resp.status)
}

/// Books the answer to a cancel of `order_id`.
pub fn settle_cancel(
    ctx: &Ctx,
    order_id: &str,
    r: &Result<Response, HttpError>,
    wrong_product: bool,
) {
    let resp = match r {
        Ok(resp) if resp.status < 500 => resp,
        _ => {
            ctx.ledger().on_unknown_cancel(order_id);
            return;
        }
    };
    let mut restored = None;
    if resp.status == 200 {
        match parse_cancel(&resp.body) {
            Some((id, status, q)) if id == order_id && status == "CANCELLED" => restored = Some(q),
            other => {
                let d = format!("cancel of {order_id} answered 200 with {other:?}");
                ctx.ledger().violate(Rule::CancelSafety, d);
            }
        }
    }
    ctx.ledger()
        .on_cancel(order_id, resp.status, restored, wrong_product);
}

/// One virtual user: a connection (plus extra ones for concurrent groups).
struct Vu {
    ctx: Arc<Ctx>,
    stats: Arc<Stats>,
    client: Client,
    extra: Vec<Client>,
    rng: fastrand::Rng,
    name: String,
}

impl Vu {
    fn new(ctx: &Arc<Ctx>, name: String, stats: Arc<Stats>) -> Vu {
        Vu {
            client: Client::new(ctx.target.clone(), ctx.opts.timeout),
            extra: Vec::new(),
            rng: ctx.rng(),
            ctx: Arc::clone(ctx),
            stats,
            name,
        }
    }

    fn record(
        &self,
        label: &'static str,
        r: &Result<Response, HttpError>,
        latency: Duration,
        expected: &[u16],
    ) {
        record(&self.stats, label, r, latency, expected);
    }

    /// GET /products/{id}, read into a product.
    async fn get_product(&mut self, id: i64) -> Result<ProductView, String> {
        let path = format!("/products/{id}");
        let resp = self
            .call(L_PRODUCT, Method::Get, &path, None, &[200])
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if resp.status != 200 {
            return Err(format!("GET {path}: status {}", resp.status));
        }
        ProductView::parse(&resp.body).ok_or_else(|| format!("GET {path}: unreadable product"))
    }

    async fn call(
        &mut self,
        label: &'static str,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        expected: &[u16],
    ) -> Result<Response, HttpError> {
        let t = Instant::now();
        let r = self.client.send(method, path, body).await;
        self.record(label, &r, t.elapsed(), expected);
        r
    }

    /// A request whose answer only counts in the statistics.
    async fn probe(
        &mut self,
        label: &'static str,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        expected: &[u16],
    ) {
        let _ = self.call(label, method, path, body, expected).await;
    }

    /// Sends `requests` at once, each on its own connection; answers in
    /// the order given, with their latencies.
    async fn fan_out(
        &mut self,
        requests: Vec<(Method, String, Option<Vec<u8>>)>,
    ) -> Vec<(Result<Response, HttpError>, Duration)> {
        while self.extra.len() < requests.len() {
            self.extra
                .push(Client::new(self.ctx.target.clone(), self.ctx.opts.timeout));
        }
        let mut set = JoinSet::new();
        for (i, (method, path, body)) in requests.into_iter().enumerate() {
            let mut c = self.extra.pop().expect("one client per request");
            set.spawn(async move {
                let t = Instant::now();
                let r = c.send(method, &path, body.as_deref()).await;
                (i, c, r, t.elapsed())
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, c, r, lat)) = joined {
                self.extra.push(c);
                out.push((i, r, lat));
            }
        }
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, r, lat)| (r, lat)).collect()
    }

    async fn think(&mut self) {
        let base = self.ctx.opts.think.as_secs_f64();
        let jitter = 0.5 + self.rng.f64();
        tokio::time::sleep(Duration::from_secs_f64(base * jitter)).await;
    }

    fn new_order(&mut self) -> PlaceRequest {
        PlaceRequest::random(&mut self.rng, &self.name, self.ctx.opts.quantity_max)
    }

    async fn place(&mut self, label: &'static str, req: &PlaceRequest, expected: &[u16]) -> Placed {
        let r = self
            .call(label, Method::Post, "/orders", Some(&req.body()), expected)
            .await;
        settle_place(&self.ctx, req, &r)
    }

    /// GET /orders/{id} of one order, counted under [`L_LOOKUP`].
    async fn lookup(&mut self, order_id: &str) -> Lookup {
        let r = self
            .call(
                L_LOOKUP,
                Method::Get,
                &format!("/orders/{order_id}"),
                None,
                &[200],
            )
            .await;
        match r {
            Ok(resp) if resp.status == 200 => match OrderView::parse(&resp.body) {
                Some(v) => Lookup::Found(v),
                None => Lookup::Unreadable,
            },
            Ok(resp) if resp.status == 404 => Lookup::NotFound,
            _ => Lookup::Failed,
        }
    }

    /// GET /orders/{id} right after a 201, like the published test.
    async fn lookup_created(&mut self, order_id: &str) {
        if self.ctx.opts.peer {
            return;
        }
        let found = match self.lookup(order_id).await {
            Lookup::Found(v) => Some(v),
            Lookup::NotFound => None,
            Lookup::Unreadable => {
                unreadable_order(&self.ctx, order_id);
                None
            }
            Lookup::Failed => return,
        };
        self.ctx
            .ledger()
            .on_lookup_after_create(order_id, found.as_ref());
    }
}

/// What GET /orders/{id} answered.
enum Lookup {
    /// 200 with an order object.
    Found(OrderView),
    /// 404.
    NotFound,
    /// 200 without a readable order object.
    Unreadable,
    /// Another status, or no answer.
    Failed,
}

/// Books a 200 to GET /orders/{id} whose body is not an order object.
fn unreadable_order(ctx: &Ctx, order_id: &str) {
    let d = format!("GET /orders/{order_id}: unreadable order object");
    ctx.ledger().violate(Rule::OrderConsistency, d);
}

fn record(
    stats: &Stats,
    label: &'static str,
    r: &Result<Response, HttpError>,
    latency: Duration,
    expected: &[u16],
) {
    match r {
        Ok(resp) => stats.record(
            label,
            Outcome::Status(resp.status),
            latency,
            expected.contains(&resp.status),
        ),
        Err(e) => stats.record(label, Outcome::Error(e), latency, false),
    }
}

fn until(deadline: Instant) -> bool {
    Instant::now() < deadline
}

// ---- warm-up and baseline ----------------------------------------------------

/// Polls GET /products/1 every 2 s (like the published test) until it
/// answers 200; Err after `opts.warmup`.
pub async fn warm_up(ctx: &Arc<Ctx>) -> Result<Duration, String> {
    let start = Instant::now();
    let mut vu = Vu::new(ctx, "warmup".into(), Arc::clone(&ctx.check_stats));
    loop {
        let r = vu
            .call(L_WARMUP, Method::Get, "/products/1", None, &[200])
            .await;
        match r {
            Ok(resp) if resp.status == 200 => return Ok(start.elapsed()),
            other => {
                if start.elapsed() >= ctx.opts.warmup {
                    let why = match other {
                        Ok(resp) => format!("status {}", resp.status),
                        Err(e) => e.to_string(),
                    };
                    return Err(format!(
                        "not healthy after {:?}: last {why}",
                        ctx.opts.warmup
                    ));
                }
            }
        }
        tokio::time::sleep(WARMUP_POLL).await;
    }
}

/// GET /products/{id} of every seed product.
pub async fn fetch_products(ctx: &Arc<Ctx>) -> Result<BTreeMap<i64, ProductView>, String> {
    let mut vu = Vu::new(ctx, "check".into(), Arc::clone(&ctx.check_stats));
    let mut out = BTreeMap::new();
    for id in PRODUCT_IDS {
        out.insert(id, vu.get_product(id).await?);
    }
    Ok(out)
}

/// GET /orders?product_id={id} of every seed product.
pub async fn fetch_listings(ctx: &Arc<Ctx>) -> Result<BTreeMap<i64, Vec<OrderView>>, String> {
    let mut vu = Vu::new(ctx, "check".into(), Arc::clone(&ctx.check_stats));
    let mut out = BTreeMap::new();
    for id in PRODUCT_IDS {
        let path = format!("/orders?product_id={id}");
        let resp = vu
            .call(L_LISTING, Method::Get, &path, None, &[200])
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        if resp.status != 200 {
            return Err(format!("GET {path}: status {}", resp.status));
        }
        let (pid, orders) =
            parse_listing(&resp.body).ok_or_else(|| format!("GET {path}: unreadable listing"))?;
        if pid != id {
            return Err(format!("GET {path}: product_id {pid}"));
        }
        out.insert(id, orders);
    }
    Ok(out)
}

// ---- burst ---------------------------------------------------------------------

async fn order_vu(ctx: Arc<Ctx>, n: usize, start_at: Instant, deadline: Instant) {
    let mut vu = Vu::new(&ctx, format!("vu{n}"), Arc::clone(&ctx.stats));
    tokio::time::sleep_until(start_at.into()).await;
    while until(deadline) {
        let req = vu.new_order();
        if let Placed::Order(id, _) = vu.place(L_ORDER, &req, &[201, 409, 200]).await {
            vu.lookup_created(&id).await;
        }
        vu.think().await;
    }
}

async fn replay_vu(ctx: Arc<Ctx>, n: usize, start_at: Instant, deadline: Instant) {
    let mut vu = Vu::new(&ctx, format!("replay{n}"), Arc::clone(&ctx.stats));
    tokio::time::sleep_until(start_at.into()).await;
    let mut round = 0u64;
    while until(deadline) {
        round += 1;
        let req = vu.new_order();
        let first = vu.place(L_ORDER, &req, &[201, 409, 200]).await;
        if let Placed::Order(id, _) = &first {
            vu.lookup_created(id).await;
        }
        for _ in 0..REPLAYS_PER_KEY {
            if !until(deadline) {
                break;
            }
            tokio::time::sleep(ctx.opts.think / 3).await;
            sequential_replay(&mut vu, &req).await;
        }
        if round % 2 == 1 && until(deadline) {
            duplicate_group(&mut vu).await;
        }
        vu.think().await;
    }
}

/// Replays `req` after its first answer: with an order, the answer must be
/// 200 with the same order.
async fn sequential_replay(vu: &mut Vu, req: &PlaceRequest) {
    let had_order = vu.ctx.ledger().order_of_key(&req.key).is_some();
    let expected: &[u16] = if had_order { &[200] } else { &[409, 201, 200] };
    let r = vu
        .call(
            L_ORDER_REPLAY,
            Method::Post,
            "/orders",
            Some(&req.body()),
            expected,
        )
        .await;
    vu.ctx.ledger().checked.replays += 1;
    let placed = settle_place(&vu.ctx, req, &r);
    if had_order {
        if let Placed::Refused(status) = placed {
            vu.ctx.ledger().on_replay_refused(req, status);
        }
    }
}

/// `dup_keys` requests with one fresh key at once: one order at most, and
/// every answer carrying an order carries that one (the ledger checks it).
async fn duplicate_group(vu: &mut Vu) {
    let req = vu.new_order();
    let body = req.body();
    let requests = (0..vu.ctx.opts.dup_keys.max(2))
        .map(|_| (Method::Post, "/orders".to_owned(), Some(body.clone())))
        .collect();
    let answers = vu.fan_out(requests).await;
    let (mut with_order, mut refused) = (None, 0);
    for (r, lat) in &answers {
        vu.record(L_ORDER_DUP, r, *lat, &[201, 200, 409]);
        match settle_place(&vu.ctx, &req, r) {
            Placed::Order(id, _) => with_order = Some(id),
            Placed::Refused(409) => refused += 1,
            _ => {}
        }
    }
    {
        let mut l = vu.ctx.ledger();
        l.checked.duplicate_groups += 1;
        // While stock only falls (the burst), a 409 next to an order for the
        // same key has no valid order of events: the loser saw no stock the
        // winner then took. Once cancels restore stock it may.
        let stock_only_falls = vu.ctx.in_burst.load(Ordering::Relaxed);
        if with_order.is_some() && refused > 0 && stock_only_falls {
            let d = format!(
                "concurrent duplicates of key {}: an order and {refused} answer(s) 409 together",
                req.key
            );
            l.violate(Rule::Idempotency, d);
        }
    }
    if let Some(id) = with_order {
        vu.lookup_created(&id).await;
    }
}

/// Waves of single-unit orders for one scarce product, more than its
/// stock, all at once: only what is in stock may be granted.
async fn oversell_actor(ctx: Arc<Ctx>, deadline: Instant) {
    let mut vu = Vu::new(&ctx, "oversell".into(), Arc::clone(&ctx.stats));
    let products = [4, 2, 5];
    let mut wave = 0;
    while until(deadline) {
        let product = products[wave % products.len()];
        wave += 1;
        let r = vu
            .call(
                L_PRODUCT,
                Method::Get,
                &format!("/products/{product}"),
                None,
                &[200],
            )
            .await;
        let Some(before) = r.ok().and_then(|resp| ProductView::parse(&resp.body)) else {
            tokio::time::sleep(OVERSELL_EVERY).await;
            continue;
        };
        ctx.ledger().on_stock_sample(&before, true);
        let n = (before.current_stock + OVERSELL_EXCESS).min(OVERSELL_WAVE_MAX);
        let reqs: Vec<PlaceRequest> = (0..n)
            .map(|_| PlaceRequest {
                quantity: 1,
                product_id: product,
                ..vu.new_order()
            })
            .collect();
        let requests = reqs
            .iter()
            .map(|q| (Method::Post, "/orders".to_owned(), Some(q.body())))
            .collect();
        let answers = vu.fan_out(requests).await;
        let mut granted = 0;
        for (req, (r, lat)) in reqs.iter().zip(&answers) {
            vu.record(L_ORDER_OVERSELL, r, *lat, &[201, 409]);
            if let Placed::Order(..) = settle_place(&ctx, req, r) {
                granted += 1;
            }
        }
        // Only sound while nothing restores stock: the burst, before any cancel.
        if ctx.in_burst.load(Ordering::Relaxed) {
            ctx.ledger()
                .on_oversell_wave(product, before.current_stock, granted);
        }
        tokio::time::sleep(OVERSELL_EVERY).await;
    }
}

/// Requests that must be refused: 422 bodies, unknown products and orders.
async fn prober(ctx: Arc<Ctx>, deadline: Instant) {
    let mut vu = Vu::new(&ctx, "probe".into(), Arc::clone(&ctx.stats));
    let mut n = 0usize;
    while until(deadline) {
        n += 1;
        match n % 7 {
            0 => {
                let bodies = invalid_order_bodies(&mut vu.rng);
                let (_, body) = &bodies[(n / 7) % bodies.len()];
                vu.probe(
                    L_ORDER_INVALID,
                    Method::Post,
                    "/orders",
                    Some(body.as_bytes()),
                    &[422],
                )
                .await;
            }
            1 => {
                let req = PlaceRequest {
                    product_id: UNKNOWN_PRODUCT_ID,
                    ..vu.new_order()
                };
                vu.probe(
                    L_ORDER_UNKNOWN,
                    Method::Post,
                    "/orders",
                    Some(&req.body()),
                    &[404],
                )
                .await;
            }
            2 => {
                let path = format!("/products/{UNKNOWN_PRODUCT_ID}");
                vu.probe(L_PRODUCT_UNKNOWN, Method::Get, &path, None, &[404])
                    .await;
            }
            3 if !ctx.opts.peer => {
                let path = format!("/orders/{UNKNOWN_ORDER_ID}");
                vu.probe(L_LOOKUP_PROBE, Method::Get, &path, None, &[404])
                    .await;
            }
            4 if !ctx.opts.peer => {
                vu.probe(
                    L_LOOKUP_PROBE,
                    Method::Get,
                    "/orders/not-a-valid-uuid",
                    None,
                    &[422],
                )
                .await;
            }
            5 if !ctx.opts.peer => {
                vu.probe(
                    L_LISTING_PROBE,
                    Method::Get,
                    "/orders?product_id=abc",
                    None,
                    &[422],
                )
                .await;
            }
            6 => {
                let path = format!("/orders/{UNKNOWN_ORDER_ID}/cancel");
                vu.probe(
                    L_CANCEL_UNKNOWN,
                    Method::Post,
                    &path,
                    Some(b"{\"product_id\":1}"),
                    &[404],
                )
                .await;
            }
            _ => {}
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// Stock of every product, twice a second: never negative, never above
/// the initial stock, and (in the burst) never rising.
async fn stock_sampler(ctx: Arc<Ctx>, deadline: Instant) {
    let mut vu = Vu::new(&ctx, "sampler".into(), Arc::clone(&ctx.stats));
    while until(deadline) {
        for id in PRODUCT_IDS {
            if let Ok(p) = vu.get_product(id).await {
                let in_burst = ctx.in_burst.load(Ordering::Relaxed);
                ctx.ledger().on_stock_sample(&p, in_burst);
            }
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

/// The open model: orders arrive at `rate` per second whatever the server
/// does; latency counts from each order's scheduled time.
async fn open_orders(ctx: Arc<Ctx>, duration: Duration) -> open_model::OpenReport {
    let pool = Arc::new(Pool::new(
        ctx.target.clone(),
        ctx.opts.max_conns,
        ctx.opts.timeout,
    ));
    let rng = Arc::new(Mutex::new(ctx.rng()));
    let drain = ctx.opts.timeout + Duration::from_secs(1);
    open_model::run(ctx.opts.rate, duration, drain, move |i, scheduled| {
        let ctx = Arc::clone(&ctx);
        let pool = Arc::clone(&pool);
        let req = {
            let mut rng = rng.lock().unwrap_or_else(|e| e.into_inner());
            PlaceRequest::random(
                &mut rng,
                &format!("open{}", i % 1000),
                ctx.opts.quantity_max,
            )
        };
        Box::pin(async move {
            let r = pool.send(Method::Post, "/orders", Some(&req.body())).await;
            record(
                &ctx.stats,
                L_ORDER_OPEN,
                &r,
                scheduled.elapsed(),
                &[201, 409, 200],
            );
            if let Placed::Order(id, _) = settle_place(&ctx, &req, &r) {
                if !ctx.opts.peer {
                    let t = Instant::now();
                    let r = pool.send(Method::Get, &format!("/orders/{id}"), None).await;
                    record(&ctx.stats, L_LOOKUP, &r, t.elapsed(), &[200]);
                    if let Ok(resp) = r.as_ref().map(|x| (x.status, OrderView::parse(&x.body))) {
                        match resp {
                            (200, view) => ctx.ledger().on_lookup_after_create(&id, view.as_ref()),
                            (404, _) => ctx.ledger().on_lookup_after_create(&id, None),
                            _ => {}
                        }
                    }
                }
            }
        })
    })
    .await
}

/// Phase 2. Returns the open model's report, if it ran.
pub async fn burst(ctx: &Arc<Ctx>) -> Option<open_model::OpenReport> {
    let o = &ctx.opts;
    let start = Instant::now();
    let deadline = start + o.burst;
    // Users join over the first fifth of the burst ("up to N users").
    let ramp = o.burst / 5;
    ctx.in_burst.store(true, Ordering::Relaxed);
    let mut set = JoinSet::new();
    for n in 0..o.vus {
        let at = start + ramp.mul_f64(n as f64 / o.vus.max(1) as f64);
        set.spawn(order_vu(Arc::clone(ctx), n, at, deadline));
    }
    for n in 0..o.replay_vus {
        let at = start + ramp.mul_f64(n as f64 / o.replay_vus.max(1) as f64);
        set.spawn(replay_vu(Arc::clone(ctx), n, at, deadline));
    }
    set.spawn(oversell_actor(Arc::clone(ctx), deadline));
    set.spawn(prober(Arc::clone(ctx), deadline));
    set.spawn(stock_sampler(Arc::clone(ctx), deadline));
    let open = if o.rate > 0.0 {
        Some(tokio::spawn(open_orders(Arc::clone(ctx), o.burst)))
    } else {
        None
    };
    while set.join_next().await.is_some() {}
    let report = match open {
        Some(h) => h.await.ok(),
        None => None,
    };
    ctx.in_burst.store(false, Ordering::Relaxed);
    report
}

// ---- cancellation wave -----------------------------------------------------------

struct CancelPlan {
    orders: Vec<(String, i64)>,
    next: AtomicUsize,
    start: Instant,
    /// Cancels are spread over this span (the wave minus a tail).
    span: Duration,
}

impl CancelPlan {
    fn release_at(&self, i: usize) -> Instant {
        self.start
            + self
                .span
                .mul_f64(i as f64 / self.orders.len().max(1) as f64)
    }
}

async fn cancel_vu(ctx: Arc<Ctx>, n: usize, plan: Arc<CancelPlan>, deadline: Instant) {
    let mut vu = Vu::new(&ctx, format!("cancel{n}"), Arc::clone(&ctx.stats));
    while until(deadline) {
        // Like the published test: look at a product's orders first.
        let p = PRODUCT_IDS[vu.rng.usize(..PRODUCT_IDS.len())];
        vu.probe(
            L_LISTING,
            Method::Get,
            &format!("/orders?product_id={p}"),
            None,
            &[200],
        )
        .await;
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        let Some((order_id, product)) = plan.orders.get(i).cloned() else {
            vu.think().await;
            continue;
        };
        let at = plan.release_at(i);
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        cancel_one(&mut vu, i, &order_id, product).await;
    }
}

/// Cancels one order: sometimes first with another product's id (404),
/// one request or several at once, sometimes repeated afterwards (409).
async fn cancel_one(vu: &mut Vu, i: usize, order_id: &str, product: i64) {
    let path = format!("/orders/{order_id}/cancel");
    let peer = vu.ctx.opts.peer;
    if i % 7 == 3 {
        let other = if product == 1 { 2 } else { 1 };
        let body = format!("{{\"product_id\":{other}}}");
        let r = vu
            .call(
                L_CANCEL_WRONG,
                Method::Post,
                &path,
                Some(body.as_bytes()),
                &[404],
            )
            .await;
        settle_cancel(&vu.ctx, order_id, &r, true);
    }
    // compat.md: the body is optional; challenge.md: it names the product.
    let body =
        (peer || i.is_multiple_of(2)).then(|| format!("{{\"product_id\":{product}}}").into_bytes());
    if i.is_multiple_of(3) {
        let requests = (0..vu.ctx.opts.dup_cancels.max(2))
            .map(|_| (Method::Post, path.clone(), body.clone()))
            .collect();
        let answers = vu.fan_out(requests).await;
        for (r, lat) in &answers {
            vu.record(L_CANCEL_DUP, r, *lat, &[200, 409]);
            settle_cancel(&vu.ctx, order_id, r, false);
        }
        // More than one 200 is caught by the ledger; whether the order ended
        // up cancelled is checked by the final look-up.
        vu.ctx.ledger().checked.cancel_groups += 1;
    } else {
        let r = vu
            .call(L_CANCEL, Method::Post, &path, body.as_deref(), &[200])
            .await;
        settle_cancel(&vu.ctx, order_id, &r, false);
    }
    if i % 5 == 1 {
        let r = vu
            .call(
                L_CANCEL_REPEAT,
                Method::Post,
                &path,
                body.as_deref(),
                &[409],
            )
            .await;
        settle_cancel(&vu.ctx, order_id, &r, false);
    }
}

/// Phase 3: cancels about `cancel_fraction` of the confirmed orders, with
/// new orders, probes and stock samples alongside.
pub async fn cancel_wave(ctx: &Arc<Ctx>) -> usize {
    let o = &ctx.opts;
    let start = Instant::now();
    let deadline = start + o.cancel;
    let mut live = ctx.ledger().live_orders();
    let mut rng = ctx.rng();
    rng.shuffle(&mut live);
    let n = ((live.len() as f64) * o.cancel_fraction).round() as usize;
    live.truncate(n);
    let plan = Arc::new(CancelPlan {
        orders: live,
        next: AtomicUsize::new(0),
        start,
        span: o.cancel.mul_f64(0.8),
    });
    let mut set = JoinSet::new();
    for n in 0..o.cancel_vus {
        set.spawn(cancel_vu(Arc::clone(ctx), n, Arc::clone(&plan), deadline));
    }
    for n in 0..o.wave_order_vus {
        set.spawn(order_vu(Arc::clone(ctx), 10_000 + n, start, deadline));
    }
    // Restored stock gives replays and duplicates something to win again.
    for n in 0..o.replay_vus {
        set.spawn(replay_vu(Arc::clone(ctx), 10_000 + n, start, deadline));
    }
    set.spawn(prober(Arc::clone(ctx), deadline));
    set.spawn(stock_sampler(Arc::clone(ctx), deadline));
    while set.join_next().await.is_some() {}
    n
}

// ---- validation --------------------------------------------------------------------

/// Phase 4: settles lost answers, fetches the final state, checks the rules.
pub async fn validate(
    ctx: &Arc<Ctx>,
    baseline: BTreeMap<i64, ProductView>,
    preexisting: HashSet<String>,
) -> Result<(Final, Vec<RuleReport>), String> {
    let mut vu = Vu::new(ctx, "validate".into(), Arc::clone(&ctx.check_stats));
    let lost = ctx.ledger().unresolved_keys();
    for req in lost {
        let r = vu
            .call(
                L_ORDER_RESOLVE,
                Method::Post,
                "/orders",
                Some(&req.body()),
                &[200, 201, 409],
            )
            .await;
        if let Placed::Refused(_) = settle_place(ctx, &req, &r) {
            ctx.ledger().resolve_no_order(&req.key);
        }
    }
    if !ctx.opts.peer {
        let lost = ctx.ledger().unresolved_cancels();
        for id in lost {
            if let Lookup::Found(v) = vu.lookup(&id).await {
                ctx.ledger().resolve_cancel(&id, &v.status);
            }
        }
    }
    let products = fetch_products(ctx).await?;
    let listings = fetch_listings(ctx).await?;
    let lookups = if ctx.opts.peer {
        None
    } else {
        Some(lookup_all(ctx).await)
    };
    let f = Final {
        baseline,
        products,
        listings,
        lookups,
        preexisting,
    };
    let reports = ctx.ledger().validate(&f);
    Ok((f, reports))
}

/// GET /orders/{id} of every ledger order (at most `verify_max`), a few at
/// a time. None = 404; orders whose look-up failed otherwise are left out.
async fn lookup_all(ctx: &Arc<Ctx>) -> HashMap<String, Option<OrderView>> {
    let mut ids: Vec<String> = ctx.ledger().orders().map(|o| o.order_id.clone()).collect();
    ids.sort();
    ids.truncate(ctx.opts.verify_max);
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for w in 0..VALIDATION_CONCURRENCY {
        let (ctx, ids, next) = (Arc::clone(ctx), Arc::clone(&ids), Arc::clone(&next));
        set.spawn(async move {
            let mut vu = Vu::new(&ctx, format!("lookup{w}"), Arc::clone(&ctx.check_stats));
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                match vu.lookup(id).await {
                    Lookup::Found(v) => found.push((id.clone(), Some(v))),
                    Lookup::NotFound => found.push((id.clone(), None)),
                    Lookup::Unreadable => unreadable_order(&ctx, id),
                    Lookup::Failed => {}
                }
            }
            found
        });
    }
    let mut out = HashMap::new();
    while let Some(joined) = set.join_next().await {
        for (id, v) in joined.unwrap_or_default() {
            out.insert(id, v);
        }
    }
    out
}

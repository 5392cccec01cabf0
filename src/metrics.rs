//! Counters for `GET /metrics`, and their Prometheus text rendering.
//!
//! Every label value comes from a fixed set (routes, statuses, outcomes),
//! never from request input, so the number of series is fixed and counting
//! is indexing into arrays: no allocation, no hashing, no locks (the
//! process has one thread). Rendering happens only when `/metrics` is
//! asked for, into a buffer the server reuses.

use std::time::Duration;

/// What a request was for, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    GetProduct,
    PlaceOrder,
    CancelOrder,
    GetOrder,
    ListOrders,
    ListSales,
    /// Every `/admin/...` request.
    Admin,
    PlaceHold,
    /// `GET /holds?customer_id=`.
    ListHolds,
    GetHold,
    ReleaseHold,
    PaymentWebhook,
    /// `POST /customers` (sign-up).
    CreateCustomer,
    /// `POST /sessions` (log-in).
    OpenSession,
    /// `GET` and `DELETE /sessions/current`.
    Session,
    Health,
    Metrics,
    /// Unknown paths and methods, and requests refused before routing.
    Other,
}

impl Route {
    pub const ALL: [Route; 18] = [
        Route::GetProduct,
        Route::PlaceOrder,
        Route::CancelOrder,
        Route::GetOrder,
        Route::ListOrders,
        Route::ListSales,
        Route::Admin,
        Route::PlaceHold,
        Route::ListHolds,
        Route::GetHold,
        Route::ReleaseHold,
        Route::PaymentWebhook,
        Route::CreateCustomer,
        Route::OpenSession,
        Route::Session,
        Route::Health,
        Route::Metrics,
        Route::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::GetProduct => "get_product",
            Route::PlaceOrder => "place_order",
            Route::CancelOrder => "cancel_order",
            Route::GetOrder => "get_order",
            Route::ListOrders => "list_orders",
            Route::ListSales => "list_sales",
            Route::Admin => "admin",
            Route::PlaceHold => "place_hold",
            Route::ListHolds => "list_holds",
            Route::GetHold => "get_hold",
            Route::ReleaseHold => "release_hold",
            Route::PaymentWebhook => "payment_webhook",
            Route::CreateCustomer => "create_customer",
            Route::OpenSession => "open_session",
            Route::Session => "session",
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

/// Every status the server answers with; anything else counts as "other".
pub const STATUSES: [u16; 18] = [
    200, 201, 400, 401, 403, 404, 405, 408, 409, 411, 413, 422, 429, 431, 500, 501, 503, 505,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len())
}

/// Upper bounds of the latency buckets, in microseconds: fine below a
/// millisecond, where a warm answer lands, coarse up to the database's
/// deadlines.
pub const LATENCY_BUCKETS_MICROS: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 15_000_000,
];

/// Upper bounds of the order batch size buckets.
pub const BATCH_SIZE_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// A histogram with fixed buckets: counts per bucket (not cumulative; the
/// last one is +Inf), their sum.
#[derive(Debug, Clone, Copy)]
pub struct Histogram<const B: usize> {
    counts: [u64; B],
    overflow: u64,
    sum: u64,
}

impl<const B: usize> Default for Histogram<B> {
    fn default() -> Self {
        Histogram {
            counts: [0; B],
            overflow: 0,
            sum: 0,
        }
    }
}

impl<const B: usize> Histogram<B> {
    pub fn observe(&mut self, bounds: &[u64; B], value: u64) {
        match bounds.iter().position(|&bound| value <= bound) {
            Some(bucket) => self.counts[bucket] += 1,
            None => self.overflow += 1,
        }
        self.sum = self.sum.saturating_add(value);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }
}

/// HTTP requests answered, by route and status, and their latency by route
/// (from the moment the request was taken to the moment its answer was
/// queued).
#[derive(Debug, Default)]
pub struct HttpMetrics {
    answered: [[u64; STATUS_SLOTS]; Route::ALL.len()],
    latency: [Histogram<{ LATENCY_BUCKETS_MICROS.len() }>; Route::ALL.len()],
}

impl HttpMetrics {
    /// Requests answered with `status`, all routes together.
    pub fn answered_with(&self, status: u16) -> u64 {
        let slot = status_slot(status);
        self.answered.iter().map(|by_status| by_status[slot]).sum()
    }

    pub fn record(&mut self, route: Route, status: u16, took: Duration) {
        let r = route as usize;
        self.answered[r][status_slot(status)] += 1;
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency[r].observe(&LATENCY_BUCKETS_MICROS, micros);
    }
}

/// The figures of the other layers at the moment of a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub client_connections: usize,
    pub client_buffer_bytes_shared: usize,
    pub db_connections_ready: usize,
    pub db_connections_configured: usize,
    pub db_requests_in_flight: usize,
    pub db_requests_waiting: usize,
    pub db_reconnects: u64,
    pub db_cancels_sent: u64,
    pub resident_bytes: u64,
    pub cpu_seconds: f64,
}

/// Order batch sizes, kept by the application.
pub type BatchSizes = Histogram<{ BATCH_SIZE_BUCKETS.len() }>;

/// The `reason` codes of the order refusals answered 409 (platform.md):
/// the first four refuse holds too, the last three only orders of holds.
pub const ORDER_REFUSAL_REASONS: [&str; 7] = [
    "insufficient_stock",
    "sale_not_started",
    "sale_ended",
    "customer_limit_reached",
    "hold_expired",
    "hold_not_active",
    "hold_not_yours",
];
/// The reasons a hold is refused for.
const HOLD_REFUSAL_REASONS: usize = 4;

/// Orders refused with 409, by reason, kept by the application.
#[derive(Debug, Default, Clone, Copy)]
pub struct OrderRefusals {
    counts: [u64; ORDER_REFUSAL_REASONS.len()],
}

impl OrderRefusals {
    /// Counts a refusal whose reason is `reason` (other reasons are not
    /// order refusals and are not counted here).
    pub fn count(&mut self, reason: &str) {
        if let Some(slot) = ORDER_REFUSAL_REASONS.iter().position(|&r| r == reason) {
            self.counts[slot] += 1;
        }
    }

    /// Both counts together.
    pub fn plus(&self, other: &OrderRefusals) -> OrderRefusals {
        let mut sum = *self;
        for (count, more) in sum.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        sum
    }
}

/// Payment webhook events the database judged, by what they did.
#[derive(Debug, Default, Clone, Copy)]
pub struct WebhookFigures {
    pub applied: u64,
    pub not_applied: u64,
    pub duplicate: u64,
    pub unknown_order: u64,
}

/// What sign-ups and sessions count for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct AccountFigures {
    pub created: u64,
    pub email_taken: u64,
    pub opened: u64,
    pub wrong_credentials: u64,
    pub ended: u64,
    /// Requests refused 401 `invalid_session` / 403 / 401 `session_required`.
    pub invalid_session: u64,
    pub forbidden: u64,
    pub session_required: u64,
}

impl AccountFigures {
    /// Counts a refusal (by its reason) if it is about a session.
    pub fn count_refusal(&mut self, reason: Option<&str>) {
        match reason {
            Some("invalid_session") => self.invalid_session += 1,
            Some("forbidden") => self.forbidden += 1,
            Some("session_required") => self.session_required += 1,
            _ => {}
        }
    }
}

/// The figures the application keeps, for [`render`].
#[derive(Debug, Clone, Copy)]
pub struct AppFigures<'a> {
    pub batch_sizes: &'a BatchSizes,
    /// Orders (of products and of holds) refused with 409, by reason.
    pub order_refusals: OrderRefusals,
    /// Holds refused with 409, by reason.
    pub hold_refusals: OrderRefusals,
    /// Hold sweeps this instance ran, and the holds they expired.
    pub hold_sweeps: u64,
    pub holds_expired: u64,
    pub webhooks: WebhookFigures,
    pub accounts: AccountFigures,
    /// Sign-ups and log-ins refused 503 by the instance's password checks.
    pub password_checks_shed: u64,
    /// Customers the per-customer rate limit remembers, and those it
    /// evicted with tokens spent (both 0 when the limit is off).
    pub rate_limit_customers: usize,
    pub rate_limit_evictions: u64,
}

/// Renders everything in the Prometheus text format (version 0.0.4).
pub fn render(out: &mut Vec<u8>, http: &HttpMetrics, app: AppFigures<'_>, now: &Snapshot) {
    out.clear();
    header(
        out,
        "flashsale_http_requests_total",
        "counter",
        "HTTP requests answered, by route and status.",
    );
    for route in Route::ALL {
        let counts = &http.answered[route as usize];
        for (slot, &count) in counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let status = STATUSES
                .get(slot)
                .map_or("other".to_string(), u16::to_string);
            line(
                out,
                "flashsale_http_requests_total",
                &[("route", route.name()), ("status", &status)],
                count as f64,
            );
        }
    }
    header(
        out,
        "flashsale_http_request_duration_seconds",
        "histogram",
        "Time from taking a request to queueing its answer, by route.",
    );
    let bounds = LATENCY_BUCKETS_MICROS.map(|micros| micros as f64 / 1e6);
    for route in Route::ALL {
        let histogram = &http.latency[route as usize];
        histogram_lines(
            out,
            "flashsale_http_request_duration_seconds",
            ("route", route.name()),
            histogram,
            &bounds,
            1e-6,
        );
    }
    orders(out, http, &app.order_refusals);
    holds(out, http, &app);
    webhooks(out, http, &app.webhooks);
    accounts(out, &app);
    header(
        out,
        "flashsale_order_batch_size",
        "histogram",
        "Orders per batch sent to the database.",
    );
    histogram_lines(
        out,
        "flashsale_order_batch_size",
        ("", ""),
        app.batch_sizes,
        &BATCH_SIZE_BUCKETS.map(|b| b as f64),
        1.0,
    );
    gauge(
        out,
        "flashsale_rate_limit_customers",
        "Customers in the per-customer rate limit's table.",
        app.rate_limit_customers as f64,
    );
    counter(
        out,
        "flashsale_rate_limit_evictions_total",
        "Customers evicted from the full rate limit table with tokens spent.",
        app.rate_limit_evictions as f64,
    );
    gauge(
        out,
        "flashsale_client_connections",
        "Open client connections.",
        now.client_connections as f64,
    );
    gauge(
        out,
        "flashsale_client_buffer_shared_bytes",
        "Client buffer bytes drawn from the shared budget.",
        now.client_buffer_bytes_shared as f64,
    );
    header(
        out,
        "flashsale_db_connections",
        "gauge",
        "Database connections, configured and ready.",
    );
    line(
        out,
        "flashsale_db_connections",
        &[("state", "configured")],
        now.db_connections_configured as f64,
    );
    line(
        out,
        "flashsale_db_connections",
        &[("state", "ready")],
        now.db_connections_ready as f64,
    );
    gauge(
        out,
        "flashsale_db_requests_in_flight",
        "Requests sent to the database, not yet answered.",
        now.db_requests_in_flight as f64,
    );
    gauge(
        out,
        "flashsale_db_requests_waiting",
        "Requests queued for a database pipeline slot.",
        now.db_requests_waiting as f64,
    );
    counter(
        out,
        "flashsale_db_reconnects_total",
        "Database connections lost or failed to open.",
        now.db_reconnects as f64,
    );
    counter(
        out,
        "flashsale_db_cancels_total",
        "CancelRequests sent for late statements.",
        now.db_cancels_sent as f64,
    );
    gauge(
        out,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        now.resident_bytes as f64,
    );
    counter(
        out,
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        now.cpu_seconds,
    );
}

/// The outcomes of an order or a hold that its status tells.
const OUTCOMES_BY_STATUS: [(u16, &str); 6] = [
    (201, "created"),
    (200, "replayed"),
    (404, "product_not_found"),
    (422, "invalid"),
    (429, "rate_limited"),
    (503, "refused"),
];

/// Orders by outcome: the refusals for a reason as the application counted
/// them, the rest read off the order route's statuses.
fn orders(out: &mut Vec<u8>, http: &HttpMetrics, refusals: &OrderRefusals) {
    header(
        out,
        "flashsale_orders_total",
        "counter",
        "Orders answered, by outcome.",
    );
    let counts = &http.answered[Route::PlaceOrder as usize];
    for (status, outcome) in OUTCOMES_BY_STATUS {
        line(
            out,
            "flashsale_orders_total",
            &[("outcome", outcome)],
            counts[status_slot(status)] as f64,
        );
    }
    for (reason, count) in ORDER_REFUSAL_REASONS.iter().zip(refusals.counts) {
        line(
            out,
            "flashsale_orders_total",
            &[("outcome", reason)],
            count as f64,
        );
    }
}

/// Holds by outcome, as orders are counted; the sweeps and what they expired.
fn holds(out: &mut Vec<u8>, http: &HttpMetrics, app: &AppFigures<'_>) {
    header(
        out,
        "flashsale_holds_total",
        "counter",
        "Holds answered, by outcome.",
    );
    let counts = &http.answered[Route::PlaceHold as usize];
    for (status, outcome) in OUTCOMES_BY_STATUS {
        let count = counts[status_slot(status)] as f64;
        line(out, "flashsale_holds_total", &[("outcome", outcome)], count);
    }
    let reasons = ORDER_REFUSAL_REASONS.iter().zip(app.hold_refusals.counts);
    for (reason, count) in reasons.take(HOLD_REFUSAL_REASONS) {
        let count = count as f64;
        line(out, "flashsale_holds_total", &[("outcome", reason)], count);
    }
    counter(
        out,
        "flashsale_hold_sweeps_total",
        "Sweeps of due holds this instance ran.",
        app.hold_sweeps as f64,
    );
    counter(
        out,
        "flashsale_holds_expired_total",
        "Holds this instance's sweeps expired.",
        app.holds_expired as f64,
    );
}

/// Payment webhooks by outcome: what the database did with the signed
/// events, and the requests refused before (signature, body).
fn webhooks(out: &mut Vec<u8>, http: &HttpMetrics, figures: &WebhookFigures) {
    header(
        out,
        "flashsale_webhooks_total",
        "counter",
        "Payment webhooks answered, by outcome.",
    );
    let counts = &http.answered[Route::PaymentWebhook as usize];
    let outcomes = [
        ("applied", figures.applied),
        ("not_applied", figures.not_applied),
        ("duplicate", figures.duplicate),
        ("unknown_order", figures.unknown_order),
        ("invalid_signature", counts[status_slot(401)]),
        ("invalid", counts[status_slot(422)]),
    ];
    for (outcome, count) in outcomes {
        let count = count as f64;
        line(
            out,
            "flashsale_webhooks_total",
            &[("outcome", outcome)],
            count,
        );
    }
}

/// A counter's name, help, label name, and its values by label value.
type CounterFamily<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, u64)]);

/// Sign-ups, sessions, and the requests refused for their session.
fn accounts(out: &mut Vec<u8>, app: &AppFigures<'_>) {
    let figures = &app.accounts;
    let series: [CounterFamily<'_>; 3] = [
        (
            "flashsale_accounts_total",
            "Sign-ups answered, by outcome.",
            "outcome",
            &[
                ("created", figures.created),
                ("email_taken", figures.email_taken),
            ],
        ),
        (
            "flashsale_sessions_total",
            "Log-ins and log-outs answered, by outcome.",
            "outcome",
            &[
                ("opened", figures.opened),
                ("wrong_credentials", figures.wrong_credentials),
                ("ended", figures.ended),
            ],
        ),
        (
            "flashsale_session_refusals_total",
            "Requests refused for their session (401 or 403), by reason.",
            "reason",
            &[
                ("invalid_session", figures.invalid_session),
                ("forbidden", figures.forbidden),
                ("session_required", figures.session_required),
            ],
        ),
    ];
    for (name, help, label, counts) in series {
        header(out, name, "counter", help);
        for &(value, count) in counts {
            line(out, name, &[(label, value)], count as f64);
        }
    }
    header(
        out,
        "flashsale_password_checks_shed_total",
        "counter",
        "Sign-ups and log-ins refused 503: the instance's password checks were spent.",
    );
    line(
        out,
        "flashsale_password_checks_shed_total",
        &[],
        app.password_checks_shed as f64,
    );
}

fn header(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    out.extend_from_slice(format!("# HELP {name} {help}\n# TYPE {name} {kind}\n").as_bytes());
}

fn line(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: f64) {
    out.extend_from_slice(name.as_bytes());
    let labels: Vec<String> = labels
        .iter()
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| format!("{key}=\"{value}\""))
        .collect();
    if !labels.is_empty() {
        out.extend_from_slice(format!("{{{}}}", labels.join(",")).as_bytes());
    }
    out.extend_from_slice(format!(" {value}\n").as_bytes());
}

fn gauge(out: &mut Vec<u8>, name: &str, help: &str, value: f64) {
    header(out, name, "gauge", help);
    line(out, name, &[], value);
}

fn counter(out: &mut Vec<u8>, name: &str, help: &str, value: f64) {
    header(out, name, "counter", help);
    line(out, name, &[], value);
}

/// Cumulative `_bucket` lines, `_sum` and `_count`; `unit` converts the
/// recorded sum to the exposed one.
fn histogram_lines<const B: usize>(
    out: &mut Vec<u8>,
    name: &str,
    label: (&str, &str),
    histogram: &Histogram<B>,
    bounds: &[f64; B],
    unit: f64,
) {
    let mut cumulative = 0;
    for (count, bound) in histogram.counts.iter().zip(bounds) {
        cumulative += count;
        let le = bound.to_string();
        line(
            out,
            &format!("{name}_bucket"),
            &[label, ("le", &le)],
            cumulative as f64,
        );
    }
    let total = cumulative + histogram.overflow;
    line(
        out,
        &format!("{name}_bucket"),
        &[label, ("le", "+Inf")],
        total as f64,
    );
    line(
        out,
        &format!("{name}_sum"),
        &[label],
        histogram.sum as f64 * unit,
    );
    line(out, &format!("{name}_count"), &[label], total as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_of<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn counts_land_in_their_series() {
        let mut http = HttpMetrics::default();
        http.record(Route::GetProduct, 200, Duration::from_micros(80));
        http.record(Route::GetProduct, 200, Duration::from_micros(3_000));
        http.record(Route::PlaceOrder, 201, Duration::from_micros(900));
        http.record(Route::PlaceOrder, 409, Duration::from_micros(700));
        http.record(Route::PlaceOrder, 429, Duration::ZERO);
        http.record(Route::PlaceOrder, 429, Duration::ZERO);
        http.record(Route::Other, 418, Duration::from_secs(60));
        let mut batches = BatchSizes::default();
        batches.observe(&BATCH_SIZE_BUCKETS, 3);
        let mut refusals = OrderRefusals::default();
        refusals.count("insufficient_stock");
        refusals.count("customer_limit_reached");
        refusals.count("customer_limit_reached");
        refusals.count("not_an_order_refusal");
        let mut hold_refusals = OrderRefusals::default();
        hold_refusals.count("sale_ended");
        let webhooks = WebhookFigures {
            applied: 4,
            duplicate: 1,
            ..WebhookFigures::default()
        };
        http.record(Route::PaymentWebhook, 401, Duration::ZERO);
        http.record(Route::PlaceHold, 201, Duration::ZERO);
        let app = AppFigures {
            batch_sizes: &batches,
            order_refusals: refusals,
            hold_refusals,
            hold_sweeps: 9,
            holds_expired: 200,
            webhooks,
            accounts: AccountFigures {
                created: 2,
                wrong_credentials: 5,
                forbidden: 1,
                ..AccountFigures::default()
            },
            password_checks_shed: 7,
            rate_limit_customers: 12,
            rate_limit_evictions: 3,
        };
        let mut out = Vec::new();
        render(&mut out, &http, app, &Snapshot::default());
        let text = String::from_utf8(out).unwrap();
        let at =
            |series: &str| value_of(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
        assert_eq!(
            at(r#"flashsale_http_requests_total{route="get_product",status="200"}"#),
            "2"
        );
        assert_eq!(
            at(r#"flashsale_http_requests_total{route="other",status="other"}"#),
            "1"
        );
        assert_eq!(at(r#"flashsale_accounts_total{outcome="created"}"#), "2");
        assert_eq!(
            at(r#"flashsale_accounts_total{outcome="email_taken"}"#),
            "0"
        );
        assert_eq!(
            at(r#"flashsale_sessions_total{outcome="wrong_credentials"}"#),
            "5"
        );
        assert_eq!(
            at(r#"flashsale_session_refusals_total{reason="forbidden"}"#),
            "1"
        );
        assert_eq!(at("flashsale_password_checks_shed_total"), "7");
        assert_eq!(
            at(
                r#"flashsale_http_request_duration_seconds_bucket{route="get_product",le="0.0001"}"#
            ),
            "1"
        );
        assert_eq!(
            at(r#"flashsale_http_request_duration_seconds_bucket{route="get_product",le="0.005"}"#),
            "2"
        );
        assert_eq!(
            at(r#"flashsale_http_request_duration_seconds_count{route="get_product"}"#),
            "2"
        );
        assert_eq!(
            at(r#"flashsale_http_request_duration_seconds_bucket{route="other",le="+Inf"}"#),
            "1"
        );
        assert_eq!(
            at(r#"flashsale_http_request_duration_seconds_bucket{route="other",le="15"}"#),
            "0"
        );
        assert_eq!(at(r#"flashsale_orders_total{outcome="created"}"#), "1");
        assert_eq!(
            at(r#"flashsale_orders_total{outcome="insufficient_stock"}"#),
            "1"
        );
        assert_eq!(
            at(r#"flashsale_orders_total{outcome="customer_limit_reached"}"#),
            "2"
        );
        assert_eq!(at(r#"flashsale_orders_total{outcome="sale_ended"}"#), "0");
        assert_eq!(at(r#"flashsale_orders_total{outcome="rate_limited"}"#), "2");
        assert_eq!(at(r#"flashsale_holds_total{outcome="created"}"#), "1");
        assert_eq!(at(r#"flashsale_holds_total{outcome="sale_ended"}"#), "1");
        assert!(value_of(&text, r#"flashsale_holds_total{outcome="hold_expired"}"#).is_none());
        assert_eq!(at("flashsale_hold_sweeps_total"), "9");
        assert_eq!(at("flashsale_holds_expired_total"), "200");
        assert_eq!(at(r#"flashsale_webhooks_total{outcome="applied"}"#), "4");
        assert_eq!(at(r#"flashsale_webhooks_total{outcome="duplicate"}"#), "1");
        assert_eq!(
            at(r#"flashsale_webhooks_total{outcome="invalid_signature"}"#),
            "1"
        );
        assert_eq!(at(r#"flashsale_orders_total{outcome="hold_expired"}"#), "0");
        assert_eq!(at("flashsale_rate_limit_customers"), "12");
        assert_eq!(at("flashsale_rate_limit_evictions_total"), "3");
        assert_eq!(at(r#"flashsale_order_batch_size_bucket{le="4"}"#), "1");
        assert_eq!(at(r#"flashsale_order_batch_size_bucket{le="2"}"#), "0");
        assert_eq!(at("flashsale_order_batch_size_sum"), "3");
    }
}

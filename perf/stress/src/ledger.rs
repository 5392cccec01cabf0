//! The client's own books: every order the API confirmed (201, or 200 for a
//! key it had not answered yet), every cancel it accepted, every stock
//! sample; and the checks of challenge.md's five consistency rules, made
//! from these books against what the API shows at the end.
//!
//! Pure: no IO. The scenario feeds it answers as they arrive ("online"
//! checks that need the moment, e.g. two 200s for one cancel) and, at the
//! end, the final products, listings and order look-ups ([`Final`]);
//! [`Ledger::validate`] then reports pass/fail per rule.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::workload::{OrderView, PlaceRequest, ProductView};

/// GET /orders?product_id lists at most this many orders.
pub const LISTING_LEN_MAX: usize = 50;
/// Violations kept verbatim per rule (the rest are only counted).
const DETAILS_MAX: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    StockIntegrity,
    Idempotency,
    NoDuplicates,
    OrderConsistency,
    CancelSafety,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::StockIntegrity,
        Rule::Idempotency,
        Rule::NoDuplicates,
        Rule::OrderConsistency,
        Rule::CancelSafety,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::StockIntegrity => "1 stock integrity",
            Rule::Idempotency => "2 idempotency",
            Rule::NoDuplicates => "3 no duplicates",
            Rule::OrderConsistency => "4 order consistency",
            Rule::CancelSafety => "5 cancel safety",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

#[derive(Clone, Debug)]
pub struct LedgerOrder {
    pub order_id: String,
    pub key: String,
    pub product_id: i64,
    pub quantity: i64,
    pub customer_id: String,
    pub total_price: i64,
    /// 201 answers that carried this order.
    pub created: u32,
    /// Cancels answered 200.
    pub cancel_ok: u32,
    /// Cancels answered 409 (already cancelled).
    pub cancel_conflict: u32,
    /// A cancel whose answer was lost, found CANCELLED by a look-up.
    pub cancelled_by_lookup: bool,
}

impl LedgerOrder {
    /// Whether the books say this order is cancelled (its units restored).
    pub fn cancelled(&self) -> bool {
        self.cancel_ok > 0 || self.cancel_conflict > 0 || self.cancelled_by_lookup
    }
}

/// Counts of what was checked, for the report.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    pub replays: u64,
    pub duplicate_groups: u64,
    pub cancel_answers: u64,
    pub cancel_groups: u64,
    pub stock_samples: u64,
    pub oversell_waves: u64,
    pub lookups_after_201: u64,
}

#[derive(Default)]
pub struct Ledger {
    orders: HashMap<String, LedgerOrder>,
    by_key: HashMap<String, String>,
    unresolved_keys: HashMap<String, PlaceRequest>,
    unresolved_cancels: HashSet<String>,
    violations: Vec<Violation>,
    /// Last stock sample per product in the burst (stock may only fall
    /// while nobody cancels).
    burst_last_stock: HashMap<i64, i64>,
    stock_min: BTreeMap<i64, i64>,
    /// Every stock sample: when, product, current stock (for the report).
    stock_over_time: Vec<(std::time::Instant, i64, i64)>,
    pub checked: Checked,
}

/// What the API shows at the end, fetched by the scenario.
#[derive(Debug, Default)]
pub struct Final {
    /// GET /products/{id} before the run (stock is checked relative to it).
    pub baseline: BTreeMap<i64, ProductView>,
    /// GET /products/{id} after the run.
    pub products: BTreeMap<i64, ProductView>,
    /// GET /orders?product_id={id} after the run.
    pub listings: BTreeMap<i64, Vec<OrderView>>,
    /// GET /orders/{id} of ledger orders: None = 404. Absent = not looked up.
    pub lookups: Option<HashMap<String, Option<OrderView>>>,
    /// Orders listed before the run (a stack that was not fresh).
    pub preexisting: HashSet<String>,
}

#[derive(Clone, Debug)]
pub struct RuleReport {
    pub rule: Rule,
    pub passed: bool,
    pub checked: String,
    pub violation_count: usize,
    pub violations: Vec<String>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    pub fn violate(&mut self, rule: Rule, detail: String) {
        self.violations.push(Violation { rule, detail });
    }

    /// Every stock sample taken: when, product, current stock.
    pub fn stock_over_time(&self) -> &[(std::time::Instant, i64, i64)] {
        &self.stock_over_time
    }

    pub fn order(&self, order_id: &str) -> Option<&LedgerOrder> {
        self.orders.get(order_id)
    }

    pub fn orders(&self) -> impl Iterator<Item = &LedgerOrder> {
        self.orders.values()
    }

    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    pub fn order_of_key(&self, key: &str) -> Option<&str> {
        self.by_key.get(key).map(String::as_str)
    }

    /// Orders not cancelled, for the cancellation wave to choose from.
    pub fn live_orders(&self) -> Vec<(String, i64)> {
        let mut v: Vec<(String, i64)> = self
            .orders
            .values()
            .filter(|o| !o.cancelled())
            .map(|o| (o.order_id.clone(), o.product_id))
            .collect();
        v.sort();
        v
    }

    /// A 201 or 200 answer to `req` carrying `view`.
    pub fn on_order(&mut self, req: &PlaceRequest, status: u16, view: &OrderView) {
        debug_assert!(status == 201 || status == 200);
        let rule = if status == 201 {
            Rule::OrderConsistency
        } else {
            Rule::Idempotency
        };
        if let Some(d) = body_mismatch(req, view) {
            self.violate(rule, format!("{status} for key {}: {d}", req.key));
        }
        if status == 201 && view.status != "CONFIRMED" {
            let d = format!("201 for key {} has status {}", req.key, view.status);
            self.violate(Rule::OrderConsistency, d);
        }
        if let Some(unit) = view.unit_price {
            if unit * view.quantity != view.total_price {
                let d = format!(
                    "order {}: total_price {} != unit_price {unit} x quantity {}",
                    view.order_id, view.total_price, view.quantity
                );
                self.violate(Rule::OrderConsistency, d);
            }
        }
        self.unresolved_keys.remove(&req.key);
        match self.by_key.get(&req.key) {
            Some(known) if *known != view.order_id => {
                let (rule, what) = if status == 201 {
                    (Rule::NoDuplicates, "a second order")
                } else {
                    (Rule::Idempotency, "a different order")
                };
                let d = format!(
                    "key {}: {status} with {what} {} (first {known})",
                    req.key, view.order_id
                );
                self.violate(rule, d);
                // The stock equation must count every order the API created.
            }
            Some(_) => {}
            None => {
                self.by_key.insert(req.key.clone(), view.order_id.clone());
            }
        }
        let mut second_key = None;
        let order = self
            .orders
            .entry(view.order_id.clone())
            .or_insert_with(|| LedgerOrder {
                order_id: view.order_id.clone(),
                key: req.key.clone(),
                product_id: req.product_id,
                quantity: req.quantity,
                customer_id: req.customer_id.clone(),
                total_price: view.total_price,
                created: 0,
                cancel_ok: 0,
                cancel_conflict: 0,
                cancelled_by_lookup: false,
            });
        if order.key != req.key {
            second_key = Some(order.key.clone());
        }
        if status == 201 {
            order.created += 1;
            if order.created > 1 {
                let d = format!(
                    "key {}: answered 201 {} times for one order (a replay is 200)",
                    req.key, order.created
                );
                self.violate(Rule::Idempotency, d);
            }
        }
        if let Some(first) = second_key {
            let d = format!(
                "order {} answered for keys {first} and {}",
                view.order_id, req.key
            );
            self.violate(Rule::NoDuplicates, d);
        }
    }

    /// A replay of `req`, sent after an order for its key was answered,
    /// answered `status` instead of 200 with that order.
    pub fn on_replay_refused(&mut self, req: &PlaceRequest, status: u16) {
        let d = format!(
            "replay of key {} answered {status} though it has an order",
            req.key
        );
        self.violate(Rule::Idempotency, d);
    }

    /// A POST /orders whose outcome is unknown (transport error, timeout,
    /// 5xx): resolved at the end by replaying its key.
    pub fn on_unknown_place(&mut self, req: &PlaceRequest) {
        if !self.by_key.contains_key(&req.key) {
            self.unresolved_keys.insert(req.key.clone(), req.clone());
        }
    }

    /// The resolving replay of `key` found no order (409 etc.).
    pub fn resolve_no_order(&mut self, key: &str) {
        self.unresolved_keys.remove(key);
    }

    pub fn unresolved_keys(&self) -> Vec<PlaceRequest> {
        let mut v: Vec<PlaceRequest> = self.unresolved_keys.values().cloned().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// An answer to POST /orders/{order_id}/cancel. `wrong_product`: the
    /// body named another product than the order's (expected: 404).
    pub fn on_cancel(
        &mut self,
        order_id: &str,
        status: u16,
        restored: Option<i64>,
        wrong_product: bool,
    ) {
        self.checked.cancel_answers += 1;
        let Some(order) = self.orders.get_mut(order_id) else {
            return;
        };
        let quantity = order.quantity;
        match status {
            200 => {
                order.cancel_ok += 1;
                let n = order.cancel_ok;
                if n > 1 {
                    let d = format!("order {order_id}: {n} cancels answered 200");
                    self.violate(Rule::CancelSafety, d);
                }
                if restored != Some(quantity) {
                    let d = format!(
                        "order {order_id}: restored_quantity {restored:?}, ordered {quantity}"
                    );
                    self.violate(Rule::CancelSafety, d);
                }
                if wrong_product {
                    let d =
                        format!("order {order_id}: a cancel naming another product cancelled it");
                    self.violate(Rule::CancelSafety, d);
                }
            }
            409 if !wrong_product => order.cancel_conflict += 1,
            404 if !wrong_product => {
                let d = format!("cancel of order {order_id} (confirmed by the API) answered 404");
                self.violate(Rule::OrderConsistency, d);
            }
            _ => {}
        }
    }

    /// A cancel whose outcome is unknown: resolved at the end by a look-up.
    pub fn on_unknown_cancel(&mut self, order_id: &str) {
        self.unresolved_cancels.insert(order_id.to_owned());
    }

    pub fn unresolved_cancels(&self) -> Vec<String> {
        let mut v: Vec<String> = self.unresolved_cancels.iter().cloned().collect();
        v.sort();
        v
    }

    /// The look-up of an order whose cancel was lost.
    pub fn resolve_cancel(&mut self, order_id: &str, status: &str) {
        self.unresolved_cancels.remove(order_id);
        if let Some(o) = self.orders.get_mut(order_id) {
            if status == "CANCELLED" && o.cancel_ok == 0 && o.cancel_conflict == 0 {
                o.cancelled_by_lookup = true;
            }
        }
    }

    /// GET /orders/{id} right after its 201.
    pub fn on_lookup_after_create(&mut self, order_id: &str, found: Option<&OrderView>) {
        self.checked.lookups_after_201 += 1;
        let Some(order) = self.orders.get(order_id) else {
            return;
        };
        let d = match found {
            None => Some(format!(
                "order {order_id} answered 201 but GET /orders/{{id}} finds nothing"
            )),
            Some(v) => order_mismatch(order, v),
        };
        if let Some(d) = d {
            self.violate(Rule::OrderConsistency, d);
        }
    }

    /// A GET /products/{id} sample during the run. `in_burst`: no cancel
    /// has been sent yet, so stock may only fall.
    pub fn on_stock_sample(&mut self, p: &ProductView, in_burst: bool) {
        self.checked.stock_samples += 1;
        self.stock_over_time
            .push((std::time::Instant::now(), p.id, p.current_stock));
        let min = self.stock_min.entry(p.id).or_insert(p.current_stock);
        *min = (*min).min(p.current_stock);
        if p.current_stock < 0 || p.current_stock > p.initial_stock {
            let d = format!(
                "product {}: current_stock {} outside 0..={}",
                p.id, p.current_stock, p.initial_stock
            );
            self.violate(Rule::StockIntegrity, d);
        }
        if let Some(alias) = p.stock {
            if alias != p.current_stock {
                let d = format!(
                    "product {}: stock {alias} != current_stock {}",
                    p.id, p.current_stock
                );
                self.violate(Rule::StockIntegrity, d);
            }
        }
        if in_burst {
            if let Some(last) = self.burst_last_stock.insert(p.id, p.current_stock) {
                if p.current_stock > last {
                    let d = format!(
                        "product {}: stock rose from {last} to {} while no cancel had been sent",
                        p.id, p.current_stock
                    );
                    self.violate(Rule::StockIntegrity, d);
                }
            }
        }
    }

    /// A wave of concurrent single-unit orders for one product, sent while
    /// stock can only fall: at most `stock_before` of them may succeed.
    pub fn on_oversell_wave(&mut self, product_id: i64, stock_before: i64, granted_units: i64) {
        self.checked.oversell_waves += 1;
        if granted_units > stock_before {
            let d = format!(
                "product {product_id}: {granted_units} units granted to a wave with only {stock_before} in stock"
            );
            self.violate(Rule::StockIntegrity, d);
        }
    }

    pub fn stock_min(&self) -> &BTreeMap<i64, i64> {
        &self.stock_min
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// All five rules against the final state.
    pub fn validate(&self, f: &Final) -> Vec<RuleReport> {
        let mut found: Vec<Violation> = self.violations.clone();
        let mut checked: BTreeMap<Rule, String> = BTreeMap::new();
        checked.insert(Rule::StockIntegrity, self.check_stock(f, &mut found));
        checked.insert(Rule::OrderConsistency, self.check_listings(f, &mut found));
        let lookups = self.check_lookups(f, &mut found);
        let c = &self.checked;
        let cancelled = self.orders.values().filter(|o| o.cancelled()).count();
        checked.insert(
            Rule::Idempotency,
            format!(
                "{} sequential replays, {} concurrent duplicate groups; replays never moved stock (rule 1)",
                c.replays, c.duplicate_groups
            ),
        );
        checked.insert(
            Rule::NoDuplicates,
            format!(
                "{} keys map to {} orders one to one; {lookups}",
                self.by_key.len(),
                self.orders.len()
            ),
        );
        checked.insert(
            Rule::CancelSafety,
            format!(
                "{} cancel answers ({} concurrent groups) on {cancelled} cancelled orders: at most one 200 each, restored_quantity = quantity, status CANCELLED; restored once (rule 1)",
                c.cancel_answers, c.cancel_groups
            ),
        );
        if let Some(text) = checked.get_mut(&Rule::OrderConsistency) {
            text.push_str(&format!(
                "; {} look-ups right after 201",
                c.lookups_after_201
            ));
        }
        Rule::ALL
            .iter()
            .map(|&rule| {
                let mine: Vec<&Violation> = found.iter().filter(|v| v.rule == rule).collect();
                RuleReport {
                    rule,
                    passed: mine.is_empty(),
                    checked: checked.remove(&rule).unwrap_or_default(),
                    violation_count: mine.len(),
                    violations: mine
                        .iter()
                        .take(DETAILS_MAX)
                        .map(|v| v.detail.clone())
                        .collect(),
                }
            })
            .collect()
    }

    /// Rule 1: current = baseline - sold + restored, per product.
    fn check_stock(&self, f: &Final, found: &mut Vec<Violation>) -> String {
        let mut v = |d: String| {
            found.push(Violation {
                rule: Rule::StockIntegrity,
                detail: d,
            })
        };
        let mut sold_total = 0;
        let mut restored_total = 0;
        for (id, base) in &f.baseline {
            let mine = self.orders.values().filter(|o| o.product_id == *id);
            let (mut sold, mut restored) = (0, 0);
            for o in mine {
                sold += o.quantity;
                if o.cancelled() {
                    restored += o.quantity;
                }
            }
            sold_total += sold;
            restored_total += restored;
            let Some(now) = f.products.get(id) else {
                v(format!("product {id}: no final GET /products/{id}"));
                continue;
            };
            let expected = base.current_stock - sold + restored;
            if now.current_stock != expected {
                v(format!(
                    "product {id}: current_stock {} != {} (start) - {sold} (ordered) + {restored} (cancelled) = {expected}",
                    now.current_stock, base.current_stock
                ));
            }
            if now.initial_stock != base.initial_stock {
                v(format!(
                    "product {id}: initial_stock changed from {} to {}",
                    base.initial_stock, now.initial_stock
                ));
            }
            if now.current_stock < 0 {
                v(format!(
                    "product {id}: final current_stock {} is negative",
                    now.current_stock
                ));
            }
            if now.stock.is_some_and(|s| s != now.current_stock) {
                v(format!(
                    "product {id}: final stock {:?} != current_stock {}",
                    now.stock, now.current_stock
                ));
            }
        }
        for req in self.unresolved_keys.values() {
            v(format!(
                "key {}: outcome unknown (no answer, and none on replay)",
                req.key
            ));
        }
        for id in &self.unresolved_cancels {
            v(format!("order {id}: cancel outcome unknown"));
        }
        let min: Vec<String> = self
            .stock_min
            .iter()
            .map(|(p, m)| format!("{p}:{m}"))
            .collect();
        format!(
            "{} products: current_stock = start - {sold_total} units ordered + {restored_total} restored; {} samples during the run, min stock {}",
            f.baseline.len(),
            self.checked.stock_samples,
            min.join(" ")
        )
    }

    /// Rule 4 (and 5 for statuses): every listed order is one of ours, with
    /// our quantity, price and status; nothing of ours is missing.
    fn check_listings(&self, f: &Final, found: &mut Vec<Violation>) -> String {
        let mut listed = 0;
        for (product_id, entries) in &f.listings {
            listed += entries.len();
            if entries.len() > LISTING_LEN_MAX {
                let d = format!(
                    "product {product_id}: {} orders listed, at most {LISTING_LEN_MAX}",
                    entries.len()
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
            }
            let ours = self
                .orders
                .values()
                .filter(|o| o.product_id == *product_id)
                .count();
            let want = ours.min(LISTING_LEN_MAX);
            if entries.len() < want {
                let d = format!(
                    "product {product_id}: {} orders listed, but {ours} were confirmed",
                    entries.len()
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
            }
            if let Some(w) = entries
                .windows(2)
                .find(|w| w[0].created_at < w[1].created_at)
            {
                let d = format!(
                    "product {product_id}: listing is not most recent first: {} ({}) before {} ({})",
                    w[0].order_id, w[0].created_at, w[1].order_id, w[1].created_at
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
            }
            let mut seen = HashSet::new();
            for e in entries {
                if !seen.insert(e.order_id.as_str()) {
                    let d = format!("product {product_id}: order {} listed twice", e.order_id);
                    found.push(Violation {
                        rule: Rule::NoDuplicates,
                        detail: d,
                    });
                }
                self.check_entry(*product_id, e, f, found);
            }
        }
        format!(
            "{listed} listed orders of {} products match the books (no phantoms, none missing)",
            f.listings.len()
        )
    }

    fn check_entry(&self, product_id: i64, e: &OrderView, f: &Final, found: &mut Vec<Violation>) {
        let Some(order) = self.orders.get(&e.order_id) else {
            if !f.preexisting.contains(&e.order_id) {
                let d = format!(
                    "product {product_id}: listed order {} is not in the books (phantom)",
                    e.order_id
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
            }
            return;
        };
        if order.product_id != product_id {
            let d = format!(
                "order {} of product {} listed under product {product_id}",
                e.order_id, order.product_id
            );
            found.push(Violation {
                rule: Rule::OrderConsistency,
                detail: d,
            });
        }
        push_mismatch(found, "listing", order, e);
    }

    /// Rules 3, 4, 5 through GET /orders/{id} of every ledger order.
    fn check_lookups(&self, f: &Final, found: &mut Vec<Violation>) -> String {
        let Some(lookups) = &f.lookups else {
            return "orders not looked up one by one (GET /orders/{id} not used)".to_owned();
        };
        let mut n = 0;
        for order in self.orders.values() {
            let Some(answer) = lookups.get(&order.order_id) else {
                continue;
            };
            n += 1;
            let Some(v) = answer else {
                let d = format!(
                    "order {} is in the books but GET /orders/{{id}} answers 404",
                    order.order_id
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
                continue;
            };
            if v.idempotency_key.as_deref().is_some_and(|k| k != order.key) {
                let d = format!(
                    "order {}: key {:?}, the books say {}",
                    order.order_id, v.idempotency_key, order.key
                );
                found.push(Violation {
                    rule: Rule::NoDuplicates,
                    detail: d,
                });
            }
            if v.product_id.is_some_and(|p| p != order.product_id) {
                let d = format!(
                    "order {}: product {:?}, the books say {}",
                    order.order_id, v.product_id, order.product_id
                );
                found.push(Violation {
                    rule: Rule::OrderConsistency,
                    detail: d,
                });
            }
            push_mismatch(found, "look-up", order, v);
        }
        format!("{n} orders looked up one by one")
    }
}

/// How an answer to `req` differs from it, if it does.
fn body_mismatch(req: &PlaceRequest, v: &OrderView) -> Option<String> {
    let mut diffs = Vec::new();
    if v.product_id.is_some_and(|p| p != req.product_id) {
        diffs.push(format!(
            "product_id {:?} != {}",
            v.product_id, req.product_id
        ));
    }
    if v.quantity != req.quantity {
        diffs.push(format!("quantity {} != {}", v.quantity, req.quantity));
    }
    if v.customer_id != req.customer_id {
        diffs.push(format!(
            "customer_id {} != {}",
            v.customer_id, req.customer_id
        ));
    }
    if v.idempotency_key.as_deref().is_some_and(|k| k != req.key) {
        diffs.push(format!("idempotency_key {:?}", v.idempotency_key));
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// How the API's view of an order differs from the books, if it does.
fn order_mismatch(o: &LedgerOrder, v: &OrderView) -> Option<String> {
    let mut diffs = Vec::new();
    if v.quantity != o.quantity {
        diffs.push(format!("quantity {} (books {})", v.quantity, o.quantity));
    }
    if v.total_price != o.total_price {
        diffs.push(format!(
            "total_price {} (books {})",
            v.total_price, o.total_price
        ));
    }
    if v.customer_id != o.customer_id {
        diffs.push(format!(
            "customer_id {} (books {})",
            v.customer_id, o.customer_id
        ));
    }
    let want = if o.cancelled() {
        "CANCELLED"
    } else {
        "CONFIRMED"
    };
    if v.status != want {
        diffs.push(format!("status {} (books {want})", v.status));
    }
    (!diffs.is_empty()).then(|| format!("order {}: {}", o.order_id, diffs.join(", ")))
}

/// A difference between the books and what the API showed (`source`:
/// listing or look-up): a wrong status breaks cancel safety, anything else
/// order consistency.
fn push_mismatch(found: &mut Vec<Violation>, source: &str, order: &LedgerOrder, seen: &OrderView) {
    if let Some(d) = order_mismatch(order, seen) {
        let rule = if d.contains("status") {
            Rule::CancelSafety
        } else {
            Rule::OrderConsistency
        };
        found.push(Violation {
            rule,
            detail: format!("{source}: {d}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, product_id: i64, quantity: i64) -> PlaceRequest {
        PlaceRequest {
            key: key.to_owned(),
            product_id,
            customer_id: "c".to_owned(),
            quantity,
        }
    }

    fn view(id: &str, r: &PlaceRequest, status: &str) -> OrderView {
        OrderView {
            order_id: id.to_owned(),
            idempotency_key: Some(r.key.clone()),
            product_id: Some(r.product_id),
            customer_id: r.customer_id.clone(),
            quantity: r.quantity,
            unit_price: Some(10),
            total_price: 10 * r.quantity,
            status: status.to_owned(),
            created_at: format!("2025-01-15T10:30:{:02}.000Z", id.len()),
        }
    }

    fn product(id: i64, initial: i64, current: i64) -> ProductView {
        ProductView {
            id,
            price: 10,
            initial_stock: initial,
            current_stock: current,
            stock: Some(current),
        }
    }

    /// Two orders on product 4 (10 units): 3 + 2 units, the second cancelled.
    fn books() -> (Ledger, Final) {
        let mut l = Ledger::new();
        let a = req("ka", 4, 3);
        let b = req("kb", 4, 2);
        l.on_order(&a, 201, &view("oa", &a, "CONFIRMED"));
        l.on_order(&b, 201, &view("ob", &b, "CONFIRMED"));
        l.on_cancel("ob", 200, Some(2), false);
        l.on_cancel("ob", 409, None, false);
        let mut f = Final::default();
        f.baseline.insert(4, product(4, 10, 10));
        f.products.insert(4, product(4, 10, 7));
        f.listings.insert(
            4,
            vec![view("ob", &b, "CANCELLED"), view("oa", &a, "CONFIRMED")],
        );
        // created_at of "ob" and "oa" are equal (same id length): fine.
        let mut lookups = HashMap::new();
        lookups.insert("oa".to_owned(), Some(view("oa", &a, "CONFIRMED")));
        lookups.insert("ob".to_owned(), Some(view("ob", &b, "CANCELLED")));
        f.lookups = Some(lookups);
        (l, f)
    }

    fn failed(l: &Ledger, f: &Final) -> Vec<Rule> {
        l.validate(f)
            .into_iter()
            .filter(|r| !r.passed)
            .map(|r| r.rule)
            .collect()
    }

    #[test]
    fn consistent_books_pass_every_rule() {
        let (l, f) = books();
        let reports = l.validate(&f);
        assert_eq!(reports.len(), 5);
        for r in reports {
            assert!(r.passed, "{:?}: {:?}", r.rule, r.violations);
        }
    }

    #[test]
    fn stock_off_by_one_fails_rule_1() {
        let (l, mut f) = books();
        f.products.insert(4, product(4, 10, 8));
        assert_eq!(failed(&l, &f), vec![Rule::StockIntegrity]);
    }

    #[test]
    fn double_restore_fails_rules_1_and_5() {
        let (mut l, mut f) = books();
        l.on_cancel("ob", 200, Some(2), false);
        f.products.insert(4, product(4, 10, 9));
        assert_eq!(
            failed(&l, &f),
            vec![Rule::StockIntegrity, Rule::CancelSafety]
        );
    }

    #[test]
    fn replay_with_another_order_fails_rule_2() {
        let (mut l, f) = books();
        let a = req("ka", 4, 3);
        l.on_order(&a, 200, &view("oa", &a, "CONFIRMED"));
        assert!(failed(&l, &f).is_empty());
        l.on_order(&a, 200, &view("oz", &a, "CONFIRMED"));
        assert!(failed(&l, &f).contains(&Rule::Idempotency));
    }

    #[test]
    fn refused_replay_fails_rule_2() {
        let (mut l, f) = books();
        l.on_replay_refused(&req("ka", 4, 3), 409);
        assert_eq!(failed(&l, &f), vec![Rule::Idempotency]);
    }

    #[test]
    fn second_201_for_a_key_fails_rule_3() {
        let (mut l, f) = books();
        let a = req("ka", 4, 3);
        l.on_order(&a, 201, &view("oa2", &a, "CONFIRMED"));
        // The extra order also took 3 units the final stock does not show,
        // and the listing lacks it.
        assert_eq!(
            failed(&l, &f),
            vec![
                Rule::StockIntegrity,
                Rule::NoDuplicates,
                Rule::OrderConsistency
            ]
        );
    }

    #[test]
    fn phantom_listed_order_fails_rule_4() {
        let (l, mut f) = books();
        let ghost = req("kg", 4, 1);
        f.listings
            .get_mut(&4)
            .unwrap()
            .insert(0, view("og", &ghost, "CONFIRMED"));
        assert_eq!(failed(&l, &f), vec![Rule::OrderConsistency]);
        // ... unless it was there before the run.
        f.preexisting.insert("og".to_owned());
        assert!(failed(&l, &f).is_empty());
    }

    #[test]
    fn missing_listed_order_fails_rule_4() {
        let (l, mut f) = books();
        f.listings.get_mut(&4).unwrap().pop();
        assert_eq!(failed(&l, &f), vec![Rule::OrderConsistency]);
    }

    #[test]
    fn cancelled_order_still_confirmed_fails_rule_5() {
        let (l, mut f) = books();
        let b = req("kb", 4, 2);
        f.lookups
            .as_mut()
            .unwrap()
            .insert("ob".to_owned(), Some(view("ob", &b, "CONFIRMED")));
        assert_eq!(failed(&l, &f), vec![Rule::CancelSafety]);
    }

    #[test]
    fn wrong_restored_quantity_fails_rule_5() {
        let mut l = Ledger::new();
        let a = req("ka", 1, 3);
        l.on_order(&a, 201, &view("oa", &a, "CONFIRMED"));
        l.on_cancel("oa", 200, Some(1), false);
        assert!(l.violations().iter().any(|v| v.rule == Rule::CancelSafety));
    }

    #[test]
    fn stock_samples_catch_negative_and_rising_stock() {
        let mut l = Ledger::new();
        l.on_stock_sample(&product(4, 10, 5), true);
        l.on_stock_sample(&product(4, 10, 6), true);
        l.on_stock_sample(&product(4, 10, -1), false);
        let rules: Vec<Rule> = l.violations().iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec![Rule::StockIntegrity, Rule::StockIntegrity]);
        assert_eq!(l.stock_min()[&4], -1);
    }

    #[test]
    fn oversold_wave_fails_rule_1() {
        let mut l = Ledger::new();
        l.on_oversell_wave(4, 3, 3);
        assert!(l.violations().is_empty());
        l.on_oversell_wave(4, 3, 4);
        assert_eq!(l.violations()[0].rule, Rule::StockIntegrity);
    }

    #[test]
    fn unknown_outcomes_are_resolved_or_fail_rule_1() {
        let (mut l, f) = books();
        let lost = req("kl", 4, 1);
        l.on_unknown_place(&lost);
        assert_eq!(failed(&l, &f), vec![Rule::StockIntegrity]);
        l.resolve_no_order("kl");
        assert!(failed(&l, &f).is_empty());
        l.on_unknown_cancel("oa");
        l.resolve_cancel("oa", "CONFIRMED");
        assert!(failed(&l, &f).is_empty());
    }
}

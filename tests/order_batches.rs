//! `place_orders` (one set-based call for a whole batch of orders) must give
//! each order exactly the answer it would get alone: the outcome of
//! `place_order` called order by order in (product id, position) order, the
//! way batches were processed before. These tests hold the batch function
//! against that reference, in SQL on a throw-away cluster: named cases from
//! the issue, then a few hundred random batches (replays, fresh keys, one key
//! twice, unknown products, stock that runs out mid-batch), each run by both
//! and rolled back, comparing every answer and the stock left. Last, the
//! real binary: a batch that meets a key another transaction holds fails as
//! a whole and its orders are answered one by one.

mod support;

use std::time::Duration;

use support::cluster::{Auth, PgCluster};
use support::server::http::{request_bytes, Conn};
use support::server::{api_url, apply_schema, new_uuid_v4, ServerProcess};

/// The reference: the batch processed order by order with the single-order
/// function, in ascending product id (ties by position).
const ONE_BY_ONE: &str = r#"
CREATE FUNCTION place_orders_one_by_one(
    p_product_ids integer[], p_keys uuid[], p_customer_ids text[], p_quantities integer[])
RETURNS TABLE (
    idx integer, outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz, payment_status text)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN SELECT s FROM generate_subscripts(p_keys, 1) s ORDER BY p_product_ids[s], s LOOP
        RETURN QUERY SELECT i, o.* FROM place_order(
            p_product_ids[i], p_keys[i], p_customer_ids[i], p_quantities[i]) o;
    END LOOP;
END
$$;

-- One batch run by `fn` on the stock given, then rolled back: the answers
-- (everything but the generated id and timestamp of a new order) and the
-- stock left, as text.
CREATE FUNCTION run_rolled_back(fn text, stock integer[], p_product_ids integer[],
    p_keys uuid[], p_customer_ids text[], p_quantities integer[])
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    answers text;
    stock_left text;
BEGIN
    BEGIN
        UPDATE products SET current_stock = stock[products.id] WHERE products.id <= 5;
        EXECUTE format(
            'SELECT string_agg(concat_ws(%L, idx, outcome, idempotency_key, product_id,
                 customer_id, quantity, unit_price, total_price, status), %L ORDER BY idx)
             FROM %I($1, $2, $3, $4)', ':', ' ', fn)
            INTO answers USING p_product_ids, p_keys, p_customer_ids, p_quantities;
        SELECT string_agg(products.id || '=' || current_stock, ',' ORDER BY products.id)
            INTO stock_left FROM products;
        RAISE EXCEPTION USING ERRCODE = 'FSRB1';
    EXCEPTION WHEN SQLSTATE 'FSRB1' THEN
        NULL;
    END;
    RETURN coalesce(answers, '') || ' | stock ' || stock_left;
END
$$;
"#;

fn cluster() -> PgCluster {
    let cluster = PgCluster::start(Auth::Trust);
    apply_schema(&cluster);
    cluster.psql(ONE_BY_ONE);
    // Orders that exist before the batches run: their keys come back as replays.
    cluster.psql(
        "INSERT INTO orders (idempotency_key, product_id, customer_id, quantity, unit_price, \
         total_price, status) SELECT ('00000000-0000-4000-8000-' || lpad(k::text, 12, '0'))::uuid, \
         1 + k % 5, 'earlier', 1 + k % 3, 100, 100 * (1 + k % 3), 'CONFIRMED' \
         FROM generate_series(1, 10) k",
    );
    cluster
}

fn key(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Both functions on one batch: (batch answer, reference answer).
fn both(
    cluster: &PgCluster,
    stock: [i32; 5],
    orders: &[(i32, String, &str, i32)],
) -> (String, String) {
    let array = |items: Vec<String>, cast: &str| format!("ARRAY[{}]::{cast}", items.join(","));
    let args = [
        format!("ARRAY{stock:?}"),
        array(
            orders.iter().map(|o| o.0.to_string()).collect(),
            "integer[]",
        ),
        array(
            orders.iter().map(|o| format!("'{}'", o.1)).collect(),
            "uuid[]",
        ),
        array(
            orders.iter().map(|o| format!("'{}'", o.2)).collect(),
            "text[]",
        ),
        array(
            orders.iter().map(|o| o.3.to_string()).collect(),
            "integer[]",
        ),
    ]
    .join(", ");
    let output = cluster.psql(&format!(
        "SELECT run_rolled_back('place_orders', {args});\n\
         SELECT run_rolled_back('place_orders_one_by_one', {args});"
    ));
    let (batch, reference) = output.split_once('\n').expect("two answers");
    (batch.to_string(), reference.to_string())
}

/// The outcome code of each answer, in position order.
fn outcomes(answers: &str) -> Vec<&str> {
    let (rows, _stock) = answers.split_once(" | ").expect("answers, then the stock");
    rows.split(' ')
        .map(|row| row.split(':').nth(1).unwrap())
        .collect()
}

#[test]
fn a_mixed_batch_answers_each_order_as_alone() {
    let cluster = cluster();
    // A replay, a new order, one that no longer fits, a smaller one after it
    // that still does, an unknown product, and a sold-out product.
    let orders = [
        (1, key(5), "replayer", 4),
        (2, key(101), "new", 2),
        (4, key(102), "first", 4),
        (4, key(103), "too_big", 5),
        (4, key(104), "still_fits", 2),
        (99, key(105), "unknown", 1),
        (3, key(106), "sold_out", 1),
    ];
    let (batch, reference) = both(&cluster, [10, 10, 0, 6, 10], &orders);
    assert_eq!(batch, reference);
    // Replayed, created, created, insufficient stock, created, no product,
    // insufficient stock.
    assert_eq!(
        outcomes(&batch),
        ["1", "0", "0", "3", "0", "2", "3"],
        "{batch}"
    );
    assert!(
        batch.starts_with("1:1:") && batch.contains(":earlier:"),
        "a replay answers with the original order: {batch}"
    );
    assert!(batch.ends_with("stock 1=10,2=8,3=0,4=0,5=10"), "{batch}");
}

#[test]
fn one_key_twice_in_a_batch_makes_one_order() {
    let cluster = cluster();
    for (first, second) in [(3, 3), (3, 2), (2, 3)] {
        let orders = [(first, key(200), "a", 1), (second, key(200), "b", 2)];
        let (batch, reference) = both(&cluster, [10, 10, 10, 10, 10], &orders);
        assert_eq!(batch, reference, "products {first} and {second}");
        let mut answered = outcomes(&batch);
        answered.sort();
        assert_eq!(answered, ["0", "1"], "one created, one replayed: {batch}");
    }
}

#[test]
fn random_batches_match_order_by_order() {
    let cluster = cluster();
    let mut rng = fastrand::Rng::with_seed(20261201);
    const BATCHES: usize = 300;
    let mut fresh = 1_000;
    let mut mismatches = Vec::new();
    for batch_number in 0..BATCHES {
        let stock: [i32; 5] =
            std::array::from_fn(|_| if rng.u8(..4) == 0 { 0 } else { rng.i32(0..=12) });
        let orders: Vec<(i32, String, &str, i32)> = (0..rng.usize(1..=16))
            .map(|_| {
                let product = if rng.u8(..10) == 0 { 6 } else { rng.i32(1..=5) };
                // Keys 1..=10 exist already; 11..=14 are shared by the
                // batch's orders (one key twice); the rest are fresh.
                let key_number = match rng.u8(..10) {
                    0 | 1 => rng.u32(1..=10),
                    2 => rng.u32(11..=14),
                    _ => {
                        fresh += 1;
                        fresh
                    }
                };
                let customer = ["ann", "bob", "cid"][rng.usize(..3)];
                (product, key(key_number), customer, rng.i32(1..=5))
            })
            .collect();
        let (batch, reference) = both(&cluster, stock, &orders);
        if batch != reference {
            mismatches.push(format!(
                "batch {batch_number}, stock {stock:?}, orders {orders:?}:\n  batch     {batch}\n  reference {reference}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {BATCHES} batches differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Each product's sale for the next batches: a window (none, open, not yet
/// started, ended) and a per-customer limit (none, or 1 to 4 units).
fn set_sales(cluster: &PgCluster, sales: &[(i32, &str, Option<i32>)]) {
    let sql: Vec<String> = sales
        .iter()
        .map(|(product, window, limit)| {
            let (starts, ends) = match *window {
                "open" => ("now() - interval '1 hour'", "now() + interval '1 hour'"),
                "upcoming" => ("now() + interval '1 hour'", "NULL"),
                "ended" => ("NULL", "now() - interval '1 second'"),
                _ => ("NULL", "NULL"),
            };
            let limit = limit.map_or("NULL".to_string(), |n| n.to_string());
            format!(
                "UPDATE products SET starts_at = {starts}, ends_at = {ends}, \
                 per_customer_limit = {limit} WHERE id = {product};"
            )
        })
        .collect();
    cluster.psql(&sql.join("\n"));
}

/// Confirmed orders that count against the customers' limits: ann has 2
/// units of product 1 and 1 of product 2, bob 1 of product 1 (and a
/// cancelled one of product 2, which does not count).
fn earlier_customer_orders(cluster: &PgCluster) {
    cluster.psql(
        "INSERT INTO orders (idempotency_key, product_id, customer_id, quantity, unit_price, \
         total_price, status) VALUES \
         ('00000000-0000-4000-8000-000000000900', 1, 'ann', 2, 100, 200, 'CONFIRMED'), \
         ('00000000-0000-4000-8000-000000000901', 2, 'ann', 1, 100, 100, 'CONFIRMED'), \
         ('00000000-0000-4000-8000-000000000902', 1, 'bob', 1, 100, 100, 'CONFIRMED'), \
         ('00000000-0000-4000-8000-000000000903', 2, 'bob', 3, 100, 300, 'CANCELLED')",
    );
}

#[test]
fn a_batch_mixing_sales_answers_each_order_as_alone() {
    let cluster = cluster();
    earlier_customer_orders(&cluster);
    // 1: limit 2 (ann is at it); 2: ended; 3: not started; 4: limit 1,
    // sold out; 5: ended and sold out.
    set_sales(
        &cluster,
        &[
            (1, "open", Some(2)),
            (2, "ended", None),
            (3, "upcoming", None),
            (4, "none", Some(1)),
            (5, "ended", None),
        ],
    );
    let orders = [
        (1, key(5), "replayer", 4), // a replay, whatever the sale says
        (1, key(301), "ann", 1),    // ann has 2 of 2
        (1, key(302), "bob", 1),    // bob has 1 of 2: fits
        (1, key(303), "bob", 1),    // and now bob has 2: refused
        (1, key(304), "cid", 2),    // cid has none: fits
        (2, key(305), "cid", 1),    // ended
        (3, key(306), "cid", 1),    // not started
        (4, key(307), "ann", 2),    // over the limit before the stock
        (4, key(308), "cid", 1),    // within it: sold out
        (5, key(309), "cid", 9),    // the window before the stock
        (99, key(310), "cid", 1),   // unknown
    ];
    let (batch, reference) = both(&cluster, [10, 10, 10, 0, 0], &orders);
    assert_eq!(batch, reference);
    assert_eq!(
        outcomes(&batch),
        ["1", "6", "0", "6", "0", "5", "4", "6", "3", "5", "2"],
        "{batch}"
    );
    assert!(batch.ends_with("stock 1=7,2=10,3=10,4=0,5=0"), "{batch}");
}

#[test]
fn random_batches_with_sales_match_order_by_order() {
    let cluster = cluster();
    earlier_customer_orders(&cluster);
    let mut rng = fastrand::Rng::with_seed(20261213);
    const BATCHES: usize = 200;
    let mut fresh = 5_000;
    let mut mismatches = Vec::new();
    for batch_number in 0..BATCHES {
        let sales: Vec<(i32, &str, Option<i32>)> = (1..=5)
            .map(|product| {
                let window = ["none", "none", "open", "upcoming", "ended"][rng.usize(..5)];
                let limit = (rng.u8(..2) == 0).then(|| rng.i32(1..=4));
                (product, window, limit)
            })
            .collect();
        set_sales(&cluster, &sales);
        let stock: [i32; 5] =
            std::array::from_fn(|_| if rng.u8(..4) == 0 { 0 } else { rng.i32(0..=12) });
        let orders: Vec<(i32, String, &str, i32)> = (0..rng.usize(1..=16))
            .map(|_| {
                let product = if rng.u8(..12) == 0 { 6 } else { rng.i32(1..=5) };
                let key_number = match rng.u8(..10) {
                    0 => rng.u32(1..=10),
                    1 => rng.u32(11..=14),
                    _ => {
                        fresh += 1;
                        fresh
                    }
                };
                let customer = ["ann", "bob", "cid"][rng.usize(..3)];
                (product, key(key_number), customer, rng.i32(1..=3))
            })
            .collect();
        let (batch, reference) = both(&cluster, stock, &orders);
        if batch != reference {
            mismatches.push(format!(
                "batch {batch_number}, sales {sales:?}, stock {stock:?}, orders {orders:?}:\n  batch     {batch}\n  reference {reference}"
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {BATCHES} batches differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// The window's edges, to the microsecond, in the function every order is
/// judged by: an order at `starts_at` is accepted, one a microsecond before
/// is not yet, one at `ends_at` is too late.
#[test]
fn window_edges_to_the_microsecond() {
    let cluster = cluster();
    cluster.psql(
        "UPDATE products SET starts_at = '2026-12-01T10:00:00Z', \
         ends_at = '2026-12-01T11:00:00Z' WHERE id = 2",
    );
    let judged = |at: &str| {
        cluster.psql(&format!(
            "SELECT order_refusal(p, 'c', 1, '{at}') FROM products p WHERE p.id = 2"
        ))
    };
    assert_eq!(judged("2026-12-01T09:59:59.999999Z"), "4");
    assert_eq!(judged("2026-12-01T10:00:00Z"), "0");
    assert_eq!(judged("2026-12-01T10:59:59.999999Z"), "0");
    assert_eq!(judged("2026-12-01T11:00:00Z"), "5");
}

/// A key that another transaction inserts and commits while a batch
/// carrying it waits on it: the batch's insert fails (unique violation),
/// nothing of the batch is committed, and the API sends its orders again one
/// by one: the key's order is answered as a replay of the other
/// transaction's order, the others are created, and the stock is right.
#[test]
fn a_batch_meeting_a_key_committed_meanwhile_is_answered_order_by_order() {
    let cluster = PgCluster::start(Auth::Trust);
    apply_schema(&cluster);
    cluster.psql(
        "INSERT INTO products VALUES (300, 'bulk', 100, 1000, 1000), (301, 'other', 100, 1000, 1000)",
    );
    let server = ServerProcess::start(&api_url(&cluster), &[("DB_POOL_SIZE", "1")]);
    const ORDERS: usize = 12;
    for attempt in 1..=5 {
        let held = new_uuid_v4();
        let body = |key: &str| {
            format!(
                r#"{{"product_id":300,"idempotency_key":"{key}","customer_id":"c","quantity":1}}"#
            )
        };
        let mut conns: Vec<Conn> = (0..ORDERS).map(|_| server.conn()).collect();
        let statuses = std::thread::scope(|scope| {
            // Another transaction takes the key (for another product, so
            // the batch is not held up by a row lock before its insert) and
            // commits a moment after the batch has begun to wait on it.
            let other = scope.spawn(|| {
                cluster.psql(&format!(
                    "BEGIN; INSERT INTO orders (idempotency_key, product_id, customer_id, quantity, \
                     unit_price, total_price, status) VALUES ('{held}', 301, 'other', 2, 100, 200, \
                     'CONFIRMED'); UPDATE products SET current_stock = current_stock - 2 WHERE id = 301; \
                     SELECT pg_sleep(1); COMMIT;"
                ))
            });
            std::thread::sleep(Duration::from_millis(300));
            // Every order is on the wire before any answer is read: they
            // travel in few batches (one at the database at a time, on one
            // connection), and the held key is not alone in its batch.
            for (i, conn) in conns.iter_mut().enumerate() {
                let key = if i == ORDERS / 2 {
                    held.clone()
                } else {
                    new_uuid_v4()
                };
                conn.send(&request_bytes(
                    "POST",
                    "/orders",
                    Some(body(&key).as_bytes()),
                ));
            }
            let statuses: Vec<(u16, String)> = conns
                .iter_mut()
                .map(|conn| {
                    let response = conn.read_response();
                    let customer = response
                        .json_any_status()
                        .get("customer_id")
                        .as_str()
                        .to_string();
                    (response.status, customer)
                })
                .collect();
            other.join().unwrap();
            statuses
        });
        // The held key answers with the other transaction's order.
        assert_eq!(
            statuses[ORDERS / 2],
            (200, "other".to_string()),
            "{statuses:?}"
        );
        for (i, answer) in statuses.iter().enumerate() {
            if i != ORDERS / 2 {
                assert_eq!(answer.0, 201, "{statuses:?}");
            }
        }
        let off = cluster.psql(
            "SELECT count(*) FROM products p WHERE p.id IN (300, 301) AND p.initial_stock <> \
             p.current_stock + (SELECT coalesce(sum(quantity), 0) FROM orders o \
                                WHERE o.product_id = p.id AND o.status = 'CONFIRMED')",
        );
        assert_eq!(off, "0", "the stock equation holds");
        if server.stderr().contains("retrying its orders one by one") {
            return;
        }
        eprintln!("attempt {attempt}: the orders did not travel as one batch; again");
    }
    panic!(
        "in 5 attempts no batch met the held key:\n{}",
        server.stderr()
    );
}

/// Sold-out and unknown products lock nothing and write nothing: such a
/// batch gets no transaction id, so its commit waits for no WAL flush (the
/// flash sale's common case once stock is gone stays cheap).
#[test]
fn a_batch_of_refusals_writes_nothing() {
    let cluster = cluster();
    let keys: Vec<String> = (300..304).map(key).collect();
    let output = cluster.psql(&format!(
        "UPDATE products SET current_stock = 0 WHERE id = 4;\n\
         BEGIN;\n\
         SELECT string_agg(outcome::text, ',' ORDER BY idx) FROM place_orders(\
             ARRAY[4, 4, 99, 4], ARRAY['{}', '{}', '{}', '{}']::uuid[], \
             ARRAY['a', 'b', 'c', 'd'], ARRAY[1, 2, 1, 5]);\n\
         SELECT coalesce(txid_current_if_assigned()::text, 'none');\n\
         COMMIT;",
        keys[0], keys[1], keys[2], keys[3]
    ));
    assert_eq!(
        output, "3,3,2,3\nnone",
        "refused, refused, no product, refused; no xid"
    );
}

/// Polls until the advisory lock 42 has sessions matching `condition`
/// (two of them for waiters, one for the holder).
fn wait_for(cluster: &PgCluster, condition: &str) {
    let want = if condition.starts_with("NOT") {
        "2"
    } else {
        "1"
    };
    for _ in 0..500 {
        let count = cluster.psql(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42 AND {condition}"
        ));
        if count == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the advisory lock never had {want} sessions with {condition}");
}

/// Two batches that carry the same two keys for different products, at the
/// same time: one by one (the old loop), each takes one key and waits for
/// the other's, a deadlock that stalls both until Postgres breaks it. Set-
/// based, every product is locked before any key and keys are inserted in
/// ascending order, so one batch waits for the other and then fails on the
/// key it committed (the API answers its orders one by one): never a
/// deadlock.
#[test]
fn batches_sharing_keys_for_other_products_never_deadlock() {
    let cluster = cluster();
    cluster.psql(
        "INSERT INTO products SELECT g, 'extra ' || g, 100, 1000000, 1000000 \
         FROM generate_series(6, 9) g",
    );
    const ROUNDS: u32 = 10;
    const BETWEEN: usize = 12;
    let race = |function: &str, round: u32| -> [Result<String, String>; 2] {
        let base = 1_000 * (round + 1);
        let (k1, k2) = (key(base), key(base + 1));
        // One batch: k1 for product 1, a dozen orders for product 6, k2 for
        // product 8; the other: k2 for product 2, a dozen for product 7, k1
        // for product 9. The products differ; the keys cross over.
        let batch = |first: i32, middle: i32, last: i32, keys: [&str; 2], fresh: u32| {
            let mut products = vec![first];
            let mut ordered_keys = vec![format!("'{}'", keys[0])];
            for i in 0..BETWEEN as u32 {
                products.push(middle);
                ordered_keys.push(format!("'{}'", key(fresh + i)));
            }
            products.push(last);
            ordered_keys.push(format!("'{}'", keys[1]));
            let n = products.len();
            // Both wait at a gate (an advisory lock the test holds) and
            // start together when it opens.
            format!(
                "SET deadlock_timeout = '50ms'; \
                 SELECT pg_advisory_lock_shared(42); SELECT pg_advisory_unlock_shared(42); \
                 BEGIN; \
                 SELECT count(*) FROM {function}(ARRAY{products:?}, ARRAY[{}]::uuid[], \
                     array_fill('c'::text, ARRAY[{n}]), array_fill(1, ARRAY[{n}])); \
                 SELECT pg_sleep(0.05); COMMIT;",
                ordered_keys.join(", ")
            )
        };
        let first = batch(1, 6, 8, [&k1, &k2], base + 100);
        let second = batch(2, 7, 9, [&k2, &k1], base + 200);
        std::thread::scope(|scope| {
            // The gate: a session holding the lock until it is ended.
            let gate = scope
                .spawn(|| cluster.try_psql("SELECT pg_advisory_lock(42); SELECT pg_sleep(60);"));
            wait_for(&cluster, "granted AND mode = 'ExclusiveLock'");
            let a = scope.spawn(|| cluster.try_psql(&first));
            let b = scope.spawn(|| cluster.try_psql(&second));
            wait_for(&cluster, "NOT granted AND mode = 'ShareLock'");
            // Both wait: end the gate's session, which frees them at once.
            cluster.psql(
                "SELECT pg_terminate_backend(pid) FROM pg_locks \
                 WHERE locktype = 'advisory' AND objid = 42 AND granted AND mode = 'ExclusiveLock'",
            );
            let _ = gate.join().unwrap();
            [a.join().unwrap(), b.join().unwrap()]
        })
    };
    let is_deadlock = |outcome: &Result<String, String>| {
        outcome
            .as_ref()
            .is_err_and(|e| e.contains("deadlock detected"))
    };
    // The race is real: one by one, the batches deadlock (in about half
    // the rounds, so twice as many rounds make a miss unlikely).
    let old: usize = (0..2 * ROUNDS)
        .map(|round| {
            race("place_orders_one_by_one", round)
                .iter()
                .filter(|o| is_deadlock(o))
                .count()
        })
        .sum();
    assert!(
        old > 0,
        "the one-by-one batches never deadlocked in {} rounds",
        2 * ROUNDS
    );
    let mut conflicts = 0;
    for round in 2 * ROUNDS..3 * ROUNDS {
        for outcome in race("place_orders", round) {
            if let Err(error) = outcome {
                assert!(
                    error.contains("duplicate key value violates unique constraint"),
                    "round {round}: {error}"
                );
                conflicts += 1;
            }
        }
    }
    // And the set-based batches did meet: one of each pair waited for the
    // other's keys and failed on them (the API then goes one by one).
    assert!(conflicts > 0, "the set-based batches never met");
    eprintln!("one by one: {old} deadlocks; set-based: {conflicts} key conflicts, no deadlock");
}

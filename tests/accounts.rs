//! Accounts and sessions (platform.md §4), against the real binary over raw
//! HTTP with two servers on one throw-away database: sign-up rules and
//! duplicates (also racing on both servers), log-in with one 401 for an
//! unknown email and a wrong password, the cookie and the Bearer token,
//! a session's customer standing in for a body without `customer_id`,
//! every 403 rule, logged-out, expired and malformed tokens refused (never
//! taken as anonymous), `REQUIRE_SESSION` on and off, the instance's bound
//! on password checks, the per-customer limit under a session's concurrent
//! orders, and the series and log events.

mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::holds::{hold_id, log_events, metric, named_stack, private_server, sql_customer};
use support::race::race;
use support::sales::{
    assert_stock_equation, json_string, object, open_conns, order_body, place, set_sale,
    unique_customer,
};
use support::server::http::{request_bytes_with_headers, Conn, Response};
use support::server::json::Json;
use support::server::{new_uuid_v4, Stack};

const PASSWORD: &str = "correct horse battery";
const PRICE: i64 = 1250;
/// Concurrent orders of one session's customer on a limit-1 product.
const SAME_CUSTOMER_CLIENTS: usize = 40;
/// Concurrent sign-ups of one email.
const SAME_EMAIL_CLIENTS: usize = 12;

/// Two servers whose password checks never run out (the tests log in a
/// lot, from many threads), holds that last, no sweep.
fn stack() -> Arc<Stack> {
    named_stack(
        "accounts",
        &[
            ("PASSWORD_CHECKS_PER_SEC", "100"),
            ("PASSWORD_CHECKS_BURST", "100"),
            ("HOLD_TTL_SECS", "3600"),
            ("HOLD_SWEEP_INTERVAL_MS", "60000"),
        ],
    )
}

fn unique_email(prefix: &str) -> String {
    format!("{prefix}.{}@Example.com", &new_uuid_v4()[..13])
}

fn credentials(email: &str, password: &str) -> String {
    object(&[
        ("email", json_string(email)),
        ("password", json_string(password)),
    ])
}

/// `POST path` with a body, retried while the instance answers 503 `busy`
/// (one password check at a time per instance: parallel tests meet it).
fn post_password_check(conn: &mut Conn, path: &str, body: &str) -> Response {
    for _ in 0..200 {
        let response = conn.post(path, body);
        if response.status != 503 {
            return response;
        }
        assert_eq!(response.header("Retry-After"), Some("1"), "{response}");
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{path} answered 503 busy for 4 s");
}

fn sign_up(conn: &mut Conn, email: &str) -> String {
    let created = post_password_check(conn, "/customers", &credentials(email, PASSWORD)).json(201);
    assert_eq!(created.keys(), ["customer_id"], "{created}");
    created.get("customer_id").as_str().to_owned()
}

/// A session: its customer and token.
struct Session {
    customer_id: String,
    token: String,
}

fn log_in(conn: &mut Conn, email: &str) -> Session {
    let response = post_password_check(conn, "/sessions", &credentials(email, PASSWORD));
    let body = response.json(201);
    assert_eq!(
        body.keys(),
        ["customer_id", "token", "expires_at"],
        "{body}"
    );
    let token = body.get("token").as_str().to_owned();
    assert_eq!(token.len(), 64, "{body}");
    assert!(token
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        response.header("Set-Cookie"),
        Some(format!("session={token}; HttpOnly; SameSite=Strict; Path=/").as_str()),
        "{response}"
    );
    assert_eq!(response.header("Cache-Control"), Some("no-store"));
    Session {
        customer_id: body.get("customer_id").as_str().to_owned(),
        token,
    }
}

/// A new account, logged in.
fn new_session(conn: &mut Conn, prefix: &str) -> Session {
    let email = unique_email(prefix);
    let customer_id = sign_up(conn, &email);
    let session = log_in(conn, &email);
    assert_eq!(session.customer_id, customer_id);
    session
}

/// How a request carries its session.
#[derive(Clone, Copy, Debug)]
enum Via {
    Bearer,
    Cookie,
}

fn with_session(token: &str, via: Via, method: &str, path: &str, body: Option<&str>) -> Vec<u8> {
    let (name, value) = match via {
        Via::Bearer => ("Authorization", format!("Bearer {token}")),
        Via::Cookie => ("Cookie", format!("theme=dark; session={token}")),
    };
    request_bytes_with_headers(method, path, &[(name, &value)], body.map(str::as_bytes))
}

fn send(conn: &mut Conn, request: &[u8]) -> Response {
    conn.send(request);
    conn.read_response()
}

fn as_session(
    conn: &mut Conn,
    session: &Session,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Response {
    send(
        conn,
        &with_session(&session.token, Via::Bearer, method, path, body),
    )
}

/// An order body of a product without `customer_id`.
fn own_order_body(product: i64, key: &str, quantity: i64) -> String {
    object(&[
        ("product_id", product.to_string()),
        ("idempotency_key", json_string(key)),
        ("quantity", quantity.to_string()),
    ])
}

/// An order of a hold with a fresh key, naming `customer` or none.
fn buy_body(hold_id: &str, customer: Option<&str>) -> String {
    let mut members = vec![
        ("hold_id", json_string(hold_id)),
        ("idempotency_key", json_string(&new_uuid_v4())),
    ];
    members.extend(customer.map(|c| ("customer_id", json_string(c))));
    object(&members)
}

#[test]
fn sign_up_validates_and_refuses_a_taken_email_in_any_case() {
    let s = stack();
    let mut conn = s.conn();
    let email = unique_email("Ana");
    let customer_id = sign_up(&mut conn, &email);
    assert!(customer_id.starts_with("acct_"), "{customer_id}");
    assert!(customer_id.len() <= 50);
    let taken = post_password_check(
        &mut conn,
        "/customers",
        &credentials(&email.to_lowercase(), "another password"),
    );
    taken.error_reason(409, "email_taken");
    // Only a bcrypt hash is kept: not the password, not a plain digest.
    let stored = s.cluster.psql(&format!(
        "SELECT password_hash FROM accounts WHERE customer_id = {}",
        sql_customer(&customer_id)
    ));
    assert!(stored.starts_with("$2a$10$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
    let bad = [
        (r#"{"password":"12345678"}"#, "email"),
        (r#"{"email":"no-at-sign","password":"12345678"}"#, "email"),
        (r#"{"email":"a @b.c","password":"12345678"}"#, "email"),
        (r#"{"email":"a@b.c"}"#, "password"),
        (r#"{"email":"a@b.c","password":"1234567"}"#, "password"),
        (r#"{"email":"a@b.c","password":12345678}"#, "password"),
        (
            r#"{"email":"a@b.c","password":"1234\u00005678"}"#,
            "password",
        ),
        ("{", ""),
        ("[]", ""),
    ];
    for (body, field) in bad {
        let response = conn.post("/customers", body);
        let field = (!field.is_empty()).then_some(field);
        response.error(422, field);
    }
    let long_password = credentials(&unique_email("long"), &"p".repeat(129));
    conn.post("/customers", &long_password)
        .error(422, Some("password"));
    let long_email = credentials(&format!("{}@b.c", "a".repeat(251)), PASSWORD);
    conn.post("/customers", &long_email)
        .error(422, Some("email"));
    // 128 characters of 2 bytes: accepted, and every one of them counts.
    let email = unique_email("long-password");
    let password = "é".repeat(128);
    post_password_check(&mut conn, "/customers", &credentials(&email, &password)).json(201);
    let mut wrong_last = "é".repeat(127);
    wrong_last.push('e');
    post_password_check(&mut conn, "/sessions", &credentials(&email, &wrong_last))
        .error_reason(401, "invalid_credentials");
    post_password_check(&mut conn, "/sessions", &credentials(&email, &password)).json(201);
    let wrong_method = conn.get("/customers");
    assert_eq!(wrong_method.status, 405, "{wrong_method}");
}

#[test]
fn one_email_signed_up_on_both_servers_at_once_makes_one_account() {
    let s = stack();
    let email = unique_email("racer");
    let ports = [s.servers[0].port(), s.servers[1].port()];
    let body = credentials(&email, PASSWORD);
    let mut statuses: Vec<u16> = thread::scope(|scope| {
        let handles: Vec<_> = (0..SAME_EMAIL_CLIENTS)
            .map(|i| {
                let (port, body) = (ports[i % 2], &body);
                scope.spawn(move || post_password_check(&mut Conn::open(port), "/customers", body))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().status)
            .collect()
    });
    statuses.sort_unstable();
    let created = statuses.iter().filter(|&&s| s == 201).count();
    let taken = statuses.iter().filter(|&&s| s == 409).count();
    assert_eq!(
        (created, taken),
        (1, SAME_EMAIL_CLIENTS - 1),
        "{statuses:?}"
    );
    let accounts = s.query_i64(&format!(
        "SELECT count(*) FROM accounts WHERE lower(email) = lower('{email}')"
    ));
    assert_eq!(accounts, 1);
}

#[test]
fn wrong_password_and_unknown_email_get_the_same_answer() {
    let s = stack();
    let mut conn = s.conn();
    let email = unique_email("Bea");
    sign_up(&mut conn, &email);
    let wrong = post_password_check(&mut conn, "/sessions", &credentials(&email, "not the one"));
    let unknown = post_password_check(
        &mut conn,
        "/sessions",
        &credentials(&unique_email("nobody"), PASSWORD),
    );
    wrong.error_reason(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.header("Set-Cookie"), None);
    assert_eq!(unknown.header("Set-Cookie"), None);
    // The email's case does not matter at log-in either.
    let session = log_in(&mut conn, &email.to_uppercase());
    let tokens = s.query_i64(&format!(
        "SELECT count(*) FROM sessions WHERE token_hash = sha256(convert_to('{}', 'UTF8'))",
        session.token
    ));
    assert_eq!(tokens, 1, "the session is kept as its token's SHA-256");
    let plain = s.query_i64(&format!(
        "SELECT count(*) FROM sessions s WHERE position('{}' in s::text) > 0",
        session.token
    ));
    assert_eq!(plain, 0, "the token itself is stored nowhere");
}

#[test]
fn a_session_is_one_customer_on_both_servers_by_bearer_and_cookie() {
    let s = stack();
    let email = unique_email("Cid");
    let mut first = s.servers[0].conn();
    let customer_id = sign_up(&mut first, &email);
    let session = log_in(&mut first, &email);
    for server in &s.servers {
        for via in [Via::Bearer, Via::Cookie] {
            let request = with_session(&session.token, via, "GET", "/sessions/current", None);
            let current = send(&mut server.conn(), &request).json(200);
            assert_eq!(current.keys(), ["customer_id", "email", "expires_at"]);
            assert_eq!(current.get("customer_id").as_str(), customer_id, "{via:?}");
            assert_eq!(current.get("email").as_str(), email);
        }
    }
    // An order with the cookie on the other server, without customer_id:
    // the session's customer's.
    let product = s.create_product(PRICE, 10);
    let body = own_order_body(product, &new_uuid_v4(), 2);
    let request = with_session(&session.token, Via::Cookie, "POST", "/orders", Some(&body));
    let order = send(&mut s.servers[1].conn(), &request).json(201);
    assert_eq!(order.get("customer_id").as_str(), customer_id);
    // Replayed by its key on the first server: the same order, 200.
    let replay = send(&mut first, &request).json(200);
    assert_eq!(replay.get("order_id"), order.get("order_id"));
    assert_stock_equation(&s, product);
}

#[test]
fn a_sessions_customer_stands_in_for_a_body_without_customer_id() {
    let s = stack();
    let mut conn = s.conn();
    let session = new_session(&mut conn, "Dee");
    let me = session.customer_id.clone();
    let product = s.create_product(PRICE, 20);
    // An order naming its own customer is the same as one naming none.
    let named = order_body(product, &new_uuid_v4(), &me, 1);
    let order = as_session(&mut conn, &session, "POST", "/orders", Some(&named)).json(201);
    assert_eq!(order.get("customer_id").as_str(), me);
    // A hold, then its purchase, without customer_id.
    let hold_body = own_order_body(product, &new_uuid_v4(), 2);
    let hold = as_session(&mut conn, &session, "POST", "/holds", Some(&hold_body)).json(201);
    assert_eq!(hold.get("customer_id").as_str(), me);
    let buy = buy_body(&hold_id(&hold), None);
    let bought = as_session(&mut conn, &session, "POST", "/orders", Some(&buy)).json(201);
    assert_eq!(bought.get("customer_id").as_str(), me);
    assert_eq!(bought.get("quantity").as_i64(), 2);
    // Its own list, and its own cancel.
    let list = as_session(
        &mut conn,
        &session,
        "GET",
        &format!("/orders?customer_id={me}"),
        None,
    )
    .json(200);
    assert_eq!(list.get("orders").as_array().len(), 2, "{list}");
    let path = format!("/orders/{}/cancel", order.get("order_id").as_str());
    let cancelled = as_session(&mut conn, &session, "POST", &path, None).json(200);
    assert_eq!(cancelled.get("restored_quantity").as_i64(), 1);
    // Without a session the anonymous API still wants the customer.
    let anonymous = conn.post("/orders", &own_order_body(product, &new_uuid_v4(), 1));
    anonymous.error(422, Some("customer_id"));
    assert_stock_equation(&s, product);
}

#[test]
fn a_session_may_not_act_for_another_customer() {
    let s = stack();
    let mut conn = s.conn();
    let session = new_session(&mut conn, "Eve");
    let other = unique_customer("other");
    let product = s.create_product(PRICE, 20);
    let stock_before = s.stock(product);
    let forbidden = |response: Response| {
        response.error_reason(403, "forbidden");
    };
    // Orders and holds naming another customer: 403, nothing taken.
    let order = order_body(product, &new_uuid_v4(), &other, 1);
    forbidden(as_session(
        &mut conn,
        &session,
        "POST",
        "/orders",
        Some(&order),
    ));
    forbidden(as_session(
        &mut conn,
        &session,
        "POST",
        "/holds",
        Some(&order),
    ));
    assert_eq!(s.stock(product), stock_before);
    // Another customer's order and hold (made anonymously): no cancel, no
    // release, no purchase naming them; they stay as they were.
    let theirs = place(&mut conn, product, &other, 1);
    let their_order = theirs.get("order_id").as_str().to_owned();
    let cancel = format!("/orders/{their_order}/cancel");
    forbidden(as_session(&mut conn, &session, "POST", &cancel, None));
    let status = conn.get(&format!("/orders/{their_order}")).json(200);
    assert_eq!(status.get("status").as_str(), "CONFIRMED");
    let their_hold = support::holds::place_hold(&mut conn, product, &other, 1);
    let release = format!("/holds/{}/release", hold_id(&their_hold));
    forbidden(as_session(&mut conn, &session, "POST", &release, None));
    let buy = buy_body(&hold_id(&their_hold), Some(&other));
    forbidden(as_session(
        &mut conn,
        &session,
        "POST",
        "/orders",
        Some(&buy),
    ));
    let hold = conn
        .get(&format!("/holds/{}", hold_id(&their_hold)))
        .json(200);
    assert_eq!(hold.get("status").as_str(), "HELD");
    // Their order list.
    let list = format!("/orders?customer_id={other}");
    forbidden(as_session(&mut conn, &session, "GET", &list, None));
    // An order that does not exist is still 404, with a session too.
    let unknown = format!("/orders/{}/cancel", new_uuid_v4());
    as_session(&mut conn, &session, "POST", &unknown, None).error(404, None);
    // A session's own hold bought by the session naming another customer.
    let mine = as_session(
        &mut conn,
        &session,
        "POST",
        "/holds",
        Some(&own_order_body(product, &new_uuid_v4(), 1)),
    )
    .json(201);
    let buy_mine_as_other = buy_body(&hold_id(&mine), Some(&other));
    forbidden(as_session(
        &mut conn,
        &session,
        "POST",
        "/orders",
        Some(&buy_mine_as_other),
    ));
    assert_stock_equation(&s, product);
    let forbidden_count = metric(
        &mut s.servers[0].conn(),
        r#"flashsale_session_refusals_total{reason="forbidden"}"#,
    ) + metric(
        &mut s.servers[1].conn(),
        r#"flashsale_session_refusals_total{reason="forbidden"}"#,
    );
    assert!(forbidden_count >= 7.0, "{forbidden_count}");
}

#[test]
fn logged_out_expired_unknown_and_malformed_tokens_are_refused_never_anonymous() {
    let s = stack();
    let mut first = s.servers[0].conn();
    let mut second = s.servers[1].conn();
    let product = s.create_product(PRICE, 20);
    let stock_before = s.stock(product);
    let invalid = |response: Response| {
        response.error_reason(401, "invalid_session");
    };
    // Logged out on one server: refused on the other at once.
    let session = new_session(&mut first, "Fay");
    let out = as_session(&mut first, &session, "DELETE", "/sessions/current", None);
    let body = out.json(200);
    assert_eq!(body.get("customer_id").as_str(), session.customer_id);
    assert_eq!(
        out.header("Set-Cookie"),
        Some("session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    );
    let order = order_body(product, &new_uuid_v4(), &session.customer_id, 1);
    for via in [Via::Bearer, Via::Cookie] {
        let request = with_session(&session.token, via, "POST", "/orders", Some(&order));
        invalid(send(&mut second, &request));
        let current = with_session(&session.token, via, "GET", "/sessions/current", None);
        invalid(send(&mut second, &current));
    }
    invalid(as_session(
        &mut second,
        &session,
        "DELETE",
        "/sessions/current",
        None,
    ));
    // Expired: the database's clock says so.
    let session = new_session(&mut first, "Gus");
    s.cluster.psql(&format!(
        "UPDATE sessions SET expires_at = now() - interval '1 second' \
         WHERE token_hash = sha256(convert_to('{}', 'UTF8'))",
        session.token
    ));
    invalid(as_session(
        &mut second,
        &session,
        "POST",
        "/orders",
        Some(&order),
    ));
    let hold = order_body(product, &new_uuid_v4(), &session.customer_id, 1);
    invalid(as_session(
        &mut second,
        &session,
        "POST",
        "/holds",
        Some(&hold),
    ));
    // Unknown, and malformed: a body that would be a fine anonymous order
    // is refused, not placed.
    let unknown = Session {
        customer_id: String::new(),
        token: "0".repeat(64),
    };
    invalid(as_session(
        &mut second,
        &unknown,
        "POST",
        "/orders",
        Some(&order),
    ));
    let malformed = [
        ("Authorization", "Bearer not-a-token".to_owned()),
        ("Authorization", "Basic dXNlcjpwYXNz".to_owned()),
        ("Cookie", "session=abc".to_owned()),
        ("Cookie", format!("session={}", "A".repeat(64))),
        (
            "Cookie",
            format!("session={0}; session={0}", "a".repeat(64)),
        ),
    ];
    for (name, value) in &malformed {
        let request =
            request_bytes_with_headers("POST", "/orders", &[(name, value)], Some(order.as_bytes()));
        invalid(send(&mut second, &request));
    }
    // Where no customer acts, a session is not looked at.
    let request = request_bytes_with_headers(
        "GET",
        &format!("/products/{product}"),
        &[("Cookie", "session=abc".to_owned().as_str())],
        None,
    );
    send(&mut second, &request).json(200);
    // GET /sessions/current without any session.
    invalid(second.get("/sessions/current"));
    assert_eq!(s.stock(product), stock_before, "nothing was taken");
    let invalid_count = metric(
        &mut s.servers[1].conn(),
        r#"flashsale_session_refusals_total{reason="invalid_session"}"#,
    );
    assert!(invalid_count >= 10.0, "{invalid_count}");
}

#[test]
fn require_session_closes_the_anonymous_writes_and_nothing_else() {
    let s = stack();
    let mut open = s.conn();
    let product = s.create_product(PRICE, 20);
    // The default: anonymous orders as the challenge places them.
    let anonymous = place(&mut open, product, &unique_customer("anon"), 1);
    let closed = private_server(&s, &[("REQUIRE_SESSION", "true")]);
    let mut conn = closed.conn();
    let required = |response: Response| {
        response.error_reason(401, "session_required");
    };
    let customer = unique_customer("anon");
    required(conn.post(
        "/orders",
        &order_body(product, &new_uuid_v4(), &customer, 1),
    ));
    required(conn.post("/holds", &order_body(product, &new_uuid_v4(), &customer, 1)));
    let order_id = anonymous.get("order_id").as_str();
    required(conn.request("POST", &format!("/orders/{order_id}/cancel"), None));
    required(conn.request("POST", &format!("/holds/{}/release", new_uuid_v4()), None));
    required(conn.get(&format!("/orders?customer_id={customer}")));
    // Reads stay open.
    conn.get(&format!("/products/{product}")).json(200);
    conn.get(&format!("/orders/{order_id}")).json(200);
    conn.get(&format!("/orders?product_id={product}")).json(200);
    conn.get("/sales").json(200);
    // With a session, the same requests pass.
    let session = new_session(&mut conn, "Hal");
    let body = own_order_body(product, &new_uuid_v4(), 1);
    let order = as_session(&mut conn, &session, "POST", "/orders", Some(&body)).json(201);
    let cancel = format!("/orders/{}/cancel", order.get("order_id").as_str());
    as_session(&mut conn, &session, "POST", &cancel, None).json(200);
    assert!(
        metric(
            &mut conn,
            r#"flashsale_session_refusals_total{reason="session_required"}"#
        ) >= 5.0
    );
    assert_stock_equation(&s, product);
}

#[test]
fn password_checks_past_the_instance_rate_are_shed_with_503() {
    let s = stack();
    let email = unique_email("Ivy");
    sign_up(&mut s.conn(), &email);
    let server = private_server(
        &s,
        &[
            ("PASSWORD_CHECKS_PER_SEC", "1"),
            ("PASSWORD_CHECKS_BURST", "1"),
        ],
    );
    let mut conn = server.conn();
    let body = credentials(&email, PASSWORD);
    conn.post("/sessions", &body).json(201);
    let shed = conn.post("/sessions", &body);
    shed.error_reason(503, "busy");
    assert_eq!(shed.header("Retry-After"), Some("1"));
    assert_eq!(conn.post("/customers", &body).status, 503);
    thread::sleep(Duration::from_millis(1100));
    conn.post("/sessions", &body).json(201);
    assert_eq!(
        metric(&mut conn, "flashsale_password_checks_shed_total"),
        2.0
    );
    assert_eq!(
        metric(&mut conn, r#"flashsale_sessions_total{outcome="opened"}"#),
        2.0
    );
    // The other routes never wait for the password checks.
    conn.get("/products/1").json(200);
}

#[test]
fn a_sessions_concurrent_orders_on_both_servers_respect_the_customer_limit() {
    let s = stack();
    let mut conn = s.conn();
    let session = new_session(&mut conn, "Jon");
    let product = s.create_product(PRICE, 100);
    set_sale(&s, product, "per_customer_limit = 1");
    let ports = [s.servers[0].port(), s.servers[1].port()];
    let mut conns = open_conns(&ports, SAME_CUSTOMER_CLIENTS);
    let requests: Vec<Vec<u8>> = (0..SAME_CUSTOMER_CLIENTS)
        .map(|i| {
            let via = if i % 2 == 0 { Via::Bearer } else { Via::Cookie };
            let body = own_order_body(product, &new_uuid_v4(), 1);
            with_session(&session.token, via, "POST", "/orders", Some(&body))
        })
        .collect();
    let responses = race(&mut conns, &requests);
    let created = responses.iter().filter(|r| r.status == 201).count();
    let limited: Vec<String> = responses
        .iter()
        .filter(|r| r.status == 409)
        .map(|r| r.error_reason(409, "customer_limit_reached"))
        .collect();
    let limited = limited.len();
    assert_eq!((created, limited), (1, SAME_CUSTOMER_CLIENTS - 1));
    assert_eq!(s.stock(product), 99);
    assert_stock_equation(&s, product);
}

#[test]
fn a_customer_lists_their_holds_and_a_session_only_its_own() {
    let s = stack();
    let mut conn = s.conn();
    let product = s.create_product(PRICE, 20);
    let anon = unique_customer("holder");
    let first = support::holds::place_hold(&mut conn, product, &anon, 1);
    let second = support::holds::place_hold(&mut conn, product, &anon, 2);
    support::holds::release(&mut conn, &hold_id(&first));
    let list = conn.get(&format!("/holds?customer_id={anon}")).json(200);
    assert_eq!(list.keys(), ["customer_id", "holds"]);
    assert_eq!(list.get("customer_id").as_str(), anon);
    let holds = list.get("holds").as_array();
    let ids: Vec<String> = holds.iter().map(hold_id).collect();
    assert_eq!(
        ids,
        [hold_id(&second), hold_id(&first)],
        "most recent first"
    );
    let statuses: Vec<&str> = holds.iter().map(|h| h.get("status").as_str()).collect();
    assert_eq!(statuses, ["HELD", "RELEASED"]);
    for hold in holds {
        support::holds::assert_hold_shape(hold);
    }
    let nobody = conn.get(&format!("/holds?customer_id={}", unique_customer("nobody")));
    assert_eq!(nobody.json(200).get("holds").as_array().len(), 0);
    conn.get("/holds").error(422, Some("customer_id"));
    conn.get("/holds?customer_id=a&customer_id=b")
        .error(422, Some("customer_id"));
    // With a session: its own list, never another's.
    let session = new_session(&mut conn, "Lee");
    let body = own_order_body(product, &new_uuid_v4(), 1);
    let mine = as_session(&mut conn, &session, "POST", "/holds", Some(&body)).json(201);
    let path = format!("/holds?customer_id={}", session.customer_id);
    let own = as_session(&mut conn, &session, "GET", &path, None).json(200);
    let own_ids: Vec<String> = own.get("holds").as_array().iter().map(hold_id).collect();
    assert_eq!(own_ids, [hold_id(&mine)]);
    let theirs = format!("/holds?customer_id={anon}");
    as_session(&mut conn, &session, "GET", &theirs, None).error_reason(403, "forbidden");
    assert_stock_equation(&s, product);
}

#[test]
fn accounts_are_counted_and_logged() {
    let s = stack();
    let server = private_server(&s, &[]);
    let mut conn = server.conn();
    let email = unique_email("Kim");
    sign_up(&mut conn, &email);
    post_password_check(&mut conn, "/customers", &credentials(&email, PASSWORD))
        .error_reason(409, "email_taken");
    let session = log_in(&mut conn, &email);
    post_password_check(
        &mut conn,
        "/sessions",
        &credentials(&email, "wrong password"),
    )
    .error_reason(401, "invalid_credentials");
    as_session(&mut conn, &session, "DELETE", "/sessions/current", None).json(200);
    let series = [
        (r#"flashsale_accounts_total{outcome="created"}"#, 1.0),
        (r#"flashsale_accounts_total{outcome="email_taken"}"#, 1.0),
        (r#"flashsale_sessions_total{outcome="opened"}"#, 1.0),
        (
            r#"flashsale_sessions_total{outcome="wrong_credentials"}"#,
            1.0,
        ),
        (r#"flashsale_sessions_total{outcome="ended"}"#, 1.0),
        (
            r#"flashsale_http_requests_total{route="create_customer",status="201"}"#,
            1.0,
        ),
        (
            r#"flashsale_http_requests_total{route="open_session",status="401"}"#,
            1.0,
        ),
        (
            r#"flashsale_http_requests_total{route="session",status="200"}"#,
            1.0,
        ),
    ];
    for (name, want) in series {
        assert_eq!(metric(&mut conn, name), want, "{name}");
    }
    let start = &log_events(&server, "start")[0];
    assert_eq!(start.get("require_session"), &Json::Bool(false));
    assert_eq!(start.get("password_checks_per_sec").as_i64(), 2);
    // The interval's summary comes within LOAD_SHED_LOG_INTERVAL (10 s)
    // of the first event, on a turn of the loop: keep it turning.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let event = loop {
        if let Some(event) = log_events(&server, "accounts").pop() {
            break event;
        }
        assert!(std::time::Instant::now() < deadline, "no accounts event");
        conn.get("/health");
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(event.get("created").as_i64(), 1, "{event}");
    assert_eq!(event.get("wrong_credentials").as_i64(), 1, "{event}");
    assert_eq!(event.get("logged_out").as_i64(), 1, "{event}");
    assert!(
        !server.stderr().contains(&session.token),
        "no token in the log"
    );
    assert!(
        !server.stderr().contains(PASSWORD),
        "no password in the log"
    );
}

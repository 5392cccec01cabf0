//! Accounts and sessions (platform.md §4): `POST /customers` (sign-up),
//! `POST /sessions` (log-in), `GET` and `DELETE /sessions/current`, and
//! where a request's session token is.
//!
//! The database does the cryptography (`sql/init.sql`, "Accounts and
//! sessions"): bcrypt through pgcrypto, tokens from its cryptographic
//! source, stored as their SHA-256. The API only moves the text. A
//! password hash costs the database tens of milliseconds of CPU by design,
//! so this instance sends them one at a time at a bounded rate
//! ([`PasswordChecks`]), each on a connection nothing else pipelines
//! behind (`Statement::slow`); past the bound, 503 at once: a log-in storm
//! cannot starve the orders (perf/RESULTS.md, "Accounts: a log-in storm").

use std::time::{Duration, Instant};

use crate::api::orders::place::SessionOrder;
use crate::api::render::{self, Malformed};
use crate::api::routes::{Command, Query};
use crate::api::statements::id_of;
use crate::api::validate::{Invalid, Member, ProductRef};
use crate::api::{malformed, refuse_for, Db, Refusal, PRODUCT_NOT_FOUND};
use crate::config::{
    EMAIL_CHARS_MAX, LOAD_SHED_LOG_INTERVAL, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN,
};
use crate::http::response::Header;
use crate::json::{self, Value};
use crate::log;
use crate::metrics::AccountFigures;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId, Timestamp};

/// A session token as the database makes it: 32 random bytes in lowercase hex.
pub const TOKEN_HEX_LEN: usize = 64;
/// The cookie that carries a browser's session.
pub const COOKIE_NAME: &[u8] = b"session";

pub const INVALID_SESSION: Refusal = refuse_for(
    401,
    "the session is not valid (unknown, expired or logged out): log in again",
    "invalid_session",
);
pub const SESSION_REQUIRED: Refusal = refuse_for(
    401,
    "this server requires a session: log in first",
    "session_required",
);
pub const FORBIDDEN: Refusal = refuse_for(
    403,
    "the session's customer may not do this: the customer_id, order or hold is another customer's",
    "forbidden",
);
pub const WRONG_CREDENTIALS: Refusal =
    refuse_for(401, "wrong email or password", "invalid_credentials");
pub const EMAIL_TAKEN: Refusal = refuse_for(
    409,
    "an account with this email exists already",
    "email_taken",
);
/// The instance's password checks are spent for the moment.
pub const PASSWORD_CHECKS_BUSY: Refusal = Refusal {
    status: 503,
    message: "too many sign-ups and log-ins at the moment, try again shortly",
    reason: Some("busy"),
    header: Some(Header::RetryAfter(1)),
};

/// SQLSTATEs `act_as` and its kin raise (`sql/init.sql`).
pub const SQLSTATE_INVALID_SESSION: &str = "FS401";
pub const SQLSTATE_FORBIDDEN: &str = "FS403";

const MSG_EMAIL_REQUIRED: &str = "email is required";
const MSG_EMAIL_DUPLICATE: &str = "duplicate field: email";
const MSG_EMAIL_FORMAT: &str =
    "email must be an address like name@example.com, at most 254 characters";
const MSG_PASSWORD_REQUIRED: &str = "password is required";
const MSG_PASSWORD_DUPLICATE: &str = "duplicate field: password";
const MSG_PASSWORD_FORMAT: &str = "password must be a string of 8 to 128 characters";
const MSG_PASSWORD_NUL: &str = "password must not contain NUL characters";

/// The session token a request carries: `Authorization: Bearer <token>`,
/// else the `session` cookie; `None` without either. A token that cannot
/// be one the database made is refused here (401), never taken as no
/// session. An empty `session` cookie (a logged-out browser's) is none.
pub fn session_token<'a>(
    authorization: Option<&'a [u8]>,
    cookie: Option<&'a [u8]>,
) -> Result<Option<&'a str>, Refusal> {
    let token = match (authorization, cookie) {
        (Some(field), _) => Some(bearer(field).ok_or(INVALID_SESSION)?),
        (None, Some(cookie)) => cookie_value(cookie)?,
        (None, None) => None,
    };
    match token {
        None => Ok(None),
        Some(token) if is_token(token) => Ok(std::str::from_utf8(token).ok()),
        Some(_) => Err(INVALID_SESSION),
    }
}

/// `Bearer <credentials>`, the scheme in any case (RFC 9110 §11.1).
fn bearer(field: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = field.split_at(field.iter().position(|&b| b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| trim_spaces(rest))
}

/// The `session` pair's value in a `Cookie` field (`a=b; session=...`):
/// none, or one; two `session` pairs are refused (which would count?).
fn cookie_value(field: &[u8]) -> Result<Option<&[u8]>, Refusal> {
    let mut found = None;
    for pair in field.split(|&b| b == b';').map(trim_spaces) {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if &pair[..eq] != COOKIE_NAME {
            continue;
        }
        if found.replace(&pair[eq + 1..]).is_some() {
            return Err(INVALID_SESSION);
        }
    }
    Ok(found.filter(|value| !value.is_empty()))
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn is_token(token: &[u8]) -> bool {
    token.len() == TOKEN_HEX_LEN
        && token
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// A routed command as the request's session makes it, and the token it
/// acts with. Where a customer acts (orders, holds, cancels, releases, a
/// customer's list; and the session's own routes): a malformed token is
/// 401, no session is the anonymous API (401 `session_required` with
/// `REQUIRE_SESSION`), and with a session an order of a product becomes a
/// statement of its own (the batch is the anonymous hot path). Elsewhere
/// the session is not looked at.
pub fn with_session<'c, 's>(
    command: Command<'c>,
    session: Result<Option<&'s str>, Refusal>,
    require_session: bool,
) -> Result<(Command<'c>, Option<&'s str>), Refusal> {
    let acting = |acts: bool| match (acts, session) {
        (false, _) => Ok(None),
        (true, Err(refusal)) => Err(refusal),
        (true, Ok(None)) if require_session => Err(SESSION_REQUIRED),
        (true, Ok(token)) => Ok(token),
    };
    match command {
        Command::PlaceOrder(order) => match acting(true)? {
            None => Ok((Command::PlaceOrder(order), None)),
            Some(token) => {
                let ProductRef::Id(product_id) = order.product_id else {
                    return Err(PRODUCT_NOT_FOUND);
                };
                let query = Query::SessionOrder(SessionOrder {
                    product_id,
                    idempotency_key: order.idempotency_key,
                    quantity: order.quantity,
                });
                Ok((Command::Query(query, order.customer_id), Some(token)))
            }
        },
        Command::Query(query, text) => {
            let own = matches!(query, Query::GetSession | Query::EndSession);
            let token = acting(own || query.acts_for_customer())?;
            Ok((Command::Query(query, text), token))
        }
        other => Ok((other, None)),
    }
}

/// The refusal an error the database raised for a session stands for.
pub fn session_refusal(sqlstate: &str) -> Option<Refusal> {
    match sqlstate {
        SQLSTATE_INVALID_SESSION => Some(INVALID_SESSION),
        SQLSTATE_FORBIDDEN => Some(FORBIDDEN),
        _ => None,
    }
}

/// `{"email", "password"}` (other members ignored), judged in that order:
/// the email (3..254 characters, one `@` with something on both sides, no
/// spaces or control characters) and the password (8..128 characters, no
/// NUL), decoded into `scratch` one after the other. Returns the email's
/// length in bytes and the two together.
pub fn credentials<'s>(body: &[u8], scratch: &'s mut String) -> Result<(u16, &'s str), Invalid> {
    let (mut email, mut password) = (Member::default(), Member::default());
    json::parse_object(body, |key, value| {
        if key == "email" {
            email.record(value);
        } else if key == "password" {
            password.record(value);
        }
        Ok(())
    })
    .map_err(|error| Invalid(error.message))?;
    let email = email.get(MSG_EMAIL_REQUIRED, MSG_EMAIL_DUPLICATE)?;
    let password = password.get(MSG_PASSWORD_REQUIRED, MSG_PASSWORD_DUPLICATE)?;
    let (Value::Str(email), Value::Str(password)) = (email, password) else {
        return Err(Invalid(match email {
            Value::Str(_) => MSG_PASSWORD_FORMAT,
            _ => MSG_EMAIL_FORMAT,
        }));
    };
    scratch.clear();
    for c in email.chars() {
        scratch.push(c);
    }
    if !is_email(scratch) {
        return Err(Invalid(MSG_EMAIL_FORMAT));
    }
    let email_len = scratch.len();
    let mut chars = 0;
    for c in password.chars() {
        if c == '\0' {
            return Err(Invalid(MSG_PASSWORD_NUL));
        }
        chars += 1;
        if chars > PASSWORD_CHARS_MAX {
            return Err(Invalid(MSG_PASSWORD_FORMAT));
        }
        scratch.push(c);
    }
    if chars < PASSWORD_CHARS_MIN {
        return Err(Invalid(MSG_PASSWORD_FORMAT));
    }
    // At most 254 characters of 4 bytes.
    let email_len = u16::try_from(email_len).map_err(|_| Invalid(MSG_EMAIL_FORMAT))?;
    Ok((email_len, scratch.as_str()))
}

/// The command of a sign-up or log-in body: `query` of the email's length,
/// with the email and password as its text; a bad body is 422.
pub fn parse<'s>(
    body: &[u8],
    scratch: &'s mut String,
    query: impl FnOnce(u16) -> Query,
) -> Result<Command<'s>, Refusal> {
    let (email_len, text) = credentials(body, scratch).map_err(Invalid::refusal)?;
    Ok(Command::Query(query(email_len), text))
}

/// Loose on purpose (addresses are checked by mail, not by pattern): one
/// `@`, something before it, a dot-free-or-not domain after it, no
/// whitespace or control characters.
fn is_email(email: &str) -> bool {
    let chars = email.chars().count();
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    (3..=EMAIL_CHARS_MAX).contains(&chars)
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A limit on the password hashes this instance asks of the database: at
/// most one at a time, and `per_second` on average with a burst of
/// `burst`; a check past it is refused at once (503), never queued.
#[derive(Debug)]
pub struct PasswordChecks {
    /// Time one check's allowance takes to come back.
    interval: Duration,
    /// How far ahead of now the allowance may be spent.
    tolerance: Duration,
    /// When the allowance is whole again (GCRA's theoretical arrival time).
    full_at: Instant,
    in_flight: bool,
    /// Checks refused here, for the metrics.
    pub shed: u64,
}

impl PasswordChecks {
    pub fn new(per_second: u32, burst: u32, now: Instant) -> PasswordChecks {
        let interval = Duration::from_secs(1) / per_second.max(1);
        PasswordChecks {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            full_at: now,
            in_flight: false,
            shed: 0,
        }
    }

    /// Takes one check's allowance, or refuses.
    pub fn admit(&mut self, now: Instant) -> Result<(), Refusal> {
        let due = self.full_at.max(now);
        if self.in_flight || due > now + self.tolerance {
            self.shed += 1;
            return Err(PASSWORD_CHECKS_BUSY);
        }
        self.full_at = due + self.interval;
        self.in_flight = true;
        Ok(())
    }

    /// The check sent after `admit` was answered (or never went out).
    pub fn done(&mut self) {
        self.in_flight = false;
    }
}

/// The `accounts` log event: every [`LOAD_SHED_LOG_INTERVAL`] in which
/// anything happened, what did (never one line per request): a log-in
/// storm, a wave of wrong passwords or of refused sessions shows here.
#[derive(Debug)]
pub struct AccountsLog {
    next_at: Instant,
    /// The figures when the interval began.
    before: AccountFigures,
    shed_before: u64,
}

impl AccountsLog {
    pub fn new(now: Instant) -> AccountsLog {
        AccountsLog {
            next_at: now + LOAD_SHED_LOG_INTERVAL,
            before: AccountFigures::default(),
            shed_before: 0,
        }
    }

    pub fn end_of_turn(&mut self, figures: &AccountFigures, shed: u64, now: Instant) {
        if now < self.next_at {
            return;
        }
        self.next_at = now + LOAD_SHED_LOG_INTERVAL;
        let (a, b) = (figures, &self.before);
        let counts = [
            ("created", a.created - b.created),
            ("email_taken", a.email_taken - b.email_taken),
            ("logged_in", a.opened - b.opened),
            (
                "wrong_credentials",
                a.wrong_credentials - b.wrong_credentials,
            ),
            ("logged_out", a.ended - b.ended),
            ("invalid_session", a.invalid_session - b.invalid_session),
            ("forbidden", a.forbidden - b.forbidden),
            ("session_required", a.session_required - b.session_required),
            ("password_checks_shed", shed - self.shed_before),
        ];
        self.before = *figures;
        self.shed_before = shed;
        if counts.iter().all(|&(_, n)| n == 0) {
            return;
        }
        let mut fields: Vec<(&str, log::Value<'_>)> = counts
            .iter()
            .map(|&(name, n)| (name, log::Value::Int(n as i64)))
            .collect();
        fields.push((
            "seconds",
            log::Value::Int(LOAD_SHED_LOG_INTERVAL.as_secs() as i64),
        ));
        log::event("accounts", &fields);
    }
}

pub const CREATE_ACCOUNT: Statement = Statement {
    name: "create_account",
    sql: "SELECT * FROM create_account($1, $2)",
    param_types: &[oid::TEXT, oid::TEXT],
    column_names: &["outcome", "customer_id"],
    column_types: &[oid::INT4, oid::TEXT],
    writes: true,
    slow: true,
};
const CREATE_ACCOUNT_ID: StatementId = id_of(&CREATE_ACCOUNT);

pub const OPEN_SESSION: Statement = Statement {
    name: "open_session",
    sql: "SELECT * FROM open_session($1, $2, $3)",
    param_types: &[oid::TEXT, oid::TEXT, oid::INT4],
    column_names: &["outcome", "customer_id", "token", "expires_at"],
    column_types: &[oid::INT4, oid::TEXT, oid::TEXT, oid::TIMESTAMPTZ],
    writes: true,
    slow: true,
};
const OPEN_SESSION_ID: StatementId = id_of(&OPEN_SESSION);

pub const GET_SESSION: Statement = Statement {
    name: "get_session",
    sql: "SELECT * FROM get_session($1)",
    param_types: &[oid::TEXT],
    column_names: &["customer_id", "email", "expires_at"],
    column_types: &[oid::TEXT, oid::TEXT, oid::TIMESTAMPTZ],
    writes: false,
    slow: false,
};
const GET_SESSION_ID: StatementId = id_of(&GET_SESSION);

pub const END_SESSION: Statement = Statement {
    name: "end_session",
    sql: "SELECT * FROM end_session($1)",
    param_types: &[oid::TEXT],
    column_names: &["customer_id"],
    column_types: &[oid::TEXT],
    writes: true,
    slow: false,
};
const END_SESSION_ID: StatementId = id_of(&END_SESSION);

/// `text`: the email (its first `email_len` bytes) and the password.
pub fn submit_create(db: &mut Db<'_>, email_len: u16, text: &str) -> Result<(), Refused> {
    let (email, password) = text.split_at(usize::from(email_len));
    db.submit(
        CREATE_ACCOUNT_ID,
        &[Param::Text(email), Param::Text(password)],
    )
}

pub fn submit_open(
    db: &mut Db<'_>,
    email_len: u16,
    text: &str,
    ttl_secs: i32,
) -> Result<(), Refused> {
    let (email, password) = text.split_at(usize::from(email_len));
    db.submit(
        OPEN_SESSION_ID,
        &[
            Param::Text(email),
            Param::Text(password),
            Param::Int4(ttl_secs),
        ],
    )
}

pub fn submit_get(db: &mut Db<'_>, token: &str) -> Result<(), Refused> {
    db.submit(GET_SESSION_ID, &[Param::Text(token)])
}

pub fn submit_end(db: &mut Db<'_>, token: &str) -> Result<(), Refused> {
    db.submit(END_SESSION_ID, &[Param::Text(token)])
}

/// `create_account` outcomes (`sql/init.sql`).
const CREATED: i32 = 0;
const TAKEN: i32 = 40;
/// `open_session` outcomes.
const OPENED: i32 = 0;
const WRONG: i32 = 41;

/// `201 {"customer_id":…}` or `409 email_taken`.
pub fn answer_create(
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    figures: &mut AccountFigures,
) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    match (row.i32(0), row.text(1)) {
        (Some(CREATED), Some(customer_id)) => {
            figures.created += 1;
            render::text(body, b"{\"customer_id\":", customer_id);
            body.push(b'}');
            Ok(201)
        }
        (Some(TAKEN), _) => {
            figures.email_taken += 1;
            Err(EMAIL_TAKEN)
        }
        _ => Err(malformed(Malformed)),
    }
}

/// `201 {"customer_id","token","expires_at"}` with the session's cookie
/// (into `cookie`: the `Set-Cookie` value), or `401 invalid_credentials`
/// (one answer for an unknown email and a wrong password).
pub fn answer_open(
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    cookie: &mut Vec<u8>,
    figures: &mut AccountFigures,
) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    match row.i32(0) {
        Some(OPENED) => {}
        Some(WRONG) => {
            figures.wrong_credentials += 1;
            return Err(WRONG_CREDENTIALS);
        }
        _ => return Err(malformed(Malformed)),
    }
    let (Some(customer_id), Some(token), Some(expires_at)) =
        (row.text(1), row.text(2), row.timestamp_micros(3))
    else {
        return Err(malformed(Malformed));
    };
    if !is_token(token.as_bytes()) {
        return Err(malformed(Malformed));
    }
    figures.opened += 1;
    render::text(body, b"{\"customer_id\":", customer_id);
    render::text(body, b",\"token\":", token);
    render::timestamp(body, b",\"expires_at\":", Timestamp(expires_at));
    body.push(b'}');
    // No Max-Age: the browser forgets it when it closes; the database
    // ends it at expires_at either way (platform.md §4's cookie).
    cookie.extend_from_slice(b"session=");
    cookie.extend_from_slice(token.as_bytes());
    cookie.extend_from_slice(b"; HttpOnly; SameSite=Strict; Path=/");
    Ok(201)
}

/// `200 {"customer_id","email","expires_at"}`.
pub fn answer_get(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    let (Some(customer_id), Some(email), Some(expires_at)) =
        (row.text(0), row.text(1), row.timestamp_micros(2))
    else {
        return Err(malformed(Malformed));
    };
    render::text(body, b"{\"customer_id\":", customer_id);
    render::text(body, b",\"email\":", email);
    render::timestamp(body, b",\"expires_at\":", Timestamp(expires_at));
    body.push(b'}');
    Ok(200)
}

/// `200 {"customer_id","logged_out":true}`, and the cookie cleared.
pub fn answer_end(
    rows: Rows<'_>,
    body: &mut Vec<u8>,
    cookie: &mut Vec<u8>,
    figures: &mut AccountFigures,
) -> Result<u16, Refusal> {
    let row = rows.first().ok_or(Malformed).map_err(malformed)?;
    let customer_id = row.text(0).ok_or(Malformed).map_err(malformed)?;
    figures.ended += 1;
    render::text(body, b"{\"customer_id\":", customer_id);
    body.extend_from_slice(b",\"logged_out\":true}");
    cookie.extend_from_slice(CLEARED_COOKIE);
    Ok(200)
}

/// What a browser keeps of a session after logging out: nothing.
const CLEARED_COOKIE: &[u8] = b"session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0";

/// Whether the query hashes a password (the instance's
/// [`PasswordChecks`] admit it).
pub fn is_password_check(query: &Query) -> bool {
    matches!(
        query,
        Query::CreateAccount { .. } | Query::OpenSession { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_comes_from_bearer_first_then_the_cookie() {
        let bearer = format!("Bearer {TOKEN}");
        let cookie = format!("theme=dark; session={TOKEN}; x=1");
        assert_eq!(
            session_token(Some(bearer.as_bytes()), None),
            Ok(Some(TOKEN))
        );
        assert_eq!(
            session_token(Some(format!("bearer  {TOKEN}").as_bytes()), None),
            Ok(Some(TOKEN))
        );
        assert_eq!(
            session_token(None, Some(cookie.as_bytes())),
            Ok(Some(TOKEN))
        );
        assert_eq!(session_token(None, Some(b"theme=dark")), Ok(None));
        assert_eq!(session_token(None, Some(b"session=")), Ok(None));
        assert_eq!(session_token(None, None), Ok(None));
    }

    #[test]
    fn a_token_that_cannot_be_ours_is_refused_never_ignored() {
        let refused = [
            (Some(&b"Basic dXNlcjpwYXNz"[..]), None),
            (Some(&b"Bearer"[..]), None),
            (Some(&b"Bearer abc"[..]), None),
            (None, Some(&b"session=abc"[..])),
            (
                None,
                Some(
                    &b"session=0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"[..],
                ),
            ),
        ];
        for (authorization, cookie) in refused {
            assert_eq!(
                session_token(authorization, cookie),
                Err(INVALID_SESSION),
                "{authorization:?} {cookie:?}"
            );
        }
        let twice = format!("session={TOKEN}; session={TOKEN}");
        assert_eq!(
            session_token(None, Some(twice.as_bytes())),
            Err(INVALID_SESSION)
        );
    }

    #[test]
    fn a_session_changes_only_where_a_customer_acts() {
        use crate::api::orders::place::OrderRequest;
        let order = || {
            Command::PlaceOrder(OrderRequest {
                product_id: ProductRef::Id(3),
                idempotency_key: [4; 16],
                customer_id: "",
                quantity: 2,
            })
        };
        let product = || Command::Query(Query::GetProduct(3), "");
        let (command, token) = with_session(order(), Ok(Some(TOKEN)), false).unwrap();
        assert_eq!(token, Some(TOKEN));
        assert!(matches!(
            command,
            Command::Query(
                Query::SessionOrder(SessionOrder {
                    product_id: 3,
                    quantity: 2,
                    ..
                }),
                ""
            )
        ));
        let (command, token) = with_session(order(), Ok(None), false).unwrap();
        assert!(matches!((command, token), (Command::PlaceOrder(_), None)));
        assert_eq!(
            with_session(order(), Ok(None), true).unwrap_err(),
            SESSION_REQUIRED
        );
        assert_eq!(
            with_session(order(), Err(INVALID_SESSION), false).unwrap_err(),
            INVALID_SESSION
        );
        // Reads ignore sessions, bad ones included, and REQUIRE_SESSION.
        let (_, token) = with_session(product(), Err(INVALID_SESSION), true).unwrap();
        assert_eq!(token, None);
        let cancel = Command::Query(
            Query::CancelOrder {
                order_id: [1; 16],
                product_id: None,
            },
            "",
        );
        assert_eq!(
            with_session(cancel, Ok(None), true).unwrap_err(),
            SESSION_REQUIRED
        );
        let current = Command::Query(Query::GetSession, "");
        let (_, token) = with_session(current, Ok(Some(TOKEN)), false).unwrap();
        assert_eq!(token, Some(TOKEN));
    }

    fn creds(body: &str) -> Result<(String, String), &'static str> {
        let mut scratch = String::new();
        credentials(body.as_bytes(), &mut scratch)
            .map(|(n, text)| {
                let (email, password) = text.split_at(n as usize);
                (email.to_string(), password.to_string())
            })
            .map_err(|Invalid(message)| message)
    }

    #[test]
    fn credentials_are_judged_email_first() {
        assert_eq!(
            creds(r#"{"email":"Ana@Example.com","password":"correct horse","x":1}"#),
            Ok(("Ana@Example.com".into(), "correct horse".into()))
        );
        assert_eq!(
            creds(r#"{"email":"ana@example.com","password":"p\u00e4ssw\u00f6rd"}"#),
            Ok(("ana@example.com".into(), "pässwörd".into()))
        );
        let table = [
            (r#"{"password":"12345678"}"#, MSG_EMAIL_REQUIRED),
            (r#"{"email":"a@b.c"}"#, MSG_PASSWORD_REQUIRED),
            (
                r#"{"email":"nope","password":"12345678"}"#,
                MSG_EMAIL_FORMAT,
            ),
            (
                r#"{"email":"a b@c.d","password":"12345678"}"#,
                MSG_EMAIL_FORMAT,
            ),
            (
                r#"{"email":"@c.d","password":"12345678"}"#,
                MSG_EMAIL_FORMAT,
            ),
            (r#"{"email":"a@","password":"12345678"}"#, MSG_EMAIL_FORMAT),
            (
                r#"{"email":"a@b@c","password":"12345678"}"#,
                MSG_EMAIL_FORMAT,
            ),
            (r#"{"email":5,"password":"12345678"}"#, MSG_EMAIL_FORMAT),
            (
                r#"{"email":"a@b.c","password":12345678}"#,
                MSG_PASSWORD_FORMAT,
            ),
            (
                r#"{"email":"a@b.c","password":"1234567"}"#,
                MSG_PASSWORD_FORMAT,
            ),
            (
                r#"{"email":"a@b.c","password":"1234\u00005678"}"#,
                MSG_PASSWORD_NUL,
            ),
            (
                r#"{"email":"a@b.c","email":"d@e.f","password":"12345678"}"#,
                MSG_EMAIL_DUPLICATE,
            ),
        ];
        for (body, message) in table {
            assert_eq!(creds(body), Err(message), "{body}");
        }
        let long_email = format!(
            r#"{{"email":"{}@b.c","password":"12345678"}}"#,
            "a".repeat(251)
        );
        assert_eq!(creds(&long_email), Err(MSG_EMAIL_FORMAT));
        let longest = format!(r#"{{"email":"a@b.c","password":"{}"}}"#, "é".repeat(128));
        assert!(creds(&longest).is_ok());
        let too_long = format!(r#"{{"email":"a@b.c","password":"{}"}}"#, "é".repeat(129));
        assert_eq!(creds(&too_long), Err(MSG_PASSWORD_FORMAT));
        assert!(creds("{").is_err());
    }

    #[test]
    fn password_checks_go_one_at_a_time_within_the_rate() {
        let t0 = Instant::now();
        let mut checks = PasswordChecks::new(2, 3, t0);
        assert_eq!(checks.admit(t0), Ok(()));
        // One at a time.
        assert_eq!(checks.admit(t0), Err(PASSWORD_CHECKS_BUSY));
        checks.done();
        assert_eq!(checks.admit(t0), Ok(()));
        checks.done();
        assert_eq!(checks.admit(t0), Ok(()));
        checks.done();
        // The burst of 3 is spent: the next allowance is back 0.5 s later.
        assert_eq!(checks.admit(t0), Err(PASSWORD_CHECKS_BUSY));
        assert_eq!(
            checks.admit(t0 + Duration::from_millis(499)),
            Err(PASSWORD_CHECKS_BUSY)
        );
        assert_eq!(checks.admit(t0 + Duration::from_millis(500)), Ok(()));
        checks.done();
        assert_eq!(checks.shed, 3);
        // Idle for long: the burst again, not more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(checks.admit(later), Ok(()));
            checks.done();
        }
        assert_eq!(checks.admit(later), Err(PASSWORD_CHECKS_BUSY));
    }
}

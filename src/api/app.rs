//! The application as the event loop sees it: a request comes in and is
//! answered at once or sent to the database; a database reply becomes the
//! answer of the request that waits for it; at the end of each turn the
//! orders gathered meanwhile go to the database together.

use std::time::Instant;

use crate::api::accounts::{self, AccountsLog, PasswordChecks};
use crate::api::holds::sweep::{HoldSweeper, SWEEP_TAG};
use crate::api::orders::batch::{self, Batcher};
use crate::api::rate_limit::CustomerRateLimit;
use crate::api::routes::{self, Command, Query, QueryFigures, QueryInput};
use crate::api::statements::STATEMENTS;
use crate::api::{
    admin, answer_of, health, refusal_for, Answer, Db, Handled, Host, Refusal, Request, RequestId,
    DATABASE_ERROR, DATABASE_TIMED_OUT, DATABASE_UNAVAILABLE, KEYED_OUTCOME_UNKNOWN, NOT_FOUND,
    OVERLOADED,
};
use crate::config::{
    Settings, ANSWER_BODY_BYTES_INITIAL, COOKIE_BYTES_MAX, CUSTOMER_ID_BYTES_MAX,
    HTTP_CONNECTIONS_MAX,
};
use crate::log::{self, Value};
use crate::metrics::{AppFigures, Route};
use crate::pg::{Pool, Reply, Statement};

pub struct App {
    /// `ADMIN_TOKEN`: `None`, the administration does not exist (404).
    admin_token: Option<Box<[u8]>>,
    /// `WEBHOOK_SECRET`: `None`, the payment webhook does not exist (404).
    webhook_secret: Option<Box<[u8]>>,
    /// `HOLD_TTL_SECS`.
    hold_ttl_secs: i32,
    /// `REQUIRE_SESSION`, `SESSION_TTL_SECS`.
    require_session: bool,
    session_ttl_secs: i32,
    hold_sweeper: HoldSweeper,
    accounts_log: AccountsLog,
    queries: QueryTable,
    orders: Batcher,
    /// Checked by every customer-keyed write before it takes anything.
    customer_rate_limit: CustomerRateLimit,
    /// Decoded request text the routed command borrows (a customer id).
    text: String,
    /// Answers are rendered here, then copied into the client's output.
    body: Vec<u8>,
}

impl App {
    /// The application as `settings` describe it (the rate limit's table
    /// is allocated now).
    pub fn new(settings: &Settings, now: Instant) -> App {
        // One batch at most per connection: pipelined transactions on one
        // connection commit one after another, so a second one could only wait.
        let batches_in_flight = settings.order_batches_in_flight.min(settings.pool_size);
        let secret = |value: &Option<String>| value.as_ref().map(|v| v.as_bytes().into());
        App {
            admin_token: secret(&settings.admin_token),
            webhook_secret: secret(&settings.webhook_secret),
            hold_ttl_secs: i32::try_from(settings.hold_ttl_secs).unwrap_or(i32::MAX),
            require_session: settings.require_session,
            session_ttl_secs: i32::try_from(settings.session_ttl_secs).unwrap_or(i32::MAX),
            hold_sweeper: HoldSweeper::new(settings.hold_sweep_interval, now),
            accounts_log: AccountsLog::new(now),
            queries: QueryTable::new(PasswordChecks::new(
                settings.password_checks_per_sec,
                settings.password_checks_burst,
                now,
            )),
            orders: Batcher::new(batches_in_flight, settings.pool_size),
            customer_rate_limit: CustomerRateLimit::new(settings.customer_rate_limit, now),
            text: String::with_capacity(CUSTOMER_ID_BYTES_MAX),
            body: Vec::with_capacity(ANSWER_BODY_BYTES_INITIAL),
        }
    }

    /// The statements every database connection prepares for the application.
    pub fn statements() -> &'static [Statement] {
        STATEMENTS
    }

    /// Routes and validates a request, then answers it at once or sends it
    /// on its way to the database. Also says which route it counts under.
    pub fn on_request(
        &mut self,
        request: &Request<'_>,
        pool: &mut Pool,
        now: Instant,
    ) -> (Route, Handled<'_>) {
        // The administration answers nothing, not even a 422, to a request
        // without the token; without a token set, it is not there at all.
        let admin_token = self.admin_token.as_deref();
        let webhook_secret = self.webhook_secret.as_deref();
        let admit = |route| match (route, admin_token) {
            (Route::Admin, None) => Err(NOT_FOUND),
            (Route::Admin, Some(token)) => admin::authorize(token, request.authorization),
            (Route::PaymentWebhook, _) if webhook_secret.is_none() => Err(NOT_FOUND),
            _ => Ok(()),
        };
        // The session a request carries (a Bearer token or the cookie),
        // looked at only where a customer acts; the administration's
        // Authorization is its own token.
        let session = accounts::session_token(request.authorization, request.cookie);
        let carries_session = !matches!(session, Ok(None));
        let (label, routed) = routes::route_labelled(
            request.method,
            request.target,
            request.body,
            request.signature,
            carries_session,
            &mut self.text,
            admit,
        );
        // A refusal's reason, for the session refusals' count.
        let mut refused_for = None;
        let mut refused = |refusal: Refusal| {
            refused_for = refusal.reason;
            Handled::Answered(Answer::Refused(refusal))
        };
        let require_session = self.require_session;
        let routed =
            routed.and_then(|command| accounts::with_session(command, session, require_session));
        let handled = match routed {
            Err(refusal) => refused(refusal),
            Ok((Command::Health, _)) => Handled::Answered(health::answer(pool.is_healthy())),
            Ok((Command::Metrics, _)) => Handled::Metrics,
            Ok((Command::PlaceOrder(order), _)) => match (self.customer_rate_limit)
                .admit(order.customer_id, now)
                .and_then(|()| self.orders.add(request.id, &order))
            {
                Ok(()) => Handled::Pending,
                Err(refusal) => refused(refusal),
            },
            Ok((Command::Query(query, text), token)) => {
                let input = QueryInput {
                    text,
                    body: request.body,
                    hold_ttl_secs: self.hold_ttl_secs,
                    webhook_secret: webhook_secret.unwrap_or_default(),
                    session: token,
                    session_ttl_secs: self.session_ttl_secs,
                };
                // A session's customer may be left out of the body: its
                // token then stands for it in the rate limit.
                let rate_key = match (text, token) {
                    ("", Some(token)) => token,
                    _ => text,
                };
                let admitted = match query.is_customer_write() {
                    true => self.customer_rate_limit.admit(rate_key, now),
                    false => Ok(()),
                };
                match admitted
                    .and_then(|()| self.queries.submit(request.id, query, &input, pool, now))
                {
                    Ok(()) => Handled::Pending,
                    Err(refusal) => refused(refusal),
                }
            }
        };
        self.queries.figures.accounts.count_refusal(refused_for);
        (label, handled)
    }

    /// The application's own figures for the metrics.
    pub fn figures(&self) -> AppFigures<'_> {
        let figures = &self.queries.figures;
        AppFigures {
            batch_sizes: self.orders.sizes(),
            order_refusals: self
                .orders
                .refusals()
                .plus(&figures.holds.purchase_refusals)
                .plus(&figures.session_order_refusals),
            hold_refusals: figures.holds.refusals,
            hold_sweeps: figures.holds.sweeps,
            holds_expired: figures.holds.expired,
            webhooks: figures.webhooks,
            accounts: figures.accounts,
            password_checks_shed: self.queries.password_checks.shed,
            rate_limit_customers: self.customer_rate_limit.customers(),
            rate_limit_evictions: self.customer_rate_limit.evictions(),
        }
    }

    /// A database reply for the request (or the order batch) `tag` names.
    pub fn on_reply(&mut self, tag: u64, reply: Reply<'_>, host: &mut impl Host) {
        if batch::owns(tag) {
            self.orders.on_reply(tag, reply, &mut self.body, host);
        } else if tag == SWEEP_TAG {
            (self.hold_sweeper).on_reply(reply, &mut self.queries.figures.holds);
        } else {
            self.queries.on_reply(tag, reply, &mut self.body, host);
        }
    }

    /// Sends what the turn gathered: the orders, in batches; and a sweep
    /// of due holds when its time has come.
    pub fn end_of_turn(&mut self, pool: &mut Pool, host: &mut impl Host, now: Instant) {
        self.orders.send(pool, host, now);
        self.hold_sweeper.tick(pool, now);
        self.customer_rate_limit.end_of_turn(now);
        let queries = &self.queries;
        (self.accounts_log).end_of_turn(
            &queries.figures.accounts,
            queries.password_checks.shed,
            now,
        );
    }

    /// When the loop must wake for the application's own work, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.hold_sweeper.next_at()
    }

    /// The server stops: whatever never reached the database is answered.
    pub fn on_shutdown(&mut self, host: &mut impl Host) {
        self.orders.refuse_unsent(host);
    }
}

/// A request at the database for one statement's answer.
struct Waiting {
    request: RequestId,
    query: Query,
}

/// Requests at the database, by slot; the slot is the pool tag. A client
/// has at most one request at the database, so there are at most as many
/// as connections, and the table is sized for that up front.
struct QueryTable {
    slots: Vec<Option<Waiting>>,
    free: Vec<u32>,
    figures: QueryFigures,
    /// Sign-ups and log-ins (password hashes) this instance may send.
    password_checks: PasswordChecks,
    /// A `Set-Cookie` value an answer renders (a session's start or end).
    cookie: Vec<u8>,
}

impl QueryTable {
    fn new(password_checks: PasswordChecks) -> QueryTable {
        QueryTable {
            slots: Vec::with_capacity(HTTP_CONNECTIONS_MAX),
            free: Vec::with_capacity(HTTP_CONNECTIONS_MAX),
            figures: QueryFigures::default(),
            password_checks,
            cookie: Vec::with_capacity(COOKIE_BYTES_MAX),
        }
    }

    fn submit(
        &mut self,
        request: RequestId,
        query: Query,
        input: &QueryInput<'_>,
        pool: &mut Pool,
        now: Instant,
    ) -> Result<(), Refusal> {
        let password_check = accounts::is_password_check(&query);
        if password_check {
            self.password_checks.admit(now)?;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot as usize,
            None if self.slots.len() < HTTP_CONNECTIONS_MAX => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => {
                if password_check {
                    self.password_checks.done();
                }
                return Err(OVERLOADED);
            }
        };
        let mut db = Db {
            pool,
            tag: slot as u64,
            now,
        };
        match query.submit(&mut db, input) {
            Ok(()) => {
                self.slots[slot] = Some(Waiting { request, query });
                Ok(())
            }
            Err(refused) => {
                self.free.push(slot as u32);
                if password_check {
                    self.password_checks.done();
                }
                Err(refusal_for(refused))
            }
        }
    }

    fn on_reply(&mut self, tag: u64, reply: Reply<'_>, body: &mut Vec<u8>, host: &mut impl Host) {
        let slot = tag as usize;
        let Some(waiting) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.free.push(slot as u32);
        if accounts::is_password_check(&waiting.query) {
            self.password_checks.done();
        }
        body.clear();
        self.cookie.clear();
        let rendered = match reply {
            Reply::Rows(rows) => {
                let (cookie, figures) = (&mut self.cookie, &mut self.figures);
                waiting.query.answer(rows, body, cookie, figures)
            }
            // A hold, or an order of one, may have committed: its key tells.
            Reply::Unavailable if waiting.query.is_customer_write() => Err(KEYED_OUTCOME_UNKNOWN),
            Reply::Unavailable => Err(DATABASE_UNAVAILABLE),
            Reply::Failed(error) => match accounts::session_refusal(error.code) {
                // A session that is not live, or another customer's thing.
                Some(refusal) => {
                    self.figures.accounts.count_refusal(refusal.reason);
                    Err(refusal)
                }
                None if error.is_timeout() => Err(DATABASE_TIMED_OUT),
                None => {
                    let query = format!("{:?}", waiting.query);
                    log::database_error("query_failed", &error, &[("query", Value::Str(&query))]);
                    Err(DATABASE_ERROR)
                }
            },
        };
        let answer = match rendered {
            Ok(status) if !self.cookie.is_empty() => Answer::JsonWithCookie {
                status,
                body,
                cookie: &self.cookie,
            },
            rendered => answer_of(rendered, body),
        };
        host.answer(waiting.request, answer);
    }
}

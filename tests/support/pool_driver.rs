//! A pool of our Postgres client driven by a small mio loop of the test's
//! own, the way the server's event loop drives it, with the statements the
//! client tests prepare: shared by tests/pg_client.rs and tests/pg_failover.rs.

use std::time::{Duration, Instant};

use flashsale::pg::{oid, ConnectConfig, Param, Pool, PoolConfig, Refused, Reply, Statement};
use mio::{Events, Poll};

use super::cluster::PgCluster;

pub const ECHO: usize = 0;
pub const DIVIDE: usize = 1;
pub const INSERT_UNIQUE: usize = 2;
pub const SLEEP_MS: usize = 3;
pub const TYPES: usize = 4;
pub const SUM_ARRAY: usize = 5;
pub const NOISY: usize = 6;
pub const SET_APP_NAME: usize = 7;
pub const SLEEP_MS_WRITING: usize = 8;
pub const DEADLINES: usize = 9;
pub const SLEEP_MS_SLOW: usize = 10;
pub const WHERE_AM_I: usize = 11;

pub static STATEMENTS: &[Statement] = &[
    Statement {
        name: "echo",
        sql: "SELECT $1::int4 + 0, 'v' || $2::text",
        param_types: &[oid::INT4, oid::TEXT],
        column_names: &[],
        column_types: &[oid::INT4, oid::TEXT],
        writes: false,
        slow: false,
    },
    Statement {
        name: "divide",
        sql: "SELECT 100 / $1",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[oid::INT4],
        writes: false,
        slow: false,
    },
    Statement {
        name: "insert_unique",
        sql: "INSERT INTO t_unique (k) VALUES ($1)",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[],
        writes: true,
        slow: false,
    },
    Statement {
        name: "sleep_ms",
        sql: "SELECT $1 FROM pg_sleep($1 / 1000.0)",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[oid::INT4],
        writes: false,
        slow: false,
    },
    Statement {
        name: "types",
        sql: "SELECT $1::uuid, $2::int8, $3::bool, $4::text, now(), NULL::int4, $5::int2",
        param_types: &[oid::UUID, oid::INT8, oid::BOOL, oid::TEXT, oid::INT2],
        column_names: &[],
        column_types: &[
            oid::UUID,
            oid::INT8,
            oid::BOOL,
            oid::TEXT,
            oid::TIMESTAMPTZ,
            oid::INT4,
            oid::INT2,
        ],
        writes: false,
        slow: false,
    },
    Statement {
        name: "sum_array",
        sql: "SELECT coalesce(sum(x), 0)::int8, (SELECT count(*)::int4 FROM unnest($2::uuid[])), \
              (SELECT string_agg(t, ',') FROM unnest($3::text[]) t) FROM unnest($1::int4[]) x",
        param_types: &[oid::INT4_ARRAY, oid::UUID_ARRAY, oid::TEXT_ARRAY],
        column_names: &[],
        column_types: &[oid::INT8, oid::INT4, oid::TEXT],
        writes: false,
        slow: false,
    },
    Statement {
        name: "noisy",
        sql: "SELECT noisy($1)",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[oid::INT4],
        writes: false,
        slow: false,
    },
    Statement {
        name: "set_app_name",
        sql: "SELECT set_config('application_name', $1, false)",
        param_types: &[oid::TEXT],
        column_names: &[],
        column_types: &[oid::TEXT],
        writes: false,
        slow: false,
    },
    // A stand-in for an order waiting on a row lock: declared as writing,
    // so the pool routes it as one.
    Statement {
        name: "sleep_ms_writing",
        sql: "SELECT $1 FROM pg_sleep($1 / 1000.0)",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[oid::INT4],
        writes: true,
        slow: false,
    },
    Statement {
        name: "deadlines",
        sql: "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
        param_types: &[],
        column_names: &[],
        column_types: &[oid::TEXT, oid::TEXT],
        writes: false,
        slow: false,
    },
    // A stand-in for a password hash: slow by design.
    Statement {
        name: "sleep_ms_slow",
        sql: "SELECT $1 FROM pg_sleep($1 / 1000.0)",
        param_types: &[oid::INT4],
        column_names: &[],
        column_types: &[oid::INT4],
        writes: true,
        slow: true,
    },
    // Which server answered: a standby?, its TCP port.
    Statement {
        name: "where_am_i",
        sql: "SELECT pg_catalog.pg_is_in_recovery(), inet_server_port()",
        param_types: &[],
        column_names: &[],
        column_types: &[oid::BOOL, oid::INT4],
        writes: false,
        slow: false,
    },
];

/// An owned copy of a reply, so tests can look at it after the callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows(Vec<Vec<Option<Vec<u8>>>>),
    Failed { code: String, message: String },
    Unavailable,
}

impl Outcome {
    pub fn from_reply(reply: Reply<'_>) -> Outcome {
        match reply {
            Reply::Rows(rows) => Outcome::Rows(
                rows.iter()
                    .map(|r| r.values().map(|v| v.map(<[u8]>::to_vec)).collect())
                    .collect(),
            ),
            Reply::Failed(e) => Outcome::Failed {
                code: e.code.to_string(),
                message: e.message.to_string(),
            },
            Reply::Unavailable => Outcome::Unavailable,
        }
    }

    pub fn int4(&self) -> i32 {
        match self {
            Outcome::Rows(rows) => {
                i32::from_be_bytes(rows[0][0].as_deref().unwrap().try_into().unwrap())
            }
            other => panic!("expected rows, got {other:?}"),
        }
    }
}

pub struct Driver {
    pub poll: Poll,
    pub events: Events,
    pub pool: Pool,
    pub size: usize,
    pub replies: Vec<(u64, Outcome, Instant)>,
}

impl Driver {
    pub fn new(url: &str, config: PoolConfig) -> Driver {
        let poll = Poll::new().unwrap();
        let connect = ConnectConfig::from_url(url).unwrap();
        let size = config.size;
        let mut pool = Pool::new(connect, STATEMENTS, config, 100, Instant::now());
        pool.start(poll.registry(), Instant::now());
        Driver {
            poll,
            events: Events::with_capacity(64),
            pool,
            size,
            replies: Vec::new(),
        }
    }

    pub fn connected(cluster: &PgCluster, config: PoolConfig) -> Driver {
        prepare_schema(cluster);
        let mut driver = Driver::new(&cluster.url(), config);
        driver.wait_ready(Duration::from_secs(10));
        driver
    }

    /// One turn of an event loop: wait for events (or the pool's next
    /// deadline), dispatch them, run timers, flush.
    pub fn turn(&mut self, timeout_max: Duration) {
        let now = Instant::now();
        let timeout = self.pool.next_deadline().map_or(timeout_max, |d| {
            d.saturating_duration_since(now).min(timeout_max)
        });
        self.poll.poll(&mut self.events, Some(timeout)).unwrap();
        let replies = &mut self.replies;
        let mut on_reply = |tag: u64, reply: Reply<'_>| {
            replies.push((tag, Outcome::from_reply(reply), Instant::now()))
        };
        let now = Instant::now();
        for event in self.events.iter() {
            assert!(self.pool.owns(event.token()));
            self.pool
                .handle_event(self.poll.registry(), event, now, &mut on_reply);
        }
        self.pool.tick(self.poll.registry(), now, &mut on_reply);
        self.pool.flush(self.poll.registry(), now, &mut on_reply);
    }

    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Driver) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !done(self) {
            if Instant::now() >= deadline {
                return false;
            }
            self.turn(Duration::from_millis(20));
        }
        true
    }

    pub fn wait_ready(&mut self, limit: Duration) {
        let size = self.size;
        let ok = self.run_until(limit, |d| d.pool.stats().ready_connections == size);
        assert!(ok, "pool not ready: {:?}", self.pool.last_error());
    }

    pub fn submit(
        &mut self,
        tag: u64,
        statement: usize,
        params: &[Param<'_>],
    ) -> Result<(), Refused> {
        self.pool.submit(tag, statement, params, Instant::now())
    }

    /// Flushes, then waits until `count` replies have arrived.
    pub fn collect(&mut self, count: usize, limit: Duration) -> Vec<(u64, Outcome, Instant)> {
        self.pool
            .flush(self.poll.registry(), Instant::now(), &mut |_, _| {
                panic!("flush failed")
            });
        let ok = self.run_until(limit, |d| d.replies.len() >= count);
        assert!(ok, "only {} of {count} replies arrived", self.replies.len());
        std::mem::take(&mut self.replies)
    }

    pub fn echo(&mut self, value: i32) -> Outcome {
        self.submit(u64::MAX, ECHO, &[Param::Int4(value), Param::Text("x")])
            .unwrap();
        self.collect(1, Duration::from_secs(10)).remove(0).1
    }
}

pub fn config(size: usize) -> PoolConfig {
    PoolConfig {
        size,
        reconnect_delay_min: Duration::from_millis(20),
        ..PoolConfig::default()
    }
}

pub fn prepare_schema(cluster: &PgCluster) {
    cluster.psql(
        "CREATE TABLE IF NOT EXISTS t_unique (k int PRIMARY KEY); \
         GRANT ALL ON t_unique TO flashsale; \
         CREATE OR REPLACE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS \
         $$ BEGIN RAISE NOTICE 'noisy %', i; RETURN i; END $$;",
    );
}

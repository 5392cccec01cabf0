//! The flashsale API server. Configuration comes from the environment
//! (`PORT`, `DATABASE_URL`, `DB_POOL_SIZE`, ...: `config::Settings`);
//! `--healthcheck` probes a running instance's `/health` for container
//! health checks (a scratch image has no curl).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use flashsale::config::{Settings, HEALTHCHECK_TIMEOUT};
use flashsale::log::{self, Value};
use flashsale::pg::url::redact_url;
use flashsale::server::Server;

/// `HTTP/1.1 200`: enough of the answer to judge it.
const STATUS_PREFIX_BYTES: usize = 12;

/// Set by SIGTERM / SIGINT; the event loop then drains and returns.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() {
    let handler = request_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe).
        // The signal also interrupts epoll_wait (never restarted by the
        // kernel), so the loop notices at once.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            log::event("config_error", &[("error", Value::Str(&e.to_string()))]);
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None => serve(&settings),
        Some("--healthcheck") => healthcheck(settings.port),
        Some(other) => {
            log::event(
                "usage_error",
                &[
                    ("argument", Value::Str(other)),
                    ("usage", Value::Str("flashsale [--healthcheck]")),
                ],
            );
            ExitCode::from(2)
        }
    }
}

fn serve(settings: &Settings) -> ExitCode {
    let mut server = match Server::bind(settings) {
        Ok(server) => server,
        Err(e) => {
            log::event(
                "cannot_start",
                &[
                    ("port", Value::Int(settings.port.into())),
                    ("error", Value::Str(&e.to_string())),
                ],
            );
            return ExitCode::FAILURE;
        }
    };
    let limit = settings.customer_rate_limit;
    log::event(
        "start",
        &[
            ("listen", Value::Str(&format!("0.0.0.0:{}", settings.port))),
            ("database", Value::Str(&redact_url(&settings.database_url))),
            ("db_pool_size", Value::Int(settings.pool_size as i64)),
            (
                "order_batches_in_flight",
                Value::Int(settings.order_batches_in_flight as i64),
            ),
            ("admin", Value::Bool(settings.admin_token.is_some())),
            (
                "order_rate_per_customer",
                limit.map_or(Value::Null, |l| Value::Float(l.per_second())),
            ),
            (
                "order_burst",
                limit.map_or(Value::Null, |l| Value::Int(l.burst.into())),
            ),
            ("hold_ttl_secs", Value::Int(settings.hold_ttl_secs.into())),
            (
                "hold_sweep_interval_ms",
                Value::Int(settings.hold_sweep_interval.as_millis() as i64),
            ),
            ("webhooks", Value::Bool(settings.webhook_secret.is_some())),
            ("require_session", Value::Bool(settings.require_session)),
            (
                "session_ttl_secs",
                Value::Int(settings.session_ttl_secs.into()),
            ),
            (
                "password_checks_per_sec",
                Value::Int(settings.password_checks_per_sec.into()),
            ),
            (
                "password_checks_burst",
                Value::Int(settings.password_checks_burst.into()),
            ),
        ],
    );
    install_stop_handlers();
    match server.run_until(&STOP) {
        Ok(()) => {
            log::event("stopped", &[]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::event(
                "event_loop_failed",
                &[("error", Value::Str(&e.to_string()))],
            );
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 when `GET /health` on this machine's instance answers 200.
fn healthcheck(port: u16) -> ExitCode {
    match probe_health(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            log::event("healthcheck_failed", &[("reason", Value::Str(&reason))]);
            ExitCode::FAILURE
        }
    }
}

fn probe_health(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(HEALTHCHECK_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(HEALTHCHECK_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < STATUS_PREFIX_BYTES {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&head[..len]);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {:?}",
            status_line.lines().next().unwrap_or("")
        ))
    }
}

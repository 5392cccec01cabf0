//! The open model: requests start on a fixed schedule (arrival rate), never
//! waiting for earlier ones to finish, and each latency is measured from
//! the request's *scheduled* start. A server that stalls therefore shows
//! the full delay its users would see, instead of slowing the generator
//! down with it (coordinated omission).
//!
//! Requests take a kept-alive connection from a [`Pool`] (opening one when
//! none is idle, up to a cap). Two lags are measured separately:
//! - dispatch lag: how late the scheduler started a request. This is the
//!   generator's own fault (its CPU, its timer); a large one means the
//!   generator could not keep the schedule and the figures are a bound.
//! - connection wait: how long a started request waited for a connection
//!   because all `max_conns` were busy: the server's fault (it is slow);
//!   it is part of the measured latency.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::histogram::Histogram;
use crate::http::{encode_request, Conn, HttpError, Method, Response, Target};

/// Connections kept open by a pool, at most (nginx allows 4096 per worker).
pub const POOL_CONNS_MAX: usize = 2048;

/// Kept-alive connections shared by the requests of an open model.
pub struct Pool {
    target: Target,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    timeout: Duration,
    wait: Mutex<Histogram>,
    opened: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn new(target: Target, max_conns: usize, timeout: Duration) -> Pool {
        Pool {
            target,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max_conns.clamp(1, POOL_CONNS_MAX)),
            timeout,
            wait: Mutex::new(Histogram::new()),
            opened: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sends one request on a pooled connection. The timeout covers the wait
    /// for a connection too (that wait is the server's slowness).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let mut request = Vec::with_capacity(256);
        encode_request(&mut request, method, path, &self.target.authority, body);
        let queued = Instant::now();
        let deadline = tokio::time::Instant::from_std(queued + self.timeout);
        let Ok(permit) = tokio::time::timeout_at(deadline, self.permits.acquire()).await else {
            return Err(HttpError::Timeout);
        };
        let _permit = permit.map_err(|_| HttpError::Closed)?;
        self.wait
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(queued.elapsed());
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let exchange = async {
            let mut conn = match idle {
                Some(c) => c,
                None => {
                    self.opened
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Conn::connect(self.target.addr).await?
                }
            };
            let (resp, keep) = conn.exchange(&request).await?;
            if keep {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
            Ok(resp)
        };
        match tokio::time::timeout_at(deadline, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    /// Connection waits so far, and clears them.
    pub fn take_wait(&self) -> Histogram {
        std::mem::take(&mut *self.wait.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }
}

pub type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Debug, Default)]
pub struct OpenReport {
    pub scheduled: u64,
    /// How late each request was started, against its schedule.
    pub dispatch_lag: Histogram,
    /// Requests still running at the end of the drain time (aborted).
    pub unfinished: u64,
    /// From the first scheduled start to the last completion.
    pub elapsed: Duration,
}

/// Starts `make(i, scheduled_at)` at `rate` per second for `duration`, then
/// waits up to `drain` for the last ones. Jobs record their own results,
/// measuring latency from `scheduled_at`.
pub async fn run<F>(rate: f64, duration: Duration, drain: Duration, make: F) -> OpenReport
where
    F: Fn(u64, Instant) -> Job,
{
    assert!(rate > 0.0, "open model rate must be positive");
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let start = Instant::now();
    let mut report = OpenReport {
        scheduled: total,
        ..OpenReport::default()
    };
    let mut tasks = JoinSet::new();
    let at = |i: u64| start + Duration::from_secs_f64(i as f64 / rate);
    let mut i = 0;
    while i < total {
        let now = Instant::now();
        while i < total && at(i) <= now {
            report.dispatch_lag.record(now - at(i));
            tasks.spawn(make(i, at(i)));
            i += 1;
        }
        while tasks.try_join_next().is_some() {}
        if i < total {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at(i))).await;
        }
    }
    let deadline = tokio::time::Instant::now() + drain;
    while !tasks.is_empty() {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                report.unfinished = tasks.len() as u64;
                tasks.abort_all();
                break;
            }
        }
    }
    report.elapsed = start.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn keeps_the_schedule_and_drains() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let done = Arc::new(AtomicU64::new(0));
        let d = Arc::clone(&done);
        let report = rt.block_on(run(
            500.0,
            Duration::from_millis(200),
            Duration::from_secs(1),
            move |_, _| {
                let d = Arc::clone(&d);
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    d.fetch_add(1, Ordering::Relaxed);
                })
            },
        ));
        assert_eq!(report.scheduled, 100);
        assert_eq!(done.load(Ordering::Relaxed), 100);
        assert_eq!(report.unfinished, 0);
        assert_eq!(report.dispatch_lag.count(), 100);
    }
}

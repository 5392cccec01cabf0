//! Many clients released at once: what a race between requests needs.

use std::panic;
use std::sync::Barrier;
use std::thread;

use super::server::http::{Conn, Response};

/// Sends `requests[i]` on `conns[i]`, each from its own thread, all released
/// at once by a barrier; returns the responses in the same order.
pub fn race(conns: &mut [Conn], requests: &[Vec<u8>]) -> Vec<Response> {
    assert_eq!(conns.len(), requests.len());
    let barrier = Barrier::new(conns.len());
    thread::scope(|scope| {
        let handles: Vec<_> = conns
            .iter_mut()
            .zip(requests)
            .map(|(conn, request)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    conn.send(request);
                    conn.read_response()
                })
            })
            .collect();
        handles.into_iter().map(join).collect()
    })
}

/// A scoped thread's result; its panic, if it panicked, goes on here.
pub fn join<T>(handle: thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| panic::resume_unwind(payload))
}

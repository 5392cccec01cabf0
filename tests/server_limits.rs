//! The server against clients that push its limits: descriptors running
//! out, and (below) connections that stream, trickle or never read. Each
//! test runs its own server process, since it strains that process.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::server::http::{request_bytes, Conn};
use support::server::{shared_stack, ServerProcess};

/// A server of its own on the database every test of this file shares.
fn own_server() -> ServerProcess {
    ServerProcess::start(&shared_stack(0).cluster.url(), &[])
}

/// The descriptor limit under which the process can open exactly `more`
/// descriptors: new ones take the lowest free numbers, and the limit
/// bounds the number, not the count (one inherited far above does not
/// matter).
fn limit_leaving(pid: u32, more: usize) -> u64 {
    let open: Vec<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list the server's descriptors: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let last_free = (0..).filter(|fd| !open.contains(fd)).nth(more - 1).unwrap();
    last_free as u64 + 1
}

/// Lowers the running server's descriptor limit (soft and hard).
fn limit_descriptors(pid: u32, limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit reads `rlimit` and writes nothing (old limit: null).
    let result = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &rlimit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(result, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn connections_left_in_the_backlog_when_descriptors_ran_out_are_served_once_some_free() {
    let server = own_server();
    const SERVED: usize = 4;
    // Every database connection up first: they hold descriptors too.
    std::thread::sleep(Duration::from_millis(500));
    limit_descriptors(server.pid(), limit_leaving(server.pid(), SERVED));
    let mut served: Vec<Conn> = (0..SERVED).map(|_| server.conn()).collect();
    for conn in &mut served {
        assert_eq!(conn.get("/health").status, 200);
    }
    // These complete the TCP handshake in the kernel's backlog, but accept
    // fails for lack of a descriptor.
    let mut waiting: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", server.port())).unwrap())
        .collect();
    for stream in &mut waiting {
        stream
            .write_all(&request_bytes("GET", "/health", None))
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            stream.read(&mut byte).is_err(),
            "served although no descriptor was free"
        );
    }
    // Free descriptors; no new connection arrives to wake the listener.
    served.truncate(1);
    let freed = Instant::now();
    for stream in &mut waiting {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = [0u8; 12];
        stream
            .read_exact(&mut answer)
            .unwrap_or_else(|e| panic!("not served after {:?}: {e}", freed.elapsed()));
        assert_eq!(&answer, b"HTTP/1.1 200");
    }
    assert!(server.stderr().contains("accept failed"));
    assert_eq!(served[0].get("/health").status, 200);
}

/// After its last answer a closing connection drains what the client still
/// sends, so the client reads the answer instead of a reset. A client that
/// streams without end gets a bounded drain, then the close: it does not
/// keep the loop reading junk for the whole linger time, and the other
/// connections are served meanwhile.
#[test]
fn a_closing_connection_that_streams_without_end_is_cut_off() {
    let server = own_server();
    let mut other = server.conn();
    let mut streamer = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    streamer
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 12];
    streamer.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    let started = Instant::now();
    let junk = vec![b'x'; 64 * 1024];
    let mut sent = 0usize;
    let cut_off = std::thread::scope(|scope| {
        let streaming = scope.spawn(|| loop {
            if streamer.write_all(&junk).is_err() {
                return started.elapsed();
            }
            sent += junk.len();
        });
        while !streaming.is_finished() && started.elapsed() < Duration::from_secs(1) {
            assert_eq!(other.get("/health").status, 200);
        }
        streaming.join().unwrap()
    });
    assert!(
        cut_off < Duration::from_millis(1500),
        "streamed {sent} bytes for {cut_off:?} (the linger time is 2 s)"
    );
    assert_eq!(other.get("/health").status, 200);
}

//! The server against clients that push its limits: descriptors running
//! out, and (below) connections that stream, trickle or never read. Each
//! test runs its own server process, since it strains that process.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::server::http::{request_bytes, Conn};
use support::server::{api_url, shared_stack, ServerProcess};

/// A server of its own on the database every test of this file shares.
fn own_server() -> ServerProcess {
    ServerProcess::start(&api_url(&shared_stack(0).cluster), &[])
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
    assert!(server.stderr().contains(r#""event":"accept_failed""#));
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

/// Resident memory of a process, in KiB (`VmRSS`).
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// A connection whose receive buffer (so its TCP window) is tiny: what it
/// does not read stays with the server instead of in kernel buffers.
fn connect_with_small_window(port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it hands it to TcpStream; the address struct outlives the connect.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let size: libc::c_int = 1024;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let address = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
            },
            sin_zero: [0; 8],
        };
        let connected = libc::connect(
            fd,
            (&address as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// Lets this test process open as many sockets as its hard limit allows.
fn raise_own_descriptor_limit() {
    let mut rlimit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit), 0);
        rlimit.rlim_cur = rlimit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit), 0);
    }
}

/// Clients that pipeline requests for long answers and never read them
/// (their TCP window is tiny, so the answers stay with the server): each
/// would make its connection keep a pipeline's worth of answers. The
/// budget runs out, and the instance's memory grows by at most what
/// config.rs writes down; other clients are still answered.
#[test]
fn never_reading_clients_cannot_grow_the_instance_past_its_buffer_budget() {
    raise_own_descriptor_limit();
    let stack = shared_stack(0);
    let product = stack.create_product(100, 1_000_000);
    // Fifty orders: the list answer is its longest, about 17 KiB.
    stack.cluster.psql(&format!(
        "INSERT INTO orders (idempotency_key, product_id, customer_id, quantity, unit_price, \
         total_price, status) SELECT gen_random_uuid(), {product}, 'customer ' || i, 1, 100, \
         100, 'CONFIRMED' FROM generate_series(1, 50) i"
    ));
    let server = own_server();
    const ATTACKERS: usize = 1500;
    const PIPELINED: usize = 100;
    let list = request_bytes("GET", &format!("/orders?product_id={product}"), None);
    let pipeline: Vec<u8> = (0..PIPELINED).flat_map(|_| list.clone()).collect();
    // Warm-up: well-behaved clients, as many, each reading its answers, so
    // the memory every load touches (the database pipelines, the wait
    // queue, the event list) is resident before the baseline is taken.
    let mut readers: Vec<Conn> = (0..ATTACKERS).map(|_| server.conn()).collect();
    for round in 0..2 {
        for conn in &mut readers {
            conn.send(&list);
        }
        for conn in &mut readers {
            let status = conn.read_response().status;
            assert!(round == 0 || matches!(status, 200 | 503), "{status}");
        }
    }
    drop(readers);
    std::thread::sleep(Duration::from_millis(500));
    let baseline = resident_kib(server.pid());
    let mut attackers = Vec::with_capacity(ATTACKERS);
    for _ in 0..ATTACKERS {
        let mut stream = connect_with_small_window(server.port());
        let _ = stream.set_nonblocking(true);
        let _ = stream.write(&pipeline);
        attackers.push(stream);
    }
    // The budget runs out (else the attack is not being absorbed by it).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains(r#""event":"buffer_budget_spent""#) {
        assert!(
            Instant::now() < deadline,
            "the buffer budget was never spent; grown by {} KiB",
            resident_kib(server.pid()).saturating_sub(baseline)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let grown_kib = resident_kib(server.pid()).saturating_sub(baseline);
    let body = format!(
        r#"{{"product_id":{product},"idempotency_key":"{}","customer_id":"c","quantity":1}}"#,
        support::server::new_uuid_v4()
    );
    // Another client is answered at once: its small requests fit its own
    // share; those needing the database may find its queue full of the
    // attack's reads (503, refused before reaching it).
    let mut other = server.conn();
    assert_eq!(other.get("/health").status, 200);
    for path in [
        "/orders",
        "/products/1",
        &format!("/orders?product_id={product}"),
    ] {
        let response = if path == "/orders" {
            other.post(path, &body)
        } else {
            other.get(path)
        };
        assert!(
            matches!(response.status, 200 | 201 | 503),
            "{path}: {} {}",
            response.status,
            response.body_text()
        );
    }
    // The arithmetic of config.rs for this many connections, and a third
    // more for the allocator (freed buffers are not all returned at once).
    let budget_kib = (ATTACKERS
        * (flashsale::config::CLIENT_BYTES_MAX
            + flashsale::config::HTTP_CONNECTION_BYTES_FREE
            + flashsale::config::HTTP_UNSAFE_ANSWER_BYTES_MAX
            + flashsale::config::HTTP_ERROR_ANSWER_BYTES_MAX)
        + flashsale::config::HTTP_SHARED_BUFFER_BYTES
        + flashsale::config::PG_POOL_SIZE_DEFAULT * flashsale::config::PG_READ_BUF_BYTES_MAX)
        * 4
        / 3
        / 1024;
    assert!(
        grown_kib <= budget_kib as u64,
        "grew by {grown_kib} KiB, the budget is {budget_kib} KiB"
    );
    drop(attackers);
}

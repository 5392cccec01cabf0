//! Throw-away PostgreSQL clusters for integration tests.
//!
//! `PgCluster::start(Auth::Scram)` runs `initdb` into a fresh temp dir, starts
//! `postgres` on a free 127.0.0.1 port (plus a unix socket inside the temp
//! dir), and creates the login role `flashsale` (password `secret`) owning the
//! database `flashsale`. Dropping the cluster stops the server by pid and
//! removes the temp dir, also while a test panics. Its URLs for our client
//! opt in to the cluster's method when it is not SCRAM-SHA-256
//! (`require_auth=none`, `password` or `md5`), which the client refuses by
//! default.
//!
//! Server binaries: `$PG_BIN` if set, else the directory of `postgres` found in
//! `PATH` (symlinks resolved) when `initdb` sits beside it, else the newest
//! `/usr/lib/postgresql/*/bin`.
//!
//! When the tests run as root, `initdb`, `postgres` and the harness's own
//! superuser `psql` run as the `postgres` system user (or `nobody`), because
//! the server refuses to run as root. `apply_file` runs `psql` as the calling
//! user instead so that it can read the file wherever it is.
//!
//! If the test process is killed outright (SIGKILL, abort), `Drop` does not
//! run and the server is left behind; its temp dir is
//! `$TMPDIR/flashsale-pg-<pid>-<n>-<nanos>`.

use std::env;
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Superuser created by `initdb -U`; always reachable over the unix socket
/// with `trust`.
pub const SUPERUSER: &str = "postgres";
/// Login role the application connects as.
pub const APP_USER: &str = "flashsale";
/// Password of [`APP_USER`].
pub const APP_PASSWORD: &str = "secret";
/// Database owned by [`APP_USER`].
pub const APP_DB: &str = "flashsale";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const READY_POLL: Duration = Duration::from_millis(50);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_POLL: Duration = Duration::from_millis(20);
const PORT_ATTEMPTS: usize = 5;
const LOG_TAIL_LINES: usize = 40;
const PSQL_FLAGS: [&str; 6] = ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"];
const NO_SERVER_MSG: &str =
    "no PostgreSQL server binaries: install postgresql (apt-get install postgresql)";

/// How non-superuser connections authenticate (pg_hba.conf method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `trust`: no password asked.
    Trust,
    /// `password`: cleartext password.
    Password,
    /// `md5`; the role's password is stored as MD5 so this is real MD5 auth.
    Md5,
    /// `scram-sha-256`.
    Scram,
}

impl Auth {
    /// The pg_hba.conf method name.
    pub fn hba_method(self) -> &'static str {
        match self {
            Auth::Trust => "trust",
            Auth::Password => "password",
            Auth::Md5 => "md5",
            Auth::Scram => "scram-sha-256",
        }
    }

    /// What our client's `require_auth` must list to accept this method;
    /// `None` for SCRAM-SHA-256, which it accepts by default.
    pub fn require_auth(self) -> Option<&'static str> {
        match self {
            Auth::Trust => Some("none"),
            Auth::Password => Some("password"),
            Auth::Md5 => Some("md5"),
            Auth::Scram => None,
        }
    }

    fn password_encryption(self) -> &'static str {
        match self {
            Auth::Md5 => "md5",
            _ => "scram-sha-256",
        }
    }
}

/// Extra server settings before start: `PgCluster::builder(auth).setting(k, v).start()`.
#[derive(Debug, Clone)]
pub struct PgClusterBuilder {
    auth: Auth,
    settings: Vec<(String, String)>,
}

impl PgClusterBuilder {
    /// Adds `-c name=value` to the postgres command line (kept across restarts).
    pub fn setting(mut self, name: &str, value: &str) -> PgClusterBuilder {
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// initdb, start, wait ready, create role and database. Panics with the
    /// tail of postgres.log if the server does not come up.
    pub fn start(self) -> PgCluster {
        let bin_dir = server_bin_dir().clone();
        let psql_bin = find_psql(&bin_dir);
        let run_as = server_identity();
        let base = make_base_dir(run_as);
        // From here on `cluster` owns the temp dir: any panic below drops it,
        // which stops the server and removes the directory.
        let mut cluster = PgCluster {
            auth: self.auth,
            settings: self.settings,
            data: base.join("data"),
            sock: base.join("sock"),
            log: base.join("postgres.log"),
            base,
            bin_dir,
            psql_bin,
            run_as,
            port: 0,
            child: Mutex::new(None),
        };
        cluster.initdb();
        cluster.write_hba();
        cluster.make_socket_dir();

        cluster.spawn_on_a_free_port();
        cluster.create_app_role();
        cluster
    }
}

/// A running (or stopped) throw-away cluster. See the module docs.
pub struct PgCluster {
    auth: Auth,
    settings: Vec<(String, String)>,
    bin_dir: PathBuf,
    psql_bin: PathBuf,
    run_as: Option<Ids>,
    base: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    // A Mutex (not RefCell) so `&PgCluster` can be shared across threads.
    child: Mutex<Option<Child>>,
}

impl PgCluster {
    /// Same as `PgCluster::builder(auth).start()`.
    pub fn start(auth: Auth) -> PgCluster {
        PgCluster::builder(auth).start()
    }

    pub fn builder(auth: Auth) -> PgClusterBuilder {
        PgClusterBuilder {
            auth,
            settings: Vec::new(),
        }
    }

    pub fn auth(&self) -> Auth {
        self.auth
    }

    /// TCP port on 127.0.0.1 (also the unix socket's port number).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Directory holding `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    /// The temp dir holding everything; removed on drop.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Server stdout/stderr (appended across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Directory with `postgres` and `initdb`.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The `psql` the harness uses; tests may run it as a client.
    pub fn psql_bin(&self) -> &Path {
        &self.psql_bin
    }

    /// `postgres://flashsale:secret@127.0.0.1:PORT/flashsale`, opting in to
    /// this cluster's method when it is not SCRAM ([`Auth::require_auth`]).
    pub fn url(&self) -> String {
        self.url_as(APP_USER, APP_PASSWORD)
    }

    /// Like [`url`](Self::url) with another password (percent-encoded).
    pub fn url_with_password(&self, password: &str) -> String {
        self.url_as(APP_USER, password)
    }

    /// Like [`url`](Self::url) as another role.
    pub fn url_as(&self, user: &str, password: &str) -> String {
        self.url_with(user, password, self.auth.require_auth())
    }

    /// Any role, password and `require_auth` (`None`: the client's default,
    /// SCRAM-SHA-256 only).
    pub fn url_with(&self, user: &str, password: &str, require_auth: Option<&str>) -> String {
        let query = require_auth.map_or(String::new(), |m| format!("?require_auth={m}"));
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{APP_DB}{query}",
            percent_encode(user),
            percent_encode(password),
            self.port
        )
    }

    /// `postgres://flashsale:secret@/flashsale?host=SOCKDIR&port=PORT`, with
    /// the opt-in of [`url`](Self::url).
    pub fn unix_url(&self) -> String {
        let opt_in = self
            .auth
            .require_auth()
            .map_or(String::new(), |m| format!("&require_auth={m}"));
        format!(
            "postgres://{APP_USER}:{}@/{APP_DB}?host={}&port={}{opt_in}",
            percent_encode(APP_PASSWORD),
            self.sock.display(),
            self.port
        )
    }

    /// Runs `sql` as superuser in database `flashsale` and returns trimmed
    /// stdout (`-A -t`: unaligned, tuples only). Panics with psql's stderr.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql).unwrap_or_else(|e| {
            panic!("psql failed on port {}: {e}\n--- SQL ---\n{sql}", self.port)
        })
    }

    /// Like [`psql`](Self::psql) but returns psql's stderr as the error.
    /// The SQL is fed on stdin, so each statement runs in its own
    /// transaction unless the SQL says BEGIN.
    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        self.superuser_psql(APP_DB, sql)
    }

    /// Runs `sql` in database `flashsale` as `user` with `password`, over
    /// TCP with the `psql` client (so this cluster's method authenticates
    /// it): trimmed stdout, or psql's stderr.
    pub fn try_psql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new(&self.psql_bin);
        scrub_pg_env(&mut cmd);
        cmd.env("PGPASSWORD", password)
            .env("PGPASSFILE", self.base.join("no-such-pgpass"))
            .args(PSQL_FLAGS)
            .args(["-w", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", user, "-d", APP_DB, "-f", "-"]);
        run_capture(cmd, Some(sql.as_bytes().to_vec()))
    }

    /// Sets `role`'s password, stored as this cluster's method needs it
    /// (MD5 for [`Auth::Md5`], else SCRAM).
    pub fn set_password(&self, role: &str, password: &str) {
        self.psql(&format!(
            "SET password_encryption = '{}';\nALTER ROLE {role} PASSWORD '{password}';",
            self.auth.password_encryption()
        ));
    }

    /// `psql -f path` as superuser in database `flashsale`, stopping at the
    /// first error (panics with psql's stderr).
    pub fn apply_file(&self, path: &Path) {
        let mut cmd = Command::new(&self.psql_bin);
        scrub_pg_env(&mut cmd);
        cmd.args(PSQL_FLAGS)
            .arg("-h")
            .arg(&self.sock)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "-d", APP_DB, "-f"])
            .arg(path);
        if let Err(e) = run_capture(cmd, None) {
            panic!(
                "psql -f {} failed on port {}: {e}",
                path.display(),
                self.port
            );
        }
    }

    /// Pid of the postmaster while it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let mut slot = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let child = slot.as_mut()?;
        match child.try_wait() {
            Ok(None) => Some(child.id()),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.postmaster_pid().is_some()
    }

    /// Fast shutdown (SIGINT), SIGKILL after 15 s. Idempotent.
    pub fn stop(&mut self) {
        self.shutdown();
    }

    /// SIGKILL the postmaster (a crash), reap it, and wait until its
    /// backends have gone so that [`restart`](Self::restart) works.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child_slot().take() {
            signal(child.id(), libc::SIGKILL);
            let _ = child.wait();
        }
        let left = self.reap_stragglers(RELEASE_TIMEOUT);
        if !left.is_empty() {
            panic!(
                "kill9: postgres processes {left:?} still use {} after {RELEASE_TIMEOUT:?} and SIGKILL",
                self.data.display()
            );
        }
    }

    /// Starts the server again on the same port and data dir (stopping it
    /// first if it runs) and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.shutdown();
        if let Err(f) = self.spawn_server() {
            panic!("{}", self.failure_message("restart", &f.reason));
        }
    }

    /// A streaming hot standby of this cluster, started on its own free
    /// port: `pg_basebackup -R` over the unix socket (it writes
    /// `primary_conninfo` and `standby.signal`), same auth and settings;
    /// roles and data come from the primary. For a synchronous standby, set
    /// the primary's `synchronous_standby_names` afterwards (before, every
    /// commit would wait for a standby that is not there yet).
    pub fn start_standby(&self) -> PgCluster {
        let base = make_base_dir(self.run_as);
        let mut standby = PgCluster {
            auth: self.auth,
            settings: self.settings.clone(),
            data: base.join("data"),
            sock: base.join("sock"),
            log: base.join("postgres.log"),
            base,
            bin_dir: self.bin_dir.clone(),
            psql_bin: self.psql_bin.clone(),
            run_as: self.run_as,
            port: 0,
            child: Mutex::new(None),
        };
        let mut cmd = standby.server_command(&self.bin_dir.join("pg_basebackup"));
        cmd.arg("-D")
            .arg(&standby.data)
            .arg("-h")
            .arg(&self.sock)
            .arg("-p")
            .arg(self.port.to_string())
            .args([
                "-U",
                SUPERUSER,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]);
        if let Err(e) = run_capture(cmd, None) {
            panic!("pg_basebackup from port {} failed: {e}", self.port);
        }
        standby.make_socket_dir();
        standby.spawn_on_a_free_port();
        standby
    }

    /// Promotes a standby and waits until it accepts writes.
    pub fn promote(&self) {
        let promoted = self
            .superuser_psql("postgres", "SELECT pg_promote(true, 30)")
            .unwrap_or_else(|e| panic!("{}", self.failure_message("promote", &e)));
        assert_eq!(promoted, "t", "pg_promote on port {}", self.port);
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    pub fn is_in_recovery(&self) -> bool {
        self.psql("SELECT pg_is_in_recovery()") == "t"
    }

    // ---- internals ----

    fn spawn_on_a_free_port(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            self.port = free_port();
            match self.spawn_server() {
                Ok(()) => return,
                Err(f) if f.port_in_use && attempt < PORT_ATTEMPTS => continue,
                Err(f) => panic!("{}", self.failure_message("start", &f.reason)),
            }
        }
    }

    fn child_slot(&mut self) -> &mut Option<Child> {
        self.child.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// A command that runs as the server's OS user, in the temp dir.
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        scrub_pg_env(&mut cmd);
        cmd.current_dir(&self.base);
        if let Some(ids) = self.run_as {
            cmd.uid(ids.uid).gid(ids.gid);
        }
        cmd
    }

    fn superuser_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let mut cmd = self.server_command(&self.psql_bin);
        cmd.args(PSQL_FLAGS)
            .arg("-h")
            .arg(&self.sock)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", SUPERUSER, "-d", db, "-f", "-"]);
        run_capture(cmd, Some(sql.as_bytes().to_vec()))
    }

    fn initdb(&self) {
        let mut cmd = self.server_command(&self.bin_dir.join("initdb"));
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8"])
            .args(["--no-locale", "--no-sync"]);
        if let Err(e) = run_capture(cmd, None) {
            panic!(
                "initdb -D {} ({}) failed: {e}",
                self.data.display(),
                self.bin_dir.display()
            );
        }
    }

    fn write_hba(&self) {
        let m = self.auth.hba_method();
        let text = format!(
            "# Written by tests/support/cluster.rs ({:?}).\n\
             local all {SUPERUSER} trust\n\
             local replication {SUPERUSER} trust\n\
             local all all {m}\n\
             host all all 127.0.0.1/32 {m}\n",
            self.auth
        );
        let path = self.data.join("pg_hba.conf");
        fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self.give_to_server(&path);
    }

    fn make_socket_dir(&self) {
        fs::create_dir(&self.sock)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.sock.display()));
        self.give_to_server(&self.sock);
    }

    fn give_to_server(&self, path: &Path) {
        if let Some(ids) = self.run_as {
            chown(path, Some(ids.uid), Some(ids.gid))
                .unwrap_or_else(|e| panic!("cannot chown {}: {e}", path.display()));
        }
    }

    /// Spawns postgres on `self.port` and waits until it answers over the
    /// unix socket. On failure the child is gone (exited or killed).
    fn spawn_server(&mut self) -> Result<(), StartFailure> {
        let log_start = fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot dup {}: {e}", self.log.display()));

        let mut cmd = self.server_command(&self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.sock)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=100"]);
        for (name, value) in &self.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot spawn {}: {e}",
                self.bin_dir.join("postgres").display()
            )
        });
        *self.child_slot() = Some(child);
        self.wait_ready(log_start)
    }

    fn wait_ready(&mut self, log_start: u64) -> Result<(), StartFailure> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.child_slot().as_mut().map(|c| c.try_wait()) {
                Some(Ok(None)) => None,
                Some(Ok(Some(status))) => Some(format!("postgres exited with {status}")),
                Some(Err(e)) => Some(format!("cannot wait for postgres: {e}")),
                None => Some("postgres is not running".to_owned()),
            };
            if let Some(reason) = exited {
                *self.child_slot() = None;
                let port_in_use =
                    read_from(&self.log, log_start).contains("Address already in use");
                return Err(StartFailure {
                    port_in_use,
                    reason: format!("{reason} before accepting connections"),
                });
            }
            let last_err = match self.superuser_psql("postgres", "SELECT 1") {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                self.shutdown();
                return Err(StartFailure {
                    port_in_use: false,
                    reason: format!(
                        "not accepting connections after {READY_TIMEOUT:?}; last psql error: {last_err}"
                    ),
                });
            }
            thread::sleep(READY_POLL);
        }
    }

    fn create_app_role(&self) {
        let sql = format!(
            "SET password_encryption = '{enc}';\n\
             CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}';\n\
             CREATE DATABASE {APP_DB} OWNER {APP_USER};\n",
            enc = self.auth.password_encryption()
        );
        if let Err(e) = self.superuser_psql("postgres", &sql) {
            panic!("{}", self.failure_message("create role/database", &e));
        }
    }

    fn failure_message(&self, what: &str, reason: &str) -> String {
        format!(
            "PostgreSQL cluster {what} failed (port {}, data {}, binaries {}): {reason}\n\
             --- last {LOG_TAIL_LINES} lines of {} ---\n{}",
            self.port,
            self.data.display(),
            self.bin_dir.display(),
            self.log.display(),
            log_tail(&self.log, LOG_TAIL_LINES)
        )
    }

    /// Stops the server; never panics (used by Drop).
    fn shutdown(&mut self) {
        let Some(mut child) = self.child_slot().take() else {
            return;
        };
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        signal(child.id(), libc::SIGINT);
        if wait_exit(&mut child, STOP_TIMEOUT) {
            return;
        }
        signal(child.id(), libc::SIGKILL);
        let _ = child.wait();
        let _ = self.reap_stragglers(RELEASE_TIMEOUT);
    }

    /// Waits up to `timeout` for processes whose cwd is our data dir (the
    /// postmaster's children) to go away, then SIGKILLs the rest by pid.
    /// Returns the pids still there after that. Never panics.
    fn reap_stragglers(&self, timeout: Duration) -> Vec<u32> {
        let data = fs::canonicalize(&self.data).unwrap_or_else(|_| self.data.clone());
        let deadline = Instant::now() + timeout;
        loop {
            let pids = processes_in(&data);
            if pids.is_empty() {
                return pids;
            }
            if Instant::now() >= deadline {
                for &pid in &pids {
                    signal(pid, libc::SIGKILL);
                }
                thread::sleep(Duration::from_millis(500));
                return processes_in(&data);
            }
            thread::sleep(EXIT_POLL);
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.shutdown();
        let _ = self.reap_stragglers(Duration::from_secs(5));
        let _ = fs::remove_dir_all(&self.base);
    }
}

struct StartFailure {
    port_in_use: bool,
    reason: String,
}

#[derive(Debug, Clone, Copy)]
struct Ids {
    uid: u32,
    gid: u32,
}

/// The OS user for initdb/postgres: `None` = the current user (not root).
fn server_identity() -> Option<Ids> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == name {
                if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                    return Some(Ids { uid, gid });
                }
            }
        }
    }
    panic!("running as root, but /etc/passwd has neither a `postgres` nor a `nobody` user to run the PostgreSQL server as");
}

fn server_bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(find_server_bin_dir)
}

fn find_server_bin_dir() -> PathBuf {
    let has_server =
        |d: &Path| is_executable(&d.join("postgres")) && is_executable(&d.join("initdb"));
    if let Some(dir) = env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            has_server(&dir),
            "PG_BIN={} does not contain both `postgres` and `initdb`",
            dir.display()
        );
        return dir;
    }
    if let Some(postgres) = which("postgres") {
        let real = fs::canonicalize(&postgres).unwrap_or_else(|_| postgres.clone());
        for dir in [real.parent(), postgres.parent()].into_iter().flatten() {
            if is_executable(&dir.join("initdb")) {
                return dir.to_path_buf();
            }
        }
    }
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = parse_version(&name) else {
                continue;
            };
            let bin = entry.path().join("bin");
            if has_server(&bin) && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, bin));
            }
        }
    }
    match best {
        Some((_, bin)) => bin,
        None => panic!("{NO_SERVER_MSG}"),
    }
}

fn parse_version(name: &OsStr) -> Option<Vec<u64>> {
    name.to_str()?.split('.').map(|p| p.parse().ok()).collect()
}

fn find_psql(bin_dir: &Path) -> PathBuf {
    let beside = bin_dir.join("psql");
    if is_executable(&beside) {
        return beside;
    }
    which("psql").unwrap_or_else(|| {
        panic!(
            "no `psql` in {} or PATH: install postgresql-client (apt-get install postgresql-client)",
            bin_dir.display()
        )
    })
}

fn which(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn make_base_dir(run_as: Option<Ids>) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = env::temp_dir().join(format!("flashsale-pg-{}-{n}-{nanos}", std::process::id()));
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    if let Some(ids) = run_as {
        if let Err(e) = chown(&dir, Some(ids.uid), Some(ids.gid)) {
            let _ = fs::remove_dir_all(&dir);
            panic!("cannot chown {} to uid {}: {e}", dir.display(), ids.uid);
        }
    }
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
}

/// Drops PG* variables (PGHOST, PGPORT, PGPASSWORD, PGDATA, ...) so the
/// caller's environment cannot redirect the harness.
fn scrub_pg_env(cmd: &mut Command) {
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
}

/// Runs `cmd`, optionally feeding `stdin`; Ok(trimmed stdout) on success,
/// Err(status + stderr) otherwise.
fn run_capture(mut cmd: Command, stdin: Option<Vec<u8>>) -> Result<String, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Write stdin from another thread so a large output cannot deadlock us.
    let writer = match (stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })),
        _ => None,
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for {program}: {e}"))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut msg = format!("{program} exited with {}: {}", out.status, stderr.trim());
        if !stdout.trim().is_empty() {
            msg.push_str("\n--- stdout ---\n");
            msg.push_str(stdout.trim());
        }
        Err(msg)
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of
    // our own children or one of its backends.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

/// Polls `child` until it exits or `timeout` passes; true if it exited.
fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => thread::sleep(EXIT_POLL),
        }
    }
}

/// Pids (other than ours) whose working directory is `dir`: postgres
/// chdirs into its data dir, so these are the cluster's processes.
fn processes_in(dir: &Path) -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    text
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = read_from(path, 0);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

//! Smoke tests for the throw-away PostgreSQL harness in tests/support.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::cluster::{Auth, PgCluster};

/// Connects with the real `psql` client as whoever the URL names; returns
/// `select current_user` or psql's stderr. The URL's `require_auth` (for our
/// client) is left out: libpq knows it only from version 16 on.
fn client(cluster: &PgCluster, url: &str, pgpassword: Option<&str>) -> Result<String, String> {
    let url = without_require_auth(url);
    let mut cmd = Command::new(cluster.psql_bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PGPASSFILE", cluster.base_dir().join("no-such-pgpass"))
        .env("PGCONNECT_TIMEOUT", "10");
    if let Some(pw) = pgpassword {
        cmd.env("PGPASSWORD", pw);
    }
    let out = cmd
        .args(["-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", "select current_user"])
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .expect("run psql client");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn without_require_auth(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("require_auth="))
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

fn bare_url(cluster: &PgCluster) -> String {
    format!(
        "postgres://flashsale@127.0.0.1:{}/flashsale",
        cluster.port()
    )
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn check_auth(auth: Auth, stored_prefix: &str) {
    let cluster = PgCluster::start(auth);
    assert!(cluster.is_running());
    assert_eq!(
        cluster.psql("select current_setting('port')"),
        cluster.port().to_string()
    );
    let stored = cluster.psql("select rolpassword from pg_authid where rolname = 'flashsale'");
    assert!(
        stored.starts_with(stored_prefix),
        "{auth:?}: stored password {stored:?} should start with {stored_prefix:?}"
    );
    let method = cluster.psql(
        "select string_agg(distinct auth_method, ',') from pg_hba_file_rules \
         where not ('postgres' = any(user_name))",
    );
    assert_eq!(method, auth.hba_method(), "{auth:?}: pg_hba.conf methods");

    // Right password: in the URL, via PGPASSWORD, and over the unix socket.
    assert_eq!(
        client(&cluster, &cluster.url(), None).as_deref(),
        Ok("flashsale")
    );
    assert_eq!(
        client(&cluster, &bare_url(&cluster), Some("secret")).as_deref(),
        Ok("flashsale")
    );
    assert_eq!(
        client(&cluster, &cluster.unix_url(), None).as_deref(),
        Ok("flashsale")
    );

    let wrong_url = client(&cluster, &cluster.url_with_password("wrong"), None);
    let wrong_env = client(&cluster, &bare_url(&cluster), Some("wrong"));
    if auth == Auth::Trust {
        assert_eq!(wrong_url.as_deref(), Ok("flashsale"));
        assert_eq!(wrong_env.as_deref(), Ok("flashsale"));
    } else {
        for result in [wrong_url, wrong_env] {
            let err = result.expect_err("wrong password must be refused");
            assert!(
                err.contains("password authentication failed"),
                "{auth:?}: unexpected error: {err}"
            );
        }
    }
}

#[test]
fn trust_auth() {
    check_auth(Auth::Trust, "SCRAM-SHA-256$");
}

#[test]
fn password_auth() {
    check_auth(Auth::Password, "SCRAM-SHA-256$");
}

#[test]
fn md5_auth() {
    check_auth(Auth::Md5, "md5");
}

#[test]
fn scram_auth() {
    check_auth(Auth::Scram, "SCRAM-SHA-256$");
}

#[test]
fn stop_restart_keeps_data_and_settings() {
    let mut cluster = PgCluster::builder(Auth::Scram)
        .setting("work_mem", "7MB")
        .start();
    let port = cluster.port();
    assert_eq!(cluster.psql("show work_mem"), "7MB");
    cluster.psql("create table t (id int primary key, v text); insert into t values (1, 'kept');");

    let pid = cluster.postmaster_pid().expect("running");
    cluster.stop();
    cluster.stop(); // idempotent
    assert!(!cluster.is_running());
    assert_eq!(cluster.postmaster_pid(), None);
    assert!(!pid_alive(pid));
    assert!(cluster.try_psql("select 1").is_err());

    cluster.restart();
    assert!(cluster.is_running());
    assert_eq!(cluster.port(), port);
    assert_eq!(cluster.psql("select v from t where id = 1"), "kept");
    assert_eq!(cluster.psql("show work_mem"), "7MB");
    assert_eq!(
        client(&cluster, &cluster.url(), None).as_deref(),
        Ok("flashsale")
    );
}

#[test]
fn kill9_then_restart_recovers() {
    let mut cluster = PgCluster::start(Auth::Md5);
    let port = cluster.port();
    cluster.psql("create table t (id int); insert into t select generate_series(1, 100);");
    let file = tempfile_in(&cluster);
    std::fs::write(&file, "select count(*) from t;\n").unwrap();
    cluster.apply_file(&file);

    let old = cluster.postmaster_pid().expect("running");
    cluster.kill9();
    assert!(!cluster.is_running());
    assert!(!pid_alive(old));

    cluster.restart();
    assert_eq!(cluster.port(), port);
    let new = cluster.postmaster_pid().expect("running again");
    assert_ne!(new, old);
    assert_eq!(cluster.psql("select count(*) from t"), "100");
    assert_eq!(
        client(&cluster, &cluster.url(), None).as_deref(),
        Ok("flashsale")
    );
}

fn tempfile_in(cluster: &PgCluster) -> std::path::PathBuf {
    cluster.base_dir().join("smoke.sql")
}

#[test]
fn apply_file_stops_on_error() {
    let cluster = PgCluster::start(Auth::Trust);
    let file = tempfile_in(&cluster);
    std::fs::write(
        &file,
        "create table a (x int);\nselect * from missing;\ncreate table b (x int);\n",
    )
    .unwrap();
    let err = std::panic::catch_unwind(|| cluster.apply_file(&file)).expect_err("must panic");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("missing"), "panic message: {msg}");
    assert_eq!(cluster.psql("select to_regclass('a') is not null"), "t");
    assert_eq!(cluster.psql("select to_regclass('b') is null"), "t");
}

#[test]
fn drop_removes_dir_and_stops_server() {
    let cluster = PgCluster::start(Auth::Trust);
    let base = cluster.base_dir().to_path_buf();
    let pid = cluster.postmaster_pid().expect("running");
    assert!(base.exists() && pid_alive(pid));
    drop(cluster);
    assert!(!base.exists(), "{} still exists", base.display());
    assert!(!pid_alive(pid), "postmaster {pid} still alive");

    // Also during a panic unwind.
    let (tx, rx) = mpsc::channel();
    let joined = thread::spawn(move || {
        let cluster = PgCluster::start(Auth::Trust);
        tx.send((
            cluster.base_dir().to_path_buf(),
            cluster.postmaster_pid().unwrap(),
        ))
        .unwrap();
        panic!("deliberate panic with a live cluster");
    })
    .join();
    assert!(joined.is_err());
    let (base, pid) = rx.recv_timeout(Duration::from_secs(1)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while (base.exists() || pid_alive(pid)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !base.exists(),
        "{} still exists after unwind",
        base.display()
    );
    assert!(!pid_alive(pid), "postmaster {pid} alive after unwind");
}

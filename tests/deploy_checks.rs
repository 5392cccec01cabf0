//! Checks of the deployment files, which cannot be exercised here by Docker
//! itself: docker-compose.yml (services, budget, network, health checks,
//! Postgres durability, the API's database role and passwords, against a
//! throw-away cluster with sql/init.sql), nginx/nginx.conf, the Dockerfile and .dockerignore,
//! `perf/stack`'s reading of the compose file, and the image's binary: a
//! static musl build that runs alone in an empty root.
//!
//! The compose file is read by a small parser for the YAML subset we write
//! (block mappings and sequences, one-line flow sequences, quoted scalars,
//! comments, block scalars; no anchors). `perf/stack` has its own reader in
//! awk; a test asserts that both see the same thing.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flashsale::pg::auth::Methods;
use flashsale::pg::ConnectConfig;
use support::cluster::{Auth, PgCluster};

const SERVICES: [&str; 4] = ["lb", "api-01", "api-02", "db"];
const CPUS_BUDGET: f64 = 1.5;
/// Docker reads "MB" as MiB.
const MEMORY_BUDGET_BYTES: u64 = 550 * 1024 * 1024;
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
const IMAGE_BYTES_MAX: u64 = 5 * 1024 * 1024;
const HEALTHCHECK_EXIT_TIMEOUT: Duration = Duration::from_secs(10);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

// ---- a reader for our YAML subset ------------------------------------------------

/// Flattens YAML into `(path, scalar)` pairs in document order, e.g.
/// `("services.db.command[3]", "--shared_buffers=128MB")`.
fn flatten_yaml(text: &str) -> Vec<(String, String)> {
    struct Frame {
        indent: usize,
        name: String,
        item: bool,
    }
    fn path(stack: &[Frame]) -> String {
        let mut p = String::new();
        for f in stack {
            if !f.item && !p.is_empty() {
                p.push('.');
            }
            p.push_str(&f.name);
        }
        p
    }
    fn unquote(s: &str) -> String {
        let s = s.trim();
        let quoted = s.len() >= 2
            && ((s.starts_with('"') && s.ends_with('"'))
                || (s.starts_with('\'') && s.ends_with('\'')));
        if quoted {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    }
    fn strip_comment(line: &str) -> &str {
        let bytes = line.as_bytes();
        let mut quote = None;
        for (i, &c) in bytes.iter().enumerate() {
            match quote {
                Some(q) => {
                    if c == q {
                        quote = None;
                    }
                }
                None => {
                    let after_space = i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'[' | b',');
                    if (c == b'"' || c == b'\'') && after_space {
                        quote = Some(c);
                    } else if c == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')) {
                        return &line[..i];
                    }
                }
            }
        }
        line
    }
    /// `key: value` -> (key, value); `None` for a plain scalar.
    fn split_key(c: &str) -> Option<(String, String)> {
        let end = if c.starts_with('"') || c.starts_with('\'') {
            let q = c.as_bytes()[0] as char;
            c[1..].find(q)? + 2
        } else {
            if c.starts_with(['[', '{', '&', '*', '!', '|', '>', '#']) || c.starts_with("- ") {
                return None;
            }
            c.find(':')?
        };
        let rest = &c[end..];
        let rest = rest.strip_prefix(':')?;
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            return None;
        }
        Some((unquote(&c[..end]), rest.trim().to_string()))
    }
    fn emit(out: &mut Vec<(String, String)>, p: String, v: &str, lineno: usize) {
        let v = v.trim();
        assert!(
            !v.starts_with(['&', '*', '!', '{']),
            "line {lineno}: anchors, aliases, tags and flow mappings are not in our YAML subset"
        );
        if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let items = inner.split(',').map(str::trim).filter(|s| !s.is_empty());
            for (i, item) in items.enumerate() {
                out.push((format!("{p}[{i}]"), unquote(item)));
            }
        } else {
            out.push((p, unquote(v)));
        }
    }

    let mut out = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // An open block scalar: (path, indent of its key, folded?, text so far).
    let mut block: Option<(String, usize, bool, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let lineno = n + 1;
        let line = raw.trim_end_matches('\r');
        if let Some((p, key_indent, folded, mut acc)) = block.take() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            if line.trim().is_empty() || indent > key_indent {
                let t = line.trim();
                if acc.is_empty() {
                    acc = t.to_string();
                } else {
                    acc.push(if folded { ' ' } else { '\n' });
                    acc.push_str(t);
                }
                block = Some((p, key_indent, folded, acc));
                continue;
            }
            out.push((p, acc));
        }
        assert!(
            !line.trim_start_matches(' ').starts_with('\t'),
            "line {lineno}: tab indentation"
        );
        let line = strip_comment(line);
        if line.trim().is_empty() || line.starts_with("---") || line.starts_with("...") {
            continue;
        }
        let mut indent = line.len() - line.trim_start_matches(' ').len();
        let mut content = line.trim();
        if content == "-" || content.starts_with("- ") {
            while stack
                .last()
                .is_some_and(|f| f.indent > indent || (f.indent == indent && f.item))
            {
                stack.pop();
            }
            let parent = path(&stack);
            let count = counts.entry(parent).or_insert(0);
            stack.push(Frame {
                indent,
                name: format!("[{count}]"),
                item: true,
            });
            *count += 1;
            let rest = &content[1..];
            let rest_trimmed = rest.trim_start_matches(' ');
            if rest_trimmed.is_empty() {
                continue;
            }
            indent += 1 + (rest.len() - rest_trimmed.len());
            content = rest_trimmed.trim_end();
            if split_key(content).is_none() {
                emit(&mut out, path(&stack), content, lineno);
                continue;
            }
        }
        let (key, value) =
            split_key(content).unwrap_or_else(|| panic!("line {lineno}: cannot read {content:?}"));
        assert!(
            key != "<<",
            "line {lineno}: merge keys are not in our YAML subset"
        );
        while stack.last().is_some_and(|f| f.indent >= indent) {
            stack.pop();
        }
        stack.push(Frame {
            indent,
            name: key,
            item: false,
        });
        let is_block = value.starts_with(['|', '>'])
            && value[1..]
                .chars()
                .all(|c| c == '-' || c == '+' || c.is_ascii_digit());
        if is_block {
            block = Some((path(&stack), indent, value.starts_with('>'), String::new()));
        } else if !value.is_empty() {
            emit(&mut out, path(&stack), &value, lineno);
        }
    }
    if let Some((p, _, _, acc)) = block {
        out.push((p, acc));
    }
    out
}

struct Compose {
    entries: Vec<(String, String)>,
}

impl Compose {
    fn load() -> Compose {
        Compose::load_file("docker-compose.yml")
    }
    fn load_file(rel: &str) -> Compose {
        Compose {
            entries: flatten_yaml(&read(rel)),
        }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn must(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("docker-compose.yml has no {key}"))
    }
    /// The scalar items of the sequence at `key`.
    fn list(&self, key: &str) -> Vec<&str> {
        let prefix = format!("{key}[");
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                let idx = k.strip_prefix(&prefix)?.strip_suffix(']')?;
                idx.parse::<usize>().ok().map(|_| v.as_str())
            })
            .collect()
    }
    fn has_prefix(&self, prefix: &str) -> bool {
        self.entries.iter().any(|(k, _)| k.starts_with(prefix))
    }
    fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (k, _) in &self.entries {
            if let Some(rest) = k.strip_prefix("services.") {
                let name = rest.split(['.', '[']).next().unwrap_or("").to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
    /// An environment variable of a service, map or list form.
    fn env(&self, service: &str, name: &str) -> Option<String> {
        if let Some(v) = self.get(&format!("services.{service}.environment.{name}")) {
            return Some(v.to_string());
        }
        self.list(&format!("services.{service}.environment"))
            .into_iter()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")).map(str::to_string))
    }
    fn cpus(&self, service: &str) -> f64 {
        let v = self.must(&format!("services.{service}.deploy.resources.limits.cpus"));
        v.parse()
            .unwrap_or_else(|_| panic!("{service}: cpus {v:?} is not a number"))
    }
    fn memory_bytes(&self, service: &str) -> u64 {
        parse_bytes(self.must(&format!(
            "services.{service}.deploy.resources.limits.memory"
        )))
    }
    /// Postgres settings given on the db command line, as name -> value.
    fn postgres_flags(&self) -> Vec<(String, String)> {
        self.postgres_flags_of("db")
    }
    /// Postgres settings given on a service's command line
    /// (`[postgres, --name=value | -c name=value ...]`), as name -> value.
    fn postgres_flags_of(&self, service: &str) -> Vec<(String, String)> {
        let args = self.list(&format!("services.{service}.command"));
        assert_eq!(
            args.first(),
            Some(&"postgres"),
            "{service} command must start with `postgres`"
        );
        let mut flags = Vec::new();
        let mut i = 1;
        while i < args.len() {
            let setting = if args[i] == "-c" {
                i += 1;
                args.get(i).copied().expect("-c without a value")
            } else if let Some(s) = args[i].strip_prefix("--") {
                s
            } else if let Some(s) = args[i].strip_prefix("-c") {
                s
            } else {
                panic!("unexpected postgres argument {:?}", args[i]);
            };
            let (name, value) = setting
                .split_once('=')
                .unwrap_or_else(|| panic!("{setting:?} is not name=value"));
            flags.push((name.to_string(), value.to_string()));
            i += 1;
        }
        flags
    }
}

/// Compose byte values: Docker's units, binary multiples.
fn parse_bytes(v: &str) -> u64 {
    let s = v.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let number: f64 = s[..split]
        .parse()
        .unwrap_or_else(|_| panic!("bad byte value {v:?}"));
    let multiplier = match s[split..].trim() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        unit => panic!("unknown unit {unit:?} in {v:?}"),
    };
    (number * multiplier as f64).round() as u64
}

#[test]
fn yaml_reader_handles_the_subset_we_write() {
    let text = "\
# comment
a:
  b: \"x: y\"   # trailing comment
  c: 'single # not a comment'
  list:
    - one
    - \"two:2\"
    - k: v
      k2: v2
  flow: [\"CMD\", \"x\", 3]
same_indent:
- p
- q
folded: >
  line one
  line two
url: postgres://u:p@db:5432/d
";
    let flat = flatten_yaml(text);
    let expected = [
        ("a.b", "x: y"),
        ("a.c", "single # not a comment"),
        ("a.list[0]", "one"),
        ("a.list[1]", "two:2"),
        ("a.list[2].k", "v"),
        ("a.list[2].k2", "v2"),
        ("a.flow[0]", "CMD"),
        ("a.flow[1]", "x"),
        ("a.flow[2]", "3"),
        ("same_indent[0]", "p"),
        ("same_indent[1]", "q"),
        ("folded", "line one line two"),
        ("url", "postgres://u:p@db:5432/d"),
    ];
    let got: Vec<(&str, &str)> = flat.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, expected);

    // perf/stack's awk reader sees the same.
    let dir = TempDir::new("yaml");
    let file = dir.path().join("sample.yml");
    fs::write(&file, text).unwrap();
    let out = stack(&["flatten", file.to_str().unwrap()], None);
    let expected_lines: Vec<String> = expected.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let lines: Vec<&str> = out.lines().collect();
    // The folded scalar is one line in both readers.
    assert_eq!(lines, expected_lines);
}

// ---- docker-compose.yml -------------------------------------------------------------

#[test]
fn compose_has_exactly_the_four_services() {
    let compose = Compose::load();
    let mut got = compose.services();
    got.sort();
    let mut want: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn compose_limits_on_every_service_within_the_budget() {
    let compose = Compose::load();
    let mut cpus = 0.0;
    let mut memory = 0;
    for s in SERVICES {
        let c = compose.cpus(s);
        let m = compose.memory_bytes(s);
        assert!(c > 0.0 && m > 0, "{s}: limits must be positive");
        cpus += c;
        memory += m;
    }
    assert!(
        cpus <= CPUS_BUDGET + 1e-9,
        "total cpus {cpus} > {CPUS_BUDGET}"
    );
    assert!(
        memory <= MEMORY_BUDGET_BYTES,
        "total memory {} MiB > 550 MiB",
        memory >> 20
    );
    // Postgres is where memory pays (shared_buffers, page cache).
    assert!(
        compose.memory_bytes("db") * 2 > memory,
        "db should get most of the memory"
    );
    eprintln!("budget: {cpus:.2} CPU, {} MiB", memory >> 20);
}

#[test]
fn compose_api_instances_differ_only_in_name() {
    let compose = Compose::load();
    assert_eq!(
        service_entries(&compose, "api-01"),
        service_entries(&compose, "api-02")
    );
}

#[test]
fn compose_lb_publishes_9999_as_nginx_on_the_flashsale_network() {
    let compose = Compose::load();
    let ports = compose.list("services.lb.ports");
    assert!(
        ports
            .iter()
            .any(|p| *p == "9999:9999" || p.ends_with(":9999:9999")),
        "lb ports {ports:?}"
    );
    for s in SERVICES {
        if s != "lb" {
            assert!(
                !compose.has_prefix(&format!("services.{s}.ports")),
                "{s} must not publish ports"
            );
        }
    }
    assert_eq!(compose.get("networks.flashsale.name"), Some("flashsale"));
    assert_ne!(
        compose.get("networks.flashsale.external"),
        Some("true"),
        "this stack creates the network"
    );
    for s in SERVICES {
        let listed = compose
            .list(&format!("services.{s}.networks"))
            .contains(&"flashsale");
        let mapped = compose.has_prefix(&format!("services.{s}.networks.flashsale"));
        assert!(listed || mapped, "{s} is not on the flashsale network");
    }
    let aliases = compose.list("services.lb.networks.flashsale.aliases");
    assert!(
        aliases.contains(&"nginx"),
        "lb aliases {aliases:?} lack nginx"
    );
    assert!(compose.must("services.lb.image").starts_with("nginx"));
    assert!(compose
        .must("services.lb.volumes[0]")
        .contains(":/etc/nginx/nginx.conf"));
}

#[test]
fn compose_health_checks_and_start_order() {
    let compose = Compose::load();
    let db_check = compose.list("services.db.healthcheck.test").join(" ");
    assert!(
        db_check.contains("pg_isready") && db_check.contains("-h 127.0.0.1"),
        "db check over TCP: {db_check}"
    );
    for api in ["api-01", "api-02"] {
        let check = compose.list(&format!("services.{api}.healthcheck.test"));
        assert_eq!(
            check,
            ["CMD", "/flashsale", "--healthcheck"],
            "{api}: the scratch image has only the binary"
        );
        assert_eq!(
            compose.get(&format!("services.{api}.depends_on.db.condition")),
            Some("service_healthy")
        );
        let url = compose.env(api, "DATABASE_URL").expect("DATABASE_URL");
        assert!(
            url.contains("@db:5432/"),
            "{api} must reach the db service: {url}"
        );
        assert_eq!(compose.env(api, "PORT").as_deref(), Some("8080"));
    }
    for api in ["api-01", "api-02"] {
        assert_eq!(
            compose.get(&format!("services.lb.depends_on.{api}.condition")),
            Some("service_healthy")
        );
    }
}

#[test]
fn compose_db_is_postgres_16_with_init_sql_and_durable_commits() {
    let compose = Compose::load();
    let image = compose.must("services.db.image");
    assert!(
        image == "postgres:16" || image.starts_with("postgres:16"),
        "db image {image}"
    );
    let volumes = compose.list("services.db.volumes");
    let init = volumes
        .iter()
        .find(|v| v.contains(":/docker-entrypoint-initdb.d"))
        .unwrap_or_else(|| panic!("init.sql is not mounted: {volumes:?}"));
    assert!(init.starts_with("./sql/init.sql:"), "{init}");
    assert!(repo().join("sql/init.sql").is_file());

    let flags = compose.postgres_flags();
    let flag = |name: &str| {
        flags
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert!(
        matches!(flag("synchronous_commit"), None | Some("on")),
        "synchronous_commit must stay on"
    );
    assert!(
        matches!(flag("fsync"), None | Some("on")),
        "fsync must stay on"
    );
    assert!(
        matches!(flag("full_page_writes"), None | Some("on")),
        "full_page_writes must stay on"
    );
    // Enough connections for both pools, the superuser reserve and a few more.
    let pools: u32 = ["api-01", "api-02"]
        .iter()
        .map(|a| {
            compose
                .env(a, "DB_POOL_SIZE")
                .map_or(3, |v| v.parse().expect("DB_POOL_SIZE"))
        })
        .sum();
    let max_connections: u32 = flag("max_connections").map_or(100, |v| v.parse().unwrap());
    assert!(
        max_connections >= pools + 3 + 4,
        "max_connections {max_connections} too small for pools of {pools}"
    );
    // shared_buffers must fit well inside the container.
    let shared = parse_bytes(flag("shared_buffers").unwrap_or("128MB"));
    assert!(
        shared * 2 < compose.memory_bytes("db"),
        "shared_buffers too large for the db limit"
    );
}

/// The URL both API instances connect with (they differ only in name).
fn api_connect_config(compose: &Compose) -> ConnectConfig {
    let url = compose.env("api-01", "DATABASE_URL").expect("DATABASE_URL");
    ConnectConfig::from_url(&url).unwrap_or_else(|e| panic!("api-01 DATABASE_URL: {e}"))
}

#[test]
fn compose_api_connects_as_its_own_role_not_the_superuser() {
    let compose = Compose::load();
    let superuser = compose.env("db", "POSTGRES_USER").expect("POSTGRES_USER");
    let superuser_password = compose
        .env("db", "POSTGRES_PASSWORD")
        .expect("POSTGRES_PASSWORD");
    let api = api_connect_config(&compose);
    assert_ne!(
        api.user, superuser,
        "the API must not log in as the superuser"
    );
    let password = api
        .password
        .as_deref()
        .expect("the API's URL has a password");
    assert_ne!(
        password, superuser_password,
        "the superuser's password is not the API's"
    );
    assert_eq!(api.require_auth, Methods::DEFAULT, "SCRAM-SHA-256 only");
    assert_eq!(
        Some(api.database.as_str()),
        compose.env("db", "POSTGRES_DB").as_deref()
    );
    let init = read("sql/init.sql");
    assert!(
        init.contains(&format!("CREATE ROLE {} LOGIN", api.user)),
        "sql/init.sql makes the API's role {}",
        api.user
    );
}

/// init.sql stores the SCRAM verifier of the compose file's API password:
/// that password logs in as the API role, the superuser's does not.
#[test]
fn init_sql_and_compose_agree_on_the_api_password() {
    let compose = Compose::load();
    let api = api_connect_config(&compose);
    let cluster = PgCluster::start(Auth::Scram);
    cluster.apply_file(&repo().join("sql/init.sql"));
    let password = api
        .password
        .as_deref()
        .expect("the API's URL has a password");
    let me = cluster.try_psql_as(&api.user, password, "SELECT current_user");
    assert_eq!(me.as_deref(), Ok(api.user.as_str()));
    let superuser_password = compose
        .env("db", "POSTGRES_PASSWORD")
        .expect("POSTGRES_PASSWORD");
    let refused = cluster
        .try_psql_as(&api.user, &superuser_password, "SELECT 1")
        .expect_err("the superuser's password must not log in as the API");
    assert!(
        refused.contains("password authentication failed"),
        "{refused}"
    );
}

// ---- perf/stack reads the same compose file --------------------------------------------

/// Runs perf/stack; returns stdout; panics with stderr on failure.
fn stack(args: &[&str], state_dir: Option<&Path>) -> String {
    let mut cmd = Command::new(repo().join("perf/stack"));
    cmd.args(args).stdin(Stdio::null());
    if let Some(dir) = state_dir {
        cmd.env("STACK_DIR", dir);
    }
    let out = cmd.output().expect("run perf/stack");
    assert!(
        out.status.success(),
        "perf/stack {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// perf/stack's YAML reader sees `file` as this test's parse of it.
fn assert_stack_reads_as_we_do(compose: &Compose, file: &str) {
    let flat = stack(&["flatten", repo().join(file).to_str().unwrap()], None);
    let ours: Vec<String> = compose
        .entries
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(
        flat.lines().collect::<Vec<_>>(),
        ours,
        "perf/stack's YAML reader disagrees with this test's on {file}"
    );
}

/// The words after `limit` of a `perf/stack config` line, checked against
/// the compose file's limits; returns the service.
fn checked_limit<'a>(compose: &Compose, mut words: impl Iterator<Item = &'a str>) -> String {
    let service = words.next().unwrap();
    let kv: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
    let quota = (compose.cpus(service) * 100_000.0).round() as u64;
    assert_eq!(
        kv["quota_us"].parse::<u64>().unwrap(),
        quota,
        "{service} quota"
    );
    assert_eq!(kv["period_us"], "100000");
    assert_eq!(
        kv["memory_bytes"].parse::<u64>().unwrap(),
        compose.memory_bytes(service),
        "{service} memory"
    );
    service.to_string()
}

#[test]
fn stack_script_reads_what_this_test_reads() {
    let compose = Compose::load();
    assert_stack_reads_as_we_do(&compose, "docker-compose.yml");

    let config = stack(&["config"], None);
    let mut limits = 0;
    let mut pg_flags = Vec::new();
    for line in config.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("limit") => {
                checked_limit(&compose, words);
                limits += 1;
            }
            Some("pg_flag") => pg_flags.push(words.next().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(limits, SERVICES.len());
    let want: Vec<String> = compose
        .postgres_flags()
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    assert_eq!(pg_flags, want);
    assert!(
        config.lines().any(|l| l == "init_sql sql/init.sql"),
        "{config}"
    );
    assert!(
        config.lines().any(|l| l == "nginx_conf nginx/nginx.conf"),
        "{config}"
    );
}

// ---- nginx.conf ---------------------------------------------------------------------------

/// Directive lines of nginx.conf without comments, whitespace-normalised.
fn nginx_directives() -> Vec<String> {
    read("nginx/nginx.conf")
        .lines()
        .map(|l| {
            l.split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn nginx_conf_matches_the_topology_and_the_cpu_share() {
    let d = nginx_directives();
    let has = |s: &str| {
        d.iter()
            .any(|l| l == s || l.starts_with(&format!("{} ", s.trim_end_matches(';'))))
    };
    for line in [
        "access_log /dev/stdout json buffer=32k flush=1s if=$access_loggable;",
        "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
        "proxy_pass http://api;",
    ] {
        assert!(d.iter().any(|l| l == line), "nginx.conf lacks `{line}`");
    }
    assert!(
        has("server api-01:8080") && has("server api-02:8080"),
        "upstreams"
    );
    assert!(has("listen 9999"), "listen 9999");
    assert!(
        d.iter()
            .any(|l| l.starts_with("keepalive ") && l.len() > "keepalive ;".len()),
        "upstream keepalive"
    );
    assert!(
        !d.iter().any(|l| l.starts_with("daemon")),
        "the image passes `daemon off;` itself"
    );
    let workers: f64 = d
        .iter()
        .find_map(|l| {
            l.strip_prefix("worker_processes ")?
                .strip_suffix(';')?
                .parse()
                .ok()
        })
        .expect("worker_processes as a number");
    let lb_cpus = Compose::load().cpus("lb");
    assert_eq!(
        workers,
        lb_cpus.ceil().max(1.0),
        "one worker per (started) CPU of lb's share"
    );
}

/// The nginx binary, if installed (perf/stack up installs it).
fn nginx_binary() -> Option<&'static str> {
    let found = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    if found.is_none() {
        eprintln!("SKIPPED: nginx is not installed (perf/stack up installs it)");
    }
    found
}

/// nginx.conf as perf/stack runs it, on these ports, written into `dir`.
fn render_nginx_conf(dir: &Path, port: u16, api_ports: [u16; 2]) -> PathBuf {
    let conf = stack(
        &[
            "nginx-conf",
            "--port",
            &port.to_string(),
            "--api-ports",
            &format!("{},{}", api_ports[0], api_ports[1]),
        ],
        Some(dir),
    );
    for p in api_ports {
        assert!(conf.contains(&format!("server 127.0.0.1:{p}")));
    }
    assert!(conf.contains(&format!("listen 127.0.0.1:{port}")));
    let file = dir.join("nginx.conf");
    fs::write(&file, &conf).unwrap();
    file
}

#[test]
fn nginx_conf_as_run_by_perf_stack_passes_nginx_t() {
    let Some(nginx) = nginx_binary() else { return };
    let dir = TempDir::new("nginx");
    let file = render_nginx_conf(dir.path(), 19999, [18081, 18082]);
    let out = Command::new(nginx)
        .arg("-t")
        .arg("-p")
        .arg(dir.path().join("nginx"))
        .arg("-c")
        .arg(&file)
        .output()
        .expect("run nginx -t");
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running nginx, stopped (SIGTERM to the master, which stops its
/// worker) when dropped.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

/// A connection to 127.0.0.1:`port` from the loopback address `source`
/// (std cannot bind a client socket's address; libc can).
fn connect_from(source: std::net::Ipv4Addr, port: u16) -> std::net::TcpStream {
    use std::os::fd::FromRawFd;
    let addr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, owned by the TcpStream from here on (or closed
    // on failure); the addresses are valid sockaddr_in values of `len` bytes.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = std::net::TcpStream::from_raw_fd(fd);
        let local = addr(source, 0);
        let remote = addr(std::net::Ipv4Addr::LOCALHOST, port);
        assert_eq!(
            libc::bind(fd, &local as *const _ as *const libc::sockaddr, len),
            0,
            "bind {source}: {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(
            libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len),
            0,
            "connect: {}",
            std::io::Error::last_os_error()
        );
        stream
    }
}

/// Reads one answer: the status and the body (until `Content-Length` is
/// complete or the server closes).
fn read_answer(s: &mut std::net::TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        head.lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|len| body.len() >= len)
    };
    while !complete(&data) {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&data).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "not a JSON answer: {head}"
    );
    (status, body.to_string())
}

/// Sends `request` from `source` and reads the answer.
fn exchange_from(source: std::net::Ipv4Addr, port: u16, request: &[u8]) -> (u16, String) {
    use std::io::Write;
    let mut s = connect_from(source, port);
    s.write_all(request).unwrap();
    read_answer(&mut s)
}

/// nginx as configured, in front of two "instances" that accept and never
/// answer: the refusals nginx makes itself are the API's statuses with a
/// JSON body: 503 once both instances hold max_conns requests, 429 past the
/// per-address limit, 413 for a body over the API's limit, 431 for a head
/// over what nginx reads.
#[test]
fn nginx_refusals_are_json_with_the_apis_statuses() {
    use std::io::Write;
    use std::net::Ipv4Addr;
    let Some(nginx) = nginx_binary() else { return };
    let uplinks: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let api_ports = [0, 1].map(|i| uplinks[i].local_addr().unwrap().port());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for l in uplinks {
        let held = std::sync::Arc::clone(&held);
        thread::spawn(move || {
            for s in l.incoming().flatten() {
                held.lock().unwrap().push(s); // accepted, never answered
            }
        });
    }
    let dir = TempDir::new("nginx-live");
    let (_nginx, port) = start_nginx(nginx, dir.path(), api_ports);

    let d = nginx_directives();
    let per_address: usize = nginx_one(&d, "limit_conn")[1].parse().unwrap();
    let max_conns: usize = d
        .iter()
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("max_conns="))
        })
        .map(|v| v.trim_end_matches(';').parse::<usize>().unwrap())
        .sum();
    assert!(
        max_conns <= per_address,
        "the test fills the instances from one address"
    );
    // Fill both instances from one address.
    let get = b"GET /products/1 HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut waiting = Vec::new();
    for _ in 0..max_conns {
        let mut s = connect_from(Ipv4Addr::LOCALHOST, port);
        s.write_all(get).unwrap();
        waiting.push(s);
    }
    let start = Instant::now();
    while held.lock().unwrap().len() < max_conns {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "requests did not reach the instances"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let (status, body) = exchange_from(other, port, get);
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"error":"no capacity left, try again later"}"#)
    );

    // The first address, up to its limit.
    for _ in max_conns..per_address {
        let mut s = connect_from(Ipv4Addr::LOCALHOST, port);
        s.write_all(b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .unwrap();
        waiting.push(s); // a body being read: a request in progress
    }
    thread::sleep(Duration::from_millis(200));
    let (status, body) = exchange_from(Ipv4Addr::LOCALHOST, port, get);
    assert_eq!(
        (status, body.as_str()),
        (
            429,
            r#"{"error":"too many requests from this address, retry later"}"#
        )
    );

    let third = Ipv4Addr::new(127, 0, 0, 3);
    let too_long = format!(
        "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        flashsale::config::HTTP_BODY_BYTES_MAX + 1
    );
    let (status, body) = exchange_from(third, port, too_long.as_bytes());
    assert_eq!(
        (status, body.as_str()),
        (413, r#"{"error":"request body too large"}"#)
    );
    let big_head = format!(
        "GET /products/1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(6000)
    );
    let (status, body) = exchange_from(third, port, big_head.as_bytes());
    assert_eq!(
        (status, body.as_str()),
        (431, r#"{"error":"request head too large"}"#)
    );
    // The administration's request rate per address: a burst of 20 passes
    // (to find both instances full here: 503), then 429; other paths from
    // the same address are not counted.
    let admin_client = Ipv4Addr::new(127, 0, 0, 5);
    let admin = b"GET /admin/products HTTP/1.1\r\nHost: x\r\n\r\n";
    let statuses: Vec<u16> = (0..30)
        .map(|_| exchange_from(admin_client, port, admin).0)
        .collect();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        (5..=9).contains(&limited) && statuses[..20].iter().all(|&s| s == 503),
        "{statuses:?}"
    );
    let (status, body) = exchange_from(admin_client, port, admin);
    assert_eq!(
        (status, body.as_str()),
        (
            429,
            r#"{"error":"too many requests from this address, retry later"}"#
        )
    );
    assert_eq!(exchange_from(admin_client, port, get).0, 503);
    // The instances' metrics are not reachable through the lb (they would
    // not answer here: nginx answers itself).
    let (status, body) = exchange_from(third, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));
    drop(waiting);
    thread::sleep(Duration::from_millis(200));
    // nginx's counters: for an exporter on the same host only.
    let status_page = b"GET /nginx_status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, body) = exchange_from(third, port, status_page);
    assert_eq!((status, body.as_str()), (404, r#"{"error":"not found"}"#));
    let mut local = connect_from(Ipv4Addr::LOCALHOST, port);
    local.write_all(status_page).unwrap();
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut local, &mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains("Active connections:"),
        "{answer}"
    );
}

/// nginx started as perf/stack starts it, in front of `api_ports`; stopped
/// when the value is dropped.
fn start_nginx(nginx: &str, dir: &Path, api_ports: [u16; 2]) -> (Nginx, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = render_nginx_conf(dir, port, api_ports);
    let prefix = dir.join("nginx");
    fs::create_dir_all(prefix.join("tmp")).unwrap();
    let running = Nginx(
        Command::new(nginx)
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&file)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx"),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not start"
        );
        thread::sleep(Duration::from_millis(50));
    }
    (running, port)
}

/// One request from `source` on a fresh connection (closed after it): the
/// status, the head's lines (lowercase names) and the body.
fn fetch_from(
    source: std::net::Ipv4Addr,
    port: u16,
    method: &str,
    path: &str,
) -> (u16, Vec<String>, Vec<u8>) {
    use std::io::Write;
    let mut s = connect_from(source, port);
    let body = if method == "POST" { "{}" } else { "" };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut data = Vec::new();
    s.read_to_end(&mut data).unwrap();
    let split = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&data)));
    let head = String::from_utf8_lossy(&data[..split]).to_string();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let lines = head
        .lines()
        .skip(1)
        .map(|l| match l.split_once(':') {
            Some((name, value)) => format!("{}: {}", name.to_ascii_lowercase(), value.trim()),
            None => l.to_string(),
        })
        .collect();
    (status, lines, data[split + 4..].to_vec())
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    lines.iter().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// nginx as configured, in front of two "instances" that answer every
/// request with `{"path": ...}` and count what reaches them: the buyer's
/// page and its assets come from nginx/www with their caching headers;
/// GET /sales reaches an instance at most about once a second however many
/// pages ask; sign-ups and log-ins are limited per address (429), other
/// requests of the same address are not.
#[test]
fn nginx_serves_the_page_shares_sales_and_limits_log_ins() {
    use std::io::Write;
    use std::net::Ipv4Addr;
    let Some(nginx) = nginx_binary() else { return };
    let hits = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, usize>::new()));
    let uplinks: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let api_ports = [0, 1].map(|i| uplinks[i].local_addr().unwrap().port());
    for l in uplinks {
        let hits = std::sync::Arc::clone(&hits);
        thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let hits = std::sync::Arc::clone(&hits);
                thread::spawn(move || {
                    let mut buf = vec![0u8; 8192];
                    let mut have = 0;
                    loop {
                        let n = match s.read(&mut buf[have..]) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        have += n;
                        let text = String::from_utf8_lossy(&buf[..have]).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if have < end + 4 + length {
                            continue;
                        }
                        let line = text.lines().next().unwrap_or("").to_string();
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                        let body = format!("{{\"path\":\"{path}\"}}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                        let consumed = end + 4 + length;
                        buf.copy_within(consumed..have, 0);
                        have -= consumed;
                    }
                });
            }
        });
    }
    let dir = TempDir::new("nginx-page");
    let (_nginx, port) = start_nginx(nginx, dir.path(), api_ports);
    let here = Ipv4Addr::LOCALHOST;

    // The page: revalidated on every load, with its content security policy.
    let (status, head, body) = fetch_from(here, port, "GET", "/");
    assert_eq!(status, 200, "{head:?}");
    assert_eq!(header(&head, "content-type"), Some("text/html"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    let csp = header(&head, "content-security-policy").expect("a CSP");
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let page = String::from_utf8(body).unwrap();
    assert_eq!(page, read("nginx/www/index.html"));
    assert!(page.contains(r#"src="/static/app.js""#));
    for (asset, kind) in [("app.js", "text/javascript"), ("style.css", "text/css")] {
        let (status, head, body) = fetch_from(here, port, "GET", &format!("/static/{asset}"));
        assert_eq!(status, 200, "{asset}: {head:?}");
        assert_eq!(header(&head, "content-type"), Some(kind));
        assert_eq!(header(&head, "cache-control"), Some("public, max-age=300"));
        assert_eq!(
            body,
            read(&format!("nginx/www/static/{asset}")).into_bytes()
        );
    }
    assert_eq!(fetch_from(here, port, "GET", "/static/missing.js").0, 404);
    assert!(
        hits.lock().unwrap().is_empty(),
        "the page never reaches an API"
    );

    // GET /sales: 40 pages asking at once cost an instance one request
    // (two if a second began in between).
    let before = Instant::now();
    let asks: Vec<_> = (0..40)
        .map(|_| thread::spawn(move || fetch_from(here, port, "GET", "/sales")))
        .collect();
    for ask in asks {
        let (status, _, body) = ask.join().unwrap();
        assert_eq!(
            (status, body.as_slice()),
            (200, &br#"{"path":"/sales"}"#[..])
        );
    }
    let upstream = hits.lock().unwrap().get("/sales").copied().unwrap_or(0);
    let took = before.elapsed();
    assert!(
        (1..=1 + took.as_secs() as usize + 1).contains(&upstream),
        "{upstream} requests reached the instances in {took:?}"
    );
    let (_, head, _) = fetch_from(here, port, "GET", "/sales");
    assert_eq!(header(&head, "x-cache"), Some("HIT"), "{head:?}");
    // Another page of the listing is another entry; a second later the
    // first is fetched again.
    fetch_from(here, port, "GET", "/sales?after=100");
    assert_eq!(hits.lock().unwrap().get("/sales?after=100"), Some(&1));
    thread::sleep(Duration::from_millis(1600));
    fetch_from(here, port, "GET", "/sales");
    fetch_from(here, port, "GET", "/sales");
    let again = hits.lock().unwrap().get("/sales").copied().unwrap_or(0);
    assert!(again > upstream, "the entry lives ~1 s, not more");

    // Log-ins and sign-ups per address: a burst of 5, then 1 a second.
    let storm = Ipv4Addr::new(127, 0, 0, 7);
    let statuses: Vec<u16> = (0..12)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/sessions"
            } else {
                "/customers"
            };
            fetch_from(storm, port, "POST", path).0
        })
        .collect();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert!(
        statuses[..5].iter().all(|&s| s == 200) && (5..=7).contains(&limited),
        "{statuses:?}"
    );
    let (status, head, body) = fetch_from(storm, port, "POST", "/sessions");
    assert_eq!(status, 429);
    assert_eq!(header(&head, "content-type"), Some("application/json"));
    assert_eq!(
        body,
        br#"{"error":"too many requests from this address, retry later"}"#
    );
    // The same address's other requests, and another address's log-ins.
    for (method, path) in [
        ("GET", "/sessions/current"),
        ("DELETE", "/sessions/current"),
        ("POST", "/orders"),
        ("GET", "/products/1"),
    ] {
        assert_eq!(
            fetch_from(storm, port, method, path).0,
            200,
            "{method} {path}"
        );
    }
    assert_eq!(
        fetch_from(Ipv4Addr::new(127, 0, 0, 8), port, "POST", "/sessions").0,
        200
    );
}

/// The arguments of the directive `name` wherever it appears (each
/// occurrence, without the trailing `;`).
fn nginx_directive(d: &[String], name: &str) -> Vec<Vec<String>> {
    d.iter()
        .filter_map(|l| {
            let l = l.strip_suffix(';')?;
            let mut words = l.split_whitespace();
            (words.next()? == name).then(|| words.map(str::to_string).collect())
        })
        .collect()
}

/// The single value of a directive that must appear exactly once.
fn nginx_one(d: &[String], name: &str) -> Vec<String> {
    let all = nginx_directive(d, name);
    assert_eq!(all.len(), 1, "nginx.conf: `{name}` must appear once");
    all.into_iter().next().unwrap()
}

/// nginx sizes: `4k`, `1m`, `512`.
fn nginx_size(v: &str) -> usize {
    let (n, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    n.parse::<usize>()
        .unwrap_or_else(|_| panic!("nginx size {v:?}"))
        * mult
}

/// What one connection slot of nginx costs before any buffer: the
/// connection and request pools and the kernel's socket (measured with
/// perf/faults big-header, see the arithmetic in nginx.conf).
const NGINX_SLOT_BASE_BYTES: usize = 12 * 1024;
/// The master and the worker at rest, the connection array and the zone.
const NGINX_BASE_BYTES: usize = 3 * 1024 * 1024;
/// The published load test's connections, all from one address.
const LOAD_TEST_CONNECTIONS: usize = 100;

#[test]
fn nginx_conf_buffers_match_the_api_limits() {
    use flashsale::config::{HTTP_BODY_BYTES_MAX, HTTP_HEAD_BYTES_MAX};
    let d = nginx_directives();
    let size = |name: &str| nginx_size(&nginx_one(&d, name)[0]);
    // The lb refuses exactly the bodies the API refuses, with the same 413.
    assert_eq!(size("client_max_body_size"), HTTP_BODY_BYTES_MAX);
    assert!(size("client_body_buffer_size") <= HTTP_BODY_BYTES_MAX);
    // A head the lb accepts fits the API's head limit: it never forwards a
    // head the API would refuse.
    let large = nginx_one(&d, "large_client_header_buffers");
    let head_max = size("client_header_buffer_size")
        + large[0].parse::<usize>().unwrap() * nginx_size(&large[1]);
    assert!(
        head_max <= HTTP_HEAD_BYTES_MAX,
        "nginx reads heads up to {head_max} bytes, the API refuses more than {HTTP_HEAD_BYTES_MAX}"
    );
}

#[test]
fn nginx_conf_memory_arithmetic_fits_the_lb_limit() {
    let d = nginx_directives();
    let size = |name: &str| nginx_size(&nginx_one(&d, name)[0]);
    let slots: usize = nginx_one(&d, "worker_connections")[0].parse().unwrap();
    let large = nginx_one(&d, "large_client_header_buffers");
    let large_bytes = large[0].parse::<usize>().unwrap() * nginx_size(&large[1]);
    // The costliest state of a slot: a head in its large buffers, or a
    // body in its buffer (a proxied request spreads over two slots).
    let slot_max = NGINX_SLOT_BASE_BYTES + large_bytes.max(size("client_body_buffer_size"));
    let worst = NGINX_BASE_BYTES + slots * slot_max;
    let limit = Compose::load().memory_bytes("lb") as usize;
    assert!(
        worst <= limit,
        "{slots} slots x {slot_max} bytes + {NGINX_BASE_BYTES} = {worst} > lb's {limit}"
    );
    // Descriptors for every slot.
    let nofile: usize = nginx_one(&d, "worker_rlimit_nofile")[0].parse().unwrap();
    assert!(nofile >= 2 * slots);
    // The published load test's clients, and their upstream connections, fit.
    assert!(slots >= 4 * LOAD_TEST_CONNECTIONS, "{slots} slots");
}

#[test]
fn nginx_conf_limits_each_address_and_sheds_overload_as_json() {
    let d = nginx_directives();
    // Per address, keyed by the client's own address, exempting none.
    let zone = nginx_one(&d, "limit_conn_zone");
    assert_eq!(zone[0], "$binary_remote_addr", "{zone:?}");
    let zone_name = zone[1]
        .strip_prefix("zone=")
        .unwrap()
        .split(':')
        .next()
        .unwrap();
    let limit = nginx_one(&d, "limit_conn");
    assert_eq!(limit[0], zone_name);
    let per_address: usize = limit[1].parse().unwrap();
    assert!(
        per_address >= 2 * LOAD_TEST_CONNECTIONS,
        "the load test sends ~{LOAD_TEST_CONNECTIONS} requests at once from one address"
    );
    for exemption in ["geo", "map", "allow", "deny", "satisfy"] {
        assert!(
            nginx_directive(&d, exemption).is_empty(),
            "`{exemption}` in nginx.conf"
        );
    }
    // Every instance takes a bounded number of requests at once, enough for
    // the load test on one instance alone.
    let servers: Vec<&String> = d.iter().filter(|l| l.starts_with("server api-")).collect();
    assert_eq!(servers.len(), 2);
    for s in &servers {
        let max_conns: usize = s
            .split_whitespace()
            .find_map(|w| w.strip_prefix("max_conns="))
            .unwrap_or_else(|| panic!("{s}: no max_conns"))
            .trim_end_matches(';')
            .parse()
            .unwrap();
        assert!(max_conns >= LOAD_TEST_CONNECTIONS, "{s}");
    }
    // nginx's own refusals answer like the API: a status and a JSON body.
    let conf = read("nginx/nginx.conf");
    assert_eq!(nginx_one(&d, "default_type"), ["application/json"]);
    for (from, to) in [
        ("502", "503"),
        ("429", "429"),
        ("413", "413"),
        ("494", "431"),
    ] {
        let page = nginx_directive(&d, "error_page")
            .into_iter()
            .find(|a| a[0] == from)
            .unwrap_or_else(|| panic!("no error_page {from}"));
        assert_eq!(
            page[1], "=",
            "error_page {from}: the named location sets the status"
        );
        let location = format!("location {} {{", page[2]);
        let body = conf
            .split(&location)
            .nth(1)
            .unwrap_or_else(|| panic!("no {location}"));
        let ret = body
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("return "))
            .unwrap();
        let json = ret
            .strip_prefix(&format!("return {to} '"))
            .and_then(|r| r.strip_suffix("';"))
            .unwrap_or_else(|| panic!("{location}: {ret}"));
        assert!(
            json.starts_with("{\"error\":\"") && json.ends_with("\"}"),
            "{json}"
        );
    }
    // Deadlines nginx can express are set; retries stay as documented.
    for name in [
        "client_header_timeout",
        "client_body_timeout",
        "lingering_time",
    ] {
        nginx_one(&d, name);
    }
    assert_eq!(
        nginx_one(&d, "proxy_next_upstream"),
        ["error", "timeout", "non_idempotent"]
    );
}

// ---- Dockerfile and .dockerignore --------------------------------------------------------

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        let (body, continued) = match t.strip_suffix('\\') {
            Some(b) => (b.trim(), true),
            None => (t, false),
        };
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(body);
        if !continued {
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

fn workspace_members() -> Vec<String> {
    let manifest = read("Cargo.toml");
    let start = manifest.find("members").expect("workspace members");
    let list = &manifest[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty() && m != ".")
        .collect()
}

#[test]
fn dockerfile_builds_the_static_binary_into_scratch() {
    let ins = dockerfile_instructions();
    let froms: Vec<&String> = ins.iter().filter(|i| i.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    assert_eq!(froms.last().unwrap().as_str(), "FROM scratch");

    let builds: Vec<&String> = ins
        .iter()
        .filter(|i| i.starts_with("RUN") && i.contains("cargo build"))
        .collect();
    assert!(!builds.is_empty());
    for b in &builds {
        for part in ["--release", "--locked", &format!("--target {MUSL_TARGET}")] {
            assert!(b.contains(part), "`{b}` lacks {part}");
        }
        assert!(
            b.contains("-p flashsale") || b.contains("--bin flashsale"),
            "`{b}` must build only flashsale"
        );
    }
    assert!(ins
        .iter()
        .any(|i| i.contains(&format!("rustup target add {MUSL_TARGET}"))));
    // The real sources are touched before the last build (see the Dockerfile).
    let last_build = builds.last().unwrap();
    assert!(
        last_build.contains("touch"),
        "the final build must touch the copied sources"
    );

    // The runtime stage: the binary where compose's healthcheck expects it.
    let final_stage = &ins[ins.iter().rposition(|i| i.starts_with("FROM ")).unwrap()..];
    assert!(final_stage
        .iter()
        .any(|i| i.starts_with("COPY --from=") && i.ends_with(" /flashsale")));
    assert!(final_stage
        .iter()
        .any(|i| i == "ENTRYPOINT [\"/flashsale\"]"));

    // Each COPY source of the build stage exists and reaches the build
    // context through the .dockerignore allowlist.
    let context = docker_context();
    for source in build_stage_copy_sources(&ins) {
        let source = source.trim_start_matches("./").trim_end_matches('/');
        assert!(
            repo().join(source).exists(),
            "COPY source {source} does not exist"
        );
        assert!(
            context
                .iter()
                .any(|f| f == Path::new(source) || f.starts_with(source)),
            ".dockerignore lets nothing of COPY source {source} in"
        );
    }
    assert!(
        !context
            .iter()
            .any(|f| f.starts_with("target") || f.starts_with(".stack")),
        "build output in the context"
    );
    // Cargo loads every workspace member: each must reach the context.
    for m in workspace_members() {
        let manifest = PathBuf::from(format!("{m}/Cargo.toml"));
        assert!(
            context.contains(&manifest),
            "workspace member {m}: {} is not in the build context",
            manifest.display()
        );
    }
}

#[test]
fn dockerfile_build_stage_loads_the_workspace() {
    // Replays the build stage without Docker: the build context as
    // .dockerignore makes it, the COPY instructions into an empty directory
    // (the WORKDIR), and the RUN instructions as written, with `cargo build`
    // standing in as `cargo tree --offline`: it loads every workspace member
    // and resolves flashsale's dependencies for the musl target from the lock
    // file, which is what can go wrong here (a member missing from the
    // context, a target-less manifest, a stale lock). Compiling is left to
    // the musl test below.
    let ins = dockerfile_instructions();
    let context = docker_context();
    let dir = TempDir::new("docker-build");
    let work = dir.path().join("build");
    fs::create_dir_all(&work).unwrap();
    let shim = dir.path().join("bin");
    fs::create_dir_all(&shim).unwrap();
    fs::write(
        shim.join("cargo"),
        "#!/bin/sh\n\
         [ \"$1\" = build ] || exec \"$REAL_CARGO\" \"$@\"\n\
         shift; args=\"\"\n\
         for a in \"$@\"; do [ \"$a\" = --release ] || args=\"$args $a\"; done\n\
         exec \"$REAL_CARGO\" tree --offline -e normal $args >/dev/null\n",
    )
    .unwrap();
    fs::set_permissions(shim.join("cargo"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        shim.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let build_stage_end = ins
        .iter()
        .skip(1)
        .position(|i| i.starts_with("FROM "))
        .map_or(ins.len(), |p| p + 1);
    let mut cargo_runs = 0;
    for i in &ins[1..build_stage_end] {
        if let Some(args) = i.strip_prefix("COPY ") {
            assert!(
                !args.contains("--from="),
                "no COPY --from in the build stage"
            );
            let words: Vec<&str> = args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (dest, sources) = words.split_last().unwrap();
            for source in sources {
                docker_copy(&context, source, dest, sources.len() > 1, &work);
            }
        } else if let Some(script) = i.strip_prefix("RUN ") {
            if script.starts_with("rustup ") {
                continue;
            }
            // The stand-in cargo builds nothing: drop the copy of its output.
            let replay: Vec<&str> = script
                .split(" && ")
                .filter(|c| !c.trim_start().starts_with("cp target/"))
                .collect();
            let out = Command::new("sh")
                .args(["-c", &replay.join(" && ")])
                .current_dir(&work)
                .env("PATH", &path)
                .env("REAL_CARGO", cargo())
                .env_remove("CARGO_TARGET_DIR")
                .output()
                .expect("run sh");
            assert!(
                out.status.success(),
                "Dockerfile `RUN {script}` fails on the copied context: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            cargo_runs += script.contains("cargo build") as usize;
        }
    }
    assert_eq!(cargo_runs, 2, "a dependency build and the real build");
    // The real build saw the real sources, not the stand-ins.
    assert_eq!(
        fs::read(work.join("src/main.rs")).unwrap(),
        fs::read(repo().join("src/main.rs")).unwrap()
    );
}

/// The source paths of the build stage's COPY instructions.
fn build_stage_copy_sources(ins: &[String]) -> Vec<String> {
    ins.iter()
        .filter(|i| i.starts_with("COPY ") && !i.contains("--from="))
        .flat_map(|i| {
            let words: Vec<&str> = i
                .split_whitespace()
                .skip(1)
                .filter(|w| !w.starts_with("--"))
                .collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Files of the build context (relative paths), as .dockerignore filters
/// it: the last pattern matching a path or one of its parents decides.
/// target/ and .git are not walked (they must be excluded; asserted apart).
fn docker_context() -> Vec<PathBuf> {
    let rules: Vec<(bool, Vec<String>)> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (include, pattern) = match l.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, l),
            };
            let pattern = pattern
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            (include, pattern.split('/').map(str::to_string).collect())
        })
        .collect();
    let included = |rel: &Path| -> bool {
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut verdict = true;
        for (include, pattern) in &rules {
            // A pattern matches the path or any parent directory of it.
            let matches = (1..=parts.len()).any(|n| glob_segments(pattern, &parts[..n]));
            if matches {
                verdict = *include;
            }
        }
        verdict
    };
    for excluded in ["target", ".git", ".stack"] {
        assert!(
            !included(Path::new(excluded).join("x").as_path()),
            ".dockerignore must exclude {excluded}/"
        );
    }
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        for entry in fs::read_dir(repo().join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let rel = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                if !["target", ".git"].contains(&rel.to_str().unwrap_or("")) {
                    dirs.push(rel);
                }
            } else if included(&rel) {
                files.push(rel);
            }
        }
    }
    files.sort();
    files
}

/// `*` and `?` within one path segment, other characters literally.
fn glob_segments(pattern: &[String], path: &[String]) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    pattern.len() == path.len()
        && pattern
            .iter()
            .zip(path)
            .all(|(p, s)| glob(p.as_bytes(), s.as_bytes()))
}

/// Docker's COPY of one context source into the work dir.
fn docker_copy(context: &[PathBuf], source: &str, dest: &str, many: bool, work: &Path) {
    let source = Path::new(source.trim_start_matches("./").trim_end_matches('/'));
    let dest = work.join(dest.trim_start_matches("./"));
    let is_dir = repo().join(source).is_dir();
    let mut copied = 0;
    for file in context
        .iter()
        .filter(|f| f.as_path() == source || f.starts_with(source))
    {
        let target = if is_dir {
            dest.join(file.strip_prefix(source).unwrap())
        } else if many || dest.to_string_lossy().ends_with('/') || dest.is_dir() {
            dest.join(file.file_name().unwrap())
        } else {
            dest.clone()
        };
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(repo().join(file), &target).unwrap();
        copied += 1;
    }
    assert!(
        copied > 0,
        "COPY {}: nothing of it is in the build context",
        source.display()
    );
}

// ---- the image's binary ------------------------------------------------------------------

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn ensure_musl_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    match installed {
        Ok(out)
            if String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == MUSL_TARGET) => {}
        Ok(_) => {
            eprintln!("installing the {MUSL_TARGET} target (rustup target add {MUSL_TARGET})");
            let ok = Command::new("rustup")
                .args(["target", "add", MUSL_TARGET])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ok,
                "the {MUSL_TARGET} target is missing and `rustup target add {MUSL_TARGET}` failed"
            );
        }
        Err(_) => eprintln!(
            "no rustup: assuming the toolchain has {MUSL_TARGET} (the build below says if not)"
        ),
    }
}

fn build_musl_release() -> PathBuf {
    ensure_musl_target();
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            MUSL_TARGET,
            "-p",
            "flashsale",
        ])
        .current_dir(repo())
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --release --target {MUSL_TARGET} -p flashsale failed"
    );
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), PathBuf::from);
    target_dir.join(MUSL_TARGET).join("release/flashsale")
}

/// Program header types and the DT_NEEDED count of a 64-bit little-endian ELF file.
fn elf_facts(bytes: &[u8]) -> (Vec<u32>, usize) {
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap());
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(
        (bytes[4], bytes[5]),
        (2, 1),
        "expected a 64-bit little-endian ELF"
    );
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    let mut types = Vec::new();
    let mut needed = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32_at(ph);
        types.push(p_type);
        const PT_DYNAMIC: u32 = 2;
        if p_type == PT_DYNAMIC {
            let (offset, size) = (u64_at(ph + 8) as usize, u64_at(ph + 32) as usize);
            for entry in bytes[offset..offset + size].chunks_exact(16) {
                let tag = u64::from_le_bytes(entry[..8].try_into().unwrap());
                const DT_NULL: u64 = 0;
                const DT_NEEDED: u64 = 1;
                match tag {
                    DT_NULL => break,
                    DT_NEEDED => needed += 1,
                    _ => {}
                }
            }
        }
    }
    (types, needed)
}

#[test]
fn elf_reader_sees_the_loader_of_a_dynamic_binary() {
    // Negative control: this test binary is linked against glibc.
    let bytes = fs::read(std::env::current_exe().unwrap()).unwrap();
    let (types, needed) = elf_facts(&bytes);
    const PT_INTERP: u32 = 3;
    assert!(
        types.contains(&PT_INTERP) && needed > 0,
        "program headers {types:?}, DT_NEEDED {needed}"
    );
}

#[test]
fn musl_release_binary_is_static_and_runs_alone_in_an_empty_root() {
    let binary = build_musl_release();
    let bytes = fs::read(&binary).unwrap();
    let size = bytes.len() as u64;
    eprintln!(
        "image-equivalent binary: {} ({size} bytes, {:.2} MiB)",
        binary.display(),
        size as f64 / 1048576.0
    );
    assert!(
        size < IMAGE_BYTES_MAX,
        "binary of {size} bytes: the image must stay well under 5 MB"
    );

    const PT_INTERP: u32 = 3;
    let (types, needed) = elf_facts(&bytes);
    assert!(
        !types.contains(&PT_INTERP),
        "the binary asks for a dynamic loader (PT_INTERP)"
    );
    assert_eq!(needed, 0, "the binary needs shared libraries (DT_NEEDED)");

    if is_root() {
        run_alone_in_empty_root(&binary);
    } else {
        eprintln!("SKIPPED: the chroot check needs root");
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run_alone_in_empty_root(binary: &Path) {
    let root = TempDir::new("chroot");
    fs::copy(binary, root.path().join("flashsale")).unwrap();
    assert_eq!(
        fs::read_dir(root.path()).unwrap().count(),
        1,
        "the root holds the binary only"
    );

    // A port nobody listens on: bound, then released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chroot = ["/usr/sbin/chroot", "/usr/bin/chroot", "/sbin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils) not found");
    // env_clear: the binary gets only PORT, as in a bare container.
    let mut child = Command::new(chroot)
        .arg(root.path())
        .args(["/flashsale", "--healthcheck"])
        .env_clear()
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chroot");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HEALTHCHECK_EXIT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`flashsale --healthcheck` did not exit within {HEALTHCHECK_EXIT_TIMEOUT:?} (is the flag implemented?)");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let code = status.code();
    if code == Some(125) && stderr.starts_with("chroot:") {
        eprintln!("SKIPPED: chroot is not permitted here: {}", stderr.trim());
        return;
    }
    eprintln!(
        "chroot {} /flashsale --healthcheck (PORT={port}): exit {code:?}, stderr {stderr:?}",
        root.path().display()
    );
    for loader_error in [
        "No such file",
        "failed to run command",
        "error while loading shared libraries",
        "Exec format",
    ] {
        assert!(
            !stderr.contains(loader_error),
            "the binary did not run alone: {stderr}"
        );
    }
    assert_eq!(
        code,
        Some(1),
        "a closed port must be exit 1 (stderr: {stderr})"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line of reason on stderr: {stderr:?}");
    assert!(
        lines[0].contains(&port.to_string()),
        "the reason should name what it probed: {stderr:?}"
    );
}

// ---- helpers ------------------------------------------------------------------------------

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "flashsale-deploy-{tag}-{}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// nginx's access log format, with every variable given a value of its
/// kind, is one JSON object: the quoting in nginx.conf is right.
#[test]
fn nginx_access_log_lines_are_json() {
    let conf = read("nginx/nginx.conf");
    let start = conf
        .find("log_format json escape=json")
        .expect("a log_format named json");
    let end = start + conf[start..].find(';').expect("log_format ends");
    let template: String = conf[start..end].split('\'').skip(1).step_by(2).collect();
    let numeric = ["$status", "$body_bytes_sent", "$request_time"];
    let mut line = String::new();
    let mut rest = template.as_str();
    while let Some(dollar) = rest.find('$') {
        line.push_str(&rest[..dollar]);
        let name_len = rest[dollar + 1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len() - dollar - 1);
        let variable = &rest[dollar..dollar + 1 + name_len];
        line.push_str(if numeric.contains(&variable) {
            "1.5"
        } else {
            "x"
        });
        rest = &rest[dollar + 1 + name_len..];
    }
    line.push_str(rest);
    let parsed = support::server::json::parse(line.as_bytes())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    for key in [
        "status",
        "upstream",
        "upstream_response_time",
        "request_time",
    ] {
        let _ = parsed.get(key);
    }
}

// ---- docker-compose.ha.yml: the high-availability database tier ----------------------

const HA_FILE: &str = "docker-compose.ha.yml";
const HA_SERVICES: [&str; 6] = ["monitor", "db-1", "db-2", "api-01", "api-02", "lb"];
const HA_DATA_NODES: [&str; 2] = ["db-1", "db-2"];
/// What pg_auto_failover sets on the data nodes for replication: the db
/// service's values for these (minimal WAL, no senders) must not be copied.
const REPLICATION_SETTINGS: [&str; 4] = [
    "wal_level",
    "max_wal_senders",
    "hot_standby",
    "synchronous_standby_names",
];

/// A service's entries with the `services.NAME.` prefix removed.
fn service_entries(compose: &Compose, name: &str) -> Vec<(String, String)> {
    let prefix = format!("services.{name}.");
    compose
        .entries
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
        .collect()
}

/// Both compose files are valid by the compose specification, as Docker's
/// own tool reads them (`docker-compose config` needs no engine; tests/run
/// installs Debian's docker-compose). A file it refuses fails here, with
/// its reason.
#[test]
fn compose_files_are_valid_by_the_compose_specification() {
    for file in ["docker-compose.yml", HA_FILE] {
        let out = Command::new("docker-compose")
            .args(["--file", file, "config", "--quiet"])
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .expect("docker-compose (apt-get install docker-compose; tests/run does)");
        assert!(
            out.status.success(),
            "docker-compose refuses {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn ha_compose_has_the_monitor_two_data_nodes_and_the_challenge_services() {
    let compose = Compose::load_file(HA_FILE);
    let mut got = compose.services();
    got.sort();
    let mut want: Vec<String> = HA_SERVICES.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    for s in HA_SERVICES {
        let listed = compose
            .list(&format!("services.{s}.networks"))
            .contains(&"flashsale");
        let mapped = compose.has_prefix(&format!("services.{s}.networks.flashsale"));
        assert!(listed || mapped, "{s} is not on the flashsale network");
    }
    assert_eq!(compose.get("networks.flashsale.name"), Some("flashsale"));
}

#[test]
fn ha_compose_limits_data_nodes_as_the_db_and_a_small_monitor() {
    let ha = Compose::load_file(HA_FILE);
    let single = Compose::load();
    for s in HA_SERVICES {
        assert!(
            ha.cpus(s) > 0.0 && ha.memory_bytes(s) > 0,
            "{s}: limits must be positive"
        );
    }
    // Each data node is a machine of its own, sized as the single db.
    for node in HA_DATA_NODES {
        assert_eq!(ha.cpus(node), single.cpus("db"), "{node} cpus");
        assert_eq!(
            ha.memory_bytes(node),
            single.memory_bytes("db"),
            "{node} memory"
        );
    }
    // The challenge's services keep their limits.
    for s in ["api-01", "api-02", "lb"] {
        assert_eq!(ha.cpus(s), single.cpus(s), "{s} cpus");
        assert_eq!(ha.memory_bytes(s), single.memory_bytes(s), "{s} memory");
    }
    assert!(ha.cpus("monitor") <= 0.2, "the monitor is small");
    assert!(
        ha.memory_bytes("monitor") <= 128 << 20,
        "the monitor is small"
    );
    // The monitor's shared_buffers fit its limit with room for backends.
    let monitor = ha.postgres_flags_of("monitor");
    let shared = monitor
        .iter()
        .find(|(n, _)| n == "shared_buffers")
        .map(|(_, v)| parse_bytes(v))
        .expect(
            "the monitor sets shared_buffers (pg_auto_failover sizes it from the host's memory)",
        );
    assert!(
        shared * 4 <= ha.memory_bytes("monitor"),
        "monitor shared_buffers"
    );
}

#[test]
fn ha_compose_api_instances_differ_only_in_name() {
    let compose = Compose::load_file(HA_FILE);
    assert_eq!(
        service_entries(&compose, "api-01"),
        service_entries(&compose, "api-02")
    );
}

/// lb is docker-compose.yml's; the APIs too, but for the database URL and
/// what they wait for.
#[test]
fn ha_compose_api_and_lb_are_those_of_docker_compose_yml() {
    let ha = Compose::load_file(HA_FILE);
    let single = Compose::load();
    assert_eq!(service_entries(&ha, "lb"), service_entries(&single, "lb"));
    let differs = |k: &str| k == "environment.DATABASE_URL" || k.starts_with("depends_on.");
    for api in ["api-01", "api-02"] {
        let strip = |c: &Compose| -> Vec<(String, String)> {
            service_entries(c, api)
                .into_iter()
                .filter(|(k, _)| !differs(k))
                .collect()
        };
        assert_eq!(strip(&ha), strip(&single), "{api}");
        for node in HA_DATA_NODES {
            assert_eq!(
                ha.get(&format!("services.{api}.depends_on.{node}.condition")),
                Some("service_healthy"),
                "{api} waits for {node}"
            );
        }
    }
}

#[test]
fn ha_compose_api_url_lists_both_data_nodes_for_writes() {
    let ha = Compose::load_file(HA_FILE);
    let single = Compose::load();
    let url = ha.env("api-01", "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(
        url,
        "postgres://flashsale_api:flashsale-api@db-1:5432,db-2:5432/flashsale?target_session_attrs=read-write"
    );
    // Same role, password and database as the single-node stack.
    let single_url = single.env("api-01", "DATABASE_URL").expect("DATABASE_URL");
    let (single_auth, single_rest) = single_url.split_once('@').unwrap();
    let (auth, rest) = url.split_once('@').unwrap();
    assert_eq!(auth, single_auth);
    let (hosts, path) = rest.split_once('/').unwrap();
    assert_eq!(
        hosts.split(',').collect::<Vec<_>>(),
        ["db-1:5432", "db-2:5432"]
    );
    let (db, query) = path.split_once('?').unwrap();
    assert_eq!(db, single_rest.split_once('/').unwrap().1);
    assert!(query
        .split('&')
        .any(|kv| kv == "target_session_attrs=read-write"));
    for node in HA_DATA_NODES {
        assert_eq!(ha.env(node, "PGPORT").as_deref(), Some("5432"), "{node}");
        assert_eq!(
            ha.env(node, "PGAF_HOSTNAME").as_deref(),
            Some(node),
            "{node}"
        );
        assert_eq!(ha.env(node, "PGAF_NAME").as_deref(), Some(node), "{node}");
    }
}

/// The data nodes run the db service's settings (both the same: a
/// failover must not change them), less what pg_auto_failover sets for
/// replication; durability stays on.
#[test]
fn ha_compose_data_nodes_take_the_db_settings_but_replication() {
    let ha = Compose::load_file(HA_FILE);
    let single = Compose::load();
    let want: Vec<(String, String)> = single
        .postgres_flags()
        .into_iter()
        .filter(|(n, _)| !REPLICATION_SETTINGS.contains(&n.as_str()))
        .collect();
    for node in HA_DATA_NODES {
        let got = ha.postgres_flags_of(node);
        assert_eq!(got, want, "{node}");
        assert!(
            got.iter()
                .any(|(n, v)| n == "synchronous_commit" && v == "on"),
            "{node}: synchronous_commit=on"
        );
        assert_eq!(
            ha.list(&format!("services.{node}.entrypoint")),
            ["bash", "/usr/local/bin/pgaf-node", "postgres"]
        );
        assert!(
            ha.list(&format!("services.{node}.volumes"))
                .contains(&"./sql/init.sql:/flashsale/init.sql:ro"),
            "{node} mounts init.sql"
        );
        assert_eq!(
            ha.env(node, "PGAF_INIT_SQL").as_deref(),
            Some("/flashsale/init.sql")
        );
        assert_eq!(
            ha.env(node, "PGAF_MONITOR_HOST").as_deref(),
            Some("monitor")
        );
        // The superuser and database of the single db.
        for v in ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"] {
            assert_eq!(ha.env(node, v), single.env("db", v), "{node} {v}");
        }
    }
    assert_eq!(
        ha.list("services.monitor.entrypoint"),
        ["bash", "/usr/local/bin/pgaf-node", "monitor"]
    );
    // The standby is cloned from the first node: it waits for it.
    assert_eq!(
        ha.get("services.db-2.depends_on.db-1.condition"),
        Some("service_healthy")
    );
    assert!(repo().join("sql/pgaf-node").is_file());
}

#[test]
fn ha_stack_script_reads_what_this_test_reads() {
    let compose = Compose::load_file(HA_FILE);
    assert_stack_reads_as_we_do(&compose, HA_FILE);

    let config = stack(&["config", "--ha"], None);
    let mut limits = Vec::new();
    let mut pg_flags = Vec::new();
    let mut monitor_flags = Vec::new();
    for line in config.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("limit") => limits.push(checked_limit(&compose, words)),
            Some("pg_flag") => pg_flags.push(words.next().unwrap().to_string()),
            Some("monitor_flag") => monitor_flags.push(words.next().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(limits, HA_SERVICES, "services, in perf/stack's start order");
    let as_lines = |v: Vec<(String, String)>| -> Vec<String> {
        v.into_iter().map(|(n, val)| format!("{n}={val}")).collect()
    };
    assert_eq!(pg_flags, as_lines(compose.postgres_flags_of("db-1")));
    assert_eq!(
        monitor_flags,
        as_lines(compose.postgres_flags_of("monitor"))
    );
    for want in [
        "init_sql sql/init.sql",
        "nginx_conf nginx/nginx.conf",
        "ha_script sql/pgaf-node",
        "ha_role monitor monitor",
        "ha_role db-1 postgres",
        "ha_role db-2 postgres",
        "pg_user flashsale",
        "pg_db flashsale",
    ] {
        assert!(
            config.lines().any(|l| l == want),
            "no `{want}` in:\n{config}"
        );
    }
    // Without --ha it is still docker-compose.yml.
    let plain = stack(&["config"], None);
    assert!(plain.lines().any(|l| l.starts_with("limit db ")), "{plain}");
    assert!(!plain.contains("monitor"), "{plain}");
}

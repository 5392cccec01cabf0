//! `DATABASE_URL` parsing: `postgres://user:password@host:port/dbname` for TCP,
//! `postgres://user:password@/dbname?host=/run/postgresql` for a Unix-domain
//! socket (libpq's convention: a `host` starting with `/` is a directory).
//! `require_auth` lists the authentication methods accepted (libpq's
//! parameter, see `pg::auth`); without it, SCRAM-SHA-256 only.
//!
//! Several hosts, libpq's syntax and meaning: `postgres://u:p@h1:5432,h2:5433/db`
//! (or `?host=h1,h2&port=5432,5433`; one port applies to every host) are
//! tried in order, and `target_session_attrs` says which server will do:
//! `any` (the default: the first that accepts the session), `read-write`
//! (one that is not a hot standby and whose transactions are not read-only
//! by default) or `primary` (one that is not a hot standby). The API writes,
//! so the values that ask for a standby are refused.

use std::path::PathBuf;

use crate::pg::auth::Methods;

const DEFAULT_PORT: u16 = 5432;

/// At most this many hosts in one URL: a failover group is two or three.
pub const HOSTS_MAX: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// Full path of the socket file, e.g. `/run/postgresql/.s.PGSQL.5432`.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// libpq's `target_session_attrs`, the values a writing client can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Any server that accepts the session.
    Any,
    /// Not a hot standby, and `default_transaction_read_only` off.
    ReadWrite,
    /// Not a hot standby.
    Primary,
}

impl SessionAttrs {
    fn parse(value: &str) -> Result<SessionAttrs, String> {
        match value {
            "any" => Ok(SessionAttrs::Any),
            "read-write" => Ok(SessionAttrs::ReadWrite),
            "primary" => Ok(SessionAttrs::Primary),
            "read-only" | "standby" | "prefer-standby" => Err(format!(
                "target_session_attrs={value} in DATABASE_URL: the API writes, so it needs \
                 read-write, primary or any"
            )),
            _ => Err(format!(
                "unknown target_session_attrs {value:?} in DATABASE_URL (any, read-write or primary)"
            )),
        }
    }

    /// Whether a server must be checked before the session is used.
    pub fn needs_check(self) -> bool {
        self != SessionAttrs::Any
    }

    /// Whether a server in this state will do. `None`: the server did not
    /// say (before PostgreSQL 14 neither setting is reported).
    pub fn accepts(self, in_hot_standby: Option<bool>, read_only: Option<bool>) -> Option<bool> {
        match self {
            SessionAttrs::Any => Some(true),
            SessionAttrs::Primary => in_hot_standby.map(|standby| !standby),
            SessionAttrs::ReadWrite => match (in_hot_standby, read_only) {
                (Some(true), _) | (_, Some(true)) => Some(false),
                (Some(false), Some(false)) => Some(true),
                _ => None,
            },
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// Tried in this order; never empty, at most [`HOSTS_MAX`].
    pub endpoints: Vec<Endpoint>,
    pub target_session_attrs: SessionAttrs,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub application_name: String,
    pub require_auth: Methods,
}

/// Shown in place of a password wherever settings are printed.
pub const REDACTED: &str = "***";

/// Everything but the password, which a log line or a panic message must
/// never carry.
impl std::fmt::Debug for ConnectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectConfig")
            .field("endpoints", &self.endpoints)
            .field("target_session_attrs", &self.target_session_attrs)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("database", &self.database)
            .field("application_name", &self.application_name)
            .field("require_auth", &self.require_auth)
            .finish()
    }
}

/// `url` with its password (if any) replaced by [`REDACTED`].
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{REDACTED}{}", &rest[at..]),
        None => url.to_string(),
    }
}

impl ConnectConfig {
    /// Parses a `postgres://` or `postgresql://` URL. Query parameters other
    /// than `host`, `port`, `application_name`, `require_auth` and
    /// `target_session_attrs` are ignored.
    pub fn from_url(url: &str) -> Result<ConnectConfig, String> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or("DATABASE_URL must start with postgres://")?;
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, q),
            None => (rest, ""),
        };
        let (authority, database) = match before_query.split_once('/') {
            Some((a, d)) => (a, percent_decode(d)?),
            None => (before_query, String::new()),
        };
        let (userinfo, hostports) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("", authority),
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
            None => (percent_decode(userinfo)?, None),
        };
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for hostport in hostports.split(',') {
            let (host, port) = split_host_port(hostport)?;
            hosts.push(host);
            ports.push(port);
        }
        let mut application_name = String::from("flashsale");
        let mut require_auth = Methods::DEFAULT;
        let mut target_session_attrs = SessionAttrs::Any;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "host" => hosts = value.split(',').map(str::to_string).collect(),
                "port" => {
                    ports = value
                        .split(',')
                        .map(|p| parse_port(p).map(Some))
                        .collect::<Result<_, _>>()?
                }
                "application_name" => application_name = value,
                "require_auth" => require_auth = Methods::parse(&value)?,
                "target_session_attrs" => target_session_attrs = SessionAttrs::parse(&value)?,
                _ => {}
            }
        }
        let user = if user.is_empty() {
            "postgres".to_string()
        } else {
            user
        };
        let database = if database.is_empty() {
            user.clone()
        } else {
            database
        };
        Ok(ConnectConfig {
            endpoints: endpoints(hosts, ports)?,
            target_session_attrs,
            user,
            password,
            database,
            application_name,
            require_auth,
        })
    }
}

/// Pairs hosts with ports as libpq does: one port for every host, or one
/// each.
fn endpoints(hosts: Vec<String>, ports: Vec<Option<u16>>) -> Result<Vec<Endpoint>, String> {
    if hosts.len() > HOSTS_MAX {
        return Err(format!(
            "DATABASE_URL lists {} hosts; at most {HOSTS_MAX}",
            hosts.len()
        ));
    }
    if ports.len() != 1 && ports.len() != hosts.len() {
        return Err(format!(
            "DATABASE_URL lists {} hosts and {} ports: give one port, or one per host",
            hosts.len(),
            ports.len()
        ));
    }
    hosts
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports[if ports.len() == 1 { 0 } else { i }].unwrap_or(DEFAULT_PORT);
            if host.starts_with('/') {
                Ok(Endpoint::Unix(
                    PathBuf::from(host).join(format!(".s.PGSQL.{port}")),
                ))
            } else if host.is_empty() {
                Err("DATABASE_URL has no host (or an empty one in its list)".into())
            } else {
                Ok(Endpoint::Tcp { host, port })
            }
        })
        .collect()
}

fn split_host_port(hostport: &str) -> Result<(String, Option<u16>), String> {
    // Bracketed IPv6 literal: [::1]:5432
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("unclosed [ in DATABASE_URL host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if after.is_empty() => None,
            None => return Err("unexpected text after ] in DATABASE_URL host".into()),
        };
        return Ok((host.to_string(), port));
    }
    match hostport.rsplit_once(':') {
        Some((host, port)) => Ok((percent_decode(host)?, Some(parse_port(port)?))),
        None => Ok((percent_decode(hostport)?, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("invalid port {text:?} in DATABASE_URL"))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or("truncated %-escape in DATABASE_URL")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "bad %-escape in DATABASE_URL")?;
            let byte = u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in DATABASE_URL")?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "DATABASE_URL %-escapes are not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_tcp_urls() {
        let c = ConnectConfig::from_url("postgres://app:s3cret@db:5433/flashsale").unwrap();
        assert_eq!(c.endpoints, [tcp("db", 5433)]);
        assert_eq!(
            (c.user.as_str(), c.password.as_deref()),
            ("app", Some("s3cret"))
        );
        assert_eq!(c.database, "flashsale");

        let c = ConnectConfig::from_url("postgresql://u@127.0.0.1/d").unwrap();
        assert_eq!(c.endpoints, [tcp("127.0.0.1", 5432)]);
        assert_eq!(c.password, None);

        let c = ConnectConfig::from_url("postgres://u:p@[::1]:6000/d").unwrap();
        assert_eq!(c.endpoints, [tcp("::1", 6000)]);
        assert_eq!(c.target_session_attrs, SessionAttrs::Any);
    }

    #[test]
    fn decodes_percent_escapes_and_defaults() {
        let c = ConnectConfig::from_url("postgres://us%40r:p%3Aw%2F@h/").unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_deref()),
            ("us@r", Some("p:w/"))
        );
        assert_eq!(c.database, "us@r", "database defaults to the user name");
        let c = ConnectConfig::from_url("postgres://h").unwrap();
        assert_eq!(
            (c.user.as_str(), c.database.as_str()),
            ("postgres", "postgres")
        );
    }

    #[test]
    fn parses_unix_socket_urls() {
        let c = ConnectConfig::from_url("postgres://u:p@/db?host=/run/postgresql").unwrap();
        assert_eq!(
            c.endpoints,
            [Endpoint::Unix("/run/postgresql/.s.PGSQL.5432".into())]
        );
        let c = ConnectConfig::from_url("postgres://u@/db?host=%2Ftmp%2Fs&port=6543").unwrap();
        assert_eq!(c.endpoints, [Endpoint::Unix("/tmp/s/.s.PGSQL.6543".into())]);
        let c = ConnectConfig::from_url("postgres://u@/db?host=/s&application_name=x").unwrap();
        assert_eq!(c.application_name, "x");
    }

    #[test]
    fn require_auth_lists_the_accepted_methods() {
        use crate::pg::auth::Method;
        let c = ConnectConfig::from_url("postgres://u:p@h/d").unwrap();
        assert_eq!(c.require_auth, Methods::DEFAULT, "SCRAM only by default");
        assert!(c.require_auth.allows(Method::ScramSha256));
        for method in [Method::None, Method::Password, Method::Md5] {
            assert!(!c.require_auth.allows(method), "{method:?}");
        }
        let c = ConnectConfig::from_url("postgres://u:p@h/d?require_auth=md5%2Cnone").unwrap();
        assert_eq!(format!("{:?}", c.require_auth), r#"["none", "md5"]"#);
        assert!(!c.require_auth.allows(Method::ScramSha256));
        let c = ConnectConfig::from_url("postgres://u@/d?host=/s&require_auth=password").unwrap();
        assert!(c.require_auth.allows(Method::Password));
    }

    #[test]
    fn require_auth_refuses_what_it_does_not_know() {
        for list in [
            "gss",
            "",
            "md5,",
            "MD5",
            "!md5",
            "md5,md5",
            "scram-sha-256-plus",
        ] {
            let url = format!("postgres://u:s3cret@h/d?require_auth={list}");
            let error = ConnectConfig::from_url(&url).expect_err(list);
            assert!(error.contains("require_auth"), "{list}: {error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn lists_several_hosts_as_libpq_does() {
        let c = ConnectConfig::from_url(
            "postgres://u:p@db-1:5432,db-2:5433/d?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(c.endpoints, [tcp("db-1", 5432), tcp("db-2", 5433)]);
        assert_eq!(c.target_session_attrs, SessionAttrs::ReadWrite);
        assert_eq!(c.database, "d");

        let c = ConnectConfig::from_url("postgres://u@a,[::1]:6000,b:7/d").unwrap();
        assert_eq!(c.endpoints, [tcp("a", 5432), tcp("::1", 6000), tcp("b", 7)]);
        assert_eq!(c.endpoints[1].to_string(), "[::1]:6000");

        // Query parameters: one port for every host, or one each.
        let c = ConnectConfig::from_url("postgres://u@/d?host=x,y&port=6000").unwrap();
        assert_eq!(c.endpoints, [tcp("x", 6000), tcp("y", 6000)]);
        let c = ConnectConfig::from_url("postgres://u@/d?host=x,%2Fs&port=1,2").unwrap();
        assert_eq!(
            c.endpoints,
            [tcp("x", 1), Endpoint::Unix("/s/.s.PGSQL.2".into())]
        );
        let c = ConnectConfig::from_url("postgres://u@h/d?target_session_attrs=primary").unwrap();
        assert_eq!(c.target_session_attrs, SessionAttrs::Primary);
        let c = ConnectConfig::from_url("postgres://u@h/d?target_session_attrs=any").unwrap();
        assert_eq!(c.target_session_attrs, SessionAttrs::Any);
    }

    #[test]
    fn refuses_host_lists_it_cannot_pair_and_attrs_for_standbys() {
        for (url, says) in [
            ("postgres://u@a,b,c/d?port=1,2", "3 hosts and 2 ports"),
            ("postgres://u@a,,c/d", "no host"),
            ("postgres://u@a,b/d?port=1,x", "invalid port"),
            (
                "postgres://u@a/d?target_session_attrs=standby",
                "the API writes",
            ),
            (
                "postgres://u@a/d?target_session_attrs=read-only",
                "the API writes",
            ),
            (
                "postgres://u@a/d?target_session_attrs=prefer-standby",
                "the API writes",
            ),
            (
                "postgres://u@a/d?target_session_attrs=READ-WRITE",
                "unknown",
            ),
            ("postgres://u@a,b,c,d,e,f,g,h,i/d", "at most 8"),
        ] {
            let error = ConnectConfig::from_url(url).expect_err(url);
            assert!(error.contains(says), "{url}: {error}");
        }
    }

    #[test]
    fn a_server_will_do_by_what_it_reports() {
        use SessionAttrs::*;
        let (on, off) = (Some(true), Some(false));
        assert_eq!(Any.accepts(on, on), Some(true));
        assert_eq!(Primary.accepts(off, on), Some(true), "read-only primary");
        assert_eq!(Primary.accepts(on, off), Some(false));
        assert_eq!(Primary.accepts(None, off), None);
        assert_eq!(ReadWrite.accepts(off, off), Some(true));
        assert_eq!(ReadWrite.accepts(off, on), Some(false));
        assert_eq!(ReadWrite.accepts(on, None), Some(false));
        assert_eq!(ReadWrite.accepts(None, None), None);
        assert_eq!(ReadWrite.accepts(off, None), None);
        assert!(!Any.needs_check() && ReadWrite.needs_check() && Primary.needs_check());
    }

    #[test]
    fn rejects_bad_urls() {
        for url in [
            "mysql://u@h/d",
            "postgres://u@h:notaport/d",
            "postgres://u@h:0/d",
            "postgres://u@h:70000/d",
            "postgres://u:%zz@h/d",
            "postgres://u:%4@h/d",
            "postgres://u@/d",
            "postgres://u@[::1/d",
        ] {
            assert!(
                ConnectConfig::from_url(url).is_err(),
                "{url} should be rejected"
            );
        }
    }
}

//! `DATABASE_URL` parsing: `postgres://user:password@host:port/dbname` for TCP,
//! `postgres://user:password@/dbname?host=/run/postgresql` for a Unix-domain
//! socket (libpq's convention: a `host` starting with `/` is a directory).
//! `require_auth` lists the authentication methods accepted (libpq's
//! parameter, see `pg::auth`); without it, SCRAM-SHA-256 only.

use std::path::PathBuf;

use crate::pg::auth::Methods;

const DEFAULT_PORT: u16 = 5432;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// Full path of the socket file, e.g. `/run/postgresql/.s.PGSQL.5432`.
    Unix(PathBuf),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    pub endpoint: Endpoint,
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
            .field("endpoint", &self.endpoint)
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
    /// than `host`, `port`, `application_name` and `require_auth` are ignored.
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
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (u, h),
            None => ("", authority),
        };
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (percent_decode(u)?, Some(percent_decode(p)?)),
            None => (percent_decode(userinfo)?, None),
        };
        let (mut host, mut port) = split_host_port(hostport)?;
        let mut application_name = String::from("flashsale");
        let mut require_auth = Methods::DEFAULT;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value)?;
            match key {
                "host" => host = value,
                "port" => port = Some(parse_port(&value)?),
                "application_name" => application_name = value,
                "require_auth" => require_auth = Methods::parse(&value)?,
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
        let port = port.unwrap_or(DEFAULT_PORT);
        let endpoint = if host.starts_with('/') {
            Endpoint::Unix(PathBuf::from(host).join(format!(".s.PGSQL.{port}")))
        } else if host.is_empty() {
            return Err("DATABASE_URL has no host".into());
        } else {
            Endpoint::Tcp { host, port }
        };
        Ok(ConnectConfig {
            endpoint,
            user,
            password,
            database,
            application_name,
            require_auth,
        })
    }
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
        assert_eq!(c.endpoint, tcp("db", 5433));
        assert_eq!(
            (c.user.as_str(), c.password.as_deref()),
            ("app", Some("s3cret"))
        );
        assert_eq!(c.database, "flashsale");

        let c = ConnectConfig::from_url("postgresql://u@127.0.0.1/d").unwrap();
        assert_eq!(c.endpoint, tcp("127.0.0.1", 5432));
        assert_eq!(c.password, None);

        let c = ConnectConfig::from_url("postgres://u:p@[::1]:6000/d").unwrap();
        assert_eq!(c.endpoint, tcp("::1", 6000));
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
            c.endpoint,
            Endpoint::Unix("/run/postgresql/.s.PGSQL.5432".into())
        );
        let c = ConnectConfig::from_url("postgres://u@/db?host=%2Ftmp%2Fs&port=6543").unwrap();
        assert_eq!(c.endpoint, Endpoint::Unix("/tmp/s/.s.PGSQL.6543".into()));
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

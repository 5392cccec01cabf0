//! Authentication: which methods a connection accepts (`require_auth` in
//! `DATABASE_URL`, libpq's parameter and names) and the exchange itself.
//!
//! Without `require_auth` only SCRAM-SHA-256 is accepted. A server (or
//! anything posing as one) that answers AuthenticationOk without asking, or
//! asks for a cleartext or MD5 password, is refused unless the URL opts in:
//! otherwise an impostor could skip the one method in which the server
//! proves it knows the password too, or collect the password (cleartext) or
//! a hash that logs in as us (MD5). Once SCRAM has started, AuthenticationOk
//! counts only after AuthenticationSASLFinal carried a server signature that
//! verifies, whatever `require_auth` says. The cryptography is
//! `postgres-protocol`'s.

use bytes::BytesMut;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;

use crate::pg::backend::{self, AuthRequest, ProtocolError};
use crate::pg::connection::ConnectionError;
use crate::pg::url::ConnectConfig;

/// One way a server may let us in, named as libpq's `require_auth` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The server asks for nothing (`trust`).
    None,
    /// Cleartext password.
    Password,
    Md5,
    ScramSha256,
}

impl Method {
    const ALL: [Method; 4] = [
        Method::None,
        Method::Password,
        Method::Md5,
        Method::ScramSha256,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::None => "none",
            Method::Password => "password",
            Method::Md5 => "md5",
            Method::ScramSha256 => "scram-sha-256",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The methods a connection accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    /// No `require_auth` in the URL: SCRAM-SHA-256 only.
    pub const DEFAULT: Methods = Methods(1 << Method::ScramSha256 as u8);

    /// A `require_auth` value: a comma-separated list of method names, each
    /// once. Unknown names (also libpq's `gss`, `sspi` and `!` negations,
    /// which this client does not implement) are an error, not ignored.
    pub fn parse(list: &str) -> Result<Methods, String> {
        let mut methods = Methods(0);
        for name in list.split(',') {
            let method = Method::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    format!(
                        "DATABASE_URL require_auth: unknown method {name:?} \
                         (known: none, password, md5, scram-sha-256)"
                    )
                })?;
            if methods.allows(method) {
                return Err(format!(
                    "DATABASE_URL require_auth: {name:?} is listed twice"
                ));
            }
            methods.0 |= method.bit();
        }
        Ok(methods)
    }

    pub fn allows(self, method: Method) -> bool {
        self.0 & method.bit() != 0
    }
}

impl std::fmt::Debug for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = Method::ALL.into_iter().filter(|m| self.allows(*m));
        f.debug_list().entries(names.map(Method::name)).finish()
    }
}

/// Where the exchange with the server stands.
pub(crate) enum Authentication {
    /// The startup message is sent; the server has asked nothing yet.
    Started,
    /// A cleartext or MD5 password went out: AuthenticationOk or an error
    /// comes next.
    PasswordSent,
    /// SCRAM-SHA-256 is under way and the server has not proven yet that it
    /// knows the password.
    Scram(Box<ScramSha256>),
    /// The server's SCRAM signature verified: AuthenticationOk comes next.
    ScramVerified,
}

impl Authentication {
    /// Answers one authentication request into `out`. `Ok(true)` once the
    /// server has let us in by an accepted method.
    pub fn on_request(
        &mut self,
        request: AuthRequest<'_>,
        config: &ConnectConfig,
        out: &mut BytesMut,
    ) -> Result<bool, ConnectionError> {
        match (request, &mut *self) {
            (AuthRequest::Ok, Authentication::Started) => {
                allowed(config, Method::None)?;
                return Ok(true);
            }
            (AuthRequest::Ok, Authentication::PasswordSent | Authentication::ScramVerified) => {
                return Ok(true)
            }
            (AuthRequest::Ok, Authentication::Scram(_)) => return Err(scram_skipped()),
            (AuthRequest::Cleartext, Authentication::Started) => {
                allowed(config, Method::Password)?;
                frontend::password_message(password(config)?.as_bytes(), out)?;
                *self = Authentication::PasswordSent;
            }
            (AuthRequest::Md5 { salt }, Authentication::Started) => {
                allowed(config, Method::Md5)?;
                let hash = md5_hash(config.user.as_bytes(), password(config)?.as_bytes(), salt);
                frontend::password_message(hash.as_bytes(), out)?;
                *self = Authentication::PasswordSent;
            }
            (AuthRequest::Sasl { mechanisms }, Authentication::Started) => {
                allowed(config, Method::ScramSha256)?;
                *self = Authentication::Scram(start_scram(mechanisms, config, out)?);
            }
            (AuthRequest::SaslContinue { data }, Authentication::Scram(scram)) => {
                scram
                    .update(data)
                    .map_err(|e| ConnectionError(format!("SCRAM: {e}")))?;
                frontend::sasl_response(scram.message(), out)?;
            }
            (AuthRequest::SaslFinal { data }, Authentication::Scram(scram)) => {
                // Verifies the server's signature: it knows the password too.
                scram
                    .finish(data)
                    .map_err(|e| ConnectionError(format!("SCRAM: server signature: {e}")))?;
                *self = Authentication::ScramVerified;
            }
            (AuthRequest::Unsupported(code), _) => {
                return Err(ConnectionError(format!(
                    "unsupported authentication method (code {code})"
                )))
            }
            (request, _) => {
                return Err(ProtocolError::new(format!(
                    "authentication request {request:?} out of turn"
                ))
                .into())
            }
        }
        Ok(false)
    }
}

fn start_scram(
    mechanisms: &[u8],
    config: &ConnectConfig,
    out: &mut BytesMut,
) -> Result<Box<ScramSha256>, ConnectionError> {
    if !backend::sasl_offers_scram_sha_256(mechanisms) {
        return Err(ConnectionError(
            "the server offers no SASL mechanism we support (SCRAM-SHA-256)".into(),
        ));
    }
    // No TLS, so no channel binding to offer.
    let scram = ScramSha256::new(password(config)?.as_bytes(), ChannelBinding::unsupported());
    frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), out)?;
    Ok(Box::new(scram))
}

fn password(config: &ConnectConfig) -> Result<&str, ConnectionError> {
    config.password.as_deref().ok_or_else(|| {
        ConnectionError("the server asks for a password and DATABASE_URL has none".into())
    })
}

fn allowed(config: &ConnectConfig, method: Method) -> Result<(), ConnectionError> {
    if config.require_auth.allows(method) {
        return Ok(());
    }
    let asked = match method {
        Method::None => "lets us in without authentication",
        Method::Password => "asks for a cleartext password",
        Method::Md5 => "asks for an MD5 password",
        Method::ScramSha256 => "asks for SCRAM-SHA-256",
    };
    Err(ConnectionError(format!(
        "refused: the server {asked}, and DATABASE_URL accepts only {:?} \
         (add {} to its require_auth to accept it)",
        config.require_auth,
        method.name()
    )))
}

#[cold]
fn scram_skipped() -> ConnectionError {
    ConnectionError(
        "refused: the server ended SCRAM-SHA-256 without proving it knows the password \
         (AuthenticationOk before a verified server signature)"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a server that verifies nothing answers to our SCRAM first
    /// message: our nonce extended, any salt, the usual iteration count.
    fn server_first_message(client_message: &[u8]) -> String {
        let text = std::str::from_utf8(client_message).unwrap();
        let nonce = text.rsplit_once("r=").unwrap().1;
        format!("r={nonce}impostor,s=c2FsdHNhbHQ=,i=4096")
    }

    /// AuthenticationSASLFinal with a well-formed server signature that
    /// cannot be right: 32 zero bytes.
    fn wrong_server_final() -> AuthRequest<'static> {
        AuthRequest::SaslFinal {
            data: b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        }
    }

    fn scram_offer() -> AuthRequest<'static> {
        AuthRequest::Sasl {
            mechanisms: b"SCRAM-SHA-256\0\0",
        }
    }

    struct Exchange {
        config: ConnectConfig,
        auth: Authentication,
        out: BytesMut,
    }

    impl Exchange {
        fn new(url: &str) -> Exchange {
            Exchange {
                config: ConnectConfig::from_url(url).unwrap(),
                auth: Authentication::Started,
                out: BytesMut::new(),
            }
        }

        fn on(&mut self, request: AuthRequest<'_>) -> Result<bool, ConnectionError> {
            self.out.clear();
            self.auth.on_request(request, &self.config, &mut self.out)
        }

        /// SASL start, then the server's first message: our proof is out.
        fn scram_until_proof(&mut self) {
            assert_eq!(self.on(scram_offer()), Ok(false));
            let scram = match &self.auth {
                Authentication::Scram(scram) => scram.message().to_vec(),
                _ => panic!("SCRAM did not start"),
            };
            let first = server_first_message(&scram);
            let next = AuthRequest::SaslContinue {
                data: first.as_bytes(),
            };
            assert_eq!(self.on(next), Ok(false));
            assert!(!self.out.is_empty(), "our proof goes out");
        }
    }

    fn refused(result: Result<bool, ConnectionError>, words: &str) {
        let error = result.expect_err("must be refused").0;
        assert!(error.contains(words), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    const SCRAM_URL: &str = "postgres://app:s3cret@db/flashsale";

    #[test]
    fn ok_right_after_our_sasl_initial_response_is_refused() {
        let mut exchange = Exchange::new(SCRAM_URL);
        assert_eq!(exchange.on(scram_offer()), Ok(false));
        assert!(!exchange.out.is_empty(), "the SASL initial response");
        refused(exchange.on(AuthRequest::Ok), "without proving");
    }

    #[test]
    fn ok_after_our_proof_but_before_the_server_signature_is_refused() {
        let mut exchange = Exchange::new(SCRAM_URL);
        exchange.scram_until_proof();
        refused(exchange.on(AuthRequest::Ok), "without proving");
    }

    #[test]
    fn a_wrong_server_signature_is_refused() {
        let mut exchange = Exchange::new(SCRAM_URL);
        exchange.scram_until_proof();
        refused(exchange.on(wrong_server_final()), "server signature");
    }

    #[test]
    fn scram_messages_out_of_order_are_refused() {
        let mut exchange = Exchange::new(SCRAM_URL);
        refused(exchange.on(wrong_server_final()), "out of turn");
        let mut exchange = Exchange::new(SCRAM_URL);
        exchange.scram_until_proof();
        refused(exchange.on(AuthRequest::Cleartext), "out of turn");
    }

    #[test]
    fn the_default_accepts_nothing_but_scram() {
        let mut exchange = Exchange::new(SCRAM_URL);
        refused(exchange.on(AuthRequest::Ok), "require_auth");
        refused(exchange.on(AuthRequest::Cleartext), "cleartext");
        refused(exchange.on(AuthRequest::Md5 { salt: [1, 2, 3, 4] }), "MD5");
        assert!(
            exchange.out.is_empty(),
            "nothing about the password went out"
        );
    }

    #[test]
    fn other_methods_need_the_url_to_opt_in() {
        let md5 = AuthRequest::Md5 { salt: [1, 2, 3, 4] };
        let mut exchange = Exchange::new("postgres://app:s3cret@db/d?require_auth=md5");
        assert_eq!(exchange.on(md5), Ok(false));
        assert!(exchange.out.starts_with(b"p"), "a password message");
        assert_eq!(exchange.on(AuthRequest::Ok), Ok(true));

        let mut exchange = Exchange::new("postgres://app:s3cret@db/d?require_auth=password");
        assert_eq!(exchange.on(AuthRequest::Cleartext), Ok(false));
        assert_eq!(exchange.on(AuthRequest::Ok), Ok(true));

        let mut exchange = Exchange::new("postgres://app@db/d?require_auth=none");
        assert_eq!(exchange.on(AuthRequest::Ok), Ok(true));

        let mut exchange = Exchange::new("postgres://app:s3cret@db/d?require_auth=md5");
        refused(exchange.on(scram_offer()), "SCRAM-SHA-256");
    }
}

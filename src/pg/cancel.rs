//! A CancelRequest: asks the server to stop what one session is running.
//!
//! It travels on a connection of its own (the session's is busy, and the
//! protocol wants it so): connect, send the 16-byte request with the
//! session's BackendKeyData, close. The server answers nothing; the
//! cancelled statement's error arrives on the session's own connection.
//! Everything is non-blocking and driven by the pool's event loop.

use std::io;
use std::time::Instant;

use bytes::BytesMut;
use mio::{Interest, Registry, Token};
use postgres_protocol::message::frontend;

use crate::nonblocking;
use crate::pg::backend::BackendKey;
use crate::pg::connection::{Socket, Target};

/// The CancelRequest message: length, code, process id, secret key.
const CANCEL_REQUEST_BYTES: usize = 16;

pub(crate) struct CancelRequest {
    socket: Socket,
    message: [u8; CANCEL_REQUEST_BYTES],
    pub started_at: Instant,
}

/// Where a CancelRequest stands after an event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CancelProgress {
    /// Still connecting.
    Waiting,
    /// Sent: the connection can be dropped.
    Sent,
}

impl CancelRequest {
    /// Starts connecting; the request goes out on the first writable event.
    pub fn start(
        target: Target<'_>,
        key: BackendKey,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> io::Result<CancelRequest> {
        let mut encoded = BytesMut::with_capacity(CANCEL_REQUEST_BYTES);
        frontend::cancel_request(key.process_id, key.secret_key, &mut encoded);
        let message = encoded[..]
            .try_into()
            .map_err(|_| io::Error::other("CancelRequest of an unexpected length"))?;
        let mut socket = Socket::connect(target)?;
        registry.register(socket.source(), token, Interest::WRITABLE)?;
        Ok(CancelRequest {
            socket,
            message,
            started_at: now,
        })
    }

    /// Sends the request once the connect completed. The 16 bytes always
    /// fit an empty send buffer, so one write sends them or fails.
    pub fn on_event(&mut self) -> io::Result<CancelProgress> {
        if !self.socket.is_connected()? {
            return Ok(CancelProgress::Waiting);
        }
        let written = nonblocking::write(&mut self.socket, &self.message)?;
        if written < self.message.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the CancelRequest did not fit the socket",
            ));
        }
        Ok(CancelProgress::Sent)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.socket.source());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_protocols() {
        let mut encoded = BytesMut::new();
        frontend::cancel_request(0x0102_0304, -1, &mut encoded);
        assert_eq!(encoded.len(), CANCEL_REQUEST_BYTES);
        // Length 16, then the cancel code 1234/5678, then the key.
        assert_eq!(&encoded[..8], &[0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e]);
        assert_eq!(&encoded[8..], &[1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff]);
    }
}

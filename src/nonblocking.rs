//! Reads and writes on non-blocking sockets of any kind (client TCP,
//! Postgres TCP or Unix), with the three answers the event loop cares about
//! spelled out: data, "nothing now" (`WouldBlock`), and the end. An
//! interrupted call (`EINTR`) is simply made again.

use std::io::{self, Read, Write};

/// What one read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// `len` bytes were read. `drained`: fewer than asked, so the socket is
    /// empty for now; for a stream socket under edge-triggered readiness
    /// that is as good as `WouldBlock` (epoll(7), "Q9"): data arriving later
    /// raises a new edge. It saves the read that would only say EAGAIN.
    Data { len: usize, drained: bool },
    /// Nothing to read now.
    WouldBlock,
    /// The peer closed its side.
    Eof,
}

/// Reads once into `buf`, which must not be empty (an empty read would
/// look like the end of the stream).
pub fn read(source: &mut impl Read, buf: &mut [u8]) -> io::Result<Received> {
    debug_assert!(!buf.is_empty(), "a zero-length read cannot tell EOF");
    loop {
        return match source.read(buf) {
            Ok(0) => Ok(Received::Eof),
            Ok(len) => Ok(Received::Data {
                len,
                drained: len < buf.len(),
            }),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Received::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

/// Writes as much of `bytes` as the socket takes; returns how much that was
/// (all of it, or less when the socket's send buffer filled). A socket that
/// accepts nothing without saying it would block is an error.
pub fn write(sink: &mut impl Write, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match sink.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Plays back a script of results, one per call.
    struct Scripted {
        reads: VecDeque<io::Result<usize>>,
        writes: VecDeque<io::Result<usize>>,
    }

    impl Scripted {
        fn new(reads: Vec<io::Result<usize>>, writes: Vec<io::Result<usize>>) -> Scripted {
            Scripted {
                reads: reads.into(),
                writes: writes.into(),
            }
        }
    }

    impl Read for Scripted {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            self.reads.pop_front().expect("one read too many")
        }
    }

    impl Write for Scripted {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.writes.pop_front().expect("one write too many")
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn kind(kind: io::ErrorKind) -> io::Result<usize> {
        Err(kind.into())
    }

    #[test]
    fn reads_say_data_drained_would_block_or_end() {
        let mut buf = [0u8; 8];
        let table: Vec<(Vec<io::Result<usize>>, Received)> = vec![
            (
                vec![Ok(8)],
                Received::Data {
                    len: 8,
                    drained: false,
                },
            ),
            (
                vec![Ok(3)],
                Received::Data {
                    len: 3,
                    drained: true,
                },
            ),
            (vec![kind(io::ErrorKind::WouldBlock)], Received::WouldBlock),
            (vec![Ok(0)], Received::Eof),
            (
                vec![kind(io::ErrorKind::Interrupted), Ok(2)],
                Received::Data {
                    len: 2,
                    drained: true,
                },
            ),
        ];
        for (script, expected) in table {
            let mut socket = Scripted::new(script, vec![]);
            assert_eq!(read(&mut socket, &mut buf).unwrap(), expected);
            assert!(socket.reads.is_empty());
        }
        let mut reset = Scripted::new(vec![kind(io::ErrorKind::ConnectionReset)], vec![]);
        assert!(read(&mut reset, &mut buf).is_err());
    }

    #[test]
    fn writes_go_on_until_done_or_full() {
        let bytes = [7u8; 10];
        let table: Vec<(Vec<io::Result<usize>>, usize)> = vec![
            (vec![Ok(10)], 10),
            (vec![Ok(4), Ok(6)], 10),
            (vec![Ok(4), kind(io::ErrorKind::WouldBlock)], 4),
            (vec![kind(io::ErrorKind::Interrupted), Ok(3), Ok(7)], 10),
        ];
        for (script, expected) in table {
            let mut socket = Scripted::new(vec![], script);
            assert_eq!(write(&mut socket, &bytes).unwrap(), expected);
            assert!(socket.writes.is_empty());
        }
        let mut zero = Scripted::new(vec![], vec![Ok(0)]);
        assert_eq!(
            write(&mut zero, &bytes).unwrap_err().kind(),
            io::ErrorKind::WriteZero
        );
        let mut nothing = Scripted::new(vec![], vec![]);
        assert_eq!(write(&mut nothing, &[]).unwrap(), 0);
    }
}

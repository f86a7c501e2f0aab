//! One port for everything: the HTTP(S) listener tells a TURN client from
//! a browser by the first bytes of a connection, so a member behind a
//! firewall that lets only TCP 443 out still gets a relay.
//!
//! - Before TLS: a TLS record starts with 0x16 (handshake); an HTTP request
//!   with a method name (ASCII letters, 0x41 and up); a STUN message with
//!   two zero bits, then its length, then the magic cookie `0x2112A442` at
//!   bytes 4–7 (RFC 8489 §5). The first TURN message on a connection is
//!   always a STUN request (ChannelData needs a channel bound first).
//! - Inside TLS: the same test on the first decrypted bytes, or the ALPN
//!   protocol `stun.turn` (RFC 7443) when the client offers it.
//!
//! The plain case peeks at the socket, which leaves the bytes in place;
//! the TLS case reads them and puts them back with [`Rewind`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// STUN's magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// Bytes needed to recognise a STUN message.
const STUN_PREFIX: usize = 8;
/// The ALPN protocol of STUN and TURN over TLS (RFC 7443).
pub const ALPN_STUN_TURN: &[u8] = b"stun.turn";
/// How long to wait between peeks while a STUN header is still partial.
const PEEK_AGAIN: Duration = Duration::from_millis(5);

/// What the first bytes of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A STUN message: TURN over TCP (or over TLS, inside it).
    Stun,
    /// A TLS handshake.
    Tls,
    /// Anything else: HTTP, or garbage for HTTP to refuse.
    Other,
    /// Too few bytes to tell yet.
    NeedMore,
}

/// Classifies the first bytes of a connection.
pub fn classify(first: &[u8]) -> Kind {
    match first.first() {
        None => Kind::NeedMore,
        Some(0x16) => Kind::Tls,
        // The two top bits of a STUN message are zero.
        Some(&b) if b >= 0x40 => Kind::Other,
        Some(_) if first.len() < STUN_PREFIX => Kind::NeedMore,
        Some(_) if first[4..STUN_PREFIX] == MAGIC_COOKIE => Kind::Stun,
        Some(_) => Kind::Other,
    }
}

/// Peeks at a fresh TCP connection until its first bytes say what it is,
/// for at most `wait`. `None` when it closed or stayed silent (close it).
pub async fn peek(tcp: &TcpStream, wait: Duration) -> Option<Kind> {
    let look = async {
        let mut buf = [0u8; STUN_PREFIX];
        loop {
            let n = tcp.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            match classify(&buf[..n]) {
                // Peeking again at once would spin on the same bytes.
                Kind::NeedMore => tokio::time::sleep(PEEK_AGAIN).await,
                kind => return Some(kind),
            }
        }
    };
    tokio::time::timeout(wait, look).await.ok().flatten()
}

/// Reads the first bytes of `stream` until they say what it is, for at
/// most `wait`; the bytes come back to be put in front again with
/// [`Rewind`]. `None` when it closed or stayed silent.
pub async fn read_first<S: AsyncRead + Unpin>(
    stream: &mut S,
    wait: Duration,
) -> Option<(Kind, Vec<u8>)> {
    let look = async {
        let mut first = Vec::with_capacity(STUN_PREFIX);
        loop {
            let mut buf = [0u8; STUN_PREFIX];
            let room = STUN_PREFIX - first.len();
            let n = stream.read(&mut buf[..room]).await.ok()?;
            if n == 0 {
                return None;
            }
            first.extend_from_slice(&buf[..n]);
            match classify(&first) {
                Kind::NeedMore => {}
                kind => return Some((kind, first)),
            }
        }
    };
    tokio::time::timeout(wait, look).await.ok().flatten()
}

/// A stream with bytes already read from it put back in front.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// `inner`, to be read from `prefix` on.
    pub fn new(inner: S, prefix: Vec<u8>) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.at < me.prefix.len() {
            let rest = &me.prefix[me.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            me.at += n;
            if me.at == me.prefix.len() {
                me.prefix = Vec::new();
                me.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    /// A STUN Binding request header (type 0x0001, length 0), cookie and
    /// transaction ID.
    fn binding() -> Vec<u8> {
        let mut m = vec![0x00, 0x01, 0x00, 0x00];
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m
    }

    #[test]
    fn first_bytes_tell_stun_from_tls_and_http() {
        assert_eq!(classify(&binding()), Kind::Stun);
        // An Allocate request (0x0003).
        let mut allocate = binding();
        allocate[1] = 0x03;
        assert_eq!(classify(&allocate), Kind::Stun);
        assert_eq!(classify(&[0x16, 0x03, 0x01, 0x02, 0x00]), Kind::Tls);
        for http in ["GET / HTTP/1.1\r\n", "POST /x", "HEAD /", "OPTIONS *"] {
            assert_eq!(classify(http.as_bytes()), Kind::Other, "{http}");
        }
        // Too short to tell a STUN header, and no cookie.
        assert_eq!(classify(&[]), Kind::NeedMore);
        assert_eq!(classify(&binding()[..7]), Kind::NeedMore);
        let mut no_cookie = binding();
        no_cookie[4] = 0;
        assert_eq!(classify(&no_cookie), Kind::Other);
        // ChannelData cannot open a connection; it is not taken for STUN.
        assert_eq!(classify(&[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]), Kind::Other);
        // A letter decides at once.
        assert_eq!(classify(b"G"), Kind::Other);
    }

    #[tokio::test]
    async fn rewind_gives_back_the_bytes_read_then_the_rest() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut b = b;
        let (kind, first) = read_first(&mut b, Duration::from_secs(1)).await.unwrap();
        assert_eq!(kind, Kind::Other);
        // Whatever one read gave, at most the bytes a STUN header needs.
        assert!(!first.is_empty() && first.len() <= STUN_PREFIX);
        assert!(b"GET / HTTP/1.1\r\n".starts_with(&first));
        let mut r = Rewind::new(b, first);
        let mut line = [0u8; 16];
        r.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"GET / HTTP/1.1\r\n");
        // Writes go straight through.
        r.write_all(b"ok").await.unwrap();
        let mut two = [0u8; 2];
        a.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ok");
    }

    #[tokio::test]
    async fn a_stun_header_in_pieces_is_read_whole_and_silence_times_out() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msg = binding();
        let head = msg[..3].to_vec();
        let tail = msg[3..].to_vec();
        let writer = tokio::spawn(async move {
            a.write_all(&head).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            a.write_all(&tail).await.unwrap();
            a
        });
        let (kind, first) = read_first(&mut b, Duration::from_secs(1)).await.unwrap();
        assert_eq!(kind, Kind::Stun);
        assert_eq!(first, msg[..STUN_PREFIX]);
        let _a = writer.await.unwrap();
        let (_quiet, mut silent) = tokio::io::duplex(64);
        assert!(
            read_first(&mut silent, Duration::from_millis(50))
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn peeking_leaves_the_bytes_for_the_reader() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let msg = binding();
        client.write_all(&msg).await.unwrap();
        assert_eq!(
            peek(&server, Duration::from_secs(1)).await,
            Some(Kind::Stun)
        );
        let mut all = vec![0u8; msg.len()];
        server.read_exact(&mut all).await.unwrap();
        assert_eq!(all, msg);
        // Closed without a byte: nothing to serve.
        drop(client);
        assert_eq!(peek(&server, Duration::from_secs(1)).await, None);
    }
}

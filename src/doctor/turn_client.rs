//! A small STUN/TURN client for `huddle doctor`: Binding, Allocate with
//! the long-term credential dance (401 → realm and nonce → authenticated
//! request; 438 → fresh nonce), CreatePermission, Send and Data
//! indications, Refresh. Over UDP (one connected socket, requests resent
//! with a doubling timeout), TCP, or TLS over TCP (RFC 5766 §11.5 / RFC
//! 8656 framing: STUN messages and ChannelData, the latter padded to four
//! bytes).
//!
//! Messages are built and read with the `stun` crate and the TURN
//! attributes of `turn::proto`; this module only moves them.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use stun::agent::TransactionId;
use stun::error_code::ErrorCodeAttribute;
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    BINDING_REQUEST, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
    Getter as _, METHOD_ALLOCATE, METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH,
    METHOD_SEND, Message, MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use turn::proto::PROTO_UDP;
use turn::proto::data::Data;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;

/// The first retransmission timeout of a request over UDP (RFC 8489's RTO).
const UDP_RTO: Duration = Duration::from_millis(500);
/// The largest datagram read.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Data indications kept while waiting for a response.
const MAX_PENDING: usize = 64;

/// Why a STUN/TURN exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// Nothing (matching) came back in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server's host refused the packets (ICMP port unreachable, or a
    /// TCP reset).
    #[error("nothing listens there ({0})")]
    Refused(std::io::Error),
    /// Another socket error.
    #[error("{0}")]
    Io(std::io::Error),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// What came back is not STUN.
    #[error("the answer is not STUN/TURN: {0}")]
    Garbled(String),
    /// An error response.
    #[error("error {}", code_text(*code, reason))]
    Response {
        /// The STUN error code.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A success response that lacks what it should carry.
    #[error("the answer lacks {0}")]
    Missing(&'static str),
}

impl TurnError {
    fn io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => {
                TurnError::Refused(e)
            }
            _ => TurnError::Io(e),
        }
    }

    /// The STUN error code, if the server answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            TurnError::Response { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// An error code with its reason phrase, or the standard one when the
/// server sent none: "401 Unauthorized".
pub fn code_text(code: u16, reason: &str) -> String {
    let reason = reason.trim();
    let standard = match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        486 => "Allocation Quota Reached",
        500 => "Server Error",
        508 => "Insufficient Capacity",
        _ => "",
    };
    match (reason.is_empty(), standard.is_empty()) {
        (false, _) => format!("{code} {reason}"),
        (true, false) => format!("{code} {standard}"),
        (true, true) => code.to_string(),
    }
}

/// A TCP or TLS stream.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A frame in a TURN-over-TCP byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// A STUN message of this many bytes.
    Stun(usize),
    /// ChannelData: this many bytes of message, this many with padding.
    ChannelData(usize, usize),
}

/// The next frame at the start of a TURN-over-TCP buffer: `Ok(None)` when
/// more bytes are needed; an error when the bytes cannot be TURN.
pub fn next_frame(buf: &[u8]) -> Result<Option<Framed>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    match buf[0] >> 6 {
        0b00 => {
            if len % 4 != 0 {
                return Err(format!("a STUN length of {len} is not a multiple of 4"));
            }
            if buf.len() >= 8 && buf[4..8] != stun::message::MAGIC_COOKIE.to_be_bytes() {
                return Err("no STUN magic cookie".into());
            }
            Ok((buf.len() >= 20 + len).then_some(Framed::Stun(20 + len)))
        }
        0b01 => {
            let total = 4 + len;
            let padded = total.div_ceil(4) * 4;
            Ok((buf.len() >= padded).then_some(Framed::ChannelData(total, padded)))
        }
        _ => Err(format!("first byte 0x{:02x}", buf[0])),
    }
}

/// How the client talks to the server.
pub enum Wire {
    /// A UDP socket connected to the server.
    Udp(UdpSocket),
    /// A TCP or TLS stream and what was read past the last frame.
    Stream(Box<dyn Stream>, Vec<u8>),
}

impl Wire {
    fn is_udp(&self) -> bool {
        matches!(self, Wire::Udp(_))
    }

    async fn send(&mut self, raw: &[u8]) -> Result<(), TurnError> {
        match self {
            Wire::Udp(s) => s.send(raw).await.map(|_| ()).map_err(TurnError::io),
            Wire::Stream(s, _) => {
                s.write_all(raw).await.map_err(TurnError::io)?;
                s.flush().await.map_err(TurnError::io)
            }
        }
    }

    /// The next STUN message (ChannelData and non-STUN datagrams are
    /// skipped); `Ok(None)` when `until` passes first.
    async fn recv(&mut self, until: Instant) -> Result<Option<Message>, TurnError> {
        loop {
            let raw = match self {
                Wire::Udp(s) => {
                    let mut buf = vec![0u8; MAX_DATAGRAM];
                    let n = match tokio::time::timeout_at(until, s.recv(&mut buf)).await {
                        Err(_) => return Ok(None),
                        Ok(r) => r.map_err(TurnError::io)?,
                    };
                    buf.truncate(n);
                    if !stun::message::is_message(&buf) {
                        continue;
                    }
                    buf
                }
                Wire::Stream(s, buf) => {
                    let frame = loop {
                        match next_frame(buf).map_err(TurnError::Garbled)? {
                            Some(f) => break f,
                            None => {
                                let mut chunk = [0u8; 4096];
                                let n = match tokio::time::timeout_at(until, s.read(&mut chunk))
                                    .await
                                {
                                    Err(_) => return Ok(None),
                                    Ok(r) => r.map_err(TurnError::io)?,
                                };
                                if n == 0 {
                                    return Err(TurnError::Closed);
                                }
                                buf.extend_from_slice(&chunk[..n]);
                            }
                        }
                    };
                    match frame {
                        Framed::ChannelData(_, padded) => {
                            buf.drain(..padded);
                            continue;
                        }
                        Framed::Stun(n) => buf.drain(..n).collect(),
                    }
                }
            };
            let mut m = Message::new();
            m.unmarshal_binary(&raw)
                .map_err(|e| TurnError::Garbled(e.to_string()))?;
            return Ok(Some(m));
        }
    }
}

/// The long-term credential state after the first 401.
struct Auth {
    username: String,
    password: String,
    realm: String,
    nonce: String,
}

/// A successful allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// The relayed transport address peers send to.
    pub relayed: SocketAddr,
    /// Our address as the server saw it (XOR-MAPPED-ADDRESS), if given.
    pub mapped: Option<SocketAddr>,
    /// The lifetime the server granted.
    pub lifetime: Duration,
}

/// One client: a wire to one server, one request at a time.
pub struct Client {
    wire: Wire,
    step: Duration,
    auth: Option<Auth>,
    /// Data indications that arrived while waiting for a response.
    pending: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl Client {
    /// A client on `wire`; every exchange waits at most `step`.
    pub fn new(wire: Wire, step: Duration) -> Self {
        Self {
            wire,
            step,
            auth: None,
            pending: VecDeque::new(),
        }
    }

    /// Sends a request and waits for its response (success or error);
    /// over UDP, resends with a doubling timeout until `step` runs out.
    async fn transact(&mut self, setters: Vec<Box<dyn Setter>>) -> Result<Message, TurnError> {
        let mut req = Message::new();
        req.build(&setters)
            .map_err(|e| TurnError::Garbled(e.to_string()))?;
        let deadline = Instant::now() + self.step;
        let mut rto = UDP_RTO;
        loop {
            self.wire.send(&req.raw).await?;
            let resend_at = if self.wire.is_udp() {
                (Instant::now() + rto).min(deadline)
            } else {
                deadline
            };
            rto *= 2;
            loop {
                let Some(m) = self.wire.recv(resend_at).await? else {
                    break;
                };
                if m.typ.class == CLASS_INDICATION {
                    self.keep_data(&m);
                    continue;
                }
                if m.transaction_id != req.transaction_id {
                    continue;
                }
                if m.typ.class == CLASS_SUCCESS_RESPONSE || m.typ.class == CLASS_ERROR_RESPONSE {
                    return Ok(m);
                }
            }
            if Instant::now() >= deadline {
                return Err(TurnError::Timeout(self.step));
            }
        }
    }

    fn keep_data(&mut self, m: &Message) {
        if m.typ.method != METHOD_DATA {
            return;
        }
        let mut peer = PeerAddress::default();
        let mut data = Data::default();
        if peer.get_from(m).is_ok() && data.get_from(m).is_ok() {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
            }
            self.pending
                .push_back((SocketAddr::new(peer.ip, peer.port), data.0));
        }
    }

    /// A Binding request: our address as the server sees it.
    pub async fn binding(&mut self) -> Result<SocketAddr, TurnError> {
        let answer = self
            .transact(vec![
                Box::new(TransactionId::new()),
                Box::new(BINDING_REQUEST),
                Box::new(FINGERPRINT),
            ])
            .await?;
        check(&answer)?;
        mapped(&answer).ok_or(TurnError::Missing("XOR-MAPPED-ADDRESS"))
    }

    /// An authenticated request of `method` with `attrs()` (called again
    /// for a retry with a fresh nonce).
    async fn authed(
        &mut self,
        method: stun::message::Method,
        attrs: &dyn Fn() -> Vec<Box<dyn Setter>>,
    ) -> Result<Message, TurnError> {
        let mut retried = false;
        loop {
            let auth = self
                .auth
                .as_ref()
                .ok_or(TurnError::Missing("credentials"))?;
            let mut setters: Vec<Box<dyn Setter>> = vec![
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(method, CLASS_REQUEST)),
            ];
            setters.extend(attrs());
            setters.push(Box::new(TextAttribute::new(
                stun::attributes::ATTR_USERNAME,
                auth.username.clone(),
            )));
            setters.push(Box::new(TextAttribute::new(
                stun::attributes::ATTR_REALM,
                auth.realm.clone(),
            )));
            setters.push(Box::new(TextAttribute::new(
                stun::attributes::ATTR_NONCE,
                auth.nonce.clone(),
            )));
            setters.push(Box::new(MessageIntegrity::new_long_term_integrity(
                auth.username.clone(),
                auth.realm.clone(),
                auth.password.clone(),
            )));
            setters.push(Box::new(FINGERPRINT));
            let answer = self.transact(setters).await?;
            match check(&answer) {
                // A stale nonce (438), or a 401 with a new nonce: once more.
                Err(TurnError::Response {
                    code: 438 | 401, ..
                }) if !retried => {
                    let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
                    if nonce.get_from(&answer).is_err()
                        || self.auth.as_ref().is_some_and(|a| a.nonce == nonce.text)
                    {
                        check(&answer)?;
                    }
                    if let Some(a) = self.auth.as_mut() {
                        a.nonce = nonce.text;
                    }
                    retried = true;
                }
                other => return other.map(|()| answer),
            }
        }
    }

    /// Allocates a UDP relay with `username`/`password`.
    ///
    /// An error response to the authenticated request is
    /// [`TurnError::Response`]; one to the first (unauthenticated) request
    /// too, but then [`AllocateError::stage`] says so.
    pub async fn allocate(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<Allocation, AllocateError> {
        let transport = || -> Vec<Box<dyn Setter>> {
            vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })]
        };
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ];
        setters.extend(transport());
        setters.push(Box::new(FINGERPRINT));
        let first = self
            .transact(setters)
            .await
            .map_err(AllocateError::challenge)?;
        let answer = match check(&first) {
            // No authentication asked for (a permissive server).
            Ok(()) => first,
            Err(TurnError::Response { code: 401, .. }) => {
                let mut realm = TextAttribute::new(stun::attributes::ATTR_REALM, String::new());
                let mut nonce = TextAttribute::new(stun::attributes::ATTR_NONCE, String::new());
                if realm.get_from(&first).is_err() || nonce.get_from(&first).is_err() {
                    return Err(AllocateError::challenge(TurnError::Missing(
                        "REALM and NONCE in the 401",
                    )));
                }
                self.auth = Some(Auth {
                    username: username.to_owned(),
                    password: password.to_owned(),
                    realm: realm.text,
                    nonce: nonce.text,
                });
                self.authed(METHOD_ALLOCATE, &transport)
                    .await
                    .map_err(AllocateError::authenticated)?
            }
            Err(e) => return Err(AllocateError::challenge(e)),
        };
        let mut relayed = RelayedAddress::default();
        relayed
            .get_from(&answer)
            .map_err(|_| AllocateError::authenticated(TurnError::Missing("XOR-RELAYED-ADDRESS")))?;
        let mut lifetime = Lifetime::default();
        let _ = lifetime.get_from(&answer);
        Ok(Allocation {
            relayed: SocketAddr::new(relayed.ip, relayed.port),
            mapped: mapped(&answer),
            lifetime: lifetime.0,
        })
    }

    /// Lets `peer` (its IP; the port does not matter) send to our relay.
    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), TurnError> {
        self.authed(METHOD_CREATE_PERMISSION, &|| {
            vec![Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            })]
        })
        .await
        .map(|_| ())
    }

    /// Sends `data` to `peer` through our relay (a Send indication).
    pub async fn send_to(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), TurnError> {
        let mut m = Message::new();
        m.build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            }),
            Box::new(Data(data.to_vec())),
            Box::new(FINGERPRINT),
        ])
        .map_err(|e| TurnError::Garbled(e.to_string()))?;
        self.wire.send(&m.raw).await
    }

    /// The next data relayed to us (a Data indication): who sent it, and
    /// what; `Ok(None)` when `until` passes first.
    pub async fn recv_data(
        &mut self,
        until: Instant,
    ) -> Result<Option<(SocketAddr, Vec<u8>)>, TurnError> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Ok(Some(d));
            }
            match self.wire.recv(until).await? {
                None => return Ok(None),
                Some(m) if m.typ.class == CLASS_INDICATION => self.keep_data(&m),
                Some(_) => {}
            }
        }
    }

    /// Ends the allocation (Refresh with lifetime 0).
    pub async fn release(&mut self) -> Result<(), TurnError> {
        match self
            .authed(METHOD_REFRESH, &|| vec![Box::new(Lifetime(Duration::ZERO))])
            .await
        {
            // 437: no allocation (any more) for this client: nothing left.
            Err(TurnError::Response { code: 437, .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }
}

/// An Allocate that failed, and at which stage.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AllocateError {
    /// The unauthenticated first request, or the one with credentials.
    pub stage: Stage,
    /// What went wrong.
    pub error: TurnError,
}

/// Which request of an Allocate failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The first, unauthenticated request (expecting 401 and a nonce).
    Challenge,
    /// The request with the credentials.
    Authenticated,
}

impl AllocateError {
    fn challenge(error: TurnError) -> Self {
        Self {
            stage: Stage::Challenge,
            error,
        }
    }
    fn authenticated(error: TurnError) -> Self {
        Self {
            stage: Stage::Authenticated,
            error,
        }
    }
}

/// `Ok` for a success response; the error code for an error response.
fn check(m: &Message) -> Result<(), TurnError> {
    if m.typ.class == CLASS_SUCCESS_RESPONSE {
        return Ok(());
    }
    let mut code = ErrorCodeAttribute::default();
    match code.get_from(m) {
        Ok(()) => Err(TurnError::Response {
            code: code.code.0,
            reason: String::from_utf8_lossy(&code.reason).into_owned(),
        }),
        Err(_) => Err(TurnError::Missing("ERROR-CODE")),
    }
}

fn mapped(m: &Message) -> Option<SocketAddr> {
    let mut x = XorMappedAddress::default();
    if x.get_from(m).is_ok() {
        return Some(SocketAddr::new(x.ip, x.port));
    }
    let mut plain = stun::addr::MappedAddress::default();
    plain
        .get_from(m)
        .ok()
        .map(|()| SocketAddr::new(plain.ip, plain.port))
}

/// A UDP socket connected to `server` (so that an ICMP "port
/// unreachable" comes back as an error).
pub async fn udp_to(server: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match server.ip() {
        IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(server).await?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_bytes(len: u16) -> Vec<u8> {
        let mut b = vec![0x01, 0x01];
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&stun::message::MAGIC_COOKIE.to_be_bytes());
        b.resize(20 + usize::from(len), 0);
        b
    }

    #[test]
    fn error_codes_read_with_their_reasons() {
        assert_eq!(code_text(401, ""), "401 Unauthorized");
        assert_eq!(code_text(486, "quota"), "486 quota");
        assert_eq!(code_text(599, " "), "599");
    }

    #[test]
    fn tcp_framing_of_stun_and_channel_data() {
        let m = stun_bytes(8);
        assert_eq!(next_frame(&m[..3]), Ok(None));
        assert_eq!(next_frame(&m[..27]), Ok(None));
        assert_eq!(next_frame(&m), Ok(Some(Framed::Stun(28))));
        let mut two = m.clone();
        two.extend_from_slice(&m);
        assert_eq!(next_frame(&two), Ok(Some(Framed::Stun(28))));
        // ChannelData of 5 bytes: 9 bytes of message, padded to 12 over TCP.
        let cd = [0x40, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5, 0, 0, 0];
        assert_eq!(next_frame(&cd[..9]), Ok(None));
        assert_eq!(next_frame(&cd), Ok(Some(Framed::ChannelData(9, 12))));
        let cd4 = [0x7f, 0xff, 0x00, 0x04, 1, 2, 3, 4];
        assert_eq!(next_frame(&cd4), Ok(Some(Framed::ChannelData(8, 8))));
        // Not TURN: an HTTP answer, TLS, a STUN header without the cookie.
        assert!(next_frame(b"\x16\x03\x01\x00\x10\x01\x00\x00").is_err());
        assert!(next_frame(b"\x80\x00\x00\x00").is_err());
        let mut no_cookie = stun_bytes(0);
        no_cookie[4] = 0;
        assert!(next_frame(&no_cookie).is_err());
        let mut odd = stun_bytes(0);
        odd[3] = 3;
        assert!(next_frame(&odd).is_err());
    }
}

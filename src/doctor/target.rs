//! What `huddle doctor` checks, parsed: the server address an operator
//! types (`--server`), and the STUN/TURN URLs the server hands out
//! (RFC 7064 `stun:`/`stuns:`, RFC 7065 `turn:`/`turns:`). Pure.

use std::fmt;
use std::net::IpAddr;

use serde_json::Value;

/// The port of `stun:` and `turn:` URLs that name none.
pub const STUN_PORT: u16 = 3478;
/// The port of `stuns:` and `turns:` URLs that name none.
pub const STUNS_PORT: u16 = 5349;

/// Why a `--server` value cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (expected an address like https://meet.example.org or http://localhost:8080)")]
pub struct BadServer(pub String);

/// The huddle server to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// HTTPS (and WSS) rather than plain HTTP.
    pub tls: bool,
    /// Host name (lower case, IDNA) or address (IPv6 without brackets).
    pub host: String,
    /// The host when it is an address (then no DNS is needed).
    pub ip: Option<IpAddr>,
    /// TCP port (default ports made explicit).
    pub port: u16,
    /// Path prefix the site lives under ("" or like "/huddle"), no
    /// trailing slash.
    pub base: String,
    /// The room of a pasted room link (`…/r/ROOM`).
    pub room: Option<String>,
    /// The `access=` of a pasted invitation link.
    pub access: Option<String>,
}

impl Target {
    /// Parses a site address (`http(s)://host[:port][/prefix]`), a socket
    /// URL (`ws(s)://host[:port][/prefix]/ws`) or a room link
    /// (`https://host/r/ROOM[?access=TOKEN]`).
    pub fn parse(input: &str) -> Result<Self, BadServer> {
        let s = input.trim();
        if s.is_empty() {
            return Err(BadServer("no server address".into()));
        }
        if !s.contains("://") {
            return Err(BadServer(format!("{s:?} has no scheme")));
        }
        let url = url::Url::parse(s).map_err(|e| BadServer(format!("{s:?}: {e}")))?;
        let tls = match url.scheme() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            other => {
                return Err(BadServer(format!(
                    "the scheme {other:?} is not one of http, https, ws, wss"
                )));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BadServer(
                "a server address carries no user name or password".into(),
            ));
        }
        let (host, ip) = match url.host() {
            None => return Err(BadServer(format!("{s:?} has no host"))),
            Some(url::Host::Domain(d)) => (d.to_owned(), None),
            Some(url::Host::Ipv4(v4)) => (v4.to_string(), Some(IpAddr::V4(v4))),
            Some(url::Host::Ipv6(v6)) => (v6.to_string(), Some(IpAddr::V6(v6))),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| BadServer(format!("{s:?} has no port")))?;
        let path = url.path().trim_end_matches('/');
        let mut room = None;
        let base = if let Some(base) = path.strip_suffix("/ws") {
            base.to_owned()
        } else if let Some((base, r)) = path.rsplit_once("/r/")
            && !r.is_empty()
            && !r.contains('/')
        {
            room = Some(
                percent_encoding::percent_decode_str(r)
                    .decode_utf8()
                    .map_err(|_| BadServer(format!("the room in {s:?} is not UTF-8")))?
                    .into_owned(),
            );
            base.to_owned()
        } else {
            path.to_owned()
        };
        let access = url
            .query_pairs()
            .find(|(k, _)| k == "access")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty());
        Ok(Self {
            tls,
            host,
            ip,
            port,
            base,
            room,
            access,
        })
    }

    /// The host as it appears in a URL (IPv6 in brackets).
    pub fn url_host(&self) -> String {
        match self.ip {
            Some(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => self.host.clone(),
        }
    }

    fn default_port(&self) -> u16 {
        if self.tls { 443 } else { 80 }
    }

    /// `host[:port]` for the `Host` header (the port only when not the
    /// scheme's default, as browsers send it).
    pub fn authority(&self) -> String {
        if self.port == self.default_port() {
            self.url_host()
        } else {
            format!("{}:{}", self.url_host(), self.port)
        }
    }

    /// The page origin a browser on this site sends with the WebSocket.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    /// The URL of a path on the site (the path starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.origin(), self.base)
    }

    /// The path of `path` on the site, for an HTTP request line.
    pub fn path(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The signaling socket's URL.
    pub fn ws_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{}/ws", self.authority(), self.base)
    }
}

/// The four kinds of ICE server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceScheme {
    /// `stun:` (binding only, UDP).
    Stun,
    /// `stuns:` (binding over TLS).
    Stuns,
    /// `turn:` (relay over UDP or TCP).
    Turn,
    /// `turns:` (relay over TLS over TCP).
    Turns,
}

impl IceScheme {
    /// A TURN URL (which allocates relays), not STUN only.
    pub fn is_turn(self) -> bool {
        matches!(self, IceScheme::Turn | IceScheme::Turns)
    }
}

/// How the client reaches an ICE server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP connection (STUN framing, RFC 5766 §11.5).
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        })
    }
}

/// One STUN or TURN URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    /// The URL as the server wrote it.
    pub text: String,
    /// Its scheme.
    pub scheme: IceScheme,
    /// Host name (lower case) or address (IPv6 without brackets).
    pub host: String,
    /// Port (defaults made explicit).
    pub port: u16,
    /// How it is reached.
    pub transport: Transport,
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl IceUrl {
    /// Parses `stun:HOST[:PORT]`, `stuns:HOST[:PORT]`,
    /// `turn:HOST[:PORT][?transport=udp|tcp]` or
    /// `turns:HOST[:PORT][?transport=tcp]` (the default transport of
    /// `turn:` is UDP, as browsers read it).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (scheme, rest) = t
            .split_once(':')
            .ok_or_else(|| "no scheme (expected stun:, stuns:, turn: or turns:)".to_owned())?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => IceScheme::Stun,
            "stuns" => IceScheme::Stuns,
            "turn" => IceScheme::Turn,
            "turns" => IceScheme::Turns,
            other => return Err(format!("unknown scheme {other:?}")),
        };
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        if hostport.starts_with("//") || hostport.contains('@') || hostport.contains('/') {
            return Err("expected HOST[:PORT] after the scheme".into());
        }
        let secure = matches!(scheme, IceScheme::Stuns | IceScheme::Turns);
        let default_port = if secure { STUNS_PORT } else { STUN_PORT };
        let (host, port) = split_host_port(hostport, default_port)?;
        let mut transport = if secure {
            Transport::Tls
        } else {
            Transport::Udp
        };
        if let Some(query) = query {
            if !scheme.is_turn() {
                return Err("a STUN URL takes no ?transport".into());
            }
            let value = query
                .strip_prefix("transport=")
                .ok_or_else(|| format!("unknown query {query:?} (expected transport=udp|tcp)"))?;
            transport = match (value.to_ascii_lowercase().as_str(), secure) {
                ("udp", false) => Transport::Udp,
                ("tcp", false) => Transport::Tcp,
                ("tcp", true) => Transport::Tls,
                ("udp", true) => {
                    return Err("turns: over UDP (DTLS) is not supported by browsers".into());
                }
                (other, _) => return Err(format!("unknown transport {other:?}")),
            };
        }
        Ok(Self {
            text: t.to_owned(),
            scheme,
            host,
            port,
            transport,
        })
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("bad port {p:?}");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed [ in the address".to_owned())?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        let port = match after {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| bad_port(p))?,
        };
        (v6.to_ascii_lowercase(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), p.parse().map_err(|_| bad_port(p))?),
            None => (s.to_ascii_lowercase(), default_port),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if port == 0 {
        return Err("port 0".into());
    }
    if !host.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok((host, port))
}

/// One URL of the server's `iceServers`, with the credentials of its
/// RTCIceServer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceEntry {
    /// The URL as written.
    pub text: String,
    /// The parsed URL, or why it cannot be used.
    pub url: Result<IceUrl, String>,
    /// `username`, if any.
    pub username: Option<String>,
    /// `credential`, if any.
    pub credential: Option<String>,
}

/// Flattens RTCIceServer objects (`urls` a string or an array) into one
/// entry per URL. Objects without a usable `urls` become entries with an
/// error, so nothing the server sent is silently skipped.
pub fn ice_entries(servers: &[Value]) -> Vec<IceEntry> {
    let mut out = Vec::new();
    for server in servers {
        let text_of = |k: &str| server.get(k).and_then(Value::as_str).map(str::to_owned);
        let username = text_of("username");
        let credential = text_of("credential");
        let urls: Vec<String> = match server.get("urls") {
            Some(Value::String(u)) => vec![u.clone()],
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => list
                .iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect(),
            _ => {
                out.push(IceEntry {
                    text: server.to_string(),
                    url: Err("an ICE server without a readable \"urls\"".into()),
                    username,
                    credential,
                });
                continue;
            }
        };
        for text in urls {
            out.push(IceEntry {
                url: IceUrl::parse(&text),
                text,
                username: username.clone(),
                credential: credential.clone(),
            });
        }
    }
    out
}

/// The expiry (unix seconds) of a TURN REST username `<expiry>:<name>`.
pub fn rest_expiry(username: &str) -> Option<u64> {
    let (expiry, _) = username.split_once(':')?;
    expiry.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        let t = Target::parse("https://Meet.Example.org").unwrap();
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.base.as_str()),
            (true, "meet.example.org", 443, "")
        );
        assert_eq!(t.origin(), "https://meet.example.org");
        assert_eq!(t.ws_url(), "wss://meet.example.org/ws");
        assert_eq!(t.url("/healthz"), "https://meet.example.org/healthz");
        assert_eq!(t.ip, None);

        let t = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((t.tls, t.port), (false, 8080));
        assert_eq!(t.ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(t.origin(), "http://127.0.0.1:8080");
        assert_eq!(t.ws_url(), "ws://127.0.0.1:8080/ws");

        let t = Target::parse("wss://[::1]:8443/huddle/ws").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 8443));
        assert_eq!(t.base, "/huddle");
        assert_eq!(t.authority(), "[::1]:8443");
        assert_eq!(t.path("/healthz"), "/huddle/healthz");
        assert_eq!(t.ws_url(), "wss://[::1]:8443/huddle/ws");

        let t = Target::parse("https://h:443/chat/").unwrap();
        assert_eq!((t.base.as_str(), t.authority().as_str()), ("/chat", "h"));
    }

    #[test]
    fn a_room_link_gives_its_room_and_invitation() {
        let t = Target::parse("https://meet.example.org/r/%D0%BF%D0%BB%D0%B0%D0%BD?access=abc.def")
            .unwrap();
        assert_eq!(t.room.as_deref(), Some("план"));
        assert_eq!(t.access.as_deref(), Some("abc.def"));
        assert_eq!(t.base, "");
        let t = Target::parse("http://h:1/x/r/standup").unwrap();
        assert_eq!(
            (t.base.as_str(), t.room.as_deref()),
            ("/x", Some("standup"))
        );
        assert_eq!(t.access, None);
    }

    #[test]
    fn bad_server_addresses_say_why() {
        for (bad, why) in [
            ("", "no server"),
            ("meet.example.org", "no scheme"),
            ("ftp://h", "scheme"),
            ("http://", "http://"),
            ("https://user:pw@h", "user name"),
            ("http://h:99999", "h:99999"),
        ] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn ice_urls() {
        let u = IceUrl::parse("turn:127.0.0.1:3478?transport=udp").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport),
            (IceScheme::Turn, "127.0.0.1", 3478, Transport::Udp)
        );
        let u = IceUrl::parse("turn:TURN.example.org?transport=TCP").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.transport),
            ("turn.example.org", 3478, Transport::Tcp)
        );
        let u = IceUrl::parse("turns:meet.example.org:443?transport=tcp").unwrap();
        assert_eq!(
            (u.scheme, u.port, u.transport),
            (IceScheme::Turns, 443, Transport::Tls)
        );
        let u = IceUrl::parse("turns:h").unwrap();
        assert_eq!((u.port, u.transport), (5349, Transport::Tls));
        let u = IceUrl::parse("stun:[2001:DB8::1]:19302").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.transport),
            (IceScheme::Stun, "2001:db8::1", 19302, Transport::Udp)
        );
        let u = IceUrl::parse("turn:h").unwrap();
        assert_eq!((u.port, u.transport), (3478, Transport::Udp));
        assert_eq!(IceUrl::parse("stuns:h").unwrap().transport, Transport::Tls);
        for bad in [
            "h:3478",
            "http://h",
            "turn:",
            "turn://h",
            "turn:u:p@h",
            "turn:h:x",
            "turn:h:0",
            "turn:[::1",
            "turn:h?transport=sctp",
            "turn:h?foo=bar",
            "turns:h?transport=udp",
            "stun:h?transport=tcp",
            "turn:h/path",
            "turn:-h",
        ] {
            assert!(IceUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ice_servers_flatten_to_one_entry_per_url() {
        let servers: Vec<Value> = serde_json::from_str(
            r#"[{"urls":"stun:s.example.org"},
                {"urls":["turn:t:3478?transport=udp","turn:t:3478?transport=tcp"],"username":"9:x","credential":"c"},
                {"urls":42},
                {"urls":["bogus:x"]}]"#,
        )
        .unwrap();
        let e = ice_entries(&servers);
        assert_eq!(e.len(), 5);
        assert_eq!(e[0].username, None);
        assert!(e[0].url.is_ok());
        assert_eq!(e[2].url.as_ref().unwrap().transport, Transport::Tcp);
        assert_eq!(e[2].username.as_deref(), Some("9:x"));
        assert_eq!(e[2].credential.as_deref(), Some("c"));
        assert!(e[3].url.is_err());
        assert!(e[4].url.is_err());
    }

    #[test]
    fn rest_usernames_carry_their_expiry() {
        assert_eq!(rest_expiry("1700000000:probe-1"), Some(1_700_000_000));
        assert_eq!(rest_expiry("alice"), None);
        assert_eq!(rest_expiry("x:alice"), None);
    }
}

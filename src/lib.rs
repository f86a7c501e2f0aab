//! huddle: self-hosted group video chat. One binary serves the web client
//! and the WebSocket signaling server that lets browsers in a named room find
//! each other and set up peer-to-peer WebRTC calls.
//!
//! # Layout
//!
//! ```text
//! browser ──ws──▶ ws.rs   one task per socket: frames → hub calls; bounded outbound queue
//!                   │
//!                   ▼
//!                hub.rs   the one lock: core + ConnId → outbound queue; dispatch outputs
//!                   │
//!                   ▼
//!                core/    sans-IO state machine: rooms, members, relay, resume, limits
//! ```
//!
//! The sans-IO parts are the `huddle-core` crate (`crates/core`: protocol,
//! core, its config, ICE servers, access tokens), which does not depend on
//! tokio; they are re-exported here under their old paths.
//!
//! - [`config`]: every setting and its default.
//! - [`protocol`]: the wire format of protocol v1 and the name/room rules.
//! - [`core`]: the state machine; time, ids, tokens and the wall clock are inputs.
//! - [`hub`]: the mutex around the core, dispatch to connection queues, timers.
//! - [`ws`]: one connection (heartbeat, close codes, writer).
//! - [`queue`]: the bounded outbound queue between the hub and a connection's writer.
//! - [`server`]: the accept loop (hyper, header timeout, per-IP cap), axum
//!   routes, security headers, connection limit, shutdown.
//! - [`origin`]: which page origins may open `/ws` (DNS rebinding defence).
//! - [`per_ip`]: open connections per client address.
//! - [`tls`]: HTTPS/WSS: certificate files or a self-signed one, the TLS listener.
//! - [`sniff`]: tells TURN from HTTP and TLS by a connection's first bytes (TURN on the listener's port).
//! - [`access`]: operator tokens (`--auth-secret`, `huddle token`): HS256 JWTs.
//! - [`password`]: room passwords, hashed with Argon2id off the lock.
//! - [`ice`]: the ICE servers in `joined`, and TURN REST credentials minted per member.
//! - [`turn`]: the embedded TURN/STUN server (UDP and TCP, quota, bandwidth cap).
//! - [`metrics`]: the counters and the Prometheus text served at `/metrics`.
//! - [`load`]: `huddle load`, a load generator that sets up calls and checks every message.
//! - [`assets`]: the embedded web client.
//! - [`bot`]: `huddle bot`, a headless WebRTC participant (a client of the
//!   protocol, not part of the server).
//! - [`client`]: the client side of a server connection (URL, `ws://` or
//!   `wss://`), shared by `huddle bot` and `huddle load`.
//! - [`doctor`]: `huddle doctor`, which checks a deployment from a terminal:
//!   DNS, TLS, signaling, and every STUN/TURN URL down to a round trip
//!   through the relay.
//!
//! # A session
//!
//! ```text
//! alice → {"type":"join","room":"r","name":"alice"}
//! alice ← {"type":"joined","room":"r","name":"alice","peers":[],"iceServers":[],"token":"…"}
//! bob   → {"type":"join","room":"r","name":"bob"}
//! bob   ← {"type":"joined",…,"peers":["alice"],…}
//! alice ← {"type":"peer-joined","name":"bob"}
//! bob   → {"type":"offer","to":"alice","sdp":"…"}
//! alice ← {"type":"offer","from":"bob","sdp":"…"}
//! alice → {"type":"answer","to":"bob","sdp":"…"}   (then candidates both ways)
//! bob   → {"type":"leave"}
//! bob   ← {"type":"left","room":"r"};  alice ← {"type":"peer-left","name":"bob"}
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod assets;
pub mod bot;
pub mod client;
pub mod config;
pub mod doctor;
pub mod hub;
pub mod load;
pub mod media;
pub mod metrics;
pub mod origin;
pub mod password;
pub mod per_ip;
pub mod queue;
pub mod server;
pub mod sniff;
pub mod tls;
pub mod turn;
pub mod ws;

// The sans-IO signaling core is its own crate (crates/core, no tokio);
// its modules keep their paths here.
pub use huddle_core::{access, core, ice, protocol};

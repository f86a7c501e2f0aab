//! huddle's signaling core, kept apart from everything that does I/O: this
//! crate has no sockets, no tasks and no tokio (the `huddle` crate wires it
//! to WebSockets), so the layering is enforced by the compiler.
//!
//! - [`protocol`]: the wire format of protocol v1 and the name/room rules.
//! - [`core`]: the state machine; time, ids, tokens and the wall clock are inputs.
//! - [`config`]: its settings ([`config::CoreConfig`]) and their defaults.
//! - [`ice`]: the ICE servers in `joined`, and TURN REST credentials minted per member.
//! - [`access`]: operator tokens (`--auth-secret`, `huddle token`): HS256 JWTs.

#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod core;
pub mod ice;
pub mod protocol;

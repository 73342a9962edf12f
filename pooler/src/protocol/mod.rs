//! The MySQL wire protocol as far as a forwarding pooler needs it: framing, the handful of
//! packets it reads or writes itself, both sides of the handshake, and password scrambles.
//! Packet layouts come from `mysql_common`; framing and state machines are ours.

pub mod auth;
pub mod client_handshake;
pub mod framing;
pub mod packets;
pub mod prefixed;
pub mod resultset;
pub mod server_handshake;

//! The transport layer of a connection, under the session (plain today, TLS next), the
//! codec (HTTP/1) and the exchange: the socket's state machine ([`endpoint`]) and the typed
//! keys that name connections in their slabs ([`slab`]). Shared by the server and the load
//! generator.

pub mod endpoint;
pub mod sink;
pub mod slab;
pub mod tls;

pub use endpoint::{Endpoint, Ops, Received, Recv};
pub use slab::{Key, Slab};

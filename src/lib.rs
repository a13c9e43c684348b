//! uringd: a thread-per-core HTTP/1.1 front end on io_uring (or epoll where io_uring is
//! blocked).

// Every `unsafe` block says why it is sound, where it is.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod admin;
pub mod apps;
pub mod bench;
pub mod compress;
pub mod config;
pub mod doctor;
pub mod driver;
pub mod edge;
pub mod h2;
pub mod http;
pub mod log;
pub mod proxy;
pub mod serve;
pub mod shield;
pub mod statics;
pub mod stats;
pub mod tls;
pub mod transport;
pub mod worker;

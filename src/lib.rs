//! uringd: a thread-per-core io_uring HTTP/1.1 front end.

pub mod config;
pub mod http;
pub mod ring;
pub mod serve;
pub mod worker;

//! uringd: a thread-per-core io_uring HTTP/1.1 front end.

pub mod admin;
pub mod bench;
pub mod config;
pub mod doctor;
pub mod http;
pub mod proxy;
pub mod ring;
pub mod serve;
pub mod statics;
pub mod stats;
pub mod worker;

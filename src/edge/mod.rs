//! The edge's rules, as pure decisions the worker applies: which site a Host names, who may
//! reach a route, the client's real address behind trusted proxies, the PROXY protocol
//! header, and the header edits of a route's responses. No sockets here.

pub mod cidr;
pub mod headers;
pub mod host;
pub mod proxy_protocol;
pub mod realip;

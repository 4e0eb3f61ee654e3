//! One [`Handler`](crate::reactor::Handler) per protocol: the glue between a sans-IO state
//! machine in `netloop-protocols` and a connection in the reactor.
//!
//! | service | lesson programs | server | client |
//! |---|---|---|---|
//! | [`time`] | 02/03, 06/07, 10 | [`time::TimeServer`] | [`time::TimeClient`] |
//! | [`udp_echo`] | 08/09 | [`udp_echo::EchoServer`] | [`udp_echo::EchoClient`] |
//! | [`http`] | `http.server`, `BaseHTTPRequestHandler` | [`http::HttpConn`] | (curl, a browser) |
//! | [`http_client`] | 01, `requests`, `urlopen` | (any HTTP server) | [`http_client::Client`] |
//! | [`chat`] | 11/12 | [`chat::ChatServer`], [`chat::RawChatServer`] | [`chat::ChatClient`] |
//! | [`file`](mod@file) | 04/05 | [`file::LessonServer`], [`file::RequestServer`] | [`file::FileClient`] |

pub mod chat;
pub mod file;
pub mod http;
pub mod http_client;
pub mod time;
pub mod udp_echo;

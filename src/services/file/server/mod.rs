//! The two file servers: lesson mode (one file, the lesson's document, to whoever
//! connects) and request mode (`get`, `put`, `list` over a directory).
//!
//! | file | what |
//! |---|---|
//! | `lesson.rs` | lesson mode, [`LessonServer`]: the document to whoever connects |
//! | `request.rs` | request mode, [`RequestServer`], and the [`FileService`] it shares |
//!
//! Both stream a file out with [`outgoing`](super::outgoing); request mode also takes
//! uploads in with [`receive`](super::receive). Their tests, on the reactor's test bed,
//! are in `tests.rs`.

mod lesson;
mod request;
#[cfg(test)]
mod tests;

pub use lesson::{LessonFile, LessonServer};
pub use request::{FileService, HASH_STEP, IDLE_TIMEOUT, RequestServer, listen_options};

use crate::reactor::Context;

fn peer(cx: &Context<'_>) -> String {
    cx.peer_addr()
        .map_or_else(|| "file".to_string(), |a| a.to_string())
}

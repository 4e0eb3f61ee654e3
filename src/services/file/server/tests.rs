//! Both servers on the reactor's test bed: lesson mode's document, and request mode's
//! `get` (hashed on the timer, then sent), `put` (committed on the disk thread), `list`
//! and a bad request.

use super::request::NEXT_TICK;
use super::*;
use crate::reactor::testing::TestBed;
use crate::services::file::store::Store;
use netloop_protocols::file::{JsonBase64Encoder, Sha256Digest};
use std::cell::RefCell;
use std::rc::Rc;
/// Generous bound for the disk thread's report on a loaded machine.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

fn service(dir: &std::path::Path) -> Rc<RefCell<FileService>> {
    FileService::shared(Store::open(dir).expect("store"))
}

fn open(bed: &mut TestBed, shared: &Rc<RefCell<FileService>>) -> crate::reactor::Token {
    let mut factory = RequestServer::factory(shared.clone());
    bed.open(factory("127.0.0.1:1".parse().expect("addr")))
}

#[test]
fn lesson_mode_writes_the_document_and_closes_without_reading() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("hi.txt");
    std::fs::write(&path, b"hi\n").expect("write");
    let mut factory = LessonServer::factory(LessonFile {
        path,
        name: "hi.txt".into(),
    });
    let mut bed = TestBed::new();
    let conn = bed.open(factory("127.0.0.1:1".parse().expect("addr")));
    bed.data(conn, b"ignored");
    assert!(bed.is_closing(conn));
    assert_eq!(
        bed.take_output(conn),
        br#"{"filename": "hi.txt", "filedata": "aGkK"}"#
    );
    assert!(bed.is_closed(conn));
}

#[test]
fn a_get_hashes_on_the_timer_then_sends_header_and_body() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.txt"), b"hello\n").expect("write");
    let shared = service(dir.path());
    let mut bed = TestBed::new();
    let conn = open(&mut bed, &shared);
    bed.data(
        conn,
        b"{\"op\":\"get\",\"filename\":\"a.txt\",\"encoding\":\"raw\"}\n",
    );
    assert!(bed.take_output(conn).is_empty(), "hashing first");
    bed.advance(NEXT_TICK);
    let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
    let digest = Sha256Digest::of(b"hello\n");
    assert_eq!(
        out,
        format!(
            "{{\"status\":\"ok\",\"filename\":\"a.txt\",\"size\":6,\"sha256\":\"{digest}\",\"encoding\":\"raw\"}}\nhello\n"
        )
    );
    assert!(bed.is_closed(conn));

    // The digest is remembered: the next get sends at once, here the lesson's document.
    let conn = open(&mut bed, &shared);
    bed.data(conn, b"{\"op\":\"get\",\"filename\":\"a.txt\"}\n");
    let out = bed.take_output(conn);
    assert!(out.ends_with(br#"{"filename": "a.txt", "filedata": "aGVsbG8K"}"#));
}

#[test]
fn a_put_in_the_same_read_as_its_request_is_stored_and_answered() {
    let dir = tempfile::tempdir().expect("dir");
    let shared = service(dir.path());
    let mut bed = TestBed::new();
    let conn = open(&mut bed, &shared);
    let mut doc = Vec::new();
    let mut encoder = JsonBase64Encoder::new("up.txt", 3);
    encoder.write_data(b"abc", &mut doc).expect("size");
    encoder.finish(&mut doc).expect("size");
    let digest = Sha256Digest::of(b"abc");
    let request =
        format!("{{\"op\":\"put\",\"filename\":\"up.txt\",\"size\":3,\"sha256\":\"{digest}\"}}\n");
    bed.data(conn, &[request.as_bytes(), &doc].concat());
    assert!(
        bed.take_output(conn).is_empty(),
        "no answer before the disk's"
    );
    // The fsync and rename run on the disk thread, which reports back.
    assert_eq!(bed.deliver_reports(PATIENCE), 1);
    assert_eq!(
        bed.take_output(conn),
        b"{\"status\":\"ok\",\"filename\":\"up.txt\",\"size\":3}\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("up.txt")).expect("stored"),
        b"abc"
    );
}

#[test]
fn a_list_and_a_bad_line_get_one_line_each() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("a.txt"), b"a").expect("write");
    let shared = service(dir.path());
    let mut bed = TestBed::new();
    let conn = open(&mut bed, &shared);
    bed.data(conn, b"{\"op\":\"li");
    bed.data(conn, b"st\"}\n");
    assert_eq!(
        bed.take_output(conn),
        b"{\"status\":\"ok\",\"files\":[{\"name\":\"a.txt\",\"size\":1}]}\n"
    );
    let conn = open(&mut bed, &shared);
    bed.data(conn, b"{\"op\":\"get\",\"filename\":\"../a.txt\"}\n");
    let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
    assert!(
        out.starts_with("{\"status\":\"error\",\"message\":\"bad file name"),
        "{out}"
    );
    assert!(bed.is_closed(conn));
}

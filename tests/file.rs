//! The file service end to end: the example binaries, the `netloop` binary, the lesson's
//! own Python server and client, raw sockets for what a well-behaved client never sends,
//! and every bad input we know of (unsafe names, bad documents, cut transfers, wrong sizes
//! and hashes), with the message each side reports and a check
//! that nothing was written.

mod util;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};
use util::libc_signal::Signal;
use util::*;

/// Deterministic bytes that look random (so base64 has every character), without a crate.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// Every entry of `dir`, hidden ones included, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn file_server(args: &[&str]) -> ServerProcess {
    let mut cmd = Command::new(binary("file_server"));
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    let server = spawn_server(cmd, 1);
    assert_eq!(server.listening[0].0, "file");
    server
}

fn file_client(addr: SocketAddr, args: &[&str]) -> Output {
    Command::new(binary("file_client"))
        .arg("--addr")
        .arg(addr.to_string())
        .args(args)
        .output()
        .expect("run file_client")
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[track_caller]
fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "must fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8(out.stderr.clone()).expect("utf-8");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// SIGTERM, wait for exit 0, and return what the server logged.
#[track_caller]
fn stop(mut server: ServerProcess) -> String {
    server.signal(Signal::Term);
    let (status, stderr) = server.wait_exit();
    assert!(status.success(), "{status:?}: {stderr}");
    stderr
}

/// Sends `request` (and `body`) on a raw socket, half-closes, and returns all it got back.
fn raw_request(addr: SocketAddr, request: &str, body: &[u8]) -> String {
    let mut c = connect(addr);
    c.write_all(request.as_bytes()).expect("send request");
    c.write_all(body).expect("send body");
    let _ = c.shutdown(Shutdown::Write);
    String::from_utf8_lossy(&read_to_end(&mut c)).into_owned()
}

fn sha256_hex(data: &[u8]) -> String {
    netloop_protocols::file::Sha256Digest::of(data).to_string()
}

fn put_line(name: &str, data: &[u8], encoding: &str) -> String {
    format!(
        "{{\"op\":\"put\",\"filename\":\"{name}\",\"size\":{},\"sha256\":\"{}\",\"encoding\":\"{encoding}\"}}\n",
        data.len(),
        sha256_hex(data)
    )
}

#[test]
fn lesson_mode_sends_pythons_exact_bytes_and_the_client_streams_them_to_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = pseudo_random(3 << 20, 1);
    let path = dir.path().join("Screenshot-1.png");
    std::fs::write(&path, &data).expect("write");
    let server = file_server(&["--file", path.to_str().expect("utf-8")]);
    let addr = server.addr("file");

    // The bytes on the wire are Python's json.dumps, byte for byte.
    let mut c = connect(addr);
    let wire = read_to_end(&mut c);
    let python = Command::new("python3")
        .args([
            "-c",
            "import sys, json, base64; d = open(sys.argv[1], 'rb').read(); \
             sys.stdout.write(json.dumps({'filename': 'Screenshot-1.png', \
             'filedata': base64.b64encode(d).decode('utf-8')}))",
            path.to_str().expect("utf-8"),
        ])
        .output()
        .expect("python3 is installed");
    assert!(python.status.success());
    assert!(wire == python.stdout, "not the lesson's exact document");

    // Our client, streaming and whole, saves the same file.
    let down = tempfile::tempdir().expect("temp dir");
    let d = down.path().to_str().expect("utf-8");
    let out = succeeded(&file_client(addr, &["--dir", d]));
    assert!(out.starts_with("saved "), "{out}");
    assert!(std::fs::read(down.path().join("Screenshot-1.png")).expect("saved") == data);
    let again = failed(&file_client(addr, &["--dir", d]));
    assert!(again.contains("Screenshot-1.png already exists"), "{again}");
    succeeded(&file_client(addr, &["--dir", d, "--force", "--whole"]));
    assert!(std::fs::read(down.path().join("Screenshot-1.png")).expect("saved") == data);
    assert_eq!(
        entries(down.path()),
        ["Screenshot-1.png"],
        "no temporary file left"
    );
}

/// Lesson programs 04 and 05, as the lesson writes them, with the address, the file and
/// the destination directory pointed at the test's.
const LESSON_SERVER: &str = r#"
from socket import socket, SOCK_STREAM, AF_INET
from base64 import b64encode
from json import dumps
from threading import Thread


def main():
   # Пользовательский класс потока
   class FileTransferHandler(Thread):

      def __init__(self, cclient):
         super().__init__()
         self.cclient = cclient

      def run(self):
         my_dict = {}
         my_dict['filename'] = 'Screenshot-1.png'
         # JSON - это простой текст и не может переносить двоичные данные
         # Таким образом, двоичные данные изображения должны быть обработаны в кодировке base64
         my_dict['filedata'] = data
         # Преобразование словаря в строку JSON с помощью функции дампа
         json_str = dumps(my_dict)
         # Отправить строку JSON
         self.cclient.send(json_str.encode('utf-8'))
         self.cclient.close()

   # 1. Создайте объект сокета и укажите, какой транспортный сервис использовать.
   server = socket()
   # 2. Привязать IP-адрес и порт (чтобы различать разные сервисы)
   server.bind(('127.0.0.1', 0))
   # 3. Включите мониторинг-прослушивание клиентских подключений к серверу.
   server.listen(512)
   print('file listening on 127.0.0.1:%d' % server.getsockname()[1], flush=True)
   with open('Screenshot-1.png', 'rb') as f:
      # Обработать двоичные данные в base64 и затем декодировать их в строку
      data = b64encode(f.read()).decode('utf-8')
   while True:
      client, addr = server.accept()
      # Используйте словарь (пара ключ-значение) для сохранения различных данных для отправки
      # Позже словарь может быть преобразован в формат JSON и передан по сети
      FileTransferHandler(client).start()


if __name__ == '__main__':
    main()
"#;

const LESSON_CLIENT: &str = r#"
from socket import socket
from json import loads
from base64 import b64decode


def main():
    client = socket()
    client.connect(('{ip}', {port}))
    # Определить объект, который сохраняет двоичные данные
    in_data = bytes()
    # Поскольку я не знаю, насколько велики данные, отправляемые сервером, я получаю 1024 байта каждый раз
    data = client.recv(1024)
    while data:
        # Объединить полученные данные
        in_data += data
        data = client.recv(1024)
        # Декодировать полученные двоичные данные в строку JSON и преобразовать в словарь
        # Функция  # load - преобразовать строки JSON в объекты словаря.
    my_dict = loads(in_data.decode('utf-8'))
    filename = my_dict['filename']
    filedata = my_dict['filedata'].encode('utf-8')
    with open('{dir}/' + filename, 'wb') as f:
        # Декодировать данные формата base64 в двоичные данные и записывать их в файл
        f.write(b64decode(filedata))
    print('Картинка сохранена.')


if __name__ == '__main__':
    main()
"#;

#[test]
fn the_lessons_python_client_receives_from_netloops_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = pseudo_random(1 << 20, 2);
    let path = dir.path().join("Screenshot-1.png");
    std::fs::write(&path, &data).expect("write");
    let server = file_server(&["--file", path.to_str().expect("utf-8")]);
    let addr = server.addr("file");
    let down = tempfile::tempdir().expect("temp dir");
    let script = LESSON_CLIENT
        .replace("{ip}", &addr.ip().to_string())
        .replace("{port}", &addr.port().to_string())
        .replace("{dir}", down.path().to_str().expect("utf-8"));
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is installed");
    assert_success(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Картинка сохранена."
    );
    assert!(std::fs::read(down.path().join("Screenshot-1.png")).expect("saved") == data);
}

#[test]
fn netloops_client_receives_from_the_lessons_python_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = pseudo_random(1 << 20, 3);
    std::fs::write(dir.path().join("Screenshot-1.png"), &data).expect("write");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", LESSON_SERVER]).current_dir(dir.path());
    let server = spawn_server(cmd, 1); // killed on drop: the lesson's server never exits
    let down = tempfile::tempdir().expect("temp dir");
    let d = down.path().to_str().expect("utf-8");
    for whole in [false, true] {
        let mut args = vec!["--dir", d, "--force"];
        if whole {
            args.push("--whole");
        }
        let out = succeeded(&file_client(server.addr("file"), &args));
        assert!(out.contains("Screenshot-1.png"), "{out}");
        assert!(std::fs::read(down.path().join("Screenshot-1.png")).expect("saved") == data);
    }
}

/// A server that sends `reply` to the first client and closes: what a hostile or broken
/// server can do to a client.
fn one_shot_server(reply: Vec<u8>) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind(any_port()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let thread = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.set_read_timeout(Some(PATIENCE));
            let _ = s.write_all(&reply);
            // Closing with the client's request unread would send RST, which can overtake
            // the reply: half-close, then read until the client has closed too.
            let _ = s.shutdown(Shutdown::Write);
            let _ = s.read_to_end(&mut Vec::new());
        }
    });
    (addr, thread)
}

#[test]
fn the_client_refuses_unsafe_names_bad_documents_and_cut_transfers_and_writes_nothing() {
    let parent = tempfile::tempdir().expect("temp dir");
    let down = parent.path().join("down");
    std::fs::create_dir(&down).expect("mkdir");
    let d = down.to_str().expect("utf-8");
    let doc = |name: &str| format!(r#"{{"filename": "{name}", "filedata": "aGk="}}"#);
    let cases: Vec<(Vec<u8>, &[&str], &str)> = vec![
        (
            doc("../evil.sh").into(),
            &[],
            "refused file name \"../evil.sh\"",
        ),
        (
            doc("/etc/passwd").into(),
            &["--whole"],
            "refused file name \"/etc/passwd\"",
        ),
        (
            doc(".bashrc").into(),
            &[],
            "file names starting with '.' are not served",
        ),
        (doc("a\\\\b").into(), &[], "cannot contain '/' or '\\'"),
        (
            doc("a\\u0000b").into(),
            &[],
            "cannot contain control characters",
        ),
        (
            b"{\"filename\": ".to_vec(),
            &[],
            "the transfer was cut short",
        ),
        (
            br#"{"filename": "a", "filedata": "aGk"#.to_vec(),
            &[],
            "cut short",
        ),
        (b"<html>".to_vec(), &[], "invalid document at byte 0"),
        (
            b"<html>".to_vec(),
            &["--whole"],
            "invalid document at byte 0",
        ),
        (
            br#"{"filename": "a", "filedata": "a*k="}"#.to_vec(),
            &[],
            "not valid base64",
        ),
        (b"".to_vec(), &[], "cut short"),
    ];
    for (reply, flags, why) in cases {
        let (addr, thread) = one_shot_server(reply.clone());
        let mut args = vec!["--dir", d];
        args.extend_from_slice(flags);
        let stderr = failed(&file_client(addr, &args));
        thread.join().expect("server thread");
        assert!(
            stderr.contains(why),
            "{:?}: {stderr} should say {why:?}",
            String::from_utf8_lossy(&reply)
        );
        assert!(entries(&down).is_empty(), "{why}: nothing written");
        assert_eq!(
            entries(parent.path()),
            ["down"],
            "{why}: nothing written outside"
        );
    }

    // A get whose body is cut short, or does not match its checksum.
    let header = |size: usize, sha: &str| {
        format!(
            "{{\"status\":\"ok\",\"filename\":\"f.bin\",\"size\":{size},\"sha256\":\"{sha}\",\"encoding\":\"raw\"}}\n"
        )
    };
    for (reply, why) in [
        (
            [header(10, &sha256_hex(b"0123456789")).as_bytes(), b"01234"].concat(),
            "expected 10 bytes, received 5",
        ),
        (
            [
                header(10, &sha256_hex(b"0123456789")).as_bytes(),
                b"0123456780",
            ]
            .concat(),
            "sha256 mismatch",
        ),
        (
            [header(3, &sha256_hex(b"abc")).as_bytes(), b"abcd"].concat(),
            "more than the announced 3 bytes",
        ),
        (
            header(1, &sha256_hex(b"a"))
                .replace("f.bin", "../f.bin")
                .into_bytes(),
            "bad file name",
        ),
        (b"not json\n".to_vec(), "bad reply: malformed"),
    ] {
        let (addr, thread) = one_shot_server(reply);
        let stderr = failed(&file_client(
            addr,
            &["--dir", d, "--encoding", "raw", "get", "f.bin"],
        ));
        thread.join().expect("server thread");
        assert!(stderr.contains(why), "{stderr} should say {why:?}");
        assert!(entries(&down).is_empty(), "{why}: nothing written");
    }

    // To standard output the bytes have gone out before the check: it can only fail the
    // run. `--no-verify` skips the digest but never the size.
    let mismatch = [
        header(10, &sha256_hex(b"0123456789")).as_bytes(),
        b"0123456780",
    ]
    .concat();
    let fetch = |reply: Vec<u8>, args: &[&str]| {
        let (addr, thread) = one_shot_server(reply);
        let out = file_client(addr, args);
        thread.join().expect("server thread");
        out
    };
    let out = fetch(
        mismatch.clone(),
        &["--encoding", "raw", "--stdout", "get", "f.bin"],
    );
    assert_eq!(out.stdout, b"0123456780");
    assert!(failed(&out).contains("sha256 mismatch"));
    let unchecked = [
        "--dir",
        d,
        "--encoding",
        "raw",
        "--no-verify",
        "get",
        "f.bin",
    ];
    let out = fetch(mismatch, &unchecked);
    assert!(succeeded(&out).contains("sha256 not (--no-verify)"));
    let _ = std::fs::remove_file(down.join("f.bin"));
    let short = [header(10, &sha256_hex(b"0123456789")).as_bytes(), b"01234"].concat();
    let out = fetch(short, &unchecked);
    assert!(failed(&out).contains("expected 10 bytes, received 5"));
    assert!(entries(&down).is_empty(), "a short body is never saved");
}

#[test]
fn request_mode_gets_puts_and_lists_raw_and_base64() {
    let served = tempfile::tempdir().expect("temp dir");
    let server = file_server(&["--dir", served.path().to_str().expect("utf-8")]);
    let addr = server.addr("file");
    let local = tempfile::tempdir().expect("temp dir");
    let data = pseudo_random((2 << 20) + 1, 4);
    let src = local.path().join("src.bin");
    std::fs::write(&src, &data).expect("write");
    let s = src.to_str().expect("utf-8");

    let out = succeeded(&file_client(addr, &["put", s, "--as", "b64.bin"]));
    assert!(out.starts_with("stored b64.bin"), "{out}");
    succeeded(&file_client(
        addr,
        &["--encoding", "raw", "put", s, "--as", "raw.bin"],
    ));
    std::fs::write(local.path().join("empty"), b"").expect("write");
    let empty = local.path().join("empty");
    succeeded(&file_client(
        addr,
        &["--encoding", "raw", "put", empty.to_str().expect("utf-8")],
    ));
    assert!(std::fs::read(served.path().join("b64.bin")).expect("stored") == data);
    assert!(std::fs::read(served.path().join("raw.bin")).expect("stored") == data);
    assert_eq!(entries(served.path()), ["b64.bin", "empty", "raw.bin"]);

    let listing = succeeded(&file_client(addr, &["list"]));
    let n = data.len();
    assert_eq!(listing, format!("{n}\tb64.bin\n0\tempty\n{n}\traw.bin\n"));

    let down = tempfile::tempdir().expect("temp dir");
    let d = down.path().to_str().expect("utf-8");
    for (name, encoding) in [
        ("b64.bin", "raw"),
        ("raw.bin", "base64"),
        ("empty", "raw"),
        ("empty", "base64"),
    ] {
        let out = succeeded(&file_client(
            addr,
            &["--dir", d, "--force", "--encoding", encoding, "get", name],
        ));
        assert!(out.contains("size and sha256 verified"), "{out}");
        let expected: &[u8] = if name == "empty" { b"" } else { &data };
        assert!(std::fs::read(down.path().join(name)).expect("saved") == expected);
    }

    // `--stdout`: the file on standard output, the summary on standard error, nothing
    // saved; `--no-verify` says the digest was not checked.
    for (encoding, check) in [
        ("raw", true),
        ("base64", true),
        ("raw", false),
        ("base64", false),
    ] {
        let mut args = vec![
            "--dir",
            d,
            "--encoding",
            encoding,
            "--stdout",
            "get",
            "b64.bin",
        ];
        if !check {
            args.push("--no-verify");
        }
        let before = entries(down.path());
        let out = file_client(addr, &args);
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stdout == data,
            "{encoding}: the file, and only the file, on stdout"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let said = match check {
            true => "size and sha256 verified",
            false => "size checked, sha256 not (--no-verify)",
        };
        assert!(
            stderr.contains("wrote b64.bin to standard output") && stderr.contains(said),
            "{stderr}"
        );
        assert_eq!(entries(down.path()), before, "nothing saved");
    }

    // The wire, as `nc` shows it: a header line, then the raw bytes, then close.
    let got = raw_request(
        addr,
        "{\"op\":\"get\",\"filename\":\"empty\",\"encoding\":\"raw\"}\n",
        b"",
    );
    assert_eq!(
        got,
        format!(
            "{{\"status\":\"ok\",\"filename\":\"empty\",\"size\":0,\"sha256\":\"{}\",\"encoding\":\"raw\"}}\n",
            sha256_hex(b"")
        )
    );
    let got = raw_request(addr, "{\"op\":\"get\",\"filename\":\"empty\"}", b"");
    assert!(
        got.ends_with("\"encoding\":\"base64\"}\n{\"filename\": \"empty\", \"filedata\": \"\"}"),
        "the lesson's document after the header: {got}"
    );
    let log = stop(server);
    assert!(log.contains("stored raw.bin"), "{log}");
    assert!(log.contains("sent b64.bin"), "{log}");
}

#[test]
fn every_bad_upload_is_refused_with_a_clear_message_on_both_sides_and_nothing_written() {
    let served = tempfile::tempdir().expect("temp dir");
    std::fs::write(served.path().join("taken.txt"), b"keep me").expect("write");
    let server = file_server(&[
        "--dir",
        served.path().to_str().expect("utf-8"),
        "--max-upload",
        "1000",
    ]);
    let addr = server.addr("file");
    let data = b"0123456789";
    let good = put_line("new.txt", data, "raw");
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            "{\"op\":\"get\",\"filename\":\"../etc/passwd\"}\n".into(),
            vec![],
            "bad file name: a file name cannot contain '/' or '\\\\'",
        ),
        (
            "{\"op\":\"get\",\"filename\":\"/etc/passwd\"}\n".into(),
            vec![],
            "cannot contain '/'",
        ),
        (
            put_line("..", data, "raw"),
            data.to_vec(),
            "bad file name: '.' and '..' are not file names",
        ),
        (
            put_line(".profile", data, "raw"),
            data.to_vec(),
            "bad file name: file names starting with '.' are not served",
        ),
        (
            put_line("a\\\\b", data, "raw"),
            data.to_vec(),
            "bad file name: a file name cannot contain '/' or '\\\\'",
        ),
        (
            put_line("a\\u0000b", data, "raw"),
            data.to_vec(),
            "bad file name: a file name cannot contain control characters",
        ),
        (
            "{\"op\":\"put\",\"filename\":\"x\"\n".into(),
            vec![],
            "malformed request",
        ),
        ("hello\n".into(), vec![], "malformed request"),
        (
            "{\"op\":\"get\",\"filename\":\"nope.txt\"}\n".into(),
            vec![],
            "no such file: nope.txt",
        ),
        (
            put_line("taken.txt", data, "raw"),
            data.to_vec(),
            "taken.txt already exists",
        ),
        (
            put_line("big.bin", &[0; 1001], "raw"),
            vec![0; 1001],
            "big.bin is too large: 1001 bytes, the upload limit is 1000",
        ),
        (
            good.clone(),
            data[..5].to_vec(),
            "expected 10 bytes, received 5: the transfer was cut short",
        ),
        (
            good.clone(),
            b"01234567890".to_vec(),
            "more than the announced 10 bytes arrived",
        ),
        (good.clone(), b"0123456780".to_vec(), "sha256 mismatch"),
        (
            put_line("new.txt", data, "base64"),
            br#"{"filename": "new.txt", "filedata": "MDEy*"}"#.to_vec(),
            "filedata is not valid base64",
        ),
        (
            put_line("new.txt", data, "base64"),
            br#"{"filename": "new.txt""#.to_vec(),
            "the document ended early",
        ),
        (
            put_line("new.txt", data, "base64"),
            b"[1]".to_vec(),
            "invalid document at byte 0",
        ),
        (
            put_line("new.txt", data, "base64"),
            br#"{"filename": "other.txt", "filedata": "MDEyMzQ1Njc4OQ=="}"#.to_vec(),
            "the document names \\\"other.txt\\\"",
        ),
    ];
    for (request, body, why) in &cases {
        let reply = raw_request(addr, request, body);
        assert!(
            reply.starts_with("{\"status\":\"error\",\"message\":\"")
                && reply.contains(why)
                && reply.ends_with("}\n"),
            "{request:?}: {reply:?} should say {why:?}"
        );
        assert_eq!(
            entries(served.path()),
            ["taken.txt"],
            "{why}: nothing written"
        );
    }
    assert_eq!(
        std::fs::read(served.path().join("taken.txt")).expect("kept"),
        b"keep me"
    );

    // A transfer cut off at every byte of a small upload leaves nothing either.
    let body = pseudo_random(300, 5);
    let line = put_line("cut.bin", &body, "raw");
    for cut in (0..body.len()).step_by(37) {
        let reply = raw_request(addr, &line, &body[..cut]);
        assert!(reply.contains("the transfer was cut short"), "{reply}");
    }
    // A put line without LF, then EOF: the body can never come, and the server says so.
    let reply = raw_request(addr, line.trim_end(), b"");
    assert!(reply.contains("expected 300 bytes, received 0"), "{reply}");
    assert_eq!(entries(served.path()), ["taken.txt"]);
    // Our client says what the server said.
    let local = tempfile::tempdir().expect("temp dir");
    let taken = local.path().join("taken.txt");
    std::fs::write(&taken, b"new").expect("write");
    let stderr = failed(&file_client(addr, &["put", taken.to_str().expect("utf-8")]));
    assert!(
        stderr.contains("server: taken.txt already exists"),
        "{stderr}"
    );

    // A disk error: the served directory is gone.
    std::fs::remove_dir_all(served.path()).expect("rm");
    let reply = raw_request(addr, &good, data);
    assert!(
        reply.contains("disk error: No such file or directory"),
        "{reply}"
    );

    let log = stop(server);
    for (_, _, why) in &cases {
        let why = why.replace("\\\\", "\\").replace("\\\"", "\"");
        assert!(
            log.contains(&why),
            "the server's log says {why:?} too:\n{log}"
        );
    }
    assert!(log.contains("disk error"), "{log}");
}

#[test]
fn uploads_replace_existing_files_only_with_force() {
    let served = tempfile::tempdir().expect("temp dir");
    std::fs::write(served.path().join("f.txt"), b"old").expect("write");
    let server = file_server(&["--dir", served.path().to_str().expect("utf-8"), "--force"]);
    let reply = raw_request(
        server.addr("file"),
        &put_line("f.txt", b"new!", "raw"),
        b"new!",
    );
    assert_eq!(
        reply,
        "{\"status\":\"ok\",\"filename\":\"f.txt\",\"size\":4}\n"
    );
    assert_eq!(
        std::fs::read(served.path().join("f.txt")).expect("read"),
        b"new!"
    );
    assert_eq!(entries(served.path()), ["f.txt"]);
}

#[test]
fn a_download_the_client_abandons_leaves_the_server_serving() {
    let served = tempfile::tempdir().expect("temp dir");
    std::fs::write(served.path().join("big.bin"), pseudo_random(8 << 20, 6)).expect("write");
    let server = file_server(&["--dir", served.path().to_str().expect("utf-8")]);
    let addr = server.addr("file");
    let mut c = connect(addr);
    c.write_all(b"{\"op\":\"get\",\"filename\":\"big.bin\",\"encoding\":\"raw\"}\n")
        .expect("send");
    let mut some = [0u8; 1000];
    c.read_exact(&mut some).expect("the header and some bytes");
    drop(c); // reset mid-transfer
    let listing = raw_request(addr, "{\"op\":\"list\"}\n", b"");
    assert_eq!(
        listing,
        format!(
            "{{\"status\":\"ok\",\"files\":[{{\"name\":\"big.bin\",\"size\":{}}}]}}\n",
            8 << 20
        )
    );
    let log = stop(server);
    assert!(log.contains("sending big.bin stopped after"), "{log}");
}

#[test]
fn the_netloop_binary_serves_files_from_a_safe_directory_it_names() {
    let served = tempfile::tempdir().expect("temp dir");
    std::fs::write(served.path().join("hello.txt"), b"hello\n").expect("write");
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports").arg("--file-dir").arg(served.path());
    let server = spawn_server(cmd, 7);
    let addr = server.addr("file");
    let reply = raw_request(
        addr,
        "{\"op\":\"get\",\"filename\":\"hello.txt\",\"encoding\":\"raw\"}\n",
        b"",
    );
    assert!(reply.ends_with("\"encoding\":\"raw\"}\nhello\n"), "{reply}");
    let log = stop(server);
    let canonical = served.path().canonicalize().expect("canonical");
    assert!(
        log.contains(&format!(
            "file: request mode, serving and storing uploads in {}",
            canonical.display()
        )),
        "{log}"
    );

    // Without --file-dir: a private netloop-files directory under the temporary directory.
    let tmp = tempfile::tempdir().expect("temp dir");
    let netloop_default = || {
        let mut cmd = Command::new(binary("netloop"));
        cmd.arg("--any-ports").env("TMPDIR", tmp.path());
        cmd
    };
    let server = spawn_server(netloop_default(), 7);
    // An answer means the loop runs (and handles SIGTERM).
    let reply = raw_request(server.addr("file"), "{\"op\":\"list\"}\n", b"");
    assert_eq!(reply, "{\"status\":\"ok\",\"files\":[]}\n");
    let log = stop(server);
    let default = tmp.path().join("netloop-files");
    assert!(log.contains(&default.display().to_string()), "{log}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&default)
        .expect("created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "private to its user");

    // A netloop-files someone else planted in the shared temporary directory is refused.
    std::fs::remove_dir(&default).expect("rm");
    let elsewhere = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::symlink(elsewhere.path(), &default).expect("symlink");
    let out = netloop_default().output().expect("run netloop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("netloop-files is not a directory; refusing to use it"),
        "{stderr}"
    );
    std::fs::remove_file(&default).expect("rm");
    std::fs::create_dir(&default).expect("mkdir");
    std::fs::set_permissions(&default, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = netloop_default().output().expect("run netloop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is writable by other users"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing announced");
}

#[test]
fn the_client_reports_a_refused_connection_and_an_unwritable_directory() {
    // A port that is bound but not listening refuses connections, and stays ours while
    // the test runs (a freed port could be taken by another test's server meanwhile).
    let bound =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    bound.bind(&any_port().into()).expect("bind");
    let addr = bound
        .local_addr()
        .expect("addr")
        .as_socket()
        .expect("an IP address");
    let stderr = failed(&file_client(addr, &["list"]));
    assert!(stderr.contains("connect failed"), "{stderr}");

    let (addr, thread) = one_shot_server(b"{}".to_vec());
    let stderr = failed(&file_client(addr, &["--dir", "/nonexistent/netloop"]));
    let _ = thread.join();
    assert!(
        stderr.contains("cannot write in /nonexistent/netloop"),
        "{stderr}"
    );
}

#[test]
fn a_transfer_under_way_finishes_when_the_server_is_told_to_stop() {
    let served = tempfile::tempdir().expect("temp dir");
    let data = pseudo_random(8 << 20, 8);
    std::fs::write(served.path().join("big.bin"), &data).expect("write");
    let server = file_server(&["--dir", served.path().to_str().expect("utf-8")]);
    let mut c = connect(server.addr("file"));
    c.write_all(b"{\"op\":\"get\",\"filename\":\"big.bin\",\"encoding\":\"raw\"}\n")
        .expect("send");
    let mut first = [0u8; 100];
    c.read_exact(&mut first).expect("the transfer has begun");
    let log = {
        // SIGTERM while most of the file is still to come; keep reading meanwhile.
        server.signal(Signal::Term);
        let rest = read_to_end(&mut c);
        let all = [&first[..], &rest].concat();
        let body = &all[all.iter().position(|&b| b == b'\n').expect("header") + 1..];
        assert!(
            body == data,
            "the whole file arrived: {} of {} bytes",
            body.len(),
            data.len()
        );
        stop(server)
    };
    assert!(log.contains("sent big.bin"), "{log}");
}

#!/usr/bin/env python3
"""Writes fuzz/corpus/<target>/ seeds from the protocols' own test fixtures.

Run from anywhere: `python3 fuzz/seeds.py`. Sources: the SMTP dialogs of
protocols/src/smtp/server.transcript (each dialog's client bytes, with its flags), the chat
lines of protocols/src/chat/session.transcript, the byte-string literals of the HTTP tests
(protocols/src/http/tests.rs, client_tests.rs, body.rs), and the JSON of the file tests.
Every seed gets the prefix its target reads (a configuration byte, then the split sizes:
none, or one of 1 byte = every byte its own read), so the fuzzer starts from whole and
byte-by-byte feeds of real dialogs. File names are the SHA-1 of the content, as libFuzzer
names its own finds.
"""
import hashlib
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "protocols", "src")


def read(*path):
    with open(os.path.join(SRC, *path), encoding="utf-8") as f:
        return f.read()


def put(target, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def both(target, config, payload):
    """Whole, and one byte per read."""
    put(target, bytes([config, 0]) + payload)
    put(target, bytes([config, 1, 0]) + payload)


def rust_bytes(lit):
    """The bytes of a Rust b"..." literal's body."""
    out = bytearray()
    i = 0
    while i < len(lit):
        c = lit[i]
        if c == "\\":
            n = lit[i + 1]
            if n == "\n":  # line continuation: skip the newline and leading whitespace
                i += 2
                while i < len(lit) and lit[i] in " \t":
                    i += 1
                continue
            simple = {"r": 13, "n": 10, "t": 9, "\\": 92, '"': 34, "'": 39, "0": 0}
            if n in simple:
                out.append(simple[n])
                i += 2
            elif n == "x":
                out.append(int(lit[i + 2 : i + 4], 16))
                i += 4
            else:
                out.extend(("\\" + n).encode())
                i += 2
        else:
            out.extend(c.encode())
            i += 1
    return bytes(out)


def byte_literals(text):
    plain = [rust_bytes(m) for m in re.findall(r'b"((?:[^"\\]|\\.|\\\n)*)"', text, re.S)]
    raw = [m.encode() for m in re.findall(r'br#"(.*?)"#', text, re.S)]
    return plain + raw


def smtp():
    flags_bits = {"starttls": 1, "auth": 2, "plain-auth": 4, "tls": 8}
    dialogs = read("smtp", "server.transcript").split("\n== ")[1:]
    for dialog in dialogs:
        flags, client = 0, bytearray()
        for line in dialog.splitlines():
            if line.startswith("@: "):
                for f in line[3:].replace(",", " ").split():
                    flags |= flags_bits.get(f, 0)
                    if "=" in f:
                        flags |= 16  # small limits
            elif line.startswith("C:"):
                client += line[3:].encode() + b"\r\n"
            elif line.startswith("R: "):
                client += unescape(line[3:])
        both("smtp_server", flags, bytes(client))
    # The client's side: a server's replies, for each configuration.
    server = (
        b"220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
        b"250 AUTH PLAIN LOGIN\r\n220 go\r\n250-mx.test\r\n250 AUTH PLAIN\r\n235 ok\r\n"
        b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n250 ok\r\n250 ok\r\n"
        b"550 no\r\n354 go\r\n250 queued\r\n221 bye\r\n"
    )
    plain = (
        b"220 mx.test ESMTP\r\n250-mx.test\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n"
        b"250 ok\r\n354 go\r\n250 queued\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
        b"451 later\r\n221 bye\r\n"
    )
    for flags in (0, 1, 2, 3, 8):
        both("smtp_client", flags, server)
        both("smtp_client", flags, plain)


def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            out.append({"r": 13, "n": 10, "\\": 92}[text[i + 1]])
            i += 2
        elif c == "{":
            j = text.index("}", i)
            n, ch = text[i + 1 : j].split("*")
            out.extend(ch.encode() * int(n))
            i = j + 1
        else:
            out.extend(c.encode())
            i += 1
    return bytes(out)


def chat():
    lines = [l.split(": ", 1)[1] for l in read("chat", "session.transcript").splitlines()
             if re.match(r"C\d+: ", l)]
    text = "\n".join(lines).encode() + b"\n"
    both("chat_framer", 0xFF, text)
    both("chat_framer", 16, text.replace(b"\n", b"\r\n"))
    both("chat_framer", 8, b"short\nthis line is too long\r\nok\r\ntail")


def http():
    server, client = [], []
    for name in ("tests.rs", "body.rs"):
        for b in byte_literals(read("http", name)):
            if re.match(rb"^(GET|POST|PUT|HEAD|DELETE|OPTIONS|\r\n)", b):
                server.append(b)
    for b in byte_literals(read("http", "client_tests.rs")):
        if b.startswith(b"HTTP/"):
            client.append(b)
    for b in server:
        both("http_server", 0, b)
        both("http_server", 0x55, b)
    for b in client:
        both("http_client", 0, b)
        both("http_client", 3, b + b + b + b)
    for b in server:
        if b"chunked" in b.lower():
            body = b.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in b else b""
            both("chunked", 0, body)
    both("chunked", 0, b"3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n")
    both("chunked", 1, b"\x05hello\x43abc\x80world\xc2xy")
    for p in ("/a%20b/%2e%2e/%zz?x=1", "a=1&b=two+words&c=%C3%A9&&d", "\0k\x01v\0\x01only"):
        put("url", b"\x00" + p.encode())
        put("url", b"\x01" + p.encode())


def file():
    for name in ("line_reader.rs", "request.rs", "decoder.rs", "whole.rs"):
        for b in byte_literals(read("file", name)):
            if b.lstrip().startswith(b"{"):
                if b'"op"' in b:
                    put("file_header", b"\x00\x00" + b + b"\n")
                    put("file_header", b"\x00\x01\x00" + b + b"\r\nbody")
                elif b'"status"' in b:
                    put("file_header", b"\x01\x00" + b + b"\n")
                if b'"file' in b:
                    put("file_decoder", b"\x00" + b)
                    put("file_decoder", b"\x01\x00" + b)
    put("file_header", b'\x00\x00{"op":"put","filename":"up.txt","size":6,"sha256":"'
        + b"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        + b'","encoding":"raw"}\nhello\n')
    put("file_header", b'\x01\x00{"status":"ok","filename":"hello.txt","size":6,"sha256":"'
        + b"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        + b'","encoding":"base64"}\n')
    put("file_decoder", b'\x00{"filename": "hi.txt", "filedata": "aGkK"}')
    put("file_decoder", b'\x01\x00{"filedata": "aGVs\\nbG8K", "x": [1], "filename": "h\\u00e9"}')


if __name__ == "__main__":
    smtp()
    chat()
    http()
    file()
    for t in sorted(os.listdir(os.path.join(HERE, "corpus"))):
        print(t, len(os.listdir(os.path.join(HERE, "corpus", t))))

#!/usr/bin/env bash
# Regenerates the trace excerpts and the /loop snapshots in docs/*.md.
#
# Run:  bash scripts/walkthrough-traces.sh          (from anywhere; about 20 s after the build)
#
# For each walk-through it starts the `netloop` binary afresh, as a reader would:
#
#     RUST_LOG=netloop=trace netloop --any-ports --file-dir DIR --maildir DIR
#
# reads the ports from its start-up lines, pokes one service with what a reader would use
# (the example clients, curl, python3's socket and smtplib: what .ci/run installs; nc is
# not installed, so python3 stands in for it), and keeps the trace lines the server wrote
# meanwhile. Then it holds a connection open in a state worth seeing and asks the http
# service for `GET /loop/state`. Both go into the docs between marker comments:
#
#     <!-- trace:NAME:begin --> ... <!-- trace:NAME:end -->
#     <!-- loop:NAME:begin -->  ... <!-- loop:NAME:end -->
#
# replacing what was there. What changes from run to run is normalised so that a second
# run leaves the docs as they were wherever the loop behaved the same: env_logger's
# `[time LEVEL target] ` prefix is dropped, ports become PORT, durations become `…` (but
# `0ns` and `none`, which say something), ticks are numbered from 1 in each excerpt, the
# temporary directory becomes $TMP, a /loop row's age and idle times are left out, and so
# is the size of the SMTP 250 that carries a queue id made of the clock and the PID. What
# is left to vary is the loop's own behaviour: whether a peer's FIN lands in one tick or
# the next (docs/README.md says where).
#
# Needs: cargo, python3, curl. Exits non-zero, naming the step, if anything goes wrong.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building the binaries a reader runs" >&2
cargo build --quiet --bin netloop --example time_client --example udp_echo_client \
    --example file_client --example http_client

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

exec python3 - "$target_dir/debug" <<'PY'
import atexit, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

BIN = Path(sys.argv[1])
DOCS = Path("docs")
PATIENCE = 10.0  # seconds for anything that should happen at once

def fail(msg):
    sys.exit(f"walkthrough-traces: {msg}")

RUNNING = []  # processes to kill if a step fails half-way

@atexit.register
def kill_leftovers():
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

# ---------------------------------------------------------------- normalising the trace

PREFIX = re.compile(r"^\[\d{4}-\d\d-\d\dT\S+ +[A-Z]+ +[^\]]*\] ?")
ADDR = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3}):\d+\b")
DURATION = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:ns|µs|ms|s)\b")
TICK = re.compile(r"^tick \d+:")

def normalise(line, tmp):
    line = line.replace(str(tmp), "$TMP")
    line = ADDR.sub(r"\1:PORT", line)
    return DURATION.sub(lambda m: m.group(0) if m.group(0) == "0ns" else "…", line)

def excerpt(raw, tmp):
    """The log lines of a step, without env_logger's prefix, normalised, ticks from 1."""
    out, tick = [], 0
    for line in raw:
        m = PREFIX.match(line)
        if not m:
            continue
        line = normalise(line[m.end():].rstrip("\n"), tmp)
        if TICK.match(line):
            tick += 1
            line = TICK.sub(f"tick {tick}:", line)
        out.append(line)
    return out

# ---------------------------------------------------------------- one netloop process

class Netloop:
    """The netloop binary with the trace on, every service on a free port."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="netloop-walkthrough-"))
        self.log_path = self.tmp / "trace.log"
        self.log = open(self.log_path, "w")
        env = dict(os.environ, RUST_LOG="netloop=trace")
        self.proc = subprocess.Popen(
            [BIN / "netloop", "--any-ports", "--file-dir", self.tmp / "files",
             "--maildir", self.tmp / "mail"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
            env=env, text=True)
        RUNNING.append(self.proc)
        self.addr = {}
        while "http" not in self.addr:
            line = self.proc.stdout.readline()
            if not line:
                fail(f"netloop exited before listening: see {self.log_path}")
            service, addr = line.split()[0], line.split()[-1]
            host, port = addr.rsplit(":", 1)
            self.addr[service] = (host, int(port))
        self.quiet()

    def lines(self):
        with open(self.log_path, encoding="utf-8") as f:
            return f.readlines()

    def quiet(self, still=0.25):
        """Waits until the trace has not grown for `still` seconds."""
        deadline = time.monotonic() + PATIENCE
        size = -1
        while time.monotonic() < deadline:
            now = self.log_path.stat().st_size
            if now == size:
                return
            size = now
            time.sleep(still)
        fail("the trace never went quiet")

    def mark(self):
        self.quiet()
        return len(self.lines())

    def wait_for(self, pattern, since, count=1):
        """Waits until `count` lines after line `since` match `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if sum(1 for l in self.lines()[since:] if rx.search(l)) >= count:
                return
            time.sleep(0.02)
        fail(f"no trace line matching {pattern!r} (see {self.log_path})")

    def since(self, mark):
        self.quiet()
        return excerpt(self.lines()[mark:], self.tmp)

    def url(self, path):
        host, port = self.addr["http"]
        return f"http://{host}:{port}{path}"

    def loop_state(self):
        out = run(["curl", "-sS", "--max-time", "5", self.url("/loop/state")])
        return json.loads(out)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(PATIENCE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("netloop did not stop on SIGINT")
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

def run(argv, stdin=None, env=None):
    """Runs a client to completion; its stdout, or the step fails."""
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    done = subprocess.run([str(a) for a in argv], capture_output=True, env=env,
                          timeout=PATIENCE, **feed)
    if done.returncode != 0:
        fail(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")

def connect(addr):
    s = socket.create_connection(addr, timeout=PATIENCE)
    return s

def close_all(n, socks):
    """Closes each socket once the server has let go of the one before (and of the
    /loop/state request), so the slab's free keys come back in the same order every run."""
    for s in socks:
        mark = n.mark()
        s.close()
        n.wait_for(r"closed \(", mark)
    n.quiet()

def recv_until(s, marker):
    """Reads until `marker` has arrived (what a person watching nc waits for)."""
    got = b""
    while marker not in got:
        chunk = s.recv(65536)
        if not chunk:
            fail(f"closed before {marker!r} arrived; got {got!r}")
        got += chunk
    return got

# ---------------------------------------------------------------- what goes into the docs

ROW_KEYS = ["token", "service", "kind", "peer", "state", "life", "bytes_in", "bytes_out",
            "queued"]

def loop_block(snap, services, note, vary=()):
    """The rows of `services`, the timers and (for UDP) the datagram counters."""
    rows = []
    for r in snap["connections"]:
        if r["service"] not in services:
            continue
        row = {k: r[k] for k in ROW_KEYS}
        if row["peer"]:
            row["peer"] = ADDR.sub(r"\1:PORT", row["peer"])
        for state, keys in vary:
            if row["state"] == state:
                for k in keys:
                    row[k] = "…"
        rows.append("  " + json.dumps(row, ensure_ascii=False))
    text = [f"$ curl -s http://127.0.0.1:PORT/loop/state      # {note}",
            '"connections": [  # rows of ' + ", ".join(services) + " only; age_ms, idle_ms left out",
            ",\n".join(rows), "],",
            '"timers": ' + json.dumps(snap["timers"])]
    if "udp-echo" in services:
        stats = {k: snap["stats"][k] for k in ("datagrams_in", "datagrams_out")}
        text.append('"stats": ' + json.dumps(stats) + "   # two of the reactor's counters")
    return text

def trace_block(commands, lines):
    return ["$ " + c for c in commands] + [""] + lines

BLOCKS = {}  # (doc, kind, name) -> lines

def put(doc, kind, name, lines):
    BLOCKS[(doc, kind, name)] = lines

# ---------------------------------------------------------------- the walk-throughs

def time_service():
    n = Netloop()
    t = n.addr["time"]
    mark = n.mark()
    run([BIN / "examples/time_client", "--addr", "%s:%d" % t])
    n.wait_for(r"time#\S+ closed \(", mark)
    put("01-time.md", "trace", "time",
        trace_block(["time_client --addr 127.0.0.1:PORT"], n.since(mark)))
    # The connection lives on only while the client has not closed its end: the server
    # has sent its FIN and lingers, waiting for the client's.
    mark = n.mark()
    s = connect(t)
    while s.recv(1024):
        pass
    n.wait_for(r"time#\S+ state Closing -> Lingering", mark)
    snap = n.loop_state()
    s.close()
    put("01-time.md", "loop", "time",
        loop_block(snap, ["time"], "a client read the time and has not closed yet"))
    n.stop()

def udp_echo():
    n = Netloop()
    u = "%s:%d" % n.addr["udp-echo"]
    mark = n.mark()
    run([BIN / "examples/udp_echo_client", "--addr", u, "--message", "hello"])
    n.wait_for(r"udp-echo#\S+ sent 1 datagram", mark)
    n.quiet()
    run([BIN / "examples/udp_echo_client", "--addr", u], stdin="привет\nbye\n".encode())
    n.wait_for(r"udp-echo#\S+ sent 1 datagram", mark, count=3)
    put("02-udp-echo.md", "trace", "udp-echo",
        trace_block(["udp_echo_client --addr 127.0.0.1:PORT --message hello",
                     "printf 'привет\\nbye\\n' | udp_echo_client --addr 127.0.0.1:PORT"],
                    n.since(mark)))
    snap = n.loop_state()
    put("02-udp-echo.md", "loop", "udp-echo",
        loop_block(snap, ["udp-echo"], "after the three datagrams"))
    n.stop()

def file_service():
    n = Netloop()
    f = "%s:%d" % n.addr["file"]
    (n.tmp / "files" / "hello.txt").write_text("Привет из netloop!\n", encoding="utf-8")
    (n.tmp / "got").mkdir()
    mark = n.mark()
    run([BIN / "examples/file_client", "--addr", f, "--dir", n.tmp / "got", "get", "hello.txt"])
    n.wait_for(r"file#\S+ closed \(", mark)
    put("03-file-transfer.md", "trace", "file",
        trace_block(["file_client --addr 127.0.0.1:PORT get hello.txt"], n.since(mark)))
    if (n.tmp / "got" / "hello.txt").read_bytes() != (n.tmp / "files" / "hello.txt").read_bytes():
        fail("file_client saved something else")
    # A client that has typed half its request line, as a slow `nc` user would.
    mark = n.mark()
    s = connect(n.addr["file"])
    s.sendall(b'{"op":"get",')
    n.wait_for(r"file#\S+ read 12 B", mark)
    snap = n.loop_state()
    s.close()
    put("03-file-transfer.md", "loop", "file",
        loop_block(snap, ["file"], 'a client sent {"op":"get", and waits'))
    n.stop()

def chat():
    n = Netloop()
    c = n.addr["chat"]
    welcome = b"press Enter.\n"
    bob = connect(c)
    recv_until(bob, welcome)
    bob.sendall(b"bob\n")
    recv_until(bob, b"*** bob joined\n")
    mark = n.mark()
    # alice, as `nc 127.0.0.1 PORT` with a person typing: each line once the last answer came.
    alice = connect(c)
    recv_until(alice, welcome)
    n.quiet()
    alice.sendall(b"alice\n")
    recv_until(alice, b"*** alice joined\n")
    recv_until(bob, b"*** alice joined\n")
    n.quiet()
    alice.sendall("привет, bob\n".encode())
    recv_until(alice, "<alice> привет, bob\n".encode())
    recv_until(bob, "<alice> привет, bob\n".encode())
    n.quiet()
    alice.shutdown(socket.SHUT_WR)  # Ctrl-D in nc
    recv_until(bob, b"*** alice left\n")
    while alice.recv(1024):
        pass
    alice.close()
    n.wait_for(r"chat#\S+ closed \(", mark)
    put("04-chat.md", "trace", "chat",
        trace_block(["nc 127.0.0.1 PORT     # alice types: alice, привет, bob, then Ctrl-D"],
                    n.since(mark)))
    carol = connect(c)
    recv_until(carol, welcome)
    n.quiet()
    snap = n.loop_state()
    close_all(n, [carol, bob])
    put("04-chat.md", "loop", "chat",
        loop_block(snap, ["chat"], "bob chatting, carol connected but not named yet"))
    n.stop()

def http_server():
    n = Netloop()
    mark = n.mark()
    run(["curl", "-sS", n.url("/hello")])
    n.wait_for(r"http#\S+ closed \(", mark)
    put("05-http-server.md", "trace", "http",
        trace_block(["curl http://127.0.0.1:PORT/hello"], n.since(mark)))
    # One connection kept alive after its answer, one halfway through its head.
    idle = connect(n.addr["http"])
    idle.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    recv_until(idle, b"Hello, world!")
    mark = n.mark()
    half = connect(n.addr["http"])
    half.sendall(b"GET /book HTTP/1.1\r\nHost: localhost\r\n")
    n.wait_for(r"http#\S+ read \d+ B", mark)
    n.quiet()
    snap = n.loop_state()
    close_all(n, [idle, half])
    put("05-http-server.md", "loop", "http",
        loop_block(snap, ["http"], "one client kept alive, one halfway through its head"))
    n.stop()

def pipelined():
    """reactor.md: three requests in one send(): one read, three answers, one write."""
    n = Netloop()
    mark = n.mark()
    s = connect(n.addr["http"])
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2
              + b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    if got.count(b"Hello, world!") != 3:
        fail(f"three pipelined requests got {got!r}")
    # Our FIN comes a moment after the server's, so that it lands in a tick of its own
    # every time (a client that closes at once races the server's next tick).
    time.sleep(0.2)
    s.close()
    n.wait_for(r"http#\S+ closed \(", mark)
    put("reactor.md", "trace", "reactor",
        trace_block(["python3: three GET /hello in one send(), the last with Connection: close"],
                    n.since(mark)))
    n.stop()

def http_client():
    n = Netloop()
    env = dict(os.environ, RUST_LOG="netloop=trace")
    book = n.url("/book")
    done = subprocess.run([BIN / "examples/http_client", book], capture_output=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=PATIENCE)
    if done.returncode != 0 or b"Harry Potter" not in done.stdout:
        fail(f"http_client failed: {done.stderr.decode(errors='replace')}")
    lines = excerpt(done.stderr.decode().splitlines(), n.tmp)
    put("06-http-client.md", "trace", "http-client",
        trace_block(["RUST_LOG=netloop=trace http_client http://127.0.0.1:PORT/book   # or -v"],
                    lines))
    # A fetch that does not end: the client reading /loop/events, seen from the server.
    mark = n.mark()
    streaming = subprocess.Popen([BIN / "examples/http_client", n.url("/loop/events")],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    RUNNING.append(streaming)
    try:
        # The stream is fed four times a second, so the trace never goes quiet: wait for
        # its first bytes instead.
        n.wait_for(r"http#\S+ wrote \d+ B", mark)
        snap = n.loop_state()
    finally:
        streaming.terminate()
        streaming.wait(PATIENCE)
    put("06-http-client.md", "loop", "http-client",
        loop_block(snap, ["http"], "on the server, while http_client reads /loop/events",
                   vary=[("Streaming", ["bytes_out", "queued"])]))
    n.stop()

LESSON_14 = r'''
import sys
from smtplib import SMTP
from email.header import Header
from email.mime.text import MIMEText
from email.mime.multipart import MIMEMultipart

host, port, attachment = sys.argv[1], int(sys.argv[2]), sys.argv[3]
message = MIMEMultipart()
text_content = MIMEText('текст сообщения', 'plain', 'utf-8')
message['Subject'] = Header('Здравствуте!', 'utf-8')
message.attach(text_content)
with open(attachment, 'rb') as f:
    txt = MIMEText(f.read(), 'base64', 'utf-8')
    txt['Content-Type'] = 'text/plain'
    txt['Content-Disposition'] = 'attachment; filename=hello.txt'
    message.attach(txt)
smtper = SMTP(host, port, local_hostname='client.example')
sender = 'abcdefg@example.org'
receivers = ['uvwxyz@example.net']
smtper.sendmail(sender, receivers, message.as_string())
smtper.quit()
print('почта отправлена!')
'''

def smtp():
    n = Netloop()
    host, port = n.addr["smtp"]
    hello = n.tmp / "hello.txt"
    hello.write_text("Привет!\n", encoding="utf-8")
    mark = n.mark()
    out = run(["python3", "-c", LESSON_14, host, port, hello])
    if "почта отправлена" not in out:
        fail(f"the lesson's program 14 said {out!r}")
    n.wait_for(r"smtp#\S+ closed \(", mark)
    lines = n.since(mark)
    # The 250 carries the queue id (seconds, microseconds, PID): its size changes with
    # the clock, so it is written as `…`.
    for i, line in enumerate(lines[1:], 1):
        if lines[i - 1].strip().startswith("report for"):
            lines[i] = re.sub(r"wrote \d+ B", "wrote … B", line)
    put("07-smtp.md", "trace", "smtp",
        trace_block(["python3 14.py     # the lesson's program 14: host, port and files changed, no login"],
                    lines))
    if len(list((n.tmp / "mail" / "new").iterdir())) != 1:
        fail("the message is not in the Maildir's new/")
    # One client greeted, one halfway through its message.
    greeted = connect((host, port))
    recv_until(greeted, b"220 ")
    data = connect((host, port))
    recv_until(data, b"220 ")
    for line, answer in [(b"EHLO client.example\r\n", b"250 "),
                         (b"MAIL FROM:<ann@example.org>\r\n", b"250 "),
                         (b"RCPT TO:<bob@example.net>\r\n", b"250 "),
                         (b"DATA\r\n", b"354 ")]:
        data.sendall(line)
        recv_until(data, answer)
    data.sendall(b"Subject: half\r\n\r\nthe first line of a long letter\r\n")
    n.quiet()
    snap = n.loop_state()
    close_all(n, [greeted, data])
    put("07-smtp.md", "loop", "smtp",
        loop_block(snap, ["smtp"], "one client greeted, one in the middle of DATA"))
    n.stop()

# ---------------------------------------------------------------- writing the docs

def write_docs():
    by_doc = {}
    for (doc, kind, name), lines in BLOCKS.items():
        by_doc.setdefault(doc, []).append((kind, name, lines))
    for doc, blocks in sorted(by_doc.items()):
        path = DOCS / doc
        text = path.read_text(encoding="utf-8")
        for kind, name, lines in blocks:
            begin, end = f"<!-- {kind}:{name}:begin -->", f"<!-- {kind}:{name}:end -->"
            if text.count(begin) != 1 or text.count(end) != 1:
                fail(f"{path}: needs exactly one {begin} and one {end}")
            head, rest = text.split(begin)
            _, tail = rest.split(end)
            body = "\n".join(lines).rstrip("\n")
            text = f"{head}{begin}\n```text\n{body}\n```\n{end}{tail}"
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)

started = time.monotonic()
for walk in [time_service, udp_echo, file_service, chat, http_server, http_client, smtp,
             pipelined]:
    print(f"== {walk.__name__}", file=sys.stderr)
    walk()
write_docs()
print(f"== done in {time.monotonic() - started:.1f} s", file=sys.stderr)
PY

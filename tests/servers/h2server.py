"""HTTP/2 test servers.

- ``HypercornThread``: hypercorn serving an ASGI app (the suite's ``App``) on
  127.0.0.1:<ephemeral> in a background thread, over TLS with ALPN (h2 and http/1.1,
  certificates from trustme) or over cleartext, where it takes HTTP/2 with prior
  knowledge (h2c) as well as HTTP/1.1.
- ``H2Conn`` and the handlers below: a scripted HTTP/2 server built on the ``h2``
  package, run by ``ScriptedServer`` (one thread per connection), for faults: GOAWAY
  mid-flight, REFUSED_STREAM, RST_STREAM, tiny windows, SETTINGS changes, a server that
  stops reading.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from .scripted import Conn, ScriptedServer

# ---------------------------------------------------------------------------
# hypercorn
# ---------------------------------------------------------------------------


class HypercornThread:
    """Runs an ASGI app with hypercorn on 127.0.0.1:<ephemeral> in a daemon thread.

    With ``certfile``/``keyfile`` it speaks TLS and offers h2 and http/1.1 by ALPN;
    without, cleartext HTTP/1.1 and HTTP/2 with prior knowledge."""

    def __init__(self, app, *, certfile: str | None = None, keyfile: str | None = None) -> None:
        from hypercorn.config import Config

        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.scheme = "https" if certfile else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        config = Config()
        # hypercorn takes ownership of the descriptor it is given: hand it a copy.
        self._fd = os.dup(self.sock.fileno())
        config.bind = [f"fd://{self._fd}"]
        config.loglevel = "WARNING"
        config.accesslog = None
        config.keep_alive_timeout = 30
        if certfile:
            config.certfile = certfile
            config.keyfile = keyfile
            config.alpn_protocols = ["h2", "http/1.1"]
        self.config = config
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from hypercorn.asyncio import serve

        async def main() -> None:
            self._stop = asyncio.Event()
            self._started.set()
            await serve(self.app, self.config, shutdown_trigger=self._stop.wait, mode="asgi")

        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by start() / stop()
            self.error = exc
            self._started.set()
        finally:
            self.loop.close()

    def start(self) -> HypercornThread:
        self.thread.start()
        if not self._started.wait(20) or self.error is not None:
            raise RuntimeError(f"hypercorn failed to start: {self.error!r}")
        # The listening socket exists already; wait until hypercorn answers on it.
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if self.scheme == "http":
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        if s.recv(16).startswith(b"HTTP/1.1"):
                            return self
                    else:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("hypercorn did not answer")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)
        self.sock.close()


# ---------------------------------------------------------------------------
# scripted HTTP/2 (the h2 package)
# ---------------------------------------------------------------------------


@dataclass
class H2Request:
    stream_id: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    complete: bool = False

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    @property
    def path(self) -> str:
        return self.header(":path") or ""

    @property
    def method(self) -> str:
        return self.header(":method") or ""


@dataclass
class _StreamState:
    request: H2Request
    reset_code: int | None = None
    window_open: threading.Event = field(default_factory=threading.Event)


class H2Conn:
    """One server-side HTTP/2 connection on a ScriptedServer ``Conn``: blocking helpers
    for handlers. Frames are read as needed; requests are handed out when complete."""

    def __init__(self, conn: Conn, settings: dict | None = None) -> None:
        self.conn = conn
        config = h2.config.H2Configuration(client_side=False, header_encoding="latin-1")
        self.h2 = h2.connection.H2Connection(config=config)
        if settings:  # in the first SETTINGS frame
            self.h2.local_settings = h2.settings.Settings(client=False, initial_values=settings)
        self.h2.initiate_connection()
        self.streams: dict[int, _StreamState] = {}
        self.ready: list[H2Request] = []
        self.resets: dict[int, int] = {}  # stream id -> error code the client reset with
        self.ping_acks: list[bytes] = []  # opaque data of the PING ACKs the client sent
        self.closed = False
        self.flush()

    # -- plumbing -------------------------------------------------------------

    def flush(self) -> bool:
        data = self.h2.data_to_send()
        return self.conn.send(data) if data else True

    def pump(self) -> bool:
        """Read once and process the frames; False when the client is gone."""
        if self.closed:
            return False
        data = self.conn._recv()
        if not data:
            self.closed = True
            return False
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            self.flush()
            return False
        for ev in events:
            self._on_event(ev)
        self.flush()
        return True

    def _on_event(self, ev) -> None:
        if isinstance(ev, h2.events.RequestReceived):
            req = H2Request(ev.stream_id, [(k, v) for k, v in ev.headers])
            self.streams[ev.stream_id] = _StreamState(req)
            if ev.stream_ended is not None:
                req.complete = True
                self.ready.append(req)
        elif isinstance(ev, h2.events.DataReceived):
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.request.body += ev.data
            self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            if ev.stream_ended is not None and st is not None:
                st.request.complete = True
                self.ready.append(st.request)
        elif isinstance(ev, h2.events.StreamEnded):
            st = self.streams.get(ev.stream_id)
            if st is not None and not st.request.complete:
                st.request.complete = True
                self.ready.append(st.request)
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks.append(ev.ping_data)
        elif isinstance(ev, h2.events.StreamReset):
            self.resets[ev.stream_id] = ev.error_code
            st = self.streams.get(ev.stream_id)
            if st is not None:
                st.reset_code = ev.error_code

    def next_request(self) -> H2Request | None:
        """The next complete request, reading as needed; None when the client left."""
        while not self.ready:
            if not self.pump():
                return None
        return self.ready.pop(0)

    # -- answering ------------------------------------------------------------

    def send_headers(self, stream_id: int, status: int = 200, headers=(), end=False) -> None:
        self.h2.send_headers(stream_id, [(":status", str(status)), *headers], end_stream=end)
        self.flush()

    def send_data(self, stream_id: int, data: bytes, end: bool = True) -> bool:
        """Send within the flow-control windows, waiting for WINDOW_UPDATEs."""
        view = memoryview(data)
        while view:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                if not self.pump():
                    return False
                st = self.streams.get(stream_id)
                if st is not None and st.reset_code is not None:
                    return False
                continue
            self.h2.send_data(stream_id, bytes(view[:window]))
            view = view[window:]
            if not self.flush():
                return False
        if end:
            self.h2.end_stream(stream_id)
            return self.flush()
        return True

    def respond(self, stream_id: int, status: int = 200, body: bytes = b"", headers=()) -> bool:
        hdrs = [*headers, ("content-length", str(len(body)))]
        self.send_headers(stream_id, status, hdrs, end=not body)
        return self.send_data(stream_id, body) if body else True

    def reset(self, stream_id: int, code: int = h2.errors.ErrorCodes.REFUSED_STREAM) -> None:
        self.h2.reset_stream(stream_id, error_code=code)
        self.flush()

    def goaway(self, last_stream_id: int | None = None, code: int = 0) -> None:
        """Send GOAWAY as raw bytes: h2 would refuse to answer the streams at or below
        last_stream_id afterwards, which a real server (nginx) still does."""
        self.flush()
        if last_stream_id is None:
            last_stream_id = max(self.streams, default=0)
        frame = hyperframe.frame.GoAwayFrame(0, last_stream_id=last_stream_id, error_code=code)
        self.conn.send(frame.serialize())

    def ping(self, data: bytes, timeout: float = 5.0) -> bool:
        """Send PING with `data` and read until the client's ACK of it; False if none."""
        self.h2.ping(data)
        self.flush()
        deadline = time.monotonic() + timeout
        while data not in self.ping_acks:
            if time.monotonic() > deadline or not self.pump():
                return False
        return True

    def settings(self, values: dict) -> None:
        self.h2.update_settings({
            getattr(h2.settings.SettingCodes, k.upper()): v for k, v in values.items()
        })
        self.flush()

    def drain(self, seconds: float = 5.0) -> None:
        """Keep reading (answering PINGs, SETTINGS) until the client closes or time is up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.pump():
            pass


def h2_context(cert) -> ssl.SSLContext:
    """A server TLS context offering only h2 by ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def h2_server(
    handler: Callable[[H2Conn], None], *, ssl_context: ssl.SSLContext | None = None, **settings
) -> ScriptedServer:
    """A ScriptedServer whose connections speak HTTP/2 (prior knowledge unless TLS)."""

    values = {getattr(h2.settings.SettingCodes, k.upper()): v for k, v in settings.items()}

    def run(conn: Conn) -> None:
        handler(H2Conn(conn, values or None))

    return ScriptedServer(run, ssl_context=ssl_context)


# -- reusable behaviours ------------------------------------------------------


def serve_path(h2c: H2Conn) -> None:
    """Answer every request with its path, until the client leaves."""
    while (req := h2c.next_request()) is not None:
        h2c.respond(req.stream_id, 200, req.path.encode(), [("content-type", "text/plain")])


def goaway_every(n: int) -> Callable[[H2Conn], None]:
    """nginx's keepalive_requests: answer n requests, then GOAWAY(NO_ERROR) naming the
    last stream answered, and close once the client has gone."""

    def handler(h2c: H2Conn) -> None:
        for _ in range(n):
            req = h2c.next_request()
            if req is None:
                return
            h2c.respond(req.stream_id, 200, req.path.encode())
        h2c.goaway(last_stream_id=req.stream_id)
        h2c.drain(2.0)

    return handler


def refuse_first(h2c: H2Conn) -> None:
    """REFUSED_STREAM for the first request on the connection, then serve_path."""
    req = h2c.next_request()
    if req is None:
        return
    h2c.reset(req.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
    serve_path(h2c)


def goaway_midflight(h2c: H2Conn) -> None:
    """Wait for two requests, GOAWAY(NO_ERROR) naming only the first (the second was
    not processed), answer the first, then close once the client has gone."""
    first = h2c.next_request()
    second = h2c.next_request()
    if first is None or second is None:
        return
    h2c.goaway(last_stream_id=first.stream_id)
    h2c.respond(first.stream_id, 200, first.path.encode())
    h2c.drain(2.0)


def reset_with(code: int) -> Callable[[H2Conn], None]:
    """RST_STREAM every request with ``code``; the connection stays up."""

    def handler(h2c: H2Conn) -> None:
        while (req := h2c.next_request()) is not None:
            h2c.reset(req.stream_id, code)

    return handler


def stop_reading(h2c: H2Conn) -> None:
    """Take the request head, then never read again (an upload stalls on the windows)."""
    while not h2c.streams:
        if not h2c.pump():
            return
    h2c.conn.hold_no_read(10)

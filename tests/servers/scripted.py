"""Raw-socket servers that run a scripted behaviour per accepted connection.

Each accepted connection runs ``handler(conn)`` in its own thread; the handler is plain
blocking code (read a request, send bytes, close, reset, stall ...). The server records
the raw bytes received and the number of connections accepted so tests can assert
connection reuse.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable


class Request:
    def __init__(self, head: bytes, body: bytes) -> None:
        self.head = head
        self.body = body
        lines = head.decode("latin-1").split("\r\n")
        self.method, self.target, self.version = (lines[0].split(" ", 2) + ["", ""])[:3]
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip(), value.strip()))

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Conn:
    """One accepted connection, as seen by a handler."""

    def __init__(self, server: ScriptedServer, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock = sock
        self.index = index  # 0 for the first accepted connection
        self.buffer = b""
        self.requests: list[Request] = []

    # -- reading --------------------------------------------------------------

    def _recv(self) -> bytes:
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                if self.server.stopping.is_set():
                    return b""
                continue
            except (ssl.SSLError, OSError):
                return b""
            self.server._record(data)
            return data

    def read_until(self, marker: bytes) -> bytes | None:
        while marker not in self.buffer:
            data = self._recv()
            if not data:
                return None
            self.buffer += data
        idx = self.buffer.index(marker) + len(marker)
        out, self.buffer = self.buffer[:idx], self.buffer[idx:]
        return out

    def read_exact(self, n: int) -> bytes | None:
        while len(self.buffer) < n:
            data = self._recv()
            if not data:
                return None
            self.buffer += data
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def read_request(self, *, body: bool = True) -> Request | None:
        """Read one request head (and its body, if ``body``). None at EOF."""
        head = self.read_until(b"\r\n\r\n")
        if head is None:
            return None
        req = Request(head[:-4], b"")
        if body:
            req.body = self.read_body(req) or b""
        self.requests.append(req)
        self.server.requests.append(req)
        return req

    def read_body(self, req: Request) -> bytes | None:
        te = (req.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            parts = []
            while True:
                line = self.read_until(b"\r\n")
                if line is None:
                    return None
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers up to the empty line
                    while True:
                        t = self.read_until(b"\r\n")
                        if t is None or t == b"\r\n":
                            break
                    return b"".join(parts)
                data = self.read_exact(size + 2)
                if data is None:
                    return None
                parts.append(data[:-2])
        length = int(req.header("content-length") or 0)
        return self.read_exact(length)

    def read_some(self, n: int) -> int:
        """Read and discard about n bytes of whatever comes; returns bytes read."""
        got = len(self.buffer)
        self.buffer = b""
        while got < n:
            data = self._recv()
            if not data:
                break
            got += len(data)
        return got

    # -- writing / closing ------------------------------------------------------

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def respond(
        self,
        body: bytes = b"ok",
        status: str = "200 OK",
        headers: list[tuple[str, str]] | None = None,
        version: str = "HTTP/1.1",
    ) -> bool:
        return self.send(response_bytes(body, status, headers, version))

    def shutdown_write(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                try:
                    self.sock.unwrap()
                except (OSError, ssl.SSLError, ValueError):
                    pass
            self.sock.close()
        except OSError:
            pass

    def reset(self) -> None:
        """Close with SO_LINGER 0 so the peer gets an RST."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def hold(self, seconds: float | None = None) -> None:
        """Stay open without sending, reading (and discarding) until EOF or stop."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.server.stopping.is_set():
            if deadline is not None and time.monotonic() > deadline:
                return
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return
            if not data:
                return
            self.server._record(data)

    def hold_no_read(self, seconds: float | None = None) -> None:
        """Stay open, never reading, until stop (or ``seconds``)."""
        self.server.stopping.wait(seconds)

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """Wait until the client closes its side; True if it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                # Stopping ends the wait only once nothing is there to read: an
                # EOF that arrived before the test stopped the server counts.
                if self.server.stopping.is_set():
                    return False
                continue
            except (OSError, ssl.SSLError):
                return True
            if not data:
                return True
        return False


def response_bytes(
    body: bytes = b"ok",
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    hdrs = list(headers or [])
    if not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    head = f"{version} {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    return head.encode("latin-1") + body


def chunked(*chunks: bytes, trailers: bytes = b"") -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c)
    return out + b"0\r\n" + trailers + b"\r\n"


class ScriptedServer:
    def __init__(
        self,
        handler: Callable[[Conn], None],
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        rcvbuf: int | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        scheme = "https" if ssl_context else "http"
        self.url = (
            f"{scheme}://{'[' + host + ']' if family == socket.AF_INET6 else host}:{self.port}"
        )
        self.connections = 0
        self.open_connections = 0
        self.max_open_connections = 0
        self.received = bytearray()
        self.requests: list[Request] = []
        self.errors: list[BaseException] = []
        self.conns: list[Conn] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _record(self, data: bytes) -> None:
        with self._lock:
            self.received += data

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
                self.open_connections += 1
                self.max_open_connections = max(self.max_open_connections, self.open_connections)
            t = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        conn = None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(0.05)
            if self.ssl_context is not None:
                sock.settimeout(5)
                try:
                    sock = self.ssl_context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    sock.close()
                    return
                sock.settimeout(0.05)
            conn = Conn(self, sock, index)
            self.conns.append(conn)
            self.handler(conn)
        except (OSError, ssl.SSLError):
            pass
        except BaseException as exc:  # a bug in a test handler: surface it
            self.errors.append(exc)
        finally:
            with self._lock:
                self.open_connections -= 1
            if conn is not None:
                conn.close()
            else:
                sock.close()

    def close(self) -> None:
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        self._accept_thread.join(5)
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------
# Reusable behaviours
# ---------------------------------------------------------------------------


def keepalive(body: bytes = b"ok", headers=None) -> Callable[[Conn], None]:
    """Answer every request on the connection with a Content-Length response."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if not conn.respond(body, headers=headers):
                return

    return handler


def echo_request_count(conn: Conn) -> None:
    """Keep-alive; each response body is "<connection index>:<request number>"."""
    n = 0
    while conn.read_request() is not None:
        n += 1
        conn.respond(f"{conn.index}:{n}".encode())


class FullBacklog:
    """A listening socket (backlog 0) whose accept queue is filled and never accepted, so
    further connection attempts hang in SYN-SENT: a way to get a connect timeout locally.
    ``works`` says whether a probe connect really hung (the kernel may not cooperate)."""

    def __init__(self, fillers: int = 8) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.fillers: list[socket.socket] = []
        for _ in range(fillers):
            f = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(f)
        time.sleep(0.05)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", self.port))
            self.works = False
        except socket.timeout:
            self.works = True
        except OSError:
            self.works = False
        finally:
            probe.close()

    def close(self) -> None:
        for f in self.fillers:
            f.close()
        self.sock.close()

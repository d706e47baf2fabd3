"""A small HTTP proxy: forward proxying (absolute-form) and CONNECT tunnels.

It records every request head it receives (method, target, headers), in particular the
Proxy-Authorization header, and can require credentials (407 otherwise).
"""

from __future__ import annotations

import base64
import select
import socket
from urllib.parse import urlsplit

from .scripted import Conn, Request, ScriptedServer, response_bytes


class ProxyServer:
    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        connect_status: str | None = None,
        ssl_context=None,
    ):
        self.auth = auth
        self.connect_status = connect_status  # e.g. "403 Forbidden" to refuse every CONNECT
        self.seen: list[Request] = []
        # With an ssl_context the proxy itself speaks TLS (an https:// proxy URL).
        self.server = ScriptedServer(self._handle, ssl_context=ssl_context)
        self.url = self.server.url
        self.port = self.server.port

    @property
    def connections(self) -> int:
        return self.server.connections

    def close(self) -> None:
        self.server.close()

    def _authorized(self, req: Request) -> bool:
        if self.auth is None:
            return True
        token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return req.header("proxy-authorization") == f"Basic {token}"

    def _handle(self, conn: Conn) -> None:
        while (req := conn.read_request(body=False)) is not None:
            self.seen.append(req)
            if req.method == "CONNECT":
                self._connect(conn, req)
                return
            body = conn.read_body(req) or b""
            req.body = body
            if not self._authorized(req):
                conn.send(
                    response_bytes(
                        b"proxy auth required",
                        "407 Proxy Authentication Required",
                        [("Proxy-Authenticate", 'Basic realm="proxy"')],
                    )
                )
                continue
            if not self._forward(conn, req, body):
                return

    def _connect(self, conn: Conn, req: Request) -> None:
        if self.connect_status is not None:
            conn.send(response_bytes(b"", self.connect_status))
            return
        if not self._authorized(req):
            conn.send(
                response_bytes(
                    b"",
                    "407 Proxy Authentication Required",
                    [("Proxy-Authenticate", 'Basic realm="proxy"')],
                )
            )
            return
        host, _, port = req.target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
        except OSError:
            conn.send(response_bytes(b"", "502 Bad Gateway"))
            return
        conn.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
        client = conn.sock
        client.settimeout(None)
        upstream.settimeout(None)
        try:
            if conn.buffer:
                upstream.sendall(conn.buffer)
            self._relay(client, upstream, conn)
        finally:
            upstream.close()

    def _relay(self, a: socket.socket, b: socket.socket, conn: Conn) -> None:
        socks = [a, b]
        while not conn.server.stopping.is_set():
            readable, _, _ = select.select(socks, [], [], 0.05)
            # an SSL socket may hold decrypted bytes that select() cannot see
            readable += [s for s in socks if s not in readable and getattr(s, "pending", int)()]
            for s in readable:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                (b if s is a else a).sendall(data)

    def _forward(self, conn: Conn, req: Request, body: bytes) -> bool:
        url = urlsplit(req.target)
        if not url.scheme or not url.hostname:
            conn.send(response_bytes(b"absolute-form required", "400 Bad Request"))
            return False
        port = url.port or (443 if url.scheme == "https" else 80)
        target = url.path or "/"
        if url.query:
            target += "?" + url.query
        headers = [
            (k, v)
            for k, v in req.headers
            if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")
        ]
        headers.append(("Connection", "close"))
        head = f"{req.method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        try:
            upstream = socket.create_connection((url.hostname, port), timeout=10)
        except OSError:
            conn.send(response_bytes(b"", "502 Bad Gateway"))
            return False
        try:
            upstream.sendall(head.encode("latin-1") + b"\r\n" + body)
            chunks = []
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                chunks.append(data)
        finally:
            upstream.close()
        # The origin was asked to close: its response is delimited by EOF, which we keep by
        # closing the client connection after relaying it.
        conn.send(b"".join(chunks))
        return False

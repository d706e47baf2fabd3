"""A small SOCKS5 proxy (RFC 1928, with RFC 1929 username/password auth) for tests.

It records, per connection, the auth it was offered, the credentials it got and the
CONNECT target, then relays bytes both ways.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import threading
from dataclasses import dataclass


@dataclass
class SocksConnect:
    methods: bytes
    username: str | None
    password: str | None
    host: str
    port: int


class Socks5Server:
    def __init__(self, *, auth: tuple[str, str] | None = None, reply: int = 0):
        self.auth = auth
        self.reply = reply  # a non-zero REP refuses every CONNECT with that code
        self.seen: list[SocksConnect] = []
        self.connections = 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"socks5://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(2)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("client closed")
            data += chunk
        return data

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._session(conn)
            except (ConnectionError, OSError):
                pass

    def _session(self, conn: socket.socket) -> None:
        version, count = self._read(conn, 2)
        assert version == 5
        methods = self._read(conn, count)
        username = password = None
        if self.auth is not None:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return
            conn.sendall(b"\x05\x02")
            _, ulen = self._read(conn, 2)
            username = self._read(conn, ulen).decode()
            (plen,) = self._read(conn, 1)
            password = self._read(conn, plen).decode()
            ok = (username, password) == self.auth
            conn.sendall(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return
        else:
            if 0 not in methods:
                conn.sendall(b"\x05\xff")
                return
            conn.sendall(b"\x05\x00")
        _, cmd, _, atyp = self._read(conn, 4)
        if atyp == 1:
            host = str(ipaddress.IPv4Address(self._read(conn, 4)))
        elif atyp == 4:
            host = str(ipaddress.IPv6Address(self._read(conn, 16)))
        else:
            (n,) = self._read(conn, 1)
            host = self._read(conn, n).decode()
        (port,) = struct.unpack("!H", self._read(conn, 2))
        self.seen.append(SocksConnect(methods, username, password, host, port))
        if cmd != 1 or self.reply:
            conn.sendall(bytes([5, self.reply or 7, 0, 1, 0, 0, 0, 0, 0, 0]))
            return
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            conn.sendall(bytes([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]))
            return
        with upstream:
            bound_host, bound_port = upstream.getsockname()[:2]
            conn.sendall(
                b"\x05\x00\x00\x01" + socket.inet_aton(bound_host) + struct.pack("!H", bound_port)
            )
            upstream.settimeout(None)
            socks = [conn, upstream]
            while not self._stop.is_set():
                readable, _, _ = select.select(socks, [], [], 0.05)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is conn else conn).sendall(data)

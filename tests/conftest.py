"""Shared fixtures for the httprs integration suite.

Validation mode: with ``HTTPRS_TEST_TARGET=httpx`` the real httpx package is installed as
``sys.modules["httprs"]`` before any test module imports ``httprs``, so every test runs
against httpx 0.28.1 — that proves each test asserts httpx's behaviour. Tests marked
``httprs_only`` are skipped in that mode.
"""

from __future__ import annotations

import os
import sys

VALIDATING = os.environ.get("HTTPRS_TEST_TARGET", "") == "httpx"

if VALIDATING:
    import httpx

    sys.modules["httprs"] = httpx

import pytest  # noqa: E402
from servers.app import App, UvicornThread  # noqa: E402
from servers.h2server import HypercornThread, h2_server  # noqa: E402
from servers.nginx import NGINX, NginxH2  # noqa: E402
from servers.proxy import ProxyServer  # noqa: E402
from servers.scripted import ScriptedServer  # noqa: E402
from servers.tls import make_certs, server_context, tls_server  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "httprs_only: httprs behaviour that differs from httpx (skipped when validating)",
    )
    config.addinivalue_line("markers", "slow: long-running test (deselect with -m 'not slow')")


def pytest_collection_modifyitems(config, items):
    if not VALIDATING:
        return
    skip = pytest.mark.skip(reason="httprs_only: httpx behaves differently")
    for item in items:
        if "httprs_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _apps():
    app1, app2 = App(), App()
    s1 = UvicornThread(app1).start()
    s2 = UvicornThread(app2).start()
    app1.other_url, app2.other_url = s2.url, s1.url
    yield s1, s2
    s1.stop()
    s2.stop()


@pytest.fixture(scope="session")
def server(_apps):
    """The main uvicorn app server (``.url`` like ``http://127.0.0.1:PORT``)."""
    return _apps[0]


@pytest.fixture(scope="session")
def server2(_apps):
    """A second app server on another port: a different origin."""
    return _apps[1]


@pytest.fixture
def scripted():
    """Factory: ``scripted(handler, **kw)`` starts a ScriptedServer closed after the test."""
    servers: list[ScriptedServer] = []

    def make(handler, **kwargs) -> ScriptedServer:
        srv = ScriptedServer(handler, **kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()
    for srv in servers:
        if srv.errors:
            raise srv.errors[0]


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_server_factory(certs):
    servers = []

    def make(cert=None, **kwargs):
        ctx = server_context(cert or certs.server, **kwargs)
        srv = tls_server(ctx)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


@pytest.fixture
def https_server(tls_server_factory):
    """A TLS server with a certificate for localhost/127.0.0.1 signed by ``certs.ca``."""
    return tls_server_factory()


@pytest.fixture(scope="session")
def hypercorn_tls(certs, tmp_path_factory):
    """hypercorn serving the suite's App over TLS, offering h2 and http/1.1 by ALPN
    (certificate for 127.0.0.1 / localhost signed by ``certs.ca``)."""
    directory = tmp_path_factory.mktemp("h2certs")
    certfile, keyfile = str(directory / "cert.pem"), str(directory / "key.pem")
    for blob in certs.server.cert_chain_pems:
        blob.write_to_path(certfile, append=True)
    certs.server.private_key_pem.write_to_path(keyfile)
    srv = HypercornThread(App(), certfile=certfile, keyfile=keyfile).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def nginx_h2(certs, tmp_path_factory):
    """nginx's HTTP/2 TLS listener (h2 by ALPN; GOAWAY after 1,000 requests per
    connection, its default), servers/nginx.py."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: nginx-light)")
    prefix = tmp_path_factory.mktemp("nginx")
    certfile, keyfile = str(prefix / "cert.pem"), str(prefix / "key.pem")
    for blob in certs.server.cert_chain_pems:
        blob.write_to_path(certfile, append=True)
    certs.server.private_key_pem.write_to_path(keyfile)
    srv = NginxH2(prefix, certfile, keyfile).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def hypercorn_h2c():
    """hypercorn serving the suite's App on cleartext: HTTP/1.1, and HTTP/2 with prior
    knowledge (h2c)."""
    srv = HypercornThread(App()).start()
    yield srv
    srv.stop()


@pytest.fixture
def h2_scripted():
    """Factory: ``h2_scripted(handler, ssl_context=None, **settings)`` starts a scripted
    HTTP/2 server (``handler(h2conn)`` per connection, servers/h2server.py), closed after
    the test."""
    servers = []

    def make(handler, **kwargs):
        srv = h2_server(handler, **kwargs)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()
    for srv in servers:
        if srv.errors:
            raise srv.errors[0]


def _closing_factory(cls):
    """A `make(**kwargs)` that builds `cls` servers, and closes every one of them at the
    end of the test (a generator for a fixture to yield from)."""
    made = []

    def make(**kwargs):
        srv = cls(**kwargs)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.close()


def _serve_unix(address: str, state: dict):
    """A keep-alive HTTP server listening on the Unix address `address` (a path, or an
    abstract name starting with NUL); answers with the Host it got and counts connections
    in `state`. Returns the listening socket (closing it stops the server)."""
    import socket
    import threading

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(address)
    listener.listen()

    def handle(conn):
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                host = [line for line in head.split(b"\r\n") if line.lower().startswith(b"host:")]
                body = host[0].split(b":", 1)[1].strip() if host else b"none"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            state["connections"] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


@pytest.fixture
def unix_server(tmp_path):
    """A keep-alive HTTP server on a Unix domain socket (see _serve_unix). Yields
    (path, state)."""
    path = str(tmp_path / "http.sock")
    state = {"connections": 0}
    listener = _serve_unix(path, state)
    yield path, state
    listener.close()


@pytest.fixture
def unix_server_factory():
    """Starts _serve_unix servers on given Unix addresses; each call returns its state
    dict. All are closed after the test."""
    listeners = []

    def start(address: str) -> dict:
        state = {"connections": 0}
        listeners.append(_serve_unix(address, state))
        return state

    yield start
    for listener in listeners:
        listener.close()


@pytest.fixture
def proxy_factory():
    yield from _closing_factory(ProxyServer)


@pytest.fixture
def socks_factory():
    """SOCKS5 proxies on 127.0.0.1 (tests/servers/socks.py), closed after the test."""
    from servers.socks import Socks5Server

    yield from _closing_factory(Socks5Server)


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 with nothing listening (bound then closed)."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def clean_env(monkeypatch):
    """Remove proxy / certificate variables from the environment for the test."""
    for name in list(os.environ):
        if name.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "no_proxy",
            "ssl_cert_file",
            "ssl_cert_dir",
            "request_method",
        ):
            monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def presented_as_httpx2(monkeypatch):
    """httprs presenting as httpx2 (the switch's primary name, what `_alias.primary()`
    answers) for the test, without routing any import: for behaviour httprs gives under
    httpx2's name only."""
    from httprs import _alias

    monkeypatch.setitem(_alias._state, "primary", "httpx2")


@pytest.fixture
def presented_as_httpx_029(monkeypatch):
    """httprs presenting as httpx 0.29.0, the release `_alias.httpx_version()` picks when
    that release (or none) is installed beside httprs, for the test (the suite installs
    httpx 0.28.1: pytest-httpx still requires 0.28.*)."""
    from httprs import _alias

    monkeypatch.setattr(_alias, "httpx_version", lambda: "0.29.0")
    _alias.all_names.cache_clear()
    yield
    _alias.all_names.cache_clear()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    """anyio's pytest plugin runs each ``@pytest.mark.anyio`` test on asyncio and trio."""
    return request.param


class _ProcessServer:
    def __init__(self) -> None:
        import subprocess

        path = os.path.join(os.path.dirname(__file__), "servers", "aioserver.py")
        self.proc = subprocess.Popen(
            [sys.executable, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(self.url + "/__stats", timeout=10) as r:
            return json.loads(r.read())

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def process_server():
    """An asyncio keep-alive server in a child process (see servers/aioserver.py), with
    connection statistics from ``.stats()``."""
    srv = _ProcessServer()
    yield srv
    srv.close()

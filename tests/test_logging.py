"""Logging: httpx's INFO request line and httpcore's DEBUG connection events, as httpx
(through httpcore) writes them, from the same requests against the same local server."""

from __future__ import annotations

import contextlib
import logging
import logging.config
import re
import ssl
import subprocess
import sys
import textwrap

import httpx
import pytest
from servers.scripted import keepalive

import httprs

pytestmark = pytest.mark.httprs_only

REQUESTS = [
    ("GET", "/a", {}),
    ("GET", "/b", {}),  # the connection is reused: no connect events
    ("POST", "/c", {"content": b"x" * 1000}),
]


def chunks():
    yield b"abc"
    yield b"def"


async def achunks():
    yield b"abc"
    yield b"def"


def normalise(message: str) -> str:
    """Object addresses and network-stream class names differ between the libraries."""
    message = re.sub(r"<[\w.]+ object at 0x[0-9a-f]+>", "<object>", message)
    return message


def logged(caplog) -> list[tuple[str, str, str]]:
    return [
        (r.name, r.levelname, normalise(r.getMessage()))
        for r in caplog.records
        if r.name.split(".")[0] in ("httpx", "httpcore")
    ]


def run_sync(module, url, verify, caplog):
    caplog.clear()
    with module.Client(verify=verify) as client:
        for method, path, kwargs in [*REQUESTS, ("PUT", "/d", {"content": chunks()})]:
            assert client.request(method, url + path, **kwargs).status_code == 200
        with client.stream("GET", url + "/e") as response:
            b"".join(response.iter_bytes())
    return logged(caplog)


async def run_async(module, url, verify, caplog):
    caplog.clear()
    async with module.AsyncClient(verify=verify) as client:
        for method, path, kwargs in [*REQUESTS, ("PUT", "/d", {"content": achunks()})]:
            assert (await client.request(method, url + path, **kwargs)).status_code == 200
        async with client.stream("GET", url + "/e") as response:
            [chunk async for chunk in response.aiter_bytes()]
    return logged(caplog)


def target(scheme, scripted, https_server, certs):
    if scheme == "http":
        return scripted(keepalive(b"hello")).url, True
    return https_server.url, ssl.create_default_context(cafile=certs.ca_file)


def check_events(ours):
    messages = [(name, message.split(" ")[0]) for name, _, message in ours]
    assert messages[:2] == [
        ("httpcore.connection", "connect_tcp.started"),
        ("httpcore.connection", "connect_tcp.complete"),
    ]
    assert ("httpcore.http11", "send_request_headers.started") in messages
    assert ("httpcore.http11", "response_closed.complete") in messages
    assert messages[-2:] == [
        ("httpcore.connection", "close.started"),
        ("httpcore.connection", "close.complete"),
    ]
    assert any(name == "httpx" and m.startswith("HTTP Request: GET") for name, _, m in ours)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_debug_log_matches_httpx(scripted, https_server, certs, scheme, caplog):
    url, verify = target(scheme, scripted, https_server, certs)
    caplog.set_level(logging.DEBUG)
    ours = run_sync(httprs, url, verify, caplog)
    theirs = run_sync(httpx, url, verify, caplog)
    assert ours == theirs
    check_events(ours)
    assert any(
        m.startswith("send_request_headers.started request=<Request [b'GET']>") for *_, m in ours
    )
    if scheme == "https":
        assert any(m.startswith("start_tls.started ssl_context=") for *_, m in ours)


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_debug_log_matches_httpx_async(scripted, https_server, certs, scheme, caplog):
    url, verify = target(scheme, scripted, https_server, certs)
    caplog.set_level(logging.DEBUG)
    ours = await run_async(httprs, url, verify, caplog)
    theirs = await run_async(httpx, url, verify, caplog)
    assert ours == theirs
    check_events(ours)


def test_debug_log_connect_failure(closed_port, caplog):
    caplog.set_level(logging.DEBUG, logger="httpcore")

    def run(module):
        caplog.clear()
        with module.Client() as client:
            with pytest.raises(module.ConnectError):
                client.get(f"http://127.0.0.1:{closed_port}/")
        return [(name, message.split(" ")[0]) for name, _, message in logged(caplog)]

    ours = run(httprs)
    assert ours == run(httpx)
    assert ours == [
        ("httpcore.connection", "connect_tcp.started"),
        ("httpcore.connection", "connect_tcp.failed"),
    ]


def test_only_the_enabled_logger_writes(scripted, caplog):
    """A logger enabled on its own (here httpcore.http11) is enough, and only it writes."""
    url = scripted(keepalive(b"ok")).url
    caplog.set_level(logging.WARNING)
    caplog.set_level(logging.DEBUG, logger="httpcore.http11")
    with httprs.Client() as client:
        client.get(url)
    names = {name for name, _, _ in logged(caplog)}
    assert names == {"httpcore.http11"}


def test_info_level_shows_only_the_request_line(scripted, caplog):
    url = scripted(keepalive(b"ok")).url
    caplog.set_level(logging.INFO)
    with httprs.Client() as client:
        client.get(url + "/x")
    assert logged(caplog) == [("httpx", "INFO", f'HTTP Request: GET {url}/x "HTTP/1.1 200 OK"')]


def test_logging_off_costs_one_level_check_per_request(scripted, monkeypatch, caplog):
    """With the loggers off, a request asks logging nothing once logging's own per-logger
    memo says DEBUG (httpcore's loggers) and INFO (httpx) are off: it takes the untraced
    path after a dict lookup per logger."""
    url = scripted(keepalive(b"ok")).url
    caplog.set_level(logging.WARNING)
    calls = []
    real = logging.Logger.isEnabledFor

    def counting(self, level):
        if self.name.startswith("httpcore"):
            calls.append(self.name)
        return real(self, level)

    monkeypatch.setattr(logging.Logger, "isEnabledFor", counting)
    with httprs.Client() as client:
        client.get(url)
        assert calls, "the first request fills logging's memo"
        calls.clear()
        for _ in range(10):
            client.get(url)
        assert calls == []
    assert logged(caplog) == []


def _mid_session_steps(caplog):
    """(a logging change, the loggers the next request must write to), in order: each
    change is one logging's memo is emptied by, made between requests of one client."""

    def disable(level):
        return lambda: logging.disable(level)

    return [
        (lambda: caplog.set_level(logging.WARNING), set()),
        (lambda: caplog.set_level(logging.INFO, logger="httpx"), {"httpx"}),
        (
            lambda: caplog.set_level(logging.DEBUG, logger="httpcore.http11"),
            {"httpx", "httpcore.http11"},
        ),
        (disable(logging.CRITICAL), set()),
        (disable(logging.NOTSET), {"httpx", "httpcore.http11"}),
        (lambda: logging.getLogger("httpcore.http11").setLevel(logging.WARNING), {"httpx"}),
        (lambda: logging.getLogger("httpx").setLevel(logging.WARNING), set()),
        (lambda: logging.getLogger("httpcore").setLevel(logging.DEBUG), set()),  # http11 own
        (
            lambda: logging.getLogger("httpcore.http11").setLevel(logging.NOTSET),
            {"httpcore.http11"},  # now inherits DEBUG from `httpcore`
        ),
    ]


def _names(caplog) -> set[str]:
    return {name for name, _, _ in logged(caplog)}


def test_logging_changed_between_requests_is_seen(scripted, caplog, restore_httpcore_loggers):
    """Logging's memo answers while logging is off; a level set or a logging.disable()
    between two requests of one client shows in the very next request's lines."""
    url = scripted(keepalive(b"ok")).url
    try:
        with httprs.Client() as client:
            client.get(url)
            for change, expected in _mid_session_steps(caplog):
                change()
                caplog.clear()
                client.get(url)
                assert _names(caplog) == expected, change
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.anyio
async def test_logging_changed_between_requests_is_seen_async(
    scripted, caplog, restore_httpcore_loggers
):
    url = scripted(keepalive(b"ok")).url
    try:
        async with httprs.AsyncClient() as client:
            await client.get(url)
            for change, expected in _mid_session_steps(caplog):
                change()
                caplog.clear()
                await client.get(url)
                assert _names(caplog) == expected, change
    finally:
        logging.disable(logging.NOTSET)


def _enabling_routes():
    """(the logging state with httpcore's DEBUG lines off, a change that turns them on),
    one way logging can enable them each: the logger's own level, its parent's, the end
    of a logging.disable(), basicConfig, dictConfig."""
    root = logging.getLogger()

    def quiet(level=logging.WARNING):
        def set_up():
            root.setLevel(level)
            for name in ("httpcore", "httpcore.http11", "httpcore.connection"):
                logging.getLogger(name).setLevel(logging.NOTSET)

        return set_up

    def disabled():
        quiet(logging.DEBUG)()
        logging.disable(logging.CRITICAL)

    return [
        (quiet(), lambda: logging.getLogger("httpcore.http11").setLevel(logging.DEBUG)),
        (quiet(), lambda: logging.getLogger("httpcore").setLevel(logging.DEBUG)),
        (disabled, lambda: logging.disable(logging.NOTSET)),
        (
            quiet(),
            lambda: logging.basicConfig(
                level=logging.DEBUG, force=True, handlers=[logging.NullHandler()]
            ),
        ),
        (
            quiet(),
            lambda: logging.config.dictConfig({
                "version": 1,
                "incremental": True,
                "loggers": {"httpcore": {"level": "DEBUG"}},
            }),
        ),
    ]


class _Names(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = set()

    def emit(self, record):
        self.names.add(record.name)


@contextlib.contextmanager
def _httpcore_lines():
    """The names of the loggers httpcore's lines come from (a handler on `httpcore`:
    basicConfig(force=True) replaces the root's handlers), logging as it was after."""
    root = logging.getLogger()
    saved_root = (root.level, root.handlers[:])
    loggers = [
        logging.getLogger(n) for n in ("httpcore", "httpcore.http11", "httpcore.connection")
    ]
    saved = [(lg, lg.level) for lg in loggers]
    names = _Names()
    loggers[0].addHandler(names)
    try:
        yield names
    finally:
        loggers[0].removeHandler(names)
        logging.disable(logging.NOTSET)
        root.handlers[:] = saved_root[1]
        root.setLevel(saved_root[0])
        for lg, level in saved:
            lg.setLevel(level)


def test_logging_enabled_after_the_off_memo_is_made_is_seen(scripted):
    """Two requests with httpcore's loggers off make httprs remember they are off (the
    second finds logging's own memo filled); each way of enabling them then shows in
    the very next request."""
    url = scripted(keepalive(b"ok")).url
    with _httpcore_lines() as lines, httprs.Client() as client:
        for set_up, enable in _enabling_routes():
            set_up()
            client.get(url)
            client.get(url)
            assert lines.names == set()
            enable()
            client.get(url)
            assert "httpcore.http11" in lines.names, enable
            lines.names.clear()


@pytest.mark.anyio
async def test_logging_enabled_after_the_off_memo_is_made_is_seen_async(scripted):
    url = scripted(keepalive(b"ok")).url
    with _httpcore_lines() as lines:
        async with httprs.AsyncClient() as client:
            for set_up, enable in _enabling_routes():
                set_up()
                await client.get(url)
                await client.get(url)
                assert lines.names == set()
                enable()
                await client.get(url)
                assert "httpcore.http11" in lines.names, enable
                lines.names.clear()


def _names_logged(url, caplog) -> set[str]:
    caplog.clear()
    with httprs.Client() as client:
        client.get(url)
    return {name for name, _, _ in logged(caplog) if name.startswith("httpcore")}


@pytest.fixture
def restore_httpcore_loggers():
    loggers = [
        logging.getLogger(n) for n in ("httpcore", "httpcore.connection", "httpcore.http11")
    ]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    yield
    for lg, level, disabled in saved:
        lg.setLevel(level)
        lg.disabled = disabled


def test_every_way_of_enabling_a_logger_is_seen(scripted, caplog, restore_httpcore_loggers):
    """The one-check path must not lose a line: each configuration logs what logging's
    own rules say (parent level, a child's own level, disabled loggers)."""
    url = scripted(keepalive(b"ok")).url
    parent = logging.getLogger("httpcore")
    connection = logging.getLogger("httpcore.connection")
    http11 = logging.getLogger("httpcore.http11")
    caplog.set_level(logging.WARNING)
    assert _names_logged(url, caplog) == set()
    caplog.set_level(logging.DEBUG, logger="httpcore")  # the parent: both children
    assert _names_logged(url, caplog) == {"httpcore.connection", "httpcore.http11"}
    http11.disabled = True  # a disabled child stays silent, its sibling writes
    assert _names_logged(url, caplog) == {"httpcore.connection"}
    http11.disabled = False
    parent.setLevel(logging.WARNING)
    connection.setLevel(logging.DEBUG)  # a child's own level under a quiet parent
    assert _names_logged(url, caplog) == {"httpcore.connection"}
    connection.setLevel(logging.NOTSET)
    caplog.set_level(logging.DEBUG)  # root at DEBUG, the parent itself disabled:
    parent.setLevel(logging.NOTSET)
    parent.disabled = True  # `disabled` is not inherited, the children still write
    assert _names_logged(url, caplog) == {"httpcore.connection", "httpcore.http11"}


def test_httpx2_switch_logs_on_httpcore2_loggers():
    code = textwrap.dedent(
        """
        import logging, threading, http.server
        import httprs
        httprs.install(["httpx2"])
        import httpx2

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            def log_message(self, *args):
                pass

        names = set()
        class Collect(logging.Handler):
            def emit(self, record):
                names.add(record.name)
        logging.getLogger().addHandler(Collect())
        logging.getLogger().setLevel(logging.DEBUG)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with httpx2.Client() as client:
            client.get(f"http://127.0.0.1:{server.server_port}/")
        server.shutdown()
        print(sorted(n for n in names if n.startswith(("httpx", "httpcore"))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert out.strip() == "['httpcore2.connection', 'httpcore2.http11', 'httpx2']"

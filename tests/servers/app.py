"""A hand-written ASGI application served by uvicorn in a background thread.

No web framework: each route is a small coroutine taking the ASGI scope, the request
body (already read, except for the streaming upload route) and the ``send`` callable.

Routes: / /echo /echo_body /upload_size /status/{code} /headers /redirect/... /cookies[/set|
/delete] /chunked /gzip /deflate /br /zstd /gzip_br /gzip_chunked /slow?delay= /slow_body?delay=
/bytes/{n} /stream/{n} /json /text_latin1 /no_content /not_modified /head /close /client_port.
HTTP/1.0 responses come from the scripted server instead: uvicorn always answers an HTTP/1.1
request with HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
import socket
import threading
import time
import zlib
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

import brotli
import uvicorn
import zstandard

# ---------------------------------------------------------------------------
# Deterministic payloads shared with the tests
# ---------------------------------------------------------------------------

_BLOCK = random.Random(20241123).randbytes(1 << 20)


# The server-sent event stream served at /sse, in chunks cut at awkward places (a BOM, a
# CRLF split across chunks, a UTF-8 character split across chunks, a final event with no
# blank line after it), and the events a client must see, as (event, data, id, retry).
SSE_CHUNKS = [
    b"\xef\xbb\xbf: a comment\r\n",
    b"event: greeting\r\ndata: hello\r",
    b"\ndata: world\r\nid: 1\r\n\r\n",
    b'data: {"n": 2}\n\n',
    b"retry: 1500\ndata: caf\xc3",
    b"\xa9\n\n",
    b"event: empty-data\n\n",
    b"data: never dispatched",
]
SSE_EVENTS = [
    ("greeting", "hello\nworld", "1", None),
    ("message", '{"n": 2}', "1", None),
    ("message", "caf\u00e9", "1", 1500),
    ("empty-data", "", "1", None),
]


def expected_bytes(n: int) -> bytes:
    """The body ``/bytes/{n}`` returns: n pseudo-random but deterministic bytes."""
    reps, rest = divmod(n, len(_BLOCK))
    return _BLOCK * reps + _BLOCK[:rest]


DECODED_TEXT = ("The quick brown fox jumps over the lazy dog. " * 200).encode()
LATIN1_TEXT = "Café crème, naïve façade: ÀÉÎÕÜ ±§"
JSON_DOC = {"name": "httprs", "numbers": [1, 2, 3], "nested": {"ok": True, "none": None}}
CHUNKS = [b"first chunk\n", b"second chunk\n", b"third\n", b"x" * 5000, b"end\n"]


def stream_lines(n: int) -> list[bytes]:
    return [f"line {i}\n".encode() for i in range(n)]


# ---------------------------------------------------------------------------
# ASGI plumbing
# ---------------------------------------------------------------------------


def _hdr(name: str, value: str) -> tuple[bytes, bytes]:
    return (name.lower().encode("latin-1"), value.encode("latin-1"))


async def _respond(send, status: int, body: bytes = b"", headers=None, content_type=None):
    hdrs = list(headers or [])
    if content_type is not None:
        hdrs.append(_hdr("content-type", content_type))
    hdrs.append(_hdr("content-length", str(len(body))))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _query(scope) -> dict[str, str]:
    return dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))


class App:
    """The ASGI callable. ``other_url`` is the base URL of a second server (cross-origin)."""

    def __init__(self) -> None:
        self.other_url = ""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert scope["type"] == "http"
        path = scope["path"]
        parts = [p for p in path.split("/") if p]
        head = parts[0] if parts else ""
        if head == "upload_size":
            return await self.upload_size(scope, receive, send)
        body = await _read_body(receive)
        handler = getattr(self, "route_" + head, None) if head else self.route_root
        if handler is None:
            return await _respond(send, 404, b"Not Found", content_type="text/plain")
        return await handler(scope, parts[1:], body, send)

    # -- routes ---------------------------------------------------------------

    async def route_root(self, scope, args, body, send):
        await _respond(send, 200, b"Hello, world!", content_type="text/plain")

    async def route_echo(self, scope, args, body, send):
        doc = {
            "method": scope["method"],
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "http_version": scope["http_version"],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "body": body.decode("latin-1"),
            "client_port": scope["client"][1] if scope.get("client") else None,
        }
        await _respond(send, 200, json.dumps(doc).encode(), content_type="application/json")

    async def route_echo_body(self, scope, args, body, send):
        ctype = "application/octet-stream"
        for k, v in scope["headers"]:
            if k == b"content-type":
                ctype = v.decode("latin-1")
        await _respond(send, 200, body, content_type=ctype)

    async def upload_size(self, scope, receive, send):
        digest = hashlib.sha256()
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            digest.update(chunk)
            if not message.get("more_body", False):
                break
        doc = {"size": size, "sha256": digest.hexdigest()}
        await _respond(send, 200, json.dumps(doc).encode(), content_type="application/json")

    async def route_status(self, scope, args, body, send):
        code = int(args[0])
        payload = b"" if code in (204, 304) or code < 200 else f"status {code}".encode()
        if code in (204, 304):
            await send({"type": "http.response.start", "status": code, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await _respond(send, code, payload, content_type="text/plain")

    async def route_headers(self, scope, args, body, send):
        headers = [
            _hdr("X-Custom", "custom value"),
            _hdr("X-Dup", "one"),
            _hdr("X-Dup", "two"),
            _hdr("Set-Cookie", "a=1; Path=/"),
            _hdr("Set-Cookie", "b=2; Path=/"),
            _hdr("Set-Cookie", "c=3; Path=/; HttpOnly"),
            _hdr("X-Empty", ""),
            _hdr("X-Latin1", "caf\xe9"),
            _hdr("Cache-Control", "no-cache"),
        ]
        headers += [_hdr(f"X-Many-{i}", f"value-{i}") for i in range(40)]
        await _respond(send, 200, b"headers", headers, content_type="text/plain")

    async def route_redirect(self, scope, args, body, send):
        """/redirect/{code}: relative Location to /echo with that status.
        /redirect/absolute/{code}: absolute Location on this server.
        /redirect/cross/{code}: absolute Location on the other server.
        /redirect/to?url=&status=: any Location.
        /redirect/loop: redirects to itself forever.
        /redirect/chain/{n}: n hops, then /echo.
        """
        q = _query(scope)
        host = dict(scope["headers"]).get(b"host", b"").decode()
        scheme = scope["scheme"]
        if args[0] == "absolute":
            code, location = int(args[1]), f"{scheme}://{host}/echo"
        elif args[0] == "cross":
            code, location = int(args[1]), f"{self.other_url}/echo"
        elif args[0] == "to":
            code, location = int(q.get("status", "302")), q["url"]
        elif args[0] == "loop":
            code, location = 302, "/redirect/loop"
        elif args[0] == "chain":
            n = int(args[1])
            code, location = 302, "/echo" if n <= 1 else f"/redirect/chain/{n - 1}"
        else:
            code, location = int(args[0]), "/echo"
        await _respond(
            send, code, b"redirecting", [_hdr("location", location)], content_type="text/plain"
        )

    async def route_cookies(self, scope, args, body, send):
        if args and args[0] == "set":
            headers = [_hdr("set-cookie", f"{k}={v}; Path=/") for k, v in _query(scope).items()]
            await _respond(send, 200, b"cookies set", headers, content_type="text/plain")
            return
        if args and args[0] == "delete":
            headers = [
                _hdr("set-cookie", f"{k}=; Path=/; Max-Age=0") for k in _query(scope).keys()
            ]
            await _respond(send, 200, b"cookies deleted", headers, content_type="text/plain")
            return
        jar = SimpleCookie()
        for k, v in scope["headers"]:
            if k == b"cookie":
                jar.load(v.decode("latin-1"))
        doc = {k: m.value for k, m in jar.items()}
        await _respond(send, 200, json.dumps(doc).encode(), content_type="application/json")

    async def route_chunked(self, scope, args, body, send):
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [_hdr("content-type", "text/plain")],
        })
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _encoded(self, send, payload: bytes, encoding: str):
        headers = [_hdr("content-encoding", encoding)]
        await _respond(send, 200, payload, headers, content_type="text/plain")

    async def route_gzip(self, scope, args, body, send):
        await self._encoded(send, gzip.compress(DECODED_TEXT), "gzip")

    async def route_deflate(self, scope, args, body, send):
        await self._encoded(send, zlib.compress(DECODED_TEXT), "deflate")

    async def route_br(self, scope, args, body, send):
        await self._encoded(send, brotli.compress(DECODED_TEXT), "br")

    async def route_zstd(self, scope, args, body, send):
        await self._encoded(send, zstandard.ZstdCompressor().compress(DECODED_TEXT), "zstd")

    async def route_gzip_br(self, scope, args, body, send):
        # Applied gzip first, then br: the header lists them in that order.
        await self._encoded(send, brotli.compress(gzip.compress(DECODED_TEXT)), "gzip, br")

    async def route_gzip_chunked(self, scope, args, body, send):
        data = gzip.compress(DECODED_TEXT)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [_hdr("content-type", "text/plain"), _hdr("content-encoding", "gzip")],
        })
        for i in range(0, len(data), 100):
            await send({
                "type": "http.response.body",
                "body": data[i : i + 100],
                "more_body": True,
            })
        await send({"type": "http.response.body", "body": b""})

    async def route_slow(self, scope, args, body, send):
        await asyncio.sleep(float(_query(scope).get("delay", "1")))
        await _respond(send, 200, b"slow", content_type="text/plain")

    async def route_slow_body(self, scope, args, body, send):
        delay = float(_query(scope).get("delay", "1"))
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [_hdr("content-type", "text/plain"), _hdr("content-length", "9")],
        })
        await send({"type": "http.response.body", "body": b"slow", "more_body": True})
        await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b" body"})

    async def route_bytes(self, scope, args, body, send):
        n = int(args[0])
        data = expected_bytes(n)
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [
                _hdr("content-type", "application/octet-stream"),
                _hdr("content-length", str(n)),
            ],
        })
        step = 256 * 1024
        for i in range(0, n, step):
            await send({
                "type": "http.response.body",
                "body": data[i : i + step],
                "more_body": True,
            })
        await send({"type": "http.response.body", "body": b""})

    async def route_stream(self, scope, args, body, send):
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [_hdr("content-type", "text/plain; charset=utf-8")],
        })
        for line in stream_lines(int(args[0])):
            await send({"type": "http.response.body", "body": line, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def route_sse(self, scope, args, body, send):
        """/sse: SSE_CHUNKS; /sse/echo: one event describing the request; /sse/text: a
        text/plain body; /sse/unterminated/N: N bytes of one data line, never ended."""
        kind = args[0] if args else ""
        if kind == "text":
            return await _respond(send, 200, b"data: x\n\n", content_type="text/plain")
        if kind == "echo":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            doc = {"method": scope["method"], "headers": headers, "body": body.decode()}
            chunks = [b"data: " + json.dumps(doc).encode() + b"\n\n"]
        elif kind == "unterminated":
            total = int(args[1])
            chunks = [b"data: "] + [b"x" * 4096] * (total // 4096)
        else:
            chunks = SSE_CHUNKS
        await send({
            "type": "http.response.start",
            "status": 200,
            "headers": [_hdr("content-type", "text/event-stream; charset=utf-8")],
        })
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def route_json(self, scope, args, body, send):
        await _respond(send, 200, json.dumps(JSON_DOC).encode(), content_type="application/json")

    async def route_text_latin1(self, scope, args, body, send):
        await _respond(
            send, 200, LATIN1_TEXT.encode("latin-1"), content_type="text/plain; charset=latin-1"
        )

    async def route_no_content(self, scope, args, body, send):
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def route_not_modified(self, scope, args, body, send):
        await send({
            "type": "http.response.start",
            "status": 304,
            "headers": [_hdr("etag", '"abc"')],
        })
        await send({"type": "http.response.body", "body": b""})

    async def route_head(self, scope, args, body, send):
        # uvicorn drops the body of HEAD responses but keeps Content-Length.
        await _respond(send, 200, b"x" * 1000, [_hdr("x-head", "yes")], content_type="text/plain")

    async def route_close(self, scope, args, body, send):
        await _respond(
            send, 200, b"closing", [_hdr("connection", "close")], content_type="text/plain"
        )

    async def route_client_port(self, scope, args, body, send):
        port = str(scope["client"][1]).encode()
        await _respond(send, 200, port, content_type="text/plain")


# ---------------------------------------------------------------------------
# Serving in a thread
# ---------------------------------------------------------------------------


class UvicornThread:
    """Runs an ASGI app with uvicorn on 127.0.0.1:<ephemeral> in a daemon thread."""

    def __init__(self, app, **config) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.scheme = "https" if config.get("ssl_certfile") else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            http="h11",
            loop="asyncio",
            timeout_keep_alive=30,
            **config,
        )
        self.server = uvicorn.Server(cfg)
        self.server.install_signal_handlers = lambda: None  # uvicorn < 0.29
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> UvicornThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

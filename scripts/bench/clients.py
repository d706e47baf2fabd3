"""Client adapters: each library on its fastest idiomatic path, with equal semantics.

An adapter imports its library in load() (an ImportError there means "missing"),
builds one client in open() with the scenario's pool size, and returns from op() a
callable (sync) or coroutine function (async) doing one operation. Every operation
returns a value the worker compares with the scenario's `expect`: the body length, the
server-counted upload size, or the number of decoded JSON items.

Operations (see scenarios.py): get, stream, post_bytes, upload, upload_gen, post_json,
get_json, get_close (request header "Connection: close": a new connection each time)
and churn (a new client per operation: construct, one GET, close).
"""

from __future__ import annotations

import importlib
import json
import ssl
import threading
from typing import Any

from .scenarios import JSON_PAYLOAD, UPLOAD_CHUNK, Scenario

TIMEOUT = 60.0


class Ctx:
    """What an adapter needs from the run: URLs, the CA file, the request bodies."""

    def __init__(self, info: dict, sc: Scenario, http2: bool = True):
        self.sc = sc
        # An HTTP/1.1-only client runs an h2c scenario's GETs over HTTP/1.1 (h1_url).
        self.url = info["urls"][sc.h1_url if sc.h1_url and not http2 else sc.url]
        self.ca_pem = info["ca_pem"]
        self.body = b"x" * sc.size if sc.size else b""
        self.chunk = b"u" * UPLOAD_CHUNK
        self.json = JSON_PAYLOAD

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_pem)

    def gen(self):
        chunk = self.chunk
        for _ in range(self.sc.size // len(chunk)):
            yield chunk

    async def agen(self):
        chunk = self.chunk
        for _ in range(self.sc.size // len(chunk)):
            yield chunk


def _unsupported(adapter: Adapter, op: str):
    raise NotImplementedError(f"{adapter.name}: operation {op!r} has no adapter")


class Adapter:
    http2 = False  # speaks HTTP/2 in the h2 scenarios (else HTTP/1.1, for reference)
    name = ""
    family = ""
    is_async = False
    modules: tuple[str, ...] = ()
    notes = ""

    def load(self) -> dict[str, str]:
        versions = {}
        for mod in self.modules:
            m = importlib.import_module(mod)
            versions[mod] = str(getattr(m, "__version__", getattr(m, "version", "?")))
        return versions


# --------------------------------------------------------------------------- httpx
def _httpx_kwargs(m, ctx: Ctx) -> dict[str, Any]:
    """Client arguments for httpx and httprs: defaults unless the scenario needs more.

    With one request at a time the default pool holds the one connection in use, so
    only concurrent scenarios set Limits (pool size = concurrency, all kept alive).
    The default timeouts (5 s per connect / read / write / pool wait) are kept.
    """
    kw: dict[str, Any] = {}
    if ctx.sc.h2:
        # HTTP/2: every request in flight multiplexed on one connection; in clear
        # text with prior knowledge (http1=False), as httpx does h2c.
        kw["http2"] = True
        if not ctx.sc.tls:
            kw["http1"] = False
        kw["limits"] = m.Limits(max_connections=1, max_keepalive_connections=1)
    elif ctx.sc.conc > 1:
        n = ctx.sc.conc
        kw["limits"] = m.Limits(max_connections=n, max_keepalive_connections=n)
    if ctx.sc.tls:
        kw["verify"] = ctx.ssl_context()
    return kw


class HttpxSync(Adapter):
    """httpx.Client (also used for httprs.Client: the same API by design)."""

    name = family = "httpx"
    http2 = True
    modules = ("httpx",)

    def open(self, ctx: Ctx) -> None:
        m = importlib.import_module(self.modules[0])
        self.m = m
        self.client = m.Client(**_httpx_kwargs(m, ctx))

    def close(self) -> None:
        self.client.close()

    def op(self, ctx: Ctx):
        c, url, op = self.client, ctx.url, ctx.sc.op
        if op == "get":
            return lambda: len(c.get(url).content)
        if op == "get_close":
            hdrs = {"Connection": "close"}
            return lambda: len(c.get(url, headers=hdrs).content)
        if op == "stream":

            def stream():
                n = 0
                with c.stream("GET", url) as r:
                    for chunk in r.iter_bytes():
                        n += len(chunk)
                return n

            return stream
        if op == "post_bytes":
            body = ctx.body
            return lambda: len(c.post(url, content=body).content)
        if op == "upload":
            body = ctx.body
            return lambda: int(c.post(url, content=body).content)
        if op == "upload_gen":
            return lambda: int(c.post(url, content=ctx.gen()).content)
        if op == "post_json":
            obj = ctx.json
            return lambda: len(c.post(url, json=obj).json())
        if op == "get_json":
            return lambda: len(c.get(url).json())
        if op == "churn":
            m = self.m

            def churn():
                with m.Client() as client:
                    return len(client.get(url).content)

            return churn
        return _unsupported(self, op)


class HttprsSync(HttpxSync):
    name = family = "httprs"
    modules = ("httprs",)


class HttpxAsync(Adapter):
    name = "httpx-async"
    family = "httpx"
    http2 = True
    is_async = True
    modules = ("httpx",)

    async def open(self, ctx: Ctx) -> None:
        m = importlib.import_module(self.modules[0])
        self.client = m.AsyncClient(**_httpx_kwargs(m, ctx))

    async def close(self) -> None:
        await self.client.aclose()

    def op(self, ctx: Ctx):
        c, url, op = self.client, ctx.url, ctx.sc.op
        if op == "get":

            async def get():
                return len((await c.get(url)).content)

            return get
        if op == "stream":

            async def stream():
                n = 0
                async with c.stream("GET", url) as r:
                    async for chunk in r.aiter_bytes():
                        n += len(chunk)
                return n

            return stream
        if op in ("post_bytes", "upload"):
            body, conv = ctx.body, (len if op == "post_bytes" else int)

            async def post():
                return conv((await c.post(url, content=body)).content)

            return post
        if op == "upload_gen":

            async def upload_gen():
                return int((await c.post(url, content=ctx.agen())).content)

            return upload_gen
        if op == "post_json":
            obj = ctx.json

            async def post_json():
                return len((await c.post(url, json=obj)).json())

            return post_json
        if op == "get_json":

            async def get_json():
                return len((await c.get(url)).json())

            return get_json
        return _unsupported(self, op)


class HttprsAsync(HttpxAsync):
    name = "httprs-async"
    family = "httprs"
    modules = ("httprs",)


# ------------------------------------------------------------------------- aiohttp
class Aiohttp(Adapter):
    name = family = "aiohttp"
    is_async = True
    modules = ("aiohttp",)
    loop = "asyncio"

    async def open(self, ctx: Ctx) -> None:
        import aiohttp

        n = max(ctx.sc.conc, 1)
        # HTTP/1.1 only: in the HTTP/2 scenarios a pool of `n` connections, for reference.
        kw = {"ssl": ctx.ssl_context()} if ctx.sc.tls else {}
        conn = aiohttp.TCPConnector(limit=n, limit_per_host=n, **kw)
        self.session = aiohttp.ClientSession(
            connector=conn, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        )

    async def close(self) -> None:
        await self.session.close()

    def op(self, ctx: Ctx):
        s, url, op = self.session, ctx.url, ctx.sc.op
        if op == "get":

            async def get():
                async with s.get(url) as r:
                    return len(await r.read())

            return get
        if op == "stream":

            async def stream():
                n = 0
                async with s.get(url) as r:
                    async for chunk in r.content.iter_any():
                        n += len(chunk)
                return n

            return stream
        if op in ("post_bytes", "upload"):
            body, conv = ctx.body, (len if op == "post_bytes" else int)

            async def post():
                async with s.post(url, data=body) as r:
                    return conv(await r.read())

            return post
        if op == "upload_gen":

            async def upload_gen():
                async with s.post(url, data=ctx.agen()) as r:
                    return int(await r.read())

            return upload_gen
        if op == "post_json":
            obj = ctx.json

            async def post_json():
                async with s.post(url, json=obj) as r:
                    return len(await r.json())

            return post_json
        if op == "get_json":

            async def get_json():
                async with s.get(url) as r:
                    return len(await r.json())

            return get_json
        return _unsupported(self, op)


class AiohttpUvloop(Aiohttp):
    name = "aiohttp-uvloop"
    modules = ("aiohttp", "uvloop")
    loop = "uvloop"


# ------------------------------------------------------------------------- urllib3
class Urllib3(Adapter):
    name = family = "urllib3"
    modules = ("urllib3",)

    def open(self, ctx: Ctx) -> None:
        import urllib3

        n = max(ctx.sc.conc, 1)
        kw: dict[str, Any] = {"maxsize": n, "block": True, "timeout": TIMEOUT}
        if ctx.sc.tls:
            kw["ca_certs"] = ctx.ca_pem
        self.pm = urllib3.PoolManager(**kw)
        self.urllib3 = urllib3

    def close(self) -> None:
        self.pm.clear()

    def op(self, ctx: Ctx):
        pm, url, op = self.pm, ctx.url, ctx.sc.op
        if op == "get":
            return lambda: len(pm.request("GET", url).data)
        if op == "get_close":
            hdrs = {"Connection": "close"}
            return lambda: len(pm.request("GET", url, headers=hdrs).data)
        if op == "stream":

            def stream():
                n = 0
                r = pm.request("GET", url, preload_content=False)
                for chunk in r.stream(65536):
                    n += len(chunk)
                r.release_conn()
                return n

            return stream
        if op == "post_bytes":
            body = ctx.body
            return lambda: len(pm.request("POST", url, body=body).data)
        if op == "upload":
            body = ctx.body
            return lambda: int(pm.request("POST", url, body=body).data)
        if op == "upload_gen":
            return lambda: int(pm.request("POST", url, body=ctx.gen(), chunked=True).data)
        if op == "post_json":
            obj = ctx.json
            return lambda: len(pm.request("POST", url, json=obj).json())
        if op == "get_json":
            hdrs = {"Accept-Encoding": "gzip"}
            return lambda: len(pm.request("GET", url, headers=hdrs).json())
        if op == "churn":
            urllib3 = self.urllib3

            def churn():
                pm2 = urllib3.PoolManager()
                try:
                    return len(pm2.request("GET", url).data)
                finally:
                    pm2.clear()

            return churn
        return _unsupported(self, op)


# ------------------------------------------------------------------------ requests
class Requests(Adapter):
    name = family = "requests"
    modules = ("requests",)

    def open(self, ctx: Ctx) -> None:
        import requests
        from requests.adapters import HTTPAdapter

        n = max(ctx.sc.conc, 1)
        s = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=n, pool_block=True)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        self.s = s
        self.requests = requests

    def close(self) -> None:
        self.s.close()

    def op(self, ctx: Ctx):
        s, url, op, t = self.s, ctx.url, ctx.sc.op, TIMEOUT
        # verify per request: Session.verify loses to REQUESTS_CA_BUNDLE from the
        # environment (psf/requests#3829), a per-request value does not
        v = ctx.ca_pem if ctx.sc.tls else True
        if op == "get":
            return lambda: len(s.get(url, timeout=t, verify=v).content)
        if op == "get_close":
            hdrs = {"Connection": "close"}
            return lambda: len(s.get(url, headers=hdrs, timeout=t, verify=v).content)
        if op == "stream":

            def stream():
                n = 0
                with s.get(url, stream=True, timeout=t) as r:
                    for chunk in r.iter_content(65536):
                        n += len(chunk)
                return n

            return stream
        if op == "post_bytes":
            body = ctx.body
            return lambda: len(s.post(url, data=body, timeout=t).content)
        if op == "upload":
            body = ctx.body
            return lambda: int(s.post(url, data=body, timeout=t).content)
        if op == "upload_gen":
            return lambda: int(s.post(url, data=ctx.gen(), timeout=t).content)
        if op == "post_json":
            obj = ctx.json
            return lambda: len(s.post(url, json=obj, timeout=t).json())
        if op == "get_json":
            return lambda: len(s.get(url, timeout=t).json())
        if op == "churn":
            requests = self.requests

            def churn():
                with requests.Session() as s2:
                    return len(s2.get(url, timeout=t).content)

            return churn
        return _unsupported(self, op)


# -------------------------------------------------------------------------- pycurl
class _Reader:
    """READFUNCTION source over a generator, honouring libcurl's size limit."""

    def __init__(self, it):
        self.it = it
        self.buf = memoryview(b"")

    def read(self, size: int) -> bytes:
        if not self.buf:
            chunk = next(self.it, None)
            if chunk is None:
                return b""
            self.buf = memoryview(chunk)
        out, self.buf = self.buf[:size], self.buf[size:]
        return bytes(out)


class Pycurl(Adapter):
    name = family = "pycurl"
    http2 = True
    modules = ("pycurl",)

    def load(self) -> dict[str, str]:
        import pycurl

        return {"pycurl": pycurl.version}

    def open(self, ctx: Ctx) -> None:
        import pycurl

        self.pycurl = pycurl
        self.local = threading.local()
        self.handles: list = []
        self.lock = threading.Lock()
        if ctx.sc.conc > 1:
            self.notes = "one Curl handle per thread (handles are not thread-safe)"

    def close(self) -> None:
        for h in self.handles:
            h.close()

    def _handle(self, ctx: Ctx, op: str):
        h = getattr(self.local, "h", None)
        if h is not None:
            return h
        pc = self.pycurl
        h = pc.Curl()
        h.setopt(pc.URL, ctx.url)
        h.setopt(pc.TIMEOUT, int(TIMEOUT))
        headers = ["Expect:"]  # like every other client: no 100-continue round trip
        if ctx.sc.tls:
            h.setopt(pc.CAINFO, ctx.ca_pem)
        if ctx.sc.h2:
            if not pc.version_info()[4] & pc.VERSION_HTTP2:
                raise RuntimeError("this pycurl's libcurl has no HTTP/2 (nghttp2)")
            h.setopt(
                pc.HTTP_VERSION,
                pc.CURL_HTTP_VERSION_2TLS
                if ctx.sc.tls
                else pc.CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE,
            )
        if op == "get_close":
            headers.append("Connection: close")
        if op in ("post_bytes", "upload"):
            h.setopt(pc.POSTFIELDS, ctx.body)
            h.setopt(pc.POSTFIELDSIZE, len(ctx.body))
            headers.append("Content-Type: application/octet-stream")
        if op == "upload_gen":
            h.setopt(pc.POST, 1)
            headers.append("Transfer-Encoding: chunked")
            headers.append("Content-Type: application/octet-stream")
        if op == "post_json":
            h.setopt(pc.POST, 1)
            headers.append("Content-Type: application/json")
        if op == "get_json":
            h.setopt(pc.ACCEPT_ENCODING, "gzip")
        h.setopt(pc.HTTPHEADER, headers)
        self.local.h = h
        with self.lock:
            self.handles.append(h)
        return h

    def op(self, ctx: Ctx):
        pc, op = self.pycurl, ctx.sc.op
        from io import BytesIO

        if op == "churn":
            url = ctx.url

            def churn():
                h = pc.Curl()
                try:
                    buf = BytesIO()
                    h.setopt(pc.URL, url)
                    h.setopt(pc.WRITEDATA, buf)
                    h.perform()
                    return len(buf.getvalue())
                finally:
                    h.close()

            return churn

        def body(h) -> bytes:
            buf = BytesIO()
            h.setopt(pc.WRITEDATA, buf)
            h.perform()
            return buf.getvalue()

        if op in ("get", "get_close", "post_bytes"):
            return lambda: len(body(self._handle(ctx, op)))
        if op == "upload":
            return lambda: int(body(self._handle(ctx, op)))
        if op == "stream":

            def stream():
                h = self._handle(ctx, op)
                n = 0

                def write(data):
                    nonlocal n
                    n += len(data)

                h.setopt(pc.WRITEFUNCTION, write)
                h.perform()
                return n

            return stream
        if op == "upload_gen":

            def upload_gen():
                h = self._handle(ctx, op)
                h.setopt(pc.READFUNCTION, _Reader(ctx.gen()).read)
                return int(body(h))

            return upload_gen
        if op == "post_json":
            obj = ctx.json

            def post_json():
                h = self._handle(ctx, op)
                h.setopt(pc.POSTFIELDS, json.dumps(obj))
                return len(json.loads(body(h)))

            return post_json
        if op == "get_json":
            return lambda: len(json.loads(body(self._handle(ctx, op))))
        return _unsupported(self, op)


# ----------------------------------------------------------------------- pyreqwest
class PyreqwestSync(Adapter):
    name = family = "pyreqwest"
    http2 = True
    modules = ("pyreqwest",)

    def load(self) -> dict[str, str]:
        from importlib.metadata import version

        import pyreqwest  # noqa: F401

        return {"pyreqwest": version("pyreqwest")}

    def _builder(self, ctx: Ctx, cls):
        from datetime import timedelta

        b = cls().timeout(timedelta(seconds=TIMEOUT)).max_connections(max(ctx.sc.conc, 1))
        if ctx.sc.tls:
            with open(ctx.ca_pem, "rb") as f:
                b = b.add_root_certificate_pem(f.read())
        if ctx.sc.op == "get_json":
            b = b.gzip(True)
        if ctx.sc.h2:
            b = b.http2(True) if ctx.sc.tls else b.http2_prior_knowledge()
        return b

    def open(self, ctx: Ctx) -> None:
        from pyreqwest.client import SyncClientBuilder

        self.builder_cls = SyncClientBuilder
        self.client = self._builder(ctx, SyncClientBuilder).build()

    def close(self) -> None:
        self.client.close()

    def op(self, ctx: Ctx):
        c, url, op = self.client, ctx.url, ctx.sc.op
        if op == "get":
            return lambda: len(c.get(url).build().send().bytes())
        if op == "get_close":
            return lambda: len(c.get(url).header("Connection", "close").build().send().bytes())
        if op == "stream":

            def stream():
                n = 0
                with c.get(url).build_streamed() as r:
                    reader = r.body_reader
                    while (chunk := reader.read_chunk()) is not None:
                        n += len(chunk)
                return n

            return stream
        if op in ("post_bytes", "upload"):
            body, conv = ctx.body, (len if op == "post_bytes" else lambda b: int(bytes(b)))
            return lambda: conv(c.post(url).body_bytes(body).build().send().bytes())
        if op == "upload_gen":
            return lambda: int(bytes(c.post(url).body_stream(ctx.gen()).build().send().bytes()))
        if op == "post_json":
            obj = ctx.json
            return lambda: len(c.post(url).body_json(obj).build().send().json())
        if op == "get_json":
            return lambda: len(c.get(url).build().send().json())
        if op == "churn":
            cls = self.builder_cls

            def churn():
                with cls().build() as client:
                    return len(client.get(url).build().send().bytes())

            return churn
        return _unsupported(self, op)


class PyreqwestAsync(PyreqwestSync):
    name = "pyreqwest-async"
    family = "pyreqwest"
    is_async = True

    async def open(self, ctx: Ctx) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = self._builder(ctx, ClientBuilder).build()

    async def close(self) -> None:
        await self.client.close()

    def op(self, ctx: Ctx):
        c, url, op = self.client, ctx.url, ctx.sc.op
        if op == "get":

            async def get():
                return len(await (await c.get(url).build().send()).bytes())

            return get
        if op == "stream":

            async def stream():
                n = 0
                async with c.get(url).build_streamed() as r:
                    reader = r.body_reader
                    while (chunk := await reader.read_chunk()) is not None:
                        n += len(chunk)
                return n

            return stream
        if op in ("post_bytes", "upload"):
            body, conv = ctx.body, (len if op == "post_bytes" else lambda b: int(bytes(b)))

            async def post():
                return conv(await (await c.post(url).body_bytes(body).build().send()).bytes())

            return post
        if op == "upload_gen":

            async def upload_gen():
                r = await c.post(url).body_stream(ctx.agen()).build().send()
                return int(bytes(await r.bytes()))

            return upload_gen
        if op == "post_json":
            obj = ctx.json

            async def post_json():
                return len(await (await c.post(url).body_json(obj).build().send()).json())

            return post_json
        if op == "get_json":

            async def get_json():
                return len(await (await c.get(url).build().send()).json())

            return get_json
        return _unsupported(self, op)


ADAPTERS: list[type[Adapter]] = [
    HttprsSync,
    HttprsAsync,
    HttpxSync,
    HttpxAsync,
    Aiohttp,
    AiohttpUvloop,
    Urllib3,
    Requests,
    Pycurl,
    PyreqwestSync,
    PyreqwestAsync,
]
CLIENTS: dict[str, type[Adapter]] = {a.name: a for a in ADAPTERS}


def runs_scenario(adapter: type[Adapter], sc: Scenario) -> bool:
    if sc.mode == "any":
        return True
    return (sc.mode == "async") == adapter.is_async


def select(names: list[str] | None) -> list[type[Adapter]]:
    """Adapters named exactly, or by family ("httpx" selects httpx and httpx-async)."""
    if not names:
        return list(ADAPTERS)
    unknown = [n for n in names if not any(n in (a.name, a.family) for a in ADAPTERS)]
    if unknown:
        raise SystemExit(f"unknown client(s): {', '.join(unknown)}; known: {', '.join(CLIENTS)}")
    return [a for a in ADAPTERS if a.name in names or a.family in names]

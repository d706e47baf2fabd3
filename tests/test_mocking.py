"""Mocking libraries that patch httpcore (respx's default mocker) intercept httprs too.

openai's and anthropic's test suites mock every request with respx, which replaces
httpcore.ConnectionPool.handle_request; httprs's transports route through the patched
method while it is in place and go straight to the C++ core otherwise.
"""

from __future__ import annotations

import functools
import inspect

import anyio
import httpx
import pytest
import respx

import httprs


def test_respx_intercepts_sync_client():
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        route = router.post("/v1/things").mock(
            return_value=httpx.Response(201, json={"id": 7}, headers={"X-Mock": "yes"})
        )
        with httprs.Client() as client:
            r = client.post("http://api.mocked.invalid/v1/things", json={"name": "a"})
    assert route.called
    assert r.status_code == 201
    assert r.json() == {"id": 7}
    assert r.headers["x-mock"] == "yes"
    assert r.http_version == "HTTP/1.1"
    assert route.calls.last.request.content == b'{"name":"a"}'


def test_respx_mocked_response_keeps_its_extensions():
    # respx hands the mock's extensions to httpcore, and httpx's transport copies
    # httpcore's onto the client's response: a mocked 404 without a reason phrase reads
    # "Not Found" (not ""), and what the mock put there arrives (respx's own
    # tests/test_stats.py compares the two dicts).
    mocked = httpx.Response(404, text="gone", extensions={"x-trace": "abc"})
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        route = router.get("/missing").mock(return_value=mocked)
        with httprs.Client() as client:
            r = client.get("http://api.mocked.invalid/missing")
    assert r.reason_phrase == "Not Found"
    assert r.extensions == route.calls.last.response.extensions == {"x-trace": "abc"}
    assert r.http_version == "HTTP/1.1"
    with pytest.raises(httprs.HTTPStatusError, match="'404 Not Found'"):
        r.raise_for_status()


@pytest.mark.anyio
async def test_respx_mocked_response_keeps_its_extensions_async():
    mocked = httpx.Response(202, text="queued", extensions={"http_version": b"HTTP/2"})
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        router.get("/job").mock(return_value=mocked)
        async with httprs.AsyncClient() as client:
            r = await client.get("http://api.mocked.invalid/job")
    assert r.reason_phrase == "Accepted"
    assert r.http_version == "HTTP/2"
    assert r.extensions == {"http_version": b"HTTP/2"}


def test_respx_mocked_response_reaches_a_patched_response_init(monkeypatch):
    # httpx's transport builds the response by keyword with httpcore's extensions:
    # instrumentation wrapping Response.__init__ sees the mock's, not made-up ones.
    seen = []
    genuine = httprs.Response.__init__

    def init(self, *args, **kwargs):
        seen.append(dict(kwargs.get("extensions") or {}))
        genuine(self, *args, **kwargs)

    monkeypatch.setattr(httprs.Response, "__init__", init)
    mocked = httpx.Response(
        404, text="gone", extensions={"x-trace": "abc", "http_version": b"HTTP/2"}
    )
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        router.get("/missing").mock(return_value=mocked)
        with httprs.Client() as client:
            r = client.get("http://api.mocked.invalid/missing")
    # (The last call is the client's response; respx builds responses of its own too.)
    assert seen and seen[-1] == {"x-trace": "abc", "http_version": b"HTTP/2"}
    assert r.reason_phrase == "Not Found"
    assert r.http_version == "HTTP/2"
    assert r.extensions == {"x-trace": "abc", "http_version": b"HTTP/2"}


def test_respx_side_effect_exception_and_recovery(server):
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        router.get("/slow").mock(side_effect=httprs.ConnectTimeout("mocked timeout"))
        with httprs.Client() as client:
            with pytest.raises(httprs.ConnectTimeout):
                client.get("http://api.mocked.invalid/slow")
    # Unpatched again: the same kind of client reaches the real server through the core.
    with httprs.Client() as client:
        assert client.get(server.url + "/").status_code == 200


def test_respx_pass_through_reaches_the_server(server):
    with respx.mock(assert_all_called=False) as router:
        router.get(server.url + "/json").pass_through()
        with httprs.Client() as client:
            r = client.get(server.url + "/json")
    assert r.status_code == 200
    assert r.json()


@pytest.mark.anyio
async def test_respx_intercepts_async_client():
    with respx.mock(base_url="http://api.mocked.invalid") as router:
        route = router.get("/v1/items").mock(return_value=httpx.Response(200, text="hello"))
        async with httprs.AsyncClient() as client:
            r = await client.get("http://api.mocked.invalid/v1/items")
            async with client.stream("GET", "http://api.mocked.invalid/v1/items") as s:
                body = await s.aread()
    assert route.call_count == 2
    assert r.text == "hello"
    assert body == b"hello"


# --- httpcore2: respx2 (openai 3.x's tests) and pytest-httpx2 patch httpcore2's pool ------


def _httpcore2_mocker():
    """A respx mocker for httpcore2, as openai 3.x's vendored respx2 and pytest-httpx2
    define it: respx's httpcore mocker pointed at httpcore2's classes."""
    pytest.importorskip("httpcore2")
    from respx.mocks import HTTPCoreMocker, Mocker

    existing = Mocker.registry.get("httpcore2")
    if existing is not None:
        return existing

    class HTTPCore2Mocker(HTTPCoreMocker):
        name = "httpcore2"
        targets = [
            "httpcore2._sync.connection.HTTPConnection",
            "httpcore2._sync.connection_pool.ConnectionPool",
            "httpcore2._sync.http_proxy.HTTPProxy",
            "httpcore2._async.connection.AsyncHTTPConnection",
            "httpcore2._async.connection_pool.AsyncConnectionPool",
            "httpcore2._async.http_proxy.AsyncHTTPProxy",
        ]

    return HTTPCore2Mocker


def test_httpcore2_patch_intercepts_sync_client(server):
    _httpcore2_mocker()
    with respx.mock(using="httpcore2", base_url="http://api.mocked.invalid") as router:
        route = router.post("/v1/things").mock(
            return_value=httpx.Response(201, json={"id": 9}, headers={"X-Mock": "2"})
        )
        router.get("/boom").mock(side_effect=httprs.ReadTimeout("mocked"))
        with httprs.Client() as client:
            r = client.post("http://api.mocked.invalid/v1/things", json={"n": 1})
            with pytest.raises(httprs.ReadTimeout, match="mocked"):
                client.get("http://api.mocked.invalid/boom")
    assert route.called and route.calls.last.request.content == b'{"n":1}'
    assert r.status_code == 201 and r.json() == {"id": 9} and r.headers["x-mock"] == "2"
    # Unpatched again: straight to the core.
    with httprs.Client() as client:
        assert client.get(server.url + "/").status_code == 200


def test_httpcore2_patch_pass_through_reaches_the_server(server):
    _httpcore2_mocker()
    with respx.mock(using="httpcore2", assert_all_called=False) as router:
        router.get(server.url + "/json").pass_through()
        with httprs.Client() as client:
            r = client.get(server.url + "/json")
    assert r.status_code == 200 and r.json()


@pytest.mark.anyio
async def test_httpcore2_patch_intercepts_async_client():
    _httpcore2_mocker()
    with respx.mock(using="httpcore2", base_url="http://api.mocked.invalid") as router:
        route = router.get("/v1/items").mock(return_value=httpx.Response(200, text="two"))
        async with httprs.AsyncClient() as client:
            r = await client.get("http://api.mocked.invalid/v1/items")
            async with client.stream("GET", "http://api.mocked.invalid/v1/items") as s:
                body = await s.aread()
    assert route.call_count == 2 and r.text == "two" and body == b"two"


def test_httpcore_patch_still_wins_when_both_are_imported():
    """Both httpcores imported, only httpcore's patched: that patch is the one used."""
    pytest.importorskip("httpcore2")
    import httpcore2  # noqa: F401

    with respx.mock(base_url="http://api.mocked.invalid") as router:
        router.get("/one").mock(return_value=httpx.Response(200, text="one"))
        with httprs.Client() as client:
            assert client.get("http://api.mocked.invalid/one").text == "one"


HTTPX2_PYTEST_TESTS = """
import httpx2
import pytest


def test_response(httpx2_mock):
    httpx2_mock.add_response(url="http://api.example/a", json={"ok": True})
    with httpx2.Client() as client:
        assert client.get("http://api.example/a").json() == {"ok": True}
    assert type(client._transport).__module__ == "httpx2"


def test_proxy_matching_reads_the_httpcore2_pool(httpx2_mock):
    import httpcore2

    httpx2_mock.add_response(proxy_url="http://proxy.example:3128/", text="via proxy")
    with httpx2.Client(proxy="http://proxy.example:3128") as client:
        assert isinstance(client._transport_for_url(httpx2.URL("http://x"))._pool,
                          httpcore2.HTTPProxy)
        assert client.get("http://api.example/p").text == "via proxy"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async(httpx2_mock, anyio_backend):
    httpx2_mock.add_exception(httpx2.ReadTimeout("slow"), url="http://api.example/s")
    httpx2_mock.add_response(url="http://api.example/b", text="async ok")
    async with httpx2.AsyncClient() as client:
        assert (await client.get("http://api.example/b")).text == "async ok"
        with pytest.raises(httpx2.ReadTimeout, match="slow"):
            await client.get("http://api.example/s")
"""


@pytest.mark.httprs_only
def test_httpx2_pytest_runs_against_httprs(tmp_path):
    """httpx2-pytest (pytest-httpx's httpx2 fork) patches httpx2.HTTPTransport's methods
    and reads `_pool._proxy_url` as an httpcore2 proxy: both work under the switch."""
    pytest.importorskip("pytest_httpx2")
    import os
    import subprocess
    import sys

    (tmp_path / "test_inner.py").write_text(HTTPX2_PYTEST_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "httprs.run",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            str(tmp_path / "test_inner.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert "3 passed" in proc.stdout, proc.stdout + proc.stderr


def test_pass_through_reuses_one_pool_and_connection(server):
    with respx.mock(assert_all_called=False) as router:
        router.get(server.url + "/json").pass_through()
        with httprs.Client() as client:
            first = client.get(server.url + "/json")
            pool = client._transport._pool
            second = client.get(server.url + "/json")
            assert client._transport._pool is pool
            assert len(pool.connections) == 1
    assert first.status_code == second.status_code == 200


@pytest.mark.anyio
async def test_pass_through_reuses_one_pool_and_connection_async(server):
    with respx.mock(assert_all_called=False) as router:
        router.get(server.url + "/json").pass_through()
        async with httprs.AsyncClient() as client:
            first = await client.get(server.url + "/json")
            pool = client._transport._pool
            second = await client.get(server.url + "/json")
            assert client._transport._pool is pool
            assert len(pool.connections) == 1
    assert first.status_code == second.status_code == 200


# --- a patch put in place (and taken away) between two requests of one client ------------


def test_respx_patch_between_requests_of_one_client(server):
    # The transport remembers that httpcore's pool class was unpatched (its type version
    # tag); respx's patch changes the class, so the next request must see it.
    with httprs.Client() as client:
        assert client.get(server.url + "/").text == "Hello, world!"
        with respx.mock(assert_all_called=False) as router:
            router.get(server.url + "/").mock(return_value=httpx.Response(200, text="mocked"))
            assert client.get(server.url + "/").text == "mocked"
        assert client.get(server.url + "/").text == "Hello, world!"


@pytest.mark.anyio
async def test_respx_patch_between_requests_of_one_async_client(server):
    async with httprs.AsyncClient() as client:
        assert (await client.get(server.url + "/")).text == "Hello, world!"
        with respx.mock(assert_all_called=False) as router:
            router.get(server.url + "/").mock(return_value=httpx.Response(200, text="mocked"))
            assert (await client.get(server.url + "/")).text == "mocked"
        assert (await client.get(server.url + "/")).text == "Hello, world!"


# --- how the transports tell that httpcore's pool method was patched ----------------------

_NON_CLASS_POOL = """
import sys
import httpcore
import httpcore._sync.connection_pool as pool_module
import httprs

real = pool_module.ConnectionPool
pool_module.ConnectionPool = object()  # not a class: nothing to route through
with httprs.Client() as client:
    print(client.get(sys.argv[1]).text)
    pool_module.ConnectionPool = real
    real.handle_request = lambda pool, request: httpcore.Response(200, content=b"patched")
    print(client.get(sys.argv[1]).text)
"""


def test_pool_name_that_is_not_a_class_is_ignored(server):
    import subprocess
    import sys

    # A fresh interpreter: the transports have not found httpcore's pool class yet.
    proc = subprocess.run(
        [sys.executable, "-c", _NON_CLASS_POOL, server.url + "/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Hello,", "world!", "patched"]


_IMPORTED_AFTER_THE_FIRST_REQUESTS = """
import asyncio, importlib, sys
import httprs

url, package, flavour = sys.argv[1:]
assert package not in sys.modules  # (httprs imports neither httpcore)


def patch():
    core = importlib.import_module(package)
    if flavour == "sync":
        core.ConnectionPool.handle_request = lambda pool, request: core.Response(
            200, content=b"patched"
        )
    else:
        async def patched(pool, request):
            return core.Response(200, content=b"patched")

        core.AsyncConnectionPool.handle_async_request = patched


if flavour == "sync":
    with httprs.Client() as client:
        print(client.get(url).text)
        print(client.get(url).text)  # the package was found absent: remembered
        patch()
        print(client.get(url).text)
else:
    async def main():
        async with httprs.AsyncClient() as client:
            print((await client.get(url)).text)
            print((await client.get(url)).text)
            patch()
            print((await client.get(url)).text)

    asyncio.run(main())
"""


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("package", ["httpcore", "httpcore2"])
def test_httpcore_imported_and_patched_after_requests_is_seen(server, package, flavour):
    """A transport remembers that the package was not imported while the module table
    is unchanged (its PEP 509 version); an import changes the table, so a package
    imported and patched between two requests of one client is used by the next one."""
    import subprocess
    import sys

    pytest.importorskip(package)
    # A fresh interpreter: the package is not imported when the client's requests start.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _IMPORTED_AFTER_THE_FIRST_REQUESTS,
            server.url + "/",
            package,
            flavour,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Hello,", "world!", "Hello,", "world!", "patched"]


def _patches_when_inspected(cls, name, patched):
    """An object that passes for httpcore's own method (its __module__ is httpcore's), and
    that puts `patched` in place on `cls` while the transport reads that __module__."""

    class LooksLikeHttpcores:
        @property
        def __module__(self):
            setattr(cls, name, patched)
            return "httpcore._fake"

    return LooksLikeHttpcores()


def test_patch_made_while_the_pool_class_is_inspected_is_seen(server, monkeypatch):
    # The transport remembers the class's version tag as read before it looked at the
    # method: a change made meanwhile must show on the next request.
    import httpcore

    def patched(pool, request):
        return httpcore.Response(200, content=b"patched")

    cls = httpcore.ConnectionPool
    monkeypatch.setattr(cls, "handle_request", cls.handle_request)  # restored on exit
    with httprs.Client() as client:
        assert client.get(server.url + "/").text == "Hello, world!"
        cls.handle_request = _patches_when_inspected(cls, "handle_request", patched)
        assert client.get(server.url + "/").text == "Hello, world!"
        assert client.get(server.url + "/").text == "patched"


@pytest.mark.anyio
async def test_patch_made_while_the_pool_class_is_inspected_is_seen_async(server, monkeypatch):
    import httpcore

    async def patched(pool, request):
        return httpcore.Response(200, content=b"patched")

    cls = httpcore.AsyncConnectionPool
    monkeypatch.setattr(cls, "handle_async_request", cls.handle_async_request)
    async with httprs.AsyncClient() as client:
        assert (await client.get(server.url + "/")).text == "Hello, world!"
        cls.handle_async_request = _patches_when_inspected(cls, "handle_async_request", patched)
        assert (await client.get(server.url + "/")).text == "Hello, world!"
        assert (await client.get(server.url + "/")).text == "patched"


# unittest.mock's autospec: the methods are Python functions (httprs._methods), so a
# patched method is bound and records `self`, as httpx's are.


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_autospec_patch_of_a_client_method_records_self(server, lib):
    from unittest import mock

    with mock.patch.object(lib.Client, "send", autospec=True) as send:
        send.return_value = lib.Response(204)
        with lib.Client() as client:
            assert client.get(server.url + "/").status_code == 204
    (self_arg, request), kwargs = send.call_args
    assert self_arg is client
    assert isinstance(request, lib.Request)
    send.assert_called_once_with(client, request, auth=mock.ANY, follow_redirects=mock.ANY)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_autospec_side_effect_gets_self_and_the_real_method_runs(server, lib):
    from unittest import mock

    real_send = lib.Client.send
    seen = []

    def spy(self, request, **kwargs):
        seen.append((type(self).__name__, request.url.path))
        return real_send(self, request, **kwargs)

    with mock.patch.object(lib.Client, "send", autospec=True, side_effect=spy):
        with lib.Client() as client:
            assert client.get(server.url + "/").status_code == 200
    assert seen == [("Client", "/")]


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.anyio
async def test_autospec_patch_of_an_async_method_is_awaited_with_self(lib):
    from unittest import mock

    with mock.patch.object(lib.AsyncClient, "post", autospec=True) as post:
        post.return_value = lib.Response(201)
        async with lib.AsyncClient() as client:
            response = await client.post("http://api.mocked.invalid/x", json={"a": 1})
    assert response.status_code == 201
    post.assert_awaited_once_with(client, "http://api.mocked.invalid/x", json={"a": 1})


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_autospec_of_response_and_transport_methods(lib):
    from unittest import mock

    response = lib.Response(200, json={"a": 1})
    with mock.patch.object(lib.Response, "json", autospec=True) as json_method:
        json_method.return_value = {"patched": True}
        assert response.json() == {"patched": True}
    json_method.assert_called_once_with(response)
    with mock.patch.object(lib.HTTPTransport, "handle_request", autospec=True) as handle:
        handle.return_value = lib.Response(418)
        with lib.Client() as client:
            assert client.get("http://api.mocked.invalid/").status_code == 418
    ((transport, request), _) = handle.call_args
    assert isinstance(transport, lib.HTTPTransport) and request.url.path == "/"


@pytest.mark.anyio
async def test_async_methods_return_real_coroutines():
    import inspect

    async with httprs.AsyncClient(
        transport=httprs.MockTransport(lambda r: httprs.Response(200))
    ) as c:
        pending = c.get("http://mocked.invalid/")
        assert inspect.iscoroutine(pending)
        assert (await pending).status_code == 200
    assert inspect.iscoroutinefunction(httprs.AsyncClient.get)
    assert inspect.isfunction(httprs.AsyncClient.send)
    assert inspect.isfunction(httprs.Client.get)


def _wraps(original, on_call):
    """A wrapper as wrapt's look to the transport: the wrapped function's `__module__`
    and a `__wrapped__` (what functools.wraps gives)."""
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def wrapper(self, request, *args, **kwargs):
            on_call(request)
            return await original(self, request, *args, **kwargs)

    else:

        @functools.wraps(original)
        def wrapper(self, request, *args, **kwargs):
            on_call(request)
            return original(self, request, *args, **kwargs)

    return wrapper


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.parametrize("flavour", ["sync", "asyncio", "trio"])
def test_a_wrapper_on_httpcores_connection_method_runs(server, monkeypatch, lib, flavour):
    """elastic-apm adds its `traceparent` header in a wrapper of httpcore's
    per-connection `handle_request`; httpx's transport reaches it through httpcore's
    pool. On httprs the wrapper never ran (httprs has no httpcore connections): the
    request now goes through a real pool of httpcore while the wrapper is in place, so
    the header reaches the server, and the client's own path comes back once it is
    gone."""
    import httpcore

    calls = []

    def add_traceparent(request):
        calls.append(request.url.target)
        request.headers.append((b"traceparent", b"00-trace-span-01"))

    is_async = flavour != "sync"
    cls = httpcore.AsyncHTTPConnection if is_async else httpcore.HTTPConnection
    name = "handle_async_request" if is_async else "handle_request"
    monkeypatch.setattr(cls, name, _wraps(getattr(cls, name), add_traceparent))

    def sent_headers(response):
        return dict(response.json()["headers"])

    if not is_async:
        with lib.Client() as client:
            first = sent_headers(client.get(server.url + "/echo"))
            monkeypatch.undo()
            after = sent_headers(client.get(server.url + "/echo"))
    else:

        async def main():
            async with lib.AsyncClient() as client:
                got = sent_headers(await client.get(server.url + "/echo"))
                monkeypatch.undo()
                return got, sent_headers(await client.get(server.url + "/echo"))

        first, after = anyio.run(main, backend=flavour)
    assert first.get("traceparent") == "00-trace-span-01"
    assert calls == [b"/echo"]
    assert "traceparent" not in after


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.parametrize("where", ["pool", "connection"])
@pytest.mark.parametrize("flavour", ["sync", "asyncio", "trio"])
def test_a_wrapt_wrapper_on_httpcore_gets_the_request(server, lib, where, flavour):
    """APM agents wrap httpcore's methods with wrapt (elastic-apm its connections'); a
    wrapt wrapper called unbound takes the pool for its request, so it must be called as
    `pool.handle_request(request)` calls it: bound. httprs called it unbound, and every
    request failed once the wrapper was seen."""
    import httpcore
    import wrapt

    is_async = flavour != "sync"
    if where == "pool":
        cls = httpcore.AsyncConnectionPool if is_async else httpcore.ConnectionPool
    else:
        cls = httpcore.AsyncHTTPConnection if is_async else httpcore.HTTPConnection
    name = "handle_async_request" if is_async else "handle_request"
    seen = []

    def wrapper(wrapped, instance, args, kwargs):
        request = args[0]
        seen.append((type(instance).__name__, request.url.target))
        request.headers.append((b"traceparent", b"00-wrapt-01"))
        return wrapped(*args, **kwargs)

    original = cls.__dict__[name]
    wrapt.wrap_function_wrapper(cls, name, wrapper)
    try:
        if not is_async:
            with lib.Client() as client:
                response = client.get(server.url + "/echo")
                pool = client._transport._pool
        else:

            async def main():
                async with lib.AsyncClient() as client:
                    return await client.get(server.url + "/echo"), client._transport._pool

            response, pool = anyio.run(main, backend=flavour)
    finally:
        setattr(cls, name, original)
    assert dict(response.json()["headers"])["traceparent"] == "00-wrapt-01"
    assert seen == [(cls.__name__, b"/echo")]
    assert pool.connections == []  # the client's close closed the pool it sent through


@pytest.mark.httprs_only
def test_threads_sending_through_a_wrapped_connection_share_one_pool(server):
    """Requests of many threads through a wrapped httpcore connection method share one
    real pool per transport (a race made one per thread), closed with the client."""
    import concurrent.futures

    import httpcore

    calls = []
    original = httpcore.HTTPConnection.handle_request

    @functools.wraps(original)
    def counting(self, request):
        calls.append(1)
        return original(self, request)

    httpcore.HTTPConnection.handle_request = counting
    try:
        with httprs.Client() as client:
            with concurrent.futures.ThreadPoolExecutor(16) as threads:
                codes = list(
                    threads.map(lambda _: client.get(server.url + "/").status_code, range(64))
                )
            pools = client._transport.__dict__["_sending_pools"]
            assert len(pools) == 1
        assert pools[0].connections == []
    finally:
        httpcore.HTTPConnection.handle_request = original
    # (httpcore's pool may offer a request to a second connection when the first it
    # picked turned out busy, as under httpx)
    assert codes == [200] * 64 and len(calls) >= 64


# -- a pool changed by the program ---------------------------------------------------


class _Refusing:
    """A network backend that refuses every connection, wrapping the pool's own: what
    prefect's SSRF guard (`SSRFProtectedHTTPTransport`) puts in `_pool._network_backend`
    for a private or loopback address."""

    def __init__(self, inner):
        self._inner = inner
        self.asked = []

    def connect_tcp(self, host, port, **kwargs):
        self.asked.append((host, port))
        import httpcore

        raise httpcore.ConnectError(f"Refusing to connect to {host!r}: a private address")

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _AsyncRefusing(_Refusing):
    async def connect_tcp(self, host, port, **kwargs):
        return _Refusing.connect_tcp(self, host, port)


def test_a_replaced_network_backend_decides_where_requests_go(server):
    """A transport subclass that replaces its pool's network backend (an SSRF guard, DNS
    pinning, a test's fake) sends through that pool, as httpx's does: the guard refuses,
    nothing reaches the server. (Until session 46 httprs's `_pool` was a description
    only: the request went out around the guard, a silent SSRF bypass; found running
    prefect's tests.) A transport whose `_pool` is only read keeps httprs's core."""

    class Guarded(httprs.HTTPTransport):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._pool._network_backend = _Refusing(self._pool._network_backend)

    transport = Guarded()
    with httprs.Client(transport=transport) as client:
        with pytest.raises(httprs.ConnectError, match="Refusing to connect to '127.0.0.1'"):
            client.get(server.url + "/echo")
        assert [host for host, _ in transport._pool._network_backend.asked] == ["127.0.0.1"]
        pool = transport._pool
    assert pool.connections == []  # (closed with the transport)
    reader = httprs.HTTPTransport()
    assert reader._pool._network_backend is not None  # (read, left alone)
    with httprs.Client(transport=reader) as client:
        assert client.get(server.url + "/echo").status_code == 200
        assert "_sending_pools" not in reader.__dict__


async def test_a_replaced_network_backend_decides_where_requests_go_async(server, anyio_backend):
    class Guarded(httprs.AsyncHTTPTransport):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._pool._network_backend = _AsyncRefusing(self._pool._network_backend)

    async with httprs.AsyncClient(transport=Guarded()) as client:
        with pytest.raises(httprs.ConnectError, match="Refusing to connect to '127.0.0.1'"):
            await client.get(server.url + "/echo")


def test_a_pool_put_in_place_is_sent_through(server):
    """`transport._pool = httpcore.ConnectionPool(...)` of the program's own (another
    backend, other limits): requests go through it, as with httpx."""
    import httpcore

    transport = httprs.HTTPTransport()
    backend = _Refusing(httpcore.SyncBackend())
    transport._pool = httpcore.ConnectionPool(network_backend=backend)
    with httprs.Client(transport=transport) as client:
        with pytest.raises(httprs.ConnectError, match="Refusing"):
            client.get(server.url + "/")
    assert backend.asked


def test_a_changed_pool_outlives_a_mock_of_the_other_httpcore(server):
    """A mock on httpcore2's pool while the transport's changed `_pool` is httpcore's:
    the mock answers, and once it is gone the program's pool (its guard) decides again,
    never httprs's core around it (found by review: the mock's pool replaced it)."""
    import httpcore
    import httpcore2

    transport = httprs.HTTPTransport()
    transport._pool = httpcore.ConnectionPool(network_backend=_Refusing(httpcore.SyncBackend()))

    def mocked(self, request):
        return httpcore2.Response(200, content=b"mocked")

    original = httpcore2.ConnectionPool.handle_request
    with httprs.Client(transport=transport) as client:
        httpcore2.ConnectionPool.handle_request = mocked
        try:
            assert client.get(server.url + "/").content == b"mocked"
        finally:
            httpcore2.ConnectionPool.handle_request = original
        with pytest.raises(httprs.ConnectError, match="Refusing"):
            client.get(server.url + "/")

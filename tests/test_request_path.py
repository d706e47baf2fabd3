"""The per-request path: a plain client (no request step overridden or patched) runs its
steps as C functions and the transport reuses the last serialised head when nothing in
it changed. Everything that may change between two requests must be seen on the next
one: client headers, cookies, hooks, auth, patches and overrides of any step, headers of
a request built and then edited. Sync and async (asyncio, trio) run the same bodies.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import gc
import inspect
import pickle
import subprocess
import sys
import threading
import warnings
import weakref
from unittest import mock

import pytest
from servers.scripted import keepalive

import httprs

FLAVOURS = ["sync", "asyncio", "trio"]

# httpx's request steps, each a method a subclass or a patch may replace.
STEPS = [
    "request",
    "build_request",
    "_merge_url",
    "_merge_headers",
    "_merge_cookies",
    "_merge_queryparams",
    "send",
    "_set_timeout",
    "_build_request_auth",
    "_send_handling_auth",
    "_send_handling_redirects",
    "_send_single_request",
    "_transport_for_url",
]
ASYNC_STEPS = {"request", "send", "_send_handling_auth", "_send_handling_redirects",
               "_send_single_request"}  # fmt: skip


async def go(value):
    """Await `value` when the client is async; a sync client's result as it is."""
    if inspect.isawaitable(value):
        return await value
    return value


def run(flavour, body):
    """Run `async def body(cls)` with Client (stepped by hand: a sync client never
    suspends) or AsyncClient under the flavour's event loop."""
    if flavour == "sync":
        coro = body(httprs.Client)
        try:
            coro.send(None)
        except StopIteration:
            return
        coro.close()
        raise AssertionError("the sync flavour awaited something that suspends")
    import anyio

    anyio.run(body, httprs.AsyncClient, backend=flavour)


@contextlib.asynccontextmanager
async def opened(cls, **kwargs):
    """`cls(**kwargs)`, closed on exit (aclose() or close(), as the client has)."""
    client = cls(**kwargs)
    try:
        yield client
    finally:
        await go(client.aclose() if isinstance(client, httprs.AsyncClient) else client.close())


async def sent_headers(client, url, **kwargs):
    """The request headers the server saw, lower-cased names -> last value."""
    response = await go(client.get(url + "/echo", **kwargs))
    assert response.status_code == 200
    return {k.lower(): v for k, v in response.json()["headers"]}


def wrap_step(cls, name, calls):
    """A replacement for cls.<name> that records the call and runs the original."""
    original = getattr(cls, name)
    if issubclass(cls, httprs.AsyncClient) and name in ASYNC_STEPS:

        async def step(self, *args, **kwargs):
            calls.append(name)
            return await original(self, *args, **kwargs)

    else:

        def step(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

    return step


# -- what the client holds, changed between requests ---------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_client_header_changes_are_sent(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            assert "x-a" not in await sent_headers(client, server.url)
            client.headers["X-A"] = "1"
            assert (await sent_headers(client, server.url))["x-a"] == "1"
            client.headers["X-A"] = "2"  # same length, same position
            assert (await sent_headers(client, server.url))["x-a"] == "2"
            del client.headers["X-A"]
            assert "x-a" not in await sent_headers(client, server.url)
            client.headers.update({"User-Agent": "agent/2"})
            assert (await sent_headers(client, server.url))["user-agent"] == "agent/2"
            client.headers = {"X-B": "b"}  # assignment: the defaults again, plus X-B
            seen = await sent_headers(client, server.url)
            assert seen["x-b"] == "b"
            assert seen["user-agent"].startswith("python-httprs/")

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_cookies_set_mid_session_are_sent(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            assert "cookie" not in await sent_headers(client, server.url)
            client.cookies.set("k", "v")
            assert (await sent_headers(client, server.url))["cookie"] == "k=v"
            client.cookies = {"other": "1"}
            assert (await sent_headers(client, server.url))["cookie"] == "other=1"
            client.cookies.clear()
            assert "cookie" not in await sent_headers(client, server.url)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_hooks_added_after_creation_run(flavour, server):
    async def body(cls):
        seen = []
        is_async = cls is httprs.AsyncClient

        def hook(kind):
            if is_async:

                async def record(obj):
                    seen.append(kind)

            else:

                def record(obj):
                    seen.append(kind)

            return record

        async with opened(cls) as client:
            await sent_headers(client, server.url)
            client.event_hooks["request"].append(hook("request"))  # the list, mutated
            await sent_headers(client, server.url)
            assert seen == ["request"]
            client.event_hooks = {"response": [hook("response")]}  # assigned
            await sent_headers(client, server.url)
            assert seen == ["request", "response"]

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_auth_set_later_is_used(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            assert "authorization" not in await sent_headers(client, server.url)
            client.auth = ("user", "pass")
            expected = "Basic " + base64.b64encode(b"user:pass").decode()
            assert (await sent_headers(client, server.url))["authorization"] == expected
            client.auth = None
            assert "authorization" not in await sent_headers(client, server.url)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_base_url_and_params_changed_later(flavour, server):
    async def body(cls):
        async with opened(cls, base_url=server.url) as client:
            r = await go(client.get("/echo"))
            assert r.json()["path"] == "/echo"
            client.base_url = server.url + "/echo"
            r = await go(client.get(""))
            assert r.json()["path"] == "/echo/"
            client.params = {"q": "1"}
            r = await go(client.get("/x"))
            assert (r.json()["path"], r.json()["query"]) == ("/echo/x", "q=1")

    run(flavour, body)


# -- overrides and patches of any step ------------------------------------------------------


def _step_kwargs(name):
    # Every step runs without auth too (_send_handling_auth with httpx's no-op Auth()).
    return {}


# The entry points that run the steps: get() (through request()) and stream() (httpx's
# calls build_request() and send() itself: every step but request).
ENTRIES = ["get", "stream"]


async def fetch(client, entry, url, **kwargs):
    """The response to GET `url` through `entry`, its body read."""
    if entry == "get":
        return await go(client.get(url, **kwargs))
    if isinstance(client, httprs.AsyncClient):
        async with client.stream("GET", url, **kwargs) as response:
            await response.aread()
    else:
        with client.stream("GET", url, **kwargs) as response:
            response.read()
    return response


def _entry_steps(entry):
    return [name for name in STEPS if entry == "get" or name != "request"]


@pytest.mark.parametrize(
    ("entry", "name"), [(entry, name) for entry in ENTRIES for name in _entry_steps(entry)]
)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_step_overridden_by_a_subclass_is_called(flavour, entry, name, server):
    async def body(cls):
        calls = []
        sub = type("Sub", (cls,), {})
        setattr(sub, name, wrap_step(cls, name, calls))
        async with opened(sub) as client:
            r = await fetch(client, entry, server.url + "/echo", **_step_kwargs(name))
            assert r.status_code == 200
            assert name in calls

    run(flavour, body)


@pytest.mark.parametrize(
    ("entry", "name"), [(entry, name) for entry in ENTRIES for name in _entry_steps(entry)]
)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_step_patched_on_the_class_after_use_is_called(flavour, entry, name, server):
    async def body(cls):
        calls = []
        async with opened(cls) as client:
            await sent_headers(client, server.url)  # the class is known plain now
            with mock.patch.object(cls, name, wrap_step(cls, name, calls)):
                r = await fetch(client, entry, server.url + "/echo", **_step_kwargs(name))
                assert r.status_code == 200
            assert name in calls
            calls.clear()
            await fetch(client, entry, server.url + "/echo")  # unpatched: plain again
            assert calls == []

    run(flavour, body)


@pytest.mark.parametrize(
    ("entry", "name"), [(entry, name) for entry in ENTRIES for name in _entry_steps(entry)]
)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_step_patched_on_the_instance_is_called(flavour, entry, name, server):
    async def body(cls):
        calls = []
        async with opened(cls) as client:
            await sent_headers(client, server.url)
            step = wrap_step(cls, name, calls).__get__(client)
            with mock.patch.object(client, name, step):
                r = await fetch(client, entry, server.url + "/echo", **_step_kwargs(name))
                assert r.status_code == 200
            assert name in calls

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_mock_patch_of_send_is_called(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            await sent_headers(client, server.url)
            response = httprs.Response(204)
            if cls is httprs.AsyncClient:
                patched = mock.patch.object(cls, "send", new_callable=mock.AsyncMock)
            else:
                patched = mock.patch.object(cls, "send")
            with patched as send:
                send.return_value = response
                assert await go(client.get(server.url + "/echo")) is response
            assert send.call_count == 1

    run(flavour, body)


# -- the transport's head cache ---------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_request_edited_between_build_and_send(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            await sent_headers(client, server.url)
            request = client.build_request("GET", server.url + "/echo")
            request.headers["X-Late"] = "late"
            response = await go(client.send(request))
            assert {k.lower(): v for k, v in response.json()["headers"]}["x-late"] == "late"
            request = client.build_request("GET", server.url + "/echo")
            request.headers["Accept"] = "text/x"  # same name, same position, other value
            response = await go(client.send(request))
            assert {k.lower(): v for k, v in response.json()["headers"]}["accept"] == "text/x"

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_alternating_targets_and_bodies(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            for i in range(6):
                path = "/echo/a" if i % 2 else "/echo/bb"
                content = b"x" * (i % 3)
                response = await go(client.post(server.url + path, content=content))
                doc = response.json()
                assert doc["path"] == path
                assert doc["body"] == content.decode()
                headers = {k.lower(): v for k, v in doc["headers"]}
                assert headers["content-length"] == str(len(content))

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bad_header_after_a_good_head_is_refused(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            await sent_headers(client, server.url, headers={"X-V": "ab"})
            with pytest.raises(httprs.LocalProtocolError):
                await sent_headers(client, server.url, headers={"X-V": "a\n"})
            with pytest.raises(httprs.LocalProtocolError):
                await go(
                    client.post(
                        server.url + "/echo", content=b"x", headers={"Content-Length": "2"}
                    )
                )
            assert (await sent_headers(client, server.url, headers={"X-V": "ab"}))["x-v"] == "ab"

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_new_clients_send_their_own_heads(flavour, server):
    # A transport's first request may reuse the last head any transport made: only when
    # it is the same; each new client's headers, target and body are its own.
    async def body(cls):
        for i in range(4):
            value = "same" if i < 2 else f"v{i}"
            async with opened(cls, headers={"X-Client": value}) as client:
                seen = await sent_headers(client, server.url, params={"n": str(i % 3)})
                assert seen["x-client"] == value
        async with opened(cls) as client:
            seen = await sent_headers(client, server.url)
            assert "x-client" not in seen
            doc = (await go(client.post(server.url + "/echo", content=b"abc"))).json()
            assert doc["body"] == "abc"

    run(flavour, body)


def test_new_clients_send_their_own_heads_through_each_transport(server, proxy_factory):
    # The last head a transport made is reused by another transport's first request only
    # where the head is the same on the wire: never through a forwarding proxy (its
    # target and the proxy's credentials are the client's own), whatever came before.
    url = server.url + "/echo"
    proxy = proxy_factory()
    creds = [("user", "pw"), ("other", "pw2")]
    for _ in range(2):
        with httprs.Client() as client:
            assert client.get(url).json()["path"] == "/echo"
        for user, password in creds:
            proxy_url = proxy.url.replace("://", f"://{user}:{password}@")
            with httprs.Client(proxy=proxy_url) as client:
                assert client.get(url).json()["path"] == "/echo"
        with httprs.Client(http2=True) as client:  # may speak HTTP/2: its own head
            assert client.get(url).json()["path"] == "/echo"
        with httprs.Client(auth=("a", "b")) as client:
            seen = {k.lower(): v for k, v in client.get(url).json()["headers"]}
            assert seen["authorization"] == "Basic " + base64.b64encode(b"a:b").decode()
        with httprs.Client() as client:
            seen = {k.lower(): v for k, v in client.get(url).json()["headers"]}
            assert "authorization" not in seen
    assert [seen.target for seen in proxy.seen] == [url] * 4
    expected = ["Basic " + base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in creds]
    assert [seen.header("proxy-authorization") for seen in proxy.seen] == expected * 2


def _lists_holding(secret):
    # The lists holding a header pair with `secret` in it. (gc.collect() untracks tuples
    # of bytes, so a scan of tuples finds none; the lists holding them stay tracked: a
    # head cache's raw pairs are such a list.)
    return [
        obj
        for obj in gc.get_objects()
        if type(obj) is list
        and any(type(t) is tuple and any(type(x) is bytes and secret in x for x in t) for t in obj)
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Authorization": "Bearer tok-7c1e5"}},
        {"headers": {"X-Api-Key": "tok-7c1e5"}},
        {"cookies": {"session": "tok-7c1e5"}},
    ],
)
def test_a_closed_clients_secrets_are_not_kept(scripted, kwargs):
    # A transport's last head goes when it is closed; the one kept beyond it for the
    # next new client holds only default headers (no credentials, no query). The scan
    # first finds the head while the client is open, so it can see what is kept. (A
    # scripted server: it keeps what it read as str pairs, which the scan skips.)
    secret = b"tok-7c1e5"
    srv = scripted(keepalive())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # per-request cookies
        with httprs.Client() as client:
            assert client.get(srv.url + "/echo", **kwargs).status_code == 200
            gc.collect()
            assert _lists_holding(secret) != []  # its transport's head
    del client
    gc.collect()
    assert _lists_holding(secret) == []


def _echo_target(conn):
    """Keep-alive; each response body is the request's target."""
    while True:
        request = conn.read_request()
        if request is None or not conn.respond(request.target.encode()):
            return


def _url_memo(url):
    """The transport's memo of `url` (a tuple holding it first), or None: found through
    the garbage collector, as no Python name reaches the transport's C fields."""
    gc.collect()
    memos = [
        obj
        for obj in gc.get_referrers(url)
        if type(obj) is tuple and len(obj) == 7 and obj[0] is url
    ]
    assert len(memos) <= 1
    return memos[0] if memos else None


@pytest.mark.parametrize("change", ["instance", "class"])
def test_a_url_changed_between_requests_is_read_again(scripted, monkeypatch, change):
    # A transport remembers what it read of a URL used again (a client's shared one)
    # while the URL's attribute dict keeps its PEP 509 version and the URL class its
    # version tag: a write to either between two requests shows in the next one.
    url = httprs.URL(scripted(_echo_target).url + "/a")
    with httprs.Client() as client:
        for _ in range(2):  # (the second request makes the memo)
            assert client.get(url).text == "/a"
        attributes = dict(vars(url))
        memo = _url_memo(url)
        assert client.get(url).text == "/a"  # (the third uses it)
        # The precondition of the test: nothing wrote to the URL between the requests
        # (a write renews its dict's version), so the memo made at the second request
        # was the one the third used, and is the one a change below must expire.
        assert vars(url) == attributes
        assert _url_memo(url) is memo
        if sys.version_info < (3, 12):  # (3.12+: no dict versions, no memo)
            assert memo is not None
        if change == "instance":
            url._raw_path = b"/b"
        else:  # a data descriptor on the class wins over the instance's value
            monkeypatch.setattr(httprs.URL, "_raw_path", property(lambda self: b"/b"))
        assert client.get(url).text == "/b"
        assert client.get(url).text == "/b"


def test_a_url_class_descriptor_answering_none_on_the_class_is_asked_each_time(
    scripted, monkeypatch
):
    # A data descriptor on the class wins over the instance's value; one whose __get__
    # answers None on the class itself must not pass for a stock default: no memo, so
    # the value it gives the URL is read each request.
    target = [b"/a"]

    class Computed:
        def __get__(self, obj, cls=None):
            return None if obj is None else target[0]

        def __set__(self, obj, value):
            raise AttributeError("read-only")

    url = httprs.URL(scripted(_echo_target).url + "/a")
    monkeypatch.setattr(httprs.URL, "_raw_path", Computed())
    with httprs.Client() as client:
        for _ in range(3):
            assert client.get(url).text == "/a"
        target[0] = b"/b"  # (no write to the URL nor to its class)
        assert client.get(url).text == "/b"


def test_threads_sharing_a_client_each_get_their_own_url(scripted):
    # One transport memo for the URL last used twice in a row, threads taking turns:
    # each request still goes to its own URL.
    srv = scripted(_echo_target)
    client = httprs.Client()
    errors = []

    def run(i):
        url = httprs.URL(f"{srv.url}/t{i}")
        try:
            for _ in range(30):
                body = client.get(url if i % 2 else str(url)).text
                assert body == f"/t{i}", (i, body)
        except BaseException as error:  # (reported by the main thread)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    with client:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_a_closed_clients_last_url_is_not_kept(scripted):
    # The transport keeps the URL last used (and its memo) until the next request; a
    # closed client's transport lets it go (a URL may carry userinfo or a query secret).
    url = httprs.URL(scripted(keepalive(b"ok")).url + "/echo?key=tok-7c1e5")
    ref = weakref.ref(url)
    with httprs.Client() as client:
        for _ in range(3):
            assert client.get(url).status_code == 200
    del url
    gc.collect()
    assert ref() is None
    assert client.is_closed


@pytest.mark.parametrize(
    "secret_header",
    [
        ("Set-Cookie", "session=tok-7c1e5; Path=/"),
        ("X-Auth-Token", "tok-7c1e5"),
        ("Location", "/done?code=tok-7c1e5"),
        ("WWW-Authenticate", 'Bearer realm="tok-7c1e5"'),
    ],
)
def test_a_closed_clients_response_secrets_are_not_kept(scripted, secret_header):
    # The last response head's pairs are remembered module-wide (a repeated head makes
    # no new objects), but a value only for a name on an allow-list (Date, Server,
    # Content-Type, ...): a session token, a redirect's code or an API token does not
    # outlive the client (its responses and cookie jar) that received it.
    secret = b"tok-7c1e5"
    srv = scripted(keepalive(headers=[("X-Other", "1"), secret_header, ("Server", "s")]))
    name, value = secret_header
    with httprs.Client() as client:
        for _ in range(3):  # (the later heads are compared with the first)
            response = client.get(srv.url + "/echo")
            assert response.headers.raw[1:3] == [
                (name.encode(), value.encode()),
                (b"Server", b"s"),
            ]
            if name == "Set-Cookie":
                assert response.cookies["session"] == "tok-7c1e5"
    del client, response
    gc.collect()
    assert _lists_holding(secret) == []


def test_a_remembered_response_pair_is_shared_only_while_equal(scripted):
    # A name kept without its value gives each response its own pair; an allow-listed
    # pair is the same object while it repeats, and a new one when its value changes.
    values = iter(["a", "a", "b"])

    def handler(conn):
        while conn.read_request() is not None:
            value = next(values, "c")
            headers = [("X-Token", value), ("Content-Language", value)]
            if not conn.respond(b"ok", headers=headers):
                return

    srv = scripted(handler)
    with httprs.Client() as client:
        heads = [client.get(srv.url + "/").headers.raw for _ in range(3)]
    assert [(h[0][1], h[1][1]) for h in heads] == [(b"a", b"a"), (b"a", b"a"), (b"b", b"b")]
    assert heads[1][1] is heads[0][1]  # Content-Language repeated
    assert heads[2][1] is not heads[1][1]


def test_a_response_close_patched_on_the_instance_is_called_by_read(server):
    # httpx's read() ends with self.close(): a close set on the response is called.
    import httpx

    for module in (httpx, httprs):
        with module.Client() as client:
            with client.stream("GET", server.url + "/echo") as response:
                with mock.patch.object(response, "close", wraps=response.close) as close:
                    response.read()
                assert close.call_count == 1, module
                assert response.is_closed, module


def _upper_chunks(original):
    """A replacement for a sync iterator method that upper-cases what `original` gives."""

    def method(self, *args, **kwargs):
        for chunk in original(self, *args, **kwargs):
            yield chunk.upper()

    return method


def _aupper_chunks(original):
    """The same for an async iterator method."""

    async def method(self, *args, **kwargs):
        async for chunk in original(self, *args, **kwargs):
            yield chunk.upper()

    return method


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("iter_bytes", "class"),
        ("iter_raw", "class"),
        ("iter_bytes", "instance"),
        ("iter_raw", "instance"),
        ("iter_bytes", "subclass"),
        ("__iter__", "bound stream"),
        ("__iter__", "ByteStream"),
    ],
)
def test_read_goes_through_a_patched_iteration_as_in_httpx(name, where, server):
    # httpx's read() is b"".join(self.iter_bytes()), which iterates iter_raw(), which
    # iterates the stream: a replacement of any of them makes the body read.
    import httpx

    for module in (httpx, httprs):
        with module.Client() as client:
            if where == "class":
                original = getattr(module.Response, name)
                with mock.patch.object(module.Response, name, _upper_chunks(original)):
                    content = client.get(server.url + "/").content
            elif where == "instance":
                with client.stream("GET", server.url + "/") as response:
                    original = getattr(module.Response, name)
                    setattr(response, name, _upper_chunks(original).__get__(response))
                    content = response.read()
            elif where == "subclass":
                sub = type(
                    "Sub", (module.Response,), {name: _upper_chunks(module.Response.iter_bytes)}
                )
                response = sub(200, content=b"Hello, world!")
                content = response.content
            elif where == "bound stream":
                cls = module._client.BoundSyncStream
                with mock.patch.object(cls, name, _upper_chunks(cls.__iter__)):
                    content = client.get(server.url + "/").content
            else:
                cls = module.ByteStream
                with mock.patch.object(cls, name, _upper_chunks(cls.__iter__)):
                    content = module.Response(200, content=b"Hello, world!").content
        assert content == b"HELLO, WORLD!", module


@pytest.mark.parametrize("where", ["class", "instance"])
@pytest.mark.parametrize("name", ["aiter_bytes", "aiter_raw"])
@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_aread_goes_through_a_patched_iteration(flavour, name, where, server):
    # httpx's aread() joins aiter_bytes(), which iterates aiter_raw() (as read()).
    async def body(cls):
        original = getattr(httprs.Response, name)
        async with opened(cls) as client:
            if where == "class":
                with mock.patch.object(httprs.Response, name, _aupper_chunks(original)):
                    response = await client.get(server.url + "/")
                content = response.content
            else:
                async with client.stream("GET", server.url + "/") as response:
                    setattr(response, name, _aupper_chunks(original).__get__(response))
                    content = await response.aread()
        assert content == b"HELLO, WORLD!"

    run(flavour, body)


def _upper_chunks_of(original):
    """A replacement for a stream's `__aiter__` or `_aiter` method `original`: its chunks,
    upper-cased."""

    def method(self):
        async def chunks():
            async for chunk in original(self):
                yield chunk.upper()

        return chunks()

    return method


@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_aread_goes_through_a_patched_bound_stream_iteration_as_in_httpx(flavour, server):
    # httpx's aread() iterates the bound stream (aiter_raw): a patched __aiter__ of it is
    # what reads the body, as read() uses a patched __iter__; unpatched, read whole again.
    import anyio
    import httpx

    async def body(module):
        cls = module._client.BoundAsyncStream
        async with module.AsyncClient() as client:
            with mock.patch.object(cls, "__aiter__", _upper_chunks_of(cls.__aiter__)):
                response = await client.get(server.url + "/")
            assert response.content == b"HELLO, WORLD!", module
            response = await client.get(server.url + "/")
            assert response.content == b"Hello, world!", module

    for module in (httpx, httprs):
        anyio.run(body, module, backend=flavour)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_elapsed_covers_the_exchange_and_lies_within_the_call(flavour, entry, server):
    # elapsed runs from the send to the close: at least the server's delay before its
    # head, at most the whole call (measured around it with time.perf_counter).
    import time

    async def body(cls):
        async with opened(cls) as client:
            started = time.perf_counter()
            response = await fetch(client, entry, server.url + "/slow_body?delay=0.2")
            took = time.perf_counter() - started
            assert response.content == b"slow body"
            assert 0.2 <= response.elapsed.total_seconds() <= took

    run(flavour, body)


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_elapsed_reads_a_replaced_time_perf_counter_as_httpx(flavour, entry, server):
    # httpx times elapsed with time.perf_counter(), looked up on `time` at each call: a
    # replacement there (freezegun's frozen clock, a mock) is what both ends read, so a
    # frozen clock gives 0 (as in httpx); the real clock again once it is restored.
    import datetime
    import time

    import httpx

    with mock.patch.object(time, "perf_counter", lambda: 7.0):
        with httpx.Client() as client:
            assert client.get(server.url + "/").elapsed == datetime.timedelta(0)

    async def body(cls):
        async with opened(cls) as client:
            with mock.patch.object(time, "perf_counter", lambda: 7.0):
                response = await fetch(client, entry, server.url + "/")
            assert response.elapsed == datetime.timedelta(0)
            response = await fetch(client, entry, server.url + "/")
            assert response.elapsed > datetime.timedelta(0)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_bound_streams_attributes_read_as_before(flavour, server):
    # The bound stream over a core stream keeps its attributes in slots, read and
    # written directly: what code reads of it is as before.
    from httprs import _core

    async def body(cls):
        core = _core.AsyncResponseStream if cls is httprs.AsyncClient else _core.ResponseStream
        async with opened(cls) as client:
            response = await fetch(client, "stream", server.url + "/")
            bound = response.stream
            assert type(bound._stream) is core
            assert bound._response is None  # (dropped on close)
            assert isinstance(bound._start, float)
            assert response.elapsed.total_seconds() > 0
            bound._start = 1.5
            assert bound._start == 1.5

    run(flavour, body)


@pytest.mark.parametrize("name", ["_stream", "_response", "_start", "_body"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_slot_replaced_on_the_class_is_used(flavour, name, server):
    # The slots are read and written at their offsets only while the class's member
    # descriptors are its own: a replacement (a property here) is what is used.
    from httprs import _client, _core

    used = []

    async def body(cls):
        is_async = cls is httprs.AsyncClient
        if name == "_body":
            owner = _core.AsyncResponseStream if is_async else _core.ResponseStream
        else:
            owner = (
                _client._BoundAsyncStreamReadAll if is_async else _client._BoundSyncStreamReadAll
            )
        slot = owner.__dict__[name]

        def get(self):
            used.append(name)
            return slot.__get__(self)

        def set(self, value):
            slot.__set__(self, value)  # (the transport sets `_body`: reads are counted)

        async with opened(cls) as client:
            await go(client.get(server.url + "/"))
            with mock.patch.object(owner, name, property(get, set)):
                response = await go(client.get(server.url + "/"))
            assert response.content == b"Hello, world!"
            assert name in used
            used.clear()
            await go(client.get(server.url + "/"))
            assert used == []

    run(flavour, body)


@pytest.mark.parametrize("hook", ["__getattribute__", "__setattr__"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_bound_streams_attribute_access_patched_on_the_class_is_used(flavour, hook, server):
    # The slots are read and written at their offsets only while the bound stream's class
    # (and the core stream's, for `_body`) leaves attribute access to object's own: a
    # patched __getattribute__ / __setattr__ sees the client's reads and writes, as it
    # would httpx's bound stream's.
    from httprs import _client, _core

    seen = []
    original = getattr(object, hook)

    def patched(self, name, *value):
        seen.append(name)
        return original(self, name, *value)

    async def body(cls):
        is_async = cls is httprs.AsyncClient
        owners = [_client.BoundAsyncStream if is_async else _client.BoundSyncStream]
        wanted = {"_stream", "_response", "_start"}
        if hook == "__getattribute__":
            owners.append(_core.AsyncResponseStream if is_async else _core.ResponseStream)
            wanted.add("_body")
        async with opened(cls) as client:
            await go(client.get(server.url + "/"))
            with contextlib.ExitStack() as stack:
                for owner in owners:
                    stack.enter_context(mock.patch.object(owner, hook, patched))
                response = await go(client.get(server.url + "/"))
            assert response.content == b"Hello, world!"
            assert wanted <= set(seen), seen
            seen.clear()
            await go(client.get(server.url + "/"))
            assert seen == []

    run(flavour, body)


def test_elapsed_patched_on_the_class_is_set_as_in_httpx(server):
    # httpx's bound stream sets `response.elapsed` on close: with a plain value patched
    # over Response's property, the measured time lands on the instance.
    import datetime

    import httpx

    patched = datetime.timedelta(days=1)
    for module in (httpx, httprs):
        with mock.patch.object(module.Response, "elapsed", patched):
            with module.Client() as client:
                response = client.get(server.url + "/echo")
            assert response.elapsed < patched, module
            assert "elapsed" in vars(response), module


def test_a_shared_empty_body_written_to_is_not_handed_out_again(server):
    # Requests without a body may share one empty ByteStream: one whose attributes were
    # written to all the same is not handed out again.
    with httprs.Client() as client:
        first = client.get(server.url + "/echo").request.stream
        if sys.version_info < (3, 12):  # (where the version is readable: shared)
            assert client.get(server.url + "/echo").request.stream is first
        first._stream = first._httprs_body = b"junk"
        for _ in range(2):
            response = client.get(server.url + "/echo")
            assert response.request.stream is not first
            assert response.json()["body"] == ""
            assert response.request.read() == b""
            assert list(response.request.stream) == [b""]


def test_a_shared_base_url_written_to_is_not_handed_out_again(server):
    # Clients without a base URL may share one: one whose attributes were written to all
    # the same is not handed out again.
    with httprs.Client() as client:
        first = client.base_url
        expected = (str(first), first.raw_path)
        if sys.version_info < (3, 12):  # (where the version is readable: shared)
            with httprs.Client() as other:
                assert other.base_url is first
        first._path = "/junk/"
        first._raw_path = b"/junk/"
    for _ in range(2):
        with httprs.Client() as client:
            assert client.base_url is not first
            assert (str(client.base_url), client.base_url.raw_path) == expected
            assert client.get(server.url + "/echo").json()["path"] == "/echo"


class _OtherURL(httprs.URL):
    pass


class _OtherStream(httprs.ByteStream):
    def __iter__(self):
        yield b"surprise"


@pytest.mark.parametrize("which", ["url", "stream", "base_url"])
def test_a_shared_object_given_another_class_is_not_handed_out_again(server, which):
    # The URL shared by the requests to one URL string (what _merge_url gives: Request
    # copies a URL of another class), a body-less request's shared empty ByteStream and
    # the base URL shared by clients without one are handed out only while each is of
    # its stock class: one given another __class__ (which leaves its attribute dict as it
    # was) goes to no later request or client.
    url = server.url + "/echo"
    stock = httprs.ByteStream if which == "stream" else httprs.URL

    def shared(client):
        if which == "base_url":
            with httprs.Client() as other:
                return other.base_url
        if which == "url":
            return client._merge_url(url)
        return client.get(url).request.stream

    with httprs.Client() as client:
        first = shared(client)
        if sys.version_info < (3, 12):  # (where the version is readable: shared)
            assert shared(client) is first
        first.__class__ = _OtherStream if which == "stream" else _OtherURL
        for _ in range(2):
            later = shared(client)
            assert later is not first
            assert type(later) is stock
        response = client.get(url)
        assert list(response.request.stream) == [b""]
        assert response.json()["body"] == ""
        assert str(response.request.url) == url


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_response_has_its_own_extensions_and_history(flavour, server):
    # A transport's response makes its extensions dict and history list when first asked
    # for: each response still has its own (as httpx's __init__ gives it), written to
    # without reaching the next one, and set, deleted or patched as plain attributes.
    async def body(cls):
        async with opened(cls) as client:
            first = await go(client.get(server.url + "/echo"))
            assert first.extensions.keys() == {"http_version", "reason_phrase", "network_stream"}
            assert first.extensions["http_version"] == b"HTTP/1.1"
            assert first.extensions["reason_phrase"] == b"OK"
            assert (first.http_version, first.reason_phrase) == ("HTTP/1.1", "OK")
            assert first.history == [] and first.history is first.history
            first.extensions["mine"] = 1
            first.history.append("mine")
            second = await go(client.get(server.url + "/echo"))
            assert "mine" not in second.extensions and second.history == []
            assert second.extensions is not first.extensions
            assert second.history is not first.history
            assert first.extensions["mine"] == 1 and first.history == ["mine"]
            with mock.patch.object(second, "extensions", {"http_version": b"HTTP/1.0"}):
                assert second.http_version == "HTTP/1.0"
                assert second.reason_phrase == "OK"  # (from the status code)
            assert second.extensions["reason_phrase"] == b"OK"
            del first.extensions
            with pytest.raises(AttributeError, match="'Response' object has no attribute"):
                _ = first.extensions
            first.extensions = {}
            assert (first.http_version, first.reason_phrase) == ("HTTP/1.1", "OK")
            del second.history
            with pytest.raises(AttributeError, match="'Response' object has no attribute"):
                _ = second.history
            second.history = None
            assert second.history is None
            redirected = await go(client.get(server.url + "/redirect/302", follow_redirects=True))
            assert [r.status_code for r in redirected.history] == [302]
            assert redirected.history[0].history == []

    run(flavour, body)


@pytest.mark.parametrize("touch", ["none", "read", "set", "delete"])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_response_hook_touching_history_ends_as_in_httpx(flavour, touch, server):
    # httpx sets `response.history = list(history)` after the response hooks ran: a
    # transport response whose history a hook read, set or deleted ends with [] too.
    import httpx

    def hook(response):
        if touch == "read":
            assert response.history == []
        elif touch == "set":
            response.history = ["set by the hook"]
        elif touch == "delete":
            del response.history

    async def ahook(response):
        hook(response)

    def ended(client):
        response = client.get(server.url + "/echo")
        return response.history, response.history is response.history

    with httpx.Client(event_hooks={"response": [hook]}) as client:
        expected = ended(client)
    assert expected == ([], True)

    async def body(cls):
        hooks = [hook if cls is httprs.Client else ahook]
        async with opened(cls, event_hooks={"response": hooks}) as client:
            response = await go(client.get(server.url + "/echo"))
            assert (response.history, response.history is response.history) == expected

    run(flavour, body)


@pytest.mark.parametrize("where", ["class", "instance"])
@pytest.mark.parametrize("name", ["close", "_httprs_read_all"])
def test_a_bound_stream_method_patched_after_use_is_called_by_read(name, where, server):
    # Response.read / close call the client's bound stream's stock whole read and close
    # directly; patched on the class (after a first request) or on the response's own
    # stream (by a response hook, or afterwards for close()), the patch is called.
    from httprs import _client

    cls = _client._BoundSyncStreamReadAll
    stock = getattr(cls, name)
    calls = []

    def patched(self):
        calls.append(self)
        return stock(self)

    def hook(response):
        if where == "instance":
            setattr(response.stream, name, lambda: patched(response.stream))

    with httprs.Client(event_hooks={"response": [hook]}) as client:
        assert client.get(server.url + "/echo").status_code == 200
        calls.clear()
        with mock.patch.object(cls, name, patched if where == "class" else stock):
            response = client.get(server.url + "/echo")
            assert type(response.stream) is cls
            assert response.json()["body"] == "" and response.is_closed
            assert calls == [response.stream]
            response.close()  # (closed already: not called again)
            assert calls == [response.stream]
        if where == "instance" and name == "close":
            calls.clear()
            with client.stream("GET", server.url + "/echo") as streamed:
                streamed.close()  # (the hook patched its stream's close)
                assert calls == [streamed.stream] and streamed.is_closed
        response = client.get(server.url + "/echo")
        assert response.is_closed and response.elapsed.total_seconds() >= 0


@pytest.mark.parametrize("name", ["elapsed", "_elapsed"])
def test_elapsed_set_before_and_after_the_close_as_in_httpx(name, server):
    # The client records `elapsed` when the response closes (over what a hook set);
    # a value set afterwards wins, and a pickled copy carries what it then holds.
    import datetime

    import httpx

    day = datetime.timedelta(days=1)

    def hook(response):
        setattr(response, name, day)

    for module in (httpx, httprs):
        with module.Client(event_hooks={"response": [hook]}) as client:
            first = client.get(server.url + "/echo")
            second = client.get(server.url + "/echo")
        assert pickle.loads(pickle.dumps(first)).elapsed == first.elapsed
        assert first.elapsed < day and first.elapsed is first.elapsed
        setattr(second, name, 2 * day)  # (its recorded elapsed never read)
        assert pickle.loads(pickle.dumps(second)).elapsed == 2 * day
        assert (second.elapsed, second._elapsed) == (2 * day, 2 * day), module


@pytest.mark.parametrize("how", ["subclass", "patched"])
def test_http_version_and_reason_phrase_read_an_overridden_extensions(server, how):
    # httpx's http_version / reason_phrase read `self.extensions`: a transport response
    # given a class with its own `extensions`, or read while Response's is patched,
    # answers from that, not from what the transport stored.
    class Sub(httprs.Response):
        @property
        def extensions(self):
            return {"http_version": b"HTTP/9", "reason_phrase": b"Yo"}

    with httprs.Client() as client:
        response = client.get(server.url + "/echo")
        if how == "subclass":
            response.__class__ = Sub
            assert (response.http_version, response.reason_phrase) == ("HTTP/9", "Yo")
        else:
            fake = {"http_version": b"HTTP/2", "reason_phrase": b"Yo"}
            with mock.patch.object(
                httprs.Response, "extensions", new_callable=mock.PropertyMock, return_value=fake
            ):
                assert (response.http_version, response.reason_phrase) == ("HTTP/2", "Yo")
            assert (response.http_version, response.reason_phrase) == ("HTTP/1.1", "OK")


def test_a_transport_response_pickles_and_copies_its_extensions_and_history(server):
    with httprs.Client() as client:
        for path in ("/echo", "/redirect/302"):
            response = client.get(server.url + path, follow_redirects=True)
            copied = copy.copy(response)
            assert copied.history is response.history  # (shallow: shared, as httpx's)
            assert copied.extensions == {}  # (not carried over, as in httpx)
            restored = pickle.loads(pickle.dumps(response))
            assert restored.extensions == {}
            assert restored.http_version == "HTTP/1.1" and restored.reason_phrase == "OK"
            assert [r.status_code for r in restored.history] == ([302] if path != "/echo" else [])


def test_threads_asking_one_response_for_its_extensions_get_the_same_dict(server):
    # Made on first access, once: every thread sees the same dict and history list.
    # (Documents behaviour: making them runs no Python code, so no thread can switch
    # in between; this does not force a switch there.)
    with httprs.Client() as client:
        for _ in range(20):
            response = client.get(server.url + "/echo")
            seen = []
            barrier = threading.Barrier(4)

            def ask(response=response, seen=seen, barrier=barrier):
                barrier.wait()
                seen.append((id(response.extensions), id(response.history)))

            threads = [threading.Thread(target=ask) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert set(seen) == {(id(response.extensions), id(response.history))}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_alternating_clients_each_send_their_own_settings(flavour, server):
    # The plain path reads a client's settings from its instance dict (remembered while
    # the dict is unchanged): two clients in turn, each changed between requests.
    async def body(cls):
        async with opened(cls, headers={"X-C": "one"}) as one:
            async with opened(cls, headers={"X-C": "two"}) as two:
                await alternate(one, two)

    async def alternate(one, two):
        for _ in range(3):
            assert (await sent_headers(one, server.url))["x-c"] == "one"
            assert (await sent_headers(two, server.url))["x-c"] == "two"
        one.headers = {"X-C": "uno"}
        assert (await sent_headers(one, server.url))["x-c"] == "uno"
        assert (await sent_headers(two, server.url))["x-c"] == "two"
        two.headers["X-C"] = "dos"
        assert (await sent_headers(two, server.url))["x-c"] == "dos"
        one.follow_redirects = True
        r = await go(one.get(server.url + "/redirect/302"))
        assert (r.status_code, len(r.history)) == (200, 1)
        r = await go(two.get(server.url + "/redirect/302"))
        assert (r.status_code, r.history) == (302, [])
        one.max_redirects = 0
        with pytest.raises(httprs.TooManyRedirects):
            await go(one.get(server.url + "/redirect/302"))
        assert (await go(two.get(server.url + "/redirect/302"))).status_code == 302

    run(flavour, body)


def test_bytes_subclass_header_values_are_not_cached(server):
    class Weird(bytes):
        def __eq__(self, other):
            return True

        __hash__ = bytes.__hash__

    with httprs.Client() as client:
        client.get(server.url + "/echo", headers={"X-W": b"one"})
        request = client.build_request("GET", server.url + "/echo", headers={"X-W": b"one"})
        request.headers._raw[-1] = (b"X-W", Weird(b"two"))
        seen = {k.lower(): v for k, v in client.send(request).json()["headers"]}
        assert seen["x-w"] == "two"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_alternating_origins_reach_their_servers(flavour, scripted):
    one = scripted(keepalive(b"one"))
    two = scripted(keepalive(b"two"))

    async def body(cls):
        async with opened(cls) as client:
            for i in range(6):
                srv, expected = (one, b"one") if i % 2 == 0 else (two, b"two")
                assert (await go(client.get(srv.url + "/same/path"))).content == expected

    run(flavour, body)


def test_shared_url_parts_stay_per_url():
    # A URL's netloc and raw_path are made once per URL object; copies made from it with
    # other parts have their own.
    url = httprs.URL("http://example.com:8080/a?x=1")
    assert (url.netloc, url.raw_path) == (b"example.com:8080", b"/a?x=1")
    other = url.copy_with(port=9090, query=b"y=2")
    assert (other.netloc, other.raw_path) == (b"example.com:9090", b"/a?y=2")
    assert (httprs.URL(url, path="/b").raw_path, url.raw_path) == (b"/b?x=1", b"/a?x=1")
    assert httprs.URL("http://[::1]:1/").netloc == b"[::1]:1"
    assert url.join("/c").raw_path == b"/c"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_body_headers_with_client_headers(flavour, server):
    # The body's Content-Type / Content-Length are added unless a header of that name (any
    # case) is there already, as Headers.setdefault does.
    async def body(cls):
        async with opened(cls, headers={"content-type": "text/x-mine"}) as client:
            r = await go(client.post(server.url + "/echo", json={"a": 1}))
            seen = [(k.lower(), v) for k, v in r.json()["headers"]]
            assert ("content-type", "text/x-mine") in seen
            assert ("content-type", "application/json") not in seen
            assert ("content-length", "7") in seen
            r = await go(client.post(server.url + "/echo", content=b"abc"))
            assert ("content-length", "3") in [(k.lower(), v) for k, v in r.json()["headers"]]

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_response_heads_are_each_their_own(flavour, server, server2):
    # Fields equal to the previous response's are shared immutable objects: each
    # response still gets its own headers, values that differ, and edits stay its own.
    async def body(cls):
        async with opened(cls) as client:
            first = await go(client.get(server.url + "/echo?a=1"))
            second = await go(client.get(server.url + "/echo?a=1234567"))
            for response in (first, second):
                assert response.headers["content-length"] == str(len(response.content))
            assert first.headers["content-length"] != second.headers["content-length"]
            first.headers["X-Mine"] = "1"
            first.headers["Content-Type"] = "text/x"
            del first.headers["content-length"]
            third = await go(client.get(server.url + "/echo?a=1"))
            assert third.headers["content-type"] == "application/json"
            assert "x-mine" not in third.headers
            assert third.headers.raw is not first.headers.raw
            assert third.headers["content-length"] == str(len(third.content))
            assert first.headers["content-type"] == "text/x"
            other = await go(client.get(server2.url + "/echo?a=1"))
            assert other.headers["content-length"] == str(len(other.content))
            again = await go(client.get(server.url + "/echo?a=1"))
            # The same head again (but for its Date, which may have ticked).
            assert [kv for kv in again.headers.multi_items() if kv[0] != "date"] == [
                kv for kv in third.headers.multi_items() if kv[0] != "date"
            ]
            assert all(type(k) is bytes and type(v) is bytes for k, v in again.headers.raw)
            assert again.reason_phrase == "OK"
            missing = await go(client.get(server.url + "/nowhere"))
            assert (missing.status_code, missing.reason_phrase) == (404, "Not Found")
            assert (await go(client.get(server.url + "/echo"))).reason_phrase == "OK"

    run(flavour, body)


# -- a models name patched with something that is not a class --------------------------------

_PATCHED_NAME = """
import sys
from unittest import mock
import httprs
import httprs._models as models
with mock.patch.object(models, sys.argv[1], mock.MagicMock()):
    try:
        with httprs.Client() as client:
            client.get(sys.argv[2])
    except TypeError as exc:
        print("TypeError", exc)
"""


@pytest.mark.parametrize("name", ["Response", "Headers"])
def test_models_name_patched_with_a_mock_is_a_type_error_not_a_crash(name, server):
    # Objects are allocated through object's own tp_new from C only for plain classes;
    # anything else goes through object.__new__'s checks (a mock: TypeError, no crash).
    proc = subprocess.run(
        [sys.executable, "-c", _PATCHED_NAME, name, server.url + "/echo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("TypeError"), proc.stdout
    assert "is not a type object" in proc.stdout


# -- steps httpx runs for every request, through the client's properties ---------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_send_handling_auth_override_sees_unauthenticated_requests(flavour, server):
    # httpx calls _send_handling_auth for every request, with Auth() when none applies.
    async def body(cls):
        seen = []
        base = cls._send_handling_auth

        if cls is httprs.AsyncClient:

            async def step(self, request, auth, follow_redirects, history):
                seen.append(auth)
                return await base(self, request, auth, follow_redirects, history)

        else:

            def step(self, request, auth, follow_redirects, history):
                seen.append(auth)
                return base(self, request, auth, follow_redirects, history)

        sub = type("Sub", (cls,), {"_send_handling_auth": step})
        async with opened(sub) as client:
            assert (await sent_headers(client, server.url)).get("authorization") is None
            assert type(seen[0]) is httprs.Auth
            request = client.build_request("GET", server.url)
            assert type(client._build_request_auth(request)) is httprs.Auth
            seen.clear()
            headers = await sent_headers(client, server.url, auth=("u", "p"))
            assert headers["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            assert type(seen[0]) is httprs.BasicAuth

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_setting_properties_overridden_by_a_subclass_are_read(flavour, server):
    # httpx's merge steps read self.headers, .cookies, .params, .base_url and .timeout.
    async def body(cls):
        def prop(value):
            return property(lambda self: value, lambda self, v: None)

        sub = type(
            "Sub",
            (cls,),
            {
                "headers": prop(httprs.Headers({"X-Prop": "h"})),
                "cookies": prop(httprs.Cookies({"c": "1"})),
                "params": prop(httprs.QueryParams({"p": "2"})),
                "base_url": prop(httprs.URL(server.url + "/echo/")),
                "timeout": prop(httprs.Timeout(7.5)),
            },
        )
        async with opened(sub) as client:
            response = await go(client.get("sub"))
            doc = response.json()
            assert doc["path"] == "/echo/sub"
            assert doc["query"] == "p=2"
            headers = {k.lower(): v for k, v in doc["headers"]}
            assert headers["x-prop"] == "h"
            assert headers["cookie"] == "c=1"
            assert response.request.extensions["timeout"]["read"] == 7.5
            request = httprs.Request("GET", server.url + "/echo")
            client._set_timeout(request)
            assert request.extensions["timeout"]["pool"] == 7.5
        async with opened(cls) as client:  # the plain class still reads its own settings
            assert "x-prop" not in await sent_headers(client, server.url)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_overridden_steps_are_called_with_httpx_keywords(flavour, server):
    # httpx passes auth=, follow_redirects= and history= by keyword: an override with
    # keyword-only parameters must work, authenticated or not, redirected or not.
    async def body(cls):
        calls = []
        auth_base, redirects_base = cls._send_handling_auth, cls._send_handling_redirects
        if cls is httprs.AsyncClient:

            async def auth_step(self, request, *, auth, follow_redirects, history):
                calls.append("auth")
                return await auth_base(self, request, auth, follow_redirects, history)

            async def redirects_step(self, request, *, follow_redirects, history):
                calls.append("redirects")
                return await redirects_base(self, request, follow_redirects, history)

        else:

            def auth_step(self, request, *, auth, follow_redirects, history):
                calls.append("auth")
                return auth_base(self, request, auth, follow_redirects, history)

            def redirects_step(self, request, *, follow_redirects, history):
                calls.append("redirects")
                return redirects_base(self, request, follow_redirects, history)

        steps = {"_send_handling_auth": auth_step, "_send_handling_redirects": redirects_step}
        async with opened(type("Sub", (cls,), steps)) as client:
            assert (await go(client.get(server.url + "/echo"))).status_code == 200
            response = await go(
                client.get(server.url + "/redirect/302", auth=("u", "p"), follow_redirects=True)
            )
            assert response.status_code == 200
            assert [r.status_code for r in response.history] == [302]
            assert calls == ["auth", "redirects", "auth", "redirects"]

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_redirects_read_an_overridden_cookies_property(flavour, server):
    # httpx builds a redirect's cookies from self.cookies, as it does a first request's.
    async def body(cls):
        jar = httprs.Cookies({"prop": "1"})
        sub = type("Sub", (cls,), {"cookies": property(lambda self: jar, lambda s, v: None)})
        async with opened(sub, follow_redirects=True) as client:
            response = await go(client.get(server.url + "/redirect/302"))
            assert [r.status_code for r in response.history] == [302]
            headers = {k.lower(): v for k, v in response.json()["headers"]}
            assert headers["cookie"] == "prop=1"

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_overridden_timeout_property_may_be_a_number(flavour, server):
    # httpx's _set_timeout wraps the property in Timeout(): a plain float works.
    async def body(cls):
        sub = type("Sub", (cls,), {"timeout": property(lambda self: 3.0, lambda s, v: None)})
        async with opened(sub) as client:
            response = await go(client.send(httprs.Request("GET", server.url + "/echo")))
            assert response.status_code == 200
            assert response.request.extensions["timeout"] == dict.fromkeys(
                ("connect", "read", "write", "pool"), 3.0
            )

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bytes_method_is_sent(flavour, server):
    # httpx keeps a bytes method as bytes (upper-cased) and sends it.
    async def body(cls):
        async with opened(cls) as client:
            response = await go(client.request(b"post", server.url + "/echo", content=b"x"))
            assert response.request.method == b"POST"
            assert response.json()["method"] == "POST"
            assert response.json()["body"] == "x"
            with pytest.raises(TypeError, match="method strings may not include unicode"):
                await go(client.request("G\u00c9T", server.url + "/echo"))

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bad_extensions_raise_httpx_errors(flavour, server):
    async def body(cls):
        async with opened(cls) as client:
            # httpx's `"timeout" not in extensions`: Python 3.14 words it "is not a
            # container or iterable".
            with pytest.raises(
                TypeError, match="^argument of type 'int' is not (a container or )?iterable$"
            ):
                await go(client.get(server.url + "/echo", extensions=5))
            with pytest.raises(
                TypeError, match=r"^dict\(\) argument after \*\* must be a mapping, not list$"
            ):
                await go(client.get(server.url + "/echo", extensions=[("a", 1)]))
            with pytest.raises(TypeError, match="^keywords must be strings$"):
                await go(client.get(server.url + "/echo", extensions={1: 2}))
            # still usable
            response = await go(client.get(server.url + "/echo", extensions={"x": 1}))
            assert response.request.extensions["x"] == 1
            assert "timeout" in response.request.extensions

    run(flavour, body)


# -- the URL of each request ------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_request_gets_its_own_url(flavour, server):
    # Absolute URL strings are parsed once, and requests to one may share its URL object
    # (it has no setters) only while nothing writes to it: an attribute set on one
    # request's URL is not seen on the next (httpx: URL(url) each time), nor is a write to
    # its parts sent.
    async def body(cls):
        async with opened(cls) as client:
            url = server.url + "/echo?q=1#frag"
            first = (await go(client.get(url))).request.url
            if sys.version_info < (3, 12):  # (where the version is readable: shared)
                assert (await go(client.get(url))).request.url is first
            first.note = "mine"
            second = (await go(client.get(url))).request.url
            assert second is not first
            assert not hasattr(second, "note")
            assert second == first == httprs.URL(url)
            assert (second.netloc, second.raw_path) == (first.netloc, b"/echo?q=1")
            assert (second.fragment, second.query, second.userinfo) == ("frag", b"q=1", b"")
            second._path = "/other"
            second._raw_path = b"/other?q=1"
            response = await go(client.get(url))
            assert response.json()["path"] == "/echo"
            assert str(response.request.url) == url
            assert str(second) == url  # (its string was made before it was shared)
            plain = (await go(client.get(server.url + "/echo"))).request.url
            assert (plain.query, plain.fragment, plain.port) == (b"", "", server.port)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_url_class_patched_into_the_client_module_is_called_for_each_request(flavour, server):
    import httprs._client as client_module

    made = []

    class MyURL(httprs.URL):
        def __init__(self, *args, **kwargs):
            made.append(args)
            super().__init__(*args, **kwargs)

    async def body(cls):
        async with opened(cls) as client:
            await go(client.get(server.url + "/echo"))  # the stock class's template first
            with mock.patch.object(client_module, "URL", MyURL):
                for _ in range(2):
                    response = await go(client.get(server.url + "/echo"))
                    assert response.json()["path"] == "/echo"
            # Request makes a URL of its own from it, as httpx's does.
            assert made == [(server.url + "/echo",)] * 2
            await go(client.get(server.url + "/echo"))
            assert len(made) == 2

    run(flavour, body)


# -- the response stream wrapper --------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_replaced_bound_stream_class_wraps_every_response(flavour, server):
    # httpx wraps each response's stream in `httpx._client.BoundSyncStream(stream,
    # response=..., start=...)` (BoundAsyncStream for async): a class patched in there,
    # even one that only overrides __new__ or takes keyword-only arguments, is called.
    import httprs._client as client_module

    made = []

    async def body(cls):
        name = "BoundAsyncStream" if cls is httprs.AsyncClient else "BoundSyncStream"
        stock = getattr(client_module, name)

        def new(klass, *args, **kwargs):
            made.append(("new", kwargs.keys() == {"response", "start"}))
            return object.__new__(klass)

        class NewOnly(stock):
            __new__ = new

        class KeywordOnly(stock):
            def __init__(self, stream, *, response, start):
                made.append(("init", response.status_code))
                super().__init__(stream, response, start)

        async with opened(cls) as client:
            await go(client.get(server.url + "/echo"))
            for replacement in (NewOnly, KeywordOnly):
                with mock.patch.object(client_module, name, replacement):
                    response = await go(client.get(server.url + "/echo"))
                    assert type(response.stream) is replacement
                    assert response.json()["path"] == "/echo"
                    assert response.elapsed.total_seconds() >= 0
            assert made == [("new", True), ("init", 200)]
            response = await go(client.get(server.url + "/echo"))
            assert type(response.stream).__name__ == "_" + name + "ReadAll"

    run(flavour, body)


# -- overridable helpers and settings read per request (as httpx) -----------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_build_auth_and_trailing_slash_overrides_are_called(flavour, server):
    # httpx calls self._build_auth (in __init__, the auth setter and for a request's own
    # auth=) and self._enforce_trailing_slash (base_url in __init__ and its setter).
    calls = []

    async def body(cls):
        class Sub(cls):
            def _build_auth(self, auth):
                calls.append(("auth", auth))
                if auth is None:
                    return httprs.BasicAuth("default", "pw")
                return super()._build_auth(auth)

            def _enforce_trailing_slash(self, url):
                calls.append(("slash", str(url)))
                return url  # no slash added: "/ec" + "ho" is "/echo"

        async with opened(Sub, base_url=server.url + "/ec") as client:
            assert calls == [("slash", server.url + "/ec"), ("auth", None)]
            assert str(client.base_url) == server.url + "/ec"
            response = await go(client.get("ho"))
            assert response.json()["path"] == "/echo"
            seen = {k.lower(): v for k, v in response.json()["headers"]}
            assert seen["authorization"] == "Basic " + base64.b64encode(b"default:pw").decode()
            seen = await sent_headers(client, server.url, auth=("u", "p"))
            assert seen["authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
            assert calls[-1] == ("auth", ("u", "p"))
            client.auth = None
            assert calls[-1] == ("auth", None)
            client.base_url = server.url + "/b"
            assert calls[-1] == ("slash", server.url + "/b")
            assert str(client.base_url) == server.url + "/b"
            # An instance attribute replaces the method, as on any Python class.
            client._build_auth = lambda auth: calls.append(("instance", auth)) or None
            seen = await sent_headers(client, server.url, auth=("u", "p"))
            assert "authorization" not in seen
            assert calls[-1] == ("instance", ("u", "p"))

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_timeout_changed_in_place_is_seen(flavour, server):
    # httpx reads client.timeout for every request: a Timeout changed in place
    # (client.timeout.read = ...) applies to the next request.
    async def body(cls):
        async with opened(cls, timeout=5.0) as client:
            response = await go(client.get(server.url + "/echo"))
            assert response.request.extensions["timeout"] == dict.fromkeys(
                ("connect", "read", "write", "pool"), 5.0
            )
            client.timeout.read = 0.05
            with pytest.raises(httprs.ReadTimeout):
                await go(client.get(server.url + "/slow?delay=1"))
            client.timeout.read = 5.0
            client.timeout.pool = 7
            response = await go(client.get(server.url + "/slow?delay=0.1"))
            assert response.text == "slow"
            timeouts = response.request.extensions["timeout"]
            assert list(timeouts.items()) == [
                ("connect", 5.0),
                ("read", 5.0),
                ("write", 5.0),
                ("pool", 7),
            ]
            timeouts["read"] = 1  # the request's own copy
            assert client.timeout.read == 5.0
            # A Timeout with an attribute of its own, or one missing, is read through
            # as_dict() as httpx does (the extra attribute is not a timeout).
            client.timeout.note = "x"
            timeouts = (await go(client.get(server.url + "/echo"))).request.extensions["timeout"]
            assert timeouts == {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 7}
            del client.timeout.note
            del client.timeout.write
            with pytest.raises(AttributeError):
                await go(client.get(server.url + "/echo"))
            client.timeout = 3
            timeouts = (await go(client.get(server.url + "/echo"))).request.extensions["timeout"]
            assert timeouts == dict.fromkeys(("connect", "read", "write", "pool"), 3)

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patched_timeout_as_dict_is_called(flavour, server):
    async def body(cls):
        async with opened(cls, timeout=5.0) as client:
            await go(client.get(server.url + "/echo"))
            stock = httprs.Timeout.as_dict
            with mock.patch.object(
                httprs.Timeout, "as_dict", lambda self: {**stock(self), "read": 9.0}
            ):
                response = await go(client.get(server.url + "/echo"))
                assert response.request.extensions["timeout"]["read"] == 9.0
            response = await go(client.get(server.url + "/echo"))
            assert response.request.extensions["timeout"]["read"] == 5.0

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patched_init_of_the_stock_classes_is_called(flavour, server):
    # httpx makes each request's URL with URL(url), its Request with Request(...) and the
    # transport's Response with Response(...): a patch of their __init__ is called for
    # every request, also after the fast paths have seen the stock classes.
    # Each spy records the instances its __init__ ran for: the objects the request hands
    # out must be among them. httpx's transport calls Response(status_code=..., ...) by
    # keyword, so an __init__ that takes it keyword-only works.
    made = []

    def spy(cls):
        original = cls.__init__
        if cls is httprs.Response:

            def __init__(self, *, status_code, **kwargs):
                made.append(self)
                original(self, status_code, **kwargs)

        else:

            def __init__(self, *args, **kwargs):
                made.append(self)
                original(self, *args, **kwargs)

        return mock.patch.object(cls, "__init__", __init__)

    def handed_out(klass, response):
        if klass is httprs.URL:
            return [response.request.url]
        if klass is httprs.Request:
            return [response.request]
        if klass is httprs.Response:
            return [response]
        return [response.request.headers, response.headers]

    async def body(cls):
        url = server.url + "/echo?a=1"
        async with opened(cls) as client:
            for _ in range(2):
                await go(client.get(url))
            for klass in (httprs.URL, httprs.Request, httprs.Response, httprs.Headers):
                with spy(klass):
                    for _ in range(2):
                        made.clear()
                        response = await go(client.get(url))
                        assert response.json()["path"] == "/echo"
                        assert response.status_code == 200
                        assert response.headers["content-type"] == "application/json"
                        for obj in handed_out(klass, response):
                            assert any(obj is seen for seen in made), (klass, obj)
            made.clear()
            await go(client.get(url))
            assert made == []

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_response_default_encoding_is_the_clients(flavour, server):
    # httpx sets every response's default_encoding from the client, whatever Response's
    # own default is (a patched class default included).
    async def body(cls):
        async with opened(cls) as client:
            response = await go(client.get(server.url + "/echo"))
            assert response.default_encoding == "utf-8"
            with mock.patch.object(httprs.Response, "default_encoding", "latin-1"):
                response = await go(client.get(server.url + "/echo"))
                assert response.default_encoding == "utf-8"
                client._default_encoding = "cp1252"
                response = await go(client.get(server.url + "/echo"))
                assert response.default_encoding == "cp1252"
            client._default_encoding = "utf-8"
            response = await go(client.get(server.url + "/echo"))
            assert response.default_encoding == "utf-8"
        async with opened(cls, default_encoding="iso-8859-2") as client:
            response = await go(client.get(server.url + "/echo"))
            assert response.default_encoding == "iso-8859-2"

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patched_response_close_is_called_by_a_whole_read(flavour, server):
    # httpx's read() ends with self.close() (aread() with aclose()): a patched one runs.
    closed = []

    async def body(cls):
        name = "aclose" if cls is httprs.AsyncClient else "close"
        original = getattr(httprs.Response, name)

        def close(self):
            closed.append(self)
            return original(self)

        async with opened(cls) as client:
            await go(client.get(server.url + "/echo"))
            with mock.patch.object(httprs.Response, name, close):
                response = await go(client.get(server.url + "/echo"))
            assert closed == [response]
            assert response.is_closed
            await go(client.get(server.url + "/echo"))
            assert closed == [response]

    run(flavour, body)


@pytest.mark.parametrize(
    "owner, name",
    [
        ("Response", "aread"),
        ("Response", "aclose"),
        ("BoundAsyncStream", "aclose"),
        ("_BoundAsyncStreamReadAll", "_httprs_aread_all"),
    ],
)
@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_a_body_in_with_its_head_is_read_through_patched_steps(flavour, owner, name, scripted):
    # AsyncClient reads a body that came with its head (the scripted server writes both
    # at once) without awaiting aread() only while every step that read would await is
    # the stock one: a patched one is awaited.
    from httprs import _client

    srv = scripted(keepalive(b"Hello, world!"))

    calls = []
    cls = getattr(_client, owner)
    original = getattr(cls, name)

    async def spy(self):
        calls.append(name)
        return await original(self)

    async def body(client_cls):
        async with opened(client_cls) as client:
            await client.get(srv.url)
            with mock.patch.object(cls, name, spy):
                response = await client.get(srv.url)
            assert response.content == b"Hello, world!"
            assert calls == [name]
            await client.get(srv.url)
            assert calls == [name]

    run(flavour, body)


@pytest.mark.parametrize("where", ["class", "instance"])
@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_a_patched_handle_async_request_is_awaited(flavour, where, server):
    # The client awaits the stock handle_async_request's exchange itself: a patched one
    # (pytest-httpx patches the class) is called instead, from the next request on.
    calls = []
    original = httprs.AsyncHTTPTransport.handle_async_request

    async def patched(self, request):
        calls.append(request.url.path)
        return await original(self, request)

    async def body(cls):
        async with opened(cls) as client:
            await client.get(server.url + "/")
            if where == "class":
                patch = mock.patch.object(
                    httprs.AsyncHTTPTransport, "handle_async_request", patched
                )
            else:
                transport = client._transport
                patch = mock.patch.object(
                    transport, "handle_async_request", patched.__get__(transport)
                )
            with patch:
                response = await client.get(server.url + "/echo")
            assert response.json()["path"] == "/echo"
            assert calls == ["/echo"]
            await client.get(server.url + "/")
            assert calls == ["/echo"]

    run(flavour, body)


@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_a_body_in_with_its_head_ends_as_an_awaited_read(flavour, scripted, server):
    # A body that came with its head is read without awaiting (the steps wait for
    # nothing), /slow_body's (its last bytes come 50 ms after the head) by awaiting them:
    # both leave the response and the pool alike.
    import datetime

    srv = scripted(keepalive(b"Hello, world!"))
    urls = ((srv.url, b"Hello, world!"), (server.url + "/slow_body?delay=0.05", b"slow body"))

    async def body(cls):
        async with opened(cls) as client:
            for url, content in urls:
                response = await client.get(url)
                assert response.content == content
                assert response.is_stream_consumed and response.is_closed
                assert response.num_bytes_downloaded == len(content)
                assert response.elapsed > datetime.timedelta(0)
                assert await response.aread() == content
                with pytest.raises(httprs.StreamConsumed):
                    async for _ in response.aiter_raw():
                        pass
            # Both connections went back to the pool: the next requests reuse them.
            ports = {(await client.get(server.url + "/client_port")).text for _ in range(3)}
            assert len(ports) == 1
            for _ in range(3):
                assert (await client.get(srv.url)).content == b"Hello, world!"
            assert srv.connections == 1

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patched_core_stream_methods_are_called(flavour, server):
    # The client's bound stream calls the transport stream's body directly while the
    # stream's class has its own methods: patched ones are called, as before.
    from httprs import _core

    calls = []

    def spy(cls, name):
        original = getattr(cls, name)
        if inspect.iscoroutinefunction(original):

            async def method(self):
                calls.append(name)
                return await original(self)

        else:

            def method(self):
                calls.append(name)
                return original(self)

        return mock.patch.object(cls, name, method)

    async def body(cls):
        is_async = cls is httprs.AsyncClient
        stream_cls = _core.AsyncResponseStream if is_async else _core.ResponseStream
        names = ("_httprs_aread_all", "aclose") if is_async else ("_httprs_read_all", "close")
        async with opened(cls) as client:
            await go(client.get(server.url + "/echo"))
            with spy(stream_cls, names[0]), spy(stream_cls, names[1]):
                response = await go(client.get(server.url + "/echo"))
                assert response.json()["path"] == "/echo"
            assert calls == list(names)
            calls.clear()
            response = await go(client.get(server.url + "/echo"))
            assert response.json()["path"] == "/echo"
            assert calls == []

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_patched_query_params_truth_is_asked(flavour, server):
    # httpx's _merge_queryparams asks `params or self.params`: a patched __bool__ of the
    # client's QueryParams is called, also after requests that read it without the call.
    asked = []

    def __bool__(self):
        asked.append(dict(self))
        return len(self) > 0

    async def body(cls):
        async with opened(cls) as client:
            await go(client.get(server.url + "/echo"))
            with mock.patch.object(httprs.QueryParams, "__bool__", __bool__):
                await go(client.get(server.url + "/echo"))
                assert asked == [{}]
                client.params = {"a": "1"}
                response = await go(client.get(server.url + "/echo"))
                assert asked[-1] == {"a": "1"}
            assert response.json()["query"] == "a=1"

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_private_settings_made_properties_by_a_subclass_are_read(flavour, server):
    # The plain path reads the client's private settings from its instance dict; a class
    # that makes one of them a property must still have it read through the property.
    seen = []

    async def body(cls):
        class Sub(cls):
            @property
            def _headers(self):
                return httprs.Headers({"X-Prop": "1"})

            @_headers.setter
            def _headers(self, value):
                self.__dict__["_headers"] = value  # shadowed by the property

            @property
            def max_redirects(self):
                seen.append("max_redirects")
                return 20

            @max_redirects.setter
            def max_redirects(self, value):
                self.__dict__["max_redirects"] = value

            @property
            def follow_redirects(self):
                seen.append("follow_redirects")
                return False

            @follow_redirects.setter
            def follow_redirects(self, value):
                self.__dict__["follow_redirects"] = value

            @property
            def _auth(self):
                return httprs.BasicAuth("prop", "pw")

            @_auth.setter
            def _auth(self, value):
                self.__dict__["_auth"] = value

            @property
            def _default_encoding(self):
                return "cp1252"

            @_default_encoding.setter
            def _default_encoding(self, value):
                self.__dict__["_default_encoding"] = value

        async with opened(Sub) as client:
            headers = await sent_headers(client, server.url)
            assert headers["x-prop"] == "1"
            assert headers["authorization"] == "Basic " + base64.b64encode(b"prop:pw").decode()
            assert "max_redirects" in seen
            assert "follow_redirects" in seen
            response = await go(client.get(server.url + "/echo"))
            assert response.default_encoding == "cp1252"

    run(flavour, body)


# Pairs of bad arguments: httpx merges url, headers, cookies, params, then the timeout
# and extensions, so the first bad one in that order decides the error.
BAD_PAIRS = [
    {"headers": 5, "params": 5},
    {"headers": 5, "timeout": "x"},
    {"cookies": 5, "params": 5},
    {"params": 5, "timeout": (1,)},
    {"params": 5, "extensions": 5},
    {"cookies": 5, "extensions": 5},
]


@pytest.mark.parametrize("kwargs", BAD_PAIRS, ids=lambda kw: "+".join(kw))
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_bad_argument_pairs_fail_as_httpx(flavour, kwargs, server):
    httpx = pytest.importorskip("httpx")

    async def error(call):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # per-request cookies
            try:
                await go(call())
            except Exception as exc:  # noqa: BLE001 - the error is what is compared
                return type(exc).__name__, str(exc)
        raise AssertionError("no error")

    expected = asyncio.run(
        error(lambda: httpx.Client().build_request("GET", "http://h/", **kwargs))
    )

    async def body(cls):
        async with opened(cls) as client:
            assert (
                await error(lambda: client.build_request("GET", server.url, **kwargs)) == expected
            )
            assert await error(lambda: client.get(server.url, **kwargs)) == expected

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_each_request_has_its_own_extensions_made_when_asked_for(flavour, server):
    # A client's request makes its extensions dict when first asked for (it keeps the
    # client's timeout snapshot until then): each request still has its own dict and
    # timeout dict, written to without reaching the client or the next request, and
    # set, deleted or patched as a plain attribute.
    async def body(cls):
        async with opened(cls, timeout=5.0) as client:
            first = (await go(client.get(server.url + "/echo"))).request
            timeouts = dict.fromkeys(("connect", "read", "write", "pool"), 5.0)
            assert first.extensions == {"timeout": timeouts}
            assert first.extensions is first.extensions
            first.extensions["timeout"]["read"] = 1.0
            first.extensions["mine"] = 1
            second = (await go(client.get(server.url + "/echo"))).request
            assert second.extensions == {"timeout": timeouts}
            assert second.extensions["timeout"] is not first.extensions["timeout"]
            assert client.timeout.read == 5.0
            with mock.patch.object(second, "extensions", {"timeout": {}}):
                assert second.extensions == {"timeout": {}}
            assert second.extensions == {"timeout": timeouts}
            del second.extensions
            with pytest.raises(AttributeError, match="'Request' object has no attribute"):
                _ = second.extensions
            with pytest.raises(AttributeError):
                del second.extensions
            second.extensions = {"x": 1}
            assert second.extensions == {"x": 1}
            third = (await go(client.get(server.url + "/echo"))).request
            del third.extensions  # deleted before it was ever made
            with pytest.raises(AttributeError):
                _ = third.extensions
            # Pickled and copied without extensions (as httpx's), then an empty dict.
            fourth = (await go(client.get(server.url + "/echo"))).request
            for other in (pickle.loads(pickle.dumps(fourth)), copy.copy(fourth)):
                assert other.extensions == {}
            assert fourth.extensions == {"timeout": timeouts}
            redirected = await go(client.get(server.url + "/redirect/302", follow_redirects=True))
            assert redirected.request.extensions == {"timeout": timeouts}
            assert redirected.history[0].request.extensions == {"timeout": timeouts}

    run(flavour, body)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_timeout_changed_after_the_build_does_not_reach_the_built_request(flavour, server):
    # httpx copies the client's timeout into the request when it builds it: a request
    # hook (run after the build) that changes the client's Timeout in place changes the
    # next request's timeout, not this one's (whose snapshot the client shares among its
    # requests while that Timeout is unchanged).
    async def body(cls):
        async def hook(request):
            client.timeout.read = 0.5

        def sync_hook(request):
            client.timeout.read = 0.5

        async with opened(cls, timeout=5.0) as client:
            before = (await go(client.get(server.url + "/echo"))).request
            client.event_hooks = {"request": [hook if cls is httprs.AsyncClient else sync_hook]}
            hooked = (await go(client.get(server.url + "/echo"))).request
            client.event_hooks = {"request": []}
            after = (await go(client.get(server.url + "/echo"))).request
            assert before.extensions["timeout"]["read"] == 5.0
            assert hooked.extensions["timeout"]["read"] == 5.0
            assert after.extensions["timeout"]["read"] == 0.5
            # The transport read the hooked request's own timeout: 5 s, enough for a
            # response that comes after 1 s (the client's 0.5 s read timeout is not).
            client.event_hooks = {"request": [hook if cls is httprs.AsyncClient else sync_hook]}
            client.timeout.read = 5.0
            response = await go(client.get(server.url + "/slow?delay=1"))
            assert response.text == "slow"
            assert response.request.extensions["timeout"]["read"] == 5.0
            client.event_hooks = {"request": []}
            with pytest.raises(httprs.ReadTimeout):
                await go(client.get(server.url + "/slow?delay=1"))

    run(flavour, body)


def test_a_patched_request_extensions_is_what_the_transport_reads(server):
    # With Request.extensions patched, a client's request is made with its dict (the
    # patched descriptor is set and read, as httpx's plain attribute would be), and the
    # transport reads its timeout through it.
    short = {"timeout": dict.fromkeys(("connect", "read", "write", "pool"), 0.5)}
    with httprs.Client(timeout=5.0) as client:
        with mock.patch.object(
            httprs.Request, "extensions", new_callable=mock.PropertyMock, return_value=short
        ) as prop:
            with pytest.raises(httprs.ReadTimeout):
                client.get(server.url + "/slow?delay=1")
            set_values = [c.args[0] for c in prop.call_args_list if c.args]
            assert set_values and set_values[0]["timeout"]["read"] == 5.0
        response = client.get(server.url + "/echo")
        assert response.request.extensions["timeout"]["read"] == 5.0


def test_threads_asking_one_request_for_its_extensions_get_the_same_dict(server):
    # Documents behaviour (no GIL switch is forced inside the make-and-store window).
    with httprs.Client() as client:
        requests = [client.get(server.url + "/echo").request for _ in range(20)]
        seen = [[] for _ in range(4)]
        barrier = threading.Barrier(4)

        def ask(out):
            barrier.wait()
            for request in requests:
                out.append(request.extensions)

        threads = [threading.Thread(target=ask, args=(out,)) for out in seen]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i, request in enumerate(requests):
            assert all(out[i] is request.extensions for out in seen)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="no readable dict version: not shared")
def test_the_client_timeout_snapshot_is_shared_while_unchanged(server):
    # The client's requests share one snapshot of its Timeout (`_ext_timeout`) while
    # neither that Timeout nor the snapshot changed; either change makes a new one.
    with httprs.Client(timeout=5.0) as client:
        first = client.get(server.url + "/echo").request
        second = client.get(server.url + "/echo").request
        assert first._ext_timeout is second._ext_timeout  # shared
        client.timeout.read = 6.0
        third = client.get(server.url + "/echo").request
        assert third._ext_timeout is not second._ext_timeout
        assert second.extensions["timeout"]["read"] == 5.0
        assert third.extensions["timeout"]["read"] == 6.0
        fourth = client.get(server.url + "/echo").request
        fourth._ext_timeout["read"] = 1.0  # written to all the same
        fifth = client.get(server.url + "/echo").request
        assert fifth._ext_timeout is not fourth._ext_timeout
        assert fifth.extensions["timeout"]["read"] == 6.0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_requests_to_a_shared_url_send_its_host(flavour, server):
    # Requests to one URL string share its URL and its Host pair, with params too (the
    # URL with the params' query takes the pair over); a Host given wins.
    host = httprs.URL(server.url).netloc.decode("ascii")

    async def body(cls):
        async with opened(cls) as client:
            for kwargs in ({}, {}, {"params": {"q": "1"}}, {"params": {"q": "1"}}):
                assert (await sent_headers(client, server.url, **kwargs))["host"] == host
            given = await sent_headers(client, server.url, headers={"Host": "example.org"})
            assert given["host"] == "example.org"
            response = await go(client.get(server.url + "/echo", params={"a": "b c"}))
            assert response.request.url.query == b"a=b+c"
            assert response.request.headers["host"] == host

    run(flavour, body)


def _apart(parts):
    """A scripted handler: every request on the connection answered with a chunked body
    whose bytes (framing included) are written in `parts`, each its own send after a
    pause, so the client's waits for chunks find them apart."""
    import time

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for part in parts:
                time.sleep(0.02)
                conn.send(part)

    return handler


@pytest.mark.parametrize("how", ["aiter_raw", "aiter_bytes", "aiter_lines"])
@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_chunks_that_arrive_apart_are_handed_out_in_order(flavour, how, scripted):
    # A chunk's wait runs the loop, then awaits the driver's future (asyncio) or the
    # wait() coroutine (trio): the framing split across sends (a chunk's size line
    # without its data, data cut mid-chunk, the last chunk alone) gives the same body,
    # and the connection serves the next request.
    parts = [
        b"6\r\nfirst\n\r\n",
        b"7\r\nsec",
        b"ond\n\r\n",
        b"6\r\nthi",
        b"rd\n\r\n",
        b"0\r\n\r\n",
    ]
    srv = scripted(_apart(parts))

    async def body(cls):
        async with opened(cls) as client:
            for _ in range(2):
                async with client.stream("GET", srv.url) as response:
                    got = [item async for item in getattr(response, how)()]
                if how == "aiter_lines":
                    assert got == ["first", "second", "third"]
                else:
                    assert b"".join(got) == b"first\nsecond\nthird\n"
                    assert len(got) >= 3  # (each part came on its own)
                assert response.is_closed and response.num_bytes_downloaded == 19
        assert srv.connections == 1

    run(flavour, body)


@pytest.mark.parametrize(
    "where",
    [
        "__aiter__ on the class",
        "_aiter on the class",
        "_aiter on the instance",
        "__aiter__ on the core stream's class",
    ],
)
@pytest.mark.parametrize("how", ["aiter_raw", "aiter_bytes"])
@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_aiter_goes_through_a_patched_bound_stream_iteration(flavour, how, where, server):
    # aiter_raw takes the chunks from the core's body, not through the bound stream's
    # generator, only while that generator is the stock one: a patched __aiter__ or
    # _aiter (on the class, or set on the instance), or the core stream's patched
    # __aiter__, is what gives them.
    from httprs import _client, _core

    core = where.endswith("core stream's class")
    cls = _core.AsyncResponseStream if core else _client._BoundAsyncStreamReadAll
    name = "__aiter__" if where.startswith("__aiter__") else "_aiter"
    upper = _upper_chunks_of(getattr(cls, name))

    async def read(client):
        async with client.stream("GET", server.url + "/") as response:
            if where.endswith("instance"):
                response.stream._aiter = upper.__get__(response.stream)
            return b"".join([chunk async for chunk in getattr(response, how)()])

    async def body(client_cls):
        async with opened(client_cls) as client:
            if where.endswith("instance"):
                assert await read(client) == b"HELLO, WORLD!"
            else:
                with mock.patch.object(cls, name, upper):
                    assert await read(client) == b"HELLO, WORLD!"
            async with client.stream("GET", server.url + "/") as response:
                assert b"".join([c async for c in getattr(response, how)()]) == b"Hello, world!"

    run(flavour, body)


@pytest.mark.parametrize("flavour", ["asyncio", "trio"])
def test_aread_goes_through_a_patched_bound_stream_aiter(flavour, scripted):
    # BoundAsyncStream.__aiter__ hands out its _aiter generator: a patch of _aiter alone
    # is what aread() reads the body through, for a body that came with its head too.
    from httprs import _client

    srv = scripted(keepalive(b"Hello, world!"))
    upper = _upper_chunks_of(_client.BoundAsyncStream._aiter)

    async def body(cls):
        async with opened(cls) as client:
            with mock.patch.object(_client.BoundAsyncStream, "_aiter", upper):
                assert (await client.get(srv.url)).content == b"HELLO, WORLD!"
            assert (await client.get(srv.url)).content == b"Hello, world!"

    run(flavour, body)

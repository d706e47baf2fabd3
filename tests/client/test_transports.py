import sys

import pytest


def hello_wsgi(environ, start_response):
    body = (
        f"{environ['REQUEST_METHOD']} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}"
        f"?{environ['QUERY_STRING']} host={environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        f" scheme={environ['wsgi.url_scheme']} remote={environ['REMOTE_ADDR']}"
        f" ct={environ.get('CONTENT_TYPE')} cl={environ.get('CONTENT_LENGTH')}"
        f" x={environ.get('HTTP_X_CUSTOM')}"
        f" body={environ['wsgi.input'].read().decode()}"
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-App", "wsgi")])
    return [body]


def test_wsgi_environ(hx):
    transport = hx.WSGITransport(app=hello_wsgi, script_name="/mount", remote_addr="1.2.3.4")
    client = hx.Client(transport=transport)
    response = client.post(
        "https://example.org/p%20ath?q=1", content=b"data", headers={"X-Custom": "c"}
    )
    assert response.status_code == 200
    assert response.headers["x-app"] == "wsgi"
    assert response.text == (
        "POST /mount|/p ath?q=1 host=example.org:443 scheme=https remote=1.2.3.4"
        " ct=None cl=4 x=c body=data"
    )
    response = client.get("http://example.org:8080/")
    assert "host=example.org:8080" in response.text


def test_wsgi_generator_app_and_close(hx):
    closed = []

    class Body:
        def __init__(self, start_response):
            self.start_response = start_response

        def __iter__(self):
            self.start_response("201 Created", [("X-Gen", "1")])
            yield b""
            yield b"one "
            yield b"two"

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        return Body(start_response)

    client = hx.Client(transport=hx.WSGITransport(app=app))
    response = client.get("http://example.org/")
    assert response.status_code == 201
    assert response.content == b"one two"
    assert closed == [True]


def test_wsgi_streaming_response(hx):
    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([b"a", b"b", b"c"])

    client = hx.Client(transport=hx.WSGITransport(app=app))
    with client.stream("GET", "http://example.org/") as response:
        assert list(response.iter_bytes()) == [b"a", b"b", b"c"]


def test_wsgi_app_exception(hx):
    def app(environ, start_response):
        raise ValueError("app crashed")

    client = hx.Client(transport=hx.WSGITransport(app=app))
    with pytest.raises(ValueError, match="app crashed"):
        client.get("http://example.org/")


def test_wsgi_exc_info(hx):
    def app(environ, start_response):
        try:
            raise KeyError("inner")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        return [b"error page"]

    client = hx.Client(transport=hx.WSGITransport(app=app))
    with pytest.raises(KeyError):
        client.get("http://example.org/")
    quiet = hx.Client(transport=hx.WSGITransport(app=app, raise_app_exceptions=False))
    response = quiet.get("http://example.org/")
    assert response.status_code == 500
    assert response.text == "error page"


def test_wsgi_errors_stream(hx):
    import io

    errors = io.StringIO()

    def app(environ, start_response):
        environ["wsgi.errors"].write("logged")
        start_response("204 No Content", [])
        return []

    client = hx.Client(transport=hx.WSGITransport(app=app, wsgi_errors=errors))
    assert client.get("http://example.org/").status_code == 204
    assert errors.getvalue() == "logged"


# -- ASGI ---------------------------------------------------------------------------------


async def echo_asgi(scope, receive, send):
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    info = repr((
        scope["method"],
        scope["path"],
        scope["raw_path"],
        scope["query_string"],
        scope["scheme"],
        scope["server"],
        scope["client"],
        scope["root_path"],
        scope["http_version"],
        [(k, v) for k, v in scope["headers"] if k == b"x-custom"],
        body,
    )).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"asgi")]})
    await send({"type": "http.response.body", "body": info[:10], "more_body": True})
    await send({"type": "http.response.body", "body": info[10:]})


@pytest.mark.anyio
async def test_asgi_scope_and_body(hx):
    transport = hx.ASGITransport(app=echo_asgi, root_path="/root", client=("9.9.9.9", 99))
    async with hx.AsyncClient(transport=transport) as client:
        response = await client.post(
            "http://example.org:8000/a%20b?x=1", content=b"payload", headers={"X-Custom": "1"}
        )
    assert response.status_code == 200
    assert response.headers["x-app"] == "asgi"
    assert response.text == repr((
        "POST",
        "/a b",
        b"/a%20b",
        b"x=1",
        "http",
        ("example.org", 8000),
        ("9.9.9.9", 99),
        "/root",
        "1.1",
        [(b"x-custom", b"1")],
        b"payload",
    ))


@pytest.mark.anyio
async def test_asgi_streaming_request_body(hx):
    async def body():
        yield b"part1-"
        yield b"part2"

    async with hx.AsyncClient(transport=hx.ASGITransport(app=echo_asgi)) as client:
        response = await client.post("http://example.org/", content=body())
    assert "b'part1-part2'" in response.text


@pytest.mark.anyio
async def test_asgi_head_drops_body(hx):
    async with hx.AsyncClient(transport=hx.ASGITransport(app=echo_asgi)) as client:
        response = await client.head("http://example.org/")
    assert response.status_code == 200
    assert response.content == b""


async def crashing_app(scope, receive, send):
    raise RuntimeError("asgi crashed")


async def crash_after_start(scope, receive, send):
    await send({"type": "http.response.start", "status": 202, "headers": []})
    raise RuntimeError("late crash")


@pytest.mark.anyio
async def test_asgi_exceptions(hx):
    async with hx.AsyncClient(transport=hx.ASGITransport(app=crashing_app)) as client:
        with pytest.raises(RuntimeError, match="asgi crashed"):
            await client.get("http://example.org/")
    transport = hx.ASGITransport(app=crashing_app, raise_app_exceptions=False)
    async with hx.AsyncClient(transport=transport) as client:
        response = await client.get("http://example.org/")
        assert response.status_code == 500
        assert response.content == b""
    transport = hx.ASGITransport(app=crash_after_start, raise_app_exceptions=False)
    async with hx.AsyncClient(transport=transport) as client:
        response = await client.get("http://example.org/")
        assert response.status_code == 202


@pytest.mark.anyio
async def test_asgi_disconnect_after_response(hx):
    messages = []

    async def app(scope, receive, send):
        while True:
            message = await receive()
            messages.append(message)
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        messages.append(await receive())

    async with hx.AsyncClient(transport=hx.ASGITransport(app=app)) as client:
        response = await client.get("http://example.org/")
    assert response.text == "done"
    assert messages[-2] == {"type": "http.request", "body": b"", "more_body": False}
    assert messages[-1] == {"type": "http.disconnect"}


# -- Mock / base --------------------------------------------------------------------------


def test_mock_transport_reads_request(hx):
    def handler(request):
        return hx.Response(200, content=request.content[::-1])

    transport = hx.MockTransport(handler)
    assert transport.handler is handler

    def body():
        yield b"abc"

    client = hx.Client(transport=transport)
    assert client.post("http://example.org/", content=body()).content == b"cba"


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited")
def test_mock_transport_async_handler_in_sync_client(hx):
    async def handler(request):
        return hx.Response(200)

    client = hx.Client(transport=hx.MockTransport(handler))
    with pytest.raises(TypeError, match="Cannot use an async handler in a sync Client"):
        client.get("http://example.org/")


@pytest.mark.anyio
async def test_mock_transport_async_handler(hx):
    async def handler(request):
        return hx.Response(200, content=await request.aread())

    async with hx.AsyncClient(transport=hx.MockTransport(handler)) as client:
        assert (await client.put("http://example.org/", content=b"x")).content == b"x"


def test_base_transport(hx):
    transport = hx.BaseTransport()
    with pytest.raises(NotImplementedError):
        transport.handle_request(hx.Request("GET", "http://example.org/"))
    with transport as entered:
        assert entered is transport
    assert isinstance(hx.MockTransport(print), hx.BaseTransport)
    assert isinstance(hx.MockTransport(print), hx.AsyncBaseTransport)
    assert isinstance(hx.WSGITransport(app=print), hx.BaseTransport)
    assert isinstance(hx.ASGITransport(app=print), hx.AsyncBaseTransport)


def test_transport_subclass_attributes(hx):
    class Custom(hx.BaseTransport):
        def __init__(self):
            self.count = 0

        def handle_request(self, request):
            self.count += 1
            return hx.Response(200)

    transport = Custom()
    client = hx.Client(transport=transport)
    client.get("http://example.org/")
    assert transport.count == 1


def test_a_response_made_without_init_gets_an_empty_history(hx):
    # A transport may return a Response made by __new__ (no __init__): the client gives it
    # `history = []` all the same, as httpx's _send_handling_redirects does.
    class Bare(hx.BaseTransport):
        def handle_request(self, request):
            response = hx.Response.__new__(hx.Response)
            response.status_code = 200
            response.headers = hx.Headers()
            response.stream = hx.ByteStream(b"")
            response.extensions = {}
            response.is_closed = response.is_stream_consumed = False  # (httpx's close reads it)
            return response

    with hx.Client(transport=Bare()) as client:
        with client.stream("GET", "http://example.org/") as response:
            assert response.history == []


def _no_start_response(environ, start_response):
    return [b"body"]


def test_wsgi_app_without_start_response_is_an_assertion_error(hx):
    """httpx asserts start_response() was called; httprs's error is an AssertionError too."""
    with hx.Client(transport=hx.WSGITransport(app=_no_start_response)) as client:
        with pytest.raises(AssertionError):
            client.get("http://example.org/")


async def _start_twice(scope, receive, send):
    start = {"type": "http.response.start", "status": 200, "headers": []}
    await send(start)
    await send(start)


async def _body_after_end(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"a"})
    await send({"type": "http.response.body", "body": b"b"})


@pytest.mark.anyio
@pytest.mark.parametrize("app", [_start_twice, _body_after_end])
async def test_asgi_app_breaking_the_protocol_is_an_assertion_error(hx, app):
    """httpx asserts the message order; httprs's error is an AssertionError too."""
    async with hx.AsyncClient(transport=hx.ASGITransport(app=app)) as client:
        with pytest.raises(AssertionError):
            await client.get("http://example.org/")

import pytest


def ok_handler(hx):
    def handler(request):
        if request.url.path == "/redirect":
            return hx.Response(302, headers={"Location": "/target"})
        if request.url.path == "/error":
            return hx.Response(500, text="bad")
        return hx.Response(200, content=iter([b"body"]))

    return handler


def test_request_and_response_hooks(hx):
    events = []

    def on_request(request):
        events.append(("request", request.method, str(request.url)))
        request.headers["X-Hooked"] = "1"

    def on_response(response):
        # The stream is not read yet when response hooks run.
        events.append(("response", response.status_code, response.is_stream_consumed))
        events.append(("request-of-response", response.request.headers["x-hooked"]))

    client = hx.Client(
        transport=hx.MockTransport(ok_handler(hx)),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    response = client.get("http://example.org/")
    assert response.content == b"body"
    assert events == [
        ("request", "GET", "http://example.org/"),
        ("response", 200, False),
        ("request-of-response", "1"),
    ]


def test_hooks_on_each_redirect_hop(hx):
    events = []
    client = hx.Client(
        transport=hx.MockTransport(ok_handler(hx)),
        follow_redirects=True,
        event_hooks={
            "request": [lambda r: events.append(("req", r.url.path))],
            "response": [lambda r: events.append(("resp", r.status_code))],
        },
    )
    client.get("http://example.org/redirect")
    assert events == [("req", "/redirect"), ("resp", 302), ("req", "/target"), ("resp", 200)]


@pytest.mark.parametrize("overridden", [False, True])
def test_hooks_replaced_during_a_redirect_are_read_again(hx, overridden):
    # httpx reads client._event_hooks for each hop and each kind of hook: hooks replaced
    # by a hook run from the next read on, within the same redirect chain. With a step
    # overridden the client runs its methods; without, the library's direct path.
    cls = hx.Client
    if overridden:
        step = hx.Client._send_single_request
        cls = type("Sub", (cls,), {"_send_single_request": lambda s, r: step(s, r)})
    events = []

    def replace(request):
        events.append(("first", request.url.path))
        client.event_hooks = {
            "request": [lambda r: events.append(("second", r.url.path))],
            "response": [lambda r: events.append(("new", r.status_code))],
        }

    client = cls(
        transport=hx.MockTransport(ok_handler(hx)),
        follow_redirects=True,
        event_hooks={"request": [replace], "response": [lambda r: events.append(("old", 0))]},
    )
    client.get("http://example.org/redirect")
    assert events == [("first", "/redirect"), ("new", 302), ("second", "/target"), ("new", 200)]


def test_raise_for_status_in_hook(hx):
    def raise_on_4xx_5xx(response):
        response.raise_for_status()

    client = hx.Client(
        transport=hx.MockTransport(ok_handler(hx)), event_hooks={"response": [raise_on_4xx_5xx]}
    )
    with pytest.raises(hx.HTTPStatusError) as info:
        client.get("http://example.org/error")
    assert info.value.response.status_code == 500
    assert info.value.response.is_closed


def test_hooks_can_be_replaced(hx):
    events = []
    client = hx.Client(transport=hx.MockTransport(ok_handler(hx)))
    client.event_hooks["request"].append(lambda r: events.append("appended"))
    client.get("http://example.org/")
    client.event_hooks = {"request": [lambda r: events.append("replaced")]}
    client.get("http://example.org/")
    assert events == ["appended", "replaced"]


def test_hook_exception_propagates(hx):
    def boom(request):
        raise ValueError("hook failed")

    client = hx.Client(transport=hx.MockTransport(ok_handler(hx)), event_hooks={"request": [boom]})
    with pytest.raises(ValueError, match="hook failed"):
        client.get("http://example.org/")


@pytest.mark.anyio
async def test_async_hooks(hx):
    events = []

    async def on_request(request):
        events.append(("request", request.url.path))

    async def on_response(response):
        events.append(("response", response.status_code))
        await response.aread()
        events.append(("body", response.content))

    client = hx.AsyncClient(
        transport=hx.MockTransport(lambda request: hx.Response(200, content=b"body")),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    async with client:
        response = await client.get("http://example.org/x")
    assert response.content == b"body"
    assert events == [("request", "/x"), ("response", 200), ("body", b"body")]


@pytest.mark.anyio
@pytest.mark.parametrize("overridden", [False, True])
async def test_async_hooks_replaced_during_a_redirect_are_read_again(hx, overridden):
    # The async twin of test_hooks_replaced_during_a_redirect_are_read_again.
    events = []

    def hook(name, attr):
        async def record(obj):
            events.append((name, getattr(obj, attr)))

        return record

    async def replace(request):
        events.append(("first", request.url.path))
        client.event_hooks = {
            "request": [hook("second", "url")],
            "response": [hook("new", "status_code")],
        }

    cls = hx.AsyncClient
    if overridden:
        step = hx.AsyncClient._send_single_request
        cls = type("Sub", (cls,), {"_send_single_request": lambda s, r: step(s, r)})

    def handler(request):
        if request.url.path == "/redirect":
            return hx.Response(302, headers={"Location": "/target"})
        return hx.Response(200, content=b"body")

    client = cls(
        transport=hx.MockTransport(handler),
        follow_redirects=True,
        event_hooks={"request": [replace], "response": [hook("old", "status_code")]},
    )
    async with client:
        await client.get("http://example.org/redirect")
    events = [(name, getattr(value, "path", value)) for name, value in events]
    assert events == [("first", "/redirect"), ("new", 302), ("second", "/target"), ("new", 200)]

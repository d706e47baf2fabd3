import pytest

NAMES = [
    "HTTPError",
    "RequestError",
    "TransportError",
    "TimeoutException",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "NetworkError",
    "ConnectError",
    "ReadError",
    "WriteError",
    "CloseError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ProxyError",
    "UnsupportedProtocol",
    "DecodingError",
    "TooManyRedirects",
    "HTTPStatusError",
    "InvalidURL",
    "CookieConflict",
    "StreamError",
    "StreamConsumed",
    "StreamClosed",
    "ResponseNotRead",
    "RequestNotRead",
]


def _shape(mod):
    out = {}
    for name in NAMES:
        cls = getattr(mod, name)
        out[name] = [b.__name__ for b in cls.__mro__]
    return out


def test_hierarchy_matches_httpx(rs):
    import httpx

    assert _shape(rs) == _shape(httpx)


@pytest.mark.parametrize(
    "name", ["ConnectError", "ReadTimeout", "DecodingError", "TooManyRedirects"]
)
def test_request_property(hx, name):
    exc = getattr(hx, name)("boom")
    assert str(exc) == "boom"
    with pytest.raises(RuntimeError, match=r"The \.request property has not been set\."):
        exc.request  # noqa: B018
    exc.request = "R"
    assert exc.request == "R"
    exc2 = getattr(hx, name)("boom", request="Q")
    assert exc2.request == "Q"


def test_http_error_base(hx):
    exc = hx.HTTPError("x")
    with pytest.raises(RuntimeError):
        exc.request  # noqa: B018
    with pytest.raises(TypeError):
        hx.HTTPError("x", request=1)


def test_status_error(hx):
    exc = hx.HTTPStatusError("bad", request="req", response="resp")
    assert exc.request == "req"
    assert exc.response == "resp"
    assert exc.args == ("bad",)
    with pytest.raises(TypeError):
        hx.HTTPStatusError("bad")


@pytest.mark.parametrize(
    "name", ["StreamConsumed", "StreamClosed", "ResponseNotRead", "RequestNotRead"]
)
def test_stream_messages(rs, name):
    import httpx

    assert str(getattr(rs, name)()) == str(getattr(httpx, name)())
    assert isinstance(getattr(rs, name)(), RuntimeError)


def test_simple_messages(hx):
    assert str(hx.InvalidURL("u")) == "u"
    assert str(hx.CookieConflict("c")) == "c"
    assert str(hx.StreamError("s")) == "s"


def test_request_context(rs):
    with pytest.raises(rs.ReadError) as info:
        with rs.request_context(request="r"):
            raise rs.ReadError("x")
    assert info.value.request == "r"

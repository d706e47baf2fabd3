"""Invalid input from the caller raises the httpx exception, and the client stays usable."""

from __future__ import annotations

import pytest
from servers.scripted import keepalive

import httprs


@pytest.fixture
def srv(scripted):
    return scripted(keepalive(b"good"))


@pytest.fixture
def client():
    with httprs.Client(timeout=5) as c:
        yield c


def assert_usable(client, srv):
    assert client.get(srv.url + "/good").text == "good"


@pytest.mark.parametrize(
    "url",
    ["http://", "https://", "http:///path", "example.org", "/relative", "", "file:///etc/passwd"],
)
def test_missing_scheme_or_host(client, srv, url):
    with pytest.raises(httprs.UnsupportedProtocol) as info:
        client.get(url)
    assert "missing an 'http://' or 'https://' protocol" in str(info.value)
    assert_usable(client, srv)


@pytest.mark.parametrize("scheme", ["ftp", "socks5", "gopher"])
def test_unsupported_scheme(client, srv, scheme):
    with pytest.raises(httprs.UnsupportedProtocol) as info:
        client.get(f"{scheme}://127.0.0.1:1/")
    assert f"unsupported protocol '{scheme}://'" in str(info.value)
    assert_usable(client, srv)


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://127.0.0.1:abc/", "Invalid port: 'abc'"),
        ("http://[::1/", "Invalid port"),
        ("http://a\x00b/", "Invalid non-printable ASCII character in URL"),
        ("http://127.0.0.1/\r\nX-Injected: 1", "Invalid non-printable ASCII character in URL"),
    ],
)
def test_invalid_url(client, srv, url, message):
    with pytest.raises(httprs.InvalidURL) as info:
        client.get(url)
    assert message in str(info.value)
    assert_usable(client, srv)


def test_invalid_url_top_level():
    with pytest.raises(httprs.InvalidURL):
        httprs.get("http://127.0.0.1:abc/")
    with pytest.raises(httprs.UnsupportedProtocol):
        httprs.get("nope://127.0.0.1/")


def test_port_out_of_range_is_connect_error(client, srv):
    # httpx parses :99999 and only fails when connecting
    with pytest.raises(httprs.ConnectError):
        client.get("http://127.0.0.1:99999/")
    assert_usable(client, srv)


@pytest.mark.parametrize(
    "name,value",
    [
        ("X-A", "a\r\nb"),
        ("X-A", "a\nb"),
        ("X-A", "a\rb"),
        ("X-A", "a\x00b"),
        ("X-A", " padded "),
    ],
)
def test_illegal_header_value(client, srv, name, value):
    with pytest.raises(httprs.LocalProtocolError) as info:
        client.get(srv.url + "/bad", headers={name: value})
    assert "Illegal header value" in str(info.value)
    assert_usable(client, srv)
    assert not any(r.target == "/bad" for r in srv.requests)


@pytest.mark.parametrize("name", ["X\r\nA", "X A", "X:A", "", "X\x00A"])
def test_illegal_header_name(client, srv, name):
    with pytest.raises(httprs.LocalProtocolError) as info:
        client.get(srv.url + "/bad", headers={name: "v"})
    assert "Illegal header name" in str(info.value)
    assert_usable(client, srv)
    assert not any(r.target == "/bad" for r in srv.requests)


@pytest.mark.parametrize("name,value", [("Xé", "v"), ("X-A", "é"), ("X-A", "€")])
def test_non_ascii_str_header(client, srv, name, value):
    with pytest.raises(UnicodeEncodeError):
        client.get(srv.url + "/bad", headers={name: value})
    assert_usable(client, srv)


def test_bytes_header_value_latin1_passthrough(client, srv):
    client.get(srv.url + "/b", headers={b"X-B": b"caf\xe9", "X-Tab": "a\tb"})
    head = srv.requests[-1].head
    assert b"\r\nX-B: caf\xe9" in head
    assert b"\r\nX-Tab: a\tb" in head


@pytest.mark.parametrize("method", ["GET X", "G\r\nET", "", "G(T", "G\x00T"])
def test_illegal_method(client, srv, method):
    with pytest.raises(httprs.LocalProtocolError) as info:
        client.request(method, srv.url + "/bad")
    assert "Illegal method characters" in str(info.value)
    assert_usable(client, srv)


def test_method_is_uppercased_and_custom_methods_work(client, srv):
    r = client.request("get", srv.url + "/x")
    assert r.request.method == "GET"
    assert srv.requests[-1].method == "GET"
    client.request("PURGE", srv.url + "/x")
    assert srv.requests[-1].method == "PURGE"


def test_non_ascii_method(client, srv):
    with pytest.raises(TypeError):
        client.request("géT", srv.url)
    assert_usable(client, srv)


def test_body_iterator_raising_mid_upload(client, srv):
    class Boom(Exception):
        pass

    def gen():
        yield b"abc"
        raise Boom("boom")

    with pytest.raises(Boom, match="boom"):
        client.post(srv.url + "/upload", content=gen())
    assert_usable(client, srv)
    assert_usable(client, srv)


def test_body_iterator_wrong_type(client, srv):
    with pytest.raises(TypeError):
        client.post(srv.url, content=12)
    assert_usable(client, srv)


@pytest.mark.httprs_only
def test_content_length_mismatch_too_little(client, srv):
    """httpx leaks h11's own LocalProtocolError here (not httpx.LocalProtocolError)."""
    with pytest.raises(httprs.LocalProtocolError, match="Too little data"):
        client.post(srv.url + "/cl", content=b"x", headers={"Content-Length": "5"})
    assert_usable(client, srv)


@pytest.mark.httprs_only
def test_content_length_on_get_without_body(client, srv):
    """httpx leaks h11's own LocalProtocolError here (not httpx.LocalProtocolError)."""
    with pytest.raises(httprs.LocalProtocolError):
        client.get(srv.url + "/cl", headers={"Content-Length": "5"})
    assert_usable(client, srv)


def test_host_header_override(client, srv):
    client.get(srv.url + "/h", headers={"Host": "example.org"})
    req = srv.requests[-1]
    assert req.header_all("host") == ["example.org"]
    assert req.headers[0][0].lower() == "host"


def test_content_length_mismatch_raises_httpx_too(client, srv):
    # the validation-mode twin of the two tests above: some error, with h11's message
    with pytest.raises(Exception, match="Too little data for declared Content-Length"):
        client.post(srv.url + "/cl", content=b"x", headers={"Content-Length": "5"})
    assert_usable(client, srv)


def test_closed_client_raises(srv):
    c = httprs.Client()
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.get(srv.url)


def test_bad_timeout_and_limits_types():
    with pytest.raises(ValueError):
        httprs.Timeout(connect=1.0)
    with pytest.raises(TypeError):
        httprs.Client(timeout="soon").get("http://127.0.0.1:1/")

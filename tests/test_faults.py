"""Every scripted server fault maps to the httpx exception class, and the client stays usable.

Each scripted server answers ``/good`` correctly (keep-alive) and misbehaves on any other
path, so after the fault a good request on the *same* client must succeed.
"""

from __future__ import annotations

import contextlib
import errno
import threading
import time

import httpx
import pytest
from servers.faults import (
    FAULTS,
    GOOD,
    close_before_response,
    fault_server,
    reset_before_response,
    reset_mid_body,
    truncated_body,
    truncated_chunked,
)
from servers.scripted import chunked

import httprs


def assert_usable(client, srv):
    r = client.get(srv.url + "/good")
    assert r.status_code == 200
    assert r.text == "good"


@pytest.fixture
def client():
    with httprs.Client(timeout=5.0) as c:
        yield c


@pytest.mark.parametrize("fault,exc,message", FAULTS, ids=[f[0].__name__ for f in FAULTS])
def test_fault_raises_and_client_recovers(client, scripted, fault, exc, message):
    exc = getattr(httprs, exc)
    srv = fault_server(scripted, fault)
    assert_usable(client, srv)  # a pooled connection exists before the fault
    with pytest.raises(exc) as info:
        client.get(srv.url + "/fault")
    if message is not None:
        assert message in str(info.value)
    assert info.value.request.url == httprs.URL(srv.url + "/fault")
    assert_usable(client, srv)
    assert_usable(client, srv)


@pytest.mark.parametrize(
    "fault,exc",
    [
        (truncated_body, "RemoteProtocolError"),
        (reset_mid_body, "ReadError"),
        (truncated_chunked, "RemoteProtocolError"),
    ],
    ids=["truncated_body", "reset_mid_body", "truncated_chunked"],
)
def test_fault_while_streaming_raises_from_iterator(client, scripted, fault, exc):
    exc = getattr(httprs, exc)
    srv = fault_server(scripted, fault)
    with client.stream("GET", srv.url + "/fault") as r:
        assert r.status_code == 200
        with pytest.raises(exc):
            for _ in r.iter_bytes():
                pass
    assert_usable(client, srv)


def test_reset_before_response(client, scripted):
    srv = fault_server(scripted, reset_before_response)
    with pytest.raises((httprs.ReadError, httprs.RemoteProtocolError)):
        client.get(srv.url + "/fault")
    assert_usable(client, srv)


def test_connection_refused(client, closed_port, scripted):
    with pytest.raises(httprs.ConnectError) as info:
        client.get(f"http://127.0.0.1:{closed_port}/")
    assert info.value.request.url.port == closed_port
    srv = fault_server(scripted, close_before_response)
    assert_usable(client, srv)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_connection_refused_is_caused_by_the_oserror(closed_port, lib):
    """As in httpx, the chain under the ConnectError reaches the socket's OSError
    (through httpcore's exception there): code looks for ConnectionRefusedError and its
    errno. httprs raised a ConnectError without a cause."""
    with lib.Client() as c, pytest.raises(lib.ConnectError) as info:
        c.get(f"http://127.0.0.1:{closed_port}/")
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # (httpcore's link is the context)
    refused = [e for e in chain if isinstance(e, ConnectionRefusedError)]
    assert refused and refused[0].errno == errno.ECONNREFUSED


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.anyio
async def test_connection_refused_is_caused_by_the_oserror_async(closed_port, anyio_backend, lib):
    """An async client's connect goes through anyio or trio in httpx, which wrap the
    socket's error: the message is theirs ("All connection attempts failed", trio's
    "all attempts to connect to HOST:PORT failed"; code checks those words), caused by
    an OSError with the same words and, below it, the ConnectionRefusedError. httprs
    gave the socket's message ("[Errno 111] Connection refused"), as a sync client's."""
    async with lib.AsyncClient() as c:
        with pytest.raises(lib.ConnectError) as info:
            await c.get(f"http://127.0.0.1:{closed_port}/")
    expected = {
        "asyncio": "All connection attempts failed",
        "trio": f"all attempts to connect to 127.0.0.1:{closed_port} failed",
    }[anyio_backend]
    assert str(info.value) == expected
    chain, exc = [], info.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(type(e) is OSError and str(e) == expected for e in chain)
    refused = [e for e in chain if isinstance(e, ConnectionRefusedError)]
    if not refused:  # trio's: an ExceptionGroup of each address's error
        grouped = [x for e in chain for x in getattr(e, "exceptions", ())]
        refused = [x for x in grouped if isinstance(x, ConnectionRefusedError)]
    assert refused and refused[0].errno == errno.ECONNREFUSED


def test_never_answering_read_timeout(scripted):
    srv = fault_server(scripted, lambda conn, req: conn.hold())
    with httprs.Client(timeout=httprs.Timeout(5.0, read=0.3)) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ReadTimeout):
            c.get(srv.url + "/fault")
        assert time.monotonic() - t0 < 3
        assert_usable(c, srv)


def test_faulted_connection_not_reused(client, scripted):
    """After a fault the broken connection is discarded: the next request opens a new one."""
    srv = fault_server(scripted, truncated_body)
    with pytest.raises(httprs.RemoteProtocolError):
        client.get(srv.url + "/fault")
    assert_usable(client, srv)
    assert srv.connections == 2


def test_stale_keepalive_connection_reconnects(client, scripted):
    """The server closes idle keep-alive connections: the client notices and reconnects."""

    def handler(conn):
        req = conn.read_request()
        if req is not None:
            conn.send(GOOD)  # keep-alive response, then close while idle

    srv = scripted(handler)
    for _ in range(3):
        assert_usable(client, srv)
        time.sleep(0.2)  # let the FIN arrive before the next request
    assert srv.connections == 3


def test_extra_bytes_after_body_later_segment_not_reused(client, scripted):
    """Junk arriving after a complete response makes the idle connection unusable."""

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(GOOD)
            time.sleep(0.05)
            conn.send(b"junk after the body")

    srv = scripted(handler)
    assert_usable(client, srv)
    time.sleep(0.2)
    assert_usable(client, srv)
    assert srv.connections == 2


@pytest.mark.httprs_only
def test_extra_bytes_in_same_segment_never_parsed_as_next_response(client, scripted):
    """[harden] httpx #1474: a forged second response sent with the first must never be
    returned for the next request (httpx returns it)."""

    def handler(conn):
        while conn.read_request() is not None:
            if conn.index == 0:
                conn.send(GOOD + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!")
            else:
                conn.send(GOOD)

    srv = scripted(handler)
    assert_usable(client, srv)
    assert_usable(client, srv)
    assert srv.connections == 2


def test_204_with_stray_body_next_request_ok(client, scripted):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/204":
                conn.send(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                conn.send(GOOD)

    srv = scripted(handler)
    assert client.get(srv.url + "/204").status_code == 204
    assert_usable(client, srv)
    assert srv.connections == 1


def test_http10_keepalive_closed_not_reused(client, scripted):
    def handler(conn):
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\ngood")

    srv = scripted(handler)
    assert_usable(client, srv)
    assert_usable(client, srv)
    assert srv.connections == 2


def test_connection_close_then_good(client, scripted):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            conn.send(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\ngood"
                + (b"trailing junk" if req.target == "/junk" else b"")
            )
            return

    srv = scripted(handler)
    assert client.get(srv.url + "/junk").text == "good"
    assert_usable(client, srv)
    assert srv.connections == 2


def test_interim_then_fault(client, scripted):
    def fault(conn, req):
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    srv = fault_server(scripted, fault)
    with pytest.raises(httprs.RemoteProtocolError):
        client.get(srv.url + "/fault")
    assert_usable(client, srv)


# A 1xx response never has a body (RFC 9110 15.2; h11 reads none): framing headers on it
# are ignored, the next byte starts the next response. httpx's outcome for each, checked
# over 127.0.0.1 with the same bytes: bytes where a "body" would be are a bad status line.
INTERIM_FRAMING = {
    "content_length": (b"HTTP/1.1 103 Early\r\nContent-Length: 4\r\n\r\n", b"ok"),
    "chunked": (b"HTTP/1.1 103 Early\r\nTransfer-Encoding: chunked\r\n\r\n", b"ok"),
    "content_length_and_bytes": (
        b"HTTP/1.1 103 Early\r\nContent-Length: 4\r\n\r\nabcd",
        httprs.RemoteProtocolError,
    ),
    # An empty line after the 1xx is no status line either (h11: "no response line").
    "crlf_after_interim": (b"HTTP/1.1 100 Continue\r\n\r\n\r\n", httprs.RemoteProtocolError),
    "lf_after_interim": (b"HTTP/1.1 103 Early\r\nLink: a\r\n\r\n\n", httprs.RemoteProtocolError),
    "two_interims": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\n\r\n", b"ok"),
}


def interim_framing_server(scripted, interim):
    def handler(conn):
        if conn.read_request(body=False) is not None:
            conn.send(interim + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.hold(1)

    return scripted(handler)


@pytest.mark.parametrize("case", list(INTERIM_FRAMING))
def test_interim_response_framing_is_ignored(client, scripted, case):
    interim, expected = INTERIM_FRAMING[case]
    srv = interim_framing_server(scripted, interim)
    if isinstance(expected, bytes):
        assert client.get(srv.url).content == expected
    else:
        with pytest.raises(expected):  # never "abcdok"
            client.get(srv.url)


@pytest.mark.anyio
@pytest.mark.parametrize("case", list(INTERIM_FRAMING))
async def test_interim_response_framing_is_ignored_async(scripted, anyio_backend, case):
    interim, expected = INTERIM_FRAMING[case]
    srv = interim_framing_server(scripted, interim)
    async with httprs.AsyncClient(timeout=5.0) as c:
        if isinstance(expected, bytes):
            assert (await c.get(srv.url)).content == expected
        else:
            with pytest.raises(expected):
                await c.get(srv.url)


def _chunked_with_trailers(trailers: bytes):
    """Keep-alive: /good answers GOOD, anything else "abc" chunked with `trailers`."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/good":
                conn.send(GOOD)
            else:
                conn.send(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + chunked(b"abc", trailers=trailers)
                )

    return handler


def test_chunked_trailers_then_reuse(client, scripted):
    srv = scripted(_chunked_with_trailers(b"X-T: 1\r\nX-U: 2\r\n"))
    assert client.get(srv.url + "/t").text == "abc"
    assert_usable(client, srv)
    assert srv.connections == 1


@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_trailer_names_of_any_length_are_accepted(client, scripted, delta):
    """Trailers are parsed into the block the head was moved out of: a block left with the
    head's offsets misread a trailer name as long as the head's bytes as empty (and
    refused the response as having an empty field name)."""
    head_bytes = len("Transfer-Encoding") + len("chunked")
    name = b"X-" + b"t" * (head_bytes - 2 + delta)
    srv = scripted(_chunked_with_trailers(name + b": 1\r\n"))
    assert client.get(srv.url + "/t").text == "abc"
    assert_usable(client, srv)
    assert srv.connections == 1


def test_trailer_with_an_empty_name_is_refused(client, scripted):
    srv = fault_server(
        scripted,
        lambda conn, req: conn.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + chunked(b"abc", trailers=b": 1\r\n")
        ),
    )
    with pytest.raises(httprs.RemoteProtocolError, match="empty field name"):
        client.get(srv.url + "/fault")
    assert_usable(client, srv)


def test_upload_server_closes_early_with_response(client, scripted):
    """The server answers 413 and closes while the client is still uploading."""

    def handler(conn):
        req = conn.read_request(body=False)
        if req.target == "/good":
            conn.send(GOOD)
            return
        conn.read_some(64 * 1024)
        conn.send(
            b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!"
        )
        conn.shutdown_write()
        conn.read_some(256 * 1024)

    srv = scripted(handler)

    def body():
        for _ in range(200):
            yield b"x" * 65536

    r = client.post(srv.url + "/upload", content=body())
    assert r.status_code == 413
    assert r.text == "too big!"
    assert_usable(client, srv)
    assert srv.connections == 2


ACCEPTED = {
    "chunk_extension": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\n\r\n",
        200,
        b"hello",
    ),
    "unknown_status_code": (b"HTTP/1.1 999 Weird\r\nContent-Length: 2\r\n\r\nok", 999, b"ok"),
}


# h11 accepts these and httpx with it; httprs keeps llhttp in strict mode (no lenient
# flags, see docs/ARCHITECTURE.md "Parser strictness") and rejects them: Content-Length
# beside chunked is a request-smuggling shape, bare LF line endings are what the lenient
# CR/LF flags exist for, whitespace after a chunk size is what the lenient spaces flag
# takes (a smuggling shape where two parsers read the size differently).
STRICTER_THAN_HTTPX = {
    "content_length_and_chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    ),
    "bare_lf_line_endings": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    # RFC 9112 allows no whitespace between a chunk's size and its CRLF (h11 takes it).
    "space_after_chunk_size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"
    ),
    "tab_after_chunk_size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\t\r\nhello\r\n0\r\n\r\n"
    ),
}


@pytest.mark.httprs_only
@pytest.mark.parametrize("name", list(STRICTER_THAN_HTTPX))
def test_strict_parser_rejects_ambiguous_framing(client, scripted, name):
    data = STRICTER_THAN_HTTPX[name]

    def fault(conn, req):
        conn.send(data)

    srv = fault_server(scripted, fault)
    with pytest.raises(httprs.RemoteProtocolError):
        client.get(srv.url + "/fault")
    assert_usable(client, srv)


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_lenient_responses_accepted_like_httpx(client, scripted, name):
    data, status, body = ACCEPTED[name]

    def fault(conn, req):
        conn.send(data)

    srv = fault_server(scripted, fault, keep_serving=True)
    r = client.get(srv.url + "/quirk")
    assert r.status_code == status
    assert r.content == body
    assert_usable(client, srv)


# RFC 9112 6.3 lets a recipient take a Content-Length repeated with one value as that
# value (in a list or in other fields), and h11 does, keeping the first field in its
# normal form; repeats that differ are refused, and so is anything but digits.
REPEATED_LENGTH = {
    "list_of_one_value": (b"Content-Length: 2 ,2,  2\r\n", None),
    "list_then_field": (b"Content-Length: 2, 2\r\nContent-Length: 2\r\n", None),
    "list_disagrees": (b"Content-Length: 2, 3\r\n", "conflicting Content-Length"),
    "field_disagrees_with_list": (
        b"Content-Length: 2, 2\r\nContent-Length: 3\r\n",
        "conflicting Content-Length",
    ),
    "sign": (b"Content-Length: +2\r\n", "bad Content-Length"),
    "empty": (b"Content-Length: \r\n", "bad Content-Length"),
    "empty_list_member": (b"Content-Length: 2,\r\n", "conflicting Content-Length"),
    "too_many_digits": (b"Content-Length: " + b"9" * 21 + b"\r\n", "bad Content-Length"),
    "same_twice": (b"Content-Length: 2\r\nContent-Length: 2\r\n", None),
    "same_three_times_other_case": (
        b"content-length: 2\r\nX-A: a\r\nCONTENT-LENGTH: 2\r\nContent-Length:  2 \r\n",
        None,
    ),
    # h11 compares the values' bytes.
    "same_number_other_digits": (
        b"Content-Length: 2\r\nContent-Length: 02\r\n",
        "conflicting Content-Length",
    ),
    "disagree": (b"Content-Length: 2\r\nContent-Length: 3\r\n", "conflicting Content-Length"),
    "disagree_later": (
        b"Content-Length: 2\r\nContent-Length: 2\r\nContent-Length: 20\r\n",
        "conflicting Content-Length",
    ),
}


@pytest.mark.parametrize("case", list(REPEATED_LENGTH))
def test_repeated_content_length(client, scripted, case):
    fields, error = REPEATED_LENGTH[case]

    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\nok")

    srv = fault_server(scripted, fault, keep_serving=error is None)
    if error is not None:
        with pytest.raises(httprs.RemoteProtocolError, match=error):
            client.get(srv.url + "/fault")
    else:
        r = client.get(srv.url + "/repeat")
        assert r.content == b"ok"
        # One field: the first, its value in normal form.
        lengths = [(k, v) for k, v in r.headers.raw if k.lower() == b"content-length"]
        assert lengths == [(fields.split(b":")[0], b"2")]
        assert r.headers["content-length"] == "2"
    assert_usable(client, srv)


@pytest.mark.parametrize("value", [b"Chunked", b"CHUNKED", b"chunked"])
def test_transfer_encoding_value_kept_lower_case(client, scripted, value):
    """h11 takes "chunked" in any case and keeps the value lower-cased: so does the
    response's Transfer-Encoding header (its name keeps the server's case)."""

    def fault(conn, req):
        conn.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + value + b"\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        )

    srv = fault_server(scripted, fault, keep_serving=True)
    r = client.get(srv.url + "/te")
    assert r.content == b"ok"
    assert r.headers.raw == [(b"Transfer-Encoding", b"chunked")]
    assert_usable(client, srv)


@pytest.mark.parametrize(
    ("version", "reused"), [(b"HTTP/1.1", True), (b"HTTP/1.0", False), (b"HTTP/2.0", True)]
)
def test_status_line_version_reported_and_keep_alive_as_h11(scripted, version, reused):
    """`http_version` is what an HTTP/1 status line said (`HTTP/2.0` there too, not
    HTTP/2's "HTTP/2"), and, as in h11, the connection is kept from 1.1 up, never below."""
    versions = []

    def handler(conn):
        while conn.read_request() is not None:
            conn.send(version + b" 200 OK\r\nContent-Length: 1\r\n\r\n" + str(conn.index).encode())

    def trace(name, info):
        if name == "http11.receive_response_headers.complete":
            versions.append(info["return_value"][0])

    srv = scripted(handler)
    with httprs.Client(timeout=5) as client:
        first = client.get(srv.url + "/a", extensions={"trace": trace})
        second = client.get(srv.url + "/b")
    assert first.http_version == second.http_version == version.decode()
    assert versions == [version]
    assert (first.text, second.text) == (("0", "0") if reused else ("0", "1"))


def test_header_case_and_order_preserved(client, scripted):
    def fault(conn, req):
        conn.send(
            b"HTTP/1.1 200 OK\r\nX-MiXeD-CaSe: v\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n"
            b"content-length: 2\r\n\r\nok"
        )

    srv = fault_server(scripted, fault, keep_serving=True)
    r = client.get(srv.url + "/case")
    assert r.headers.raw == [
        (b"X-MiXeD-CaSe", b"v"),
        (b"set-cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"content-length", b"2"),
    ]
    assert list(r.headers.keys()) == ["x-mixed-case", "set-cookie", "content-length"]
    assert r.headers.get_list("Set-Cookie") == ["a=1", "b=2"]


def test_obs_fold_header_joined(client, scripted):
    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok")

    srv = fault_server(scripted, fault, keep_serving=True)
    r = client.get(srv.url + "/fold")
    assert r.headers["x-a"] == "a b"
    assert_usable(client, srv)


# Obsolete line folding (RFC 9112 5.2): a user agent replaces each fold in a response (CRLF
# and its run of SP/HTAB) with one SP, as h11 does, wherever a field value may be: a head,
# an interim head, a trailer section. httprs must do the same whatever its llhttp (9
# rejects folds, 8 kept their whitespace). A continuation line with no field before it is
# an error (h11: "continuation line at start of headers").
_CL_OK = b"Content-Length: 2\r\n\r\nok"
OBS_FOLDS = {
    "wsp_run": b"HTTP/1.1 200 OK\r\nX-A: a\r\n \t  b\r\n" + _CL_OK,
    "two_folds": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n\tc\r\nX-B: d\r\n" + _CL_OK,
    "trailing_wsp_kept": b"HTTP/1.1 200 OK\r\nX-A: a  \r\n b\r\n" + _CL_OK,
    "blank_continuations": b"HTTP/1.1 200 OK\r\nX-A: a\r\n  \r\n b\r\nX-B: c\r\n \r\n" + _CL_OK,
    "empty_value": b"HTTP/1.1 200 OK\r\nX-A:\r\n b\r\nX-B:\r\n \r\n" + _CL_OK,
    "content_length": b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok",
    "interim": b"HTTP/1.1 103 Early\r\nLink: a\r\n b\r\n\r\nHTTP/1.1 200 OK\r\n" + _CL_OK,
    "trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-T: a\r\n b\r\n\r\n"
    ),
    "body_untouched": b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nx\r\n yz",
    "after_status_line": b"HTTP/1.1 200 OK\r\n b\r\n" + _CL_OK,
    "after_interim_status_line": b"HTTP/1.1 103 Early\r\n b\r\n\r\nHTTP/1.1 200 OK\r\n" + _CL_OK,
    "first_trailer_line": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n b\r\n\r\n"
    ),
}
OBS_FOLD_REFUSED = {"after_status_line", "after_interim_status_line", "first_trailer_line"}


def _fold_outcome(lib, c, url):
    try:
        r = c.get(url)
    except lib.RemoteProtocolError:
        return "RemoteProtocolError"
    return (r.status_code, r.headers.raw, r.content)


def test_obs_folds_as_httpx(client, scripted):
    import httpx

    def fault(conn, req):
        conn.send(OBS_FOLDS[req.target.rsplit("/", 1)[1]])

    srv = fault_server(scripted, fault, keep_serving=True)
    with httpx.Client(timeout=5.0) as hx:
        for name in OBS_FOLDS:
            expected = _fold_outcome(httpx, hx, f"{srv.url}/fold/{name}")
            assert (expected == "RemoteProtocolError") == (name in OBS_FOLD_REFUSED), name
            assert _fold_outcome(httprs, client, f"{srv.url}/fold/{name}") == expected, name
    assert_usable(client, srv)


def test_short_body_server_keeps_socket_open_read_timeout(scripted):
    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\nonly twelve!")
        conn.hold()

    srv = fault_server(scripted, fault)
    with httprs.Client(timeout=httprs.Timeout(5, read=0.3)) as c:
        with pytest.raises(httprs.ReadTimeout):
            c.get(srv.url + "/short")
        assert_usable(c, srv)


def test_large_header_under_100kb_accepted(client, scripted):
    big = b"v" * (90 * 1024)

    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + big + b"\r\nContent-Length: 2\r\n\r\nok")

    srv = fault_server(scripted, fault, keep_serving=True)
    r = client.get(srv.url + "/big-header")
    assert r.headers["x-big"] == big.decode()
    assert r.text == "ok"
    assert_usable(client, srv)


# -- Content-Length: a header cannot make the client allocate the body up front -------


def _declared_then_close(length: int, sent: bytes):
    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/good":
                conn.respond(b"good")
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (length, sent))
            return

    return handler


def test_huge_content_length_is_remote_protocol_error(client, scripted):
    srv = scripted(_declared_then_close(10**19, b"0123456789"))
    with pytest.raises(httprs.RemoteProtocolError) as info:
        client.get(srv.url + "/huge")
    assert "received 10 bytes" in str(info.value)
    assert_usable(client, srv)


@pytest.mark.anyio
async def test_huge_content_length_is_remote_protocol_error_async(scripted, anyio_backend):
    srv = scripted(_declared_then_close(10**19, b"0123456789"))
    async with httprs.AsyncClient(timeout=5.0) as c:
        with pytest.raises(httprs.RemoteProtocolError):
            await c.get(srv.url + "/huge")
        assert (await c.get(srv.url + "/good")).text == "good"


def _peak_allocation(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_large_content_length_is_not_preallocated(client, scripted):
    srv = scripted(_declared_then_close(1 << 30, b"0123456789"))

    def fetch():
        with pytest.raises(httprs.RemoteProtocolError):
            client.get(srv.url + "/big")

    # A 1 GiB declaration with 10 bytes sent: the read buffer stays small.
    assert _peak_allocation(fetch) < 32 * 1024 * 1024
    assert_usable(client, srv)


@pytest.mark.anyio
async def test_large_content_length_is_not_preallocated_async(scripted, anyio_backend):
    import tracemalloc

    srv = scripted(_declared_then_close(1 << 30, b"0123456789"))
    async with httprs.AsyncClient(timeout=5.0) as c:
        tracemalloc.start()
        try:
            with pytest.raises(httprs.RemoteProtocolError):
                await c.get(srv.url + "/big")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 32 * 1024 * 1024
        assert (await c.get(srv.url + "/good")).text == "good"


def _pattern(n: int) -> bytes:
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


def _large_body(size: int, slow: bool):
    body = _pattern(size)

    def handler(conn):
        while conn.read_request() is not None:
            conn.sock.settimeout(10)  # the client may pause reading for a while
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            if not slow:
                # All at once: the body can end while the first buffer is full.
                sent = conn.send(body)
            else:
                for i in range(0, size, 1 << 20):
                    sent = conn.send(body[i : i + (1 << 20)])
                    if not sent:
                        break
                    time.sleep(0.001)
            conn.sock.settimeout(0.05)
            if not sent:
                return

    return handler, body


# 21 MiB: one regrowth of the 16 MiB first buffer; 40 MiB: the regrown buffer is past
# HUGE_SINK (32 MiB) and asks for transparent huge pages.
_LARGE_SIZES = pytest.mark.parametrize(
    "size", [21 * 1024 * 1024 + 7, 40 * 1024 * 1024 + 7], ids=["21MiB", "40MiB"]
)


@_LARGE_SIZES
@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow"])
def test_body_larger_than_first_buffer_grows_intact(client, scripted, slow, size):
    handler, body = _large_body(size, slow)
    srv = scripted(handler)
    for _ in range(3):
        r = client.get(srv.url + "/big")
        assert len(r.content) == len(body)
        assert r.content == body
        with client.stream("GET", srv.url + "/big") as r:
            time.sleep(0.2)  # the first MiB is buffered before read()
            assert r.read() == body


@pytest.mark.anyio
@_LARGE_SIZES
@pytest.mark.parametrize("slow", [False, True], ids=["fast", "slow"])
async def test_body_larger_than_first_buffer_grows_intact_async(
    scripted, anyio_backend, slow, size
):
    import anyio

    handler, body = _large_body(size, slow)
    srv = scripted(handler)
    async with httprs.AsyncClient(timeout=5.0) as c:
        for _ in range(3):
            r = await c.get(srv.url + "/big")
            assert r.content == body
            async with c.stream("GET", srv.url + "/big") as r:
                await anyio.sleep(0.2)
                assert await r.aread() == body


# -- a response closed by someone else while it is being read -----------------------


def _slow_body(conn):
    while (req := conn.read_request()) is not None:
        if req.target == "/good":
            conn.respond(b"good")
            continue
        # The rest comes soon after the close, so a drained connection would end
        # the body "complete" for a reader that does not notice the close.
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10240\r\n\r\n" + b"x" * 4096)
        time.sleep(0.6)
        if not conn.send(b"x" * 6144):
            return


def test_response_closed_by_another_thread_mid_iteration_raises(client, scripted):
    import threading

    srv = scripted(_slow_body)
    got = 0
    with client.stream("GET", srv.url + "/slow") as r:
        closer = threading.Timer(0.3, r.close)
        closer.start()
        with pytest.raises(httprs.ReadError):
            for chunk in r.iter_raw():
                got += len(chunk)
        closer.join()
    assert got == 4096
    assert_usable(client, srv)


@pytest.mark.anyio
async def test_response_closed_by_another_task_mid_iteration_raises(scripted, anyio_backend):
    import anyio

    srv = scripted(_slow_body)
    got = 0
    async with httprs.AsyncClient(timeout=5.0) as c:
        async with c.stream("GET", srv.url + "/slow") as r:

            async def close_later():
                await anyio.sleep(0.3)
                await r.aclose()

            async with anyio.create_task_group() as tg:
                tg.start_soon(close_later)
                with pytest.raises(httprs.ReadError):
                    async for chunk in r.aiter_raw():
                        got += len(chunk)
        assert got == 4096
        assert (await c.get(srv.url + "/good")).text == "good"


# -------------------------------------- a reset already queued behind the body


def _body_then_reset_on_cue(go, sent):
    """Sends the head, waits for `go`, then part of the body and an RST at once, so the
    client finds the bytes and the reset waiting together in its socket (what a client
    that runs late sees: the fault mix's reset_mid_body at 64 async tasks)."""

    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        if go.wait(5):
            conn.send(b"a" * 1000)
            conn.reset()
        sent.set()

    return handler


def _wait_for_reset(sent):
    assert sent.wait(5)
    time.sleep(0.1)  # the RST is in the client's socket by now (loopback)


@pytest.mark.parametrize("lib", ["httprs", "httpx"])
def test_reset_queued_behind_body_is_read_error(scripted, lib):
    """Body bytes and the RST both waiting unread: the bytes, then ReadError (the
    ECONNRESET), as httpx's plain recv() reports it; not the EOF that libuv infers from
    POLLHUP after a short read (RemoteProtocolError)."""
    import importlib

    mod = importlib.import_module(lib)
    go, sent = threading.Event(), threading.Event()
    srv = scripted(_body_then_reset_on_cue(go, sent))
    got = 0
    with mod.Client(timeout=5.0) as c:
        with c.stream("GET", srv.url + "/fault") as r:
            go.set()
            _wait_for_reset(sent)
            with pytest.raises(mod.ReadError):
                for chunk in r.iter_raw():
                    got += len(chunk)
    assert got == 1000


@pytest.mark.anyio
@pytest.mark.parametrize("lib", ["httprs", "httpx"])
async def test_reset_queued_behind_body_is_read_error_async(scripted, anyio_backend, lib):
    import importlib

    mod = importlib.import_module(lib)
    go, sent = threading.Event(), threading.Event()
    srv = scripted(_body_then_reset_on_cue(go, sent))
    got = 0
    async with mod.AsyncClient(timeout=5.0) as c:
        async with c.stream("GET", srv.url + "/fault") as r:
            go.set()
            _wait_for_reset(sent)  # blocks the event loop: nothing reads meanwhile
            with pytest.raises(mod.ReadError):
                async for chunk in r.aiter_raw():
                    got += len(chunk)
    assert got == 1000


# ------------------------------------------- no silent resend, stale keep-alive


def answer_first_drop_second(conn):
    """Keep-alive for a connection's first request; reads the second one whole (the
    server may have acted on it) and closes without a response byte."""
    if conn.read_request() is None:
        return
    conn.respond(b"first")
    conn.read_request()


def test_post_on_dropped_keepalive_is_not_resent(scripted):
    """A server that read a POST on a reused connection and closed it may have acted on
    it: the POST is never sent again, and the caller gets httpx's error."""
    srv = scripted(answer_first_drop_second)
    with httprs.Client(timeout=5) as client:
        assert client.get(srv.url + "/warm").text == "first"
        with pytest.raises(httprs.RemoteProtocolError) as info:
            client.post(srv.url + "/charge", content=b"amount=1")
        assert str(info.value) == "Server disconnected without sending a response."
        assert client.get(srv.url + "/after").text == "first"
    assert [r.method for r in srv.requests].count("POST") == 1


@pytest.mark.anyio
async def test_post_on_dropped_keepalive_is_not_resent_async(scripted):
    srv = scripted(answer_first_drop_second)
    async with httprs.AsyncClient(timeout=5) as client:
        assert (await client.get(srv.url + "/warm")).text == "first"
        with pytest.raises(httprs.RemoteProtocolError) as info:
            await client.post(srv.url + "/charge", content=b"amount=1")
        assert str(info.value) == "Server disconnected without sending a response."
        assert (await client.get(srv.url + "/after")).text == "first"
    assert [r.method for r in srv.requests].count("POST") == 1


@pytest.mark.httprs_only
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_request_on_dropped_keepalive_is_retried(scripted, method):
    """The stale keep-alive race, for a request that may be sent twice: retried once on
    a fresh connection (httpx raises here, its issue #2983)."""
    srv = scripted(answer_first_drop_second)
    with httprs.Client(timeout=5) as client:
        assert client.get(srv.url + "/warm").text == "first"
        assert client.request(method, srv.url + "/again", content=b"x").text == "first"
    assert [r.target for r in srv.requests] == ["/warm", "/again", "/again"]
    assert srv.connections == 2


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_idempotent_request_on_dropped_keepalive_is_retried_async(scripted):
    srv = scripted(answer_first_drop_second)
    async with httprs.AsyncClient(timeout=5) as client:
        assert (await client.get(srv.url + "/warm")).text == "first"
        assert (await client.get(srv.url + "/again")).text == "first"
    assert [r.target for r in srv.requests] == ["/warm", "/again", "/again"]
    assert srv.connections == 2


def _dropping_after_first(seen: list):
    """Every connection answers its first request and drops the next one unanswered
    (a server that closed all its kept-alive connections); records (connection, target)."""

    def handler(conn):
        if (req := conn.read_request()) is None:
            return
        seen.append((conn.index, req.target))
        conn.respond(b"first")
        if (req := conn.read_request()) is not None:
            seen.append((conn.index, req.target))

    return handler


def _warm_idle_connections(client, url, n):
    """n connections left idle in the pool (n streamed responses open at once)."""
    with contextlib.ExitStack() as stack:
        responses = [stack.enter_context(client.stream("GET", url)) for _ in range(n)]
        assert [r.read() for r in responses] == [b"first"] * n


async def _warm_idle_connections_async(client, url, n):
    async with contextlib.AsyncExitStack() as stack:
        responses = [await stack.enter_async_context(client.stream("GET", url)) for _ in range(n)]
        assert [await r.aread() for r in responses] == [b"first"] * n


@pytest.mark.httprs_only
@pytest.mark.parametrize("idle", [2, 3])
def test_a_resend_after_a_dropped_keepalive_goes_out_once_on_a_new_connection(scripted, idle):
    """With several kept-alive connections all dropped by the server, the one resend
    of a GET goes out on a new connection, never on another idle one that may be as
    stale: the server sees the GET twice at most (it saw it three times, on reused
    connections only, and the request failed)."""
    seen = []
    srv = scripted(_dropping_after_first(seen))
    with httprs.Client(timeout=5) as client:
        _warm_idle_connections(client, srv.url + "/warm", idle)
        assert client.get(srv.url + "/target").text == "first"
    targets = [(i, t) for i, t in seen if t == "/target"]
    assert len(targets) == 2
    assert targets[0][0] < idle <= targets[1][0]  # a reused connection, then a new one


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_a_resend_after_a_dropped_keepalive_goes_out_once_on_a_new_connection_async(
    scripted,
):
    seen = []
    srv = scripted(_dropping_after_first(seen))
    async with httprs.AsyncClient(timeout=5) as client:
        await _warm_idle_connections_async(client, srv.url + "/warm", 3)
        assert (await client.get(srv.url + "/target")).text == "first"
    targets = [(i, t) for i, t in seen if t == "/target"]
    assert len(targets) == 2
    assert targets[0][0] < 3 <= targets[1][0]


@pytest.mark.parametrize("retries", [0, 1])
def test_a_resend_that_cannot_connect_reports_the_first_attempts_error(scripted, retries):
    """The server took the GET on its kept-alive connection, dropped it and stopped
    listening: the resend cannot connect. The caller gets what ended the first attempt,
    as from httpx (which does not resend), not a ConnectError, which reads as "never
    sent" (retry policies resend on it, POSTs included)."""
    srv = scripted(answer_first_drop_second)
    transport = httprs.HTTPTransport(retries=retries)
    with httprs.Client(transport=transport, timeout=5) as client:
        assert client.get(srv.url + "/warm").text == "first"
        srv.sock.close()  # no new connection from here on, once the accept loop's
        time.sleep(0.3)  # poll has let go of the listener (else the connect is reset)
        with pytest.raises(httprs.RemoteProtocolError) as info:
            client.get(srv.url + "/again")
        assert str(info.value) == "Server disconnected without sending a response."
    assert [r.target for r in srv.requests] == ["/warm", "/again"]


@pytest.mark.httprs_only
def test_a_resend_needing_a_new_connection_at_the_limit_closes_an_idle_one(scripted):
    """max_connections reached by idle connections of the same origin: the resend closes
    one of them to open its own, rather than waiting for the pool timeout."""
    seen = []
    srv = scripted(_dropping_after_first(seen))
    limits = httprs.Limits(max_connections=2, max_keepalive_connections=2)
    with httprs.Client(timeout=httprs.Timeout(5, pool=1), limits=limits) as client:
        _warm_idle_connections(client, srv.url + "/warm", 2)
        assert client.get(srv.url + "/target").text == "first"
    targets = [(i, t) for i, t in seen if t == "/target"]
    assert len(targets) == 2
    assert targets[0][0] < 2 <= targets[1][0]


# ------------------------------------------------------ 101 Switching Protocols

SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
BARE_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\n\r\n"


def switch_on_second(reply: bytes, eof: list):
    """Answers /first normally, then `reply` to the next request; records whether the
    client closed the connection afterwards."""

    def handler(conn):
        n = 0
        while (req := conn.read_request()) is not None:
            n += 1
            if req.target == "/switch":
                conn.send(reply)
                eof.append(conn.wait_eof(5))
                return
            conn.respond(f"{conn.index}:{n}".encode())

    return handler


@pytest.mark.parametrize("reply", [SWITCH, BARE_SWITCH], ids=["upgrade-headers", "bare"])
def test_unsolicited_101_is_protocol_error(scripted, reply):
    eof = []
    srv = scripted(switch_on_second(reply, eof))
    with httprs.Client(timeout=5) as client:
        assert client.get(srv.url + "/first").text == "0:1"
        with pytest.raises(httprs.RemoteProtocolError):
            client.get(srv.url + "/switch")
        # that connection is gone: the next request opens another one
        assert client.get(srv.url + "/next").text == "1:1"
    srv.close()  # joins the handler
    assert eof == [True]


@pytest.mark.anyio
@pytest.mark.parametrize("reply", [SWITCH, BARE_SWITCH], ids=["upgrade-headers", "bare"])
async def test_unsolicited_101_is_protocol_error_async(scripted, reply):
    eof = []
    srv = scripted(switch_on_second(reply, eof))
    async with httprs.AsyncClient(timeout=5) as client:
        assert (await client.get(srv.url + "/first")).text == "0:1"
        with pytest.raises(httprs.RemoteProtocolError):
            await client.get(srv.url + "/switch")
        assert (await client.get(srv.url + "/next")).text == "1:1"
    srv.close()  # joins the handler
    assert eof == [True]


UPGRADE_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade"}


@pytest.mark.parametrize("reply", [SWITCH, BARE_SWITCH], ids=["upgrade-headers", "bare"])
def test_requested_upgrade_returns_101_and_detaches_connection(scripted, reply):
    """The 101 is the response; its connection never goes back to the pool and is
    closed with the response (a raw stream over it is the WebSocket work's)."""
    eof = []
    srv = scripted(switch_on_second(reply + b"\x81\x05hello", eof))
    with httprs.Client(timeout=5) as client:
        assert client.get(srv.url + "/first").text == "0:1"
        with client.stream("GET", srv.url + "/switch", headers=UPGRADE_HEADERS) as r:
            assert r.status_code == 101
            assert r.read() == b""
        assert client.get(srv.url + "/next").text == "1:1"
    srv.close()  # joins the handler
    assert eof == [True]


@pytest.mark.anyio
@pytest.mark.parametrize("reply", [SWITCH, BARE_SWITCH], ids=["upgrade-headers", "bare"])
async def test_requested_upgrade_returns_101_and_detaches_connection_async(scripted, reply):
    eof = []
    srv = scripted(switch_on_second(reply + b"\x81\x05hello", eof))
    async with httprs.AsyncClient(timeout=5) as client:
        assert (await client.get(srv.url + "/first")).text == "0:1"
        async with client.stream("GET", srv.url + "/switch", headers=UPGRADE_HEADERS) as r:
            assert r.status_code == 101
            assert await r.aread() == b""
        assert (await client.get(srv.url + "/next")).text == "1:1"
    srv.close()  # joins the handler
    assert eof == [True]


# ------------------------------------------- catalog rows (docs/reliability.md)


def close_after_reading(conn):
    conn.read_request()


def test_empty_reply_on_fresh_connection_is_not_retried(scripted):
    """F04: a fresh connection that closes without a byte is not retried, GET or not."""
    srv = scripted(close_after_reading)
    with httprs.Client(timeout=5) as c:
        with pytest.raises(httprs.RemoteProtocolError) as info:
            c.get(srv.url + "/once")
        assert str(info.value) == "Server disconnected without sending a response."
        assert c._transport._pool_stats()["connections"] == 0
    assert srv.connections == 1
    assert [r.target for r in srv.requests] == ["/once"]


@pytest.mark.anyio
async def test_empty_reply_on_fresh_connection_is_not_retried_async(scripted, anyio_backend):
    srv = scripted(close_after_reading)
    async with httprs.AsyncClient(timeout=5) as c:
        with pytest.raises(httprs.RemoteProtocolError):
            await c.get(srv.url + "/once")
        assert c._transport._pool_stats()["connections"] == 0
    assert srv.connections == 1


def abort_upload_after_1mb(conn):
    req = conn.read_request(body=False)
    if req is None:
        return
    if req.target == "/good":
        conn.send(GOOD)
        return
    conn.read_some(1 << 20)  # then close with the rest of the upload unread: a reset


def _ten_mb():
    for _ in range(160):
        yield b"x" * 65536


def test_upload_aborted_without_response(client, scripted):
    """F10: the server stops reading the upload and closes: a read-side error (the
    connection is gone before any response), never WriteError, never a hang."""
    srv = scripted(abort_upload_after_1mb)
    t0 = time.monotonic()
    with pytest.raises((httprs.RemoteProtocolError, httprs.ReadError)):
        client.post(srv.url + "/upload", content=_ten_mb())
    assert time.monotonic() - t0 < 4
    assert client._transport._pool_stats()["connections"] == 0
    assert_usable(client, srv)


@pytest.mark.anyio
async def test_upload_aborted_without_response_async(scripted, anyio_backend):
    srv = scripted(abort_upload_after_1mb)

    async def body():
        for chunk in _ten_mb():
            yield chunk

    async with httprs.AsyncClient(timeout=5) as c:
        with pytest.raises((httprs.RemoteProtocolError, httprs.ReadError)):
            await c.post(srv.url + "/upload", content=body())
        assert (await c.get(srv.url + "/good")).text == "good"


def answer_413_never_read(conn):
    req = conn.read_request(body=False)
    if req is None:
        return
    if req.target == "/good":
        conn.send(GOOD)
        return
    conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
    conn.hold_no_read(5)


def test_early_413_while_server_never_reads(scripted):
    """F11: a 100 MB upload the server never reads, after it answered 413: no deadlock;
    the 413 is returned (the core reads while it writes) and the connection is dropped."""
    srv = scripted(answer_413_never_read, rcvbuf=4096)
    with httprs.Client(timeout=httprs.Timeout(5, write=1.0)) as c:
        t0 = time.monotonic()
        try:
            r = c.post(srv.url + "/upload", content=b"x" * (100 << 20))
        except httprs.WriteTimeout:
            r = None
        assert time.monotonic() - t0 < 4
        if r is not None:
            assert (r.status_code, r.text) == (413, "too big!")
        assert c._transport._pool_stats()["connections"] == 0
        assert_usable(c, srv)
    assert srv.connections == 2


@pytest.mark.anyio
async def test_early_413_while_server_never_reads_async(scripted, anyio_backend):
    srv = scripted(answer_413_never_read, rcvbuf=4096)
    async with httprs.AsyncClient(timeout=httprs.Timeout(5, write=1.0)) as c:
        try:
            r = await c.post(srv.url + "/upload", content=b"x" * (100 << 20))
        except httprs.WriteTimeout:
            r = None
        if r is not None:
            assert (r.status_code, r.text) == (413, "too big!")
        assert c._transport._pool_stats()["connections"] == 0
        assert (await c.get(srv.url + "/good")).text == "good"


def no_content_with_stray_body(conn):
    while (req := conn.read_request()) is not None:
        if req.target == "/204":
            conn.send(b"HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\nHey!")
        else:
            conn.send(GOOD)


def test_204_with_declared_stray_body_is_not_read_as_next_response(client, scripted):
    """F30 (httpx #1474): `204` + `Content-Length: 4` + `Hey!`: the 204 has no body, and
    `Hey!` never becomes the start of the next response: the connection is not reused."""
    srv = scripted(no_content_with_stray_body)
    r = client.get(srv.url + "/204")
    assert (r.status_code, r.content) == (204, b"")
    assert_usable(client, srv)
    assert srv.connections == 2


@pytest.mark.anyio
async def test_204_with_declared_stray_body_is_not_read_as_next_response_async(
    scripted, anyio_backend
):
    srv = scripted(no_content_with_stray_body)
    async with httprs.AsyncClient(timeout=5) as c:
        r = await c.get(srv.url + "/204")
        assert (r.status_code, r.content) == (204, b"")
        assert (await c.get(srv.url + "/good")).text == "good"
    assert srv.connections == 2


def _rss() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_interim_response_flood_is_bounded(scripted):
    """F32: 100,000 `103 Early Hints` and then silence: each is discarded as it is parsed
    (memory stays flat) and the request ends with ReadTimeout, like httpx."""
    hint = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"

    def fault(conn, req):
        # The scripted server's sockets time out after 0.05 s; a send waiting longer for
        # the client to read (a slow machine, a sanitizer build) would end the flood
        # early with a close, which is not what this test is about.
        conn.sock.settimeout(10)
        for _ in range(100):
            if not conn.send(hint * 1000):
                return
        conn.sock.settimeout(0.05)
        conn.hold(5)

    srv = fault_server(scripted, fault)
    with httprs.Client(timeout=httprs.Timeout(5, read=0.5)) as c:
        before = _rss()
        with pytest.raises(httprs.ReadTimeout):
            c.get(srv.url + "/flood")
        assert _rss() - before < 32 * 1024 * 1024  # 5.5 MB of hints were sent
        assert_usable(c, srv)


def test_oversize_trailer_block_is_remote_protocol_error(client, scripted):
    """F34: a 1 MB trailer block hits the header-size bound (small trailers are accepted
    and the connection reused: test_chunked_trailers_then_reuse)."""

    def fault(conn, req):
        conn.send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
            + b"X-T: "
            + b"a" * (1 << 20)
            + b"\r\n\r\n"
        )
        conn.hold(3)

    srv = fault_server(scripted, fault)
    t0 = time.monotonic()
    with pytest.raises(httprs.RemoteProtocolError):
        client.get(srv.url + "/trailers")
    assert time.monotonic() - t0 < 2
    assert_usable(client, srv)


@pytest.mark.parametrize(
    "count,accepted", [(10_000, True), (30_000, False)], ids=["10k_headers", "30k_headers"]
)
def test_header_count_bounded_by_the_header_bytes(client, scripted, count, accepted):
    """P11: there is no separate header-count cap: the 100 KB header-block bound limits
    the count (10,000 tiny headers fit, 30,000 do not)."""

    def fault(conn, req):
        heads = b"".join(b"X-%d: a\r\n" % i for i in range(count))
        conn.send(b"HTTP/1.1 200 OK\r\n" + heads + b"Content-Length: 2\r\n\r\nok")
        conn.hold(3)

    srv = fault_server(scripted, fault)
    if accepted:
        r = client.get(srv.url + "/many")
        assert len(r.headers) == count + 1
    else:
        with pytest.raises(httprs.RemoteProtocolError):
            client.get(srv.url + "/many")
    assert_usable(client, srv)


STATUS_LINES = {
    "http_0_5": (b"HTTP/0.5 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
    "reason_1mb": (b"HTTP/1.1 200 " + b"O" * (1 << 20) + b"\r\nContent-Length: 2\r\n\r\nok", None),
    "no_reason": (b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", b"ok"),
    # Empty lines before the status line: h11 refuses them (llhttp would skip them).
    "crlf_before_status_line": (b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
    "lf_before_status_line": (b"\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
}


@pytest.mark.parametrize("name", list(STATUS_LINES))
def test_status_line_variants(client, scripted, name):
    """P13: a bad version, a 1 MB reason and empty lines before the status line are
    RemoteProtocolError, as in httpx; no reason is fine (`HTTP/1.1 2000` and `20` are in
    FAULTS/MALFORMED above)."""
    data, body = STATUS_LINES[name]

    def fault(conn, req):
        conn.send(data)
        conn.hold(3)

    srv = fault_server(scripted, fault)
    if body is None:
        with pytest.raises(httprs.RemoteProtocolError):
            client.get(srv.url + "/status")
    else:
        r = client.get(srv.url + "/status")
        assert (r.status_code, r.reason_phrase, r.content) == (200, "", body)
    assert_usable(client, srv)


# Control bytes in the reason phrase: h11 refuses NUL, VT and FF there ("illegal status
# line") and takes the others; strict llhttp takes all of them, so httprs checks.
REASON_CTLS = {"nul": b"\x00", "vt": b"\x0b", "ff": b"\x0c", "soh": b"\x01", "del": b"\x7f"}
REASON_REFUSED = {"nul", "vt", "ff"}


def _reason_ctl_server(scripted, name):
    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 O" + REASON_CTLS[name] + b"K\r\nContent-Length: 2\r\n\r\nok")
        conn.hold(3)

    return fault_server(scripted, fault)


@pytest.mark.parametrize("name", list(REASON_CTLS))
def test_reason_phrase_control_bytes_as_httpx(client, scripted, name):
    """P13: a NUL, VT or FF in the reason phrase is RemoteProtocolError (httpx too); other
    control bytes pass through into reason_phrase, as in httpx."""
    import httpx

    srv = _reason_ctl_server(scripted, name)
    for lib, c in ((httpx, httpx.Client(timeout=5.0)), (httprs, client)):
        if name in REASON_REFUSED:
            with pytest.raises(lib.RemoteProtocolError) as info:
                c.get(srv.url + "/reason")
            assert "illegal status line" in str(info.value), lib.__name__
        else:
            r = c.get(srv.url + "/reason")
            expected = "O" + REASON_CTLS[name].decode() + "K"
            assert (r.reason_phrase, r.content) == (expected, b"ok"), lib.__name__
        if lib is httpx:
            c.close()
    assert_usable(client, srv)


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(REASON_CTLS))
async def test_reason_phrase_control_bytes_as_httpx_async(scripted, anyio_backend, name):
    srv = _reason_ctl_server(scripted, name)
    async with httprs.AsyncClient(timeout=5.0) as c:
        if name in REASON_REFUSED:
            with pytest.raises(httprs.RemoteProtocolError, match="illegal status line"):
                await c.get(srv.url + "/reason")
        else:
            r = await c.get(srv.url + "/reason")
            assert r.reason_phrase == "O" + REASON_CTLS[name].decode() + "K"
        assert (await c.get(srv.url + "/good")).text == "good"


# A response's Transfer-Encoding other than one "chunked" field: h11's words, field by field.
RESPONSE_TE = {
    "gzip-chunked": (
        b"Transfer-Encoding: gzip, chunked\r\n",
        "Only Transfer-Encoding: chunked is supported",
    ),
    "identity": (
        b"Transfer-Encoding: identity\r\n",
        "Only Transfer-Encoding: chunked is supported",
    ),
    "twice": (
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "multiple Transfer-Encoding headers",
    ),
    "gzip-then-chunked": (
        b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
        "Only Transfer-Encoding: chunked is supported",
    ),
}


@pytest.mark.parametrize("name", list(RESPONSE_TE))
def test_response_transfer_encoding_errors_as_httpx(client, scripted, name):
    fields, message = RESPONSE_TE[name]

    def fault(conn, req):
        conn.send(b"HTTP/1.1 200 OK\r\n" + fields + b"\r\n" + chunked(b"hello"))

    srv = fault_server(scripted, fault)
    with httpx.Client(timeout=5.0) as reference:
        with pytest.raises(httpx.RemoteProtocolError) as info:
            reference.get(srv.url + "/te")
        assert str(info.value) == message
    with pytest.raises(httprs.RemoteProtocolError) as info:
        client.get(srv.url + "/te")
    assert str(info.value) == message
    assert_usable(client, srv)


# Control bytes in a response header value. h11 refuses NUL, VT and FF there and takes
# the others; strict llhttp also refuses the bytes in HEADER_VALUE_STRICTER (a documented
# difference, docs/compatibility.md "Response header values"): httprs is never less strict.
HEADER_VALUE_CTLS = [b for b in [*range(0x20), 0x7F] if b not in (0x0A, 0x0D)]
HEADER_VALUE_STRICTER = {*range(0x01, 0x09), 0x0E, 0x0F, *range(0x10, 0x20), 0x7F}


def _header_ctl_server(scripted):
    def fault(conn, req):
        byte = bytes([int(req.target.rsplit("/", 1)[1], 16)])
        conn.send(b"HTTP/1.1 200 OK\r\nX-A: a" + byte + b"b\r\nContent-Length: 2\r\n\r\nok")

    return fault_server(scripted, fault, keep_serving=True)


def test_header_value_control_bytes_never_less_strict_than_httpx(client, scripted):
    import httpx

    srv = _header_ctl_server(scripted)
    refused = {"httpx": set(), "httprs": set()}
    with httpx.Client(timeout=5.0) as hx:
        for lib, c in (("httpx", hx), ("httprs", client)):
            for b in HEADER_VALUE_CTLS:
                try:
                    r = c.get(srv.url + f"/h/{b:02x}")
                except (httpx.RemoteProtocolError, httprs.RemoteProtocolError):
                    refused[lib].add(b)
                else:
                    assert r.headers["x-a"] == "a" + chr(b) + "b", (lib, b)
    assert refused["httpx"] == {0x00, 0x0B, 0x0C}
    assert refused["httprs"] == refused["httpx"] | HEADER_VALUE_STRICTER
    assert_usable(client, srv)


@pytest.mark.anyio
async def test_header_value_control_bytes_refused_async(scripted, anyio_backend):
    srv = _header_ctl_server(scripted)
    async with httprs.AsyncClient(timeout=5.0) as c:
        for b in HEADER_VALUE_CTLS:
            if b in HEADER_VALUE_STRICTER or b in (0x00, 0x0B, 0x0C):
                with pytest.raises(httprs.RemoteProtocolError):
                    await c.get(srv.url + f"/h/{b:02x}")
            else:
                r = await c.get(srv.url + f"/h/{b:02x}")
                assert r.headers["x-a"] == "a" + chr(b) + "b"
        assert (await c.get(srv.url + "/good")).text == "good"


SPLIT_CORPUS = {
    "content_length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "chunked_trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-T: 1\r\n\r\n"
    ),
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "obs_fold_wsp_run": b"HTTP/1.1 200 OK\r\nX-A: a\r\n \t b\r\n  \r\nContent-Length: 2\r\n\r\nok",
    "obs_fold_trailers": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: a\r\n b\r\n\r\n"
    ),
    "interim_then_final": b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" + GOOD,
}


def _outcome_of(client, url):
    try:
        r = client.get(url)
        return (r.status_code, r.content, sorted(r.headers.items()))
    except httprs.HTTPError as e:
        return type(e).__name__


def test_response_split_at_every_byte_gives_the_same_outcome(client, scripted):
    """P14 (h11's byte-at-a-time runs): every fixture (good and malformed) gives the
    same response or the same error whether it arrives whole or one byte per segment."""
    from servers.faults import MALFORMED

    corpus = dict(SPLIT_CORPUS)
    corpus.update({f"malformed_{k}": v for k, v in MALFORMED.items()})

    def handler(conn):
        while (req := conn.read_request()) is not None:
            mode, _, name = req.target.strip("/").partition("/")
            data = corpus[name]
            if mode == "whole":
                conn.send(data)
            else:
                for i in range(len(data)):
                    conn.send(data[i : i + 1])
                    time.sleep(0.0005)
            conn.shutdown_write()
            return

    srv = scripted(handler)
    for name in corpus:
        whole = _outcome_of(client, f"{srv.url}/whole/{name}")
        split = _outcome_of(client, f"{srv.url}/split/{name}")
        assert whole == split, name

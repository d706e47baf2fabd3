"""Scripted server faults shared by the sync and async fault tests.

``fault_server(scripted, fault)`` answers ``/good`` properly (keep-alive) and runs
``fault(conn, req)`` for any other path. ``FAULTS`` lists (fault, httpx exception class
name, message fragment or None).
"""

from __future__ import annotations

import time

GOOD = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"


def fault_server(scripted, fault, *, keep_serving: bool = False):
    """``keep_serving``: after the fault, keep answering on the same connection instead of
    closing it (for responses the client accepts and may reuse the connection after)."""

    def handler(conn):
        while (req := conn.read_request()) is not None:
            if req.target == "/good":
                if not conn.send(GOOD):
                    return
                continue
            fault(conn, req)
            if not keep_serving:
                return

    return scripted(handler)


def truncated_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n0123456789")


def reset_mid_body(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000)
    time.sleep(0.05)
    conn.reset()


def close_after_headers(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")


def close_before_response(conn, req):
    pass


def garbage_status_line(conn, req):
    conn.send(b"Wait, this isn't valid HTTP!\r\n\r\n")


def bad_status_code(conn, req):
    conn.send(b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")


def nul_in_header_value(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 2\r\n\r\nok")


def space_in_header_name(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nX Bad: ab\r\nContent-Length: 2\r\n\r\nok")


def header_flood(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    conn.hold(3)


def bad_chunk_size(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")


def truncated_chunked(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")


def conflicting_content_length(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")


def negative_content_length(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello")


def bad_transfer_encoding(conn, req):
    conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello")


def reset_before_response(conn, req):
    conn.reset()


def _raw(name: str, data: bytes):
    def fault(conn, req):
        conn.send(data)

    fault.__name__ = name
    return fault


# Malformed responses that httpx (h11 0.16) rejects with RemoteProtocolError.
MALFORMED = {
    "chunk_footer_not_crlf": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"
    ),
    "status_code_two_digits": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    "http2_status_line": b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "bare_cr_in_header": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "leading_space_first_header": b"HTTP/1.1 200 OK\r\n X-A: a\r\nContent-Length: 2\r\n\r\nok",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "content_length_plus": b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok",
    "content_length_hex": b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok",
    "content_length_two_numbers": b"HTTP/1.1 200 OK\r\nContent-Length: 2 2\r\n\r\nok",
    "content_length_empty": b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok",
    "content_length_list": b"HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok",
    "transfer_encoding_chunked_gzip": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nok"
    ),
    "transfer_encoding_twice": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    ),
    "chunk_size_negative": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"
    ),
    # A field name is a token: at least one character (RFC 9110 5.1).
    "empty_header_name": b"HTTP/1.1 200 OK\r\n: injected\r\nContent-Length: 2\r\n\r\nok",
    "empty_header_name_no_value": b"HTTP/1.1 200 OK\r\n:\r\nContent-Length: 2\r\n\r\nok",
    "chunk_size_overflow": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"fffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    ),
}

FAULTS = [
    (truncated_body, "RemoteProtocolError", "body (received 10 bytes, expected 13)"),
    (reset_mid_body, "ReadError", None),
    (close_after_headers, "RemoteProtocolError", "body (received 0 bytes, expected 10)"),
    (
        close_before_response,
        "RemoteProtocolError",
        "Server disconnected without sending a response.",
    ),
    (garbage_status_line, "RemoteProtocolError", None),
    (bad_status_code, "RemoteProtocolError", None),
    (nul_in_header_value, "RemoteProtocolError", None),
    (space_in_header_name, "RemoteProtocolError", None),
    (header_flood, "RemoteProtocolError", None),
    (bad_chunk_size, "RemoteProtocolError", None),
    (truncated_chunked, "RemoteProtocolError", "body (incomplete chunked read)"),
    (conflicting_content_length, "RemoteProtocolError", None),
    (negative_content_length, "RemoteProtocolError", None),
    (bad_transfer_encoding, "RemoteProtocolError", None),
] + [(_raw(name, data), "RemoteProtocolError", None) for name, data in MALFORMED.items()]

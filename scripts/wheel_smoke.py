"""Smoke test of an installed httprs wheel (scripts/wheel.sh runs it in a fresh venv,
cibuildwheel as its test-command), with trustme, brotli, zstandard and h2 installed:

    python -I scripts/wheel_smoke.py

Local HTTP and HTTPS servers on 127.0.0.1 (ephemeral ports); checks the version metadata,
sync and async requests, content decoding (gzip, br, zstd: the bundled brotli and zstd),
TLS with httprs's own OpenSSL (verify=path), with a Python `ssl.SSLContext` (the
wheel's OpenSSL is not Python's, so that context must run through Python's TLS and keep
verifying), the refusal of an unknown CA, HTTP/2 with prior knowledge (the bundled
nghttp2, against a small server written with `h2`), and the `httprs` console script.
Exits non-zero on the first failure.
"""

from __future__ import annotations

import asyncio
import gzip
import http.server
import importlib.metadata
import pathlib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

import brotli
import h2.config
import h2.connection
import h2.events
import trustme
import zstandard

import httprs
from httprs import _core

BODY = b"httprs wheel smoke test " * 100
PAYLOADS = {
    "plain": BODY,
    "gzip": gzip.compress(BODY),
    "br": brotli.compress(BODY),
    "zstd": zstandard.ZstdCompressor().compress(BODY),
}
# The console script next to this interpreter (bin/ or Scripts/).
CLI = str(pathlib.Path(sys.executable).with_name("httprs"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        encoding = self.path.strip("/") or "plain"
        body = PAYLOADS[encoding]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if encoding != "plain":
            self.send_header("Content-Encoding", encoding)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def serve(tls: ssl.SSLContext | None) -> tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_port}"


def serve_h2c() -> str:
    """One cleartext HTTP/2 connection (prior knowledge) answering every stream with BODY."""
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        sock, _ = listener.accept()
        listener.close()
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        with sock:
            while data := sock.recv(65536):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers = [(":status", "200"), ("content-length", str(len(BODY)))]
                        conn.send_headers(event.stream_id, headers)
                        conn.send_data(event.stream_id, BODY, end_stream=True)
                sock.sendall(conn.data_to_send())

    threading.Thread(target=run, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def check(label: str, condition: bool) -> None:
    print(("ok   " if condition else "FAIL ") + label, flush=True)
    if not condition:
        sys.exit(1)


def main() -> None:
    expected = BODY
    check(f"httprs {httprs.__version__} from {pathlib.Path(httprs.__file__).parent}", True)
    check(
        "__version__ is the installed distribution's version",
        httprs.__version__ == importlib.metadata.version("httprs"),
    )
    check("not imported from a source tree", "site-packages" in httprs.__file__)

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    http_server, http_url = serve(None)
    https_server, https_url = serve(server_ctx)
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = pathlib.Path(tmp, "ca.pem")
        ca.cert_pem.write_to_path(str(ca_file))

        with httprs.Client() as client:
            for encoding in ("plain", "gzip", "br", "zstd"):
                response = client.get(f"{http_url}/{encoding}")
                check(f"GET {encoding}: decoded", response.content == expected)

        async def fetch() -> bytes:
            async with httprs.AsyncClient() as client:
                return (await client.get(f"{http_url}/br")).content

        check("AsyncClient GET (asyncio)", asyncio.run(fetch()) == expected)

        with httprs.Client(http1=False, http2=True) as client:
            response = client.get(serve_h2c())
        check(
            "HTTP/2 with prior knowledge (nghttp2)",
            response.http_version == "HTTP/2" and response.content == expected,
        )

        response = httprs.get(https_url, verify=str(ca_file))
        check("https, verify=CA path (httprs's OpenSSL)", response.content == expected)

        context = ssl.create_default_context(cafile=str(ca_file))
        python_tls = _core._uses_python_tls(context)
        print(
            f"     Python's {ssl.OPENSSL_VERSION}; the SSLContext runs through "
            + ("Python's TLS (another OpenSSL)" if python_tls else "the shared SSL_CTX")
        )
        response = httprs.get(https_url, verify=context)
        check("https, verify=ssl.SSLContext", response.content == expected)
        context.load_verify_locations(cafile=str(ca_file))  # a change is still honoured
        check("https, SSLContext reused", httprs.get(https_url, verify=context).is_success)

        try:
            httprs.get(https_url, verify=ssl.create_default_context())
        except httprs.ConnectError as error:
            check(f"unknown CA refused: {error}", "CERTIFICATE_VERIFY_FAILED" in str(error))
        else:
            check("unknown CA refused", False)
        try:
            httprs.get(https_url)  # certifi's roots
        except httprs.ConnectError:
            check("unknown CA refused (default verify=True)", True)
        else:
            check("unknown CA refused (default verify=True)", False)

        out = subprocess.run(
            [CLI, f"{http_url}/plain"], capture_output=True, text=True, timeout=60
        )
        check("httprs console script", out.returncode == 0 and "HTTP/1.1 200 OK" in out.stdout)
    http_server.shutdown()
    https_server.shutdown()


if __name__ == "__main__":
    main()

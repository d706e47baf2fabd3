"""nginx's own HTTP/2 listener for the tests (Debian's nginx-light, as the benchmark uses).

Started as a child process under a temporary prefix, one worker, on 127.0.0.1 with an
ephemeral port: TLS offering h2 by ALPN with the suite's trustme certificate, and
nginx's default ``keepalive_requests 1000``, after which it closes an HTTP/2
connection with GOAWAY (the case httpx's h2 users hit as ``ConnectionTerminated``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

BODY = "Hello, world!"

_CONF = """
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    # nginx's default, stated: an HTTP/2 connection ends (GOAWAY) after 1,000 requests.
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location = /small {{
            default_type text/plain;
            return 200 "{body}";
        }}
        location = /status {{
            stub_status;
        }}
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxH2:
    def __init__(self, prefix: Path, certfile: str, keyfile: str) -> None:
        self.prefix = prefix
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        conf = _CONF.format(
            user=user, prefix=prefix, port=self.port, cert=certfile, key=keyfile, body=BODY
        )
        (prefix / "nginx.conf").write_text(conf)
        self.proc: subprocess.Popen | None = None

    def start(self) -> NginxH2:
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"), "-e",
             str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    log = self.prefix / "error.log"
                    text = log.read_text(errors="replace") if log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"nginx did not start: {text}") from None
                time.sleep(0.05)

    def accepted(self, ssl_context) -> int:
        """Connections nginx has accepted so far (stub_status; this request's included)."""
        import http.client

        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ssl_context)
        try:
            conn.request("GET", "/status")
            lines = conn.getresponse().read().decode().splitlines()
        finally:
            conn.close()
        return int(lines[2].split()[0])  # " accepts handled requests" -> accepts

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

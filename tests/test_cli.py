"""The `httprs` command line (httprs/_main.py): httpx's CLI options and output, checked
against httpx's own CLI on the same local server, plus what only httprs has."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import httprs
import httprs._main

pytestmark = pytest.mark.httprs_only


def invoke(command, args):
    return CliRunner().invoke(command, args, catch_exceptions=False)


def lines(output: str) -> list[str]:
    """Output lines without the Date header and with one User-Agent for both clients."""
    out = []
    for line in output.splitlines():
        line = line.strip()
        if line.lower().startswith("date:"):
            continue
        out.append(re.sub(r"python-http(x|rs)/[\w.+-]+", "python-<client>", line))
    return out


CASES = {
    "get": ([""], 0),
    "json": (["/json"], 0),
    "status 404": (["/status/404"], 1),
    "binary": (["/bytes/100"], 0),
    # (params as options: httpx's CLI always passes params=, which replaces a URL's query)
    "redirect not followed": (["/redirect/to", "-p", "url", "/", "-p", "status", "301"], 1),
    "redirect followed": (
        ["/redirect/to", "-p", "url", "/", "-p", "status", "301", "--follow-redirects"],
        0,
    ),
    "post json": (["/echo_body", "-m", "POST", "-j", '{"hello": "world"}'], 0),
    "content is a POST": (["/echo_body", "-c", "raw body"], 0),
    "verbose": (["", "-v"], 0),
    "auth": (["", "-v", "--auth", "username", "password"], 0),
    "params headers cookies form": (
        [
            "/echo_body",
            "-v",
            "-p",
            "a",
            "1",
            "--params",
            "b",
            "two words",
            "-h",
            "X-Test",
            "yes",
            "--cookies",
            "session",
            "abc",
            "-d",
            "field",
            "value",
        ],
        0,
    ),
    "method": (["/echo_body", "-m", "PUT", "-c", "x"], 0),
    "timeout": (["", "--timeout", "2.5"], 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_output_matches_httpx_cli(server, case):
    args, exit_code = CASES[case]
    argv = [server.url + args[0], *args[1:]]
    ours = invoke(httprs.main, argv)
    theirs = invoke(httpx.main, argv)
    assert ours.exit_code == exit_code
    assert (ours.exit_code, lines(ours.output)) == (theirs.exit_code, lines(theirs.output))


def test_get_output(server):
    result = invoke(httprs.main, [server.url + "/"])
    assert result.exit_code == 0
    assert lines(result.output) == [
        "HTTP/1.1 200 OK",
        "server: uvicorn",
        "content-type: text/plain",
        "content-length: 13",
        "",
        "Hello, world!",
    ]


def test_json_is_pretty_printed(server):
    result = invoke(httprs.main, [server.url + "/echo_body", "-j", '{"a": [1, 2]}'])
    assert result.exit_code == 0
    body = result.output.split("\n\n", 1)[1]
    assert json.loads(body) == {"a": [1, 2]}
    assert '    "a": [' in body  # indented by 4, as httpx prints it


def test_verbose_shows_request_head(server):
    result = invoke(httprs.main, [server.url + "/", "-v", "-h", "X-Test", "yes"])
    assert result.exit_code == 0
    out = lines(result.output)
    host = server.url.split("//")[1]
    assert out[:3] == [
        "* Connecting to '127.0.0.1'",
        f"* Connected to '127.0.0.1' on port {host.split(':')[1]}",
        "GET / HTTP/1.1",
    ]
    assert f"Host: {host}" in out
    assert "X-Test: yes" in out
    assert "User-Agent: python-<client>" in out


def test_verbose_names_the_address_connected_to(server):
    """As httpx's CLI: the connect line gives the peer's IP address, not the name."""
    port = server.url.rsplit(":", 1)[1].rstrip("/")
    result = invoke(httprs.main, [f"http://localhost:{port}/", "-v"])
    assert result.exit_code == 0
    out = lines(result.output)
    assert out[:2] == ["* Connecting to 'localhost'", f"* Connected to '127.0.0.1' on port {port}"]


def test_files_upload(server, tmp_path):
    upload = tmp_path / "upload.txt"
    upload.write_bytes(b"file contents\n")
    argv = [server.url + "/echo_body", "-f", "doc", str(upload), "-d", "field", "value"]
    ours = invoke(httprs.main, argv)
    theirs = invoke(httpx.main, argv)

    def same_boundary(output):
        return re.sub(r"boundary=[0-9a-f]+", "boundary=<b>", output)

    assert ours.exit_code == 0
    assert "content-type: multipart/form-data; boundary=" in ours.output
    assert lines(same_boundary(ours.output)) == lines(same_boundary(theirs.output))


def test_download(server, tmp_path):
    target = tmp_path / "out.bin"
    result = invoke(httprs.main, [server.url + "/bytes/200000", "--download", str(target)])
    assert result.exit_code == 0
    assert "Downloading" in result.output
    expected = httpx.get(server.url + "/bytes/200000").content
    assert target.read_bytes() == expected


def test_connect_error(closed_port):
    url = f"http://127.0.0.1:{closed_port}/"
    ours = invoke(httprs.main, [url])
    theirs = invoke(httpx.main, [url])
    assert ours.exit_code == theirs.exit_code == 1
    assert ours.output.startswith("ConnectError: ")
    assert ours.output.split(":")[0] == theirs.output.split(":")[0]


def test_https_verify_and_no_verify(https_server):
    """--no-verify turns verification off (httpx's own flag, declared with default=True,
    stays on under click >= 8.2: there httprs deliberately differs)."""
    refused = invoke(httprs.main, [https_server.url])
    assert refused.exit_code == 1
    assert refused.output.startswith("ConnectError: ")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.output
    result = invoke(httprs.main, [https_server.url, "--no-verify", "-v"])
    assert result.exit_code == 0
    out = lines(result.output)
    assert any(line.startswith("* SSL established using 'TLSv1") for line in out), out
    assert "* Server certificate:" not in out  # unverified: getpeercert() is {}
    assert "HTTP/1.1 200 OK" in out


@pytest.mark.parametrize(
    ("argv", "expected"), [([], True), (["--verify"], True), (["--no-verify"], False)]
)
def test_verify_is_an_on_off_pair_as_in_httpx2(argv, expected):
    """httpx2's CLI declares `--verify/--no-verify` (default on); httpx's `--no-verify`
    is one half of it."""
    with httprs.main.make_context("httprs", ["https://example.com", *argv]) as ctx:
        assert ctx.params["verify"] is expected


def test_verify_flag_keeps_verification_on(https_server):
    result = invoke(httprs.main, [https_server.url, "--verify"])
    assert result.exit_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.output


def test_verbose_tls_details_match_httpx_cli(https_server, certs, monkeypatch):
    """-v over TLS prints what httpx's CLI prints: TLS version and cipher, the ALPN
    protocol, the verified server certificate's fields (both clients trust the test CA
    through SSL_CERT_FILE), then the heads."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    argv = [https_server.url, "-v"]
    ours = invoke(httprs.main, argv)
    theirs = invoke(httpx.main, argv)
    assert (ours.exit_code, theirs.exit_code) == (0, 0), ours.output
    out = lines(ours.output)
    assert any(line.startswith("* SSL established using 'TLSv1") for line in out), out
    assert "* Server certificate:" in out
    assert "*     DNS: 'localhost'" in out or "*   subjectAltName:" in out, out

    # The test server numbers its connections in the body: not part of the comparison.
    def same(text):
        return [re.sub(r'"connection_index": \d+', '"connection_index": N', x) for x in text]

    assert same(out) == same(lines(theirs.output))


def _without_connection_index(text):
    # The test app numbers its connections in the body: not part of a comparison.
    return [re.sub(r'"connection_index": \d+', '"connection_index": N', x) for x in text]


def test_proxy_option_goes_through_the_proxy(server, proxy_factory, clean_env):
    """--proxy sends the request to the proxy in absolute form, and prints what httpx's
    CLI prints through the same proxy."""
    proxy = proxy_factory()
    argv = [server.url + "/json", "--proxy", proxy.url, "-v"]
    ours = invoke(httprs.main, argv)
    assert ours.exit_code == 0, ours.output
    assert [req.target for req in proxy.seen] == [server.url + "/json"]
    theirs = invoke(httpx.main, argv)
    assert theirs.exit_code == 0, theirs.output
    assert len(proxy.seen) == 2
    # -v prints the absolute-form request line a forwarding proxy is sent, as httpx's.
    ours_out = lines(ours.output)
    assert f"GET {server.url}/json HTTP/1.1" in ours_out
    assert _without_connection_index(ours_out) == _without_connection_index(lines(theirs.output))
    # A proxy that refuses the connection: the same error class as httpx's CLI reports.
    refused = [
        invoke(m, [server.url, "--proxy", "http://127.0.0.1:1"]) for m in (httprs.main, httpx.main)
    ]
    assert [r.exit_code for r in refused] == [1, 1]
    assert refused[0].output.split(":")[0] == refused[1].output.split(":")[0] == "ConnectError"


def test_http2_option_negotiates_http2(hypercorn_tls, certs, monkeypatch):
    """--http2 against a TLS server offering h2: the exchange is HTTP/2 and the output
    (heads included) is httpx's CLI's; without the flag it stays HTTP/1.1."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    url = hypercorn_tls.url + "/json"
    ours = invoke(httprs.main, [url, "--http2", "-v"])
    assert ours.exit_code == 0, ours.output
    out = lines(ours.output)
    assert "HTTP/2 200 OK" in out, out
    assert "GET /json HTTP/2" in out, out
    theirs = invoke(httpx.main, [url, "--http2", "-v"])
    assert theirs.exit_code == 0, theirs.output
    assert _without_connection_index(out) == _without_connection_index(lines(theirs.output))
    plain = lines(invoke(httprs.main, [url, "-v"]).output)
    assert "GET /json HTTP/1.1" in plain and "HTTP/2 200 OK" not in plain, plain
    assert "* Selected ALPN protocol: 'http/1.1'" in plain


def test_invalid_json_option(server):
    result = CliRunner().invoke(httprs.main, [server.url, "-j", "{not json"])
    assert result.exit_code == 2
    assert "Not valid JSON" in result.output


def test_help():
    result = invoke(httprs.main, ["--help"])
    assert result.exit_code == 0
    assert "A next generation HTTP client." in result.output
    assert "Usage: httprs <URL> [OPTIONS]" in result.output
    for option in (
        "--method",
        "--params",
        "--content",
        "--data",
        "--files",
        "--json",
        "--headers",
        "--cookies",
        "--auth",
        "--proxy",
        "--timeout",
        "--follow-redirects",
        "--no-verify",
        "--http2",
        "--download",
        "--verbose",
    ):
        assert option in result.output


def test_main_is_the_cli():
    assert httprs.main is httprs._main.main
    assert httprs.main.name == "httprs"


def run(args, **kwargs):
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env, **kwargs)


def test_python_dash_m(server):
    proc = run([sys.executable, "-m", "httprs", server.url + "/json"])
    assert proc.returncode == 0, proc.stderr
    assert "HTTP/1.1 200 OK" in proc.stdout


def test_console_script(server):
    script = shutil.which("httprs", path=str(Path(sys.executable).parent))
    assert script is not None, "pip install -e . creates the httprs console script"
    proc = run([script, server.url + "/"])
    assert proc.returncode == 0, proc.stderr
    assert "Hello, world!" in proc.stdout


@pytest.mark.parametrize("missing", ["click", "rich", "pygments"])
def test_without_the_cli_extra(missing):
    code = f"import sys; sys.modules[{missing!r}] = None\nimport httprs\nhttprs.main()"
    proc = run([sys.executable, "-c", code])
    assert proc.returncode == 1
    assert f"needs {missing}" in proc.stderr
    assert "pip install 'httprs[cli]'" in proc.stderr


def test_import_httprs_does_not_import_the_cli():
    proc = run([sys.executable, "-c", "import sys, httprs; print('rich' in sys.modules)"])
    assert proc.stdout.strip() == "False"

"""The `httprs` command-line client (`httpx.main` / `httpx._main.main` under the switch).

`httprs URL [OPTIONS]` sends one request and prints the response as httpx's command line
does: the response head, then the body with syntax highlighting, or with `--download`
the body into a file behind a progress bar. It needs the optional extra `httprs[cli]`
(click, rich, pygments); without it, `main()` says how to install it and exits with 1.
"""

from __future__ import annotations

import json as jsonlib
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO, Callable

__all__ = ["main"]

CLI_PACKAGES = ("click", "rich", "pygments")

try:
    import click
    import pygments.lexers
    import pygments.util
    import rich.console
    import rich.markup
    import rich.progress
    import rich.syntax
    import rich.table
except ImportError as missing:  # the [cli] extra is not installed
    _MISSING: ImportError | None = missing
else:
    _MISSING = None


def _missing_extra_message() -> str:
    name = getattr(_MISSING, "name", None) or "a command-line dependency"
    return (
        f"The httprs command line client needs {name}, which is not installed.\n"
        "Install the extra with: pip install 'httprs[cli]'"
    )


# ------------------------------------------------------------------ formatting (no I/O)

# (option, description) rows of --help, in httpx's order.
HELP_ROWS = (
    (
        "-m, --method [cyan]METHOD",
        "Request method, such as GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD.\n"
        "[Default: GET, or POST if a request body is included]",
    ),
    ("-p, --params [cyan]<NAME VALUE> ...", "Query parameters to include in the request URL."),
    ("-c, --content [cyan]TEXT", "Byte content to include in the request body."),
    ("-d, --data [cyan]<NAME VALUE> ...", "Form data to include in the request body."),
    ("-f, --files [cyan]<NAME FILENAME> ...", "Form files to include in the request body."),
    ("-j, --json [cyan]TEXT", "JSON data to include in the request body."),
    ("-h, --headers [cyan]<NAME VALUE> ...", "Include additional HTTP headers in the request."),
    ("--cookies [cyan]<NAME VALUE> ...", "Cookies to include in the request."),
    (
        "--auth [cyan]<USER PASS>",
        "Username and password to include in the request. Specify '-' for the password to "
        "use a password prompt. Note that using --verbose/-v will expose the Authorization "
        "header, including the password encoding in a trivially reversible format.",
    ),
    (
        "--proxy [cyan]URL",
        "Send the request via a proxy. Should be the URL giving the proxy address.",
    ),
    (
        "--timeout [cyan]FLOAT",
        "Timeout value to use for network operations, such as establishing the connection, "
        "reading some data, etc... [Default: 5.0]",
    ),
    ("--follow-redirects", "Automatically follow redirects."),
    ("--verify / --no-verify", "Enable SSL verification."),
    ("--http2", "Send the request using HTTP/2, if the remote server supports it."),
    ("--download [cyan]FILE", "Save the response content as a file, rather than displaying it."),
    ("-v, --verbose", "Verbose output. Show request as well as response."),
    ("--help", "Show this message and exit."),
)


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode("ascii")


def request_head_text(request: Any, http2: bool = False, absolute: bool = False) -> str:
    """The request line and headers as sent, from the Request a trace event carries;
    `absolute`: the absolute-form target a forwarding proxy is sent."""
    method = _text(request.method)
    if absolute and hasattr(request.url, "raw_path"):
        target: Any = str(request.url.copy_with(fragment=None))
    elif hasattr(request.url, "raw_path"):
        target = request.url.raw_path
    else:
        target = request.url.target
    lines = [f"{method} {_text(target)} {'HTTP/2' if http2 else 'HTTP/1.1'}"]
    raw = request.headers.raw if hasattr(request.headers, "raw") else request.headers
    for name, value in raw:
        lines.append(f"{_text(name).lower() if http2 else _text(name)}: {_text(value)}")
    return "\n".join(lines)


def response_head_text(
    version: bytes, status: int, reason: bytes | None, headers: Iterable[tuple[Any, Any]]
) -> str:
    """The status line and headers; with no reason phrase (HTTP/2), the standard one."""
    if reason is None:
        from httprs._alias import presented_name
        from httprs._status_codes import codes, httpx2_codes

        phrase = (httpx2_codes if presented_name() == "httpx2" else codes).get_reason_phrase(
            status
        )
    else:
        phrase = reason.decode("ascii")
    lines = [f"{version.decode('ascii')} {status} {phrase}"]
    lines += [f"{_text(name)}: {_text(value)}" for name, value in headers]
    return "\n".join(lines)


def certificate_text(cert: dict[str, Any]) -> str:
    """`ssl.SSLObject.getpeercert()` as "*   key: value" lines."""
    out = []
    for key, value in cert.items():
        if not isinstance(value, (list, tuple)):
            out.append(f"*   {key}: {value!r}")
            continue
        out.append(f"*   {key}:")
        for entry in value:
            if key in ("subject", "issuer"):
                out += [f"*     {field}: {text!r}" for field, text in entry]
            elif isinstance(entry, tuple) and len(entry) == 2:
                out.append(f"*     {entry[0]}: {entry[1]!r}")
            else:
                out.append(f"*     {entry!r}")
    return "\n".join(out)


def lexer_name(content_type: str | None) -> str:
    """pygments' lexer name for a Content-Type, "" when there is none for it."""
    if not content_type:
        return ""
    mime = content_type.split(";", 1)[0].strip()
    try:
        name: str = pygments.lexers.get_lexer_for_mimetype(mime).name
        return name
    except pygments.util.ClassNotFound:
        return ""


# ------------------------------------------------------------------ output


def _console() -> rich.console.Console:
    # A new console each time: it writes to whatever sys.stdout is now (CliRunner swaps it).
    return rich.console.Console()


def _print_http(text: str) -> None:
    console = _console()
    console.print(rich.syntax.Syntax(text, "http", theme="ansi_dark", word_wrap=True))
    console.print(rich.syntax.Syntax("", "http", theme="ansi_dark", word_wrap=True))


def print_help() -> None:
    console = _console()
    console.print("[bold]HTTPRS", justify="center")
    console.print()
    console.print("A next generation HTTP client.", justify="center")
    console.print()
    console.print("Usage: [bold]httprs[/bold] [cyan]<URL> [OPTIONS][/cyan] ", justify="left")
    console.print()
    grid = rich.table.Table.grid(padding=1, pad_edge=True)
    grid.add_column("Parameter", no_wrap=True, justify="left", style="bold")
    grid.add_column("Description")
    for option, description in HELP_ROWS:
        grid.add_row(option, description)
    console.print(grid)


def print_body(response: Any) -> None:
    """The body: pretty JSON, highlighted text, or a byte count for binary data."""
    console = _console()
    lexer = lexer_name(response.headers.get("Content-Type"))
    if not lexer:
        console.print(f"<{len(response.content)} bytes of binary data>")
        return
    text = response.text
    if lexer.lower() == "json":
        try:
            text = jsonlib.dumps(response.json(), indent=4)
        except ValueError:
            pass  # not valid JSON after all: show it as sent
    console.print(rich.syntax.Syntax(text, lexer, theme="ansi_dark", word_wrap=True))


class Tracer:
    """The `trace` extension's callback: heads always, connection events with -v.

    httprs's core owns its sockets, so the network stream a connect/TLS event returns
    may not answer `get_extra_info`; the connected line then names the host and port
    that were connected to, and the TLS line says only that the handshake completed."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.target: tuple[str, int] | None = None

    def __call__(self, name: str, info: dict[str, Any]) -> None:
        handler = self.HANDLERS.get(name)
        if handler is not None:
            handler(self, info)

    def connecting(self, info: dict[str, Any]) -> None:
        if self.verbose:
            self.target = (info["host"], info["port"])
            _console().print(f"* Connecting to {info['host']!r}")

    def connected(self, info: dict[str, Any]) -> None:
        if not self.verbose:
            return
        address = info["return_value"].get_extra_info("server_addr") or self.target
        if address is not None:
            _console().print(f"* Connected to {address[0]!r} on port {address[1]}")

    def tls_done(self, info: dict[str, Any]) -> None:
        if not self.verbose:
            return
        console = _console()
        ssl_object = info["return_value"].get_extra_info("ssl_object")
        if ssl_object is None:
            console.print("* TLS handshake complete")
            return
        console.print(
            f"* SSL established using {ssl_object.version()!r} / {ssl_object.cipher()[0]!r}"
        )
        console.print(f"* Selected ALPN protocol: {ssl_object.selected_alpn_protocol()!r}")
        cert = ssl_object.getpeercert()
        if cert:
            console.print("* Server certificate:")
            console.print(certificate_text(cert))

    def request_head(self, info: dict[str, Any], http2: bool = False) -> None:
        if self.verbose:
            request = info["request"]
            forwarded = not http2 and self._via_forwarding_proxy(request.url)
            _print_http(request_head_text(request, http2=http2, absolute=forwarded))

    def _via_forwarding_proxy(self, url: Any) -> bool:
        """An http:// request on a connection to another host than its own: sent to a
        forwarding proxy, in absolute form (what httpcore's trace shows)."""
        if self.target is None or getattr(url, "scheme", "") != "http":
            return False
        return self.target != (url.host, url.port or 80)

    def request_head_h2(self, info: dict[str, Any]) -> None:
        self.request_head(info, http2=True)

    def response_head(self, info: dict[str, Any]) -> None:
        version, status, reason, headers = info["return_value"]
        _print_http(response_head_text(version, status, reason, headers))

    def response_head_h2(self, info: dict[str, Any]) -> None:
        status, headers = info["return_value"]
        _print_http(response_head_text(b"HTTP/2", status, None, headers))

    HANDLERS: dict[str, Callable[[Tracer, dict[str, Any]], None]] = {
        "connection.connect_tcp.started": connecting,
        "connection.connect_tcp.complete": connected,
        "connection.start_tls.complete": tls_done,
        "http11.send_request_headers.started": request_head,
        "http2.send_request_headers.started": request_head_h2,
        "http11.receive_response_headers.complete": response_head,
        "http2.receive_response_headers.complete": response_head_h2,
    }


def download(response: Any, file: BinaryIO) -> None:
    """Stream the body into `file` behind a progress bar (total from Content-Length)."""
    console = _console()
    console.print()
    length = response.headers.get("Content-Length")
    columns = (
        "[progress.description]{task.description}",
        "[progress.percentage]{task.percentage:>3.0f}%",
        rich.progress.BarColumn(bar_width=None),
        rich.progress.DownloadColumn(),
        rich.progress.TransferSpeedColumn(),
    )
    with rich.progress.Progress(*columns, console=console) as progress:
        task = progress.add_task(
            f"Downloading [bold]{rich.markup.escape(file.name)}",
            total=int(length or 0),
            start=length is not None,
        )
        for chunk in response.iter_bytes():
            file.write(chunk)
            progress.update(task, completed=response.num_bytes_downloaded)


# ------------------------------------------------------------------ the command


def run(
    url: str,
    *,
    method: str | None,
    params: Any,
    content: str | None,
    data: Any,
    files: Any,
    json: Any,
    headers: Any,
    cookies: Any,
    auth: tuple[str, str] | None,
    proxy: str | None,
    timeout: float,
    follow_redirects: bool,
    verify: bool,
    http2: bool,
    download_to: BinaryIO | None,
    verbose: bool,
) -> int:
    """Send the request, print it; the exit status: 0 for a 2xx response, else 1."""
    from httprs._client import Client
    from httprs._exceptions import RequestError

    if not method:
        method = "POST" if content or data or files or json else "GET"
    try:
        client = Client(proxy=proxy, timeout=timeout, http2=http2, verify=verify)
    except (ImportError, NotImplementedError, ValueError) as error:  # e.g. --http2 unsupported
        _console().print(f"[red]{type(error).__name__}[/red]: {rich.markup.escape(str(error))}")
        return 1
    try:
        with client:
            with client.stream(
                method,
                url,
                params=list(params),
                content=content,
                data=dict(data),
                files=list(files),
                json=json,
                headers=list(headers),
                cookies=dict(cookies),
                auth=auth,
                follow_redirects=follow_redirects,
                extensions={"trace": Tracer(verbose)},
            ) as response:
                if download_to is not None:
                    download(response, download_to)
                else:
                    response.read()
                    if response.content:
                        print_body(response)
    except RequestError as error:
        _console().print(f"[red]{type(error).__name__}[/red]: {rich.markup.escape(str(error))}")
        return 1
    return 0 if response.is_success else 1


def _json_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return jsonlib.loads(value)
    except ValueError:
        raise click.BadParameter("Not valid JSON") from None


def _auth_option(
    ctx: click.Context, param: click.Parameter, value: tuple[str | None, str | None]
) -> tuple[str | None, str | None] | None:
    user, password = value
    if user is None and password is None:
        return None
    if password == "-":
        password = click.prompt("Password", hide_input=True)
    return (user, password)


def _help_option(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        print_help()
        ctx.exit()


def _build_command() -> click.Command:
    pair = (str, str)
    options = [
        click.argument("url", type=str),
        click.option("--method", "-m", "method", type=str),
        click.option("--params", "-p", "params", type=pair, multiple=True),
        click.option("--content", "-c", "content", type=str),
        click.option("--data", "-d", "data", type=pair, multiple=True),
        click.option("--files", "-f", "files", type=(str, click.File("rb")), multiple=True),
        click.option("--json", "-j", "json", type=str, callback=_json_option),
        click.option("--headers", "-h", "headers", type=pair, multiple=True),
        click.option("--cookies", "cookies", type=pair, multiple=True),
        click.option("--auth", "auth", type=pair, default=(None, None), callback=_auth_option),
        click.option("--proxy", "proxy", type=str, default=None),
        click.option("--timeout", "timeout", type=float, default=5.0),
        click.option("--follow-redirects", "follow_redirects", is_flag=True, default=False),
        # httpx2's on/off pair (httpx 0.28.1 has only `--no-verify`, which this keeps).
        click.option("--verify/--no-verify", "verify", default=True),
        click.option("--http2", "http2", is_flag=True, default=False),
        click.option("--download", "download_to", type=click.File("wb")),
        click.option("--verbose", "-v", "verbose", is_flag=True, default=False),
        click.option(
            "--help", is_flag=True, is_eager=True, expose_value=False, callback=_help_option
        ),
    ]
    # (option help texts are in HELP_ROWS: --help prints that table, as httpx does)

    def command(url: str, **kwargs: Any) -> None:
        """An HTTP command line client. Sends a request and displays the response."""
        sys.exit(run(url, **kwargs))

    for decorate in reversed(options):
        command = decorate(command)
    return click.command(name="httprs", add_help_option=False)(command)


if _MISSING is None:
    main = _build_command()
else:

    def main() -> None:  # type: ignore[misc]
        """Without the [cli] extra: say how to get it, exit with status 1."""
        print(_missing_extra_message(), file=sys.stderr)
        sys.exit(1)

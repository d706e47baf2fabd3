"""httpx's private `httpx._urlparse`: `urlparse()`, its `ParseResult` and helpers.

pytest-httpx and httpx's own WHATWG test cases call `urlparse(url)` and read the seven
parsed components. httprs parses URLs once, in `httprs._urls.URL`; this module exposes
that parse as httpx's `ParseResult` shape (normalised, percent-encoded components, with
`None` for an absent query or fragment and `""` for an empty one).

The helpers (`quote`, `percent_encoded`, `PERCENT`, `encode_host`, `normalize_port`,
`normalize_path`, `validate_path`) and constants (the `*_SAFE` sets as strings of safe
characters, the regexes, `MAX_URL_LENGTH`) are the ones code imports from httpx's module
(URL signing, test helpers); the steps are `httprs._urls`'s own.
"""

from __future__ import annotations

import re
from collections import namedtuple
from typing import Any

from httprs import _urls
from httprs._urls import _COMPONENT_REGEX, URL

__all__ = [
    "AUTHORITY_REGEX",
    "COMPONENT_REGEX",
    "FRAG_SAFE",
    "IPv4_STYLE_HOSTNAME",
    "IPv6_STYLE_HOSTNAME",
    "MAX_URL_LENGTH",
    "PASSWORD_SAFE",
    "PATH_SAFE",
    "PERCENT",
    "PERCENT_ENCODED_REGEX",
    "QUERY_SAFE",
    "SUB_DELIMS",
    "UNRESERVED_CHARACTERS",
    "URL_REGEX",
    "USERINFO_SAFE",
    "USERNAME_SAFE",
    "ParseResult",
    "encode_host",
    "normalize_path",
    "normalize_port",
    "percent_encoded",
    "quote",
    "urlparse",
    "validate_path",
]

MAX_URL_LENGTH = 65536
UNRESERVED_CHARACTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
SUB_DELIMS = "!$&'()*+,;="
PERCENT_ENCODED_REGEX = re.compile("%[A-Fa-f0-9]{2}")


def _printable_except(excluded: str) -> str:
    return "".join(chr(i) for i in range(0x20, 0x7F) if chr(i) not in excluded)


# The WHATWG percent-encode sets, as the printable ASCII characters each leaves alone.
FRAG_SAFE = _printable_except(' "<>`')
QUERY_SAFE = _printable_except(' "#<>')
PATH_SAFE = _printable_except(' "#<>?`{}')
USERNAME_SAFE = _printable_except(' "#<>?`{}/:;=@[\\]^|')
PASSWORD_SAFE = USERNAME_SAFE
USERINFO_SAFE = _printable_except(' "#<>?`{}/;=@[\\]^|')  # keeps the ':' separator

COMPONENT_REGEX = dict(_COMPONENT_REGEX)
URL_REGEX = re.compile(
    f"(?:(?P<scheme>{COMPONENT_REGEX['scheme'].pattern}):)?"
    f"(?://(?P<authority>{COMPONENT_REGEX['authority'].pattern}))?"
    f"(?P<path>{COMPONENT_REGEX['path'].pattern})"
    f"(?:\\?(?P<query>{COMPONENT_REGEX['query'].pattern}))?"
    f"(?:#(?P<fragment>{COMPONENT_REGEX['fragment'].pattern}))?"
)
# Userinfo up to the last '@'; a bracketed IPv6 host or one without ':' and '@'.
AUTHORITY_REGEX = re.compile(r"(?:(?P<userinfo>.*)@)?(?P<host>(\[.*\]|[^:@]*)):?(?P<port>.*)?")
IPv4_STYLE_HOSTNAME = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
IPv6_STYLE_HOSTNAME = re.compile(r"^\[.*\]$")


def _safe_table(safe: str) -> bytes:
    table = bytearray(128)
    for ch in UNRESERVED_CHARACTERS + safe:
        if ord(ch) < 128:
            table[ord(ch)] = 1
    return bytes(table)


def PERCENT(string: str) -> str:  # noqa: N802 (httpx's name)
    """Every UTF-8 byte of `string` as %XX."""
    return "".join(f"%{byte:02X}" for byte in string.encode("utf-8"))


def percent_encoded(string: str, safe: str) -> str:
    """Percent-encode every character of `string` that is neither unreserved nor in
    `safe` (existing escapes included: '%' is encoded unless it is in `safe`)."""
    return _urls._urlparse_quote(string, _safe_table(safe))


def quote(string: str, safe: str) -> str:
    """Like `percent_encoded()`, but valid %XX escapes already in `string` are kept."""
    table = _safe_table(safe)
    parts = []
    start = 0
    for match in PERCENT_ENCODED_REGEX.finditer(string):
        parts.append(_urls._urlparse_quote(string[start : match.start()], table))
        parts.append(match.group(0))
        start = match.end()
    parts.append(_urls._urlparse_quote(string[start:], table))
    return "".join(parts)


def encode_host(host: str) -> str:
    """The host as a URL holds it: IPv4 checked, IPv6 unbracketed, names lower-cased and
    percent-encoded or IDNA-encoded. Raises InvalidURL as httpx does."""
    return _urls._urlparse_encode_host(host)


def format_host(host: str) -> str:
    """The host as an authority writes it: an IPv6 address in brackets, the "%" before
    its zone id written "%25" (httpx2 2.17's helper of this name)."""
    return _urls._format_host(host)


def normalize_port(port: str | int | None, scheme: str) -> int | None:
    """The port as an int, None when absent or the scheme's default."""
    return _urls._urlparse_normalize_port(port, scheme)


def normalize_path(path: str) -> str:
    """`path` without its '.' and '..' segments (RFC 3986 section 5.2.4)."""
    return _urls._urlparse_normalize_path(path)


def validate_path(path: str, has_scheme: bool, has_authority: bool) -> None:
    """Raise InvalidURL for a path that cannot stand where it is (RFC 3986 section 3.3)."""
    _urls._urlparse_validate_path(path, has_scheme, has_authority)


class ParseResult(
    namedtuple("ParseResult", ["scheme", "userinfo", "host", "port", "path", "query", "fragment"])
):
    """The components of a parsed URL, as httpx's `urlparse()` returns them."""

    __slots__ = ()

    @property
    def authority(self) -> str:
        userinfo = f"{self.userinfo}@" if self.userinfo else ""
        return userinfo + self.netloc

    @property
    def netloc(self) -> str:
        host = format_host(self.host)
        port = "" if self.port is None else f":{self.port}"
        return host + port

    def copy_with(self, **kwargs: Any) -> ParseResult:
        """Re-parse with some components replaced (keywords as `httprs.URL` takes them)."""
        if not kwargs:
            return self
        return urlparse(str(self), **kwargs)

    def __str__(self) -> str:
        authority = self.authority
        return "".join([
            f"{self.scheme}:" if self.scheme else "",
            f"//{authority}" if authority else "",
            self.path,
            f"?{self.query}" if self.query is not None else "",
            f"#{self.fragment}" if self.fragment is not None else "",
        ])


def urlparse(url: str = "", **kwargs: Any) -> ParseResult:
    """Parse `url` (with httpx's component keyword overrides) into a ParseResult.

    Raises `httprs.InvalidURL` where httpx does (invalid port, host, characters, length).
    """
    parsed = URL(url, **kwargs)._uri_reference
    return ParseResult(*parsed)

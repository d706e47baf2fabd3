"""httpx's private `httpx._urlparse`: `urlparse()` and its `ParseResult`.

pytest-httpx and httpx's own WHATWG test cases call `urlparse(url)` and read the seven
parsed components. httprs parses URLs once, in `httprs._urls.URL`; this module exposes
that parse as httpx's `ParseResult` shape (normalised, percent-encoded components, with
`None` for an absent query or fragment and `""` for an empty one).
"""

from __future__ import annotations

from collections import namedtuple

from httprs._urls import URL

__all__ = ["ParseResult", "urlparse"]


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
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        return host + port

    def copy_with(self, **kwargs) -> ParseResult:
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


def urlparse(url: str = "", **kwargs) -> ParseResult:
    """Parse `url` (with httpx's component keyword overrides) into a ParseResult.

    Raises `httprs.InvalidURL` where httpx does (invalid port, host, characters, length).
    """
    parsed = URL(url, **kwargs)._uri_reference
    return ParseResult(*parsed)

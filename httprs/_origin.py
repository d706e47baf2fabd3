"""httpx2's `Origin`: the scheme, host and effective port of an absolute URL (RFC 9110
section 4.3.1), normalised, immutable and hashable, so origins compare as values.

`URL.origin` returns one (once `URL` is a plain class it gains the property; until then
`Origin(url)` is the way).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # pragma: no cover
    from httprs._urls import URL

__all__ = ["Origin"]

_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}


class Origin:
    """`Origin(url)`: `url` is a URL or a string; a relative URL raises ValueError."""

    __slots__ = ("scheme", "host", "port")

    scheme: str
    host: str
    port: int | None

    def __init__(self, url: URL | str) -> None:
        from httprs._urls import URL

        if not isinstance(url, URL):
            url = URL(url)
        if url.is_relative_url:
            raise ValueError("URL must be absolute to have an origin")
        host = url.host
        if ":" in host:
            # One IPv6 address has many spellings; keep the canonical compressed one.
            host = ipaddress.IPv6Address(host).compressed
        port = url.port
        if port is None:
            port = _DEFAULT_PORTS.get(url.scheme)
        object.__setattr__(self, "scheme", url.scheme)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "port", port)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"cannot assign to field {name!r}: Origin is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"cannot delete field {name!r}: Origin is immutable")

    def _key(self) -> tuple[str, str, int | None]:
        return (self.scheme, self.host, self.port)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Origin):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Origin(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r})"

    def __reduce__(
        self,
    ) -> tuple[Callable[[str, str, int | None], Origin], tuple[str, str, int | None]]:
        return (_rebuild, self._key())

    def __copy__(self) -> Origin:
        return self

    def __deepcopy__(self, memo: Any) -> Origin:
        return self


def _rebuild(scheme: str, host: str, port: int | None) -> Origin:
    origin = object.__new__(Origin)
    object.__setattr__(origin, "scheme", scheme)
    object.__setattr__(origin, "host", host)
    object.__setattr__(origin, "port", port)
    return origin

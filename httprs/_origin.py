"""httpx2's `Origin`: the scheme, host and effective port of an absolute URL (RFC 9110
section 4.3.1), normalised, immutable and hashable, so origins compare as values.

`URL.origin` returns one (once `URL` is a plain class it gains the property; until then
`Origin(url)` is the way).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from httprs._urls import URL

__all__ = ["Origin"]

_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}

# A frozen dataclass, as httpx2's: `dataclasses.fields()` / `astuple()`, `match` patterns
# (`case Origin(scheme, host, port)`), `FrozenInstanceError` on assignment, and value
# equality, hashing, repr and pickling from the fields. (`slots=` needs Python 3.10.)
_SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclasses.dataclass(frozen=True, init=False, **_SLOTS)
class Origin:
    """`Origin(url)`: `url` is a URL or a string; a relative URL raises ValueError."""

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

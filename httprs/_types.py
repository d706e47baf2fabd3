"""Type aliases of httpx's private `httpx._types`, for code that imports them.

starlette's TestClient, openai, anthropic and many typed wrappers import these names from
`httpx._types`; under `httprs.install()` that module is this one. They are plain
`typing` aliases built on httprs's own classes, so annotations and `get_type_hints` work.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from http.cookiejar import CookieJar
from typing import IO, TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from httprs._auth import Auth
from httprs._config import Proxy, Timeout
from httprs._content import AsyncByteStream, SyncByteStream
from httprs._models import Cookies, Headers, Request
from httprs._urls import URL, QueryParams

if TYPE_CHECKING:  # pragma: no cover
    from httprs._models import Response  # noqa: F401

__all__ = ["AsyncByteStream", "SyncByteStream"]

AnyStr = TypeVar("AnyStr", bytes, str)

PrimitiveData = Optional[Union[str, int, float, bool]]

URLTypes = Union[URL, str]

QueryParamTypes = Union[
    QueryParams,
    Mapping[str, Union[PrimitiveData, Sequence[PrimitiveData]]],
    list[tuple[str, PrimitiveData]],
    tuple[tuple[str, PrimitiveData], ...],
    str,
    bytes,
]

HeaderTypes = Union[
    Headers,
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]

CookieTypes = Union[Cookies, CookieJar, dict[str, str], list[tuple[str, str]]]

TimeoutTypes = Union[
    Optional[float],
    tuple[Optional[float], Optional[float], Optional[float], Optional[float]],
    Timeout,
]
ProxyTypes = Union[URL, str, Proxy]
# httpx 0.28 dropped these two from the client signatures but kept the aliases.
ProxiesTypes = Union[ProxyTypes, dict[Union[URL, str], Union[None, ProxyTypes]]]
VerifyTypes = Union[ssl.SSLContext, str, bool]
CertTypes = Union[str, tuple[str, str], tuple[str, str, str]]

AuthTypes = Union[
    tuple[Union[str, bytes], Union[str, bytes]],
    Callable[[Request], Request],
    Auth,
]

RequestContent = Union[str, bytes, Iterable[bytes], AsyncIterable[bytes]]
ResponseContent = Union[str, bytes, Iterable[bytes], AsyncIterable[bytes]]
ResponseExtensions = Mapping[str, Any]

RequestData = Mapping[str, Any]

FileContent = Union[IO[bytes], bytes, str]
FileTypes = Union[
    # file (or bytes)
    FileContent,
    # (filename, file (or bytes))
    tuple[Optional[str], FileContent],
    # (filename, file (or bytes), content_type)
    tuple[Optional[str], FileContent, Optional[str]],
    # (filename, file (or bytes), content_type, headers)
    tuple[Optional[str], FileContent, Optional[str], Mapping[str, str]],
]
RequestFiles = Union[Mapping[str, FileTypes], Sequence[tuple[str, FileTypes]]]

RequestExtensions = Mapping[str, Any]

# httpx's `httpx._transports.default.SOCKET_OPTION` (imported there from here): in this
# module, which the package imports anyway, for the transports' annotations.
SOCKET_OPTION = Union[
    tuple[int, int, int],
    tuple[int, int, Union[bytes, bytearray]],
    tuple[int, int, None, int],
]

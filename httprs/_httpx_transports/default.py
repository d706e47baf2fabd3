"""httpx's `httpx._transports.default`: the network transports (httprs's C++ core), and the
helpers code imports from there to build its own transports on httpcore.

`map_httpcore_exceptions()`, `ResponseStream` and `AsyncResponseStream` do what httpx's
do, written for httprs: they turn httpcore's exceptions into the exception classes of the
same name (httprs's), so a custom transport that drives httpcore directly raises what
httpx's transport would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

from httprs import _exceptions
from httprs._config import DEFAULT_LIMITS, Limits, Proxy, create_ssl_context
from httprs._content import AsyncByteStream, SyncByteStream
from httprs._core import AsyncHTTPTransport, HTTPTransport
from httprs._exceptions import (
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    NetworkError,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TimeoutException,
    UnsupportedProtocol,
    WriteError,
    WriteTimeout,
)
from httprs._models import Request, Response
from httprs._transports import AsyncBaseTransport, BaseTransport
from httprs._types import SOCKET_OPTION  # noqa: F401  (httpx's module defines it)

__all__ = [
    "DEFAULT_LIMITS",
    "AsyncHTTPTransport",
    "AsyncResponseStream",
    "HTTPTransport",
    "Limits",
    "Proxy",
    "ResponseStream",
    "create_ssl_context",
    "map_httpcore_exceptions",
]


# Re-exported as httpx's module has them (code imports them from here).
_REEXPORTED = (
    AsyncBaseTransport,
    BaseTransport,
    ConnectError,
    ConnectTimeout,
    LocalProtocolError,
    NetworkError,
    PoolTimeout,
    ProtocolError,
    ProxyError,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    Request,
    Response,
    TimeoutException,
    UnsupportedProtocol,
    WriteError,
    WriteTimeout,
)


# httpcore's exception classes -> httpx's, as httpx 0.28.1 keeps them: empty until the first
# mapping (or `_load_httpcore_exceptions()`) fills it, when httpcore is importable.
HTTPCORE_EXC_MAP: dict[type[Exception], type[Exception]] = {}
_httpcore_missing = False  # (not imported again once missing)


def _load_httpcore_exceptions() -> dict[type[Exception], type[Exception]]:
    import httpcore

    names = (
        "TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
        "NetworkError", "ConnectError", "ReadError", "WriteError", "ProxyError",
        "UnsupportedProtocol", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
    )  # fmt: skip
    return {getattr(httpcore, name): getattr(_exceptions, name) for name in names}


def _mapped_class(error: BaseException) -> Any:
    """httprs's exception class for an httpcore exception (matched by class name along
    the MRO, as httpcore and httpx name them alike), or None."""
    for cls in type(error).__mro__:
        if not cls.__module__.startswith("httpcore"):
            continue
        mapped = getattr(_exceptions, cls.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, Exception):
            return mapped
    return None


@contextlib.contextmanager
def map_httpcore_exceptions() -> Iterator[None]:
    """Re-raise an httpcore exception raised in the block as httprs's equivalent."""
    global HTTPCORE_EXC_MAP, _httpcore_missing
    if not HTTPCORE_EXC_MAP and not _httpcore_missing:
        try:
            HTTPCORE_EXC_MAP = _load_httpcore_exceptions()
        except ImportError:
            _httpcore_missing = True
    try:
        yield
    except Exception as error:
        mapped = _mapped_class(error)
        if mapped is None:
            raise
        raise mapped(str(error)) from error


class ResponseStream(SyncByteStream):
    """A SyncByteStream over an httpcore response stream, mapping its exceptions."""

    def __init__(self, httpcore_stream: Iterable[bytes]) -> None:
        self._httpcore_stream = httpcore_stream

    def __iter__(self) -> Iterator[bytes]:
        with map_httpcore_exceptions():
            yield from self._httpcore_stream

    def close(self) -> None:
        close = getattr(self._httpcore_stream, "close", None)
        if close is not None:
            close()


class AsyncResponseStream(AsyncByteStream):
    """An AsyncByteStream over an httpcore response stream, mapping its exceptions."""

    def __init__(self, httpcore_stream: AsyncIterable[bytes]) -> None:
        self._httpcore_stream = httpcore_stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_httpcore_exceptions():
            async for part in self._httpcore_stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._httpcore_stream, "aclose", None)
        if aclose is not None:
            await aclose()

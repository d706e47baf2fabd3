import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, NoReturn, TypeAlias

from httprs._config import Limits
from httprs._content import AsyncByteStream, SyncByteStream
from httprs._models import Request, Response
from httprs._transports import AsyncBaseTransport, BaseTransport
from httprs._types import CertTypes, ProxyTypes

_SocketOption: TypeAlias = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)

class ResponseStream(SyncByteStream):
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...

class AsyncResponseStream(AsyncByteStream):
    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...

class HTTPTransport(BaseTransport):
    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: Limits = ...,
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> None: ...
    def handle_request(self, request: Request) -> Response: ...
    def close(self) -> None: ...

class AsyncHTTPTransport(AsyncBaseTransport):
    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: Limits = ...,
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> None: ...
    async def handle_async_request(self, request: Request) -> Response: ...
    async def aclose(self) -> None: ...

# The `network_stream` extension of a 101 response (httpcore's stream interface).
class NetworkStream:
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...
    def write(self, buffer: bytes, timeout: float | None = None) -> None: ...
    def close(self) -> None: ...
    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NoReturn: ...
    def get_extra_info(self, info: str) -> Any: ...

class AsyncNetworkStream:
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes: ...
    async def write(self, buffer: bytes, timeout: float | None = None) -> None: ...
    async def aclose(self) -> None: ...
    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NoReturn: ...
    def get_extra_info(self, info: str) -> Any: ...

# The connection's stream on every other response: what it is, no raw I/O.
class ConnectionStream:
    def read(self, max_bytes: int, timeout: float | None = None) -> NoReturn: ...
    def write(self, buffer: bytes, timeout: float | None = None) -> NoReturn: ...
    def close(self) -> None: ...
    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NoReturn: ...
    def get_extra_info(self, info: str) -> Any: ...

class AsyncConnectionStream:
    async def read(self, max_bytes: int, timeout: float | None = None) -> NoReturn: ...
    async def write(self, buffer: bytes, timeout: float | None = None) -> NoReturn: ...
    async def aclose(self) -> None: ...
    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NoReturn: ...
    def get_extra_info(self, info: str) -> Any: ...

# Fault injection for the torture tests (tests/test_torture.py).
def _fault_arm(site: str, k: int, status: str = "ECONNRESET") -> None: ...
def _fault_calls(site: str) -> int: ...
def _scratch_fail(n: int) -> int: ...

# The DEBUG connection loggers (httpcore / httpcore2 names), set by the switch.
def _set_core_loggers(prefix: str) -> None: ...

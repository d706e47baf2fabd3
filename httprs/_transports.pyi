from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    MutableMapping,
)
from types import TracebackType
from typing import Any, TextIO, TypeVar

from _typeshed.wsgi import WSGIApplication

from httprs._content import AsyncByteStream, SyncByteStream
from httprs._models import Request, Response

_T = TypeVar("_T", bound=BaseTransport)
_A = TypeVar("_A", bound=AsyncBaseTransport)

SyncHandler = Callable[[Request], Response]
AsyncHandler = Callable[[Request], Coroutine[None, None, Response]]

_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_ASGIApp = Callable[[MutableMapping[str, Any], _Receive, _Send], Awaitable[None]]

class BaseTransport:
    def __enter__(self: _T) -> _T: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None: ...
    def handle_request(self, request: Request) -> Response: ...
    def close(self) -> None: ...

class AsyncBaseTransport:
    async def __aenter__(self: _A) -> _A: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None: ...
    async def handle_async_request(self, request: Request) -> Response: ...
    async def aclose(self) -> None: ...

class MockTransport(AsyncBaseTransport, BaseTransport):
    handler: SyncHandler | AsyncHandler
    def __init__(self, handler: SyncHandler | AsyncHandler) -> None: ...
    def handle_request(self, request: Request) -> Response: ...
    async def handle_async_request(self, request: Request) -> Response: ...

class WSGIByteStream(SyncByteStream):
    def __init__(
        self, head: list[bytes], written: list[bytes], rest: Iterator[bytes] | None, result: Any
    ) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...

class WSGITransport(BaseTransport):
    app: WSGIApplication
    raise_app_exceptions: bool
    script_name: str
    remote_addr: str
    wsgi_errors: TextIO | None
    def __init__(
        self,
        app: WSGIApplication,
        raise_app_exceptions: bool = True,
        script_name: str = "",
        remote_addr: str = "127.0.0.1",
        wsgi_errors: TextIO | None = None,
    ) -> None: ...
    def handle_request(self, request: Request) -> Response: ...

class ASGIResponseStream(AsyncByteStream):
    def __init__(self, body: Iterable[bytes]) -> None: ...
    def __aiter__(self) -> AsyncIterator[bytes]: ...

class ASGITransport(AsyncBaseTransport):
    app: _ASGIApp
    raise_app_exceptions: bool
    root_path: str
    client: tuple[str, int]
    def __init__(
        self,
        app: _ASGIApp,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
    ) -> None: ...
    async def handle_async_request(self, request: Request) -> Response: ...

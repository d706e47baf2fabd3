# cython: language_level=3, annotation_typing=False
"""Transport base classes and the in-process transports (mock, WSGI, ASGI)."""

import io
import sys

from httprs._content import _LazyAsyncIterator
from httprs._methods import python_methods
from httprs._models import AsyncByteStream, Request, Response, SyncByteStream

# The types the annotations name (as httpx's `_transports.mock` / `_transports.asgi` define
# them; WSGIApplication is typeshed's), for typing.get_type_hints.
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping
import typing

SyncHandler = Callable[[Request], Response]
AsyncHandler = Callable[[Request], Coroutine[None, None, Response]]
_Message = MutableMapping[str, typing.Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[MutableMapping[str, typing.Any]], Awaitable[None]]
_ASGIApp = Callable[[MutableMapping[str, typing.Any], _Receive, _Send], Awaitable[None]]
WSGIApplication = Callable[[dict[str, typing.Any], Callable[..., typing.Any]], Iterable[bytes]]


class _AppProtocolError(RuntimeError, AssertionError):
    """A WSGI or ASGI app (or a request) breaking what its transport needs: httpx asserts
    each of these (an AssertionError, empty); this says what was wrong, and is both, so
    `pytest.raises(AssertionError)` written for httpx still holds."""


class _IncompleteASGIResponse(_AppProtocolError):
    """An ASGI app that returned before its response was complete."""


class BaseTransport:
    """A synchronous transport: turns one Request into one Response."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type=None, exc_value=None, traceback=None):
        self.close()

    def handle_request(self, request: Request) -> Response:
        """Send a single HTTP request and return a Response whose stream the caller closes."""
        raise NotImplementedError("The 'handle_request' method must be implemented.")

    def close(self) -> None:
        pass


class AsyncBaseTransport:
    """An asynchronous transport: turns one Request into one Response."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type=None, exc_value=None, traceback=None):
        await self.aclose()

    async def handle_async_request(self, request: Request) -> Response:
        """Send a single HTTP request and return a Response whose stream the caller closes."""
        raise NotImplementedError("The 'handle_async_request' method must be implemented.")

    async def aclose(self) -> None:
        pass


class MockTransport(AsyncBaseTransport, BaseTransport):
    """Answer every request by calling `handler(request)` (sync or async) in-process."""

    def __init__(self, handler: SyncHandler | AsyncHandler) -> None:
        self.handler = handler

    def handle_request(self, request: Request) -> Response:
        request.read()
        response = self.handler(request)
        if not isinstance(response, Response):
            close = getattr(response, "close", None)
            if close is not None and hasattr(response, "__await__"):
                close()  # an un-awaited coroutine: don't leave a "never awaited" warning
            raise TypeError("Cannot use an async handler in a sync Client")
        return response

    async def handle_async_request(self, request: Request) -> Response:
        await request.aread()
        response = self.handler(request)
        if not isinstance(response, Response):
            response = await response
        return response


# -- WSGI ---------------------------------------------------------------------------------


class WSGIByteStream(SyncByteStream):
    """The body of a WSGI response, in the order the app produced it: data passed to the
    legacy write() callable interleaved with the chunks of the returned iterable.
    """

    def __init__(self, head, written, rest, result):
        self._head = head  # what was produced before handle_request returned
        self._written = written  # filled by write() while `rest` is iterated
        self._rest = rest
        self._close = getattr(result, "close", None)

    def _drain_written(self):
        out = list(self._written)
        self._written.clear()
        return out

    def __iter__(self):
        yield from self._head
        if self._rest is not None:
            for chunk in self._rest:
                yield from self._drain_written()
                yield chunk
        yield from self._drain_written()

    def close(self):
        if self._close is not None:
            close, self._close = self._close, None
            close()


class WSGITransport(BaseTransport):
    """Send requests straight to a WSGI application, in-process."""

    def __init__(
        self,
        app: WSGIApplication,
        raise_app_exceptions: bool = True,
        script_name: str = "",
        remote_addr: str = "127.0.0.1",
        wsgi_errors: typing.TextIO | None = None,
    ) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.script_name = script_name
        self.remote_addr = remote_addr
        self.wsgi_errors = wsgi_errors

    def _environ(self, request):
        url = request.url
        port = url.port
        if port is None:
            port = {"http": 80, "https": 443}[url.scheme]
        environ = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme,
            "wsgi.input": io.BytesIO(request.content),
            "wsgi.errors": self.wsgi_errors or sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query.decode("ascii"),
            "SERVER_NAME": url.host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
        }
        if request.content and "Content-Length" not in request.headers:
            # A streamed body (sent chunked) is read whole first: its length tells a
            # PEP 3333 app how much `wsgi.input` holds (httpx2 2.11; httpx 0.28.1 left it
            # out, so such apps read nothing).
            environ["CONTENT_LENGTH"] = str(len(request.content))
        for raw_key, raw_value in request.headers.raw:
            key = raw_key.decode("ascii").upper().replace("-", "_")
            if key != "CONTENT_TYPE" and key != "CONTENT_LENGTH":
                key = "HTTP_" + key
            environ[key] = raw_value.decode("ascii")
        return environ

    def handle_request(self, request: Request) -> Response:
        request.read()
        environ = self._environ(request)
        state = {}
        written = []

        def start_response(status, response_headers, exc_info=None):
            state["status"] = status
            state["headers"] = response_headers
            state["exc_info"] = exc_info
            return written.append

        result = self.app(environ, start_response)
        # A generator app calls start_response only once its first chunk is produced:
        # pull chunks until the first non-empty one (or the end) before looking.
        rest = iter(result)
        first = None
        for chunk in rest:
            if chunk:
                first = chunk
                break
        else:
            rest = None
        head = list(written)
        written.clear()
        if first is not None:
            head.append(first)
        stream = WSGIByteStream(head, written, rest, result)

        if "status" not in state:
            stream.close()
            raise _AppProtocolError("The WSGI application did not call start_response().")
        exc_info = state["exc_info"]
        if exc_info and exc_info[0] and self.raise_app_exceptions:
            stream.close()
            raise exc_info[1]
        status_code = int(state["status"].split()[0])
        headers = [(k.encode("ascii"), v.encode("ascii")) for k, v in state["headers"]]
        return Response(status_code, headers=headers, stream=stream)


# -- ASGI ---------------------------------------------------------------------------------


def _create_event():
    try:
        import sniffio

        if sniffio.current_async_library() == "trio":
            import trio

            return trio.Event()
    except ImportError:
        pass
    except Exception:  # sniffio.AsyncLibraryNotFoundError: not inside trio
        pass
    import asyncio

    return asyncio.Event()


class ASGIResponseStream(AsyncByteStream):
    """The buffered body of an ASGI response."""

    def __init__(self, body):
        self._body = body

    def __aiter__(self):
        return _LazyAsyncIterator(self._aiter)

    async def _aiter(self):
        yield b"".join(self._body)


class _ASGIExchange:
    """The receive/send pair for one request/response cycle of an ASGI app."""

    def __init__(self, request):
        self.request = request
        self.body_iter = None  # created on the first receive(): an unstarted one may warn
        self.request_complete = False
        self.status_code = None
        self.headers = None
        self.body = []
        self.started = False
        self.complete = _create_event()

    async def receive(self):
        if self.request_complete:
            await self.complete.wait()
            return {"type": "http.disconnect"}
        if self.body_iter is None:
            self.body_iter = self.request.stream.__aiter__()
        try:
            chunk = await self.body_iter.__anext__()
        except StopAsyncIteration:
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise _AppProtocolError("ASGI app sent 'http.response.start' twice.")
            self.status_code = message["status"]
            self.headers = message.get("headers", [])
            self.started = True
        elif kind == "http.response.body":
            if self.complete.is_set():
                raise _AppProtocolError("ASGI app sent a body after the response completed.")
            chunk = message.get("body", b"")
            if chunk and self.request.method != "HEAD":
                self.body.append(chunk)
            if not message.get("more_body", False):
                self.complete.set()


class ASGITransport(AsyncBaseTransport):
    """Send requests straight to an ASGI application, in-process (asyncio or trio)."""

    def __init__(
        self,
        app: _ASGIApp,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
    ) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.root_path = root_path
        self.client = client

    def _scope(self, request):
        url = request.url
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": self.client,
            "root_path": self.root_path,
        }

    async def handle_async_request(self, request: Request) -> Response:
        if not isinstance(request.stream, AsyncByteStream):
            raise _AppProtocolError("ASGITransport needs a request with an async byte stream.")
        exchange = _ASGIExchange(request)
        try:
            await self.app(self._scope(request), exchange.receive, exchange.send)
        except Exception:
            if self.raise_app_exceptions:
                raise
            exchange.complete.set()
            if exchange.status_code is None:
                exchange.status_code = 500
            if exchange.headers is None:
                exchange.headers = {}
        if not exchange.complete.is_set() or exchange.status_code is None:
            raise _IncompleteASGIResponse(
                "The ASGI application returned without completing a response."
            )
        stream = ASGIResponseStream(exchange.body)
        return Response(exchange.status_code, headers=exchange.headers, stream=stream)

# Python functions in front of the compiled methods (httprs._methods).
python_methods(BaseTransport, AsyncBaseTransport, MockTransport, WSGITransport, ASGITransport)

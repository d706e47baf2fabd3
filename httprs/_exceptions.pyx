# cython: language_level=3, annotation_typing=False
"""The httpx exception hierarchy.

* HTTPError
  x RequestError
    + TransportError
      - TimeoutException: ConnectTimeout, ReadTimeout, WriteTimeout, PoolTimeout
      - NetworkError: ConnectError, ReadError, WriteError, CloseError
      - ProtocolError: LocalProtocolError, RemoteProtocolError
      - ProxyError
      - UnsupportedProtocol
    + DecodingError
    + TooManyRedirects
  x HTTPStatusError
* InvalidURL
* CookieConflict
* StreamError (a RuntimeError)
  x StreamConsumed, StreamClosed, ResponseNotRead, RequestNotRead
"""

import contextlib

__all__ = [
    "CloseError",
    "ConnectError",
    "ConnectTimeout",
    "CookieConflict",
    "DecodingError",
    "HTTPError",
    "HTTPStatusError",
    "HTTPXDeprecationWarning",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "RequestError",
    "RequestNotRead",
    "ResponseNotRead",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
]


class _OnceEach(type):
    """The exceptions' metaclass. With both httpx and httpx2 routed to httprs, the two
    names give one class, so a class made of both names of one (pydantic-ai's
    `type("_CompatibleRequestError", (httpx2.RequestError, httpx.RequestError), ...)`,
    which keeps handlers written for either name matching) would name a base twice,
    which type() refuses ("duplicate base class"): the library failed to import. A
    base named again is left out, so the class derives from it once, and handlers of
    both names still catch it."""

    def __new__(mcls, name, bases, namespace, **kwargs):
        if len(bases) > 1 and len(set(map(id, bases))) < len(bases):
            bases = tuple(dict.fromkeys(bases))
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class HTTPXDeprecationWarning(UserWarning):
    """httpx2's deprecation warning: a UserWarning, so it shows without -W flags."""


class HTTPError(Exception, metaclass=_OnceEach):
    """Base class for `RequestError` and `HTTPStatusError`."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self._request = None

    @property
    def request(self):
        if self._request is None:
            raise RuntimeError("The .request property has not been set.")
        return self._request

    @request.setter
    def request(self, request):
        self._request = request


class RequestError(HTTPError):
    """Base class for all exceptions that may occur when issuing a `.request()`."""

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        Exception.__init__(self, message)
        self._request = request


class TransportError(RequestError):
    """Base class for all exceptions that occur at the level of the Transport API."""


class TimeoutException(TransportError):
    """The base class for timeout errors."""


class ConnectTimeout(TimeoutException):
    """Timed out while connecting to the host."""


class ReadTimeout(TimeoutException):
    """Timed out while receiving data from the host."""


class WriteTimeout(TimeoutException):
    """Timed out while sending data to the host."""


class PoolTimeout(TimeoutException):
    """Timed out waiting to acquire a connection from the pool."""


class NetworkError(TransportError):
    """The base class for network-related errors."""


class ReadError(NetworkError):
    """Failed to receive data from the network."""


class WriteError(NetworkError):
    """Failed to send data through the network."""


class ConnectError(NetworkError):
    """Failed to establish a connection."""


class CloseError(NetworkError):
    """Failed to close a connection."""


class ProxyError(TransportError):
    """An error occurred while establishing a proxy connection."""


class UnsupportedProtocol(TransportError):
    """Attempted to make a request to an unsupported protocol."""


class ProtocolError(TransportError):
    """The protocol was violated."""


class LocalProtocolError(ProtocolError):
    """A protocol was violated by the client."""


class RemoteProtocolError(ProtocolError):
    """The protocol was violated by the server."""


class DecodingError(RequestError):
    """Decoding of the response failed, due to a malformed encoding."""


class TooManyRedirects(RequestError):
    """Too many redirects."""


class HTTPStatusError(HTTPError):
    """The response had an error HTTP status of 4xx or 5xx."""

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        HTTPError.__init__(self, message)
        self.request = request
        self.response = response


class InvalidURL(Exception, metaclass=_OnceEach):
    """URL is improperly formed or cannot be parsed."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


class CookieConflict(Exception, metaclass=_OnceEach):
    """Attempted to look up a cookie by name, but multiple cookies existed."""

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)


class StreamError(RuntimeError, metaclass=_OnceEach):
    """The base class for stream exceptions."""

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)


class StreamConsumed(StreamError):
    """Attempted to read or stream content that has already been streamed."""

    def __init__(self) -> None:
        StreamError.__init__(
            self,
            "Attempted to read or stream some content, but the content has "
            "already been streamed. For requests, this could be due to passing "
            "a generator as request content, and then receiving a redirect "
            "response or a secondary request as part of an authentication flow."
            "For responses, this could be due to attempting to stream the response "
            "content more than once.",
        )


class StreamClosed(StreamError):
    """Attempted to read or stream response content after the stream was closed."""

    def __init__(self) -> None:
        StreamError.__init__(
            self, "Attempted to read or stream content, but the stream has been closed."
        )


class ResponseNotRead(StreamError):
    """Attempted to access streaming response content without calling `read()`."""

    def __init__(self) -> None:
        StreamError.__init__(
            self,
            "Attempted to access streaming response content, without having called `read()`.",
        )


class RequestNotRead(StreamError):
    """Attempted to access streaming request content without calling `read()`."""

    def __init__(self) -> None:
        StreamError.__init__(
            self,
            "Attempted to access streaming request content, without having called `read()`.",
        )


@contextlib.contextmanager
def request_context(request=None):
    """Attach `request` to any RequestError raised inside the block."""
    try:
        yield
    except RequestError as exc:
        if request is not None:
            exc.request = request
        raise exc

"""The names that the annotations of httprs's public callables use, bound where
`typing.get_type_hints` looks for them.

The public functions and methods carry httpx's annotations as strings (Cython stores a
compiled `def`'s annotations as their source text, as `from __future__ import annotations`
does; the `.pyx` modules compile with `annotation_typing=False`, so the annotations are
never types to Cython and are evaluated nowhere). `typing.get_type_hints` evaluates them in
the globals of the module that defines the function (for a front function of
`httprs._methods`, the compiled method it wraps). Several of those names cannot be imported
at the top of the module that uses them without an import cycle (`_exceptions` names
`Request`, which `_models` defines after importing `_exceptions`), so `bind()`, run once
at the end of `httprs/__init__.py`, adds each module's missing names to its globals. A
one-time cost at import; nothing runs per call.

`WebSocketSession` / `AsyncWebSocketSession` (httpx2's `websocket()` annotations) come from
the optional `httprs.websockets` package, which binds them itself when it is imported
(importing it here would make wsproto and anyio a cost of every `import httprs`).
"""

from __future__ import annotations

import sys
from typing import Any

# For each module, the names its annotation strings use that it may not hold itself.
_NEEDED: dict[str, tuple[str, ...]] = {
    "httprs._api": (
        "Any",
        "AuthTypes",
        "CookieTypes",
        "Generator",
        "HeaderTypes",
        "ProxyTypes",
        "QueryParamTypes",
        "RequestContent",
        "RequestData",
        "RequestFiles",
        "Response",
        "TimeoutTypes",
        "URL",
        "ssl",
        "typing",
    ),
    "httprs._auth": ("AsyncGenerator", "Callable", "Generator", "Request", "Response", "typing"),
    "httprs._client": (
        "Any",
        "AsyncBaseTransport",
        "AsyncGenerator",
        "Auth",
        "AuthTypes",
        "BaseTransport",
        "CertTypes",
        "CookieTypes",
        "Cookies",
        "EventSource",
        "Generator",
        "HeaderTypes",
        "Headers",
        "Limits",
        "ProxyTypes",
        "QueryParamTypes",
        "QueryParams",
        "Request",
        "RequestContent",
        "RequestData",
        "RequestExtensions",
        "RequestFiles",
        "Response",
        "Timeout",
        "TimeoutTypes",
        "URL",
        "UseClientDefault",
        "ssl",
        "typing",
    ),
    "httprs._config": ("CertTypes", "HeaderTypes", "TimeoutTypes", "URL", "UnsetType", "ssl"),
    "httprs._core": (
        "CertTypes",
        "Limits",
        "ProxyTypes",
        "Request",
        "Response",
        "SOCKET_OPTION",
        "ssl",
        "typing",
    ),
    "httprs._exceptions": ("Request", "Response"),
    "httprs._models": (
        "AsyncByteStream",
        "CookieTypes",
        "Cookies",
        "HeaderTypes",
        "Headers",
        "QueryParamTypes",
        "Request",
        "RequestContent",
        "RequestData",
        "RequestExtensions",
        "RequestFiles",
        "Response",
        "ResponseContent",
        "ResponseExtensions",
        "SyncByteStream",
        "URL",
        "datetime",
        "typing",
    ),
    "httprs._origin": ("URL",),
    "httprs._sse": ("AsyncClient", "Client", "HeaderTypes", "Headers", "Response", "URL"),
    "httprs._transports": ("Request", "Response", "typing"),
    "httprs._urls": ("Origin", "QueryParamTypes", "QueryParams", "URL", "typing"),
}


def _namespace() -> dict[str, Any]:
    import datetime
    import ssl
    import typing
    from collections.abc import AsyncGenerator, Callable, Generator

    from httprs import _types
    from httprs._auth import Auth
    from httprs._client import AsyncClient, Client, UseClientDefault
    from httprs._config import Limits, Timeout, UnsetType
    from httprs._content import AsyncByteStream, SyncByteStream
    from httprs._models import Cookies, Headers, Request, Response
    from httprs._origin import Origin
    from httprs._sse import EventSource
    from httprs._transports import AsyncBaseTransport, BaseTransport
    from httprs._urls import URL, QueryParams

    namespace = {name: getattr(_types, name) for name in dir(_types) if name.endswith("Types")}
    for name in (
        "RequestContent",
        "RequestData",
        "RequestExtensions",
        "RequestFiles",
        "ResponseContent",
        "ResponseExtensions",
    ):
        namespace[name] = getattr(_types, name)
    namespace.update(
        Any=Any,
        AsyncGenerator=AsyncGenerator,
        Callable=Callable,
        Generator=Generator,
        datetime=datetime,
        ssl=ssl,
        typing=typing,
        Auth=Auth,
        AsyncClient=AsyncClient,
        Client=Client,
        UseClientDefault=UseClientDefault,
        Limits=Limits,
        Timeout=Timeout,
        UnsetType=UnsetType,
        AsyncByteStream=AsyncByteStream,
        SyncByteStream=SyncByteStream,
        SOCKET_OPTION=_types.SOCKET_OPTION,
        Cookies=Cookies,
        Headers=Headers,
        Request=Request,
        Response=Response,
        Origin=Origin,
        EventSource=EventSource,
        AsyncBaseTransport=AsyncBaseTransport,
        BaseTransport=BaseTransport,
        URL=URL,
        QueryParams=QueryParams,
    )
    return namespace


def bind_names(module: str, names: dict[str, Any], *, replace: bool = False) -> None:
    """Adds `names` to the globals of `module` (already imported); a name it holds must be
    the same object, unless `replace` (an optional package imported again, whose classes
    are new objects)."""
    module_globals = vars(sys.modules[module])
    for name, value in names.items():
        if replace:
            module_globals[name] = value
            continue
        held = module_globals.setdefault(name, value)
        if held is not value:
            raise RuntimeError(f"{module}.{name} is not the object its annotations name")


def bind() -> None:
    namespace = _namespace()
    for module, names in _NEEDED.items():
        bind_names(module, {name: namespace[name] for name in names})

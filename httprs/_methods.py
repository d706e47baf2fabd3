"""Python functions in front of the compiled methods of the API classes.

A method compiled by Cython is a `cython_function_or_method`, not a
`types.FunctionType`, and several tools tell methods from other callables by that type:
`unittest.mock`'s autospec (`patch.object(Client, "send", autospec=True)` records and
passes `self` only for real functions: without one, `call_args` lacks the client and a
`side_effect(self, request, ...)` is called without `self`), `inspect.isfunction`,
`inspect.iscoroutine` on what an async method returns. So each public method of the
classes below (and httpx's private request steps, which libraries patch) is a small
Python function forwarding its arguments to the compiled one, with its signature; an
async method's is a coroutine function, so it returns a real coroutine. A defining module
calls `python_methods` right after its classes, before it records any method as the
stock one (the fast paths compare a class's methods with what was recorded).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

# The type of a function Cython compiled (its methods are of this type too).
_COMPILED = "cython_function_or_method"


def python_methods(*classes: type) -> None:
    """Puts a Python function in front of each compiled method the classes define
    themselves (not the dunder methods)."""
    for cls in classes:
        for name, impl in list(vars(cls).items()):
            dunder = name.startswith("__") and name.endswith("__")
            if type(impl).__name__ == _COMPILED and not dunder:
                setattr(cls, name, _front(impl))


def _front(impl: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(impl):
        method = _async_front(impl)
    elif inspect.isgeneratorfunction(impl):
        method = _generator_front(impl)
    else:
        method = _sync_front(impl)
    method.__name__ = impl.__name__
    method.__qualname__ = impl.__qualname__
    method.__module__ = impl.__module__
    method.__doc__ = impl.__doc__
    method.__signature__ = inspect.signature(impl)  # type: ignore[attr-defined]
    method.__wrapped__ = impl  # type: ignore[attr-defined]
    return method


def _sync_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        return impl(*args, **kwargs)

    return method


def _generator_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    # A generator function itself (as httpx's auth_flow, iter_bytes, ... are), so
    # inspect.isgeneratorfunction holds; `yield from` passes send/throw/close through.
    def method(*args: Any, **kwargs: Any) -> Any:
        return (yield from impl(*args, **kwargs))

    return method


def _async_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    async def method(*args: Any, **kwargs: Any) -> Any:
        return await impl(*args, **kwargs)

    return method

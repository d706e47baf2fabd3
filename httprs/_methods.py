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
import sys
import warnings
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
    # The compiled method's (httpx's annotation strings; httprs/_hints.py binds the names
    # they use in its module, where typing.get_type_hints looks through `__wrapped__`), not
    # the front's own `args` / `kwargs`, which contradict the signature.
    method.__annotations__ = dict(getattr(impl, "__annotations__", None) or {})
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


# Warnings from compiled code. `stacklevel` counts Python frames only, and compiled
# functions have none, so a level given there lands on whichever Python frame happens to
# be innermost: a front function above, the user's own line, or nothing at all (`sys:1`).
# Where a warning is attributed decides whether Python's default filters show it (a
# DeprecationWarning only when attributed to __main__) and what `module=` filters match,
# so these attribute each warning where httpx's lands: inside the library, or at the line
# that called a public method itself.


def warn_inside(message: str, category: type[Warning], module: str) -> None:
    """Issue a warning attributed to httprs itself, as httpx's from inside its modules:
    to the module of that name (`"_config"`) under the name httprs presents as
    (`httpx2._config` through the switch, `httprs._config` without it), so that filters
    written for httpx's warnings (`module="httpx._config"`, pytest's
    `ignore::DeprecationWarning:httpx._content`) match httprs's."""
    from httprs._alias import primary

    registry = globals().setdefault("__warningregistry__", {})
    warnings.warn_explicit(
        message,
        category,
        __file__,
        sys._getframe(0).f_lineno,
        module=f"{primary() or 'httprs'}.{module}",
        registry=registry,
        module_globals=globals(),
    )


def warn_at_caller_of(name: str, message: str, category: type[Warning], module: str) -> None:
    """Issue a warning at the line that called the method `name` (httpx's stacklevel=2
    inside that method), or inside httprs (in `module`, see warn_inside) when another of
    its methods called it."""
    try:
        front = sys._getframe(1)  # the innermost Python frame: compiled ones have none
    except ValueError:  # none at all (a compiled method run as a thread's target)
        warn_inside(message, category, module)
        return
    code = front.f_code
    if code.co_filename == __file__ and code.co_name == "method":
        if getattr(front.f_locals.get("impl"), "__name__", None) == name:
            warnings.warn(message, category, stacklevel=3)
            return
    warn_inside(message, category, module)

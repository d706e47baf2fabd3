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
            if not dunder and type(impl).__name__ == _COMPILED:
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


# Each front passes a TypeError of its compiled method through _binding_error: when the
# arguments do not bind to the method's signature, the error Python gives for the
# function httpx defines (`Client.get() got an unexpected keyword argument
# 'allow_redirects'`) replaces Cython's (`get() got ...`, `get() takes exactly 2
# positional arguments (1 given)`). A try block costs nothing until something raises.


def _sync_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        try:
            return impl(*args, **kwargs)
        except TypeError as error:
            raise _binding_error(impl, args, kwargs, error) from None

    return method


def _generator_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    # A generator function itself (as httpx's auth_flow, iter_bytes, ... are), so
    # inspect.isgeneratorfunction holds; `yield from` passes send/throw/close through.
    def method(*args: Any, **kwargs: Any) -> Any:
        try:
            flow = impl(*args, **kwargs)
        except TypeError as error:
            raise _binding_error(impl, args, kwargs, error) from None
        return (yield from flow)

    return method


def _async_front(impl: Callable[..., Any]) -> Callable[..., Any]:
    async def method(*args: Any, **kwargs: Any) -> Any:
        try:
            coroutine = impl(*args, **kwargs)
        except TypeError as error:
            raise _binding_error(impl, args, kwargs, error) from None
        return await coroutine

    return method


_STUBS: dict[Any, Callable[..., None]] = {}


def _binding_error(
    impl: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], error: TypeError
) -> TypeError:
    """Python's own error for calling `impl` with these arguments, if they do not bind
    to its signature; else `error` itself (raised inside the method)."""
    stub = _STUBS.get(impl)
    if stub is None:
        stub = _STUBS[impl] = _signature_stub(impl)
    try:
        stub(*args, **kwargs)
    except TypeError as binding:
        return binding.with_traceback(None)
    return error


def _signature_stub(impl: Callable[..., Any]) -> Callable[..., None]:
    """A function that does nothing, with `impl`'s parameters (defaults as None) and
    qualified name, so that calling it binds the arguments as Python binds them."""
    params = list(inspect.signature(impl).parameters.values())
    # A bare `*` before the first keyword-only parameter, unless `*args` stands there.
    star = not any(p.kind is p.VAR_POSITIONAL for p in params)
    parts: list[str] = []
    for index, param in enumerate(params):
        kind = param.kind
        if kind is param.KEYWORD_ONLY and star:
            parts.append("*")
            star = False
        prefix = "*" if kind is param.VAR_POSITIONAL else "**" if kind is param.VAR_KEYWORD else ""
        default = "" if param.default is param.empty else "=None"
        parts.append(f"{prefix}{param.name}{default}")
        if kind is param.POSITIONAL_ONLY and (
            index + 1 == len(params) or params[index + 1].kind is not kind
        ):
            parts.append("/")
    namespace: dict[str, Any] = {}
    exec(f"def {impl.__name__}({', '.join(parts)}): pass", namespace)  # noqa: S102
    stub: Callable[..., None] = namespace[impl.__name__]
    stub.__qualname__ = impl.__qualname__  # (what Python's binding errors name, since 3.10)
    return stub


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

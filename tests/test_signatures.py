"""`inspect.signature` of every public class, function and method equals httpx's.

For every name in `httpx.__all__` (httpx 0.28.1) and `httpx2.__all__` (httpx2 2.17.0) that
httprs exports, the signature of the object, and of each public method, `__init__` and
property getter of a class, must have the same parameter names, kinds, defaults and
annotations as the reference library's. The annotations are strings, as httpx's are (it
uses `from __future__ import annotations`), and are httpx 0.28.1's own strings; httpx2
spells some differently (`Any` for `typing.Any`, `X | None` for `None | X`, ...): against
httpx2 the strings compare once normalised (`_normalised`), and what still differs is
listed in `HTTPX2_DIFFERENCES`. `typing.get_type_hints` must resolve every one of them to
httprs's own classes and the aliases of `httprs._types` (`test_type_hints_resolve`).

Sentinel defaults (`USE_CLIENT_DEFAULT`, `Timeout`'s `UNSET`, a bare `object()`) are
different objects in the two libraries; they compare equal when they are instances of
classes of the same name (and a bare `object()` matches a bare `object()`).
"""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
import typing

import httpx
import httpx2
import pytest

import httprs

# Names of httpx2's `__all__` that httprs does not provide (yet). Anything else missing
# is a failure.
NOT_PROVIDED: set[str] = set()

_MISSING = object()

_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _libraries():
    for lib in (httpx, httpx2):
        for name in lib.__all__:
            if name.startswith("__"):
                continue  # __version__, __title__, __description__
            yield lib, name


def _cases():
    return [
        pytest.param(lib, name, id=f"{lib.__name__}.{name}")
        for lib, name in _libraries()
        if name not in NOT_PROVIDED
    ]


def _same_default(ref, ours) -> bool:
    if ref is inspect.Parameter.empty or ours is inspect.Parameter.empty:
        return ref is ours
    if type(ref) is object:
        return type(ours) is object
    if isinstance(ref, type):
        # A class default (httpx2.websockets' `session_class`): the library's class of
        # that name.
        return isinstance(ours, type) and ours.__name__ == ref.__name__
    if isinstance(ref, (type(None), bool, int, float, str, bytes, tuple)):
        return type(ref) is type(ours) and ref == ours
    # Objects of the library itself (Timeout(...), Limits(...), sentinels): same class
    # name and the same repr once memory addresses are removed.
    if type(ref).__name__ != type(ours).__name__:
        return False
    if _ADDRESS.search(repr(ref)):
        return True  # a sentinel: its default repr names the module and address only
    return repr(ref) == repr(ours)


def _shape(sig: inspect.Signature):
    return [(p.name, p.kind) for p in sig.parameters.values()]


# Where httprs's annotation (httpx 0.28.1's string) still differs from httpx2 2.17.0's once
# both are normalised: (where, parameter or "return") -> (httpx2's string, httprs's).
HTTPX2_DIFFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    **{
        (f"{client}.{method}", "return"): (f"{gen}[Response]", f"typing.{it}[Response]")
        for client, gen, it in (
            ("Client", "Generator", "Iterator"),
            ("AsyncClient", "AsyncGenerator", "AsyncIterator"),
        )
        for method in ("stream",)
    },
    ("stream", "return"): ("Generator[Response]", "typing.Iterator[Response]"),
    **{
        (f"{client}{member}", "default_encoding"): (
            "str | Callable[[bytes], str | None]",
            "str | typing.Callable[[bytes], str]",
        )
        for client in ("Client", "AsyncClient", "Response")
        for member in ("", ".__init__")
    },
    ("Headers.get", "default"): ("_T | None", "typing.Any"),
    ("Headers.get", "return"): ("str | _T | None", "typing.Any"),
    ("Response.aiter_bytes", "return"): (
        "AsyncGenerator[bytes, None]",
        "typing.AsyncIterator[bytes]",
    ),
    ("Response.aiter_raw", "return"): (
        "AsyncGenerator[bytes, None]",
        "typing.AsyncIterator[bytes]",
    ),
    ("Limits", "return"): (None, "None"),
    ("Limits.__init__", "return"): (None, "None"),
    # httprs.websockets: the sessions share one constructor (httpx2's two name their own
    # stream protocol), and the clients name the session classes where httpx2 has TypeVars
    # (`type[SyncSession]`), which a default of a concrete class contradicts for mypy.
    **{
        (f"websockets.{session}{member}", "stream"): (stream, "Any")
        for session, stream in (
            ("WebSocketSession", "NetworkStream"),
            ("AsyncWebSocketSession", "AsyncNetworkStream"),
        )
        for member in ("", ".__init__")
    },
    **{
        (f"websockets.{client}{member}", "session_class"): (f"type[{var}]", f"type[{cls}]")
        for client, var, cls in (
            ("WebSocketClient", "SyncSession", "WebSocketSession"),
            ("AsyncWebSocketClient", "AsyncSession", "AsyncWebSocketSession"),
        )
        for member in ("", ".__init__")
    },
    ("websockets.WebSocketClient.connect", "return"): (
        "Generator[SyncSession, None, None]",
        "Iterator[WebSocketSession]",
    ),
    ("websockets.AsyncWebSocketClient.connect", "return"): (
        "AsyncGenerator[AsyncSession, None]",
        "AsyncIterator[AsyncWebSocketSession]",
    ),
}


def _annotation(annotation):
    """The annotation: a string, or None where httpx's module has no `from __future__
    import annotations` (`-> None` is then the object); "" for none at all."""
    if annotation is inspect.Parameter.empty:
        return ""
    assert annotation is None or isinstance(annotation, str), f"{annotation!r}"
    return annotation


def _normalised(annotation: str) -> str:
    """httpx2's spelling of httpx's annotation: no `typing.` prefix, and the members of a
    top-level union sorted (`None | float` and `float | None` are one type)."""
    annotation = annotation.replace("typing.", "")
    members, depth, start = [], 0, 0
    for i, char in enumerate(annotation):
        depth += char in "[(" and 1 or char in "])" and -1 or 0
        if char == "|" and depth == 0:
            members.append(annotation[start:i].strip())
            start = i + 1
    members.append(annotation[start:].strip())
    return " | ".join(sorted(members))


def _assert_same_annotation(lib, ref: str, ours: str, where: str, name: str) -> None:
    if lib is httpx:
        assert ours == ref, f"{where}: {name!r} is annotated {ours!r}, httpx has {ref!r}"
    elif (where, name) in HTTPX2_DIFFERENCES:
        assert (ref, ours) == HTTPX2_DIFFERENCES[where, name], (where, name, ref, ours)
    else:
        assert isinstance(ref, str) == isinstance(ours, str), (where, name, ref, ours)
        if not isinstance(ref, str):
            assert ours is ref, (where, name, ref, ours)
            return
        assert _normalised(ours) == _normalised(ref), (
            f"{where}: {name!r} is annotated {ours!r}, httpx2 has {ref!r}"
        )


def _assert_same_signature(ref_obj, our_obj, where: str, lib=httpx) -> None:
    try:
        ref = inspect.signature(ref_obj)
    except ValueError:
        # No signature (an exception class keeping BaseException's constructor): ours
        # must not have one either.
        with pytest.raises(ValueError):
            inspect.signature(our_obj)
        return
    ours = inspect.signature(our_obj)
    assert _shape(ours) == _shape(ref), f"{where}: {ours} != httpx's {ref}"
    for p_ref, p_ours in zip(ref.parameters.values(), ours.parameters.values()):
        assert _same_default(p_ref.default, p_ours.default), (
            f"{where}: default of {p_ref.name!r} is {p_ours.default!r}, "
            f"httpx has {p_ref.default!r}"
        )
        _assert_same_annotation(
            lib, _annotation(p_ref.annotation), _annotation(p_ours.annotation), where, p_ref.name
        )
    _assert_same_annotation(
        lib,
        _annotation(ref.return_annotation),
        _annotation(ours.return_annotation),
        where,
        "return",
    )


def _public_members(cls, lib):
    """The public methods, properties and `__init__` that the reference library's own
    classes in `cls`'s MRO define (not those of object, int or Enum)."""
    seen = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] != lib.__name__:
            continue
        for name, value in vars(klass).items():
            if name in seen or (name.startswith("_") and name != "__init__"):
                continue
            if isinstance(value, (property, classmethod, staticmethod)) or inspect.isfunction(
                value
            ):
                seen.add(name)
                yield name, value


def test_every_reference_name_is_provided():
    missing = {name for _, name in _libraries() if not hasattr(httprs, name)}
    assert missing <= NOT_PROVIDED, f"not exported by httprs: {sorted(missing - NOT_PROVIDED)}"


@pytest.mark.parametrize(("lib", "name"), _cases())
def test_signature_matches(lib, name):
    _assert_same_api(lib, getattr(lib, name), getattr(httprs, name), name)


def _websockets_cases():
    import httpx2.websockets

    return [
        pytest.param(name, id=f"httpx2.websockets.{name}")
        for name in httpx2.websockets.__all__
        if not name.startswith("__")
    ]


@pytest.mark.parametrize("name", _websockets_cases())
def test_websockets_signature_matches(name):
    """The `websockets` submodule (httpx2[ws]) too: its session and client classes,
    `connect_ws` / `aconnect_ws` and its exceptions."""
    import httpx2.websockets

    import httprs.websockets

    assert hasattr(httprs.websockets, name), f"httprs.websockets lacks {name}"
    ref_obj = getattr(httpx2.websockets, name)
    _assert_same_api(httpx2, ref_obj, getattr(httprs.websockets, name), f"websockets.{name}")


def _assert_same_api(lib, ref_obj, our_obj, name):
    if inspect.isclass(ref_obj):
        assert inspect.isclass(our_obj), f"{name} is a class in {lib.__name__}"
    if callable(ref_obj) and not isinstance(ref_obj, type(httpx.USE_CLIENT_DEFAULT)):
        _assert_same_signature(ref_obj, our_obj, name, lib)
    if not inspect.isclass(ref_obj) or issubclass(ref_obj, BaseException):
        return  # an exception's constructor was compared above; its members are Python's
    for member, ref_member in _public_members(ref_obj, lib):
        where = f"{name}.{member}"
        our_member = inspect.getattr_static(our_obj, member, _MISSING)
        assert our_member is not _MISSING, f"{where} is missing"
        if isinstance(ref_member, property):
            assert isinstance(our_member, property), f"{where} is a property in httpx"
            assert (ref_member.fset is None) == (our_member.fset is None), (
                f"{where}: settable in one library and not in the other"
            )
            _assert_same_signature(ref_member.fget, our_member.fget, where, lib)
            continue
        if isinstance(ref_member, (classmethod, staticmethod)):
            assert type(our_member) is type(ref_member), f"{where}: {type(ref_member)}"
        if callable(getattr(ref_obj, member)):
            _assert_same_signature(getattr(ref_obj, member), getattr(our_obj, member), where, lib)


def _our_callables(lib, name, ref_obj, our_obj):
    """(where, our callable, the reference's) for what `_assert_same_api` compares."""
    if callable(ref_obj) and not isinstance(ref_obj, type(httpx.USE_CLIENT_DEFAULT)):
        yield name, our_obj, ref_obj
    if not inspect.isclass(ref_obj):
        return
    if issubclass(ref_obj, BaseException) or "__init__" not in dict(_public_members(ref_obj, lib)):
        yield f"{name}.__init__", our_obj.__init__, ref_obj.__init__
    if issubclass(ref_obj, BaseException):
        return
    for member, ref_member in _public_members(ref_obj, lib):
        our_member = inspect.getattr_static(our_obj, member)
        if isinstance(ref_member, property):
            yield f"{name}.{member}", our_member.fget, ref_member.fget
            if ref_member.fset is not None:
                yield f"{name}.{member} (setter)", our_member.fset, ref_member.fset
        else:
            yield f"{name}.{member}", getattr(our_obj, member), getattr(ref_obj, member)


def _hinted(ref) -> set[str]:
    """The names the reference annotates (its signature's, or nothing without one)."""
    try:
        sig = inspect.signature(ref)
    except ValueError:
        return set()
    names = {p.name for p in sig.parameters.values() if p.annotation is not p.empty}
    if sig.return_annotation is not sig.empty:
        names.add("return")
    return names


@pytest.mark.skipif(
    sys.version_info < (3, 10), reason="httpx's annotations use `X | Y`, Python 3.10's syntax"
)
@pytest.mark.parametrize(("lib", "name"), _cases())
def test_type_hints_resolve(lib, name):
    """`typing.get_type_hints` resolves every annotation of the callables compared above
    (pydantic's validate_call, dependency injection containers and typer read them), to
    httprs's own classes."""
    import httprs.websockets  # noqa: F401  (binds WebSocketSession for `websocket()`)

    if name == "main":
        pytest.skip(
            "a click Command: its annotations are click's, which name the TYPE_CHECKING-only "
            "`click.Context` (httpx.main's fail the same way)"
        )
    ref_obj = getattr(lib, name)
    for where, ours, ref in _our_callables(lib, name, ref_obj, getattr(httprs, name)):
        if inspect.isclass(ours):
            typing.get_type_hints(ours)  # the class's own variable annotations
            continue
        hints = typing.get_type_hints(ours)
        if where.endswith("(setter)"):  # the value's parameter may be named differently
            assert len(hints) == len(_hinted(ref)), f"{where}: {sorted(hints)}"
        else:
            assert set(hints) == _hinted(ref), f"{where}: {sorted(hints)}"
    if name in ("Request", "Response", "URL", "Client"):
        assert typing.get_type_hints(httprs.Client.get)["return"] is httprs.Response
        assert typing.get_type_hints(httprs.Request.__init__)["url"] == httprs.URL | str


@pytest.mark.parametrize("where", sorted(f"{w}:{p}" for w, p in HTTPX2_DIFFERENCES))
def test_httpx2_differences_are_current(where):
    """Each listed difference from httpx2 is one the comparison meets (none is stale)."""
    import httpx2.websockets

    import httprs.websockets

    member, _, param = where.partition(":")
    ref_module, our_module = httpx2, httprs
    if member.startswith("websockets."):
        ref_module, our_module = httpx2.websockets, httprs.websockets
    name, _, attr = member.removeprefix("websockets.").partition(".")
    ref, ours = getattr(ref_module, name), getattr(our_module, name)
    if attr:
        ref, ours = getattr(ref, attr), getattr(ours, attr)
    ref_sig, our_sig = inspect.signature(ref), inspect.signature(ours)
    if param == "return":
        got = (_annotation(ref_sig.return_annotation), _annotation(our_sig.return_annotation))
    else:
        got = (
            _annotation(ref_sig.parameters[param].annotation),
            _annotation(our_sig.parameters[param].annotation),
        )
    assert got == HTTPX2_DIFFERENCES[member, param]
    assert got[0] is None or _normalised(got[0]) != _normalised(got[1] or "")


_HTTPX_5S = httpx.Timeout(5.0)
_HTTPRS_5S = httprs.Timeout(5.0)
_HTTPRS_6S = httprs.Timeout(6.0)


def test_default_comparison_rejects_a_changed_default():
    """The comparison is not vacuous: a different default or kind is caught."""

    def ref(url, *, timeout=_HTTPX_5S, follow_redirects=False):
        pass

    def changed_default(url, *, timeout=_HTTPRS_6S, follow_redirects=False):
        pass

    def changed_kind(url, timeout=_HTTPRS_5S, *, follow_redirects=False):
        pass

    def same(url, *, timeout=_HTTPRS_5S, follow_redirects=False):
        pass

    _assert_same_signature(ref, same, "same")
    with pytest.raises(AssertionError):
        _assert_same_signature(ref, changed_default, "changed_default")
    with pytest.raises(AssertionError):
        _assert_same_signature(ref, changed_kind, "changed_kind")


@pytest.mark.parametrize(
    "cls", [httprs.Client, httprs.AsyncClient, httprs.Request, httprs.Response]
)
def test_front_functions_annotate_no_parameter_the_signature_lacks(cls):
    """A method's `__annotations__` name only its signature's parameters (and `return`):
    `typing.get_type_hints` on a front function must not report its own `*args`."""
    for name, value in vars(cls).items():
        if not inspect.isfunction(value):
            continue
        params = set(inspect.signature(value).parameters) | {"return"}
        assert set(value.__annotations__) <= params, (name, value.__annotations__)
        typing.get_type_hints(value)


def _bad_calls(lib):
    client, aclient = lib.Client(), lib.AsyncClient()
    response = lib.Response(200, content=b"abc")
    return [
        lambda: client.get("http://127.0.0.1:9/", allow_redirects=True),  # requests' keyword
        lambda: client.get(),
        lambda: client.post("http://127.0.0.1:9/", "data", "extra"),
        lambda: client.request("GET"),
        lambda: client.send(),
        lambda: client.build_request("GET", "http://127.0.0.1:9/", verify=False),
        lambda: response.json(1, 2),
        lambda: list(response.iter_bytes(1, 2)),
        lambda: asyncio.run(aclient.get("http://127.0.0.1:9/", allow_redirects=True)),
        lambda: asyncio.run(aclient.send()),
        # stream(): a @contextmanager / @asynccontextmanager around the method.
        lambda: client.stream("GET"),
        lambda: client.stream("GET", "http://127.0.0.1:9/", allow_redirects=True),
        lambda: aclient.stream("GET"),
    ]


def _type_error(call) -> str:
    with pytest.raises(TypeError) as info:
        call()
    return str(info.value)


def test_argument_errors_name_the_method_as_httpx_does():
    """A call whose arguments do not bind to a method raises the TypeError Python gives
    for httpx's function (`Client.get() got an unexpected keyword argument ...`), not
    Cython's (`get() got ...`, `get() takes exactly 2 positional arguments (1 given)`)."""
    expected = [_type_error(call) for call in _bad_calls(httpx)]
    assert [_type_error(call) for call in _bad_calls(httprs)] == expected
    assert expected[0] == "Client.get() got an unexpected keyword argument 'allow_redirects'"


def test_a_type_error_inside_a_method_is_not_rewritten():
    with pytest.raises(TypeError, match="Invalid type for url"):
        httprs.Client().get(1)

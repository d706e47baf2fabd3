"""`inspect.signature` of every public class, function and method equals httpx's.

For every name in `httpx.__all__` (httpx 0.28.1) and `httpx2.__all__` (httpx2 2.17.0) that
httprs exports, the signature of the object, and of each public method, `__init__` and
property of a class, must have the same parameter names, kinds and defaults as the
reference library's. Annotations are not compared here: they live in the `.pyi` stubs,
which `tests/test_typing.py` checks against the runtime with stubtest.

Sentinel defaults (`USE_CLIENT_DEFAULT`, `Timeout`'s `UNSET`, a bare `object()`) are
different objects in the two libraries; they compare equal when they are instances of
classes of the same name (and a bare `object()` matches a bare `object()`).
"""

from __future__ import annotations

import inspect
import re
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


def _assert_same_signature(ref_obj, our_obj, where: str) -> None:
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
        _assert_same_signature(ref_obj, our_obj, name)
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
            continue
        if isinstance(ref_member, (classmethod, staticmethod)):
            assert type(our_member) is type(ref_member), f"{where}: {type(ref_member)}"
        if callable(getattr(ref_obj, member)):
            _assert_same_signature(getattr(ref_obj, member), getattr(our_obj, member), where)


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

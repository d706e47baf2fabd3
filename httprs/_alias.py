"""The supported switch: make `import httpx` / `import httpx2` resolve to httprs.

`install()` puts one meta-path finder at the front of `sys.meta_path`. From then on, for the
rest of the process:

* `import httpx` / `import httpx2` returns a module of that name whose public names are
  httprs's own objects (the same classes and functions under every name), whose
  `__version__`, `__title__` and `__description__` are those of the library it stands in for
  (httpx2 2.17.0; for httpx, the release installed beside httprs, 0.28.1 or 0.29.0, else
  0.29.0: `httpx_version()`), and whose `__all__` is that library's list of the names
  httprs provides;
* `import httpx._client` (and every other private module listed in `SUBMODULES`) returns the
  httprs module that holds those names, the very module object, so `mock.patch` on it
  reaches httprs's code, as patching `httpx._client` reaches httpx's code;
* httprs's logger is the primary name's (`httpx2` once `import httpx2` has run, else
  `httpx` once `import httpx` has run; see `install()`), so logging configuration written
  for that library applies;
* the public classes report the primary name as their `__module__` where Python lets a
  class attribute be set (plain Python classes; Cython `cdef` classes cannot be changed and
  keep `httprs._...`).
* the default `User-Agent` and `Accept-Encoding` are those the primary name's library sends
  (`python-httpx/0.29.0` or `/0.28.1`, `python-httpx2/2.17.0`); a value the program patched into
  `httpx._client.USER_AGENT` / `ACCEPT_ENCODING` is kept.

The finder refuses to take over a name that is already imported: objects created from the
real library would then mix with httprs's, which is never what the caller wants. It raises
`AlreadyImportedError` instead, naming the module and where it came from.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["AlreadyImportedError", "alias_httpx", "install", "installed"]

# The names httprs can stand in for, and what each reports about itself (httpx's
# `__version__`: see `face()`).
FACES: dict[str, dict[str, str]] = {
    "httpx": {
        "__title__": "httpx",
        "__description__": "A next generation HTTP client, for Python 3.",
    },
    "httpx2": {
        "__title__": "httpx2",
        "__version__": "2.17.0",
        "__description__": "A next generation HTTP client, for Python 3.",
    },
}

# The public names are listed once, in `httprs.__all__` (the union of both libraries'
# APIs). Each library's `__all__` is derived from it: the names only the other library
# has are left out, and the order is httpx's (the dunders, then the rest sorted
# case-insensitively; httpx's own test_exported_members pins that order).
HTTPX2_ONLY = frozenset({
    "alias_httpx",
    "EventSource",
    "FunctionAuth",
    "Origin",
    "query",
    "ServerSentEvent",
    "SSEError",
    "websocket",
})
HTTPX_ONLY = frozenset({"main"})  # httpx2 keeps `main` as a deprecated attribute only
# httpx2 names that httpx exports too from 0.29.0 on.
HTTPX_029_NAMES = frozenset({"FunctionAuth"})
# The httpx releases httprs presents as. They differ only in `FunctionAuth` (exported from
# 0.29.0 on) and in four error messages that 0.28.1 words "an sync" (`worded()`).
HTTPX_RELEASES = ("0.28.1", "0.29.0")


def _release(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: "0.29.0rc1" -> (0, 29, 0)."""
    parts = []
    for part in version.split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _installed_httpx() -> str | None:
    """The version of the httpx distribution an import would find (the first on
    `sys.path`), from its metadata directory's name; None when there is none. The switch
    shadows the package, not its metadata. A directory scan, not importlib.metadata,
    whose import alone costs ~10 ms at start-up."""
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # not a directory (a zip file), or gone
            continue
        for name in names:
            stem, dot, kind = name.lower().rpartition(".")
            if dot and kind in ("dist-info", "egg-info") and stem.startswith("httpx-"):
                # httpx-0.28.1.dist-info, httpx-0.28.1-py3.11.egg-info
                return stem[len("httpx-") :].split("-")[0]
    return None


@functools.cache
def httpx_version() -> str:
    """The httpx release httprs presents as: that of the httpx installed in this
    environment, 0.28.1 for any release before 0.29 (httpx 0.28.1 is what pytest-httpx and
    other plugins still pin), 0.29.0 for 0.29 and later, and 0.29.0 when none is."""
    installed = _installed_httpx()
    if installed is None:
        return HTTPX_RELEASES[-1]
    return HTTPX_RELEASES[0] if _release(installed) < (0, 29) else HTTPX_RELEASES[-1]


def face(name: str) -> dict[str, str]:
    """What the stand-in for `name` reports about itself: title, version, description."""
    if name == "httpx":
        return {**FACES[name], "__version__": httpx_version()}
    return FACES[name]


def worded(httpx_028: str, current: str) -> str:
    """An error message httpx 0.28.1 words differently ("an sync") from httpx 0.29.0 and
    httpx2: 0.28.1's where httprs presents as that release, else the current one."""
    if _state["primary"] != "httpx2" and httpx_version() == "0.28.1":
        return httpx_028
    return current


# Exported by httprs but in neither library's `__all__`.
IN_NEITHER = frozenset({"install", "HTTPXDeprecationWarning"})


@functools.cache
def all_names(name: str) -> tuple[str, ...]:
    """That library's `__all__`, in httpx's order. httpx2 names httprs does not provide
    yet are listed too; `build_stand_in` exports only what httprs has."""
    import httprs

    if name == "httpx":
        skip = IN_NEITHER | HTTPX2_ONLY
        if httpx_version() != "0.28.1":
            skip -= HTTPX_029_NAMES
    else:
        skip = IN_NEITHER | HTTPX_ONLY
    names = [n for n in httprs.__all__ if n not in skip]
    if name == "httpx2":
        names += [n for n in HTTPX2_ONLY if n not in names]  # those httprs lacks too
    dunders = sorted(n for n in names if n.startswith("__"))
    return tuple(dunders + sorted((n for n in names if not n.startswith("__")), key=str.casefold))


def __getattr__(attr: str) -> tuple[str, ...]:
    # The derived lists under their former constant names (they need httprs imported).
    if attr == "HTTPX_ALL":
        return all_names("httpx")
    if attr == "HTTPX2_ALL":
        return all_names("httpx2")
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# Private module layout: `<name>.<key>` resolves to the httprs module `<value>`. Both
# libraries share this layout (httpx2 forked httpx 0.28.1); a key only one of them has
# is harmless under the other name.
SUBMODULES: dict[str, str] = {
    "_api": "httprs._api",
    "_alias": "httprs._alias",
    "_auth": "httprs._auth",
    "_client": "httprs._client",
    "_config": "httprs._config",
    "_content": "httprs._content",
    "_cookies": "httprs._cookies",
    "_decoders": "httprs._decoders",
    "_exceptions": "httprs._exceptions",
    "_main": "httprs._main",
    "_models": "httprs._models",
    "_multipart": "httprs._multipart",
    "_sse": "httprs._sse",
    "_status_codes": "httprs._status_codes",
    "_transports": "httprs._httpx_transports",
    "_transports.asgi": "httprs._httpx_transports.asgi",
    "_transports.base": "httprs._httpx_transports.base",
    "_transports.default": "httprs._httpx_transports.default",
    "_transports.mock": "httprs._httpx_transports.mock",
    "_transports.wsgi": "httprs._httpx_transports.wsgi",
    "_types": "httprs._types",
    "_urlparse": "httprs._urlparse",
    "_urls": "httprs._urls",
    "_utils": "httprs._utils",
    # httpx2's WebSocket package (needs wsproto), and its modules by their names there
    "websockets": "httprs.websockets",
    "websockets._api": "httprs.websockets._session",
    "websockets._exceptions": "httprs.websockets._exceptions",
    "websockets._transport": "httprs.websockets._asgi",
}

# Where the two libraries' modules differ: `<name>.<key>` resolves to this httprs module
# under that name only (before SUBMODULES).
SUBMODULES_OF: dict[str, dict[str, str]] = {
    # httpx2's codes: RFC 9110's names and phrases, the old names deprecated
    "httpx2": {"_status_codes": "httprs._status_codes_httpx2"},
}

# What the stand-in top-level module `<name>` exports in place of httprs's object.
EXPORTS_OF: dict[str, dict[str, tuple[str, str]]] = {
    "httpx2": {"codes": ("httprs._status_codes_httpx2", "codes")},
}


# The private modules each library's package imports with it (its `__init__` does, so
# they are in `sys.modules` once `import httpx` has run): imported under that name when
# the stand-in is, so that import hooks keyed on them run as with the real library (New
# Relic instruments httpx from a post-import hook on `httpx._client`, as wrapt's
# `register_post_import_hook` allows for any module name).
IMPORTED_WITH: dict[str, tuple[str, ...]] = {
    "httpx": (
        "_api", "_auth", "_client", "_config", "_content", "_decoders", "_exceptions",
        "_main", "_models", "_multipart", "_status_codes", "_transports",
        "_transports.asgi", "_transports.base", "_transports.default", "_transports.mock",
        "_transports.wsgi", "_types", "_urlparse", "_urls", "_utils",
    ),
    "httpx2": (
        "_alias", "_api", "_auth", "_client", "_config", "_content", "_cookies",
        "_decoders", "_exceptions", "_models", "_multipart", "_sse", "_status_codes",
        "_transports", "_transports.asgi", "_transports.base", "_transports.default",
        "_transports.mock", "_transports.wsgi", "_types", "_urlparse", "_urls", "_utils",
    ),
}  # fmt: skip


def submodule_of(name: str, key: str) -> str | None:
    """The httprs module `<name>.<key>` resolves to, None if there is none."""
    return SUBMODULES_OF.get(name, {}).get(key) or SUBMODULES.get(key)


# Marker set on each stand-in top-level module.
MARKER = "__httprs__"


class AlreadyImportedError(RuntimeError):
    """`install()` was called after the real module was imported."""


_state: dict[str, Any] = {
    "names": (),
    "primary": None,
    "explicit_primary": None,
    "by_default": set(),  # routed names install() chose itself (see _absent_by_default)
    "imported": (),  # the routed top-level names imported so far, in order
    "client_defaults": {},  # _client's constant -> the value _set_client_defaults gave it
}


def installed() -> tuple[str, ...]:
    """The names routed to httprs in this process, in the order routed (empty if none)."""
    return tuple(_state["names"])


def primary() -> str | None:
    """The name httprs presents as (logger, classes' `__module__`), None before install()."""
    name: str | None = _state["primary"]
    return name


def presented_name() -> str:
    """The library name httprs's messages give: httpx2's where httprs presents as httpx2,
    httpx's otherwise (also before install(): httprs speaks as httpx)."""
    return "httpx2" if _state["primary"] == "httpx2" else "httpx"


def is_stand_in(module: object) -> bool:
    """True if `module` is one of the top-level modules `install()` provides."""
    return isinstance(module, types.ModuleType) and getattr(module, MARKER, False) is True


def _module_getattr(name: str) -> Callable[[str], Any]:
    """Module `__getattr__` of a stand-in: httpx2's deprecated `main`, then httprs."""

    def __getattr__(attr: str) -> Any:
        import httprs

        if attr == "main" and name == "httpx2":
            warnings.warn(
                "`httpx2.main` is deprecated and will be removed in a future release. "
                "Use the `httpx2` CLI entry point instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            return httprs.main
        mapped = submodule_of(name, attr)
        if mapped is not None:
            # `httpx._transports.default...`, `httpx._multipart.MultipartStream` without
            # importing the submodule first: httpx's package imports them all.
            return importlib.import_module(mapped)
        if not attr.startswith("__") and hasattr(httprs, attr):
            return getattr(httprs, attr)
        raise AttributeError(f"module {name!r} has no attribute {attr!r}")

    return __getattr__


def build_stand_in(name: str) -> types.ModuleType:
    """A fresh top-level module `name` whose public names are httprs's objects."""
    import httprs

    module = types.ModuleType(name, httprs.__doc__)
    exported = []
    for attr in all_names(name):
        if attr in face(name):
            exported.append(attr)
        elif attr == "main" and name == "httpx2":
            continue  # deprecated in httpx2: served (with its warning) by __getattr__
        elif attr in EXPORTS_OF.get(name, {}):
            where, what = EXPORTS_OF[name][attr]
            setattr(module, attr, getattr(importlib.import_module(where), what))
            exported.append(attr)
        elif hasattr(httprs, attr):
            setattr(module, attr, getattr(httprs, attr))
            exported.append(attr)
    module.__dict__.update(face(name))
    module.__dict__["__all__"] = exported
    module.__dict__["__getattr__"] = _module_getattr(name)
    module.__file__ = httprs.__file__
    setattr(module, MARKER, True)
    # `from httpx.__version__ import __version__` (httpx's version module). Registered
    # here, so importing it never replaces the `__version__` string attribute.
    version = types.ModuleType(f"{name}.__version__")
    version.__dict__.update(face(name))
    sys.modules[version.__name__] = version
    return module


class _Loader(importlib.abc.Loader):
    """Gives the stand-in module for a top-level name, or the mapped httprs module."""

    def __init__(self, target: str | None) -> None:
        self._target = target  # None: build the stand-in top-level module
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if self._target is None:
            module = build_stand_in(spec.name)
            _imported(spec.name)
            return module
        module = importlib.import_module(self._target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if self._target is None:
            for key in IMPORTED_WITH.get(module.__name__, ()):
                try:
                    importlib.import_module(f"{module.__name__}.{key}")
                except ImportError:  # (as httpx's own package goes on without its CLI)
                    pass
            return
        # The import system set __spec__ to ours; a mapped httprs module keeps its own,
        # and takes the first name it is imported under, which import hooks look their
        # callbacks up by (`module.__name__`, once the loader they wrap has run). Under the
        # other name it is the same module, instrumented already: hooks keyed on both
        # names (New Relic's) wrap the one Client once, as with one real library.
        given, own = module.__spec__, self._spec
        module.__spec__ = own
        if given is not None and own is not None and module.__name__ == own.name:
            module.__name__ = given.name


def _real_package_exists(name: str) -> bool:
    """Whether an import of `name` would find a real package, httprs's finders aside
    (asked at import time, when `sys.path` and editable-install finders are complete)."""
    for finder in sys.meta_path:
        if isinstance(finder, (_Finder, _AliasFinder)):
            continue
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            if find_spec(name, None) is not None:
                return True
        except Exception:  # a finder that cannot answer for a top-level name
            continue
    return False


def _absent_by_default(name: str) -> bool:
    """For a name routed by default (install() without names, HTTPRS_INSTALL=1): whether
    its import must fail, as it would without httprs, because its real package is not
    installed while the other one is. A library that tries `import httpx2` before falling
    back to httpx then finds what it would, and the process presents as the library it
    has; with neither installed, httprs stands in for both."""
    other = "httpx2" if name == "httpx" else "httpx"
    return not _real_package_exists(name) and _real_package_exists(other)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        top, _, rest = fullname.partition(".")
        if top not in self.names:
            return None
        if not rest:
            if top in _state["by_default"] and _absent_by_default(top):
                return None  # the import fails as it would without httprs
            return importlib.machinery.ModuleSpec(
                fullname, _Loader(None), origin="httprs", is_package=True
            )
        mapped = submodule_of(top, rest)
        if mapped is None:
            return None
        is_package = any(key.startswith(rest + ".") for key in SUBMODULES)
        return importlib.machinery.ModuleSpec(
            fullname, _Loader(mapped), origin=mapped, is_package=is_package
        )


def _imported_from(name: str, module: types.ModuleType) -> str:
    """Where the real package `name` came from: its directory (not whichever of its
    submodules `sys.modules` happens to list first)."""
    package = sys.modules.get(name) or module
    path = getattr(package, "__path__", None)
    if path:
        return str(list(path)[0])
    return str(getattr(package, "__file__", None) or repr(package))


def _check_not_imported(name: str) -> None:
    for key, module in list(sys.modules.items()):
        if key != name and not key.startswith(name + "."):
            continue
        if module is None or is_stand_in(sys.modules.get(name)):
            continue
        where = _imported_from(name, module)
        raise AlreadyImportedError(
            f"{name!r} was already imported (from {where}) before httprs.install(); "
            f"call httprs.install() before anything imports {name}, or start Python "
            f"with `python -m httprs.run` or HTTPRS_INSTALL={name}"
        )


def _set_logger(primary: str) -> None:
    from httprs import _client, _core

    _client.logger = logging.getLogger(primary)
    # The connection events' loggers: httpx logs through httpcore, httpx2 through httpcore2.
    _core._set_core_loggers("httpcore2" if primary == "httpx2" else "httpcore")


def _set_class_modules(primary: str) -> list[str]:
    """Report `primary` as `__module__` of the public classes; return those that refused."""
    import httprs

    refused = []
    for attr in all_names(primary):
        if attr in EXPORTS_OF.get(primary, {}):
            # The stand-in's own object (its module fixed), not httprs's: that one keeps
            # the module it has, where the other name's pickles find it.
            continue
        obj = getattr(httprs, attr, None)
        if not isinstance(obj, type) or obj.__module__ == primary:
            continue
        try:
            obj.__module__ = primary
        except (TypeError, AttributeError):
            refused.append(attr)  # a Cython cdef class: immutable type
    return refused


def _identity(names: Sequence[str], primary: str | None, imported: Sequence[str]) -> str | None:
    """The name httprs presents as (logger, `__module__`), None while undecided.

    `primary` if given. Else, among the routed names the program has imported: httpx2 if
    it is one of them (SDKs built on httpx2 reject objects whose class module is `httpx`),
    else httpx. Before either is imported: the routed name if only one is routed, else
    undecided (nothing is changed yet)."""
    if primary is not None:
        return primary
    candidates = [n for n in imported if n in names] or (list(names) if len(names) == 1 else [])
    if not candidates:
        return None
    return "httpx2" if "httpx2" in candidates else "httpx"


def _present_as(identity: str | None) -> None:
    if identity is not None and identity != _state["primary"]:
        _state["primary"] = identity
        _set_logger(identity)
        _set_class_modules(identity)
        _set_client_defaults(identity)


# httpx 0.28.1 and httpx2 2.17.0 decode br and zstd through optional packages and list a
# coding in their default Accept-Encoding only when one of its packages imports
# (`_decoders.py`). httprs decodes all four natively; presented as one of them it asks for
# what that library would in this environment, so servers, and tests that compare request
# heads, see the same header. Responses in any of the four codings are still decoded.
_CODING_PACKAGES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "httpx": (("br", ("brotli", "brotlicffi")), ("zstd", ("zstandard",))),
    "httpx2": (
        ("br", ("brotli", "brotlicffi")),
        ("zstd", ("compression.zstd" if sys.version_info >= (3, 14) else "backports.zstd",)),
    ),
}


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package, a broken spec
        return False


def presented_accept_encoding(name: str) -> str:
    """The default Accept-Encoding of the library `name` ("httpx" or "httpx2") here."""
    codings = ["gzip", "deflate"]
    for coding, packages in _CODING_PACKAGES[name]:
        if any(_importable(package) for package in packages):
            codings.append(coding)
    return ", ".join(codings)


def presented_user_agent(name: str) -> str:
    """The default User-Agent of the library `name` ("httpx" or "httpx2")."""
    return f"python-{name}/{face(name)['__version__']}"


def _set_client_defaults(primary: str) -> None:
    """Give `_client`'s default User-Agent and Accept-Encoding the presented library's
    values, so servers, mocks and tests that compare request heads see what it sends."""
    from httprs import _client

    presented = {
        "USER_AGENT": (presented_user_agent(primary), _client._NATIVE_USER_AGENT),
        "ACCEPT_ENCODING": (presented_accept_encoding(primary), _client._NATIVE_ACCEPT_ENCODING),
    }
    given: dict[str, str] = _state["client_defaults"]
    for attr, (value, native) in presented.items():
        # A value the program set (`httpx._client.USER_AGENT = ...`) is left alone.
        if getattr(_client, attr) == given.get(attr, native):
            given[attr] = value
            setattr(_client, attr, value)


def _imported(name: str) -> None:
    """The stand-in for `name` was just imported: the presented name may follow it."""
    if name not in _state["imported"]:
        _state["imported"] = (*_state["imported"], name)
    _present_as(_identity(_state["names"], _state["explicit_primary"], _state["imported"]))


def install(names: Iterable[str] | None = None, *, primary: str | None = None) -> None:
    """Route `import <name>` and its private submodules to httprs for the rest of the process.

    `names` is any of "httpx" and "httpx2"; by default both, each standing in only as long
    as its real package is installed or neither is (decided at its import: see
    `_absent_by_default`). The *primary* name is the one httprs presents
    as: its logger and, for plain classes, its `__module__`. It is `primary` if given (one
    of the routed names). Otherwise it follows what the program imports: "httpx" once
    `import httpx` has run, and "httpx2" as soon as `import httpx2` has run, whichever came
    first (current SDKs built on httpx2, openai 3 and anthropic 2, refuse objects whose
    class module is `httpx`, so in a process that imports both httpx2 wins). With a single
    routed name it is that name from the start; with both routed and neither imported yet,
    nothing is renamed until the first import.
    Calling it again with names already routed is a no-op; adding a name later is allowed
    (the primary name is then recomputed, unless given earlier).
    Raises `AlreadyImportedError` if a name's real module was imported first, and
    ValueError for a name httprs does not stand in for.
    """
    defaulted = names is None
    names = tuple(dict.fromkeys(("httpx", "httpx2") if names is None else names))
    if not names:
        raise ValueError("install() needs at least one name")
    for name in names:
        if name not in FACES:
            raise ValueError(f"httprs cannot stand in for {name!r} (only {sorted(FACES)})")
    all_names = tuple(_state["names"]) + tuple(n for n in names if n not in _state["names"])
    if primary is not None and primary not in all_names:
        raise ValueError(f"primary={primary!r} is not one of the routed names {all_names}")
    new = all_names[len(_state["names"]) :]
    for name in new:
        _check_not_imported(name)
    if new:
        for finder in [f for f in sys.meta_path if isinstance(f, _Finder)]:
            sys.meta_path.remove(finder)
        sys.meta_path.insert(0, _Finder(all_names))
        _state["names"] = all_names
    if defaulted:
        _state["by_default"].update(new)
    else:
        _state["by_default"].difference_update(names)
    if primary is not None:
        _state["explicit_primary"] = primary
    _present_as(_identity(all_names, _state["explicit_primary"], _state["imported"]))


class _AliasLoader(importlib.abc.Loader):
    """Gives the already-resolved module `real_name` under an alias name."""

    def __init__(self, real_name: str) -> None:
        self._real_name = real_name
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self._real_name)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self._spec  # the module keeps its own name and spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    """httpx2's `alias_httpx()` finder (same name and constructor as httpx2's): `alias` and
    `alias.<sub>` import as the very modules `real` and `real.<sub>`."""

    def __init__(self, alias: str = "httpx", real: str = "httpx2") -> None:
        self._alias = alias
        self._real = real

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._alias and not fullname.startswith(self._alias + "."):
            return None
        real_name = self._real + fullname[len(self._alias) :]
        if real_name not in sys.modules and importlib.util.find_spec(real_name) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(real_name))


def alias_httpx() -> None:
    """httpx2's switch, on httprs: route `httpx2` to httprs, and make `import httpx` (and
    `import httpx.<sub>`) give the very `httpx2` module (and submodules), as httpx2's
    `alias_httpx()` does, so code importing httpx shares httpx2's objects.

    Must be called before anything imports the real httpx (RuntimeError otherwise, with
    httpx2's message); an `httpx` already routed to httprs is replaced by the `httpx2` one
    (same classes either way). Calling it again is a no-op. httprs presents as httpx2 (the
    caller is an httpx2 user). As httpx2's, it also makes `import httpcore` give the very
    `httpcore2` (so respx or any code patching httpcore's classes patches httpcore2's,
    which httprs notices), refusing with httpx2's message once another httpcore was
    imported; unlike httpx2's, only when httpcore2 is installed (httprs sends through
    neither, and needs neither).
    """
    existing = sys.modules.get("httpx")
    if existing is not None and not is_stand_in(existing):
        raise AlreadyImportedError(
            "httpx was already imported; call `alias_httpx()` before any `import httpx`."
        )
    httpcore2 = _optional_module("httpcore2")
    existing = sys.modules.get("httpcore")
    if httpcore2 is not None and existing is not None and existing is not httpcore2:
        raise AlreadyImportedError(
            "httpcore was already imported; call `alias_httpx()` before any `import httpcore`."
        )
    install(("httpx2", "httpx"), primary=_state["explicit_primary"] or "httpx2")
    httpx2 = importlib.import_module("httpx2")
    from httprs._status_codes import codes

    if codes.__module__ == "httpx":
        # httpx's codes are no longer `httpx.codes` (httpx2's are): pickles find them
        # where they are defined.
        codes.__module__ = "httprs._status_codes"
    _alias_module("httpx", httpx2)
    if httpcore2 is not None:
        _alias_module("httpcore", httpcore2)


def _alias_module(alias: str, module: types.ModuleType) -> None:
    """`import alias` (and `alias.<sub>`) gives `module` (and its submodules)."""
    if not any(isinstance(f, _AliasFinder) and f._alias == alias for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder(alias, module.__name__))
    sys.modules[alias] = module


def _optional_module(name: str) -> types.ModuleType | None:
    """Module `name`, imported, or None when it is not installed (or blocked)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None

"""The zero-code switch: HTTPRS_INSTALL read at interpreter start-up by `httprs-install.pth`.

The wheel installs `httprs-install.pth` into site-packages. Python's `site` module runs
its one line at every start-up of that environment; the line only reads the environment
variable and imports this module when it is set, so an unset variable costs one
dictionary lookup. Values:

    HTTPRS_INSTALL=1 (or "true", "yes")   route those of httpx and httpx2 that are
                                          installed (both when neither is)
    HTTPRS_INSTALL=httpx                  route only these names (comma-separated)
    HTTPRS_INSTALL=0 / "" / unset         do nothing
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "HTTPRS_INSTALL"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def default_names() -> tuple[str, ...]:
    """The names routed when none are named: those of httpx and httpx2 whose real package
    is installed, so that a library probing `import httpx2` before falling back to httpx
    finds what it would find without httprs (and the process presents as the library it
    has); both when neither is (httprs alone stands in for them)."""
    from importlib.machinery import PathFinder

    found = tuple(
        name
        for name in ("httpx", "httpx2")
        if sys.modules.get(name) is not None or PathFinder.find_spec(name) is not None
    )
    return found or ("httpx", "httpx2")


def names_from_env(value: str) -> tuple[str, ...]:
    """The names an HTTPRS_INSTALL value asks for (empty: switch off)."""
    value = value.strip().lower()
    if value in _FALSE:
        return ()
    if value in _TRUE:
        return default_names()
    return tuple(n.strip() for n in value.split(",") if n.strip())


def from_env() -> None:
    """Install the switch if HTTPRS_INSTALL asks for it; report failure on stderr."""
    names = names_from_env(os.environ.get(ENV_VAR, ""))
    if not names:
        return
    try:
        from httprs._alias import install

        install(names)
    except Exception as exc:  # start-up must not die, but the user must know
        print(f"httprs: {ENV_VAR}={os.environ.get(ENV_VAR)!r} not applied: {exc}", file=sys.stderr)

"""The zero-code switch: HTTPRS_INSTALL read at interpreter start-up by `httprs-install.pth`.

The wheel installs `httprs-install.pth` into site-packages. Python's `site` module runs
its one line at every start-up of that environment; the line only reads the environment
variable and imports this module when it is set, so an unset variable costs one
dictionary lookup. Values:

    HTTPRS_INSTALL=1 (or "true", "yes")   install()'s default: httpx and httpx2, each
                                          as long as it is installed or neither is
    HTTPRS_INSTALL=httpx                  route only these names (comma-separated)
    HTTPRS_INSTALL=0 / "" / unset         do nothing
"""

from __future__ import annotations

import os
import sys

ENV_VAR = "HTTPRS_INSTALL"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def names_from_env(value: str) -> tuple[str, ...] | None:
    """The names an HTTPRS_INSTALL value asks for: empty for the switch off, None for
    install()'s default names."""
    value = value.strip().lower()
    if value in _FALSE:
        return ()
    if value in _TRUE:
        return None
    return tuple(n.strip() for n in value.split(",") if n.strip())


def from_env() -> None:
    """Install the switch if HTTPRS_INSTALL asks for it; report failure on stderr."""
    names = names_from_env(os.environ.get(ENV_VAR, ""))
    if names == ():
        return
    try:
        from httprs._alias import install

        install(names)
    except Exception as exc:  # start-up must not die, but the user must know
        print(f"httprs: {ENV_VAR}={os.environ.get(ENV_VAR)!r} not applied: {exc}", file=sys.stderr)

"""Run a program with `import httpx` / `import httpx2` routed to httprs, without editing it.

    python -m httprs.run app.py [args...]
    python -m httprs.run -m package.module [args...]
    python -m httprs.run -m pytest tests/

It calls `httprs.install()` (names from HTTPRS_INSTALL if set, else its default ones),
then runs the script or module as `__main__`, as `python app.py` / `python -m` would.
It also exports HTTPRS_INSTALL, so Python subprocesses the program starts (pytest-xdist
workers, multiprocessing spawn children) are switched too when the `.pth` hook is present
(see httprs._autoinstall).
"""

from __future__ import annotations

import os
import runpy
import sys

from httprs._autoinstall import ENV_VAR, names_from_env

USAGE = "usage: python -m httprs.run (script.py | -m module) [args...]"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        raise SystemExit(0 if args else 2)
    names = names_from_env(os.environ.get(ENV_VAR, "")) or None

    from httprs._alias import install

    install(names)
    os.environ[ENV_VAR] = ",".join(names) if names else "1"
    if args[0] == "-m":
        if len(args) < 2:
            print(USAGE, file=sys.stderr)
            raise SystemExit(2)
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        runpy.run_path(args[0], run_name="__main__")


if __name__ == "__main__":
    main()

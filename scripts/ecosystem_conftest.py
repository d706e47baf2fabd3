"""pytest plugin loaded with `-p ecosystem_conftest` into every ecosystem suite run.

It does three things, steered by environment variables the harness sets:

* HTTPRS_ECOSYSTEM_MODE=experiment: make sure `httpx` (and `httpx2`) resolve to httprs
  through httprs's public switch, `httprs.install()`, with the names in HTTPRS_INSTALL
  (the target's `switch`).
  Normally the switch is already on: the harness sets HTTPRS_INSTALL and the httprs wheel's
  start-up hook (httprs-install.pth) installed it before pytest started. If the real httpx
  was imported before the switch (an earlier .pth file, say), it is evicted from
  sys.modules, the switch is installed and module globals bound to the old module are
  re-pointed. If that cannot be achieved the run stops with a usage error instead of
  silently measuring httpx.
* HTTPRS_ECOSYSTEM_REPORT=<file>: append one JSON line per interesting test phase
  (controller side only under xdist) -- node id, phase, outcome, a root-cause string for
  failures, whether the test uses respx -- so the harness can compare runs per test id,
  show progress while the suite runs, and keep partial results after a timeout.
* Failure causes are computed from the live exception on the side that ran the test and
  travel to the controller in `report.user_properties`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import types

import pytest

_MODE = os.environ.get("HTTPRS_ECOSYSTEM_MODE", "baseline")
_REPORT = os.environ.get("HTTPRS_ECOSYSTEM_REPORT", "")
_STAND_IN_MARKER = "__httprs__"  # set by httprs.install() on the modules it provides

_CAUSE_KEY = "ecosystem_cause"
_RESPX_KEY = "ecosystem_respx"
_MAX_LONGREPR = 4000

# What happened while making the switch win (reported in the start record).
_displaced: list[str] = []


def _is_shim(module: object) -> bool:
    """True if `module` is httprs standing in for httpx (httprs.install()'s module)."""
    return getattr(module, _STAND_IN_MARKER, False) is True


def _switch_names() -> list[str]:
    value = os.environ.get("HTTPRS_INSTALL", "").strip()
    if value in ("", "0", "1", "true", "yes", "on"):
        return ["httpx", "httpx2"]
    return [n.strip() for n in value.split(",") if n.strip()]


def _ensure_shim() -> types.ModuleType:
    """Make `import httpx` return httprs's stand-in (httprs.install()); return it."""
    names = _switch_names()
    old = sys.modules.get("httpx")
    if old is not None and not _is_shim(old):
        for name in [n for n in sys.modules if n.partition(".")[0] in names]:
            del sys.modules[name]
        _displaced.append(f"real httpx was imported first from {getattr(old, '__file__', '?')}")
    try:
        import httprs  # noqa: PLC0415

        httprs.install(names)
    except Exception as exc:
        raise pytest.UsageError(f"httprs.install({names}) failed: {exc!r}") from exc
    import httpx  # noqa: PLC0415  (httprs's stand-in, now)

    if not _is_shim(httpx):
        raise pytest.UsageError(
            f"httpx resolves to {getattr(httpx, '__file__', '?')}, not httprs's switch"
        )
    if old is not None and old is not httpx:
        # Modules that did `import httpx` before us hold the real module: re-point them.
        for mod in list(sys.modules.values()):
            namespace = getattr(mod, "__dict__", None)
            if not isinstance(namespace, dict) or mod is httpx:
                continue
            for key, value in list(namespace.items()):
                if value is old:
                    namespace[key] = httpx
                    _displaced.append(f"re-pointed {mod.__name__}.{key}")
    return httpx


if _MODE == "experiment":
    _ensure_shim()


# --------------------------------------------------------------------------------------
# Root causes


_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUM = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def normalise_message(text: str, limit: int = 160) -> str:
    """First line of an error message with addresses and numbers blurred, for grouping."""
    line = ""
    for candidate in text.strip().splitlines():
        if candidate.strip():
            line = candidate.strip()
            break
    line = _HEX.sub("<hex>", line)
    line = _NUM.sub("N", line)
    line = _SPACE.sub(" ", line)
    return line[:limit]


def is_httprs_path(path: str) -> bool:
    """True for a frame inside httprs (installed package, .pyx source)."""
    norm = path.replace("\\", "/")
    if norm.endswith((".pyx", ".pxd", ".pxi")):
        return True
    parts = norm.split("/")
    return "httprs" in parts[:-1]


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__ or ""
    if module in ("builtins", "__main__", ""):
        return cls.__qualname__
    return f"{module.split('.')[0]}.{cls.__qualname__}"


def cause_from_exception(exc: BaseException, frames: list[tuple[str, int, str]]) -> str:
    """Root-cause key: exception type and message, plus the innermost httprs frame.

    `frames` is the traceback as (path, line, function), outermost first.
    """
    name = exception_name(exc)
    message = normalise_message(str(exc))
    where = ""
    for path, _line, func in reversed(frames):
        if is_httprs_path(path):
            where = f"{_short_path(path)}:{func}"
            break
    cause = f"{name}: {message}" if message else name
    if where:
        cause += f" [in {where}]"
    return cause


def _short_path(path: str) -> str:
    norm = path.replace("\\", "/")
    parts = norm.split("/")
    for anchor in ("httprs", "httpx"):
        if anchor in parts[:-1]:
            idx = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[idx:])
    return parts[-1]


_E_LINE = re.compile(r"^E\s{1,6}(\S.*)$")
_EXC_LINE = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Timeout))\b:?(.*)$"
)


_NATIVE_FRAME = re.compile(r'^\s*File "([^"]+)", line \d+, in (\S+)')
_SHORT_FRAME = re.compile(r"^(\S+):\d+: in (\S+)")


def _httprs_frame_in_text(lines: list[str]) -> str:
    """'path:function' of the innermost httprs frame of a rendered traceback, or ''."""
    for line in reversed(lines):
        m = _NATIVE_FRAME.match(line) or _SHORT_FRAME.match(line)
        if m and is_httprs_path(m.group(1)):
            return f"{_short_path(m.group(1))}:{m.group(2)}"
    return ""


def cause_from_text(text: str) -> str:
    """Best-effort root cause from a rendered traceback (collection errors, crashes),
    in the same form as cause_from_exception."""
    cause = _cause_from_text(text)
    where = _httprs_frame_in_text(text.splitlines())
    return f"{cause} [in {where}]" if where else cause


def _cause_from_text(text: str) -> str:
    lines = text.splitlines()
    e_lines = [m.group(1) for m in map(_E_LINE.match, lines) if m]
    for line in e_lines:
        m = _EXC_LINE.match(line.strip())
        if m:
            name = m.group(1).rsplit(".", 1)[-1] if "." in m.group(1) else m.group(1)
            msg = normalise_message(m.group(2).lstrip(": "))
            return f"{name}: {msg}" if msg else name
    if e_lines:
        return normalise_message(e_lines[0])
    for line in reversed(lines):
        m = _EXC_LINE.match(line.strip())
        if m:
            name = m.group(1).rsplit(".", 1)[-1]
            msg = normalise_message(m.group(2).lstrip(": "))
            return f"{name}: {msg}" if msg else name
    return normalise_message(lines[-1]) if lines else "unknown error"


def _from_respx(value: object) -> bool:
    if isinstance(value, types.ModuleType):
        return value.__name__.split(".")[0] == "respx"
    return (getattr(value, "__module__", None) or "").split(".")[0] == "respx"


def _uses_respx(item: pytest.Item) -> bool:
    """Does this test mock with respx (fixture, marker, decorator, or names in its body)?"""
    if "respx_mock" in getattr(item, "fixturenames", ()):
        return True
    if item.get_closest_marker("respx") is not None:
        return True
    func = getattr(item, "obj", None)
    seen = 0
    while func is not None and seen < 5:  # through decorators such as @respx.mock
        code = getattr(func, "__code__", None)
        if code is not None:
            if "/respx/" in code.co_filename.replace("\\", "/"):
                return True
            namespace = getattr(func, "__globals__", {})
            if any(_from_respx(namespace.get(name)) for name in code.co_names):
                return True
        func = getattr(func, "__wrapped__", None)
        seen += 1
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    extra = []
    excinfo = call.excinfo
    frames: list[tuple[str, int, str]] = []
    if excinfo is not None:
        tb = excinfo.tb
        while tb is not None:
            code = tb.tb_frame.f_code
            frames.append((code.co_filename, tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        cause = cause_from_exception(excinfo.value, frames)
        if isinstance(excinfo.value, AssertionError) and not any(
            is_httprs_path(f[0]) for f in frames
        ):
            cause = "AssertionError: " + normalise_message(str(excinfo.value) or "assert")
    else:
        cause = cause_from_text(getattr(report, "longreprtext", "") or "")
    extra.append((_CAUSE_KEY, cause))
    try:
        if _uses_respx(item) or any("/respx/" in f[0].replace("\\", "/") for f in frames):
            extra.append((_RESPX_KEY, "1"))
    except Exception:  # noqa: BLE001  (a triage hint must never break the run)
        pass
    report.user_properties = [*report.user_properties, *extra]


# --------------------------------------------------------------------------------------
# The JSON-lines record (controller / non-xdist process only)


class _Recorder:
    def __init__(self, path: str) -> None:
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()


_recorder: _Recorder | None = None


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config):
    global _recorder
    if not _REPORT or _is_worker(config) or _recorder is not None:
        return
    _recorder = _Recorder(_REPORT)
    httpx_mod = sys.modules.get("httpx")
    if httpx_mod is None and _MODE == "experiment":
        httpx_mod = _ensure_shim()
    _recorder.write({
        "event": "start",
        "mode": _MODE,
        "time": time.time(),
        "pid": os.getpid(),
        "python": sys.version.split()[0],
        "httpx_file": getattr(httpx_mod, "__file__", None),
        "httpx_is_shim": _is_shim(httpx_mod) if httpx_mod is not None else None,
        "displaced": list(_displaced),
    })


def pytest_report_header(config):
    httpx_mod = sys.modules.get("httpx")
    where = getattr(httpx_mod, "__file__", "not imported yet")
    return f"httprs ecosystem harness: mode={_MODE}, httpx={where}"


def _props(report) -> dict:
    return dict(getattr(report, "user_properties", ()) or ())


def _longrepr(report) -> str:
    text = getattr(report, "longreprtext", "") or ""
    if len(text) > _MAX_LONGREPR:
        text = text[: _MAX_LONGREPR // 2] + "\n...\n" + text[-_MAX_LONGREPR // 2 :]
    return text


def pytest_collection_finish(session):
    if _recorder is not None:
        _recorder.write({"event": "collected", "count": len(session.items)})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    if _recorder is not None:
        _recorder.write({"event": "collected", "count": len(ids), "node": str(node.gateway.id)})


def pytest_collectreport(report):
    if _recorder is None or not report.failed:
        return
    text = _longrepr(report)
    _recorder.write({
        "event": "collect",
        "nodeid": report.nodeid,
        "outcome": "error",
        "cause": cause_from_text(text),
        "longrepr": text,
    })


def pytest_runtest_logreport(report):
    if _recorder is None:
        return
    when = report.when
    wasxfail = hasattr(report, "wasxfail")
    if when == "setup" and report.passed:
        return
    if when == "teardown" and not report.failed:
        return
    props = _props(report)
    record = {
        "event": "test",
        "nodeid": report.nodeid,
        "when": when,
        "outcome": report.outcome,
        "xfail": wasxfail,
        "duration": round(getattr(report, "duration", 0.0), 4),
    }
    if report.failed:
        record["cause"] = props.get(_CAUSE_KEY) or cause_from_text(_longrepr(report))
        record["respx"] = props.get(_RESPX_KEY) == "1"
        record["longrepr"] = _longrepr(report)
    _recorder.write(record)


def pytest_sessionfinish(session, exitstatus):
    if _recorder is not None:
        httpx_mod = sys.modules.get("httpx")
        _recorder.write({
            "event": "finish",
            "exitstatus": int(exitstatus),
            "time": time.time(),
            "httpx_file": getattr(httpx_mod, "__file__", None),
            "httpx_is_shim": _is_shim(httpx_mod) if httpx_mod is not None else None,
        })


def pytest_unconfigure(config):
    global _recorder
    if _recorder is not None and not _is_worker(config):
        _recorder.close()
        _recorder = None

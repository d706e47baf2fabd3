"""Static typing: the stubs match the compiled modules, user code type-checks.

Three tools run (in parallel, as subprocesses) against the stubs in the source tree:

* `python -m mypy.stubtest httprs`: every stub matches what the runtime modules define
  (names, signatures, async-ness, properties); the allowlist is
  tests/typing/stubtest_allowlist.txt, each entry commented.
* `mypy --strict` over the package itself (stubs and inline-typed Python modules) and
  over tests/typing/corpus (typical user code, including `import httprs as httpx`
  code) and tests/typing/rejected (misuse, each line marked `# rejected`).
* basedpyright (pyright, in strict mode) over the same corpus and rejected code.

The corpus must be clean; in the rejected file, exactly the marked lines must be errors,
which proves the checkers read httprs's annotations rather than seeing `Any`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
CORPUS = TYPING / "corpus"
REJECTED = TYPING / "rejected"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.timeout(300)


def _marked_lines() -> set[tuple[str, int]]:
    marked = set()
    for path in REJECTED.glob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.rstrip().endswith("# rejected"):
                marked.add((path.name, number))
    return marked


class _Tool:
    """A checker started in the background; `result()` waits for it."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._out: str | None = None

    def result(self) -> tuple[int, str]:
        if self._out is None:
            self._out, _ = self.proc.communicate(timeout=280)
        return self.proc.returncode, self._out


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    """Start the three checkers at once; each test waits only for its own."""
    tmp = tmp_path_factory.mktemp("typing")
    env = dict(os.environ)
    # The checkers read the stubs from the source tree (the editable install's import
    # hook is invisible to them); the runtime that stubtest imports is the built package,
    # found through that hook (cwd is a scratch directory, not the source tree).
    env["MYPYPATH"] = str(ROOT)
    env.pop("PYTHONPATH", None)
    # mypy and pyright never import httprs: they run without a sanitizer runtime that
    # `test-asan` preloads (node's own leaks at exit would follow pyright's JSON).
    # stubtest imports the built package, so it keeps it.
    checker_env = {k: v for k, v in env.items() if k != "LD_PRELOAD"}
    started = {
        "stubtest": _Tool(
            [
                sys.executable,
                "-m",
                "mypy.stubtest",
                "httprs",
                "--allowlist",
                str(TYPING / "stubtest_allowlist.txt"),
                *(
                    ["--allowlist", str(TYPING / "stubtest_allowlist_py313.txt")]
                    if sys.version_info >= (3, 13)
                    else []
                ),
                "--mypy-config-file",
                str(TYPING / "mypy.ini"),
            ],
            tmp,
            env,
        ),
        "mypy": _Tool(
            [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(TYPING / "mypy.ini"),
                "--strict",
                "--cache-dir",
                str(tmp / "mypy-cache"),
                "--no-error-summary",
                "--show-absolute-path",
                str(ROOT / "httprs"),
                str(CORPUS),
                str(REJECTED),
            ],
            tmp,
            checker_env,
        ),
        "pyright": _Tool(
            [
                str(BIN / "basedpyright"),
                "-p",
                str(TYPING / "pyrightconfig.json"),
                # the test environment's packages (anyio, wsproto, ...), as mypy sees them
                "--pythonpath",
                sys.executable,
                "--outputjson",
            ],
            tmp,
            checker_env,
        ),
    }
    yield started
    for tool in started.values():
        if tool.proc.poll() is None:
            tool.proc.kill()
            tool.proc.wait()


def test_stubtest_passes(tools):
    code, out = tools["stubtest"].result()
    assert code == 0, out
    assert "Success" in out, out


def _split_mypy(out: str) -> tuple[list[str], set[tuple[str, int]]]:
    """(errors outside tests/typing/rejected, rejected (file, line) pairs)."""
    elsewhere, rejected = [], set()
    for line in out.splitlines():
        m = re.match(r"(.+?):(\d+): error: ", line)
        if m is None:
            continue
        path = Path(m.group(1))
        if path.parent == REJECTED:
            rejected.add((path.name, int(m.group(2))))
        else:
            elsewhere.append(line)
    return elsewhere, rejected


def test_mypy_strict(tools):
    code, out = tools["mypy"].result()
    elsewhere, rejected = _split_mypy(out)
    assert elsewhere == [], out
    assert rejected == _marked_lines(), out
    assert code == 1  # the rejected file has errors, nothing else does


def test_pyright_strict(tools):
    code, out = tools["pyright"].result()
    report = json.loads(out[out.index("{") :])
    assert report["summary"]["filesAnalyzed"] >= len(list(CORPUS.glob("*.py"))) + 1
    elsewhere, rejected = [], set()
    for diag in report["generalDiagnostics"]:
        if diag["severity"] != "error":
            elsewhere.append(diag)
            continue
        path = Path(diag["file"])
        if path.parent == REJECTED:
            rejected.add((path.name, diag["range"]["start"]["line"] + 1))
        else:
            elsewhere.append(diag)
    assert elsewhere == [], json.dumps(elsewhere, indent=1)
    assert rejected == _marked_lines(), json.dumps(report["generalDiagnostics"], indent=1)
    assert code == 1


def test_marked_lines_exist():
    """The rejected corpus is not empty (else the checks above prove nothing)."""
    assert len(_marked_lines()) >= 10


def _compiled_modules() -> list[str]:
    text = (ROOT / "httprs" / "meson.build").read_text()
    block = text[text.index("httprs_modules = [") :]
    block = block[: block.index("]")]
    return re.findall(r"'(\w+)'", block)


def test_every_compiled_module_has_a_stub():
    for module in _compiled_modules():
        assert (ROOT / "httprs" / f"{module}.pyi").is_file(), f"httprs/{module}.pyi is missing"


def test_stubs_and_marker_are_installed():
    """meson's install plan (what the wheel holds) has py.typed and every stub."""
    # scripts/dev.sh's build directory: the editable build's (build/cpXY, one per Python
    # version, or HTTPRS_BUILD_DIR's: test-python's chroots), or the sanitizer build's
    # that `test-asan` / `test-tsan` installed and run.
    build = (
        "build/asan"
        if os.environ.get("HTTPRS_ASAN") == "1"
        else "build/tsan"
        if os.environ.get("HTTPRS_TSAN") == "1"
        else os.environ.get("HTTPRS_BUILD_DIR")
        or f"build/cp{sys.version_info[0]}{sys.version_info[1]}"
    )
    plan = ROOT / build / "meson-info" / "intro-installed.json"
    assert plan.is_file(), f"{plan} is missing: build with scripts/dev.sh first"
    installed = {Path(dest).as_posix() for dest in json.loads(plan.read_text()).values()}
    wanted = ["py.typed"] + sorted(p.name for p in (ROOT / "httprs").glob("*.pyi"))
    for name in wanted:
        assert any(dest.endswith(f"/httprs/{name}") for dest in installed), (
            f"httprs/{name} is not installed (add it to httprs/meson.build)"
        )

"""The pinned third-party suites the ecosystem harness runs (see issue 5 and
shared/reference/ecosystem.md for why each pin, flag and dependency is what it is)."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the harness runs on 3.11+
    tomllib = None

# Every target venv gets these on top of the target's own test dependencies:
# real httpx 0.28.1 (the baseline; respx and friends also need httpcore), and
# pytest-timeout so one hung test cannot eat the whole suite's time budget.
COMMON_DEPS = ("httpx==0.28.1", "httpcore", "pytest-timeout")

# Linters and type checkers pinned in the SDKs' dev locks; no test imports them.
LOCK_EXCLUDE = frozenset({"mypy", "mypy-extensions", "pyright", "ruff", "nox", "nodeenv"})


@dataclass(frozen=True)
class Target:
    name: str
    dist: str  # PyPI distribution name
    version: str  # pinned release
    git_url: str  # for --source git (machines that reach the forge)
    git_ref: str
    pytest_args: tuple[str, ...]
    deps: Callable[[Path], list[str]]  # requirement lines, given the checkout
    install_self: str | None = "."  # pip target relative to the checkout, None: not needed
    env: dict[str, str] = field(default_factory=dict)
    unset_env: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None
    notes: str = ""
    # The names the experiment routes to httprs (HTTPRS_INSTALL, read by httprs's start-up
    # hook): "httpx" for httpx-era targets, "httpx2,httpx" for targets built on httpx2.
    switch: str = "httpx"


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(line: str) -> str:
    m = _REQ_NAME.match(line)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else ""


def lock_requirements(lock_text: str, exclude: frozenset[str] = LOCK_EXCLUDE) -> list[str]:
    """Requirement lines of a rye/uv `requirements-dev.lock`, minus editable self-installs,
    comments and the excluded tools. Environment markers are kept for pip to evaluate."""
    out = []
    for raw in lock_text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or raw[:1].isspace() or line.startswith("-"):
            continue
        if requirement_name(line) in exclude:
            continue
        out.append(line)
    return out


def _lock_deps(checkout: Path) -> list[str]:
    lock = checkout / "requirements-dev.lock"
    if not lock.is_file():
        raise FileNotFoundError(f"{lock} is missing (the sdist is expected to ship it)")
    return lock_requirements(lock.read_text(encoding="utf-8"))


# Type checkers and their stubs in the uv dependency groups; no test imports them.
UV_EXCLUDE = frozenset({"ty", "pandas-stubs"}) | LOCK_EXCLUDE


def uv_requirements(pyproject_text: str, lock_text: str) -> list[str]:
    """Test requirements of a uv project (no requirements-dev.lock): the `[tool.uv]`
    default dependency groups of pyproject.toml, each pinned to its uv.lock version when
    the lock holds exactly one; pip resolves what they pull in. Markers are kept."""
    data = tomllib.loads(pyproject_text)
    groups = data.get("tool", {}).get("uv", {}).get("default-groups", ["dev"])
    dep_groups = data.get("dependency-groups", {})
    versions: dict[str, set[str]] = {}
    for pkg in tomllib.loads(lock_text).get("package", []):
        if "version" in pkg:
            versions.setdefault(requirement_name(pkg["name"]), set()).add(pkg["version"])
    out = []
    for group in groups:
        for entry in dep_groups.get(group, []):
            if not isinstance(entry, str):
                continue  # {include-group = ...}
            name = requirement_name(entry)
            if name in UV_EXCLUDE or name.startswith("types-"):
                continue
            marker = entry.partition(";")[2].strip()
            pinned = versions.get(name, set())
            if len(pinned) == 1:
                entry = f"{name}=={next(iter(pinned))}" + (f" ; {marker}" if marker else "")
            if entry not in out:
                out.append(entry)
    return out


def _uv_deps(checkout: Path) -> list[str]:
    lock = checkout / "uv.lock"
    if not lock.is_file():
        raise FileNotFoundError(f"{lock} is missing (the sdist is expected to ship it)")
    return uv_requirements(
        (checkout / "pyproject.toml").read_text(encoding="utf-8"),
        lock.read_text(encoding="utf-8"),
    )


def _ptb_deps(checkout: Path) -> list[str]:
    data = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))
    group = data.get("dependency-groups", {}).get("tests")
    if not group:
        raise ValueError("python-telegram-bot's pyproject has no [dependency-groups] tests")
    return [g for g in group if isinstance(g, str)]


# httpx's test requirements live in its requirements.txt, which the sdist does not ship;
# these are the test-relevant pins of 0.28.1's requirements.txt.
HTTPX_TEST_DEPS = [
    "httpx[brotli,cli,http2,socks,zstd]==0.28.1",
    "chardet==5.2.0",
    # httpx[cli] allows any click 8; newer ones deprecate CliRunner.isolated_filesystem,
    # which test_main.py uses under filterwarnings=error. 8.1.7 was current at 0.28.1.
    "click==8.1.7",
    "cryptography==44.0.0",
    "pytest==8.3.4",
    "trio==0.27.0",
    "trustme==1.2.0",
    "uvicorn==0.32.1",
]


def _httpx_deps(checkout: Path) -> list[str]:
    return list(HTTPX_TEST_DEPS)


def _httpx_prepare(checkout: Path) -> None:
    # The checkout root holds httpx's own source package, and pytest puts the root on
    # sys.path (tests/ is a package). Move it aside so both runs import installed code:
    # httpx 0.28.1 from PyPI (baseline) or httprs through its switch (experiment).
    src = checkout / "httpx"
    if src.is_dir():
        dest = checkout / "httpx-source-unused"
        if dest.exists():
            shutil.rmtree(dest)
        src.rename(dest)


# httpx2's repository (github.com/pydantic/httpx2) is a uv workspace: the packages live in
# src/httpx2 and src/httpcore2, their tests in tests/httpx2 and tests/httpcore2, and the
# test requirements in the root pyproject's `dev` dependency group. Its PyPI sdist (built
# from src/httpx2) ships no tests, so this target needs `--source git`, or `--source local`
# with a tree put at CHECKOUTS_DIR/httpx2 by hand (docs/compatibility.md says how).
HTTPX2_VERSION = "2.17.0"
# Not test requirements: linters, packaging, and the workspace's own packages (installed
# from PyPI at the pinned version instead, as the baseline).
HTTPX2_EXCLUDE = frozenset({"twine", "httpx2", "httpcore2"}) | UV_EXCLUDE


def httpx2_requirements(pyproject_text: str, lock_text: str | None) -> list[str]:
    """httpx2's `dev` group (pinned from uv.lock when it is there), minus tools and the
    workspace packages, plus httpx2 and httpcore2 from PyPI at the pinned version with
    the extras the group asks for."""
    data = tomllib.loads(pyproject_text)
    group = [e for e in data.get("dependency-groups", {}).get("dev", []) if isinstance(e, str)]
    versions: dict[str, set[str]] = {}
    for pkg in tomllib.loads(lock_text).get("package", []) if lock_text else []:
        if "version" in pkg:
            versions.setdefault(requirement_name(pkg["name"]), set()).add(pkg["version"])
    out = [
        f"httpx2[brotli,cli,http2,socks,ws,zstd]=={HTTPX2_VERSION}",
        f"httpcore2[asyncio,trio,http2,socks]=={HTTPX2_VERSION}",
    ]
    for entry in group:
        name = requirement_name(entry)
        if name in HTTPX2_EXCLUDE or name.startswith("types-"):
            continue
        marker = entry.partition(";")[2].strip()
        pinned = versions.get(name, set())
        if len(pinned) == 1:
            entry = f"{name}=={next(iter(pinned))}" + (f" ; {marker}" if marker else "")
        out.append(entry)
    return out


def _httpx2_deps(checkout: Path) -> list[str]:
    lock = checkout / "uv.lock"
    return httpx2_requirements(
        (checkout / "pyproject.toml").read_text(encoding="utf-8"),
        lock.read_text(encoding="utf-8") if lock.is_file() else None,
    )


def _httpx2_prepare(checkout: Path) -> None:
    if not (checkout / "tests" / "httpx2").is_dir():
        raise FileNotFoundError(
            f"{checkout} has no tests/httpx2: httpx2's sdist ships no tests; "
            "run this target with --source git (github.com/pydantic/httpx2), or with "
            "--source local and a checkout at that path"
        )


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="httpx",
            dist="httpx",
            version="0.28.1",
            git_url="https://github.com/encode/httpx.git",
            git_ref="0.28.1",
            pytest_args=("-m", "not network"),
            deps=_httpx_deps,
            install_self=None,
            prepare=_httpx_prepare,
            notes="httpx's own suite; its source dir is moved aside, the PyPI wheel is tested",
        ),
        Target(
            name="httpx2",
            dist="httpx2",
            version=HTTPX2_VERSION,
            git_url="https://github.com/pydantic/httpx2.git",
            git_ref=f"v{HTTPX2_VERSION}",
            # httpx2's own tests only: tests/httpcore2 tests httpcore2, which httprs does
            # not replace. The benchmarks need CodSpeed.
            pytest_args=("tests/httpx2", "-m", "not network and not benchmark"),
            deps=_httpx2_deps,
            install_self=None,
            prepare=_httpx2_prepare,
            switch="httpx2,httpx",
            notes="httpx2's own suite (git only: the sdist has no tests); PyPI wheels tested",
        ),
        Target(
            name="python-telegram-bot",
            dist="python-telegram-bot",
            version="22.8",
            git_url="https://github.com/python-telegram-bot/python-telegram-bot.git",
            git_ref="v22.8",
            pytest_args=(
                "-m",
                "not req",
                "--ignore=tests/test_official",
                # Two workers whatever CPUs the run may use: the suite's outcome depends
                # on how its tests share session-scoped fixtures (one worker under
                # `taskset -c 0` failed a test with httpx as with httprs).
                "-n",
                "2",
                "--dist",
                "worksteal",
            ),
            deps=_ptb_deps,
            install_self=".[all]",
            env={"TEST_WITH_OPT_DEPS": "true"},
            unset_env=("GITHUB_ACTIONS", "BOTS", "JOB_INDEX", "TEST_OFFICIAL", "TEST_BUILD"),
            notes="offline tests only; [all] extras so the HTTPXRequest tests run",
        ),
        Target(
            name="openai",
            dist="openai",
            version="2.54.0",
            git_url="https://github.com/openai/openai-python.git",
            git_ref="v2.54.0",
            pytest_args=("--ignore=tests/api_resources",),
            deps=_lock_deps,
            env={"DEFER_PYDANTIC_BUILD": "false"},
            unset_env=("OPENAI_LIVE", "OPENAI_TEST_HTTP_CLIENT", "TEST_API_BASE_URL"),
            notes="last release on httpx; api_resources need a mock server + unshipped spec",
        ),
        Target(
            name="anthropic",
            dist="anthropic",
            version="0.121.0",
            git_url="https://github.com/anthropics/anthropic-sdk-python.git",
            git_ref="v0.121.0",
            pytest_args=("--ignore=tests/api_resources",),
            deps=_lock_deps,
            unset_env=("TEST_API_BASE_URL", "ANTHROPIC_LIVE"),
            notes="newest 0.121 release (last line on httpx); api_resources need a mock server",
        ),
        Target(
            name="groq",
            dist="groq",
            version="1.7.0",
            git_url="https://github.com/groq/groq-python.git",
            git_ref="v1.7.0",
            pytest_args=("--ignore=tests/api_resources",),
            deps=_lock_deps,
            unset_env=("GROQ_API_KEY", "GROQ_BASE_URL", "TEST_API_BASE_URL"),
            notes="Stainless SDK on httpx (respx 0.22); api_resources need a mock server",
        ),
        Target(
            name="openai3",
            dist="openai",
            version="3.63.0",
            git_url="https://github.com/openai/openai-python.git",
            git_ref="v3.63.0",
            pytest_args=("--ignore=tests/api_resources",),
            deps=_uv_deps,
            # The extras' tests (realtime websockets, the aiohttp transports that subclass
            # httpx2's, the pandas/numpy helpers): ~2,400 more, many driving the client.
            install_self=".[realtime,aiohttp,datalib]",
            env={"DEFER_PYDANTIC_BUILD": "false"},
            unset_env=("OPENAI_LIVE", "OPENAI_TEST_HTTP_CLIENT", "TEST_API_BASE_URL"),
            switch="httpx2,httpx",
            notes="current release, on httpx2; its tests vendor respx2 (patches httpcore2)",
        ),
        Target(
            name="anthropic2",
            dist="anthropic",
            version="2.17.0",
            git_url="https://github.com/anthropics/anthropic-sdk-python.git",
            git_ref="v2.17.0",
            pytest_args=("--ignore=tests/api_resources",),
            deps=_lock_deps,
            # Bedrock's and Vertex's clients and the aiohttp transport: 234 more tests.
            install_self=".[aiohttp,bedrock,vertex]",
            unset_env=("TEST_API_BASE_URL", "ANTHROPIC_LIVE"),
            switch="httpx2,httpx",
            notes="current release, on httpx2; api_resources need a mock server",
        ),
    )
}

# Environment variables removed from every suite run: proxies (tests must stay on
# loopback) and CI switches that change what the suites select.
SCRUB_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PYTHONPATH",
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "VIRTUAL_ENV",
)

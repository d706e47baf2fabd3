"""One version, in meson.build's project(): the package metadata, httprs.__version__,
the User-Agent and the changelog all follow it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import httprs

pytestmark = pytest.mark.httprs_only

ROOT = Path(__file__).resolve().parent.parent


def meson_version() -> str:
    text = (ROOT / "meson.build").read_text()
    match = re.search(r"project\(\s*'httprs'.*?version:\s*'([^']+)'", text, re.S)
    assert match, "meson.build's project() declares the version"
    return match.group(1)


def test_version_is_meson_projects():
    version = meson_version()
    assert httprs.__version__ == version
    assert importlib.metadata.version("httprs") == version  # what `pip show` reports


def test_pyproject_declares_no_second_version():
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert "version" not in project
        assert "version" in project["dynamic"]
    assert not (ROOT / "httprs" / "_version.py").exists()  # generated at build time
    assert "@VERSION@" in (ROOT / "httprs" / "_version.py.in").read_text()


def test_user_agent_carries_the_version():
    client = httprs.Client()
    assert client.headers["User-Agent"] == f"python-httprs/{meson_version()}"
    client.close()


def test_user_agent_is_httprs_without_the_switch():
    """Without the switch httprs sends its own User-Agent, also in a process that
    imports the real httpx (only the switch presents httprs as httpx or httpx2:
    tests/test_switch.py::test_user_agent_is_the_presented_librarys)."""
    code = (
        "import httprs\n"
        "try:\n    import httpx\nexcept ImportError:\n    pass\n"
        "print(httprs.Client().headers['user-agent'], httprs.AsyncClient().headers['user-agent'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"python-httprs/{meson_version()}"] * 2


def test_changelog_has_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(meson_version())}\]?", changelog, re.M)


def test_description_names_both_protocols():
    """The package summary (`pip show httprs`) and `httprs.__description__` are one text,
    and it says the core speaks HTTP/2 too."""
    assert "HTTP/1.1 and HTTP/2" in httprs.__description__
    if sys.version_info >= (3, 11):
        import tomllib

        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        assert project["description"] == httprs.__description__


def test_changelog_unreleased_lists_the_new_features():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    unreleased = changelog.split("## Unreleased", 1)[1].split("\n## ", 1)[0]
    for feature in [
        "HTTP/2",
        "nghttp2.wrap",
        "server-sent events",
        "WebSockets",
        "httpx2 2.17.0",
        "network_stream",
        "stub",
    ]:
        assert feature.lower() in unreleased.lower(), feature


# GitHub-hosted runner labels that GitHub has retired: a job asking for one never starts.
RETIRED_RUNNERS = {"macos-11", "macos-12", "macos-13", "ubuntu-18.04", "ubuntu-20.04"}


def _workflow_runners(text: str) -> list[str]:
    labels = re.findall(r"\bruns-on:\s*([\w.-]+)", text)
    labels += re.findall(r"\bos:\s*([\w.-]+)", text)
    return labels


def test_workflows_use_live_runners():
    """Every runner label in .github/workflows exists (macos-13 was retired in December
    2025), and each macOS wheel job's deployment target is its runner's macOS version
    (delocate rejects Homebrew libraries built for a newer macOS than the target)."""
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        text = workflow.read_text()
        retired = set(_workflow_runners(text)) & RETIRED_RUNNERS
        assert not retired, f"{workflow.name} asks for retired runners {sorted(retired)}"
        for os_label, target in re.findall(
            r"os:\s*(macos-[\w.-]+),.*?macos:\s*\"([\d.]+)\"", text
        ):
            major = re.match(r"macos-(\d+)", os_label).group(1)
            assert target == f"{major}.0", (workflow.name, os_label, target)
    wheels = (ROOT / ".github" / "workflows" / "wheels.yml").read_text()
    assert "macos-15-intel" in wheels  # the x86_64 macOS wheel still has a runner
    assert "`macos-15-intel`" in (ROOT / "README.md").read_text()

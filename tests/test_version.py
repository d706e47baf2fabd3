"""One version, in meson.build's project(): the package metadata, httprs.__version__,
the User-Agent and the changelog all follow it."""

from __future__ import annotations

import importlib.metadata
import re
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


def test_changelog_has_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[?{re.escape(meson_version())}\]?", changelog, re.M)

"""meson.build's build options: the profile-guided build (`-Dpgo=generate|use`).

Each case configures the source tree into a scratch build directory (no compiling) and
reads the compiler commands meson wrote, so a broken option shows here rather than only
in the benchmark and wheel recipes that use it (scripts/dev.sh pgo).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MESON = Path(sys.executable).parent / "meson"


def _compiler_is_gcc() -> bool:
    cxx = os.environ.get("CXX", "c++").split()[0]
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0 and "Free Software Foundation" in out.stdout


pytestmark = [
    pytest.mark.skipif(
        not MESON.exists() and shutil.which("meson") is None, reason="meson is not installed"
    ),
    # -Dpgo is GCC's (meson.build refuses another compiler).
    pytest.mark.skipif(not _compiler_is_gcc(), reason="the C++ compiler is not GCC"),
]


def configure(build_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    meson = str(MESON) if MESON.exists() else "meson"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        [meson, "setup", str(build_dir), str(ROOT), *options],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def compile_commands(build_dir: Path) -> list[str]:
    """httprs's own compile commands: the core and the Cython modules (not a wrap's)."""
    entries = json.loads((build_dir / "compile_commands.json").read_text())
    return [
        e["command"]
        for e in entries
        if "/subprojects/" not in e["file"]
        and not e["file"].startswith("../subprojects/")
        and not e["command"].startswith("cython ")
    ]


def test_pgo_needs_an_absolute_profile_directory(tmp_path: Path) -> None:
    for options in (("-Dpgo=use",), ("-Dpgo=generate", "-Dpgo_dir=relative/profiles")):
        proc = configure(tmp_path / "b", *options)
        assert proc.returncode != 0
        assert "needs -Dpgo_dir=<absolute directory of the profiles>" in proc.stdout
        shutil.rmtree(tmp_path / "b", ignore_errors=True)


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ("generate", ["-fprofile-generate={dir}", "-fprofile-update=prefer-atomic"]),
        (
            "use",
            [
                "-fprofile-use={dir}",
                "-fprofile-partial-training",
                "-Werror=missing-profile",
                "-Wno-error=coverage-mismatch",
            ],
        ),
    ],
)
def test_pgo_stages_compile_every_module_with_the_profiles(
    tmp_path: Path, stage: str, expected: list[str]
) -> None:
    profiles = tmp_path / "profiles"
    build_dir = tmp_path / "build"
    proc = configure(build_dir, f"-Dpgo={stage}", f"-Dpgo_dir={profiles}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    commands = compile_commands(build_dir)
    # The core's C++ and every Cython module's generated C++.
    assert any("src/engine.cc" in c for c in commands)
    assert any("_models.pyx" in c for c in commands)
    for command in commands:
        for flag in expected:
            assert flag.format(dir=profiles) in command, command
        # Named inside the build directory: the wheel recipe compiles elsewhere.
        assert f"-fprofile-prefix-path={build_dir}" in command, command


def test_the_default_build_has_no_profile_flags(tmp_path: Path) -> None:
    proc = configure(tmp_path / "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [c for c in compile_commands(tmp_path / "build") if "-fprofile" in c]

"""Build and run the C++ unit test programs in tests/cpp against src/.

Each program is compiled with g++ (flags from pkg-config) into tmp_path and run;
the test fails when the program does not build or exits non-zero, and shows its
output. Nothing is skipped: a missing compiler or library is a failure.
"""

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CPP_TESTS = ROOT / "tests" / "cpp"
CXXFLAGS = ["-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{SRC}"]


def pkg_config(*packages: str) -> list[str]:
    out = subprocess.run(
        ["pkg-config", "--cflags", "--libs", *packages],
        check=True,
        capture_output=True,
        text=True,
    )
    return shlex.split(out.stdout)


def build(tmp_path: Path, name: str, sources: list[Path], packages: list[str]) -> Path:
    exe = tmp_path / name
    cmd = ["g++", *CXXFLAGS, *map(str, sources), "-o", str(exe), *pkg_config(*packages)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    return exe


def run(args: list[str], timeout: float = 90) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    print(output)
    assert proc.returncode == 0, f"{Path(args[0]).name} exited {proc.returncode}:\n{output}"
    assert " 0 failures" in proc.stdout, output
    return output


def test_decode(tmp_path: Path) -> None:
    exe = build(
        tmp_path,
        "test_decode",
        [CPP_TESTS / "test_decode.cc", SRC / "decode.cc"],
        ["zlib", "libbrotlienc", "libbrotlidec", "libzstd"],
    )
    run([str(exe)])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))

import subprocess
import sys


def test_import_from_any_directory(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import httprs; print(httprs.__version__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.1.0"


def test_runtime_check_refuses_old_libuv_and_lenient_llhttp():
    """httprs._core checks, when imported, the libuv loaded at run time (>= 1.44, see
    src/engine.cc) and that llhttp is strict; each failure is a clear ImportError."""
    import re
    from pathlib import Path

    import pytest

    from httprs import _core

    _core._check_runtime(0x012C00, True)  # 1.44.0, strict: fine
    _core._check_runtime(0x020000, True)
    with pytest.raises(ImportError, match=r"libuv >= 1\.44 \(found 1\.43\.0\)"):
        _core._check_runtime(0x012B00, True)
    with pytest.raises(ImportError, match="lenient llhttp"):
        _core._check_runtime(0x012C00, False)
    meson = (Path(__file__).resolve().parent.parent / "meson.build").read_text()
    assert re.search(r"dependency\('libuv', version: '>=1\.44'", meson)

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

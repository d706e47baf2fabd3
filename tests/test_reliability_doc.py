"""docs/reliability.md stays true: every catalog row is there, and every test it names exists.

The doc maps each row of the reliability catalog (issue 10) to the tests that pin it. A
renamed or deleted test, or a parametrised id that no longer exists, fails here; so does a
row that went missing, a row without a status, or five or more rows left "open".
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(\[[^\]`]+\])?`")
ROW = re.compile(r"^\| ([FCPDISLM]\d\d) \| [^|]+ \| ([^|]+) \|", re.M)
STATUSES = ("pinned", "decision", "script", "n/a", "open")
# The catalog's row ids (../shared/reference/reliability.md, section 5).
EXPECTED_ROWS = (
    [f"F{i:02d}" for i in range(1, 41)]
    + [f"C{i:02d}" for i in range(1, 13)]
    + [f"P{i:02d}" for i in range(1, 16)]
    + [f"D{i:02d}" for i in range(1, 7)]
    + [f"I{i:02d}" for i in range(1, 10)]
    + [f"S{i:02d}" for i in range(1, 23)]
    + [f"L{i:02d}" for i in range(1, 8)]
    + [f"M{i:02d}" for i in range(1, 9)]
)


def _rows() -> dict[str, str]:
    rows = {}
    for row_id, status in ROW.findall(DOC.read_text()):
        assert row_id not in rows, f"{row_id} appears twice"
        rows[row_id] = status.strip()
    return rows


def test_every_catalog_row_has_a_status():
    rows = _rows()
    assert sorted(rows) == sorted(EXPECTED_ROWS)
    for row_id, status in rows.items():
        assert status.split()[0] in STATUSES, (row_id, status)
    open_rows = [r for r, s in rows.items() if s.startswith("open")]
    assert len(open_rows) < 5, open_rows


def test_every_pinned_row_names_a_test():
    text = DOC.read_text()
    for line in text.splitlines():
        m = re.match(r"^\| ([FCPDISLM]\d\d) \| [^|]+ \| (pinned|decision)", line)
        if m:
            assert REF.search(line), f"{m.group(1)} is {m.group(2)} but names no test"


def test_every_named_test_exists():
    refs = {(path, name, param or "") for path, name, param in REF.findall(DOC.read_text())}
    assert len(refs) > 150
    files = sorted({path for path, _, _ in refs})
    for path in files:
        assert (ROOT / path).is_file(), path
    out = subprocess.run(
        # -P: the source tree's httprs/ must not shadow an installed (sanitizer) build.
        [sys.executable, "-P", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + files,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    collected = set(out.stdout.split())
    functions = {nodeid.split("[")[0] for nodeid in collected}
    missing = []
    for path, name, param in sorted(refs):
        node = f"{path}::{name}"
        if param:
            if node + param not in collected:
                missing.append(node + param)
        elif node not in functions:
            missing.append(node)
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}\n" + (
        out.stdout[-2000:] + out.stderr[-2000:]
    )

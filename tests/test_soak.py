"""scripts/soak.py kept runnable: a few hundred requests per phase against the C server.

The real soak (1,000,000 requests per client, `just soak`) is a script, not CI; here each
phase runs briefly and must end with no failed request and the descriptors back to the
baseline. The RSS verdict is checked on synthetic samples (a short run's RSS says little).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import soak  # noqa: E402


@pytest.fixture(scope="module")
def c_server():
    try:
        srv = soak.Server()
    except soak.SetupError as exc:  # pragma: no cover - no C compiler on this machine
        pytest.fail(f"the benchmark's C server cannot be built: {exc}")
    soak.prime(srv.url)
    yield srv
    srv.stop()


@pytest.mark.parametrize("phase", ["sync", "async", "cycles"])
def test_soak_phase_short(c_server, phase):
    if phase == "sync":
        s = soak.run_sync(c_server.url, 400, 100, 100, quiet=True)
    elif phase == "async":
        s = soak.run_async(c_server.url, 400, 100, 100, concurrency=20, quiet=True)
    else:
        s = soak.run_cycles(c_server.url, 40, 10, 10, quiet=True)
    assert s.errors == 0
    assert [done for done, _, _ in s.rows][-1] == s.total
    assert s.end_fds == s.baseline_fds, s.verdict()[1]


def test_soak_verdict_flags_growth_and_fd_leaks():
    s = soak.Samples("synthetic", 40_000, 10_000)
    s.rows = [(10_000, 100 << 20, 10), (20_000, 104 << 20, 10), (40_000, 106 << 20, 10)]
    s.end_fds = s.baseline_fds
    ok, text = s.verdict()
    assert not ok and "+6.00%" in text
    s.rows[-1] = (40_000, 104 << 20, 10)
    assert s.verdict()[0]
    s.end_fds = s.baseline_fds + 1
    assert not s.verdict()[0]

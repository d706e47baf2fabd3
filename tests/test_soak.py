"""scripts/soak.py kept runnable: a few hundred requests per phase against the C server.

The real soak (1,000,000 requests per client, `just soak`) is a script, not CI; here each
phase runs briefly and must end with no failed request and the descriptors back to the
baseline. The RSS verdict is checked on synthetic samples (a short run's RSS says little).
"""

from __future__ import annotations

import sys
import time
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


@pytest.mark.parametrize("phase", ["sync", "sync-threads", "async", "async-trio", "cycles"])
def test_soak_phase_short(c_server, phase):
    if phase == "sync":
        s = soak.run_sync(c_server.url, 400, 100, 100, quiet=True)
    elif phase == "sync-threads":
        s = soak.run_sync(c_server.url, 400, 100, 100, quiet=True, threads=4)
    elif phase == "async":
        s = soak.run_async(c_server.url, 400, 100, 100, concurrency=20, quiet=True)
    elif phase == "async-trio":
        s = soak.run_async(c_server.url, 400, 100, 100, concurrency=20, quiet=True, lib="trio")
    else:
        s = soak.run_cycles(c_server.url, 40, 10, 10, quiet=True)
    assert s.errors == 0, s.failure_text()
    assert [done for done, _, _ in s.rows][-1] == s.total
    assert sum(s.histogram) == s.total  # every request's latency is recorded
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


def test_soak_counts_failures_by_exception_class(closed_port):
    """A run whose requests fail says how: the count per exception class, and FAIL."""
    s = soak.run_sync(f"http://127.0.0.1:{closed_port}", 6, 3, 3, quiet=True)
    assert s.failures == {"ConnectError": 6}
    ok, text = s.verdict()
    assert not ok
    assert "errors 6 (ConnectError 6)" in text


def test_soak_verdict_fails_on_any_error_and_lists_slow_requests():
    s = soak.Samples("synthetic", 3, 1, slow=1.0)
    now = time.monotonic()
    s.record(1, now, None)
    s.record(2, now - 5.5, "ReadTimeout")  # started 5.5 s ago
    s.record(3, now, "wrong response")
    s.rows = [(3, 100 << 20, 10)]
    s.end_fds = s.baseline_fds
    ok, text = s.verdict()
    assert not ok
    assert "errors 2 (ReadTimeout 1, wrong response 1)" in text
    assert "1 at or over 1s" in text and ">10s" not in text and "<=10s 1" in text
    assert "ReadTimeout" in s.slow_text() and "request         2" in s.slow_text()

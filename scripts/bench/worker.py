"""One (client, scenario) measurement, run in a fresh process pinned to the client CPU.

    python -m bench.worker SPEC.json OUT.json

SPEC holds the client and scenario names, the server description and the timing.
The result (always written, also on failure) has status ok | missing | error.

Measurement: imports first (outside the timed region); then the peak-RSS mark is reset
(/proc/self/clear_refs) and the post-import RSS recorded; the client is built and warmed
up (the RSS after the construction is recorded); the peak so far is read and the mark is
reset again (the larger of both peaks, above the post-import RSS, is RSS+; the timed
window's own peak above the RSS of the constructed client is the transfer RSS+); then
getrusage(RUSAGE_SELF) (user+sys, every thread of the process), the wall clock
and the server process's CPU time are read around a timed window of operations, each
timed with perf_counter_ns (async: from the task's request start to the body read).
A scenario with `connections` > 1 does that (build, warm-up, window, close) that many
times, each window a share of the time, and sums the windows.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import resource
import sys
import threading
import time
import traceback
from pathlib import Path

from .clients import CLIENTS, Ctx
from .scenarios import SCENARIOS
from .servers import accepted_connections, proc_cpu_seconds


class CheckFailed(AssertionError):
    pass


def _status_kb(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(m.group(1)) if m else 0


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Window:
    """Collects latencies and counts operations for one phase."""

    def __init__(self, expect: int, deadline: float, min_ops: int):
        self.expect = expect
        self.deadline = deadline
        self.min_ops = min_ops
        self.lat: list[int] = []
        self.lock = threading.Lock()
        self.started = 0  # operations handed out (shared by threads / tasks)

    def claim(self) -> bool:
        """May one more operation start? Time-bounded, with at least min_ops."""
        with self.lock:
            if self.started >= self.min_ops and time.perf_counter() >= self.deadline:
                return False
            self.started += 1
            return True

    def check(self, value) -> None:
        if value != self.expect:
            raise CheckFailed(f"operation returned {value!r}, expected {self.expect!r}")


class _Tally:
    """Sums what the timed windows of one measurement cost (one window per client built;
    see `Scenario.connections`), and their peaks."""

    def __init__(self, peak_reset: bool, server_pid: int, stats_port, server: str):
        self.peak_reset = peak_reset
        self.server_pid, self.stats_port, self.server = server_pid, stats_port, server
        self.user = self.system = self.srv = self.wall = 0.0
        self.gc0 = self.blocks = 0
        self.accepted: int | None = 0
        self.lat: list[int] = []
        self.hwm_warm_kb = 0
        self.transfer_kb: int | None = None
        self.built_rss_kb = 0
        self.mark: dict = {}

    def built(self) -> None:
        """The client is built: its RSS is what the window's own peak is measured above."""
        self.built_rss_kb = _status_kb("VmRSS")

    def start(self) -> None:
        m = self.mark
        # The peak of construction and warm-up; then the window's own peak
        self.hwm_warm_kb = max(self.hwm_warm_kb, _status_kb("VmHWM"))
        m["peak_reset"] = self.peak_reset and reset_peak_rss()
        m["acc"] = accepted_connections(self.stats_port, self.server)
        m["gc"] = gc.get_stats()[0]["collections"]
        m["blocks"] = sys.getallocatedblocks()
        m["ru"] = resource.getrusage(resource.RUSAGE_SELF)
        m["srv"] = proc_cpu_seconds(self.server_pid)
        m["t"] = time.perf_counter()

    def end(self) -> None:
        m = self.mark
        t1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        hwm_kb = _status_kb("VmHWM")
        blocks1 = sys.getallocatedblocks()
        gc1 = gc.get_stats()[0]["collections"]
        srv1 = proc_cpu_seconds(self.server_pid)
        acc1 = accepted_connections(self.stats_port, self.server)
        self.wall += t1 - m["t"]
        self.user += ru1.ru_utime - m["ru"].ru_utime
        self.system += ru1.ru_stime - m["ru"].ru_stime
        self.srv += srv1 - m["srv"]
        self.gc0 += gc1 - m["gc"]
        self.blocks += blocks1 - m["blocks"]
        if m["peak_reset"]:
            own = hwm_kb - self.built_rss_kb
            self.transfer_kb = own if self.transfer_kb is None else max(self.transfer_kb, own)
        if self.accepted is not None and m["acc"] is not None and acc1 is not None:
            # the second stats request accounts for the 1 subtracted
            self.accepted += acc1 - m["acc"] - 1
        else:
            self.accepted = None


def _sync_loop(op, win: Window) -> None:
    lat = win.lat
    now = time.perf_counter_ns
    while win.claim():
        t0 = now()
        v = op()
        t1 = now()
        win.check(v)
        lat.append(t1 - t0)


def run_sync(op, conc: int, warm: Window, start_window, mark_start, mark_end) -> Window:
    """Warm-up, then the timed window, on the same threads (thread-local client state
    such as pycurl's per-thread handles stays warm)."""
    if conc <= 1:
        _sync_loop(op, warm)
        win = start_window()
        mark_start()
        _sync_loop(op, win)
        mark_end()
        return win

    errors: list[BaseException] = []
    barrier = threading.Barrier(conc + 1)
    box: dict = {}

    def thread_main():
        try:
            _sync_loop(op, warm)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            warm.deadline = 0.0
        barrier.wait()  # main thread opens the window
        barrier.wait()
        if errors:
            return
        win = box["win"]
        try:
            _sync_loop(op, win)
        except BaseException as exc:
            errors.append(exc)
            win.deadline = 0.0

    threads = [threading.Thread(target=thread_main) for _ in range(conc)]
    for t in threads:
        t.start()
    barrier.wait()
    box["win"] = start_window()
    mark_start()
    barrier.wait()
    for t in threads:
        t.join()
    mark_end()
    if errors:
        raise errors[0]
    return box["win"]


async def async_phase(op, win: Window, conc: int) -> None:
    async def loop():
        lat = win.lat
        now = time.perf_counter_ns
        while win.claim():
            t0 = now()
            v = await op()
            t1 = now()
            win.check(v)
            lat.append(t1 - t0)

    if conc <= 1:
        await loop()
    else:
        await asyncio.gather(*(loop() for _ in range(conc)))


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return 0.0
    i = min(len(sorted_ns) - 1, int(q * len(sorted_ns)))
    return sorted_ns[i] / 1000.0


def measure(spec: dict) -> dict:
    client_name, sc = spec["client"], SCENARIOS[spec["scenario"]]
    adapter = CLIENTS[client_name]()
    out: dict = {"client": client_name, "scenario": sc.name}
    try:
        out["versions"] = adapter.load()
    except ImportError as exc:
        out.update(status="missing", error=f"{type(exc).__name__}: {exc}")
        return out
    ctx = Ctx(spec["info"], sc, adapter.http2)
    server_pid = spec["info"]["server_pids"][sc.server]
    timing = spec["timing"]
    min_ops = sc.quick_min_ops if timing["quick"] else sc.min_ops
    conc = max(sc.conc, 1)

    peak_reset = reset_peak_rss()
    base_rss_kb = _status_kb("VmRSS")
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    # The window is split over `sc.connections` clients, built and warmed up one after
    # the other (outside the timing), so a scenario whose cost depends on the state a
    # connection settles in measures several draws of it (scenarios.py).
    segments = max(1, sc.connections)

    def start_window(warm: bool) -> Window:
        secs = (timing["warmup_s"] if warm else timing["window_s"]) / segments
        ops = max(1, min_ops // 4) if warm else min_ops
        return Window(sc.expect, time.perf_counter() + secs, -(-ops // segments))

    stats_port = spec["info"]["stats_ports"][sc.server]
    tally = _Tally(peak_reset, server_pid, stats_port, sc.server)

    if adapter.is_async:

        async def run():
            for _ in range(segments):
                await adapter.open(ctx)
                tally.built()
                try:
                    op = adapter.op(ctx)
                    await async_phase(op, start_window(True), conc)
                    win = start_window(False)
                    tally.start()
                    await async_phase(op, win, conc)
                    tally.end()
                    tally.lat += win.lat
                finally:
                    await adapter.close()

        if getattr(adapter, "loop", "asyncio") == "uvloop":
            import uvloop

            uvloop.run(run())
        else:
            asyncio.run(run())
    else:
        for _ in range(segments):
            adapter.open(ctx)
            tally.built()
            try:
                op = adapter.op(ctx)
                win = run_sync(
                    op,
                    conc,
                    start_window(True),
                    lambda: start_window(False),
                    tally.start,
                    tally.end,
                )
                tally.lat += win.lat
            finally:
                adapter.close()

    n = len(tally.lat)
    user, system, srv, wall = tally.user, tally.system, tally.srv, tally.wall
    lat = sorted(tally.lat)
    transfer_kb = None
    if peak_reset:
        # the windows' peak or the close's, whichever is higher (as before the reset)
        peak_kb = max(tally.hwm_warm_kb, _status_kb("VmHWM")) - base_rss_kb
        transfer_kb = tally.transfer_kb
    else:  # ru_maxrss only grows: a delta from the post-import value
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss0
    out.update(
        status="ok",
        ops=n,
        wall_s=wall,
        cpu_user_s=user,
        cpu_sys_s=system,
        cpu_us_per_op=(user + system) / n * 1e6,
        ops_per_s=n / wall,
        mb_per_s=(sc.bytes_per_op * n / wall / 1e6) if sc.bytes_per_op else None,
        cpu_us_per_mb=((user + system) * 1e6 / (sc.bytes_per_op * n / 1e6))
        if sc.bytes_per_op
        else None,
        p50_us=percentile(lat, 0.50),
        p99_us=percentile(lat, 0.99),
        peak_rss_mb=max(0, peak_kb) / 1024.0,
        # the timed windows' peak above the RSS of the constructed client (what the
        # requests add: connections, buffers, bodies, held or freed): None when the
        # peak mark cannot be reset
        transfer_rss_mb=None if transfer_kb is None else max(0, transfer_kb) / 1024.0,
        peak_rss_method="VmHWM after clear_refs" if peak_reset else "ru_maxrss delta",
        server_cpu_s=srv,
        server_cpu_us_per_op=srv / n * 1e6,
        server_cpu_pct=100.0 * srv / wall if wall > 0 else 0.0,
        # Python memory churn: generation-0 collections (each one follows ~700 net
        # allocations of GC-tracked objects) per 10,000 operations, and the net change in
        # allocated memory blocks per operation over the window (a leak shows as > 0)
        gc0_per_10k=tally.gc0 * 10_000 / n,
        blocks_per_op=tally.blocks / n,
        connections=segments,
    )
    if tally.accepted is not None:
        # connections the client opened during the windows
        out["new_connections"] = tally.accepted
    if adapter.notes:
        out["notes"] = adapter.notes
    return out


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    try:
        result = measure(spec)
    except BaseException as exc:
        tb = traceback.format_exc(limit=-3)
        result = {
            "client": spec["client"],
            "scenario": spec["scenario"],
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}".strip()[:500],
            "traceback": tb[-2000:],
        }
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

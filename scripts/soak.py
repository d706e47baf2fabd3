#!/usr/bin/env python3
"""Soak run: many requests through one client, checking memory and file descriptors.

`bash scripts/dev.sh soak [--requests N] ...` (or `just soak`). Against the benchmark's C
server (scripts/bench/native/echo_server.c, built on first use) it runs

* sync:   N requests through one `httprs.Client`, one after another (or from `--threads`
          threads sharing it);
* async:  N requests through one `httprs.AsyncClient`, `--concurrency` (100) in flight,
          under asyncio or trio (`--lib`);
* cycles: `--cycles` (10,000) times `with Client() as c: c.get(...)`.

Every response body is checked. RSS (/proc/self/statm) and open descriptors
(/proc/self/fd) are sampled every `--sample` requests. Each request's latency goes into a
histogram; the slowest (at least `--slow` seconds, 1.0) are listed with their outcome and
when they started. A phase passes when the peak RSS after warm-up (the first `--warmup`
requests, default 10,000 or a tenth of a short run) is less than 5% above the RSS at the
end of warm-up, no request failed (the failures are counted by exception class), and the
open descriptors are back to the baseline once the client is closed. Exit status 0 when
every phase passed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import collections
import gc
import heapq
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.servers import SetupError, build_native, free_port, wait_port  # noqa: E402,F401

import httprs  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
# GET: a 64-byte chunked body; POST: the request body echoed back (Content-Length).
GET_PATH = "/chunked?size=64&chunk=32"
GET_BODY = None  # the C server sends 64 bytes of its own; only the length is checked
POST_BODY = b"soak-" * 20
# Latency histogram bucket upper bounds, in seconds (the last bucket is open).
LATENCY_BOUNDS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
MAX_SLOW = 20  # slowest requests listed per phase (all are counted in the histogram)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class Server:
    """The benchmark's single-threaded C echo server, in its own process."""

    def __init__(self) -> None:
        exe = build_native()["echo_server"]
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(exe), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, self.proc, "the C echo server")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _bucket_label(i: int) -> str:
    def fmt(v: float) -> str:
        return f"{v * 1000:g}ms" if v < 1 else f"{v:g}s"

    if i == len(LATENCY_BOUNDS):
        return f">{fmt(LATENCY_BOUNDS[-1])}"
    return f"<={fmt(LATENCY_BOUNDS[i])}"


class Samples:
    """RSS and fd samples, outcomes and latencies of one phase, and its verdict."""

    def __init__(self, name: str, total: int, warmup: int, slow: float = 1.0) -> None:
        self.name = name
        self.total = total
        self.warmup = warmup
        self.slow = slow
        self.rows: list[tuple[int, int, int]] = []  # (requests done, rss, fds)
        self.failures: collections.Counter[str] = collections.Counter()
        self.histogram = [0] * (len(LATENCY_BOUNDS) + 1)
        self.slowest: list[
            tuple[float, float, int, str]
        ] = []  # (latency, start, index, outcome): a min-heap
        self.n_slow = 0
        self.max_latency = 0.0
        self.baseline_fds = open_fds()
        self.start_rss = rss_bytes()
        self.t0 = time.monotonic()
        self.end_fds = -1
        self.elapsed = 0.0

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def record(self, index: int, started: float, outcome: str | None) -> None:
        """One request ended `outcome` (None: the expected response; else what went
        wrong: an exception class or "wrong response") after starting at `started`."""
        latency = time.monotonic() - started
        if outcome is not None:
            self.failures[outcome] += 1
        self.histogram[bisect.bisect_left(LATENCY_BOUNDS, latency)] += 1
        if latency > self.max_latency:
            self.max_latency = latency
        if latency >= self.slow:
            self.n_slow += 1
            entry = (latency, started - self.t0, index, outcome or "ok")
            if len(self.slowest) < MAX_SLOW:
                heapq.heappush(self.slowest, entry)
            else:  # keep the MAX_SLOW slowest
                heapq.heappushpop(self.slowest, entry)

    def sample(self, done: int, quiet: bool) -> None:
        row = (done, rss_bytes(), open_fds())
        self.rows.append(row)
        if not quiet:
            rate = done / max(time.monotonic() - self.t0, 1e-9)
            print(
                f"  {self.name:6s} {done:>9,d} req  rss {mib(row[1]):>10s}  fds {row[2]:3d}"
                f"  {rate:8.0f} req/s  errors {self.errors}  max {self.max_latency:.3f}s",
                flush=True,
            )

    def finish(self) -> None:
        self.elapsed = time.monotonic() - self.t0
        gc.collect()
        self.end_fds = open_fds()

    def warm_rss(self) -> int:
        for done, rss, _ in self.rows:
            if done >= self.warmup:
                return rss
        return self.rows[-1][1]

    def peak_after_warmup(self) -> int:
        after = [rss for done, rss, _ in self.rows if done >= self.warmup]
        return max(after) if after else self.rows[-1][1]

    def failure_text(self) -> str:
        if not self.failures:
            return "errors 0"
        by_class = ", ".join(f"{k} {v:,d}" for k, v in self.failures.most_common())
        return f"errors {self.errors:,d} ({by_class})"

    def latency_text(self) -> str:
        buckets = ", ".join(
            f"{_bucket_label(i)} {n:,d}" for i, n in enumerate(self.histogram) if n
        )
        return (
            f"latency max {self.max_latency:.3f}s, {self.n_slow:,d} at or over "
            f"{self.slow:g}s; histogram: {buckets}"
        )

    def slow_text(self) -> str:
        """The slow requests, slowest first: latency, start (s into the phase), outcome."""
        lines = [
            f"    {lat:7.3f}s  request {idx:>9,d}  started at {start:8.2f}s  {outcome}"
            for lat, start, idx, outcome in sorted(self.slowest, reverse=True)
        ]
        if self.n_slow > len(self.slowest):
            lines.append(f"    ... and {self.n_slow - len(self.slowest):,d} more")
        return "\n".join(lines)

    def verdict(self) -> tuple[bool, str]:
        warm, peak = self.warm_rss(), self.peak_after_warmup()
        growth = (peak - warm) / warm * 100
        fds_during = sorted({fds for _, _, fds in self.rows})
        ok = growth < 5.0 and self.errors == 0 and self.end_fds == self.baseline_fds
        text = (
            f"{self.name}: {self.total:,d} requests in {self.elapsed:.1f}s "
            f"({self.total / max(self.elapsed, 1e-9):.0f}/s), {self.failure_text()}; "
            f"rss start {mib(self.start_rss)}, after warm-up {mib(warm)}, peak after "
            f"{mib(peak)} (growth {growth:+.2f}%, limit 5%), final {mib(self.rows[-1][1])}; "
            f"fds baseline {self.baseline_fds}, during {fds_during}, after close "
            f"{self.end_fds}; {self.latency_text()} -> {'PASS' if ok else 'FAIL'}"
        )
        return ok, text


def outcome_of(exc: BaseException) -> str:
    return type(exc).__name__


def check_get(r) -> bool:
    return r.status_code == 200 and len(r.content) == 64


def check_post(r) -> bool:
    return r.status_code == 200 and r.content == POST_BODY


def one_sync(client, url: str, i: int) -> str | None:
    """Request number `i` (odd: GET, even: POST); None when the response is right."""
    try:
        if i & 1:
            ok = check_get(client.get(url + GET_PATH))
        else:
            ok = check_post(client.post(url + "/echo", content=POST_BODY))
    except Exception as exc:  # every failure is counted by class, none stops the run
        return outcome_of(exc)
    return None if ok else "wrong response"


def run_sync(
    url: str, n: int, every: int, warmup: int, quiet: bool, threads: int = 1, slow: float = 1.0
) -> Samples:
    s = Samples("sync" if threads == 1 else f"sync/{threads}t", n, warmup, slow)
    lock = threading.Lock()
    counter = iter(range(1, n + 1))
    done = [0]

    def worker(client) -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            started = time.monotonic()
            outcome = one_sync(client, url, i)
            with lock:
                s.record(i, started, outcome)
                done[0] += 1
                if done[0] % every == 0 or done[0] == n:
                    s.sample(done[0], quiet)

    with httprs.Client() as client:
        if threads == 1:
            worker(client)
        else:
            pool = [threading.Thread(target=worker, args=(client,)) for _ in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
        stats = client._transport._pool_stats()
    s.finish()
    if not quiet:
        print(f"  sync pool at the end: {stats}")
    return s


async def one_async(client, url: str, i: int) -> str | None:
    try:
        if i & 1:
            ok = check_get(await client.get(url + GET_PATH))
        else:
            ok = check_post(await client.post(url + "/echo", content=POST_BODY))
    except Exception as exc:  # every failure is counted by class, none stops the run
        return outcome_of(exc)
    return None if ok else "wrong response"


def run_async(
    url: str,
    n: int,
    every: int,
    warmup: int,
    concurrency: int,
    quiet: bool,
    lib: str = "asyncio",
    slow: float = 1.0,
):
    s = Samples("async" if lib == "asyncio" else f"async/{lib}", n, warmup, slow)
    counter = iter(range(1, n + 1))
    done = [0]

    async def worker(client) -> None:
        for i in counter:
            started = time.monotonic()
            s.record(i, started, await one_async(client, url, i))
            done[0] += 1
            if done[0] % every == 0 or done[0] == n:
                s.sample(done[0], quiet)

    async def main_asyncio() -> dict:
        async with httprs.AsyncClient() as client:
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            return client._transport._pool_stats()

    async def main_trio() -> dict:
        import trio

        async with httprs.AsyncClient() as client:
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker, client)
            return client._transport._pool_stats()

    if lib == "trio":
        import trio

        stats = trio.run(main_trio)
    else:
        stats = asyncio.run(main_asyncio())
    s.finish()
    if not quiet:
        print(f"  async pool at the end: {stats}")
    return s


def run_cycles(url: str, n: int, every: int, warmup: int, quiet: bool, slow: float = 1.0):
    s = Samples("cycles", n, warmup, slow)
    for i in range(1, n + 1):
        started = time.monotonic()
        try:
            with httprs.Client() as client:
                outcome = None if check_get(client.get(url + GET_PATH)) else "wrong response"
        except Exception as exc:  # counted by class
            outcome = outcome_of(exc)
        s.record(i, started, outcome)
        if i % every == 0 or i == n:
            s.sample(i, quiet)
    s.finish()
    return s


def prime(url: str, lib: str = "asyncio") -> None:
    """Create what lives as long as the process (the engine's loop and its descriptors,
    an asyncio or trio loop's first imports) before any baseline is taken."""
    with httprs.Client() as client:
        client.get(url + GET_PATH)

    async def once() -> None:
        async with httprs.AsyncClient() as client:
            await client.get(url + GET_PATH)

    asyncio.run(once())
    if lib == "trio":
        import trio

        trio.run(once)
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1_000_000, help="per client (1,000,000)")
    p.add_argument("--cycles", type=int, default=10_000, help="Client() cycles (10,000)")
    p.add_argument("--concurrency", type=int, default=100, help="async in flight (100)")
    p.add_argument("--sample", type=int, default=10_000, help="sample every N (10,000)")
    p.add_argument("--warmup", type=int, default=None, help="requests before the RSS base")
    p.add_argument("--phases", default="sync,async,cycles", help="comma list of sync,async,cycles")
    p.add_argument("--threads", type=int, default=1, help="sync: threads sharing the Client")
    p.add_argument("--lib", choices=("asyncio", "trio"), default="asyncio", help="async library")
    p.add_argument("--slow", type=float, default=1.0, help="list requests this slow (s)")
    p.add_argument("--quiet", action="store_true", help="only the verdicts")
    args = p.parse_args(argv)

    def warm(n: int) -> int:
        return args.warmup if args.warmup is not None else min(10_000, max(n // 10, 1))

    def every(n: int) -> int:
        return max(1, min(args.sample, n // 10 or 1))

    server = Server()
    results = []
    try:
        print(f"soak against the C echo server at {server.url} (pid {server.proc.pid})")
        prime(server.url, args.lib)
        for phase in args.phases.split(","):
            if phase == "sync":
                n = args.requests
                results.append(
                    run_sync(server.url, n, every(n), warm(n), args.quiet, args.threads, args.slow)
                )
            elif phase == "async":
                n = args.requests
                results.append(
                    run_async(
                        server.url,
                        n,
                        every(n),
                        warm(n),
                        args.concurrency,
                        args.quiet,
                        args.lib,
                        args.slow,
                    )
                )
            elif phase == "cycles":
                n = args.cycles
                results.append(run_cycles(server.url, n, every(n), warm(n), args.quiet, args.slow))
            else:
                p.error(f"unknown phase {phase!r}")
            if server.proc.poll() is not None:
                print("the C echo server died", file=sys.stderr)
                return 1
    finally:
        server.stop()
    passed = True
    for s in results:
        ok, text = s.verdict()
        passed &= ok
        print(text)
        if s.slowest:
            print(f"  {s.name}: requests that took {s.slow:g}s or more:")
            print(s.slow_text())
    print("soak: PASS" if passed else "soak: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

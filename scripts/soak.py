#!/usr/bin/env python3
"""Soak run: many requests through one client, checking memory and file descriptors.

`bash scripts/dev.sh soak [--requests N] ...` (or `just soak`). Against the benchmark's C
server (scripts/bench/native/echo_server.c, built on first use) it runs

* sync:   N requests through one `httprs.Client`, one after another;
* async:  N requests through one `httprs.AsyncClient`, `--concurrency` (100) in flight;
* cycles: `--cycles` (10,000) times `with Client() as c: c.get(...)`.

Every response body is checked. RSS (/proc/self/statm) and open descriptors
(/proc/self/fd) are sampled every `--sample` requests. A phase passes when the peak RSS
after warm-up (the first `--warmup` requests, default 10,000 or a tenth of a short run)
is less than 5% above the RSS at the end of warm-up, no request failed, and the open
descriptors are back to the baseline once the client is closed. Exit status 0 when
every phase passed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
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


class Samples:
    """RSS and fd samples of one phase, and its verdict."""

    def __init__(self, name: str, total: int, warmup: int) -> None:
        self.name = name
        self.total = total
        self.warmup = warmup
        self.rows: list[tuple[int, int, int]] = []  # (requests done, rss, fds)
        self.errors = 0
        self.baseline_fds = open_fds()
        self.start_rss = rss_bytes()
        self.t0 = time.monotonic()
        self.end_fds = -1
        self.elapsed = 0.0

    def sample(self, done: int, quiet: bool) -> None:
        row = (done, rss_bytes(), open_fds())
        self.rows.append(row)
        if not quiet:
            rate = done / max(time.monotonic() - self.t0, 1e-9)
            print(
                f"  {self.name:6s} {done:>9,d} req  rss {mib(row[1]):>10s}  fds {row[2]:3d}"
                f"  {rate:8.0f} req/s",
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

    def verdict(self) -> tuple[bool, str]:
        warm, peak = self.warm_rss(), self.peak_after_warmup()
        growth = (peak - warm) / warm * 100
        fds_during = sorted({fds for _, _, fds in self.rows})
        ok = growth < 5.0 and self.errors == 0 and self.end_fds == self.baseline_fds
        text = (
            f"{self.name}: {self.total:,d} requests in {self.elapsed:.1f}s "
            f"({self.total / max(self.elapsed, 1e-9):.0f}/s), errors {self.errors}; "
            f"rss start {mib(self.start_rss)}, after warm-up {mib(warm)}, peak after "
            f"{mib(peak)} (growth {growth:+.2f}%, limit 5%), final {mib(self.rows[-1][1])}; "
            f"fds baseline {self.baseline_fds}, during {fds_during}, after close "
            f"{self.end_fds} -> {'PASS' if ok else 'FAIL'}"
        )
        return ok, text


def check_get(r) -> bool:
    return r.status_code == 200 and len(r.content) == 64


def check_post(r) -> bool:
    return r.status_code == 200 and r.content == POST_BODY


def run_sync(url: str, n: int, every: int, warmup: int, quiet: bool) -> Samples:
    s = Samples("sync", n, warmup)
    with httprs.Client() as client:
        for i in range(1, n + 1):
            try:
                if i & 1:
                    ok = check_get(client.get(url + GET_PATH))
                else:
                    ok = check_post(client.post(url + "/echo", content=POST_BODY))
            except httprs.HTTPError:
                ok = False
            s.errors += not ok
            if i % every == 0 or i == n:
                s.sample(i, quiet)
        stats = client._transport._pool_stats()
    s.finish()
    if not quiet:
        print(f"  sync pool at the end: {stats}")
    return s


def run_async(url: str, n: int, every: int, warmup: int, concurrency: int, quiet: bool):
    s = Samples("async", n, warmup)

    async def main() -> dict:
        counter = iter(range(1, n + 1))
        async with httprs.AsyncClient() as client:

            async def worker() -> None:
                for i in counter:
                    try:
                        if i & 1:
                            ok = check_get(await client.get(url + GET_PATH))
                        else:
                            r = await client.post(url + "/echo", content=POST_BODY)
                            ok = check_post(r)
                    except httprs.HTTPError:
                        ok = False
                    s.errors += not ok
                    done[0] += 1
                    if done[0] % every == 0 or done[0] == n:
                        s.sample(done[0], quiet)

            done = [0]
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return client._transport._pool_stats()

    stats = asyncio.run(main())
    s.finish()
    if not quiet:
        print(f"  async pool at the end: {stats}")
    return s


def run_cycles(url: str, n: int, every: int, warmup: int, quiet: bool) -> Samples:
    s = Samples("cycles", n, warmup)
    for i in range(1, n + 1):
        try:
            with httprs.Client() as client:
                ok = check_get(client.get(url + GET_PATH))
        except httprs.HTTPError:
            ok = False
        s.errors += not ok
        if i % every == 0 or i == n:
            s.sample(i, quiet)
    s.finish()
    return s


def prime(url: str) -> None:
    """Create what lives as long as the process (the engine's loop and its descriptors,
    an asyncio loop's first imports) before any baseline is taken."""
    with httprs.Client() as client:
        client.get(url + GET_PATH)

    async def once() -> None:
        async with httprs.AsyncClient() as client:
            await client.get(url + GET_PATH)

    asyncio.run(once())
    gc.collect()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1_000_000, help="per client (1,000,000)")
    p.add_argument("--cycles", type=int, default=10_000, help="Client() cycles (10,000)")
    p.add_argument("--concurrency", type=int, default=100, help="async in flight (100)")
    p.add_argument("--sample", type=int, default=10_000, help="sample every N (10,000)")
    p.add_argument("--warmup", type=int, default=None, help="requests before the RSS base")
    p.add_argument("--phases", default="sync,async,cycles", help="comma list of sync,async,cycles")
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
        prime(server.url)
        for phase in args.phases.split(","):
            if phase == "sync":
                n = args.requests
                results.append(run_sync(server.url, n, every(n), warm(n), args.quiet))
            elif phase == "async":
                n = args.requests
                results.append(
                    run_async(server.url, n, every(n), warm(n), args.concurrency, args.quiet)
                )
            elif phase == "cycles":
                n = args.cycles
                results.append(run_cycles(server.url, n, every(n), warm(n), args.quiet))
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
    print("soak: PASS" if passed else "soak: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

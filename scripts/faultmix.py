#!/usr/bin/env python3
"""Fault mix: many clients against a server that misbehaves at random (seeded).

`bash scripts/dev.sh faultmix [--seed S] [--duration SECONDS] ...` (or `just faultmix`).

The server (threads in this process, 127.0.0.1, ephemeral port) answers each request
``/r/<id>`` with a fault drawn from a seeded generator keyed by (seed, id, attempt): a
correct response (Content-Length, chunked, byte by byte, or followed by dropping the
idle keep-alive connection), or it closes before answering / mid-head / mid-body, resets
before answering / mid-body, stalls past the read timeout before the head or mid-body,
sends garbage or an oversize head. Response bodies are derived from (seed, id), so the
client knows the digest to expect; POST bodies too, and the server counts each POST it
received whole by id.

Client threads (sync `Client`) and asyncio tasks (`AsyncClient`) drive GETs and POSTs
through it. A run fails on: a wrong body, an exception that does not fit the fault the
server applied (see FAULTS), a request that outlives its timeouts (a hang), a POST the
server received twice, an exception other than an httpx one, a connection still in use
in the pool once every request is done, descriptors not back to the baseline, or a clean
batch after the mix that does not fully succeed. Counts per fault and outcome are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter

import httprs

# The server shares this process (and its GIL) with up to ~100 client workers: on a
# loaded machine a correct answer can be delayed by several hundred milliseconds, so the
# read timeout leaves room for that (0.4 s gave false ReadTimeouts at 64 tasks).
READ_TIMEOUT = 1.0
# A request is a hang when it takes longer than this (its slowest legitimate path is a
# byte-by-byte answer of ~0.5 s, a stall is cut at READ_TIMEOUT; no pool waits, as
# max_connections exceeds the number of workers).
HANG_AFTER = 6.0

# fault -> (weight, exception class names that fit it); () means the request succeeds.
FAULTS: dict[str, tuple[int, tuple[str, ...]]] = {
    "ok_length": (30, ()),
    "ok_chunked": (20, ()),
    "ok_byte_by_byte": (3, ()),
    "ok_then_drop_idle": (8, ()),
    # ReadError too: when a GET met a reset on a dropped keep-alive connection first and
    # its one retry then met this fault, the reset is what is reported.
    "close_before_answer": (4, ("RemoteProtocolError", "ReadError")),
    "close_mid_head": (4, ("RemoteProtocolError",)),
    "close_mid_body": (4, ("RemoteProtocolError",)),
    "close_mid_chunked": (3, ("RemoteProtocolError",)),
    "reset_before_answer": (3, ("ReadError", "RemoteProtocolError")),
    "reset_mid_body": (3, ("ReadError",)),
    "stall_before_head": (2, ("ReadTimeout",)),
    "stall_mid_body": (2, ("ReadTimeout",)),
    "garbage": (3, ("RemoteProtocolError",)),
    "oversize_head": (2, ("RemoteProtocolError",)),
}
# A request the server never read: it was sent on a keep-alive connection the server
# dropped while idle (the stale keep-alive race). GET is retried once by httprs; a POST
# fails with one of these.
UNSEEN = ("RemoteProtocolError", "ReadError", "WriteError")

_NAMES = list(FAULTS)
_WEIGHTS = [FAULTS[n][0] for n in _NAMES]


def response_body(seed: int, rid: int) -> bytes:
    rng = random.Random(f"{seed}:{rid}:body")
    size = rng.choice([0, rng.randrange(1, 200), rng.randrange(1000, 30_000)])
    if rng.random() < 0.05:
        size = rng.randrange(100_000, 400_000)
    return rng.randbytes(size)


def request_body(seed: int, rid: int) -> bytes:
    rng = random.Random(f"{seed}:{rid}:request")
    return rng.randbytes(rng.choice([0, rng.randrange(1, 100), rng.randrange(1000, 60_000)]))


def is_post(seed: int, rid: int) -> bool:
    return random.Random(f"{seed}:{rid}:method").random() < 0.3


def choose_fault(seed: int, rid: int, attempt: int) -> str:
    return random.Random(f"{seed}:{rid}:{attempt}").choices(_NAMES, _WEIGHTS)[0]


# ---------------------------------------------------------------------------- server


class _Closed(Exception):
    pass


class FaultServer:
    """Threaded raw-socket server applying a seeded fault to every request."""

    _body = staticmethod(response_body)  # tests swap it to check the checker

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.lock = threading.Lock()
        self.attempts: dict[int, list[str]] = {}  # rid -> fault per attempt
        self.posts: Counter[int] = Counter()  # rid -> POST bodies received whole
        self.bad_request_bodies: list[int] = []
        self.connections = 0
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.accept_thread.start()

    # -- plumbing --
    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads = [x for x in self.threads if x.is_alive()]
            self.threads.append(t)
            t.start()

    def join_connections(self, timeout: float = 10.0) -> None:
        """Wait for every connection thread (stalls end after READ_TIMEOUT + 0.6 s)."""
        deadline = time.monotonic() + timeout
        for t in list(self.threads):
            t.join(max(deadline - time.monotonic(), 0))

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.accept_thread.join(5)
        for t in self.threads:
            t.join(5)

    def _serve(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(5.0)
        buf = bytearray()
        try:
            while not self.stopping.is_set():
                head = self._read_until(conn, buf, b"\r\n\r\n", limit=1 << 16)
                if head is None:
                    return
                if not self._handle(conn, buf, head):
                    return
        except (OSError, _Closed):
            pass
        finally:
            conn.close()

    @staticmethod
    def _recv(conn: socket.socket, buf: bytearray) -> bool:
        data = conn.recv(65536)
        if not data:
            return False
        buf += data
        return True

    def _read_until(self, conn, buf: bytearray, marker: bytes, limit: int) -> bytes | None:
        while (idx := buf.find(marker)) < 0:
            if len(buf) > limit or not self._recv(conn, buf):
                return None
        out = bytes(buf[: idx + len(marker)])
        del buf[: idx + len(marker)]
        return out

    def _read_exact(self, conn, buf: bytearray, n: int) -> bytes | None:
        while len(buf) < n:
            if not self._recv(conn, buf):
                return None
        out = bytes(buf[:n])
        del buf[:n]
        return out

    # -- one request --
    def _handle(self, conn: socket.socket, buf: bytearray, head: bytes) -> bool:
        """Read the rest of the request, apply its fault; False when the connection ends."""
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = self._read_exact(conn, buf, length)
        if body is None:
            return False
        kind, _, rid_text = target.lstrip("/").partition("/")
        rid = int(rid_text)
        with self.lock:
            tries = self.attempts.setdefault(rid, [])
            fault = "ok_length" if kind == "clean" else choose_fault(self.seed, rid, len(tries))
            tries.append(fault)
            if method == "POST":
                self.posts[rid] += 1
                if body != request_body(self.seed, rid):
                    self.bad_request_bodies.append(rid)
        return self._apply(conn, fault, rid)

    def _apply(self, conn: socket.socket, fault: str, rid: int) -> bool:
        payload = self._body(self.seed, rid)
        head = (
            f"HTTP/1.1 200 OK\r\nX-Rid: {rid}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        chunked_head = f"HTTP/1.1 200 OK\r\nX-Rid: {rid}\r\nTransfer-Encoding: chunked\r\n\r\n"
        if fault == "ok_length":
            conn.sendall(head + payload)
            return True
        if fault == "ok_chunked":
            conn.sendall(chunked_head.encode() + chunk(payload) + b"0\r\n\r\n")
            return True
        if fault == "ok_byte_by_byte":  # the head (and a small body) byte by byte
            slow, rest = (head + payload, b"") if len(payload) <= 200 else (head, payload)
            for i in range(len(slow)):
                conn.sendall(slow[i : i + 1])
                time.sleep(0.002)
            conn.sendall(rest)
            return True
        if fault == "ok_then_drop_idle":
            conn.sendall(head + payload)
            time.sleep(random.random() * 0.03)
            return False  # closed while idle, whatever the client sent meanwhile
        if fault == "close_before_answer":
            return False
        if fault == "close_mid_head":
            conn.sendall(head[: len(head) // 2])
            return False
        if fault == "close_mid_body":  # 10 bytes short of the Content-Length
            short = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload) + 10}\r\n\r\n"
            conn.sendall(short.encode() + payload)
            return False
        if fault == "close_mid_chunked":
            conn.sendall(chunked_head.encode() + chunk(payload[: len(payload) // 2] or b"x"))
            return False
        if fault == "reset_before_answer":
            reset(conn)
            return False
        if fault == "reset_mid_body":
            big = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload) + 100_000}\r\n\r\n"
            conn.sendall(big.encode() + payload)
            time.sleep(0.05)
            reset(conn)
            return False
        if fault == "stall_before_head":
            self.stopping.wait(READ_TIMEOUT + 0.6)
            return False
        if fault == "stall_mid_body":  # 10 bytes short, then silence
            short = f"HTTP/1.1 200 OK\r\nContent-Length: {len(payload) + 10}\r\n\r\n"
            conn.sendall(short.encode() + payload)
            self.stopping.wait(READ_TIMEOUT + 0.6)
            return False
        if fault == "garbage":
            conn.sendall(b"Wait, this isn't valid HTTP!\r\n\r\n")
            return False
        if fault == "oversize_head":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
            return False
        raise AssertionError(fault)


def chunk(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 8192):
        part = data[i : i + 8192]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return bytes(out)


def reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


# ---------------------------------------------------------------------------- client


class Tally:
    """Outcomes of one client run, and its failures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.by_fault: Counter[tuple[str, str]] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.retried = 0
        self.max_elapsed = 0.0

    def record(self, server: FaultServer, rid: int, outcome: str, elapsed: float) -> None:
        with server.lock:
            tries = list(server.attempts.get(rid, ()))
        last = tries[-1] if tries else "unseen"
        allowed = FAULTS[last][1] if tries else UNSEEN
        problem = None
        if outcome == "ok":
            if allowed:
                problem = f"succeeded although the server applied {last}"
        elif outcome in ("WRONG_BODY", "HANG") or outcome.startswith("CRASH"):
            problem = outcome
        elif outcome not in allowed:
            problem = f"{outcome} does not fit {last}"
        if problem is None and elapsed > HANG_AFTER:
            problem = f"took {elapsed:.1f}s (hang)"
        with self.lock:
            self.outcomes[outcome] += 1
            self.by_fault[(last, outcome)] += 1
            self.retried += len(tries) > 1
            self.max_elapsed = max(self.max_elapsed, elapsed)
            if problem is not None:
                method = "POST" if is_post(server.seed, rid) else "GET"
                path = " -> ".join(tries) or "unseen"
                self.failures.append(f"{method} {rid} ({path}): {problem}")

    def report(self) -> str:
        lines = [f"{self.name}: {sum(self.outcomes.values())} requests"]
        lines.append(
            "  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        )
        lines.append(f"  requests the server saw more than once (GET retries): {self.retried}")
        lines.append(f"  slowest request: {self.max_elapsed:.2f}s (hang limit {HANG_AFTER}s)")
        width = max(len(f) for f, _ in self.by_fault) if self.by_fault else 10
        for (fault, outcome), n in sorted(self.by_fault.items()):
            lines.append(f"    {fault:{width}s}  {outcome:20s} {n:6d}")
        for f in self.failures[:20]:
            lines.append(f"  FAIL {f}")
        if len(self.failures) > 20:
            lines.append(f"  ... {len(self.failures) - 20} more failures")
        return "\n".join(lines)


def _outcome(seed: int, rid: int, response) -> str:
    want = hashlib.sha256(response_body(seed, rid)).digest()
    got = hashlib.sha256(response.content).digest()
    return "ok" if response.status_code == 200 and got == want else "WRONG_BODY"


def _exc_outcome(exc: BaseException) -> str:
    if isinstance(exc, httprs.HTTPError):
        return type(exc).__name__
    return f"CRASH {type(exc).__name__}: {exc}"


def _timeout() -> httprs.Timeout:
    return httprs.Timeout(5.0, read=READ_TIMEOUT)


def _pool_problems(transport, when: str) -> list[str]:
    stats = transport._pool_stats()
    busy = stats["connections"] - stats["idle"]
    return [f"{busy} connection(s) still in use {when}: {stats}"] if busy else []


def run_sync(server: FaultServer, seed: int, ids, deadline: float, threads: int) -> Tally:
    tally = Tally(f"sync ({threads} threads)")
    client = httprs.Client(timeout=_timeout(), limits=httprs.Limits(max_connections=threads + 4))

    def worker() -> None:
        for rid in ids:
            if time.monotonic() > deadline:
                return
            t0 = time.monotonic()
            try:
                if is_post(seed, rid):
                    r = client.post(f"{server.url}/r/{rid}", content=request_body(seed, rid))
                else:
                    r = client.get(f"{server.url}/r/{rid}")
                outcome = _outcome(seed, rid, r)
            except BaseException as exc:  # noqa: BLE001 - classified, a non-httpx one fails
                outcome = _exc_outcome(exc)
            tally.record(server, rid, outcome, time.monotonic() - t0)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(deadline - time.monotonic(), 0) + 30)
        if w.is_alive():
            tally.failures.append("a client thread is stuck (hang)")
            return tally
    tally.failures += _pool_problems(client._transport, "after the mix")
    tally.failures += clean_batch_sync(client, server, seed, ids)
    tally.failures += _pool_problems(client._transport, "after the clean batch")
    client.close()
    if client._transport._pool_stats()["connections"]:
        tally.failures.append(f"pool not empty after close: {client._transport._pool_stats()}")
    return tally


def clean_batch_sync(client, server, seed, ids, n: int = 200) -> list[str]:
    bad = []
    for _ in range(n):
        rid = next(ids)
        r = client.get(f"{server.url}/clean/{rid}")
        if _outcome(seed, rid, r) != "ok":
            bad.append(f"clean request {rid} got a wrong body")
    return bad


def run_async(server: FaultServer, seed: int, ids, deadline: float, tasks: int) -> Tally:
    tally = Tally(f"async ({tasks} tasks)")

    async def one(client, rid: int) -> None:
        t0 = time.monotonic()
        try:
            if is_post(seed, rid):
                coro = client.post(f"{server.url}/r/{rid}", content=request_body(seed, rid))
            else:
                coro = client.get(f"{server.url}/r/{rid}")
            r = await asyncio.wait_for(coro, HANG_AFTER * 3)
            outcome = _outcome(seed, rid, r)
        except asyncio.TimeoutError:
            outcome = "HANG"
        except BaseException as exc:  # noqa: BLE001
            outcome = _exc_outcome(exc)
        tally.record(server, rid, outcome, time.monotonic() - t0)

    async def worker(client) -> None:
        for rid in ids:
            if time.monotonic() > deadline:
                return
            await one(client, rid)

    async def main() -> None:
        limits = httprs.Limits(max_connections=tasks + 4)
        client = httprs.AsyncClient(timeout=_timeout(), limits=limits)
        await asyncio.gather(*(worker(client) for _ in range(tasks)))
        tally.failures.extend(_pool_problems(client._transport, "after the mix"))
        for _ in range(200):
            rid = next(ids)
            r = await client.get(f"{server.url}/clean/{rid}")
            if _outcome(seed, rid, r) != "ok":
                tally.failures.append(f"clean request {rid} got a wrong body")
        tally.failures.extend(_pool_problems(client._transport, "after the clean batch"))
        await client.aclose()
        if client._transport._pool_stats()["connections"]:
            tally.failures.append(f"pool not empty after close: {client._transport._pool_stats()}")

    asyncio.run(main())
    return tally


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run(
    seed: int, duration: float, threads: int, tasks: int, modes=("sync", "async")
) -> tuple[bool, list[str]]:
    """One fault-mix run per mode; returns (passed, report lines)."""
    server = FaultServer(seed)
    ids = _SharedIds()
    tallies = []
    try:
        prime(server, seed, ids)
        baseline = open_fds()  # the engine's own descriptors live as long as the process
        for mode in modes:
            deadline = time.monotonic() + duration
            if mode == "sync":
                tallies.append(run_sync(server, seed, ids, deadline, threads))
            else:
                tallies.append(run_async(server, seed, ids, deadline, tasks))
        server.join_connections()
        end = open_fds()
    finally:
        server.close()
    lines = [f"fault mix, seed {seed}, {duration:g}s per mode, server {server.url}"]
    failures = []
    for t in tallies:
        lines.append(t.report())
        failures += t.failures
    dup = {rid: n for rid, n in server.posts.items() if n > 1}
    if dup:
        failures.append(f"POST received more than once: {dict(list(dup.items())[:10])}")
    if server.bad_request_bodies:
        failures.append(f"POST bodies received wrong: {server.bad_request_bodies[:10]}")
    if end != baseline:
        failures.append(f"open descriptors {end} after the run, {baseline} before")
    lines.append(
        f"server: {server.connections} connections, {sum(server.posts.values())} POSTs "
        f"received, none twice: {not dup}; descriptors {baseline} before, {end} after"
    )
    lines.append("faultmix: PASS" if not failures else f"faultmix: FAIL ({len(failures)})")
    lines += [f"FAIL {f}" for f in failures[:50]]
    return not failures, lines


def prime(server: FaultServer, seed: int, ids) -> None:
    """One clean request per client kind, so process-lifetime state exists before the
    descriptor baseline is taken."""
    with httprs.Client() as client:
        clean_batch_sync(client, server, seed, ids, 1)

    async def once() -> None:
        async with httprs.AsyncClient() as client:
            await client.get(f"{server.url}/clean/{next(ids)}")

    asyncio.run(once())
    server.join_connections()


class _SharedIds:
    """Request ids shared by every worker (thread-safe, unbounded)."""

    def __init__(self) -> None:
        self._it = itertools.count(1)
        self._lock = threading.Lock()

    def __iter__(self):
        return self

    def __next__(self) -> int:
        with self._lock:
            return next(self._it)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1, help="random seed (1)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per mode (30)")
    p.add_argument("--threads", type=int, default=16, help="sync client threads (16)")
    p.add_argument("--tasks", type=int, default=64, help="async tasks (64)")
    p.add_argument("--modes", default="sync,async", help="sync,async")
    args = p.parse_args(argv)
    passed, lines = run(
        args.seed, args.duration, args.threads, args.tasks, tuple(args.modes.split(","))
    )
    print("\n".join(lines))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

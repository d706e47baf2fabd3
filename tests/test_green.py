"""Sync clients under gevent's and eventlet's monkey-patching: a request's wait yields to
the hub, as httpx's does on patched sockets, so other green threads (and the hub's
timers) run while it waits. Each case runs in a subprocess (the patch must come before
anything else there); the servers run here, in real threads."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
import threading

import pytest

_SCRIPT = r"""
import contextlib, json, sys

library, case, url = sys.argv[1], sys.argv[2], sys.argv[3]
if case == "late":
    import httprs

    early = httprs.Client(timeout=10)  # made before the patch (a preloaded app's)
    assert early.get(url + "/warm").status_code == 200
if library == "gevent":
    from gevent import monkey

    monkey.patch_all()
    import gevent

    spawn, sleep = gevent.spawn, gevent.sleep

    def outcomes(jobs, timeout=None):
        gevent.joinall(jobs, timeout=timeout)
        return [job.value if job.successful() else job.exception for job in jobs]

    def kill(job):
        job.kill(block=True, timeout=5)

    def in_threads(fn, n):
        pool = gevent.get_hub().threadpool
        return [pool.spawn(fn) for _ in range(n)]

else:
    # httpcore2, which eventlet's dnspython imports, imports trio if it can, and trio
    # does not load on eventlet's half-patched socket module.
    sys.modules["trio"] = None
    import eventlet

    eventlet.monkey_patch()
    from eventlet import tpool

    spawn, sleep = eventlet.spawn, eventlet.sleep

    def outcomes(jobs, timeout=None):
        results = []
        for job in jobs:
            try:
                with eventlet.Timeout(timeout):
                    results.append(job.wait())
            except BaseException as e:
                results.append(e)
        return results

    def kill(job):
        job.kill()

    def in_threads(fn, n):
        return [spawn(tpool.execute, fn) for _ in range(n)]

import httprs

out = {}
ticks = []


def ticker():
    while True:
        ticks.append(1)
        sleep(0.01)


if case in ("together", "late"):
    # The server answers none of them before it has all of them.
    with contextlib.nullcontext(early) if case == "late" else httprs.Client(timeout=10) as client:
        jobs = [spawn(lambda i=i: client.get(f"{url}/{i}").text) for i in range(8)]
        out["texts"] = sorted(outcomes(jobs))
elif case == "timeout":
    tick = spawn(ticker)
    with httprs.Client(timeout=0.5) as client:
        try:
            client.get(url)
        except httprs.ReadTimeout as e:
            out["error"] = type(e).__name__
    out["ticks"] = len(ticks)
    kill(tick)
elif case == "bodies":
    tick = spawn(ticker)
    with httprs.Client(timeout=10) as client:
        with client.stream("GET", f"{url}/bytes/3000000") as r:
            out["streamed"] = sum(len(c) for c in r.iter_bytes())
        out["read"] = len(client.get(f"{url}/bytes/2000000").content)

        def chunks():
            for i in range(40):
                sleep(0)
                yield bytes([i]) * 65536

        out["upload"] = client.post(f"{url}/upload_size", content=chunks()).json()
    out["ticks"] = len(ticks)
    kill(tick)
elif case == "tls":
    with httprs.Client(verify=sys.argv[4], timeout=10) as client:
        jobs = [spawn(lambda: client.get(url).status_code) for _ in range(4)]
        out["codes"] = outcomes(jobs)
elif case == "close":
    client = httprs.Client(timeout=30)

    def get():
        try:
            client.get(url)
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    job = spawn(get)
    sleep(0.3)
    client.close()
    out["error"] = outcomes([job], 5)[0]
elif case == "idle_cpu":
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    with httprs.Client(timeout=1.0) as client:

        def get():
            try:
                client.get(url)
            except httprs.ReadTimeout:
                return "ReadTimeout"

        start = cpu()
        jobs = [spawn(get) for _ in range(4)]
        out["results"] = outcomes(jobs)
        out["cpu"] = cpu() - start
elif case == "threadpool":
    with httprs.Client(timeout=10) as client:

        def gets():
            return [client.get(url).status_code for _ in range(10)]

        jobs = in_threads(gets, 3) + [spawn(gets) for _ in range(3)]
        out["codes"] = outcomes(jobs, 20)
elif case == "kill_closer":
    client = httprs.Client(timeout=30)
    jobs = [spawn(lambda: client.get(url)) for _ in range(4)]
    sleep(0.3)
    after = []

    def closer():
        client.close()
        after.append(1)

    job = spawn(closer)
    sleep(0)
    kill(job)
    out["closer_dead"] = job.dead
    out["closer_went_on"] = bool(after)
    out["waiters"] = [type(e).__name__ for e in outcomes(jobs, 5)]
print(json.dumps(out))
"""


def _library(name: str):
    missing = importlib.util.find_spec(name) is None
    return pytest.param(name, marks=pytest.mark.skipif(missing, reason=f"{name} not installed"))


@pytest.fixture(params=[_library("gevent"), _library("eventlet")])
def library(request) -> str:
    return request.param


def _run(tmp_path, library: str, case: str, url: str, *extra: str) -> dict:
    script = tmp_path / "green.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", str(script), library, case, url, *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _all_at_once(n: int):
    """Answers each connection's request once n requests have arrived (a blocking wait
    in one greenlet would keep the others from ever sending theirs)."""
    arrived = threading.Barrier(n, timeout=15)

    def handler(conn) -> None:
        req = conn.read_request()
        if req is None:
            return
        arrived.wait()
        conn.respond(req.target.encode())
        conn.wait_eof()

    return handler


def test_requests_in_greenlets_run_together(scripted, tmp_path, library):
    srv = scripted(_all_at_once(8))
    out = _run(tmp_path, library, "together", srv.url)
    assert out["texts"] == sorted(f"/{i}" for i in range(8))


def test_a_client_made_before_the_patch_waits_cooperatively_after_it(scripted, tmp_path, library):
    """(Its first request, before the patch, on a connection of its own: the server
    answers it at once.)"""
    together = _all_at_once(8)

    def handler(conn) -> None:
        if conn.index == 0:
            req = conn.read_request()
            if req is not None:
                conn.respond(b"warm", headers=[("Connection", "close")])
            return
        together(conn)

    srv = scripted(handler)
    out = _run(tmp_path, library, "late", srv.url)
    assert out["texts"] == sorted(f"/{i}" for i in range(8))


def _silent(conn) -> None:
    conn.read_request()
    conn.hold(10)


def test_a_waiting_request_lets_other_greenlets_run_and_times_out(scripted, tmp_path, library):
    srv = scripted(_silent)
    out = _run(tmp_path, library, "timeout", srv.url + "/")
    assert out["error"] == "ReadTimeout"
    # The ticker greenlet (every 10 ms) ran through the half-second wait.
    assert out["ticks"] >= 10


def test_bodies_stream_and_upload(server, tmp_path, library):
    out = _run(tmp_path, library, "bodies", server.url)
    assert out["streamed"] == 3_000_000
    assert out["read"] == 2_000_000
    body = b"".join(bytes([i]) * 65536 for i in range(40))
    assert out["upload"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert out["ticks"] > 0


def test_https(https_server, certs, tmp_path, library):
    out = _run(tmp_path, library, "tls", https_server.url + "/", certs.ca_file)
    assert out["codes"] == [200] * 4


def test_closing_the_client_ends_a_greenlet_waiting_on_it(scripted, tmp_path, library):
    srv = scripted(_silent)
    out = _run(tmp_path, library, "close", srv.url + "/")
    # As when another thread closes a sync client mid-request.
    assert out["error"] == "ReadError: the client has been closed"


def test_greenlets_waiting_together_do_not_spin(scripted, tmp_path, library):
    srv = scripted(_silent)
    out = _run(tmp_path, library, "idle_cpu", srv.url + "/")
    assert out["results"] == ["ReadTimeout"] * 4
    # Four greenlets waiting a second on a silent server: the process sleeps (each
    # round woke the driver again through the waiters' wakes: ~1 s of CPU).
    assert out["cpu"] < 0.3, out


def test_a_client_shared_with_the_hubs_threadpool(server, tmp_path, library):
    # Greenlets of the main thread and threadpool workers (each with its own hub):
    # a gevent Event bound to one hub, waited on from another, raised
    # InvalidThreadUseError.
    out = _run(tmp_path, library, "threadpool", server.url + "/")
    assert out["codes"] == [[200] * 10] * 6


def test_killing_a_greenlet_closing_the_client(scripted, tmp_path, library):
    srv = scripted(_silent)
    out = _run(tmp_path, library, "kill_closer", srv.url + "/")
    # The GreenletExit thrown into close() ends the greenlet (it was swallowed by a
    # noexcept function, and the greenlet went on).
    assert out["closer_dead"] and not out["closer_went_on"]
    assert out["waiters"] == ["ReadError"] * 4

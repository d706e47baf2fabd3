"""os.fork() with live clients.

A child inherits the parent's engines: their epoll instance, eventfd and pooled sockets
are the parent's open files. A client made before fork() must keep working in the parent
whatever the children do (use it, close it, exit), and work in the child too, on a fresh
loop with an empty pool. httpx shares the pooled sockets with its children, so parent and
child read each other's responses; httprs does better, so these tests are httprs_only.

Every child runs with a deadline, reports through a pipe and leaves with os._exit().
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import warnings

import pytest

import httprs

pytestmark = pytest.mark.httprs_only

CHILD_DEADLINE = 30.0


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns when a process with threads forks: that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _wait_child(pid: int, deadline: float) -> int:
    end = time.monotonic() + deadline
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not finish within {deadline} s")
        time.sleep(0.01)


def _child_main(fn, w: int) -> None:
    """In the child: run fn, write its JSON result to w, leave without returning."""
    code = 1
    try:
        signal.alarm(int(CHILD_DEADLINE))  # a hung child dies on its own
        out = {"ok": fn()}
        code = 0
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        out = {"error": f"{type(e).__name__}: {e}"}
    try:
        os.write(w, json.dumps(out).encode())
    finally:
        os._exit(code)


def run_in_child(fn, deadline: float = CHILD_DEADLINE, in_parent=None):
    """fork(); the child runs fn() and reports; returns fn's result. `in_parent` is
    called in the parent as soon as fork() returned there."""
    r, w = os.pipe()
    pid = _fork()
    if pid == 0:
        os.close(r)
        _child_main(fn, w)
    if in_parent is not None:
        in_parent()
    os.close(w)
    try:
        code = _wait_child(pid, deadline)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
    finally:
        os.close(r)
    result = json.loads(data) if data else {"error": "no report"}
    assert code == 0 and "ok" in result, (code, result)
    return result["ok"]


def _run_in_children(n: int, body) -> list[int]:
    """fork() n children; child k runs body(k) under the deadline and exits 0, or 1 when
    it raised. Returns their pids, for _wait_child once the parent has done its part."""
    pids = []
    for k in range(n):
        pid = _fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(int(CHILD_DEADLINE))  # a hung child dies on its own
                body(k)
                code = 0
            finally:
                os._exit(code)  # never back into pytest, whatever body raised
        pids.append(pid)
    return pids


def echo_query(response) -> str:
    assert response.status_code == 200
    return response.json()["query"]


def check_echo(client, base: str, tag: str, n: int = 3) -> None:
    for i in range(n):
        q = f"who={tag}&i={i}"
        assert echo_query(client.get(f"{base}/echo?{q}")) == q


# ---------------------------------------------------------------------- sync


@pytest.mark.parametrize("how", ["close", "exit"])
def test_child_use_then_exit_parent_keeps_working(server, how):
    client = httprs.Client(timeout=5)
    check_echo(client, server.url, "parent-before")  # a pooled connection
    assert client._transport._pool_stats()["idle"] == 1

    def child():
        # An empty pool here: the inherited connection is not ours.
        stats = client._transport._pool_stats()
        check_echo(client, server.url, "child")
        if how == "close":
            client.close()
        return stats

    stats = run_in_child(child)
    # The parent's pooled connection is still usable, and new ones work too.
    check_echo(client, server.url, "parent-after", n=5)
    with client.stream("GET", f"{server.url}/stream/20") as r1:
        check_echo(client, server.url, "parent-second-connection", n=2)
        assert len(r1.read().splitlines()) == 20
    assert client._transport._pool_stats() == {"connections": 2, "idle": 2}
    client.close()
    assert stats == {"connections": 0, "idle": 0}


def test_child_gc_of_inherited_client(server):
    # The child drops its only reference to a client: the engine is freed in the
    # child (its destructor runs close()) and must not tear down the parent's loop.
    holder = {"client": httprs.Client(timeout=5)}
    check_echo(holder["client"], server.url, "parent")

    def child():
        holder.clear()
        gc.collect()
        return True

    assert run_in_child(child)
    client = holder["client"]
    check_echo(client, server.url, "parent-after", n=5)
    client.close()


def test_parent_and_children_concurrently(server):
    # Children and parent use the same client at the same time: no one reads
    # another's responses.
    client = httprs.Client(timeout=5)
    check_echo(client, server.url, "warm")
    pids = _run_in_children(3, lambda k: check_echo(client, server.url, f"child{k}", n=20))
    check_echo(client, server.url, "parent", n=40)
    assert [_wait_child(pid, CHILD_DEADLINE) for pid in pids] == [0, 0, 0]
    check_echo(client, server.url, "parent-after", n=5)
    client.close()


def test_child_never_takes_a_loop_the_parent_kept(server):
    # A closed client's emptied loop is kept for the next Client(); its epoll set is an
    # open file the child shares with the parent. Children drop their copies and make
    # their own loops, so clients made after the fork in parent and children run side by
    # side, the parent's on the kept loop.
    for _ in range(2):
        with httprs.Client(timeout=5) as c:
            check_echo(c, server.url, "warm", n=1)
    spare = httprs._core._spare_loop_count()
    assert spare >= 1

    def child(k):
        assert httprs._core._spare_loop_count() == 0
        for _ in range(2):
            with httprs.Client(timeout=5) as c:
                check_echo(c, server.url, f"child{k}", n=10)
        assert httprs._core._spare_loop_count() == 1

    pids = _run_in_children(2, child)
    with httprs.Client(timeout=5) as c:
        assert httprs._core._spare_loop_count() == spare - 1
        check_echo(c, server.url, "parent", n=30)
    assert [_wait_child(pid, CHILD_DEADLINE) for pid in pids] == [0, 0]
    assert httprs._core._spare_loop_count() == spare


def test_open_response_in_child_fails_cleanly(server):
    # A response still streaming at fork time belongs to the parent's socket: in the
    # child, reading on raises ReadError instead of stealing the parent's bytes.
    client = httprs.Client(timeout=5)
    with client.stream("GET", f"{server.url}/slow_body?delay=0.3") as response:

        def child():
            try:
                response.read()
            except httprs.ReadError:
                outcome = "ReadError"
            else:
                outcome = "read"
            check_echo(client, server.url, "child")
            return outcome

        assert run_in_child(child) == "ReadError"
        assert response.read() == b"slow body"
    check_echo(client, server.url, "parent")
    client.close()


def test_fork_while_another_thread_is_mid_request(server):
    client = httprs.Client(timeout=10)
    check_echo(client, server.url, "warm")
    results: list = []

    def slow_worker():
        for _ in range(3):
            r = client.get(f"{server.url}/slow?delay=0.3")
            results.append((r.status_code, r.content))

    t = threading.Thread(target=slow_worker)
    t.start()
    time.sleep(0.15)  # the worker thread is driving the loop, waiting for its response

    def child():
        check_echo(client, server.url, "child", n=5)
        client.close()
        return True

    assert run_in_child(child)
    t.join(20)
    assert not t.is_alive()
    assert results == [(200, b"slow")] * 3
    check_echo(client, server.url, "parent-after")
    client.close()


def test_fork_while_another_thread_holds_the_engine_mutex(server):
    # fork() waits for the mutex (the pthread_atfork prepare handler takes it), so the
    # child never inherits it locked by a thread that does not exist there.
    client = httprs.Client(timeout=5)
    check_echo(client, server.url, "warm")
    holder = threading.Thread(target=client._transport._hold_engine_mutex, args=(500,))
    holder.start()
    time.sleep(0.1)

    def child():
        check_echo(client, server.url, "child")
        client.close()
        return True

    assert run_in_child(child, deadline=20)
    holder.join(10)
    check_echo(client, server.url, "parent-after")
    client.close()


@pytest.mark.parametrize("verify", ["ca_file", "default"])
def test_fork_waits_for_a_tls_context_being_built(https_server, certs, verify):
    # Building a TLS context runs without the GIL and outside any engine, and OpenSSL
    # takes process-wide locks there: a fork() meanwhile could leave the child's copy
    # of one held (a child that then built a context waited for ever; 3 in ~1,500
    # forks, session 49). fork() now waits for the contexts being built (src/tls_gate.h):
    # one is held inside that gate for 0.5 s while the main thread forks.
    from httprs import _core

    arg = certs.ca_file if verify == "ca_file" else True
    _core._tls_gate_pause(500)
    builder = threading.Thread(target=lambda: httprs.Client(verify=arg).close())
    builder.start()
    deadline = time.monotonic() + 10
    while _core._tls_gate_inside() == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _core._tls_gate_inside() == 1

    def child():
        with httprs.Client(verify=certs.ca_file, timeout=5) as client:
            return _core._tls_gate_inside(), client.get(https_server.url + "/").status_code

    after_fork = []
    in_parent = lambda: after_fork.append(_core._tls_gate_inside())  # noqa: E731
    assert run_in_child(child, in_parent=in_parent) == [0, 200]
    builder.join(10)
    assert after_fork == [0]  # fork() waited for the context being built
    assert _core._tls_gate_inside() == 0


def test_fork_storm_with_busy_threads(server):
    # Threads keep the engine mutex busy (submitting, driving, releasing) while the
    # main thread forks repeatedly: no child deadlocks, no answer crosses over.
    client = httprs.Client(timeout=10)
    stop = threading.Event()
    errors: list = []
    counts = [0, 0, 0]

    def hammer(k):
        i = 0
        while not stop.is_set():
            q = f"t={k}&i={i}"
            try:
                got = echo_query(client.get(f"{server.url}/echo?{q}"))
                if got != q:
                    errors.append((q, got))
            except Exception as e:  # noqa: BLE001
                errors.append((q, repr(e)))
            counts[k] += 1
            i += 1

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(8):

            def child(n=n):
                check_echo(client, server.url, f"child{n}", n=2)
                if n % 2:
                    client.close()
                return True

            assert run_in_child(child, deadline=20)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert errors == []
    assert all(c > 0 for c in counts)
    check_echo(client, server.url, "parent-after")
    client.close()


# ---------------------------------------------------------------------- multiprocessing

_pool_client = None
_pool_url = None


def _pool_fetch(i: int) -> tuple[int, str]:
    q = f"job={i}"
    return i, echo_query(_pool_client.get(f"{_pool_url}/echo?{q}"))


def test_multiprocessing_fork_pool_shares_a_client(server):
    global _pool_client, _pool_url
    _pool_client = httprs.Client(timeout=5)
    _pool_url = server.url
    try:
        check_echo(_pool_client, server.url, "warm")
        ctx = multiprocessing.get_context("fork")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            with ctx.Pool(3) as pool:
                results = pool.map_async(_pool_fetch, range(30), chunksize=1).get(timeout=60)
        assert results == [(i, f"job={i}") for i in range(30)]
        check_echo(_pool_client, server.url, "parent-after", n=5)
    finally:
        _pool_client.close()
        _pool_client = None


# ---------------------------------------------------------------------- async


def test_async_client_in_child_under_new_event_loop(server):
    # The parent forks from inside its running event loop; the child uses the same
    # AsyncClient under a new loop, closes it and exits; the parent goes on.
    async def parent():
        client = httprs.AsyncClient(timeout=5)
        r = await client.get(f"{server.url}/echo?who=parent")
        assert echo_query(r) == "who=parent"

        def child():
            async def use():
                qs = []
                for i in range(3):
                    qs.append(echo_query(await client.get(f"{server.url}/echo?who=child&i={i}")))
                await client.aclose()
                return qs

            return asyncio.run(use())

        r_, w_ = os.pipe()
        pid = _fork()
        if pid == 0:
            os.close(r_)
            _child_main(child, w_)
        os.close(w_)
        # Keep using the client while the child runs.
        for i in range(10):
            q = f"who=parent&i={i}"
            assert echo_query(await client.get(f"{server.url}/echo?{q}")) == q
        code = await asyncio.get_running_loop().run_in_executor(
            None, _wait_child, pid, CHILD_DEADLINE
        )
        data = os.read(r_, 65536)
        os.close(r_)
        assert code == 0, data
        assert json.loads(data) == {"ok": [f"who=child&i={i}" for i in range(3)]}
        for i in range(5):
            q = f"who=parent-after&i={i}"
            assert echo_query(await asyncio.wait_for(client.get(f"{server.url}/echo?{q}"), 5)) == q
        await client.aclose()

    asyncio.run(parent())


def test_async_client_after_parent_loop_closed(server):
    # The usual pattern: asyncio.run() in the parent, fork, asyncio.run() in the child.
    client = httprs.AsyncClient(timeout=5)

    async def use(tag):
        return [
            echo_query(await client.get(f"{server.url}/echo?who={tag}&i={i}")) for i in range(3)
        ]

    assert asyncio.run(use("parent")) == [f"who=parent&i={i}" for i in range(3)]

    def child():
        out = asyncio.run(use("child"))
        asyncio.run(client.aclose())
        return out

    assert run_in_child(child) == [f"who=child&i={i}" for i in range(3)]
    assert asyncio.run(use("parent-after")) == [f"who=parent-after&i={i}" for i in range(3)]
    asyncio.run(client.aclose())


def test_async_client_in_child_under_trio(server):
    trio = pytest.importorskip("trio")
    client = httprs.AsyncClient(timeout=5)

    async def use(tag):
        return [
            echo_query(await client.get(f"{server.url}/echo?who={tag}&i={i}")) for i in range(3)
        ]

    assert trio.run(use, "parent") == [f"who=parent&i={i}" for i in range(3)]

    def child():
        out = trio.run(use, "child")
        trio.run(client.aclose)
        return out

    assert run_in_child(child) == [f"who=child&i={i}" for i in range(3)]
    assert trio.run(use, "parent-after") == [f"who=parent-after&i={i}" for i in range(3)]
    trio.run(client.aclose)


# ---------------------------------------------------------------------- TLS


def test_tls_connection_stays_the_parents(https_server, certs):
    # The child neither reads from nor writes to the parent's TLS connection: no
    # close_notify from the child's close, so the parent keeps reusing it.
    client = httprs.Client(verify=ssl.create_default_context(cafile=certs.ca_file), timeout=5)
    assert client.get(https_server.url).json()["connection_index"] == 0

    def child():
        index = client.get(https_server.url).json()["connection_index"]
        client.close()
        return index

    assert run_in_child(child) == 1  # the child's own, new connection
    indexes = [client.get(https_server.url).json()["connection_index"] for _ in range(3)]
    assert indexes == [0, 0, 0]
    assert https_server.connections == 2
    client.close()


_FORK_DURING_PYTHON_TLS = r"""
import json, os, ssl, sys, threading, time
import httprs
from httprs import _core

url, ca = sys.argv[1], sys.argv[2]


class Ctx(ssl.SSLContext):  # a subclass: TLS runs through Python's ssl module
    pass


ctx = Ctx(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
assert _core._uses_python_tls(ctx)
client = httprs.Client(verify=ctx)
stop = False
done = [0]
errors = []


def worker():
    while not stop:
        try:
            assert client.get(url).status_code == 200
            done[0] += 1
        except BaseException as e:
            errors.append(repr(e))
            return


t = threading.Thread(target=worker)
t.start()
while done[0] == 0 and not errors:
    time.sleep(0.005)
codes = []
for _ in range(50):
    pid = os.fork()
    if pid == 0:
        try:
            client.close()  # the child's copy of the engine works and closes
            os._exit(0)
        except BaseException:
            os._exit(3)
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    time.sleep(0.002)
stop = True
t.join(30)
client.close()
print(json.dumps({"codes": codes, "done": done[0], "errors": errors}))
"""


def test_fork_while_python_tls_callback_runs(https_server, certs, tmp_path):
    # A thread inside the engine loop (engine mutex held) waits for the GIL in a
    # Python TLS callback while the main thread, holding the GIL, forks: the fork
    # must take the engine locks without the GIL (os.register_at_fork hook),
    # else both wait forever.
    script = tmp_path / "fork_tls.py"
    script.write_text(_FORK_DURING_PYTHON_TLS)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", str(script), https_server.url + "/", certs.ca_file],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    assert out["codes"] == [0] * 50
    assert out["done"] > 0

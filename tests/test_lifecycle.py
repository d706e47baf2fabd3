"""Closing a client never blocks on work it cannot cancel.

A getaddrinfo() call that has started in libuv's thread pool cannot be cancelled. Closing
the client used to run the loop until every such call had returned, holding the engine
mutex: with a slow DNS server `await client.aclose()` froze the event loop for as long as
the lookup took, and a thread taking the mutex with the GIL held (a response dropped in
another thread) froze the whole interpreter. The slow resolver is a getaddrinfo()
interposed with LD_PRELOAD in a child interpreter: it sleeps, then resolves to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from servers.tls import server_context, tls_server

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.httprs_only

SLOW_HOST = "slow-dns.httprs.test"
DNS_DELAY = 3.0

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*gai_fn)(const char*, const char*, const struct addrinfo*, struct addrinfo**);

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res) {
  gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  if (node != NULL && strcmp(node, "@HOST@") == 0) {
    const char* delay = getenv("HTTPRS_TEST_DNS_DELAY");
    double s = delay ? atof(delay) : 3.0;
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return real("127.0.0.1", service, hints, res);
  }
  return real(node, service, hints, res);
}
""".replace("@HOST@", SLOW_HOST)


@pytest.fixture(scope="module")
def slow_dns(tmp_path_factory) -> Path:
    """A shared object whose getaddrinfo() takes DNS_DELAY seconds for SLOW_HOST."""
    d = tmp_path_factory.mktemp("slowdns")
    src = d / "slowdns.c"
    src.write_text(SHIM)
    lib = d / "libslowdns.so"
    proc = subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", "-o", str(lib), str(src), "-ldl"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},  # no ASan in gcc
    )
    assert proc.returncode == 0, proc.stderr
    return lib


def run_child(slow_dns: Path, code: str, timeout: float = 30) -> dict:
    env = dict(os.environ)
    # After what is preloaded already (the ASan build's libasan must stay first).
    env["LD_PRELOAD"] = " ".join(filter(None, [os.environ.get("LD_PRELOAD"), str(slow_dns)]))
    env["HTTPRS_TEST_DNS_DELAY"] = str(DNS_DELAY)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_shim_makes_resolution_slow(slow_dns):
    # The premise of the tests below: the lookup really takes DNS_DELAY seconds.
    out = run_child(
        slow_dns,
        f"""
        import json, socket, time
        t0 = time.monotonic()
        addr = socket.getaddrinfo({SLOW_HOST!r}, 80)[0][4][0]
        print(json.dumps({{"addr": addr, "took": time.monotonic() - t0}}))
        """,
    )
    assert out["addr"] == "127.0.0.1"
    assert out["took"] >= DNS_DELAY * 0.9


def test_close_does_not_wait_for_resolver(slow_dns, server):
    port = server.url.rsplit(":", 1)[1]
    out = run_child(
        slow_dns,
        f"""
        import json, threading, time
        import httprs

        client = httprs.Client()
        errors = []

        def fetch():
            try:
                client.get("http://{SLOW_HOST}:{port}/")
            except Exception as e:
                errors.append(type(e).__name__)

        t = threading.Thread(target=fetch)
        t.start()
        time.sleep(0.3)  # the lookup is running in libuv's thread pool
        t0 = time.monotonic()
        client.close()
        took = time.monotonic() - t0
        t.join(10)
        print(json.dumps({{"close": took, "errors": errors, "alive": t.is_alive()}}))
        """,
    )
    assert out["close"] < 1.0, out
    assert out["errors"] == ["ReadError"], out
    assert not out["alive"]


def test_close_does_not_freeze_the_interpreter(slow_dns, server):
    # While one thread closes the client, the main thread drops a response of the same
    # client and reads its pool statistics (both take the engine mutex; the statistics
    # with the GIL held, as the async bridge's calls do) and a third thread keeps
    # ticking: no thread may stall for the length of the lookup.
    port = server.url.rsplit(":", 1)[1]
    out = run_child(
        slow_dns,
        f"""
        import gc, json, threading, time
        import httprs

        client = httprs.Client()
        response = client.send(client.build_request("GET", "http://127.0.0.1:{port}/stream/50"),
                               stream=True)
        threading.Thread(
            target=lambda: client.get("http://{SLOW_HOST}:{port}/"), daemon=True
        ).start()
        gaps = []
        stop = False

        def tick():
            last = time.monotonic()
            while not stop:
                time.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = threading.Thread(target=tick)
        ticker.start()
        time.sleep(0.3)
        closer = threading.Thread(target=client.close)
        closer.start()
        time.sleep(0.05)
        t0 = time.monotonic()
        del response
        gc.collect()
        stats = client._transport._pool_stats()
        took = time.monotonic() - t0
        closer.join(10)
        stop = True
        ticker.join()
        print(json.dumps({{"took": took, "max_gap": max(gaps), "closer": closer.is_alive(),
                           "stats": stats}}))
        """,
    )
    assert out["took"] < 1.0, out
    assert out["max_gap"] < 1.0, out
    assert not out["closer"]
    assert out["stats"] == {"connections": 0, "idle": 0}


def test_aclose_does_not_freeze_the_event_loop(slow_dns, server):
    port = server.url.rsplit(":", 1)[1]
    out = run_child(
        slow_dns,
        f"""
        import asyncio, json, time
        import httprs

        async def main():
            client = httprs.AsyncClient()
            task = asyncio.create_task(client.get("http://{SLOW_HOST}:{port}/"))
            gaps = []

            async def tick():
                last = time.monotonic()
                while True:
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            ticker = asyncio.create_task(tick())
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            await client.aclose()
            took = time.monotonic() - t0
            try:
                await asyncio.wait_for(task, 5)
                outcome = "ok"
            except BaseException as e:
                outcome = type(e).__name__
            await asyncio.sleep(0.05)
            ticker.cancel()
            return {{"aclose": took, "max_gap": max(gaps), "task": outcome}}

        print(json.dumps(asyncio.run(main())))
        """,
    )
    assert out["aclose"] < 1.0, out
    assert out["max_gap"] < 1.0, out
    assert out["task"] != "ok", out


def test_closed_client_resolver_finishes_in_background(slow_dns, server):
    # The loop handed over at close keeps its lookup until it returns, then goes away:
    # nothing crashes when the late getaddrinfo() answer arrives, and the process exits.
    port = server.url.rsplit(":", 1)[1]
    out = run_child(
        slow_dns,
        f"""
        import json, os, threading, time
        import httprs

        clients = [httprs.Client() for _ in range(3)]
        for c in clients:
            threading.Thread(
                target=lambda c=c: c.get("http://{SLOW_HOST}:{port}/"), daemon=True
            ).start()
        time.sleep(0.3)
        before = len(os.listdir("/proc/self/fd"))
        for c in clients:
            c.close()
        time.sleep({DNS_DELAY} + 1.0)
        after = len(os.listdir("/proc/self/fd"))
        # A fresh client still works in the same process.
        with httprs.Client() as c:
            status = c.get("http://127.0.0.1:{port}/").status_code
        print(json.dumps({{"before": before, "after": after, "status": status}}))
        """,
    )
    assert out["status"] == 200
    # Each closed engine's epoll and eventfd descriptors are gone once its lookup ended.
    assert out["after"] <= out["before"] - 6, out


def test_hung_resolver_is_connect_timeout_and_does_not_delay_ip_literals(slow_dns, server):
    """F14: eight lookups that take DNS_DELAY (more than libuv's four resolver threads)
    each end in ConnectTimeout near the connect timeout, and a request to an IP literal
    meanwhile is not queued behind them."""
    port = server.url.rsplit(":", 1)[1]
    out = run_child(
        slow_dns,
        f"""
        import json, threading, time
        import httprs

        client = httprs.Client(timeout=httprs.Timeout(5.0, connect=0.5))
        results = []

        def fetch():
            t0 = time.monotonic()
            try:
                client.get("http://{SLOW_HOST}:{port}/")
                results.append(("ok", time.monotonic() - t0))
            except Exception as e:
                results.append((type(e).__name__, time.monotonic() - t0))

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        status = client.get("http://127.0.0.1:{port}/").status_code
        literal = time.monotonic() - t0
        for t in threads:
            t.join(10)
        print(json.dumps({{"results": results, "literal": literal, "status": status}}))
        """,
    )
    assert out["status"] == 200
    assert out["literal"] < DNS_DELAY / 2, out
    assert sorted(name for name, _ in out["results"]) == ["ConnectTimeout"] * 8, out
    assert max(took for _, took in out["results"]) < DNS_DELAY * 0.8, out


# Scripts run as a wheel's installation starts them: httprs-install.pth processed first
# (an editable install has no such file), its directory the last argument.
_STARTUP = """
import site, sys
site.addsitedir(sys.argv.pop())
"""


def _startup_dir(tmp_path: Path) -> str:
    site_dir = tmp_path / "site"
    site_dir.mkdir(exist_ok=True)
    shutil.copyfile(REPO / "httprs-install.pth", site_dir / "httprs-install.pth")
    return str(site_dir)


def _run_script(tmp_path: Path, body: str, *args: str, timeout: float = 60):
    script = tmp_path / "script.py"
    script.write_text(_STARTUP + body)
    return subprocess.run(
        [sys.executable, str(script), *args, _startup_dir(tmp_path)],
        capture_output=True,
        timeout=timeout,
    )


# A client whose TLS runs through Python's ssl (a context subclass), trusting argv[2].
_PYTHON_TLS_CLIENT = """
import ssl, sys
import httprs


class PinningContext(ssl.SSLContext):
    pass


ctx = PinningContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2])
client = httprs.Client(verify=ctx, timeout=10)
"""


_EXIT_MID_TLS = (
    """
import threading, time
"""
    + _PYTHON_TLS_CLIENT
    + """


def busy():
    while True:
        client.get(sys.argv[1])


for _ in range(12):
    threading.Thread(target=busy, daemon=True).start()
time.sleep(0.3)
"""
)


def test_exit_with_daemon_threads_mid_python_tls_does_not_crash(certs, tmp_path):
    """The interpreter exits while daemon threads wait on responses over TLS run by
    Python's ssl (a context subclass: truststore's, a pinning one, one logging keys). A
    thread's wait is still in the engine with the GIL let go; bytes arriving then are fed
    to the SSLObject by a callback that takes the GIL. After finalization that crashed
    the process (PyGILState_Ensure made a thread state for no interpreter: SIGSEGV in
    about one exit in seven, found in session 46); the callbacks now refuse once
    finalization began (ForeignTlsOps::usable), and the threads end as they do on
    httprs's own TLS. Twelve exits, each must be clean."""
    import random
    import time

    def handler(conn) -> None:
        while conn.read_request() is not None:
            time.sleep(random.random() * 0.03)  # some threads are always waiting
            conn.respond(b"hello")

    srv = tls_server(server_context(certs.server), handler)
    try:
        codes = [
            _run_script(tmp_path, _EXIT_MID_TLS, srv.url + "/", certs.ca_file).returncode
            for _ in range(12)
        ]
    finally:
        srv.close()
    assert codes == [0] * 12


_EXIT_IN_TLS_CALL = """
import asyncio, gc, ssl, sys, threading, time
import httprs

inside = threading.Event()
slow = False


class SlowObject:
    # An SSLObject whose collection, once `slow`, pauses with the GIL let go: a Python
    # TLS call (the session's close) under way in a daemon thread as the exit begins.
    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        return getattr(self._obj, name)

    def __del__(self, sleep=time.sleep):
        if slow:
            inside.set()
            sleep(0.3)


class SlowContext(ssl.SSLContext):
    def wrap_bio(self, *args, **kwargs):
        return SlowObject(super().wrap_bio(*args, **kwargs))


class SlowFinalization:
    def __del__(self, sleep=time.sleep):
        sleep(1.0)  # finalization under way: the daemon thread wakes meanwhile


ctx = SlowContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(sys.argv[2])
client = httprs.Client(verify=ctx, timeout=10)
client.get(sys.argv[1])
slow = True


def busy():
    while True:
        client.get(sys.argv[1])  # each response closes its connection


async def abusy():
    async with httprs.AsyncClient(verify=ctx) as aclient:
        while True:
            await aclient.get(sys.argv[1])


if sys.argv[3] == "sync":
    threading.Thread(target=busy, daemon=True).start()
else:
    threading.Thread(target=asyncio.run, args=(abusy(),), daemon=True).start()
inside.wait(10)
# Garbage for finalization's collection (after it began), and none collected before.
gc.set_threshold(1_000_000_000)
cycle = SlowFinalization()
cycle.me = cycle
del cycle
"""


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_exit_while_a_python_tls_call_is_under_way_does_not_crash(certs, tmp_path, mode):
    """A daemon thread is inside a Python-run TLS call (here a session's close, its
    collection letting the GIL go) when the interpreter exits. The thread used to take
    the GIL back once finalization had begun, and Python ended it there, inside the
    engine's destructors: std::terminate, an abort at every such exit (session 50; it
    showed once in CI through the test above). A client's thread, or an event loop's.
    The barrier is the last atexit handler (httprs-install.pth registers it at start-up). At exit the Python TLS calls are now
    closed before finalization, and the calls under way are waited for (at most 2 s):
    each exit is clean."""

    def handler(conn) -> None:
        if conn.read_request() is not None:
            conn.respond(b"hello", headers=[("Connection", "close")])

    srv = tls_server(server_context(certs.server), handler)
    try:
        runs = [
            _run_script(tmp_path, _EXIT_IN_TLS_CALL, srv.url + "/", certs.ca_file, mode)
            for _ in range(2)
        ]
    finally:
        srv.close()
    assert [(r.returncode, r.stderr.decode()[-2000:]) for r in runs] == [(0, "")] * 2


_ATEXIT_NEEDS_A_DAEMON_THREAD = (
    """
import atexit, queue, ssl, threading

shipped = queue.Queue()


def flush():  # registered before httprs is imported, as logging.shutdown is
    shipped.put("last")
    shipped.join()


atexit.register(flush)
"""
    + _PYTHON_TLS_CLIENT
    + """


def shipper():
    while True:
        item = shipped.get()
        print(item, client.get(sys.argv[1]).status_code, flush=True)
        shipped.task_done()


threading.Thread(target=shipper, daemon=True).start()
shipped.put("first")
shipped.join()
if sys.argv[3] == "by_hand":  # the interpreter goes on after it
    atexit._run_exitfuncs()
    worker = threading.Thread(target=lambda: print("after", client.get(sys.argv[1]).status_code))
    worker.start()
    worker.join()
"""
)


@pytest.mark.parametrize("how", ["exit", "by_hand"])
def test_atexit_handlers_still_reach_daemon_threads_over_python_tls(certs, tmp_path, how):
    """Daemon threads run while atexit handlers do, and a handler may wait for one (a
    log handler shipping its last records over HTTPS): the exit barrier must not refuse
    their Python-run TLS before every handler has run (a first barrier, registered when
    httprs was imported, ran before the handlers registered earlier and hung such an exit
    for ever). `atexit._run_exitfuncs()` called by hand closes nothing."""

    def handler(conn) -> None:
        while conn.read_request() is not None:
            conn.respond(b"hello")

    srv = tls_server(server_context(certs.server), handler)
    try:
        run = _run_script(
            tmp_path, _ATEXIT_NEEDS_A_DAEMON_THREAD, srv.url + "/", certs.ca_file, how, timeout=30
        )
    finally:
        srv.close()
    expected = ["first 200", "last 200"] + (["after 200"] if how == "by_hand" else [])
    assert (run.returncode, run.stdout.decode().splitlines(), run.stderr) == (0, expected, b"")

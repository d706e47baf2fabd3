"""A socket.getaddrinfo replaced by the user steers connections, as it does in httpx.

httpx resolves names through Python's socket module, so tests and DNS-override tools
that patch socket.getaddrinfo decide where its connections go. httprs resolves in
C++; when socket.getaddrinfo is not the socket module's own, it resolves through it.
"""

import asyncio
import contextlib
import os
import socket
import threading
import time
from unittest import mock

import pytest

import httprs

_real_getaddrinfo = socket.getaddrinfo


def _override(name, calls):
    """A getaddrinfo that maps `name` to 127.0.0.1 and leaves other names alone."""

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):  # httpcore's async backends pass the IDNA bytes
            host = host.decode("ascii")
        calls.append((host, port, family, type))
        if host == name:
            return _real_getaddrinfo("127.0.0.1", port, family, type, proto, flags)
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    return fake


def _port(server):
    return int(server.url.rsplit(":", 1)[1])


def test_patched_getaddrinfo_is_honoured(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/echo"
    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        with httprs.Client() as client:
            response = client.get(url)
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["host"] == f"service.test.invalid:{_port(server)}"
    assert ("service.test.invalid", _port(server)) in [c[:2] for c in calls]
    assert all(c[3] == socket.SOCK_STREAM for c in calls)


def test_patched_getaddrinfo_is_honoured_async(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/echo"

    async def main():
        async with httprs.AsyncClient() as client:
            return await client.get(url)

    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        response = asyncio.run(main())
    assert response.status_code == 200
    headers = dict(response.json()["headers"])
    assert headers["host"] == f"service.test.invalid:{_port(server)}"
    assert ("service.test.invalid", _port(server)) in [c[:2] for c in calls]


def test_patched_getaddrinfo_failure_is_a_connect_error(server):
    def failing(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with mock.patch("socket.getaddrinfo", failing):
        with httprs.Client() as client:
            with pytest.raises(httprs.ConnectError, match="Name or service not known"):
                # A resolvable name: only the patch can make this fail.
                client.get(f"http://localhost:{_port(server)}/")


class _Blocked(RuntimeError):
    """What pytest-socket's --disable-socket guard raises: not an OSError."""


def _blocking(*args, **kwargs):
    raise _Blocked("A test tried to use socket.getaddrinfo.")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_guard_on_getaddrinfo_blocks_every_host_as_in_httpx(server, host):
    """pytest-socket's --disable-socket replaces socket.getaddrinfo with a guard that
    raises a RuntimeError: it leaves the request as it is, for a name and for an IP
    literal too (httpcore's socket.create_connection resolves literals as well); the
    client works again once the guard is gone."""
    url = f"http://{host}:{_port(server)}/"
    with httprs.Client() as client:
        with mock.patch("socket.getaddrinfo", _blocking):
            with pytest.raises(_Blocked, match="socket.getaddrinfo"):
                client.get(url)
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("library", "host", "blocked"),
    [
        ("asyncio", "127.0.0.1", False),
        ("asyncio", "localhost", True),
        ("trio", "127.0.0.1", True),
        ("trio", "localhost", True),
    ],
)
def test_a_guard_on_getaddrinfo_blocks_the_hosts_httpx_asks_it_about_async(
    server, library, host, blocked
):
    """httpcore's async connect asks socket.getaddrinfo as its backend does: on trio
    (trio.open_tcp_stream) about every host, on asyncio (anyio.connect_tcp) about names
    only, an IP literal being connected to as it is; so a guard on getaddrinfo alone
    (pytest-socket's resolver guard, a patch) stops those requests and no others."""
    url = f"http://{host}:{_port(server)}/"

    async def main():
        async with httprs.AsyncClient() as client:
            with mock.patch("socket.getaddrinfo", _blocking):
                if blocked:
                    with pytest.raises(_Blocked, match="socket.getaddrinfo"):
                        await client.get(url)
                else:
                    assert (await client.get(url)).status_code == 200
            return (await client.get(url)).status_code

    if library == "trio":
        outcome = pytest.importorskip("trio").run(main)
    else:
        outcome = asyncio.run(main())
    assert outcome == 200


def test_unpatching_restores_the_normal_resolver(server):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/"
    with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
        with httprs.Client() as client:
            assert client.get(url).status_code == 200
    with httprs.Client() as client:
        with pytest.raises(httprs.ConnectError):
            client.get(url)
        assert client.get(f"http://127.0.0.1:{_port(server)}/").status_code == 200


def test_patch_made_between_requests_is_seen(server):
    """A patch made after requests found the resolver genuine (which is remembered with
    the socket module's dict version) is honoured by the very next request. It is asked
    when a connection opens, as httpcore asks it: a pooled connection is reused without
    a lookup (until session 46 httprs asked it at every request), and a new one, the
    patch gone, fails."""
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/"
    with httprs.Client() as client:
        for _ in range(3):
            assert client.get(f"http://127.0.0.1:{_port(server)}/").status_code == 200
        with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
            assert client.get(url).status_code == 200
            assert client.get(url).status_code == 200
        assert len(calls) == 1
        assert client.get(url).status_code == 200  # (the pooled connection)
    with httprs.Client() as client:
        with pytest.raises(httprs.ConnectError):
            client.get(url)


@pytest.mark.anyio
async def test_patch_made_between_requests_is_seen_async(server, anyio_backend):
    calls = []
    url = f"http://service.test.invalid:{_port(server)}/"
    async with httprs.AsyncClient() as client:
        for _ in range(3):
            assert (await client.get(f"http://127.0.0.1:{_port(server)}/")).status_code == 200
        with mock.patch("socket.getaddrinfo", _override("service.test.invalid", calls)):
            assert (await client.get(url)).status_code == 200
            assert (await client.get(url)).status_code == 200
        assert len(calls) == 1
        assert (await client.get(url)).status_code == 200  # (the pooled connection)
    async with httprs.AsyncClient() as client:
        with pytest.raises(httprs.ConnectError):
            await client.get(url)


@pytest.mark.anyio
async def test_a_slow_patched_resolver_does_not_block_the_event_loop(server, anyio_backend):
    """A replaced getaddrinfo that takes its time (a DNS cache's miss, an override doing
    its own lookup) runs in a worker thread, as httpcore's async connects run it: the
    event loop goes on meanwhile, and two lookups overlap. (httprs until session 46
    called it in the loop's thread, at every request: a 0.5 s lookup stopped every task
    for 0.5 s, two took 1 s.)"""
    import anyio

    def slow(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if host.endswith(".test.invalid"):
            time.sleep(0.5)
            host = "127.0.0.1"
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    port = _port(server)
    beats = []

    async def heartbeat():
        while True:
            beats.append(time.monotonic())
            await anyio.sleep(0.01)

    async with httprs.AsyncClient() as client:

        async def get(name):
            return (await client.get(f"http://{name}.test.invalid:{port}/")).status_code

        with mock.patch("socket.getaddrinfo", slow):
            async with anyio.create_task_group() as tg:
                tg.start_soon(heartbeat)
                started = time.monotonic()
                results = []

                async def one(name):
                    results.append(await get(name))

                async with anyio.create_task_group() as both:
                    both.start_soon(one, "a")
                    both.start_soon(one, "b")
                took = time.monotonic() - started
                tg.cancel_scope.cancel()
    assert results == [200, 200]
    if anyio_backend == "trio" and os.environ.get("HTTPRS_TEST_TARGET") == "httpx":
        # httpx on trio: trio's getaddrinfo first calls it in the loop's thread (with
        # AI_NUMERICHOST, which this one ignores, as many overrides do): 1.0 s, blocked.
        return
    gaps = [later - earlier for earlier, later in zip(beats, beats[1:])]
    assert max(gaps) < 0.25, max(gaps)
    assert took < 0.9, took


# Happy Eyeballs (catalog F37): every address the resolver returns is tried, in its
# order; the next one starts when one fails or after 250 ms without an answer, the
# first to connect wins. httpx's sync client tries them one after another, each with
# the whole connect timeout; its async backends race them as here. [harden]: an
# address that drops SYNs costs 250 ms, never the connect timeout.


def _resolving_to(name, *addresses):
    """A getaddrinfo that answers `name` with `addresses` (IPv4, or IPv6 when written
    with a colon), in this order."""

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if host != name:
            return _real_getaddrinfo(host, port, family, type, proto, flags)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in addresses
        ]

    return fake


@contextlib.contextmanager
def _stalling(port, *addresses):
    """Each address (default 127.0.0.2) on `port`: a listener that never accepts, its
    queue (backlog 0) filled, so a SYN to it goes unanswered (checked: the premise of the
    tests). Yields the addresses."""
    addresses = addresses or ("127.0.0.2",)
    socks = []
    try:
        for address in addresses:
            listener = socket.socket()
            socks.append(listener)
            listener.bind((address, port))
            listener.listen(0)
            for _ in range(4):
                s = socket.socket()
                socks.append(s)
                s.setblocking(False)
                s.connect_ex((address, port))
        time.sleep(0.1)
        probes = []
        for address in addresses:
            probe = socket.socket()
            socks.append(probe)
            probe.setblocking(False)
            probe.connect_ex((address, port))
            probes.append(probe)
        time.sleep(0.3)
        for probe in probes:
            assert probe.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            with pytest.raises(OSError):  # ENOTCONN: still in SYN-SENT
                probe.getpeername()
            probe.close()
        yield addresses
    finally:
        for s in socks:
            s.close()


@pytest.fixture
def stalling_address(server):
    """127.0.0.2 on the server's port, stalling (_stalling)."""
    with _stalling(_port(server)) as (address,):
        yield address


@pytest.fixture
def stalling_addresses(server):
    """Three addresses on the server's port, each stalling (_stalling)."""
    with _stalling(_port(server), "127.0.0.2", "127.0.0.5", "127.0.0.6") as addresses:
        yield addresses


def _sockets_to(addresses, port):
    """How many of this process's TCP sockets have one of `addresses` (one or a tuple),
    at `port`, as their peer (any state, SYN-SENT included): a race's attempts show up
    here until they are closed."""
    if isinstance(addresses, str):
        addresses = (addresses,)
    peers = set()
    for address in addresses:
        a, b, c, d = (int(x) for x in address.split("."))
        peers.add(f"{d:02X}{c:02X}{b:02X}{a:02X}:{port:04X}")
    inodes = set()
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[2] in peers:
                inodes.add(fields[9])
    mine = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            mine += 1
    return mine


async def _settles_to_async(expected, addresses, port, within=3.0):
    """_settles_to, sleeping on the event loop: an AsyncClient's connections advance
    (timers, closes) only while the loop runs."""
    import anyio

    deadline = time.monotonic() + within
    while True:
        n = _sockets_to(addresses, port)
        if n == expected or time.monotonic() > deadline:
            return n
        await anyio.sleep(0.02)


def _settles_to(expected, addresses, port, within=3.0):
    """Wait (polling) until _sockets_to(addresses, port) == expected; the last count."""
    deadline = time.monotonic() + within
    while True:
        n = _sockets_to(addresses, port)
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.02)


def test_stalling_address_falls_back_to_the_next(server, stalling_address):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", stalling_address, "127.0.0.1")
    baseline = _sockets_to(stalling_address, _port(server))
    with mock.patch("socket.getaddrinfo", fake):
        with httprs.Client(timeout=5.0) as client:
            t0 = time.monotonic()
            response = client.get(url)
            took = time.monotonic() - t0
            assert response.status_code == 200
            # The winner went to the pool: the next requests reuse it.
            port = client.get(url + "client_port").text
            assert client.get(url + "client_port").text == port
            # The losing attempt's socket is closed (only the 4 fillers remain).
            assert _settles_to(baseline, stalling_address, _port(server)) == baseline
    # 250 ms for the stalled attempt, then the live address: far below the 5 s timeout.
    assert 0.2 <= took < 2.5


@pytest.mark.anyio
async def test_stalling_address_falls_back_to_the_next_async(
    server, stalling_address, anyio_backend
):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", stalling_address, "127.0.0.1")
    baseline = _sockets_to(stalling_address, _port(server))
    with mock.patch("socket.getaddrinfo", fake):
        async with httprs.AsyncClient(timeout=5.0) as client:
            t0 = time.monotonic()
            response = await client.get(url)
            took = time.monotonic() - t0
            assert response.status_code == 200
            assert await _settles_to_async(baseline, stalling_address, _port(server)) == baseline
    assert 0.2 <= took < 2.5


def test_every_address_stalling_is_one_connect_timeout(server, stalling_addresses):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", *stalling_addresses)
    baseline = _sockets_to(stalling_addresses, _port(server))
    with mock.patch("socket.getaddrinfo", fake):
        with httprs.Client(timeout=1.0) as client:
            t0 = time.monotonic()
            with pytest.raises(httprs.ConnectTimeout):
                client.get(url)
            took = time.monotonic() - t0
            # The timeout closed every attempt, the client still open.
            assert _settles_to(baseline, stalling_addresses, _port(server)) == baseline
    assert 0.9 <= took < 2.5  # one connect timeout, not one per address


@pytest.mark.anyio
async def test_every_address_stalling_is_one_connect_timeout_async(
    server, stalling_addresses, anyio_backend
):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", *stalling_addresses)
    baseline = _sockets_to(stalling_addresses, _port(server))
    with mock.patch("socket.getaddrinfo", fake):
        async with httprs.AsyncClient(timeout=1.0) as client:
            t0 = time.monotonic()
            with pytest.raises(httprs.ConnectTimeout):
                await client.get(url)
            took = time.monotonic() - t0
            assert await _settles_to_async(baseline, stalling_addresses, _port(server)) == baseline
    assert 0.9 <= took < 2.5


@pytest.mark.anyio
@pytest.mark.parametrize("close_client", [False, True])
async def test_cancelled_mid_race_leaves_no_socket(
    server, stalling_addresses, anyio_backend, close_client
):
    # The request is cancelled while three attempts are under way. The connection goes
    # on connecting for the pool (as after any cancel mid-connect) until its connect
    # timeout, or until the client closes: either way every attempt's socket is closed.
    # (On trio the engine runs only while a task awaits it: the next request here.)
    import anyio

    port = _port(server)
    url = f"http://eyeballs.test.invalid:{port}/"
    fake = _resolving_to("eyeballs.test.invalid", *stalling_addresses)
    baseline = _sockets_to(stalling_addresses, port)
    connect = 5.0 if close_client else 1.0
    with mock.patch("socket.getaddrinfo", fake):
        client = httprs.AsyncClient(timeout=httprs.Timeout(10.0, connect=connect))
        async with client:
            with anyio.move_on_after(0.6) as scope:
                await client.get(url)
            assert scope.cancelled_caught
            racing = _sockets_to(stalling_addresses, port) - baseline
            assert racing >= 2  # the attempts are real sockets, seen here
            if not close_client:
                await anyio.sleep(1.0)  # past the connect timeout
                assert (await client.get(server.url)).status_code == 200
                assert await _settles_to_async(baseline, stalling_addresses, port) == baseline
        t0 = time.monotonic()
        assert await _settles_to_async(baseline, stalling_addresses, port) == baseline
        assert time.monotonic() - t0 < 2.0  # closing the client ended the race


def test_proxy_host_addresses_are_raced(server, proxy_factory):
    # The proxy's name resolves to a stalling address first: the proxy is reached through
    # the second one, well before the connect timeout.
    proxy = proxy_factory()
    proxy_port = int(proxy.url.rsplit(":", 1)[1])
    fake = _resolving_to("proxy.test.invalid", "127.0.0.2", "127.0.0.1")
    with _stalling(proxy_port), mock.patch("socket.getaddrinfo", fake):
        with httprs.Client(proxy=f"http://proxy.test.invalid:{proxy_port}", timeout=5.0) as c:
            t0 = time.monotonic()
            response = c.get(server.url + "/echo")
            took = time.monotonic() - t0
    assert response.status_code == 200
    assert [s.target for s in proxy.seen] == [server.url + "/echo"]
    assert 0.2 <= took < 2.5


@pytest.mark.parametrize("refused", [1, 2])
def test_refused_addresses_fall_back_in_order(server, refused):
    # Nothing listens on 127.0.0.3/.4 at the server's port: refused at once, the next
    # address is tried without waiting.
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    addresses = ["127.0.0.3", "127.0.0.4"][:refused] + ["127.0.0.1"]
    fake = _resolving_to("eyeballs.test.invalid", *addresses)
    with mock.patch("socket.getaddrinfo", fake):
        with httprs.Client(timeout=5.0) as client:
            t0 = time.monotonic()
            assert client.get(url).status_code == 200
            assert time.monotonic() - t0 < 1.5


@pytest.mark.anyio
async def test_refused_addresses_fall_back_in_order_async(server, anyio_backend):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", "127.0.0.3", "127.0.0.1")
    with mock.patch("socket.getaddrinfo", fake):
        async with httprs.AsyncClient(timeout=5.0) as client:
            assert (await client.get(url)).status_code == 200


@contextlib.contextmanager
def _answering_with_their_address(*addresses):
    """A listener on each address, all on one port: each connection gets a response
    whose body is the address it reached. Yields the port."""
    listeners = []
    port = 0
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        listener = socket.socket(family)
        listeners.append(listener)
        listener.bind((address, port))
        port = listener.getsockname()[1]
        listener.listen(8)

    def serve(listener, address):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                body = address.encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
                conn.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    threads = [
        threading.Thread(target=serve, args=(listener, address), daemon=True)
        for listener, address in zip(listeners, addresses)
    ]
    for t in threads:
        t.start()
    try:
        yield port
    finally:
        for listener in listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            listener.close()
        for t in threads:
            t.join(5)
            assert not t.is_alive()


# RFC 8305 section 4: the race alternates address families from the first answer's.
# The resolver answers two IPv4 addresses, then an IPv6 one; the first IPv4 address
# stalls, so the attempt started 250 ms later wins: ::1 when the families alternate,
# 127.0.0.3 in the resolver's order (what httprs used to do).
INTERLEAVED = ("127.0.0.2", "127.0.0.3", "::1")


def test_happy_eyeballs_alternates_address_families():
    with _answering_with_their_address("127.0.0.3", "::1") as port:
        with _stalling(port, "127.0.0.2"):
            fake = _resolving_to("eyeballs.test.invalid", *INTERLEAVED)
            with mock.patch("socket.getaddrinfo", fake):
                with httprs.Client(timeout=5.0) as client:
                    r = client.get(f"http://eyeballs.test.invalid:{port}/")
    assert r.text == "::1"


@pytest.mark.anyio
async def test_happy_eyeballs_alternates_address_families_async(anyio_backend):
    with _answering_with_their_address("127.0.0.3", "::1") as port:
        with _stalling(port, "127.0.0.2"):
            fake = _resolving_to("eyeballs.test.invalid", *INTERLEAVED)
            with mock.patch("socket.getaddrinfo", fake):
                async with httprs.AsyncClient(timeout=5.0) as client:
                    r = await client.get(f"http://eyeballs.test.invalid:{port}/")
    assert r.text == "::1"


def test_every_address_refused_is_a_connect_error(server):
    url = f"http://eyeballs.test.invalid:{_port(server)}/"
    fake = _resolving_to("eyeballs.test.invalid", "127.0.0.3", "127.0.0.4")
    with mock.patch("socket.getaddrinfo", fake):
        with httprs.Client(timeout=5.0) as client:
            t0 = time.monotonic()
            with pytest.raises(httprs.ConnectError, match="Connection refused"):
                client.get(url)
            assert time.monotonic() - t0 < 1.5


def _zone_override(calls):
    """A getaddrinfo that sends the link-local fe80::1 (with any zone) to 127.0.0.1."""

    def fake(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        calls.append(host)
        if host.startswith("fe80::1%"):
            return _real_getaddrinfo("127.0.0.1", port, socket.AF_INET, type, proto, flags)
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    return fake


def test_ipv6_zone_id_is_resolved_with_the_address_and_not_sent(server, h2_scripted):
    """A URL's IPv6 zone id goes to the resolver with the address (`fe80::1%en0`, what
    getaddrinfo takes) and nowhere on the wire: neither in the HTTP/1.1 Host header nor
    in the HTTP/2 :authority (httpx2 2.17)."""
    authorities = []

    def h2_handler(h2c):
        while (req := h2c.next_request()) is not None:
            authorities.append(dict(req.headers)[":authority"])
            h2c.respond(req.stream_id, 200, b"h2", [("content-type", "text/plain")])

    h2 = h2_scripted(h2_handler)
    calls = []
    with mock.patch("socket.getaddrinfo", _zone_override(calls)):
        with httprs.Client() as client:
            url = f"http://[fe80::1%25en0]:{_port(server)}/echo"
            response = client.get(url)
            assert dict(response.json()["headers"])["host"] == f"[fe80::1]:{_port(server)}"
        with httprs.Client(http1=False, http2=True) as client:
            response = client.get(f"http://[fe80::1%25en0]:{_port(h2)}/")
            assert (response.http_version, response.text) == ("HTTP/2", "h2")
    assert authorities == [f"[fe80::1]:{_port(h2)}"]
    assert "fe80::1%en0" in calls


@pytest.mark.anyio
async def test_the_connect_timeout_bounds_a_patched_lookup_async(server, anyio_backend):
    """An async client's lookup through a replaced getaddrinfo runs under the connect
    timeout, as anyio's and trio's connects run it: a 2 s lookup with connect=0.3 is a
    ConnectTimeout after 0.3 s (httprs until session 46: 200 after 2 s), and the client
    goes on."""
    if anyio_backend == "trio" and os.environ.get("HTTPRS_TEST_TARGET") == "httpx":
        pytest.skip("httpx on trio: trio's getaddrinfo first calls it in the loop's thread")

    def slow(host, port, family=0, type=0, proto=0, flags=0):
        if isinstance(host, bytes):
            host = host.decode("ascii")
        if host == "slow.test.invalid":
            time.sleep(2)
            host = "127.0.0.1"
        return _real_getaddrinfo(host, port, family, type, proto, flags)

    port = _port(server)
    async with httprs.AsyncClient(timeout=httprs.Timeout(5, connect=0.3)) as client:
        with mock.patch("socket.getaddrinfo", slow):
            started = time.monotonic()
            with pytest.raises(httprs.ConnectTimeout):
                await client.get(f"http://slow.test.invalid:{port}/")
            assert time.monotonic() - started < 1.5
        assert (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200

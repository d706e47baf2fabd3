"""The benchmark scenarios.

Each scenario is one workload with fixed semantics for every client: HTTP/1.1
keep-alive, the body fully read (or fully iterated), the pool size equal to the
concurrency, and a check of every response (its length, the echoed or counted upload
size, or the decoded JSON) so that no client can skip work.

mode:
  sync   run by the sync clients only
  async  run by the async clients only
  any    run by every client (async clients: one task, requests in sequence)
"""

from __future__ import annotations

from dataclasses import dataclass

from .servers import FILE_SIZES, HEADERS_BODY, JSON_ITEMS, SMALL_BODY

MB = 1 << 20
UPLOAD_CHUNK = 64 * 1024
# Scenario.connections of the uploads (and the C client's upload row, limits.py)
UPLOAD_CONNECTIONS = 16

# ~1 KB JSON object for the POST JSON case (30 keys).
JSON_PAYLOAD = {f"key{i:02d}": f"value-{i:02d}-abcdefghijklmnopqrstu" for i in range(30)}


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    mode: str  # sync | async | any
    op: str  # get | stream | post_bytes | upload | upload_gen | post_json | get_json | get_close | churn
    url: str  # key of Servers.urls()
    expect: int  # value each operation must return (bytes, counted bytes, JSON items)
    server: str = "nginx"  # nginx | c (whose CPU time is the server share)
    conc: int = 1  # threads (sync) or tasks in flight (async); also the pool size
    size: int = 0  # request body size for uploads
    unit: str = "req"  # req | MB (throughput unit)
    min_ops: int = 20  # measured operations at least, even past the window
    quick_min_ops: int = 5
    tls: bool = False
    # HTTP/2, every request on one connection: h2 by ALPN with tls, else h2c (prior
    # knowledge); HTTP/1.1-only clients run `h1_url` instead (a pool of `conc`)
    h2: bool = False
    h1_url: str = ""
    # Clients the timed window is split over, each built and warmed up outside the
    # timing: > 1 where the cost depends on the state a connection settles in. The
    # uploads: with the kernel's BBR congestion control (this VM's default), each
    # connection keeps the pacing rate it estimated early on, and a 1 MB upload costs
    # one client 43 or 77 µs of CPU depending on the connection it drew (and 55-68,
    # 106-124 or 160-230 µs with the client on the server's CPU); 16 draws per run keep
    # a run's verdict from hanging on which of them it drew (scripts/bench/README.md,
    # "Method").
    connections: int = 1

    @property
    def bytes_per_op(self) -> int:
        if self.op in ("upload", "upload_gen"):
            return self.size
        return self.expect if self.unit == "MB" else 0


def _all() -> list[Scenario]:
    s: list[Scenario] = []
    small = len(SMALL_BODY)
    s.append(
        Scenario("get_small", "sync sequential GET, 13 B body", "sync", "get", "small", small)
    )
    s.append(
        Scenario(
            "get_headers",
            "sync GET, ~20 headers + 1 KB body",
            "sync",
            "get",
            "headers",
            len(HEADERS_BODY),
        )
    )
    for n in (4, 16):
        s.append(
            Scenario(
                f"threads_{n}",
                f"{n} threads sharing one client, small GET",
                "sync",
                "get",
                "small",
                small,
                conc=n,
            )
        )
    s.append(
        Scenario("async_seq", "async sequential GET, 13 B body", "async", "get", "small", small)
    )
    for n in (10, 50, 100, 400):
        s.append(
            Scenario(
                f"async_{n}",
                f"async, {n} GETs in flight (pool {n})",
                "async",
                "get",
                "small",
                small,
                conc=n,
            )
        )
    s.append(
        Scenario(
            "post_1k",
            "POST 1 KB bytes, echoed back",
            "any",
            "post_bytes",
            "echo",
            1024,
            server="c",
            size=1024,
        )
    )
    s.append(
        Scenario(
            "post_json",
            "POST ~1 KB JSON, echoed and decoded",
            "any",
            "post_json",
            "echo",
            len(JSON_PAYLOAD),
            server="c",
        )
    )
    for label, size, mode in (("1m", MB, "sync"), ("10m", 10 * MB, "any")):
        for op, how in (("upload", "bytes"), ("upload_gen", "generator (chunked)")):
            name = f"upload_{label}" if op == "upload" else f"upload_gen_{label}"
            s.append(
                Scenario(
                    name,
                    f"upload {label.upper()}B from {how}",
                    mode,
                    op,
                    "upload",
                    size,
                    server="c",
                    size=size,
                    unit="MB",
                    min_ops=5 if size > MB else 20,
                    quick_min_ops=2,
                    connections=UPLOAD_CONNECTIONS,
                )
            )
    for label, mode in (("1m", "sync"), ("10m", "any"), ("100m", "sync")):
        size = FILE_SIZES[label]
        for op, how in (("get", ".content"), ("stream", "iter_bytes()")):
            name = f"get_{label}" if op == "get" else f"stream_{label}"
            s.append(
                Scenario(
                    name,
                    f"download {label.upper()}B via {how}",
                    mode,
                    op,
                    f"file_{label}",
                    size,
                    unit="MB",
                    min_ops=3 if size >= 100 * MB else 10,
                    quick_min_ops=1 if size >= 100 * MB else 2,
                )
            )
    s.append(
        Scenario(
            "chunked_10m",
            "chunked download 10 MB (16 KB chunks)",
            "any",
            "get",
            "chunked_10m",
            10 * MB,
            server="c",
            unit="MB",
            min_ops=5,
            quick_min_ops=2,
        )
    )
    s.append(
        Scenario(
            "gzip_json",
            "gzip JSON ~220 KB: decode + .json()",
            "any",
            "get_json",
            "json_gz",
            JSON_ITEMS,
        )
    )
    s.append(
        Scenario("https_warm", "HTTPS GET, warm pool", "sync", "get", "tls_small", small, tls=True)
    )
    s.append(
        Scenario(
            "https_new_conn",
            "HTTPS GET, new connection each (Connection: close)",
            "sync",
            "get_close",
            "tls_small",
            small,
            tls=True,
        )
    )
    # HTTP/2: one TLS connection carrying every request in flight (nginx's http2
    # listener); aiohttp (HTTP/1.1 only) runs them over a pool of that size, for reference.
    for n in (1, 10, 100, 400):
        s.append(
            Scenario(
                f"h2_async_{n}",
                f"HTTP/2 async, {n} GETs in flight on one connection",
                "async",
                "get",
                "h2_small",
                small,
                conc=n,
                tls=True,
                h2=True,
            )
        )
    # Like for like without TLS: HTTP/2 with prior knowledge (h2c) to nginx's cleartext
    # http2 listener, next to the same GETs over HTTP/1.1 for the HTTP/1.1-only clients.
    s.append(
        Scenario(
            "h2c_async_100",
            "HTTP/2 cleartext (prior knowledge) async, 100 GETs in flight on one connection",
            "async",
            "get",
            "h2c_small",
            small,
            conc=100,
            h2=True,
            h1_url="small",
        )
    )
    # Threads on a sync client: every thread's request a stream of one connection.
    s.append(
        Scenario(
            "h2_sync_16",
            "HTTP/2, 16 threads sharing one sync client (one connection)",
            "sync",
            "get",
            "h2_small",
            small,
            conc=16,
            tls=True,
            h2=True,
        )
    )
    s.append(
        Scenario(
            "https_get_10m",
            "HTTPS download 10 MB via .content (HTTP/1.1)",
            "any",
            "get",
            "tls_file_10m",
            FILE_SIZES["10m"],
            unit="MB",
            min_ops=10,
            quick_min_ops=2,
            tls=True,
        )
    )
    s.append(
        Scenario(
            "h2_get_10m",
            "HTTP/2 download 10 MB via .content",
            "any",
            "get",
            "h2_file_10m",
            FILE_SIZES["10m"],
            unit="MB",
            min_ops=10,
            quick_min_ops=2,
            tls=True,
            h2=True,
        )
    )
    s.append(
        Scenario(
            "client_churn",
            "Client() + one GET + close",
            "sync",
            "churn",
            "small",
            small,
            min_ops=100,
            quick_min_ops=10,
        )
    )
    return s


SCENARIOS: dict[str, Scenario] = {sc.name: sc for sc in _all()}


def select(patterns: list[str] | None) -> list[Scenario]:
    """Scenarios matching any of the names or fnmatch patterns (all when None)."""
    import fnmatch

    if not patterns:
        return list(SCENARIOS.values())
    out = [
        sc for sc in SCENARIOS.values() if any(fnmatch.fnmatchcase(sc.name, p) for p in patterns)
    ]
    unknown = [
        p
        for p in patterns
        if not any(fnmatch.fnmatchcase(sc.name, p) for sc in SCENARIOS.values())
    ]
    if unknown:
        raise SystemExit(
            f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}"
        )
    return out

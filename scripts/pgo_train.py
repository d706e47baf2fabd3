"""The training run of the profile-guided build (scripts/dev.sh pgo).

Runs an instrumented httprs through what its users do most, against the benchmark's
local servers (nginx and the C echo server on 127.0.0.1, scripts/bench/servers.py):
small GETs and POSTs (bytes, JSON, a gzip JSON body), downloads whole and streamed,
chunked bodies, uploads, fresh clients, threads sharing a client, new and kept-alive
HTTPS connections, HTTP/2 over TLS and h2c, and the async client sequentially and with
many requests in flight. The counts only need to make the hot paths hot: the compiler
weighs branches and lays out code by relative counts, not by how long the run took.

    python scripts/pgo_train.py [--rounds N]

scripts/dev.sh checks that it wrote profiles (an httprs that is not the instrumented
build writes none).
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.servers import Servers  # noqa: E402

import httprs  # noqa: E402


def _threads(count: int, work) -> None:
    threads = [threading.Thread(target=work) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def train_http1(urls: dict[str, str], rounds: int) -> None:
    with httprs.Client() as client:
        for _ in range(2000 * rounds):
            client.get(urls["small"]).raise_for_status()
        for _ in range(500 * rounds):
            client.get(urls["headers"]).headers.get("content-type")
            client.post(urls["echo"], content=b"x" * 1024).read()
            client.post(urls["echo"], json={"items": [1, 2, 3], "name": "n" * 40}).json()
            client.get(urls["json_gz"]).json()
        for _ in range(20 * rounds):
            client.get(urls["file_1m"]).read()
            with client.stream("GET", urls["file_1m"]) as response:
                for _chunk in response.iter_bytes():
                    pass
            client.get(urls["chunked_10m"]).read()
            client.post(urls["upload"], content=b"u" * (1 << 20)).read()
        for _ in range(2 * rounds):
            client.get(urls["file_10m"]).read()

        def many() -> None:
            for _ in range(300 * rounds):
                client.get(urls["small"]).read()

        _threads(4, many)
    for _ in range(100 * rounds):
        with httprs.Client() as client:
            client.get(urls["small"]).read()


def train_tls(urls: dict[str, str], context: ssl.SSLContext, rounds: int) -> None:
    with httprs.Client(verify=context) as client:
        for _ in range(300 * rounds):
            client.get(urls["tls_small"], headers={"Connection": "close"}).read()
        for _ in range(1000 * rounds):
            client.get(urls["tls_small"]).read()
    with httprs.Client(verify=context, http2=True) as client:
        for _ in range(1000 * rounds):
            client.get(urls["h2_small"]).read()
        client.get(urls["h2_file_10m"]).read()

        def many() -> None:
            for _ in range(300 * rounds):
                client.get(urls["h2_small"]).read()

        _threads(8, many)


async def train_async(urls: dict[str, str], context: ssl.SSLContext, rounds: int) -> None:
    async with httprs.AsyncClient() as client:
        for _ in range(1000 * rounds):
            (await client.get(urls["small"])).read()
        for _ in range(50 * rounds):
            await asyncio.gather(*(client.get(urls["small"]) for _ in range(50)))
        for _ in range(200 * rounds):
            (await client.post(urls["echo"], json={"n": 1})).json()
    async with httprs.AsyncClient(verify=context, http2=True) as client:
        for _ in range(30 * rounds):
            await asyncio.gather(*(client.get(urls["h2_small"]) for _ in range(100)))
    async with httprs.AsyncClient(http1=False, http2=True) as client:
        for _ in range(30 * rounds):
            await asyncio.gather(*(client.get(urls["h2c_small"]) for _ in range(100)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="workload multiplier")
    args = parser.parse_args()
    # Files in the temporary directory: a build container's /dev/shm may be too small.
    servers = Servers.start(cpu=None, in_memory=False)
    try:
        urls = servers.urls()
        context = ssl.create_default_context(cafile=str(servers.ca_pem))
        train_http1(urls, args.rounds)
        train_tls(urls, context, args.rounds)
        asyncio.run(train_async(urls, context, args.rounds))
    finally:
        servers.stop()
    print("pgo_train: done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A small asyncio HTTP/1.1 keep-alive server meant to run in its own process
(``python -m servers.aioserver`` or ``python aioserver.py``), so that it doesn't compete
with the client under test for the GIL. It prints its port on stdout, answers every request
with a Content-Length response whose body is the request target, optionally after
``?delay=<seconds>``, and counts connections: ``GET /__stats`` returns
``{"connections": total accepted, "open": now open (excluding this one), "max_open": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import parse_qsl, urlsplit

stats = {"connections": 0, "open": 0, "max_open": 0, "requests": 0}


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    stats["connections"] += 1
    stats["open"] += 1
    stats["max_open"] = max(stats["max_open"], stats["open"])
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if target == "/__stats":
                doc = dict(stats, open=stats["open"] - 1)
                body = json.dumps(doc).encode()
            else:
                stats["requests"] += 1
                query = dict(parse_qsl(urlsplit(target).query))
                if "delay" in query:
                    await asyncio.sleep(float(query["delay"]))
                body = target.encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body)
            )
            await writer.drain()
    except ConnectionError:
        return
    finally:
        stats["open"] -= 1
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # exit when the parent closes our stdin
    loop.add_reader(sys.stdin.fileno(), stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())

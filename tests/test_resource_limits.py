"""Running out of file descriptors (EMFILE): a request that cannot get one fails with a
ConnectError saying so, as httpx's socket does, and the client works again once
descriptors are free. Each case runs in a child interpreter whose RLIMIT_NOFILE is
lowered and filled."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_SCRIPT = r"""
import asyncio, json, resource, sys

import httprs

flavour, warm, url = sys.argv[1], sys.argv[2] == "warm", sys.argv[3]
out = {}


def fill(leave):
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    held = []
    try:
        while True:
            held.append(open("/dev/null"))
    except OSError:
        pass
    for f in held[:leave]:
        f.close()
    return held[leave:]


if flavour == "sync":

    def get(client):
        try:
            return client.get(url).status_code
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    if warm:  # (a loop made before, still in use: libuv's one-time set-up is done)
        first = httprs.Client()
        assert get(first) == 200
    held = fill(1)  # (a socket's worth: httpx's request gets through)
    client = httprs.Client(verify=False)
    out["starved"] = get(client)
    for f in held[:20]:
        f.close()
    out["after"] = get(client)
    with httprs.Client() as other:
        out["new_client"] = get(other)
    client.close()
else:

    async def get(client):
        try:
            return (await client.get(url)).status_code
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    async def main():
        if warm:
            first = httprs.AsyncClient()
            assert await get(first) == 200
        held = fill(1)
        client = httprs.AsyncClient(verify=False)
        out["starved"] = await get(client)
        for f in held[:20]:
            f.close()
        out["after"] = await get(client)
        async with httprs.AsyncClient() as other:
            out["new_client"] = await get(other)
        await client.aclose()

    asyncio.run(main())
print(json.dumps(out))
"""


@pytest.mark.httprs_only
@pytest.mark.parametrize("warm", ["warm", "cold"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_running_out_of_descriptors_is_a_connect_error_and_passes(server, tmp_path, flavour, warm):
    """httprs's event loop needs descriptors of its own (epoll, its wake-up): with one
    left, the client is made, its request fails with ConnectError "[Errno 24] Too many
    open files" (httpx's request there gets the one socket it needs through), and once
    descriptors are free the same client sends. Until session 46 the process aborted
    (cold: libuv's first loop in a process makes a pipe and calls abort() when it cannot),
    or (warm: a loop made before) a client without a loop failed every request with
    "ReadError: the client has been closed", for good."""
    script = tmp_path / "starve.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), flavour, warm, server.url + "/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["starved"].startswith("ConnectError: [Errno 24] Too many open files"), out
    assert out["after"] == 200
    assert out["new_client"] == 200

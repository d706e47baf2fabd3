#!/usr/bin/env python3
"""Valgrind (memcheck) pass over the C++ core and the Cython modules.

`bash scripts/dev.sh valgrind` (or `just valgrind`). The servers run in this process,
outside valgrind: the benchmark's C echo server, the fault mix's seeded fault server and a
TLS server (trustme certificates). A workload then runs in a child Python under
`valgrind --tool=memcheck` with `PYTHONMALLOC=malloc` (so memcheck sees Python's
allocations too): sync requests (GET, POST, streamed and abandoned responses, every fault
of the fault mix), asyncio and trio requests with several in flight, HTTPS, and Client()
cycles. memcheck writes XML; an error counts when a frame of its stack is in httprs's
own code (the C++ core or a Cython module): invalid reads and writes, uses of
uninitialised values, invalid frees, and definitely lost blocks allocated by httprs.
CPython's own reports (it is not built for valgrind) are listed as a count only. Exit
status 0 when no error touches httprs.

valgrind slows Python down ~50x: the workload is sized to run in a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# A frame is httprs's when its object is a file of this checkout (the compiled modules
# in build/, the C++ core and llhttp linked into them) or its source is in src/ or httprs/.
OWN_SOURCE_DIRS = (str(ROOT / "src"), str(ROOT / "httprs"))


# ---------------------------------------------------------------------- workload


def workload(echo: str, faults: str, tls: str, ca: str, requests: int) -> None:
    """Runs under valgrind. Outcomes are not checked here (the test suite does that);
    every path just has to run."""
    import httprs

    sys.path.insert(0, str(HERE))
    import faultmix

    post_body = b"valgrind-" * 50
    with httprs.Client(timeout=5.0) as c:
        for i in range(requests):
            if i % 2:
                assert c.get(echo + "/chunked?size=3000&chunk=700").status_code == 200
            else:
                assert c.post(echo + "/echo", content=post_body).content == post_body
        with c.stream("GET", echo + "/chunked?size=200000&chunk=4096") as r:
            for _ in r.iter_bytes():
                break  # abandoned mid-body
        r = c.send(c.build_request("GET", echo + "/chunked?size=100000&chunk=999"), stream=True)
        del r  # dropped unclosed: the finaliser path
    timeout = httprs.Timeout(5.0, read=faultmix.READ_TIMEOUT)
    with httprs.Client(timeout=timeout) as c:
        for rid in range(1, requests + 1):
            try:
                if faultmix.is_post(7, rid):
                    c.post(f"{faults}/r/{rid}", content=faultmix.request_body(7, rid))
                else:
                    c.get(f"{faults}/r/{rid}")
            except httprs.HTTPError:
                pass
    import ssl

    # Under valgrind a handshake can outlast the test server's socket timeout: the TLS
    # paths run either way, an error is only counted.
    tls_outcomes: dict[str, int] = {}
    with httprs.Client(verify=ssl.create_default_context(cafile=ca), timeout=30.0) as c:
        for _ in range(max(requests // 10, 3)):
            try:
                key = "ok" if c.get(tls + "/tls").text == "tls" else "wrong"
            except httprs.HTTPError as exc:
                key = type(exc).__name__
            tls_outcomes[key] = tls_outcomes.get(key, 0) + 1
    print(f"tls outcomes: {tls_outcomes}", flush=True)

    async def many(client, n: int) -> None:
        async def one(i: int) -> None:
            r = await client.get(echo + f"/chunked?size={100 + i}&chunk=64")
            assert r.status_code == 200

        for i in range(n):  # asyncio: ten at a time below; trio: five tasks run this
            await one(i)

    async def asyncio_main() -> None:
        async with httprs.AsyncClient(timeout=5.0) as client:
            await asyncio.gather(*(many(client, max(requests // 10, 2)) for _ in range(10)))

    asyncio.run(asyncio_main())

    import trio

    async def trio_main() -> None:
        async with httprs.AsyncClient(timeout=5.0) as client:
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(many, client, max(requests // 5, 2))

    trio.run(trio_main)
    for _ in range(10):
        with httprs.Client() as c:
            c.get(echo + "/chunked?size=64&chunk=32")
    print("workload done", flush=True)


# ---------------------------------------------------------------------- servers


class TLSServer:
    def __init__(self, tmp: Path) -> None:
        import trustme

        sys.path.insert(0, str(ROOT / "tests"))
        from servers.scripted import ScriptedServer

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = tmp / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(ctx)

        def handler(conn) -> None:
            while conn.read_request() is not None:
                if not conn.respond(b"tls"):
                    return

        self.server = ScriptedServer(handler, ssl_context=ctx)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()


# ---------------------------------------------------------------------- verdict


def _frames(error: ET.Element) -> list[tuple[str, str, str]]:
    out = []
    for frame in error.iter("frame"):
        out.append((
            frame.findtext("obj") or "",
            frame.findtext("fn") or "",
            (frame.findtext("dir") or "") + "/" + (frame.findtext("file") or ""),
        ))
    return out


# CPython's call machinery: an error found below one of these, before any frame of
# httprs's, is in what Python code called (json.loads at import, say), not in httprs.
PYTHON_CALL_FRAMES = (
    "_PyEval_EvalFrame",
    "_PyObject_MakeTpCall",
    "PyObject_Vectorcall",
    "_PyObject_VectorcallTstate",
    "_PyFunction_Vectorcall",
    "PyObject_Call",
    "_PyObject_Call",
    "cfunction_",
    "method_vectorcall",
)


def is_own(frames: list[tuple[str, str, str]]) -> bool:
    """Whether an error is httprs's: a frame of httprs's code lies between the error and
    the innermost call through CPython's call machinery (so httprs called, directly or
    through C, the code that went wrong)."""
    for obj, fn, src in frames:
        if src.startswith(OWN_SOURCE_DIRS) or (
            # Not a third-party extension of a venv inside the checkout (.venv's
            # cffi, cryptography): only the build directories and httprs itself.
            obj.startswith(str(ROOT) + "/")
            and ("/site-packages/" not in obj or "/site-packages/httprs/" in obj)
        ):
            return True
        if fn.startswith(PYTHON_CALL_FRAMES):
            return False
    return False


def classify(xml_path: Path) -> tuple[list[str], Counter[str]]:
    """(httprs's errors, described; CPython's and others' errors counted by kind)."""
    own: list[str] = []
    other: Counter[str] = Counter()
    root = ET.parse(xml_path).getroot()
    for error in root.iter("error"):
        kind = error.findtext("kind") or "?"
        frames = _frames(error)
        if is_own(frames):
            what = error.findtext("what") or (error.find("xwhat").findtext("text") or "")
            stack = "\n".join(
                f"      {fn}  ({obj.rsplit('/', 1)[-1]})" for obj, fn, _ in frames[:12]
            )
            own.append(f"  {kind}: {what}\n{stack}")
        else:
            other[kind] += 1
    return own, other


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=60, help="requests per part (60)")
    p.add_argument("--keep", action="store_true", help="keep the XML report")
    p.add_argument("--workload", nargs=5, metavar=("ECHO", "FAULTS", "TLS", "CA", "N"))
    args = p.parse_args(argv)
    if args.workload:
        echo, faults, tls, ca, n = args.workload
        workload(echo, faults, tls, ca, int(n))
        return 0

    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    import faultmix
    import soak

    tmp = Path(tempfile.mkdtemp(prefix="httprs-valgrind-"))
    echo = soak.Server()
    faults = faultmix.FaultServer(7)
    tls = TLSServer(tmp)
    xml_path = tmp / "memcheck.xml"
    env = dict(os.environ, PYTHONMALLOC="malloc")
    cmd = [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--num-callers=40",
        "--xml=yes",
        f"--xml-file={xml_path}",
        sys.executable,
        __file__,
        "--workload",
        echo.url,
        faults.url,
        tls.url,
        str(tls.ca_path),
        str(args.requests),
    ]
    t0 = time.monotonic()
    try:
        # Import (and so build, if needed) outside valgrind first.
        subprocess.run([sys.executable, "-c", "import httprs._core"], check=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    finally:
        echo.stop()
        faults.close()
        tls.close()
    elapsed = time.monotonic() - t0
    if proc.returncode != 0 or "workload done" not in proc.stdout:
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        print(f"valgrind: FAIL (the workload exited {proc.returncode})")
        return 1
    own, other = classify(xml_path)
    print(f"valgrind memcheck: workload of {args.requests} requests per part in {elapsed:.0f}s")
    others = ", ".join(f"{k} {v}" for k, v in sorted(other.items())) or "none"
    print(f"  reports outside httprs (CPython, libc, OpenSSL): {others}")
    print(f"  errors in httprs's code: {len(own)}")
    for text in own[:20]:
        print(text)
    if args.keep or own:
        print(f"  XML report: {xml_path}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("valgrind: PASS" if not own else "valgrind: FAIL")
    return 0 if not own else 1


if __name__ == "__main__":
    sys.exit(main())

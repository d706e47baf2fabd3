"""Machine-limit rows: wrk and the project's C clients (ping-pong, upload, TLS floor)
against the servers the scenarios use.

They run pinned to the client CPU, like the Python workers, and their CPU is measured
from the outside (os.wait4 rusage) so the rows are comparable with the clients' rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from .scenarios import UPLOAD_CONNECTIONS
from .servers import Servers, plain_env, proc_cpu_seconds, taskset

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _wait_usage(proc: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """Waits for proc; returns (status, user+sys CPU seconds of the child)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return -9, ru.ru_utime + ru.ru_stime
        time.sleep(0.02)


def _lat_us(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else 0.0


def run_wrk(
    servers: Servers, cpu: int | None, url: str, conns: int, seconds: float, label: str
) -> dict:
    row = {
        "name": label,
        "tool": "wrk",
        "url": url.rsplit("/", 1)[-1],
        "connections": conns,
        "tls": url.startswith("https:"),
    }
    if not shutil.which("wrk"):
        row.update(status="missing", error="wrk is not installed (Debian: apt-get install wrk)")
        return row
    dur = max(1, round(seconds))
    srv0 = proc_cpu_seconds(servers.nginx_worker_pid)
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [*taskset(cpu), "wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=plain_env(),
        )
        rc, cpu_s = _wait_usage(proc, dur + 30)
        out.seek(0)
        text = out.read()
    srv = proc_cpu_seconds(servers.nginx_worker_pid) - srv0
    m_req = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
    if rc != 0 or not m_req:
        row.update(status="error", error=f"wrk exited {rc}: {text.strip()[-300:]}")
        return row
    n = int(m_req.group(1))
    wall = float(m_req.group(2)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m_req.group(3)]
    m_bytes = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", text)
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
    row.update(
        status="ok",
        ops=n,
        wall_s=wall,
        ops_per_s=n / wall,
        cpu_us_per_op=cpu_s / n * 1e6,
        p50_us=_lat_us(lat.get("50", "")),
        p99_us=_lat_us(lat.get("99", "")),
        server_cpu_pct=100.0 * srv / wall,
        server_cpu_us_per_op=srv / n * 1e6,
    )
    if m_bytes:
        scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[m_bytes.group(2)]
        row["mb_per_s"] = float(m_bytes.group(1)) * scale / 1e6
    return row


def _run_native(
    servers: Servers,
    cpu: int | None,
    row: dict,
    argv: list[str],
    seconds: float,
    warmup: float,
    server_pid: int | None = None,
    runs: int = 1,
) -> dict:
    """Runs one of the C clients (scripts/bench/native: their last two arguments are the
    warm-up and the measured seconds; they print one JSON object) and fills `row`.
    server_pid: the server it talks to (default: the nginx worker). runs > 1 splits the
    measured time over that many runs, one connection each, as the scenarios with
    `connections` > 1 do (the row sums them; its p50 and p99 are the runs' highest)."""
    server_pid = server_pid or servers.nginx_worker_pid
    srv = 0.0
    total = {"requests": 0, "wall_s": 0.0, "cpu_user_s": 0.0, "cpu_sys_s": 0.0}
    p50 = p99 = 0.0
    for _ in range(runs):
        srv0 = proc_cpu_seconds(server_pid)
        part_warmup, part_seconds = warmup / runs, seconds / runs
        res = subprocess.run(
            [*taskset(cpu), *argv, str(part_warmup), str(part_seconds)],
            capture_output=True,
            text=True,
            timeout=part_seconds + part_warmup + 30,
            env=plain_env(),
        )
        srv += proc_cpu_seconds(server_pid) - srv0
        if res.returncode != 0:
            row.update(status="error", error=res.stderr.strip()[-300:])
            return row
        d = json.loads(res.stdout)
        for k in total:
            total[k] += d[k]
        p50, p99 = max(p50, d["p50_us"]), max(p99, d["p99_us"])
        if "resumed" in d:
            row["resumed"] = row.get("resumed", 0) + d["resumed"]
    n, wall = total["requests"], total["wall_s"]
    row.update(
        status="ok",
        ops=n,
        wall_s=wall,
        ops_per_s=n / wall,
        cpu_us_per_op=(total["cpu_user_s"] + total["cpu_sys_s"]) / n * 1e6,
        p50_us=p50,
        p99_us=p99,
        # the server time includes the warm-up; scale it to the measured share
        server_cpu_pct=100.0 * srv / (wall + warmup),
        server_cpu_us_per_op=None,
    )
    return row


def run_pingpong(servers: Servers, cpu: int | None, seconds: float, warmup: float) -> dict:
    row = {
        "name": "C client, 1 conn, blocking keep-alive GET",
        "tool": "pingpong",
        "url": "small",
        "connections": 1,
    }
    argv = [str(servers.native["pingpong"]), "127.0.0.1", str(servers.http_port), "/small"]
    return _run_native(servers, cpu, row, argv, seconds, warmup)


def run_upload_floor(
    servers: Servers, cpu: int | None, size: int, seconds: float, warmup: float
) -> dict:
    """The kernel's cost of upload_10m's operation: the C client POSTing `size` bytes held
    in memory to the C server's /upload over a keep-alive connection, in blocking writes;
    over `UPLOAD_CONNECTIONS` connections in turn, as the upload scenarios."""
    row = {
        "name": f"C client, {UPLOAD_CONNECTIONS} conns, blocking {size >> 20} MB upload",
        "tool": "pingpong",
        "url": "upload",
        "connections": UPLOAD_CONNECTIONS,
        "upload_bytes": size,
    }
    argv = [
        str(servers.native["pingpong"]),
        "127.0.0.1",
        str(servers.c_port),
        "/upload",
        str(size),
    ]
    pid = servers.c_server.pid if servers.c_server else None
    return _run_native(
        servers, cpu, row, argv, seconds, warmup, server_pid=pid, runs=UPLOAD_CONNECTIONS
    )


def run_tls_floor(servers: Servers, cpu: int | None, seconds: float, warmup: float) -> dict:
    """OpenSSL's own cost for https_new_conn's operation (native/tls_floor.c): a new
    connection per GET, its TLS handshake resuming the last one's session."""
    row = {
        "name": "C client, OpenSSL, new HTTPS conn per GET",
        "tool": "tls_floor",
        "url": "small",
        "connections": "new",
    }
    argv = [
        str(servers.native["tls_floor"]),
        "127.0.0.1",
        str(servers.https_port),
        "/small",
        str(servers.ca_pem),
    ]
    return _run_native(servers, cpu, row, argv, seconds, warmup)


def run_limits(servers: Servers, cpu: int | None, seconds: float) -> list[dict]:
    urls = servers.urls()
    rows = [
        run_wrk(servers, cpu, urls["small"], 1, seconds, "wrk -t1 -c1, small GET"),
        run_wrk(servers, cpu, urls["small"], 50, seconds, "wrk -t1 -c50, small GET"),
        run_pingpong(servers, cpu, seconds, min(1.0, seconds / 4)),
        run_tls_floor(servers, cpu, seconds, min(1.0, seconds / 4)),
        run_wrk(servers, cpu, urls["file_10m"], 1, seconds, "wrk -t1 -c1, 10 MB GET"),
        # HTTP/1.1 over TLS (wrk offers no ALPN): the decryption floor of h2_get_10m.
        run_wrk(servers, cpu, urls["h2_file_10m"], 1, seconds, "wrk -t1 -c1, 10 MB GET, TLS"),
        run_upload_floor(servers, cpu, 10 << 20, seconds, min(1.0, seconds / 4)),
    ]
    return rows


def median_limits(reps: list[list[dict]]) -> list[dict]:
    """The limit rows of every repetition, one row each: the run with the median CPU/op
    (its other figures with it, so a row stays one run's), with how many repetitions
    ran it and the [min, max] of their CPU/op. The scenarios run between the repetitions'
    limit rows, so a floor is measured across the same stretches of the VM's drift as
    the rows divided by it."""
    out = []
    for i in range(len(reps[0]) if reps else 0):
        rows = [rep[i] for rep in reps if i < len(rep)]
        ok = sorted((r for r in rows if r.get("status") == "ok"), key=lambda r: r["cpu_us_per_op"])
        if not ok:
            out.append({**rows[-1], "reps": len(rows)})
            continue
        cpus = [r["cpu_us_per_op"] for r in ok]
        row = dict(ok[(len(ok) - 1) // 2])
        row.update(
            cpu_us_per_op=statistics.median(cpus),
            reps=len(rows),
            cpu_spread=[cpus[0], cpus[-1]],
        )
        out.append(row)
    return out

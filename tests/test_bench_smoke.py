"""CI check of the benchmark harness (benchmarks are not tests: this only checks that it runs).

- `scripts/bench.py --quick` for one small scenario with httprs and httpx runs and writes
  valid JSON with the expected fields, the summary block and both charts;
- the project's C server (scripts/bench/native/echo_server.c) speaks correct HTTP/1.1
  for the shapes the benchmark uses.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
NGINX = shutil.which("nginx") or (Path("/usr/sbin/nginx").exists() and "/usr/sbin/nginx")


def _upload_connections() -> int:
    """The connections each upload scenario's window is split over (scenarios.py)."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench.scenarios import UPLOAD_CONNECTIONS
    finally:
        sys.path.remove(str(SCRIPTS))
    return UPLOAD_CONNECTIONS


def _quick_bench(tmp_path, *args):
    """`scripts/bench.py --quick ARGS` from `tmp_path`, as a user would run it."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=115,
        cwd=tmp_path,
    )


@pytest.mark.skipif(not NGINX, reason="nginx is not installed (bench needs nginx-light)")
@pytest.mark.timeout(120)
def test_quick_run_writes_json(tmp_path):
    out = tmp_path / "results.json"
    chart = tmp_path / "chart.png"
    res = _quick_bench(
        tmp_path, "--scenario", "get_small", "--clients", "httprs,httpx", "--json", str(out),
        "--chart", str(chart),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(out.read_text())

    meta = doc["meta"]
    for key in (
        "date_utc",
        "python",
        "openssl",
        "cpu_model",
        "pin",
        "pinning",
        "mode",
        "repeat",
        "clients",
        "tcp_congestion_control",
    ):
        assert key in meta, key
    assert meta["mode"] == "quick"
    assert "httpx" in meta["clients"]

    # limit rows come first and are never silently dropped (missing wrk is reported)
    names = [row["name"] for row in doc["limits"]]
    assert any(n.startswith("wrk -t1 -c1,") for n in names)
    assert any(n.startswith("wrk -t1 -c50,") for n in names)
    assert any(n.startswith("C client") for n in names)
    for row in doc["limits"]:
        assert row["status"] in ("ok", "missing"), row
        if row["status"] == "ok":
            assert row["ops"] > 0 and row["ops_per_s"] > 0 and row["cpu_us_per_op"] > 0
    # OpenSSL's own new-connection floor resumes its sessions, as httprs does
    (tls_floor,) = [row for row in doc["limits"] if row["tool"] == "tls_floor"]
    assert tls_floor["status"] == "ok", tls_floor
    assert 0 < tls_floor["resumed"] <= tls_floor["ops"]
    # the C client's upload to the C server: upload_10m's floor
    (upload,) = [row for row in doc["limits"] if row.get("upload_bytes")]
    assert upload["status"] == "ok", upload
    assert upload["tool"] == "pingpong" and upload["url"] == "upload"
    assert upload["upload_bytes"] == 10 << 20
    # split over as many connections as the upload scenarios' windows
    assert upload["connections"] == _upload_connections() > 1

    assert list(doc["scenarios"]) == ["get_small"]
    # get_small is a sync scenario: a family selects only its sync client here
    rows = {row["client"]: row for row in doc["results"]}
    assert set(rows) == {"httprs", "httpx"}
    for row in rows.values():
        assert row["scenario"] == "get_small"
        assert row["status"] == "ok", row
        assert row["ops"] >= 5
        assert row["cpu_us_per_op"] > 0
        assert row["ops_per_s"] > 0
        assert 0 < row["p50_us"] <= row["p99_us"]
        assert row["peak_rss_mb"] >= 0
        # the window's own peak (above the RSS after warm-up) is part of the peak above
        # the post-import RSS (this machine's /proc lets the peak mark be reset)
        assert row["peak_rss_method"] == "VmHWM after clear_refs"
        assert 0 <= row["transfer_rss_mb"] <= row["peak_rss_mb"] + 0.5
        assert row["server_cpu_pct"] >= 0
        assert row["gc0_per_10k"] >= 0
        assert isinstance(row["blocks_per_op"], float)
    assert rows["httpx"]["ratio_vs_httpx"] == pytest.approx(1.0)
    expect = rows["httpx"]["cpu_us_per_op"] / rows["httprs"]["cpu_us_per_op"]
    assert rows["httprs"]["ratio_vs_httpx"] == pytest.approx(expect)

    # the summary compares httprs with the cheapest other client (here httpx)
    summary = doc["summary"]
    (srow,) = summary["rows"]
    assert srow["scenario"] == "get_small" and srow["best_peer"] == "httpx"
    assert srow["ratio_best"] == pytest.approx(1.0 / expect)
    assert srow["ratio_httpx"] == pytest.approx(1.0 / expect)
    assert srow["wins"] == (srow["ratio_best"] < 1)
    assert summary["scenarios_compared"] == 1
    assert summary["scenarios_won"] == int(srow["wins"])
    assert "httprs is the cheapest client in" in res.stdout

    # the table is printed: limits first, then the scenario
    assert res.stdout.index("Machine limits") < res.stdout.index("get_small:")
    assert "httpx" in res.stdout
    if "chart written" in res.stderr:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        absolute = tmp_path / "chart-absolute.png"
        assert absolute.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_divides_by_the_floor_doing_the_same_operation():
    """floor_ratio: a large download ÷ wrk -c1 on the same file (over TLS when the
    scenario's is, plain otherwise), a new HTTPS connection
    ÷ the OpenSSL C client, an upload from bytes ÷ the C client's upload of the same size;
    a scenario without such a row has none."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench import report
    finally:
        sys.path.remove(str(SCRIPTS))

    def scenario(op, path, tls=False, bytes_per_op=0, connections=1):
        return {
            "op": op,
            "path": path,
            "tls": tls,
            "bytes_per_op": bytes_per_op,
            "connections": connections,
        }

    def result(client, name, cpu):
        return {"client": client, "scenario": name, "status": "ok", "cpu_us_per_op": cpu}

    def limit(tool, url, connections, cpu, **extra):
        return {
            "tool": tool,
            "url": url,
            "connections": connections,
            "status": "ok",
            "cpu_us_per_op": cpu,
            **extra,
        }

    doc = {
        "scenarios": {
            "get_10m": scenario("get", "10m.bin", bytes_per_op=10 << 20),
            "h2_get_10m": scenario("get", "10m.bin", tls=True, bytes_per_op=10 << 20),
            "https_new_conn": scenario("get_close", "small", tls=True),
            "client_churn": scenario("get_close", "small"),
            "get_small": scenario("get", "small"),
            "upload_10m": scenario("upload", "upload", bytes_per_op=10 << 20, connections=4),
            "upload_1m": scenario("upload", "upload", bytes_per_op=1 << 20),
            "upload_gen_10m": scenario("upload_gen", "upload", bytes_per_op=10 << 20),
        },
        "results": [
            r
            for name in (
                "get_10m",
                "h2_get_10m",
                "https_new_conn",
                "client_churn",
                "get_small",
                "upload_10m",
                "upload_1m",
                "upload_gen_10m",
            )
            for r in (result("httprs", name, 200.0), result("pycurl", name, 100.0))
        ],
        "limits": [
            limit("wrk", "small", 1, 10.0),
            limit("pingpong", "small", 1, 5.0),
            limit("wrk", "10m.bin", 1, 800.0, tls=True),
            limit("wrk", "10m.bin", 1, 400.0, tls=False),
            limit("tls_floor", "small", "new", 160.0),
            # one connection: not what upload_10m's windows do (4 connections in turn)
            limit("pingpong", "upload", 1, 50.0, upload_bytes=10 << 20),
            limit("pingpong", "upload", 4, 100.0, upload_bytes=10 << 20),
        ],
    }
    rows = {r["scenario"]: r for r in report.summary(doc)["rows"]}
    assert rows["get_10m"]["floor_ratio"] == pytest.approx(0.5)
    assert rows["h2_get_10m"]["floor_ratio"] == pytest.approx(0.25)
    assert rows["https_new_conn"]["floor_ratio"] == pytest.approx(1.25)
    assert rows["upload_10m"]["floor_ratio"] == pytest.approx(2.0)
    # no row uploads 1 MB; a generator's chunked upload is another operation
    assert "floor_ratio" not in rows["upload_1m"]
    assert "floor_ratio" not in rows["upload_gen_10m"]
    assert "floor_ratio" not in rows["client_churn"]
    assert "floor_ratio" not in rows["get_small"]
    assert "÷ floor" in report.summary_text(report.summary(doc))


def test_limit_rows_are_the_median_run_of_each_repetitions():
    """The limit rows run at the start of every repetition; each row of the results is
    the run with the median CPU/op (its other figures with it), with the repetitions'
    count and [min, max]; a repetition that failed a row counts but is not a median."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench import limits
    finally:
        sys.path.remove(str(SCRIPTS))

    def row(name, cpu, p50, status="ok"):
        r = {"name": name, "tool": "wrk", "status": status}
        if status == "ok":
            r.update(cpu_us_per_op=cpu, p50_us=p50)
        else:
            r["error"] = "wrk exited 1"
        return r

    reps = [
        [row("a", 5.0, 50.0), row("b", 0, 0, "error")],
        [row("a", 9.0, 90.0), row("b", 0, 0, "error")],
        [row("a", 4.0, 40.0), row("b", 0, 0, "error")],
        [row("a", 6.0, 60.0), row("b", 0, 0, "error")],
    ]
    a, b = limits.median_limits(reps)
    assert a["cpu_us_per_op"] == 5.5 and a["cpu_spread"] == [4.0, 9.0] and a["reps"] == 4
    assert a["p50_us"] == 50.0  # the lower middle run's own figures
    assert b["status"] == "error" and b["reps"] == 4
    reps[1][1] = row("b", 7.0, 70.0)
    b = limits.median_limits(reps)[1]
    assert (b["status"], b["cpu_us_per_op"], b["cpu_spread"]) == ("ok", 7.0, [7.0, 7.0])
    assert limits.median_limits([]) == []


def test_summary_pairs_each_repetition_with_the_best_peers_same_one():
    """reps won: httprs's run against the best peer's run of the same repetition (the
    clients of a scenario run back to back in it), counted over the repetitions; the
    headline ratio stays the medians'. Without runs of equal number, no count."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench import report
    finally:
        sys.path.remove(str(SCRIPTS))

    def result(client, name, runs):
        cpus = sorted(runs)
        return {
            "client": client,
            "scenario": name,
            "status": "ok",
            "cpu_us_per_op": cpus[len(cpus) // 2],
            "runs": [{"cpu_us_per_op": c} for c in runs],
        }

    doc = {
        "scenarios": {"a": {"op": "get", "path": "small"}, "b": {"op": "get", "path": "small"}},
        "results": [
            # a slow stretch in repetition 2 hits both: httprs wins every pair
            result("httprs", "a", [10.0, 20.0, 11.0]),
            result("pycurl", "a", [12.0, 24.0, 13.0]),
            result("pyreqwest", "a", [30.0, 31.0, 32.0]),
            # medians say httprs loses (12 > 11); the pairs split 1 to 2
            result("httprs", "b", [10.0, 12.0, 15.0]),
            result("pycurl", "b", [11.0, 9.0, 14.0]),
        ],
    }
    rows = {r["scenario"]: r for r in report.summary(doc)["rows"]}
    assert (rows["a"]["best_peer"], rows["a"]["reps_won"], rows["a"]["reps"]) == ("pycurl", 3, 3)
    assert rows["b"]["wins"] is False
    assert (rows["b"]["reps_won"], rows["b"]["reps"]) == (1, 3)
    text = report.summary_text(report.summary(doc))
    assert "3/3" in text and "1/3" in text
    doc["results"][4]["runs"].pop()
    assert "reps" not in {r["scenario"]: r for r in report.summary(doc)["rows"]}["b"]


@pytest.mark.timeout(120)
def test_upload_window_is_split_over_connections(tmp_path):
    """An upload scenario's window runs over 4 clients in turn (Scenario.connections),
    each keeping its one connection alive through its part of the window."""
    out = tmp_path / "results.json"
    res = _quick_bench(
        tmp_path, "--no-limits", "--scenario", "upload_1m", "--clients", "httprs", "--json",
        str(out), "--chart", "none",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    doc = json.loads(out.read_text())
    n = _upload_connections()
    assert doc["scenarios"]["upload_1m"]["connections"] == n > 1
    (row,) = doc["results"]
    assert row["status"] == "ok", row
    assert row["connections"] == n
    # quick mode: at least 2 operations, spread over the parts (one each at least)
    assert row["ops"] >= n
    assert row["new_connections"] == 0
    assert f"each run's window over {n} clients in turn" in res.stdout


def test_unknown_client_is_an_error(tmp_path):
    """An unknown client name is an error, not an empty run."""
    res = subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), "--clients", "nosuchclient", "--list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode != 0
    assert "unknown client" in res.stderr


@pytest.fixture(scope="module")
def c_server():
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench.servers import build_native, free_port
    finally:
        sys.path.remove(str(SCRIPTS))
    exe = build_native()["echo_server"]
    port = free_port()
    proc = subprocess.Popen([str(exe), str(port)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    yield port
    proc.terminate()
    proc.wait(5)


def test_c_server_echo_keepalive(c_server):
    conn = http.client.HTTPConnection("127.0.0.1", c_server, timeout=5)
    for body in (b"a", b"hello" * 1000, bytes(range(256)) * 300):
        conn.request("POST", "/echo", body=body, headers={"Content-Type": "application/x-test"})
        r = conn.getresponse()
        assert r.status == 200
        assert r.getheader("Content-Type") == "application/x-test"
        assert r.read() == body
    conn.close()


def test_c_server_chunked_upload_and_expect(c_server):
    conn = http.client.HTTPConnection("127.0.0.1", c_server, timeout=5)
    chunks = [b"x" * 70000, b"y" * 3, b"z" * 100000]
    conn.request("POST", "/upload", body=iter(chunks), encode_chunked=True)
    r = conn.getresponse()
    assert r.read() == str(sum(map(len, chunks))).encode()
    conn.request("POST", "/echo", body=iter(chunks), encode_chunked=True)
    assert conn.getresponse().read() == b"".join(chunks)
    conn.close()

    # Expect: 100-continue is answered before the body is sent
    with socket.create_connection(("127.0.0.1", c_server), timeout=5) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(b"hello")
        data = b""
        while not data.endswith(b"\r\n\r\n5"):
            chunk = s.recv(1000)
            assert chunk
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_c_server_chunked_download_and_close(c_server):
    conn = http.client.HTTPConnection("127.0.0.1", c_server, timeout=5)
    conn.request("GET", "/chunked?size=100001&chunk=4096")
    r = conn.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert len(r.read()) == 100001
    conn.request("GET", "/nope", headers={"Connection": "close"})
    r = conn.getresponse()
    assert r.status == 404
    assert r.getheader("Connection") == "close"
    r.read()
    conn.close()


def test_c_server_pipelined_requests(c_server):
    with socket.create_connection(("127.0.0.1", c_server), timeout=5) as s:
        req = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        s.sendall(req * 3)
        data = b""
        while data.count(b"abc") < 3:
            chunk = s.recv(4096)
            assert chunk
            data += chunk
        assert data.count(b"HTTP/1.1 200 OK") == 3

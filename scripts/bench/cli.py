"""scripts/bench.py: the benchmark driver (see the module docs of each part).

    python scripts/bench.py [--quick] [--scenario NAME ...] [--clients NAME ...]
                            [--repeat N] [--json PATH] [--chart PATH] [--pin split|same]

It starts nginx and the C server (pinned to the server CPU), runs the machine-limit
rows (wrk, the C client), then every (scenario, client) pair in a fresh process pinned
to the client CPU, interleaving clients across repetitions (A B C A B C ...), and prints
a table, writes JSON and a PNG chart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import clients as clients_mod
from . import report
from . import scenarios as scenarios_mod
from .limits import median_limits, run_limits
from .servers import REPO, Servers, SetupError, cpu_count, taskset

SCRIPTS = Path(__file__).resolve().parent.parent
# How the httprs measured was built (scripts/dev.sh bench sets HTTPRS_BENCH_BUILD).
HTTPRS_BUILDS = {
    "pgo": "profile-guided, as the wheels (scripts/dev.sh pgo)",
    "editable": "editable development build, no profile-guided optimization",
}

# Timing per mode: warm-up and timed window per (client, scenario) run, in seconds.
TIMING = {
    "full": {"warmup_s": 0.15, "window_s": 0.6, "limit_s": 3.0, "repeat": 5},
    "quick": {"warmup_s": 0.1, "window_s": 0.25, "limit_s": 1.0, "repeat": 1},
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="short windows and one repetition (development)"
    )
    p.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        help="scenario name or glob (repeatable, or comma-separated); default: all",
    )
    p.add_argument(
        "--clients",
        action="append",
        metavar="NAME",
        help="client name or family (repeatable, or comma-separated): httprs selects httprs and httprs-async",
    )
    p.add_argument(
        "--repeat", type=int, help="repetitions per (client, scenario); default 5, quick 1"
    )
    p.add_argument("--window", type=float, help="timed window per run in seconds")
    p.add_argument("--warmup", type=float, help="warm-up per run in seconds")
    p.add_argument("--json", metavar="PATH", help="results file (default bench/results.json)")
    p.add_argument(
        "--chart",
        metavar="PATH",
        help="PNG chart (default: next to the JSON, .png); 'none' to skip",
    )
    p.add_argument(
        "--pin",
        choices=("split", "same"),
        default="same",
        help=(
            "same: servers and clients on CPU 0 (default; per-request CPU without the VM's "
            "cross-CPU wake-up cost); split: servers on CPU 1, clients on CPU 0 (throughput)"
        ),
    )
    p.add_argument("--no-limits", action="store_true", help="skip the wrk / C client rows")
    p.add_argument("--list", action="store_true", help="list scenarios and clients, then exit")
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds before a worker run is killed and reported as an error (default 60, quick 20)",
    )
    return p.parse_args(argv)


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def probe_client(adapter: type[clients_mod.Adapter], cpu: int | None) -> dict:
    """Imports the client's modules in a fresh process: versions, or why it is missing."""
    code = (
        "import json,sys; from bench.clients import CLIENTS\n"
        f"a = CLIENTS[{adapter.name!r}]()\n"
        "try:\n    print(json.dumps({'ok': True, 'versions': a.load()}))\n"
        "except ImportError as e:\n    print(json.dumps({'ok': False, 'error': f'{type(e).__name__}: {e}'}))\n"
    )
    res = subprocess.run(
        [*taskset(cpu), sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_worker_env(),
        cwd=SCRIPTS,
        timeout=600,  # the first httprs import may rebuild the editable install
    )
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"ok": False, "error": f"import probe failed: {res.stderr.strip()[-300:]}"}


def _worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SCRIPTS) + (
        os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""
    )
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def run_worker(spec: dict, cpu: int | None, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="httprs-bench-w-") as d:
        spec_path, out_path = Path(d) / "spec.json", Path(d) / "out.json"
        spec_path.write_text(json.dumps(spec))
        cmd = [*taskset(cpu), sys.executable, "-m", "bench.worker", str(spec_path), str(out_path)]
        try:
            res = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env=_worker_env(),
                cwd=SCRIPTS,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {
                "client": spec["client"],
                "scenario": spec["scenario"],
                "status": "error",
                "error": f"timed out after {timeout:.0f}s",
            }
        if out_path.exists():
            return json.loads(out_path.read_text())
        return {
            "client": spec["client"],
            "scenario": spec["scenario"],
            "status": "error",
            "error": f"worker exited {res.returncode} without a result: {res.stderr.strip()[-400:]}",
        }


METRICS = (
    "cpu_us_per_op",
    "ops_per_s",
    "mb_per_s",
    "cpu_us_per_mb",
    "p50_us",
    "p99_us",
    "peak_rss_mb",
    "transfer_rss_mb",
    "server_cpu_pct",
    "server_cpu_us_per_op",
    "new_connections",
    "gc0_per_10k",
    "blocks_per_op",
)


def aggregate(runs: list[dict]) -> dict:
    """Median of each metric over the repetitions, with min/max spread."""
    ok = [r for r in runs if r.get("status") == "ok"]
    first = runs[0]
    out = {"client": first["client"], "scenario": first["scenario"], "reps": len(runs)}
    if not ok:
        bad = runs[-1]
        out.update(status=bad["status"], error=bad.get("error", ""))
        if bad.get("traceback"):
            out["traceback"] = bad["traceback"]
        return out
    out["status"] = "ok" if len(ok) == len(runs) else "partial"
    if len(ok) != len(runs):
        out["error"] = next(r.get("error", "") for r in runs if r.get("status") != "ok")
    spread = {}
    for m in METRICS:
        vals = [r[m] for r in ok if r.get(m) is not None]
        if not vals:
            out[m] = None
            continue
        out[m] = statistics.median(vals)
        spread[m] = [min(vals), max(vals)]
    out["spread"] = spread
    out["ops"] = sum(r["ops"] for r in ok)
    for k in ("notes", "peak_rss_method", "connections"):
        if k in ok[0]:
            out[k] = ok[0][k]
    out["runs"] = [
        {m: r.get(m) for m in ("cpu_us_per_op", "ops_per_s", "mb_per_s", "ops", "wall_s", "run_s")}
        for r in ok
    ]
    return out


def machine_info(pin: str, server_cpu, client_cpu) -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    try:
        git = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        git = ""
    try:
        # BBR paces every connection at a rate it estimates per connection: see
        # Scenario.connections
        congestion = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    except OSError:
        congestion = "unknown"
    return {
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "python_build": platform.python_implementation() + " " + " ".join(platform.python_build()),
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "nginx": nginx_v,
        "tcp_congestion_control": congestion,
        "git": git,
        "httprs_build": HTTPRS_BUILDS.get(
            os.environ.get("HTTPRS_BENCH_BUILD", ""), "as installed"
        ),
        "pin": pin,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "pinning": (
            f"nginx (1 worker, worker_cpu_affinity) and the C server pinned with taskset to CPU {server_cpu}; "
            f"every client process, wrk and the C client pinned with taskset to CPU {client_cpu}"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scs = scenarios_mod.select(_split(args.scenario))
    adapters = clients_mod.select(_split(args.clients))
    if args.list:
        for sc in scenarios_mod.SCENARIOS.values():
            print(f"  {sc.name:16} {sc.mode:5}  {sc.title}")
        print("clients:", ", ".join(clients_mod.CLIENTS))
        return 0
    mode = "quick" if args.quick else "full"
    timing = dict(TIMING[mode])
    if args.window:
        timing["window_s"] = args.window
    if args.warmup is not None:
        timing["warmup_s"] = args.warmup
    repeat = args.repeat or timing["repeat"]
    timeout = args.timeout or (20.0 if args.quick else 60.0)
    timing["quick"] = args.quick

    ncpu = cpu_count()
    if args.pin == "same" or ncpu < 2:
        server_cpu = client_cpu = sorted(os.sched_getaffinity(0))[0]
    else:
        cpus = sorted(os.sched_getaffinity(0))
        client_cpu, server_cpu = cpus[0], cpus[1]

    json_path = Path(args.json) if args.json else REPO / "bench" / "results.json"
    chart_path = (
        None
        if args.chart == "none"
        else Path(args.chart)
        if args.chart
        else json_path.with_suffix(".png")
    )

    t_start = time.monotonic()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        servers = Servers.start(server_cpu)
    except SetupError as exc:
        log(f"bench: cannot start the servers: {exc}")
        return 2
    try:
        meta = machine_info(args.pin, server_cpu, client_cpu)
        meta.update(mode=mode, repeat=repeat, timing=timing)
        log(
            f"bench: nginx :{servers.http_port} (worker pid {servers.nginx_worker_pid}), C server :{servers.c_port}; {meta['pinning']}"
        )

        limit_reps: list[list[dict]] = []

        probes = {}
        for a in adapters:
            probes[a.name] = probe_client(a, client_cpu)
            status = (
                "ok " + json.dumps(probes[a.name]["versions"])
                if probes[a.name]["ok"]
                else probes[a.name]["error"]
            )
            log(f"bench: client {a.name}: {status}")
        meta["clients"] = {
            name: p.get("versions") or {"missing": p.get("error")} for name, p in probes.items()
        }

        pairs = [(sc, a) for sc in scs for a in adapters if clients_mod.runs_scenario(a, sc)]
        runs: dict[tuple[str, str], list[dict]] = {}
        info = servers.info()
        total = sum(1 for sc, a in pairs if probes[a.name]["ok"]) * repeat
        done = 0
        try:
            for rep in range(repeat):
                if not args.no_limits:
                    log(f"bench: machine limits (wrk, C client), rep {rep + 1} ...")
                    limit_reps.append(run_limits(servers, client_cpu, timing["limit_s"]))
                for sc in scs:
                    for a in adapters:
                        if not clients_mod.runs_scenario(a, sc):
                            continue
                        key = (sc.name, a.name)
                        if not probes[a.name]["ok"]:
                            runs.setdefault(
                                key,
                                [
                                    {
                                        "client": a.name,
                                        "scenario": sc.name,
                                        "status": "missing",
                                        "error": probes[a.name]["error"],
                                    }
                                ],
                            )
                            continue
                        prev = runs.get(key)
                        if prev and prev[-1]["status"] == "error" and rep > 0:
                            continue  # an error is not retried in later repetitions
                        servers.check_alive()
                        spec = {
                            "client": a.name,
                            "scenario": sc.name,
                            "info": info,
                            "timing": timing,
                        }
                        t_run = time.monotonic()
                        r = run_worker(spec, client_cpu, timeout)
                        r["run_s"] = round(time.monotonic() - t_run, 2)
                        runs.setdefault(key, []).append(r)
                        done += 1
                        if r["status"] == "ok":
                            val = f"{r['cpu_us_per_op']:.1f} µs CPU/op, {r['ops_per_s']:.0f} op/s"
                        else:
                            val = f"{r['status']}: {r.get('error', '')[:120]}"
                        log(f"bench: [{done}/{total}] rep {rep + 1} {sc.name} {a.name}: {val}")

        except SetupError as exc:
            # a server died: keep what was measured, say so, and stop
            meta["aborted"] = str(exc)
            log(f"bench: aborted: {exc}")

        not_run = {"status": "error", "error": "not run: the benchmark was aborted"}
        results = [
            aggregate(
                runs.get((sc.name, a.name)) or [{"client": a.name, "scenario": sc.name, **not_run}]
            )
            for sc, a in pairs
        ]
        limits = median_limits(limit_reps)
        report.add_ratios(results)
        meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
        doc = {
            "meta": meta,
            "limits": limits,
            "scenarios": {
                sc.name: {
                    "title": sc.title,
                    "mode": sc.mode,
                    "op": sc.op,
                    "unit": sc.unit,
                    "server": sc.server,
                    "conc": sc.conc,
                    "path": info["urls"][sc.url].rsplit("/", 1)[-1],
                    "tls": sc.tls,
                    "bytes_per_op": sc.bytes_per_op,
                    "connections": sc.connections,
                }
                for sc in scs
            },
            "results": results,
        }
        doc["summary"] = report.summary(doc)
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1))
        print(report.table(doc))
        print(report.summary_text(doc["summary"]))
        log(f"bench: results written to {json_path}")
        if chart_path is not None:
            absolute = chart_path.with_name(chart_path.stem + "-absolute" + chart_path.suffix)
            for path, draw in ((chart_path, report.ratio_chart), (absolute, report.chart)):
                err = draw(doc, path)
                log(
                    f"bench: chart {'written to ' + str(path) if not err else 'not written: ' + err}"
                )
        log(f"bench: done in {meta['elapsed_s']:.0f}s")
        return 1 if meta.get("aborted") else 0
    finally:
        servers.stop()

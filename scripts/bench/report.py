"""Report: the text table, the ratio to httpx, the summary block and the PNG charts."""

from __future__ import annotations

from pathlib import Path

from .clients import CLIENTS


def _baseline_name(client: str) -> str:
    a = CLIENTS.get(client)
    return "httpx-async" if a is not None and a.is_async else "httpx"


def add_ratios(results: list[dict]) -> None:
    """ratio_vs_httpx = httpx CPU per op / this client's CPU per op, in the same scenario.

    Sync clients are compared with httpx.Client, async ones with httpx.AsyncClient
    (falling back to the other when that one did not run). Above 1: less CPU than httpx.
    """
    by = {(r["scenario"], r["client"]): r for r in results}
    for r in results:
        r["ratio_vs_httpx"] = None
        if r.get("status") not in ("ok", "partial") or not r.get("cpu_us_per_op"):
            continue
        base_name = _baseline_name(r["client"])
        other = "httpx" if base_name == "httpx-async" else "httpx-async"
        for name in (base_name, other):
            base = by.get((r["scenario"], name))
            if base and base.get("status") in ("ok", "partial") and base.get("cpu_us_per_op"):
                r["ratio_vs_httpx"] = base["cpu_us_per_op"] / r["cpu_us_per_op"]
                r["ratio_baseline"] = name
                break


def _num(v, fmt="{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _short(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def table(doc: dict) -> str:
    meta = doc["meta"]
    out = []
    out.append(
        f"httprs benchmark — {meta['date_utc']}, {meta['mode']} mode, {meta['repeat']} repetition(s), "
        f"window {meta['timing']['window_s']}s"
    )
    out.append(
        f"{meta['cpu_model']} ({meta['cpus']} CPUs), Python {meta['python']}, {meta['openssl']}, {meta['nginx']}"
        + (
            f", TCP congestion control {meta['tcp_congestion_control']}"
            if "tcp_congestion_control" in meta
            else ""
        )
    )
    out.append(f"pinning: {meta['pinning']}")
    if "httprs_build" in meta:
        out.append(f"httprs build: {meta['httprs_build']}")
    versions: list[str] = []
    for name, mods in meta.get("clients", {}).items():
        if "missing" in mods:
            versions.append(f"{name}: MISSING ({mods['missing']})")
            continue
        for m, v in mods.items():
            text = f"{m} {v.split()[0]}"
            if text not in versions:
                versions.append(text)
    if versions:
        out.append("clients: " + "; ".join(versions))
    if meta.get("aborted"):
        out.append(f"ABORTED, results are incomplete: {meta['aborted']}")
    out.append(
        "CPU = whole client process user+sys per operation (median of repetitions, [min-max]); "
        "srv% = server CPU / wall; RSS+ = peak RSS above the post-import baseline; "
        "xfer MB = peak RSS of the timed window above the RSS of the constructed client "
        "(before its first request); "
        "vs httpx = httpx CPU/op ÷ this CPU/op (>1 is cheaper; async clients vs httpx.AsyncClient); "
        "gc0/10k = generation-0 GC collections per 10,000 ops; blk+/op = net allocated "
        "memory blocks per op over the window"
    )
    out.append("")
    if doc.get("limits"):
        out.append(
            "Machine limits (same nginx, load generator pinned like the clients; run at the "
            "start of each repetition: the median run, the CPU's [min-max])"
        )
        hdr = (
            f"  {'tool':44} {'req/s':>10} {'MB/s':>8} {'CPU µs/req':>11} {'[min-max]':>17} "
            f"{'p50 µs':>8} {'p99 µs':>8} {'srv%':>5}"
        )
        out.append(hdr)
        for row in doc["limits"]:
            if row.get("status") != "ok":
                out.append(f"  {row['name']:44} {row.get('status')}: {row.get('error', '')}")
                continue
            lo, hi = row.get("cpu_spread") or [None, None]
            spread = f"[{_short(lo)}-{_short(hi)}]" if lo is not None and row["reps"] > 1 else ""
            out.append(
                f"  {row['name']:44} {_num(row.get('ops_per_s')):>10} {_num(row.get('mb_per_s')):>8} "
                f"{_short(row.get('cpu_us_per_op')):>11} {spread:>17} {_short(row.get('p50_us')):>8} "
                f"{_short(row.get('p99_us')):>8} {_num(row.get('server_cpu_pct')):>5}"
            )
        out.append("")
    results = doc["results"]
    for name, sc in doc["scenarios"].items():
        rows = [r for r in results if r["scenario"] == name]
        if not rows:
            continue
        unit = "MB/s" if sc["unit"] == "MB" else "op/s"
        split = sc.get("connections", 1)
        split_note = f", each run's window over {split} clients in turn" if split > 1 else ""
        out.append(f"{name}: {sc['title']}  [server: {sc['server']}{split_note}]")
        out.append(
            f"  {'client':16} {'CPU µs/op':>10} {'[min-max]':>17} {unit:>9} {'p50 µs':>9} {'p99 µs':>9} "
            f"{'RSS+ MB':>8} {'xfer MB':>8} {'srv%':>5} {'vs httpx':>9} {'gc0/10k':>8} {'blk+/op':>8}"
        )
        for r in rows:
            if r.get("status") not in ("ok", "partial"):
                err = r.get("error", "")
                out.append(f"  {r['client']:16} {r['status']}: {err[:110]}")
                continue
            lo, hi = r.get("spread", {}).get("cpu_us_per_op", [None, None])
            spread = f"[{_short(lo)}-{_short(hi)}]" if lo is not None and r["reps"] > 1 else ""
            thr = r.get("mb_per_s") if sc["unit"] == "MB" else r.get("ops_per_s")
            ratio = r.get("ratio_vs_httpx")
            line = (
                f"  {r['client']:16} {_short(r['cpu_us_per_op']):>10} {spread:>17} {_num(thr):>9} "
                f"{_short(r.get('p50_us')):>9} {_short(r.get('p99_us')):>9} {_short(r.get('peak_rss_mb')):>8} "
                f"{_short(r.get('transfer_rss_mb')):>8} "
                f"{_num(r.get('server_cpu_pct')):>5} {(f'{ratio:.2f}x' if ratio else '-'):>9} "
                f"{_short(r.get('gc0_per_10k')):>8} {_short(r.get('blocks_per_op')):>8}"
            )
            if r["status"] == "partial":
                line += f"  (some runs failed: {r.get('error', '')[:60]})"
            conns = r.get("new_connections")
            if sc.get("keep_alive") and conns is not None and conns > max(1, sc.get("conc", 1)):
                line += f"  (! opened {conns:.0f} connections in the window: keep-alive not kept)"
            if r.get("notes"):
                line += f"  ({r['notes']})"
            out.append(line)
        out.append("")
    return "\n".join(out)


def chart(doc: dict, path: Path) -> str | None:
    """Writes the PNG (CPU per op and throughput per scenario, grouped by client, log scale).

    Returns an error message instead of raising.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc})"
    results = doc["results"]
    names = [n for n in doc["scenarios"] if any(r["scenario"] == n for r in results)]
    if not names:
        return "no results"
    clients: list[str] = []
    for r in results:
        if r["client"] not in clients:
            clients.append(r["client"])
    by = {(r["scenario"], r["client"]): r for r in results}
    failed = {
        c: sum(1 for r in results if r["client"] == c and r.get("status") not in ("ok", "partial"))
        for c in clients
    }
    cmap = matplotlib.colormaps.get_cmap("tab20")
    fixed = {
        "httprs": "#d62728",
        "httprs-async": "#7f0f0f",
        "httpx": "#1f77b4",
        "httpx-async": "#9ecae1",
    }
    others = [cmap(i) for i in (2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 16, 17)]
    colors = {
        c: fixed.get(c) or others[i % len(others)]
        for i, c in enumerate(x for x in clients if x not in fixed)
    }
    colors.update({c: v for c, v in fixed.items() if c in clients})
    width = 0.85 / len(clients)
    fig, axes = plt.subplots(2, 1, figsize=(max(12, 0.75 * len(names) + 4), 10), squeeze=False)
    panels = (
        (
            "client CPU µs per operation (log; lower is better)",
            lambda r, sc: r.get("cpu_us_per_op"),
        ),
        (
            "throughput: op/s, or MB/s for MB scenarios (log; higher is better)",
            lambda r, sc: r.get("mb_per_s") if sc["unit"] == "MB" else r.get("ops_per_s"),
        ),
    )
    for row, (ylabel, value) in enumerate(panels):
        ax = axes[row][0]
        for ci, client in enumerate(clients):
            xs, ys = [], []
            for si, name in enumerate(names):
                r = by.get((name, client))
                if r is None or r.get("status") not in ("ok", "partial"):
                    continue
                v = value(r, doc["scenarios"][name])
                if v:
                    xs.append(si - 0.425 + width * (ci + 0.5))
                    ys.append(v)
            label = client + (f" ({failed[client]} failed/missing)" if failed[client] else "")
            ax.bar(xs, ys, width=width, color=colors[client], label=label)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_xticks(range(len(names)))
        labels = [f"{n}{' (MB/s)' if doc['scenarios'][n]['unit'] == 'MB' else ''}" for n in names]
        ax.set_xticklabels(labels if row == 1 else names, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", which="major", alpha=0.3)
        ax.set_xlim(-0.6, len(names) - 0.4)
    axes[0][0].legend(
        fontsize=7, ncol=min(6, len(clients)), loc="upper left", bbox_to_anchor=(0, 1.16)
    )
    meta = doc["meta"]
    lim = ", ".join(
        f"{row['name']}: {row['ops_per_s']:,.0f} req/s"
        for row in doc.get("limits", [])
        if row.get("status") == "ok"
    )
    fig.suptitle(
        f"httprs benchmark ({meta['mode']}, {meta['date_utc']}, pin: {meta['pin']})\n{lim}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def _ok(r: dict | None) -> bool:
    return bool(r) and r.get("status") in ("ok", "partial") and bool(r.get("cpu_us_per_op"))


def _cheapest(rows: list[dict]) -> dict | None:
    rows = [r for r in rows if _ok(r)]
    return min(rows, key=lambda r: r["cpu_us_per_op"]) if rows else None


def _floor_row(doc: dict, sc: dict) -> dict | None:
    """The machine-limit row that does a scenario's operation without a client around
    it: wrk -c1 downloading the same file for a large download (over TLS when the
    scenario's is: HTTP/1.1, wrk offers no ALPN); the C client making the
    same new HTTPS connection per GET (OpenSSL's own handshake) for https_new_conn; the C
    client POSTing a body of the same size from memory for an upload from bytes."""
    upload = None
    if sc.get("bytes_per_op") and sc.get("op") in ("get", "stream"):
        tool, conns = "wrk", 1
    elif sc.get("op") == "get_close" and sc.get("tls"):
        tool, conns = "tls_floor", "new"
    elif sc.get("op") == "upload":
        tool, conns, upload = "pingpong", sc.get("connections", 1), sc.get("bytes_per_op")
    else:
        return None
    for row in doc.get("limits", []):
        if (
            row.get("tool") == tool
            and row.get("connections") == conns
            and row.get("url") == sc.get("path")
            and row.get("upload_bytes") == upload
            and (tool != "wrk" or bool(row.get("tls")) == bool(sc.get("tls")))
            and _ok(row)
        ):
            return row
    return None


def _paired_wins(ours: dict, best: dict) -> tuple[int, int] | None:
    """In how many repetitions httprs cost less than the best peer did in the same one:
    a scenario's clients run back to back within a repetition, so the pair shares that
    stretch of the machine's drift, which the medians of the two do not."""
    a, b = ours.get("runs") or [], best.get("runs") or []
    if not a or len(a) != len(b):
        return None
    won = sum(1 for x, y in zip(a, b) if x["cpu_us_per_op"] < y["cpu_us_per_op"])
    return won, len(a)


def summary(doc: dict) -> dict:
    """Per scenario: httprs's CPU/op against the cheapest other client and against httpx.

    httprs is the cheaper of httprs / httprs-async among those that ran the scenario;
    ratio_best = httprs CPU/op ÷ the cheapest other client's (below 1: httprs wins);
    ratio_httpx = httprs CPU/op ÷ httpx's; floor_ratio = httprs CPU/op ÷ the machine-limit
    row's doing the same operation (_floor_row: wrk -c1 for large downloads, the OpenSSL C
    client for new HTTPS connections, the C client's upload for uploads from bytes);
    rss_over_body = httprs's peak RSS (RSS+) ÷ the body size;
    transfer_rss_over_body = the timed window's peak above the RSS of the constructed client
    ÷ the body size.
    """
    rows: list[dict] = []
    for name, sc in doc["scenarios"].items():
        res = [r for r in doc["results"] if r["scenario"] == name]
        ours = _cheapest([r for r in res if r["client"].startswith("httprs")])
        best = _cheapest([r for r in res if not r["client"].startswith("httprs")])
        httpx = _cheapest([r for r in res if r["client"].startswith("httpx")])
        row: dict = {"scenario": name, "httprs": ours and ours["client"]}
        if ours is None:
            row["status"] = "httprs did not run"
            rows.append(row)
            continue
        cpu = ours["cpu_us_per_op"]
        row["cpu_us_per_op"] = cpu
        if best is not None:
            row.update(
                best_peer=best["client"],
                best_peer_cpu_us_per_op=best["cpu_us_per_op"],
                ratio_best=cpu / best["cpu_us_per_op"],
                wins=cpu < best["cpu_us_per_op"],
            )
            paired = _paired_wins(ours, best)
            if paired is not None:
                row["reps_won"], row["reps"] = paired
        if httpx is not None:
            row["ratio_httpx"] = cpu / httpx["cpu_us_per_op"]
        floor = _floor_row(doc, sc)
        if floor is not None:
            row["floor_ratio"] = cpu / floor["cpu_us_per_op"]
        if sc.get("bytes_per_op") and sc.get("op") in ("get", "stream"):
            for key, out in (
                ("peak_rss_mb", "rss_over_body"),
                ("transfer_rss_mb", "transfer_rss_over_body"),
            ):
                if ours.get(key) is not None:
                    row[out] = ours[key] * (1 << 20) / sc["bytes_per_op"]
        rows.append(row)
    compared = [r for r in rows if "wins" in r]
    return {
        "rows": rows,
        "scenarios_compared": len(compared),
        "scenarios_won": sum(1 for r in compared if r["wins"]),
    }


def summary_text(s: dict) -> str:
    out = [
        "Summary: httprs CPU/op ÷ the cheapest other client's (below 1.00 = httprs is cheapest), "
        "÷ httpx's, ÷ the floor (large downloads: wrk -c1 on the same file, over TLS for h2; new HTTPS "
        "connections: OpenSSL's own handshake in a C client; uploads from bytes: a C client "
        "writing the same body), peak RSS ÷ body (RSS+) "
        "and the timed window's peak above the constructed client ÷ body (xfer), and in how "
        "many repetitions httprs cost less than that peer in the same repetition (reps won)",
        f"  {'scenario':16} {'httprs':13} {'÷ best peer':>11} {'best peer':16} {'÷ httpx':>8} "
        f"{'÷ floor':>7} {'RSS÷body':>8} {'xfer÷body':>9} {'reps won':>8}",
    ]
    for r in s["rows"]:
        if "cpu_us_per_op" not in r:
            out.append(f"  {r['scenario']:16} {r.get('status', '')}")
            continue

        def f(key: str, r: dict = r) -> str:
            v = r.get(key)
            return "-" if v is None else f"{v:.2f}"

        mark = "" if r.get("wins", True) else "  <- not cheapest"
        won = f"{r['reps_won']}/{r['reps']}" if "reps" in r else "-"
        out.append(
            f"  {r['scenario']:16} {r['httprs']:13} {f('ratio_best'):>11} "
            f"{r.get('best_peer', '-'):16} {f('ratio_httpx'):>8} {f('floor_ratio'):>7} "
            f"{f('rss_over_body'):>8} {f('transfer_rss_over_body'):>9} {won:>8}{mark}"
        )
    out.append(
        f"  httprs is the cheapest client in {s['scenarios_won']} of "
        f"{s['scenarios_compared']} scenarios compared"
    )
    return "\n".join(out)


def ratio_chart(doc: dict, path: Path) -> str | None:
    """The PNG to read at a glance: httprs ÷ best peer per scenario (a line at 1.0), and
    httprs ÷ httpx. Returns an error message instead of raising."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc})"
    rows = [r for r in doc.get("summary", summary(doc))["rows"] if "cpu_us_per_op" in r]
    if not rows:
        return "no httprs results"
    names = [r["scenario"] for r in rows]
    fig, axes = plt.subplots(2, 1, figsize=(max(10, 0.5 * len(names) + 3), 8), squeeze=False)
    panels = (
        ("httprs CPU/op ÷ cheapest other client (below the line at 1: httprs wins)", "ratio_best"),
        ("httpx CPU/op ÷ httprs CPU/op (times cheaper than httpx)", "ratio_httpx"),
    )
    for ax_row, (title, key) in zip(axes, panels):
        ax = ax_row[0]
        xs, ys, labels = [], [], []
        for i, r in enumerate(rows):
            v = r.get(key)
            if not v:
                continue
            xs.append(i)
            if key == "ratio_best":
                ys.append(v)
                labels.append(f"{v:.2f} {r.get('best_peer', '')}")
            else:
                ys.append(1.0 / v)
                labels.append(f"{1.0 / v:.1f}x")
        if key == "ratio_best":
            ax.bar(xs, ys, color=["#2ca02c" if v < 1 else "#d62728" for v in ys])
            ax.axhline(1.0, color="black", linewidth=1)
        else:
            ax.bar(xs, ys, color="#1f77b4")
        for x, v, text in zip(xs, ys, labels):
            ax.annotate(
                text, (x, v), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=6
            )
        ax.set_title(title, fontsize=9)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    meta = doc["meta"]
    s = doc.get("summary") or summary(doc)
    fig.suptitle(
        f"httprs benchmark ({meta['mode']}, {meta['date_utc']}, pin: {meta['pin']}): cheapest in "
        f"{s['scenarios_won']} of {s['scenarios_compared']} scenarios",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None

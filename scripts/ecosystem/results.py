"""Reading suite results, comparing baseline and experiment, grouping regressions, and
rendering the report. Pure functions over data: no processes, no network."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

GOOD = frozenset({"passed", "xpassed"})
BAD = frozenset({"failed", "error"})
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@dataclass
class TestResult:
    nodeid: str
    outcome: str  # one of OUTCOMES
    cause: str = ""
    respx: bool = False
    longrepr: str = ""


@dataclass
class RunResult:
    """One pytest run of one suite (baseline or experiment)."""

    mode: str
    tests: dict[str, TestResult] = field(default_factory=dict)
    collect_errors: dict[str, TestResult] = field(default_factory=dict)
    collected: int | None = None  # as pytest reported it; None if never reported
    exitstatus: int | None = None
    finished: bool = False  # the session reached its end (not killed, not crashed)
    timed_out: bool = False
    httpx_file: str | None = None
    httpx_is_shim: bool | None = None
    displaced: list[str] = field(default_factory=list)
    fatal: str = ""  # why the run produced no usable results, if it did not

    def counts(self) -> dict[str, int]:
        c = Counter(t.outcome for t in self.tests.values())
        out = {k: c.get(k, 0) for k in OUTCOMES}
        out["error"] += len(self.collect_errors)
        out["collected"] = max(self.collected or 0, len(self.tests))
        return out


def _fold(previous: TestResult | None, nodeid: str, rec: dict) -> TestResult:
    """Merge one phase record into the test's result."""
    when = rec.get("when", "call")
    outcome = rec.get("outcome", "")
    xfail = bool(rec.get("xfail"))
    if outcome == "failed":
        new = "error" if when in ("setup", "teardown") else "failed"
    elif outcome == "skipped":
        new = "xfailed" if xfail else "skipped"
    elif outcome == "passed":
        new = "xpassed" if xfail else "passed"
    else:
        new = "error"
    result = TestResult(
        nodeid=nodeid,
        outcome=new,
        cause=rec.get("cause", "") or "",
        respx=bool(rec.get("respx")),
        longrepr=rec.get("longrepr", "") or "",
    )
    # Phases arrive in order (setup, call, teardown); the first failure wins, so a test
    # whose call and teardown both fail stays "failed" with the call's cause.
    if previous is not None and previous.outcome in BAD:
        return previous
    return result


def parse_jsonl(lines: Iterable[str], mode: str = "") -> RunResult:
    """Parse the records ecosystem_conftest.py writes (tolerating a cut-off last line)."""
    run = RunResult(mode=mode)
    collected_counts = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        event = rec.get("event")
        if event == "start":
            run.mode = rec.get("mode", run.mode)
            run.httpx_file = rec.get("httpx_file")
            run.httpx_is_shim = rec.get("httpx_is_shim")
            run.displaced = list(rec.get("displaced") or [])
        elif event == "collected":
            collected_counts.append(int(rec.get("count", 0)))
        elif event == "collect":
            nodeid = rec.get("nodeid", "")
            run.collect_errors[nodeid] = TestResult(
                nodeid=nodeid,
                outcome="error",
                cause=rec.get("cause", "") or "collection error",
                longrepr=rec.get("longrepr", "") or "",
            )
        elif event == "test":
            nodeid = rec.get("nodeid", "")
            run.tests[nodeid] = _fold(run.tests.get(nodeid), nodeid, rec)
        elif event == "finish":
            run.finished = True
            run.exitstatus = rec.get("exitstatus")
            if run.httpx_is_shim is None and rec.get("httpx_is_shim") is not None:
                run.httpx_is_shim = rec.get("httpx_is_shim")
                run.httpx_file = rec.get("httpx_file")
    if collected_counts:
        run.collected = max(collected_counts)
    return run


def read_jsonl(path: Path, mode: str = "") -> RunResult:
    if not path.is_file():
        return RunResult(mode=mode, fatal=f"no result file {path}")
    with path.open(encoding="utf-8", errors="replace") as fh:
        return parse_jsonl(fh, mode)


def parse_junit(text: str, mode: str = "") -> RunResult:
    """Fallback reader for a pytest --junitxml file (test ids are rebuilt from classname)."""
    run = RunResult(mode=mode, finished=True)
    root = ET.fromstring(text)
    for case in root.iter("testcase"):
        classname = case.get("classname", "")
        name = case.get("name", "")
        file_attr = case.get("file")
        parts = classname.split(".")
        if file_attr:
            mod_parts = file_attr[:-3].replace("\\", "/").split("/")
            rest = parts[len(mod_parts) :]
            nodeid = "::".join([file_attr, *rest, name])
        else:
            nodeid = "::".join([classname.replace(".", "/") + ".py", name]) if classname else name
        props = {
            p.get("name"): p.get("value")
            for p in case.iter("property")
            if p.get("name") is not None
        }
        outcome = "passed"
        detail = ""
        message = ""
        for child in case:
            tag = child.tag
            if tag in ("failure", "error"):
                message = child.get("message", "") or ""
                detail = child.text or ""
                if tag == "error" and outcome != "failed":
                    outcome = "error"
                elif tag == "failure":
                    outcome = "failed"
            elif tag == "skipped" and outcome == "passed":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        if not classname and outcome == "error":
            # junit puts collection errors in a testcase without classname.
            run.collect_errors[nodeid] = TestResult(
                nodeid, "error", cause=message, longrepr=detail
            )
            continue
        cause = props.get("ecosystem_cause") or (message.splitlines()[0][:160] if message else "")
        run.tests[nodeid] = TestResult(
            nodeid=nodeid,
            outcome=outcome,
            cause=cause or "",
            respx=props.get("ecosystem_respx") == "1",
            longrepr=detail,
        )
    return run


# --------------------------------------------------------------------------------------
# Comparison


@dataclass
class Regression:
    nodeid: str
    baseline: str
    experiment: str  # outcome, or "missing"
    cause: str
    respx: bool


@dataclass
class Comparison:
    regressions: list[Regression] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)  # bad in baseline, good in experiment
    newly_skipped: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # experiment stopped before them

    @property
    def respx_regressions(self) -> list[Regression]:
        return [r for r in self.regressions if r.respx]

    @property
    def other_regressions(self) -> list[Regression]:
        return [r for r in self.regressions if not r.respx]


def _collect_error_for(nodeid: str, run: RunResult) -> TestResult | None:
    path = nodeid.split("::", 1)[0]
    best = None
    for err_id, err in run.collect_errors.items():
        if not err_id:
            best = best or err
            continue
        if nodeid == err_id or nodeid.startswith(err_id + "::") or path == err_id:
            return err
        if err_id.endswith("/") and nodeid.startswith(err_id):
            best = err
        elif (
            "/" in err_id
            and "." not in err_id.rsplit("/", 1)[-1]
            and path.startswith(err_id + "/")
        ):
            best = err  # a package (conftest) that failed to import
    return best


def compare(baseline: RunResult, experiment: RunResult) -> Comparison:
    comp = Comparison()
    experiment_complete = experiment.finished and not experiment.timed_out
    for nodeid, base in sorted(baseline.tests.items()):
        exp = experiment.tests.get(nodeid)
        if exp is None:
            if base.outcome not in GOOD:
                continue
            err = _collect_error_for(nodeid, experiment)
            if err is not None:
                comp.regressions.append(
                    Regression(nodeid, base.outcome, "missing", err.cause, err.respx)
                )
            elif not experiment_complete:
                comp.not_run.append(nodeid)
            else:
                cause = experiment.fatal or "not collected in the experiment run"
                comp.regressions.append(Regression(nodeid, base.outcome, "missing", cause, False))
            continue
        if base.outcome in GOOD and exp.outcome in BAD:
            comp.regressions.append(
                Regression(nodeid, base.outcome, exp.outcome, exp.cause or "unknown", exp.respx)
            )
        elif base.outcome in BAD and exp.outcome in GOOD:
            comp.fixed.append(nodeid)
        elif base.outcome in GOOD and exp.outcome == "skipped":
            comp.newly_skipped.append(nodeid)
    return comp


def rerun_selection(regressions: Iterable[dict | str]) -> list[str]:
    """pytest arguments that re-run the given regressions (from last-regressions.json).

    A test that was missing from the experiment (its module failed to import) cannot be
    named by node id -- pytest refuses ids it cannot collect -- so its file is selected
    instead; ids inside a selected file are then left out so nothing runs twice.
    """
    files: list[str] = []
    ids: list[str] = []
    for reg in regressions:
        nodeid = reg if isinstance(reg, str) else reg.get("nodeid", "")
        missing = not isinstance(reg, str) and reg.get("experiment") == "missing"
        if not nodeid:
            continue
        if missing:
            path = nodeid.split("::", 1)[0]
            if path not in files:
                files.append(path)
        elif nodeid not in ids:
            ids.append(nodeid)
    chosen = set(files)
    return files + [i for i in ids if i.split("::", 1)[0] not in chosen]


def group_regressions(regressions: Iterable[Regression]) -> list[tuple[str, list[Regression]]]:
    """Regressions grouped by root cause, biggest group first (ties by cause)."""
    groups: dict[str, list[Regression]] = {}
    for reg in regressions:
        key = ("[respx] " if reg.respx else "") + (reg.cause or "unknown")
        groups.setdefault(key, []).append(reg)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


# --------------------------------------------------------------------------------------
# Rendering


@dataclass
class TargetReport:
    name: str
    pin: str
    status: str = "ok"  # "ok", or why the target could not be run / compared
    baseline: RunResult | None = None
    experiment: RunResult | None = None
    comparison: Comparison | None = None
    seconds: float = 0.0

    def to_json(self) -> dict:
        def run_json(run: RunResult | None) -> dict | None:
            if run is None:
                return None
            return {
                "counts": run.counts(),
                "finished": run.finished,
                "timed_out": run.timed_out,
                "exitstatus": run.exitstatus,
                "httpx_file": run.httpx_file,
                "httpx_is_shim": run.httpx_is_shim,
                "displaced": run.displaced,
                "fatal": run.fatal,
                "failing": sorted(n for n, t in run.tests.items() if t.outcome in BAD),
                "collect_errors": {k: v.cause for k, v in sorted(run.collect_errors.items())},
            }

        comp = self.comparison
        return {
            "target": self.name,
            "pin": self.pin,
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "baseline": run_json(self.baseline),
            "experiment": run_json(self.experiment),
            "regressions": None
            if comp is None
            else [
                {
                    "nodeid": r.nodeid,
                    "baseline": r.baseline,
                    "experiment": r.experiment,
                    "cause": r.cause,
                    "respx": r.respx,
                }
                for r in comp.regressions
            ],
            "regression_groups": None
            if comp is None
            else [
                {"cause": cause, "count": len(regs), "tests": [r.nodeid for r in regs]}
                for cause, regs in group_regressions(comp.regressions)
            ],
            "fixed": None if comp is None else comp.fixed,
            "newly_skipped": None if comp is None else comp.newly_skipped,
            "not_run": None if comp is None else comp.not_run,
        }


def _counts_cell(run: RunResult | None) -> str:
    if run is None:
        return "-"
    c = run.counts()
    cell = (
        f"{c['collected']}/{c['passed'] + c['xpassed']}/{c['failed']}/{c['error']}/"
        f"{c['skipped'] + c['xfailed']}"
    )
    if run.fatal:
        return "- (pytest stopped)"
    if run.timed_out:
        cell += " (timeout)"
    elif not run.finished:
        cell += " (crashed)" if run.tests else " (no run)"
    return cell


def render_table(reports: list[TargetReport]) -> str:
    header = (
        "target",
        "pin",
        "baseline c/p/f/e/s",
        "httprs c/p/f/e/s",
        "regress",
        "respx",
        "fixed",
        "status",
    )
    rows = [header]
    for rep in reports:
        comp = rep.comparison
        rows.append((
            rep.name,
            rep.pin,
            _counts_cell(rep.baseline),
            _counts_cell(rep.experiment),
            "-" if comp is None else str(len(comp.other_regressions)),
            "-" if comp is None else str(len(comp.respx_regressions)),
            "-" if comp is None else str(len(comp.fixed)),
            rep.status,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for idx, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))] + [row[-1]]
        lines.append(" | ".join(cells).rstrip())
        if idx == 0:
            lines.append("-+-".join("-" * w for w in widths) + "-+-" + "-" * 6)
    lines.append(
        "c/p/f/e/s = collected/passed/failed/errors/skipped; regress = passed with httpx,"
        " fail with httprs (respx: tests using respx, counted apart)"
    )
    return "\n".join(lines)


def render_groups(
    reports: list[TargetReport], top: int = 10, examples: int = 3, verbose: bool = False
) -> str:
    out = []
    for rep in reports:
        comp = rep.comparison
        if comp is None:
            continue
        groups = group_regressions(comp.regressions)
        out.append(
            f"\n== {rep.name}: {len(comp.regressions)} regressions in {len(groups)} groups"
            f" ({len(comp.respx_regressions)} with respx), {len(comp.fixed)} fixed,"
            f" {len(comp.newly_skipped)} newly skipped"
            + (f", {len(comp.not_run)} not run (experiment stopped)" if comp.not_run else "")
        )
        shown = groups if verbose else groups[:top]
        for cause, regs in shown:
            out.append(f"  {len(regs):5d}  {cause}")
            listed = regs if verbose else regs[:examples]
            for reg in listed:
                out.append(f"           {reg.nodeid}  ({reg.baseline} -> {reg.experiment})")
            if len(listed) < len(regs):
                out.append(f"           ... {len(regs) - len(listed)} more")
        if len(shown) < len(groups):
            rest = sum(len(r) for _c, r in groups[len(shown) :])
            out.append(
                f"  ... {len(groups) - len(shown)} more groups ({rest} tests); -v lists all"
            )
        if verbose:
            for label, run in (("baseline", rep.baseline), ("httprs", rep.experiment)):
                if run is None:
                    continue
                failing = sorted(n for n, t in run.tests.items() if t.outcome in BAD)
                failing += sorted(run.collect_errors)
                out.append(f"  failing under {label}: {len(failing)}")
                out.extend(f"    {n}" for n in failing)
    return "\n".join(out)

#!/usr/bin/env python3
"""Ecosystem compatibility harness: run third-party test suites with httpx (baseline) and
with `import httpx` routed to httprs (experiment), and report the regressions.

    python scripts/check_ecosystem.py [--repos NAME ...] [--checkouts-dir PATH] ...

Each target is pinned (scripts/ecosystem/targets.py). Its source is the sdist from PyPI
(default), a git clone at the pinned tag (--source git, for machines that reach the
forge), or a tree already at CHECKOUTS_DIR/NAME that the harness must use as it is
(--source local: a checkout made by hand, e.g. httpx2's suite rebuilt where GitHub is out
of reach; it is never downloaded, replaced or deleted: --clean then recreates only its
venv). Each target gets its own venv (.venv-ecosystem inside its checkout) with its test
dependencies, httpx 0.28.1 and the httprs wheel (built once per run unless --httprs-wheel).
The experiment uses httprs's public switch, as a user would: it sets HTTPRS_INSTALL, which
the httprs wheel's start-up hook (httprs-install.pth) reads to call `httprs.install()` in
every Python process of the suite, and loads scripts/ecosystem_conftest.py with -p (which
checks that `httpx` is httprs's and installs the switch itself if needed).

The exit status is 0 whatever the suites do -- this is a report, not a gate -- and
non-zero only when the harness itself broke.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback
import urllib.parse
import urllib.request
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS.parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from ecosystem import results as R  # noqa: E402
from ecosystem.targets import (  # noqa: E402
    COMMON_DEPS,
    SCRUB_ENV,
    TARGETS,
    Target,
    requirement_name,
)

PLUGIN_SOURCE = SCRIPTS / "ecosystem_conftest.py"
SOURCE_MARKER = ".ecosystem-source.json"
VENV_NAME = ".venv-ecosystem"
RESULTS_DIR = ".ecosystem-results"

_print_lock = threading.Lock()
# Suite processes still running (each leads its own process group), for Ctrl-C clean-up.
_running: set[subprocess.Popen] = set()


def log(msg: str) -> None:
    with _print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class SetupError(Exception):
    """A target could not be set up; the message goes into its report row."""


def run_logged(cmd: list[str], logfile: Path, what: str, **kw) -> None:
    """Run a setup command, appending its output to `logfile`; raise SetupError on failure."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("a", encoding="utf-8") as fh:
        fh.write(f"\n$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False, **kw)
    if proc.returncode != 0:
        tail = logfile.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise SetupError(f"{what} failed (rc={proc.returncode}): {' / '.join(tail)[-300:]}")


# --------------------------------------------------------------------------------------
# Sources


def sdist_url(dist: str, version: str, index: str) -> tuple[str, str]:
    """(url, sha256) of the sdist of dist==version, from the PyPI JSON API."""
    api = f"{index.rstrip('/')}/pypi/{dist}/json"
    with urllib.request.urlopen(api, timeout=120) as resp:
        data = json.load(resp)
    files = data.get("releases", {}).get(version)
    if files is None:
        raise SetupError(f"{dist} {version} is not on {index}")
    for f in files:
        if f.get("packagetype") == "sdist":
            return urllib.parse.urljoin(api, f["url"]), f.get("digests", {}).get("sha256", "")
    raise SetupError(f"{dist} {version} has no sdist on {index}")


def download_sdist(target: Target, cache: Path, index: str, logfile: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    try:
        url, sha = sdist_url(target.dist, target.version, index)
        dest = cache / Path(urllib.parse.urlparse(url).path).name
        if dest.is_file() and (not sha or hashlib.sha256(dest.read_bytes()).hexdigest() == sha):
            return dest
        with urllib.request.urlopen(url, timeout=600) as resp:
            payload = resp.read()
        if sha and hashlib.sha256(payload).hexdigest() != sha:
            raise SetupError(f"sha256 mismatch for {url}")
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(payload)
        tmp.replace(dest)
        return dest
    except SetupError:
        raise
    except Exception as exc:  # noqa: BLE001  (fall back to pip's own client)
        log(f"{target.name}: JSON API download failed ({exc}); trying pip download")
    before = set(cache.iterdir())
    run_logged(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(cache),
            f"{target.dist}=={target.version}",
        ],
        logfile,
        "pip download",
    )
    new = [p for p in set(cache.iterdir()) - before if p.name.endswith((".tar.gz", ".zip"))]
    if not new:
        norm = target.dist.replace("-", "_").lower()
        new = [p for p in cache.iterdir() if p.name.lower().startswith(f"{norm}-{target.version}")]
    if not new:
        raise SetupError("pip download produced no sdist")
    return new[0]


def extract_sdist(archive: Path, checkout: Path) -> None:
    """Unpack `archive` into `checkout`, dropping the single top-level directory."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=checkout.parent))
    try:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - old Pythons
                tar.extractall(tmp)  # noqa: S202
        entries = list(tmp.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        checkout.mkdir(parents=True, exist_ok=True)
        for item in top.iterdir():
            shutil.move(str(item), str(checkout / item.name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def source_spec(target: Target, source: str) -> dict:
    if source == "local":
        return {"source": "local"}
    if source == "git":
        return {"source": "git", "url": target.git_url, "ref": target.git_ref}
    return {"source": "sdist", "dist": target.dist, "version": target.version}


def ensure_checkout(target: Target, checkout: Path, args, logfile: Path) -> str:
    """Make `checkout` hold the pinned sources; return a short description."""
    if args.source == "local":
        return use_local_checkout(target, checkout)
    spec = source_spec(target, args.source)
    marker = checkout / SOURCE_MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text(encoding="utf-8")) == spec:
                return "reused checkout"
        except ValueError:
            pass
        log(f"{target.name}: checkout {checkout} has other sources; replacing it")
        shutil.rmtree(checkout)
    elif checkout.exists():
        shutil.rmtree(checkout)
    checkout.parent.mkdir(parents=True, exist_ok=True)
    if args.source == "git":
        # Not exercisable on machines that only reach PyPI (like the dev machines here).
        run_logged(
            [
                "git",
                "clone",
                "--depth",
                "1",
                "--branch",
                target.git_ref,
                target.git_url,
                str(checkout),
            ],
            logfile,
            "git clone",
        )
    else:
        archive = download_sdist(target, args.checkouts_dir / "_downloads", args.index, logfile)
        extract_sdist(archive, checkout)
    if target.prepare is not None:
        try:
            target.prepare(checkout)
        except (OSError, ValueError) as exc:
            raise SetupError(f"preparing the checkout failed: {exc}") from exc
    marker.write_text(json.dumps(spec), encoding="utf-8")
    return "fresh checkout"


def use_local_checkout(target: Target, checkout: Path) -> str:
    """--source local: the tree at `checkout` is the user's; check it, never replace it."""
    if not checkout.is_dir():
        raise SetupError(f"--source local: {checkout} does not exist (put the checkout there)")
    if target.prepare is not None:
        try:
            target.prepare(checkout)
        except (OSError, ValueError) as exc:
            raise SetupError(f"preparing the checkout failed: {exc}") from exc
    return "local checkout"


# --------------------------------------------------------------------------------------
# Virtual environments


def venv_python(checkout: Path) -> Path:
    return checkout / VENV_NAME / "bin" / "python"


def ensure_venv(target: Target, checkout: Path, args, logfile: Path) -> None:
    py = venv_python(checkout)
    venv = checkout / VENV_NAME
    marker = venv / ".ecosystem-python"
    wanted = interpreter_id(args.python)
    if venv.exists() and (
        not marker.is_file() or marker.read_text(encoding="utf-8") != wanted or not py.exists()
    ):
        log(f"{target.name}: {VENV_NAME} was made by another interpreter; recreating it")
        shutil.rmtree(venv)
    if not py.exists():
        run_logged([args.python, "-m", "venv", str(venv)], logfile, "venv")
        marker.write_text(wanted, encoding="utf-8")
    try:
        reqs = venv_requirements(target, checkout)
    except Exception as exc:  # noqa: BLE001
        raise SetupError(f"reading test dependencies failed: {exc}") from exc
    stamp_data = json.dumps({"reqs": reqs, "self": target.install_self, "py": wanted})
    stamp = checkout / VENV_NAME / ".ecosystem-deps.stamp"
    want = hashlib.sha256(stamp_data.encode()).hexdigest()
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == want:
        return
    req_file = checkout / VENV_NAME / "ecosystem-requirements.txt"
    log(f"{target.name}: installing {len(reqs)} test dependencies into {VENV_NAME}")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for _ in range(len(reqs) + 1):
        req_file.write_text("\n".join(reqs) + "\n", encoding="utf-8")
        try:
            run_logged([*pip, "-r", str(req_file)], logfile, "pip install (test deps)")
            break
        except SetupError as exc:
            # A lock pins a release the index does not have (a mirror behind PyPI):
            # take that name's newest release instead; both runs share the venv.
            relaxed = relax_missing_pin(reqs, str(exc))
            if relaxed is None:
                raise
            log(f"{target.name}: {relaxed[1]} is not on the index; using the newest release")
            reqs = relaxed[0]
    if target.install_self is not None:
        run_logged(
            [*pip, str(checkout) + target.install_self.lstrip(".")],
            logfile,
            f"pip install {target.dist}",
        )
    stamp.write_text(want, encoding="utf-8")


_NO_MATCH = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==([^\s;]+)")


def relax_missing_pin(reqs: list[str], pip_error: str) -> tuple[list[str], str] | None:
    """`reqs` with the `name==version` pin pip reported missing replaced by `name` (its
    marker kept), and that pin; None when pip's error is not a missing pinned release
    of one of `reqs`."""
    m = _NO_MATCH.search(pip_error)
    if m is None:
        return None
    name = requirement_name(m.group(1))
    out, found = [], False
    for line in reqs:
        req, sep, marker = line.partition(";")
        if requirement_name(req) == name and "==" in req:
            line = name + (f" ;{marker}" if sep else "")
            found = True
        out.append(line)
    return (out, f"{m.group(1)}=={m.group(2)}") if found else None


def venv_requirements(target: Target, checkout: Path) -> list[str]:
    """What a target's venv needs besides the target itself and the httprs wheel."""
    # certifi/idna/sniffio are httprs's own run-time dependencies: the wheel then goes
    # in with --no-deps and can be replaced on every run without touching anything else.
    return [*COMMON_DEPS, "certifi", "idna", "sniffio", *target.deps(checkout)]


def install_wheel(target: Target, checkout: Path, wheel: Path, logfile: Path) -> None:
    stamp = checkout / VENV_NAME / ".ecosystem-httprs.stamp"
    want = hashlib.sha256(wheel.read_bytes()).hexdigest() + wheel.name
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == want:
        try:
            check_installed_httprs(checkout)
            return
        except SetupError:
            pass  # changed since the stamp was written: install again
    stamp.unlink(missing_ok=True)
    run_logged(
        [
            str(venv_python(checkout)),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
            str(wheel),
        ],
        logfile,
        "pip install httprs wheel",
    )
    check_installed_httprs(checkout)
    stamp.write_text(want, encoding="utf-8")


def check_installed_httprs(checkout: Path) -> None:
    """The venv must import the wheel just installed: a leftover editable install (its
    `.pth` import hook survives a wheel install) would run another tree's httprs."""
    site = subprocess.run(
        [
            str(venv_python(checkout)),
            "-I",
            "-c",
            "import httprs, sysconfig; print(httprs.__file__); print(sysconfig.get_paths()['platlib'])",
        ],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    lines = site.stdout.split()
    if site.returncode != 0 or len(lines) != 2 or not lines[0].startswith(lines[1]):
        raise SetupError(
            "the target venv does not import the installed httprs wheel "
            f"({site.stdout.strip() or site.stderr.strip()[-300:]}); "
            "remove stale editable installs (httprs-editable.pth) or use --clean"
        )


def build_wheel(out_dir: Path, logfile: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("httprs-*.whl"):
        old.unlink()
    log(f"building the httprs wheel from {REPO_ROOT} (log: {logfile})")
    t0 = time.monotonic()
    # With the build tools of this environment (dev.sh installs them), not an isolated
    # one: no download of meson-python/Cython per run (PyPI resets made isolated builds
    # fail), and a build directory of its own that later runs rebuild incrementally.
    run_logged(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            f"-Cbuild-dir={REPO_ROOT / 'build' / 'ecosystem-wheel'}",
            "-w",
            str(out_dir),
            str(REPO_ROOT),
        ],
        logfile,
        "httprs wheel build",
    )
    wheels = sorted(out_dir.glob("httprs-*.whl"))
    if not wheels:
        raise SetupError("pip wheel produced no httprs wheel")
    log(f"built {wheels[-1].name} in {time.monotonic() - t0:.0f}s")
    return wheels[-1]


# --------------------------------------------------------------------------------------
# Running a suite


NETNS_EXEC = SCRIPTS / "ecosystem" / "netns_exec.py"


def probe_netns(python: str) -> tuple[bool, str]:
    """Can suites run in a network namespace of their own (unshare --net, loopback up)?"""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False, "no unshare(1)"
    try:
        out = subprocess.run(
            [unshare, "--net", python, str(NETNS_EXEC), "--probe"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if out.returncode == 0 and out.stdout.strip() == "ok":
        return True, "own network namespace (loopback only)"
    return False, (out.stderr.strip().splitlines() or [f"rc={out.returncode}"])[-1][-200:]


def suite_env(target: Target, mode: str, work: Path, report: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    for key in target.unset_env:
        env.pop(key, None)
    env.update(target.env)
    plugin_dir = work / "plugin"
    if mode == "experiment":
        env["HTTPRS_INSTALL"] = target.switch
    else:
        env.pop("HTTPRS_INSTALL", None)
    env["PYTHONPATH"] = str(plugin_dir)
    env["HTTPRS_ECOSYSTEM_MODE"] = mode
    env["HTTPRS_ECOSYSTEM_REPORT"] = str(report)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def prepare_work_dir(work: Path) -> None:
    """Put the plugin where the suite processes can import it."""
    plugin_dir = work / "plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLUGIN_SOURCE, plugin_dir / "ecosystem_conftest.py")


def run_suite(
    target: Target,
    checkout: Path,
    mode: str,
    args,
    work: Path,
    node_ids: list[str] | None = None,
    tag: str = "",
) -> R.RunResult:
    results = checkout / RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    stem = mode + (f"-{tag}" if tag else "")
    report = results / f"{stem}.jsonl"
    junit = results / f"{stem}.xml"
    logfile = results / f"{stem}.log"
    for f in (report, junit):
        if f.exists():
            f.unlink()
    cmd = [
        str(checkout / VENV_NAME / "bin" / "pytest"),
        *target.pytest_args,
        "-p",
        "ecosystem_conftest",
        "-p",
        "no:cacheprovider",
        # One module that fails to import (a missing httpx name) must not stop the run.
        "--continue-on-collection-errors",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit1",
        f"--timeout={args.test_timeout}",
        # pytest's own traceback styles re-parse sources with ast.parse; on CPython 3.11
        # that can raise SystemError ("AST constructor recursion depth mismatch") after
        # an exception has left the interpreter's recursion counter off, and an error
        # while rendering a collection error is an INTERNALERROR that ends the run.
        # "native" only formats. Same style in both runs; outcomes do not depend on it.
        f"--tb={args.tb}",
    ]
    if node_ids is not None:
        ids_file = results / f"{stem}.ids"
        ids_file.write_text("\n".join(node_ids) + "\n", encoding="utf-8")
        cmd.append(f"@{ids_file}")
    if args.netns:
        cmd = [
            shutil.which("unshare") or "unshare",
            "--net",
            str(checkout / VENV_NAME / "bin" / "python"),
            str(NETNS_EXEC),
            *cmd,
        ]
    env = suite_env(target, mode, work, report)
    label = f"{target.name}/{'httprs' if mode == 'experiment' else 'httpx'}"
    log(f"{label}: running pytest (log: {logfile})")
    t0 = time.monotonic()
    timed_out = False
    with logfile.open("w", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(
            cmd, cwd=checkout, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
        _running.add(proc)
        next_progress = t0 + args.progress_interval
        while True:
            try:
                proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if now - t0 > args.timeout:
                timed_out = True
                log(f"{label}: suite timeout ({args.timeout}s) reached; stopping it")
                _kill_group(proc)
                break
            if now >= next_progress:
                next_progress = now + args.progress_interval
                log(f"{label}: {progress_text(R.read_jsonl(report), now - t0)}")
    _running.discard(proc)
    rc = proc.returncode
    run = R.read_jsonl(report, mode)
    run.fatal = ""
    run.timed_out = timed_out
    if not run.tests and not run.collect_errors and junit.is_file():
        try:
            fallback = R.parse_junit(junit.read_text(encoding="utf-8", errors="replace"), mode)
            run.tests, run.collect_errors = fallback.tests, fallback.collect_errors
        except Exception:  # noqa: BLE001, S110  (a broken junit file just means no fallback)
            pass
    text = logfile.read_text(encoding="utf-8", errors="replace")
    internal = [
        ln[len("INTERNALERROR> ") :] for ln in text.splitlines() if ln.startswith("INTERNALERROR>")
    ]
    if internal:
        # pytest itself gave up (e.g. on a worker): tests it never ran get this as cause.
        run.fatal = "pytest INTERNALERROR: " + internal_error_cause(internal)
    elif not timed_out and rc is not None and rc >= 0 and not run.finished:
        if not run.tests:
            # pytest stopped before running anything (conftest import error, usage error).
            run.fatal = f"pytest exited {rc} before running tests: " + cause_from_log(text)
            run.finished = True
        elif run.exitstatus is None:
            run.exitstatus = rc
    if run.exitstatus is None:
        run.exitstatus = rc
    log(
        f"{label}: done in {time.monotonic() - t0:.0f}s, rc={rc}: "
        f"{progress_text(run, time.monotonic() - t0)}"
    )
    return run


def cause_from_log(text: str) -> str:
    sys.path.insert(0, str(SCRIPTS))
    from ecosystem_conftest import cause_from_text

    return cause_from_text(text[-20000:])


def internal_error_cause(lines: list[str]) -> str:
    """The root exception of pytest INTERNALERROR output (lines without the prefix).

    A worker's crash arrives as its formatted traceback on "E" lines (innermost exception
    last); the controller's own follow-up errors come after it and matter less.
    """
    sys.path.insert(0, str(SCRIPTS))
    from ecosystem_conftest import normalise_message

    def exc_of(text: str) -> str | None:
        name, sep, msg = text.partition(": ")
        bare = name.replace(".", "").replace("_", "")
        if not sep or not bare.isalnum() or not name[:1].isupper() or " " in name:
            return None
        if text.startswith("AssertionError: Traceback"):
            return None
        return f"{name}: {normalise_message(msg)}"

    worker = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    for group in (worker, [ln.strip() for ln in lines]):
        for text in reversed(group):
            cause = exc_of(text)
            if cause:
                return cause
    return normalise_message(lines[-1]) if lines else "unknown"


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def progress_text(run: R.RunResult, elapsed: float) -> str:
    c = run.counts()
    total = f"/{run.collected}" if run.collected else ""
    return (
        f"{len(run.tests)}{total} tests done, {c['passed'] + c['xpassed']} passed,"
        f" {c['failed']} failed, {c['error']} errors, {c['skipped'] + c['xfailed']} skipped"
        f" [{int(elapsed) // 60}m{int(elapsed) % 60:02d}s]"
    )


# --------------------------------------------------------------------------------------
# One target, end to end


def check_run(run: R.RunResult, mode: str) -> str:
    """'' if the run measured what it should, else why not."""
    if run.fatal and mode == "baseline":
        return f"baseline did not run: {run.fatal}"
    if run.httpx_is_shim is None:
        return ""  # httpx never imported in the controller process; nothing to check
    if mode == "experiment" and not run.httpx_is_shim:
        return f"invalid experiment: httpx was {run.httpx_file}, not httprs's switch"
    if mode == "baseline" and run.httpx_is_shim:
        return "invalid baseline: httpx was httprs's switch"
    return ""


def process_target(target: Target, args, work: Path, wheel_future) -> R.TargetReport:
    pin = {"sdist": f"{target.dist}=={target.version}", "local": "local checkout"}.get(
        args.source, target.git_ref
    )
    rep = R.TargetReport(name=target.name, pin=pin)
    t0 = time.monotonic()
    checkout = args.checkouts_dir / target.name
    setup_log = args.checkouts_dir / "_logs" / f"{target.name}-setup.log"
    notes = []
    try:
        if args.clean and args.source == "local" and (checkout / VENV_NAME).exists():
            log(f"{target.name}: --clean, removing {checkout / VENV_NAME} (local checkout kept)")
            shutil.rmtree(checkout / VENV_NAME)
        elif args.clean and checkout.exists():
            log(f"{target.name}: --clean, removing {checkout}")
            shutil.rmtree(checkout)
        how = ensure_checkout(target, checkout, args, setup_log)
        log(f"{target.name}: {how} at {checkout}")
        ensure_venv(target, checkout, args, setup_log)
    except SetupError as exc:
        rep.status = f"setup failed: {exc}"
        rep.seconds = time.monotonic() - t0
        log(f"{target.name}: {rep.status}")
        return rep

    results = checkout / RESULTS_DIR
    node_ids = None
    if args.only_regressions:
        last = results / "last-regressions.json"
        if not last.is_file():
            rep.status = "--only-regressions: no earlier comparison for this target"
            return rep
        last_regressions = json.loads(last.read_text(encoding="utf-8"))
        if not last_regressions:
            rep.status = "--only-regressions: the last comparison had no regressions"
            return rep
        regressed = {r if isinstance(r, str) else r["nodeid"] for r in last_regressions}
        node_ids = R.rerun_selection(last_regressions)
        log(
            f"{target.name}: re-running {len(regressed)} regressed tests"
            f" ({len(node_ids)} pytest arguments)"
        )

    baseline = None
    if args.no_baseline or args.only_regressions:
        prev = results / "baseline.jsonl"
        if prev.is_file():
            baseline = R.read_jsonl(prev, "baseline")
            if not baseline.finished:
                baseline = None
            else:
                notes.append("baseline from an earlier run")
        if baseline is None:
            notes.append("no baseline (--no-baseline and none stored)")
    else:
        baseline = run_suite(target, checkout, "baseline", args, work)
        problem = check_run(baseline, "baseline")
        if problem:
            notes.append(problem)
    if node_ids is not None and baseline is not None:
        keep = regressed
        baseline.tests = {k: v for k, v in baseline.tests.items() if k in keep}
        baseline.collect_errors = {}
        baseline.collected = len(baseline.tests)
    rep.baseline = baseline

    try:
        wheel = wheel_future.result()
    except SetupError as exc:
        rep.status = "; ".join([*notes, f"experiment not run: {exc}"])
        rep.seconds = time.monotonic() - t0
        return rep
    try:
        install_wheel(target, checkout, wheel, setup_log)
    except SetupError as exc:
        rep.status = "; ".join([*notes, f"experiment not run: {exc}"])
        rep.seconds = time.monotonic() - t0
        return rep
    experiment = run_suite(
        target, checkout, "experiment", args, work, node_ids, "rerun" if node_ids else ""
    )
    rep.experiment = experiment
    problem = check_run(experiment, "experiment")
    if problem:
        notes.append(problem)
    if experiment.fatal:
        notes.append(f"httprs run: {experiment.fatal}")
    elif experiment.timed_out:
        notes.append(f"httprs run timed out after {args.timeout}s")
    elif not experiment.finished:
        notes.append(f"httprs run crashed (rc={experiment.exitstatus})")
    if baseline is not None and baseline.timed_out:
        notes.append(f"baseline timed out after {args.timeout}s")

    if baseline is not None and not problem and not (baseline.fatal and not baseline.tests):
        rep.comparison = R.compare(baseline, experiment)
        if not args.only_regressions:
            (results / "last-regressions.json").write_text(
                json.dumps(
                    [
                        {"nodeid": r.nodeid, "experiment": r.experiment}
                        for r in rep.comparison.regressions
                    ],
                    indent=0,
                ),
                encoding="utf-8",
            )
    rep.status = "; ".join(notes) if notes else "ok"
    rep.seconds = time.monotonic() - t0
    return rep


# --------------------------------------------------------------------------------------
# CLI


def default_python() -> str:
    """The python3.11 on PATH (in CI, the image's own build), else Debian's /usr/bin one.

    Use --python to pick another; a venv made by a different interpreter is recreated.
    """
    for cand in (shutil.which("python3.11"), "/usr/bin/python3.11"):
        if cand and Path(cand).exists():
            return cand
    return sys.executable


def interpreter_id(python: str) -> str:
    """Resolved executable and full version of `python` (venvs are rebuilt when it changes)."""
    out = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0], sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SetupError(f"interpreter {python} does not run: {out.stderr.strip()[-200:]}")
    return out.stdout.strip()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Run third-party suites with httpx and with httprs; report regressions."
    )
    p.add_argument("--checkouts-dir", type=Path, default=None, help="default: a temp dir")
    p.add_argument("--repos", nargs="+", choices=sorted(TARGETS), default=None, metavar="NAME",
                   help=f"targets (default all: {', '.join(TARGETS)})")  # fmt: skip
    p.add_argument("--httprs-wheel", type=Path, default=None, help="use this pre-built wheel")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the httpx run (reuse a stored baseline if there is one)")  # fmt: skip
    p.add_argument("--clean", action="store_true", help="fresh checkouts and venvs")
    p.add_argument("--timeout", type=float, default=600, help="seconds per suite run")
    p.add_argument("--test-timeout", type=float, default=120,
                   help="seconds per test (pytest-timeout)")  # fmt: skip
    p.add_argument("--concurrency", type=int, default=2, help="targets processed at once")
    p.add_argument("-v", "--verbose", action="store_true", help="list every failing test id")
    p.add_argument("--json", type=Path, default=None, help="write a JSON report here")
    p.add_argument("--only-regressions", action="store_true",
                   help="re-run only the last regressed test ids of one target")  # fmt: skip
    p.add_argument("--source", choices=("sdist", "git", "local"), default="sdist",
                   help="sdist from PyPI (default), git clone at the pinned tag, or local: "
                   "use the tree already at CHECKOUTS_DIR/NAME as it is")  # fmt: skip
    p.add_argument("--index", default="https://pypi.org", help="PyPI base URL")
    p.add_argument("--python", default=default_python(), help="interpreter for target venvs")
    p.add_argument("--tb", default="native", choices=("native", "short", "long", "line", "auto"),
                   help="pytest traceback style for both runs (default native)")  # fmt: skip
    p.add_argument("--isolation", choices=("auto", "netns", "none"), default="auto",
                   help="run each suite in its own network namespace (loopback only): "
                   "auto = when unshare works (root), netns = require it, none = never")  # fmt: skip
    p.add_argument("--progress-interval", type=float, default=20.0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.repos = args.repos or list(TARGETS)
    if args.only_regressions and len(args.repos) != 1:
        p.error("--only-regressions needs exactly one target in --repos")
    if args.concurrency < 1:
        p.error("--concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp_checkouts = None
    if args.checkouts_dir is None:
        tmp_checkouts = tempfile.mkdtemp(prefix="httprs-ecosystem-")
        args.checkouts_dir = Path(tmp_checkouts)
    args.checkouts_dir = args.checkouts_dir.resolve()
    args.checkouts_dir.mkdir(parents=True, exist_ok=True)
    work = args.checkouts_dir / "_harness"
    prepare_work_dir(work)
    args.netns = False
    if args.isolation != "none":
        ok, why = probe_netns(sys.executable)
        if ok:
            args.netns = True
        elif args.isolation == "netns":
            print(f"check_ecosystem: --isolation netns unavailable: {why}", file=sys.stderr)
            return 2
        else:
            log(f"no network namespace for the suites ({why}); they share the host's ports")
    log(
        "suites run "
        + ("each in its own network namespace" if args.netns else "in the host network")
    )
    log(f"checkouts in {args.checkouts_dir}; targets: {', '.join(args.repos)}")

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency + 1) as pool:
        if args.httprs_wheel is not None:
            wheel_future: concurrent.futures.Future = concurrent.futures.Future()
            wheel = args.httprs_wheel.resolve()
            if wheel.is_file():
                wheel_future.set_result(wheel)
            else:
                wheel_future.set_exception(SetupError(f"--httprs-wheel {wheel} does not exist"))
        else:
            wheel_future = pool.submit(
                build_wheel, work / "wheel", args.checkouts_dir / "_logs" / "httprs-wheel.log"
            )
        target_pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.concurrency)
        with target_pool:
            futures = [
                target_pool.submit(process_target, TARGETS[name], args, work, wheel_future)
                for name in args.repos
            ]
            try:
                reports = [f.result() for f in futures]
            except KeyboardInterrupt:
                # Stop the suites so the worker threads (and then we) can finish.
                for f in futures:
                    f.cancel()
                for running in list(_running):
                    _kill_group(running)
                raise

    print()
    print(R.render_table(reports))
    print(R.render_groups(reports, verbose=args.verbose))
    print(f"\n(total {time.monotonic() - started:.0f}s; checkouts in {args.checkouts_dir})")
    if args.json is not None:
        payload = {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "checkouts_dir": str(args.checkouts_dir),
            "httprs_wheel": str(args.httprs_wheel) if args.httprs_wheel else None,
            "network_namespace": args.netns,
            "targets": [r.to_json() for r in reports],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        log(f"JSON report written to {args.json}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("check_ecosystem: the harness itself failed (see above)", file=sys.stderr)
        sys.exit(2)

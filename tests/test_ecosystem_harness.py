"""Fast unit tests of the ecosystem harness (scripts/check_ecosystem.py and friends):
the switch in the experiment, the pytest plugin's records and causes, result parsing,
regression grouping and the report. No third-party suite is run here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import check_ecosystem  # noqa: E402
import ecosystem_conftest as plugin  # noqa: E402
from ecosystem import results as R  # noqa: E402
from ecosystem import targets as T  # noqa: E402

# --------------------------------------------------------------------------------------
# The pytest plugin, end to end in a small session


def _write_session(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pytest.ini").write_text("[pytest]\nmarkers =\n    respx: uses respx\n")
    (proj / "test_sample.py").write_text(
        textwrap.dedent(
            """
            import pytest
            import httpx
            import realfirst
            import respx

            def test_shim_won():
                import httprs
                assert getattr(httpx, "__httprs__", False) is True
                assert httpx.Client is httprs.Client
                assert realfirst.httpx is httpx  # re-pointed by the plugin

            def test_pass():
                pass

            def test_missing_name():
                httpx.NoSuchClient

            def test_assert():
                assert 1 + 1 == 3

            def test_respx_in_body():
                respx.MockRouter()
                raise RuntimeError("no route")

            @respx.mock
            def test_respx_decorated():
                raise RuntimeError("no route")

            @pytest.mark.respx
            def test_respx_marked():
                raise RuntimeError("no route for 127.0.0.1:4010")

            @pytest.fixture
            def broken():
                raise ValueError("setup broke")

            def test_setup_error(broken):
                pass

            @pytest.mark.skip(reason="nope")
            def test_skipped():
                pass

            @pytest.mark.xfail(strict=False)
            def test_xfail():
                assert False
            """
        )
    )
    (proj / "test_broken_module.py").write_text("import httpx\nX = httpx.NoSuchLimits\n")
    return proj


def test_plugin_makes_the_switch_win_and_records_results(tmp_path):
    backend_dir = tmp_path / "backend"
    backend_dir.mkdir()
    plugin_dir = tmp_path / "plugin"
    plugin_dir.mkdir()
    (plugin_dir / "ecosystem_conftest.py").write_text(
        (SCRIPTS / "ecosystem_conftest.py").read_text()
    )
    # A plugin loaded before ours that imports the *real* httpx, as a .pth hook might.
    # It sets HTTPRS_INSTALL only then: in the environment from the start, a regular
    # (non-editable) install's httprs-install.pth would switch before any plugin runs
    # (the `test-asan` and `test-tsan` recipes test such an install).
    (plugin_dir / "realfirst.py").write_text(
        textwrap.dedent(
            """
            import os
            import httpx
            assert not hasattr(httpx, "__httprs__")
            os.environ["HTTPRS_INSTALL"] = "httpx,httpx2"
            """
        )
    )
    # A stand-in for respx: module-level import, a class, a decorator.
    (backend_dir / "respx").mkdir()
    (backend_dir / "respx" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import functools
            class MockRouter: pass
            def mock(func):
                @functools.wraps(func)
                def wrapper(*a, **kw):
                    return func(*a, **kw)
                return wrapper
            """
        )
    )
    proj = _write_session(tmp_path)
    report = tmp_path / "run.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    env.update(
        PYTHONPATH=os.pathsep.join(map(str, (plugin_dir, backend_dir))),
        HTTPRS_ECOSYSTEM_MODE="experiment",
        HTTPRS_ECOSYSTEM_REPORT=str(report),
        # Only the plugins named with -p: installed ones (the real respx's, say) would
        # load against the stand-in packages on PYTHONPATH.
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    pytest.importorskip("httpx")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "realfirst",
            "-p",
            "ecosystem_conftest",
            "-p",
            "no:cacheprovider",
            "--continue-on-collection-errors",
            "-q",
        ],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert report.is_file(), proc.stdout + proc.stderr
    run = R.read_jsonl(report)
    assert run.mode == "experiment" and run.finished, proc.stdout
    assert run.httpx_is_shim is True
    assert any("real httpx was imported first" in d for d in run.displaced)
    tests = {k.split("::")[-1]: v for k, v in run.tests.items()}
    assert tests["test_shim_won"].outcome == "passed", tests["test_shim_won"].longrepr
    assert tests["test_pass"].outcome == "passed"
    assert tests["test_missing_name"].outcome == "failed"
    assert tests["test_missing_name"].cause == (
        "AttributeError: module 'httpx' has no attribute 'NoSuchClient'"
        " [in httprs/_alias.py:__getattr__]"
    )
    assert tests["test_assert"].cause == "AssertionError: assert (N + N) == N"
    assert tests["test_respx_marked"].respx is True
    assert tests["test_respx_in_body"].respx is True
    assert tests["test_respx_decorated"].respx is True
    # Same module imports respx, but this test does not use it: not a respx failure.
    assert tests["test_missing_name"].respx is False
    assert tests["test_setup_error"].outcome == "error"
    assert tests["test_setup_error"].cause == "ValueError: setup broke"
    assert tests["test_skipped"].outcome == "skipped"
    assert tests["test_xfail"].outcome == "xfailed"
    assert list(run.collect_errors) == ["test_broken_module.py"]
    assert run.collect_errors["test_broken_module.py"].cause == (
        "AttributeError: module 'httpx' has no attribute 'NoSuchLimits'"
        " [in httprs/_alias.py:__getattr__]"
    )
    counts = run.counts()
    assert counts["passed"] == 2 and counts["failed"] == 5 and counts["error"] == 2
    assert counts["collected"] == 10


# --------------------------------------------------------------------------------------
# Causes


def test_normalise_message_blurs_numbers_and_addresses():
    msg = "Exception ignored in <obj at 0x7f00ab12>: port 45123\nsecond line"
    assert plugin.normalise_message(msg) == "Exception ignored in <obj at <hex>>: port N"
    assert plugin.normalise_message("\n\n  first  \n") == "first"


def test_cause_from_exception_names_innermost_httprs_frame():
    frames = [
        ("/x/tests/test_client.py", 10, "test_get"),
        ("/venv/site-packages/httprs/_client.pyx", 200, "send"),
        ("httprs/_core.pyx", 55, "handle_request"),
        ("/venv/site-packages/other/util.py", 3, "helper"),
    ]
    cause = plugin.cause_from_exception(TypeError("bad arg 3"), frames)
    assert cause == "TypeError: bad arg N [in httprs/_core.pyx:handle_request]"
    assert plugin.cause_from_exception(KeyError(), frames[:1]) == "KeyError"


def test_is_httprs_path():
    assert plugin.is_httprs_path("/v/lib/python3.11/site-packages/httprs/_models.py")
    assert plugin.is_httprs_path("httprs/_urls.pyx")
    assert not plugin.is_httprs_path("/v/lib/python3.11/site-packages/httpx/_models.py")
    assert not plugin.is_httprs_path("/work/httprs-thing/tests/test_x.py")


def test_cause_from_text_reads_e_lines():
    text = textwrap.dedent(
        """
        ImportError while loading conftest '/c/tests/conftest.py'.
        tests/conftest.py:226: in TestServer
            def url(self) -> httpx.URL:
        E   AttributeError: module 'httpx' has no attribute 'URL'
        """
    )
    assert plugin.cause_from_text(text) == "AttributeError: module 'httpx' has no attribute 'URL'"
    assert plugin.cause_from_text("Traceback...\nOSError: [Errno 98] in use") == (
        "OSError: [Errno N] in use"
    )
    assert plugin.cause_from_text("") == "unknown error"


# --------------------------------------------------------------------------------------
# Result parsing, comparison, grouping


def _lines(*records):
    return [json.dumps(r) for r in records]


def _t(nodeid, outcome, when="call", **kw):
    return {"event": "test", "nodeid": nodeid, "when": when, "outcome": outcome, **kw}


def test_parse_jsonl_folds_phases():
    run = R.parse_jsonl(
        [
            *_lines(
                {"event": "start", "mode": "baseline", "httpx_file": "/h", "httpx_is_shim": False},
                {"event": "collected", "count": 7, "node": "gw0"},
                {"event": "collected", "count": 7, "node": "gw1"},
                _t("a.py::ok", "passed"),
                _t("a.py::teardown_err", "passed"),
                _t("a.py::teardown_err", "failed", when="teardown", cause="OSError: x"),
                _t("a.py::both", "failed", cause="first"),
                _t("a.py::both", "failed", when="teardown", cause="second"),
                _t("a.py::setup_err", "failed", when="setup", cause="ValueError: s"),
                _t("a.py::skip", "skipped", when="setup"),
                _t("a.py::xf", "skipped", xfail=True),
                _t("a.py::xp", "passed", xfail=True),
            ),
            '{"event": "test", "nodeid": "cut',  # killed mid-write
        ],
        "baseline",
    )
    out = {k: v.outcome for k, v in run.tests.items()}
    assert out == {
        "a.py::ok": "passed",
        "a.py::teardown_err": "error",
        "a.py::both": "failed",
        "a.py::setup_err": "error",
        "a.py::skip": "skipped",
        "a.py::xf": "xfailed",
        "a.py::xp": "xpassed",
    }
    assert run.tests["a.py::both"].cause == "first"
    assert run.collected == 7 and not run.finished and run.httpx_is_shim is False
    counts = run.counts()
    assert (counts["passed"], counts["failed"], counts["error"], counts["skipped"]) == (1, 1, 2, 1)


def _run(mode, tests, collect_errors=(), finished=True, timed_out=False, fatal=""):
    run = R.RunResult(mode=mode, finished=finished, timed_out=timed_out, fatal=fatal)
    for nodeid, outcome, *rest in tests:
        cause = rest[0] if rest else ""
        respx = rest[1] if len(rest) > 1 else False
        run.tests[nodeid] = R.TestResult(nodeid, outcome, cause=cause, respx=respx)
    for nodeid, cause in collect_errors:
        run.collect_errors[nodeid] = R.TestResult(nodeid, "error", cause=cause)
    return run


def test_compare_finds_regressions_fixes_and_missing():
    base = _run(
        "baseline",
        [
            ("t/a.py::x", "passed"),
            ("t/a.py::y", "passed"),
            ("t/a.py::z", "failed"),
            ("t/b.py::m", "passed"),
            ("t/c.py::gone", "passed"),
            ("t/a.py::s", "passed"),
            ("t/a.py::f", "failed"),
        ],
    )
    exp = _run(
        "experiment",
        [
            ("t/a.py::x", "passed"),
            ("t/a.py::y", "failed", "TypeError: nope", True),
            ("t/a.py::z", "passed"),
            ("t/a.py::s", "skipped"),
            ("t/a.py::f", "failed", "Other"),
        ],
        collect_errors=[("t/b.py", "AttributeError: no URL")],
    )
    comp = R.compare(base, exp)
    regs = {r.nodeid: r for r in comp.regressions}
    assert set(regs) == {"t/a.py::y", "t/b.py::m", "t/c.py::gone"}
    assert regs["t/a.py::y"].respx and regs["t/a.py::y"].cause == "TypeError: nope"
    assert regs["t/b.py::m"].experiment == "missing"
    assert regs["t/b.py::m"].cause == "AttributeError: no URL"
    assert regs["t/c.py::gone"].cause == "not collected in the experiment run"
    assert comp.fixed == ["t/a.py::z"] and comp.newly_skipped == ["t/a.py::s"]
    assert [r.nodeid for r in comp.respx_regressions] == ["t/a.py::y"]


def test_compare_conftest_failure_and_timeout():
    base = _run("baseline", [("tests/sub/a.py::x", "passed"), ("tests/b.py::y", "passed")])
    # A package conftest that failed to import shows up as a collect error on the dir.
    exp = _run("experiment", [], collect_errors=[("tests/sub", "ImportError: q")])
    exp.fatal = "pytest exited 4 before running tests: AttributeError: URL"
    comp = R.compare(base, exp)
    causes = {r.nodeid: r.cause for r in comp.regressions}
    assert causes == {"tests/sub/a.py::x": "ImportError: q", "tests/b.py::y": exp.fatal}
    # A timed-out experiment: tests it never reached are "not run", not regressions.
    exp2 = _run("experiment", [("tests/b.py::y", "passed")], finished=False, timed_out=True)
    comp2 = R.compare(base, exp2)
    assert comp2.regressions == [] and comp2.not_run == ["tests/sub/a.py::x"]


def test_group_regressions_by_cause_biggest_first_respx_apart():
    regs = [
        R.Regression("a", "passed", "failed", "E1", False),
        R.Regression("b", "passed", "failed", "E2", False),
        R.Regression("c", "passed", "failed", "E2", False),
        R.Regression("d", "passed", "failed", "E2", True),
        R.Regression("e", "passed", "missing", "E0", False),
    ]
    groups = R.group_regressions(regs)
    assert [(k, [r.nodeid for r in v]) for k, v in groups] == [
        ("E2", ["b", "c"]),
        ("E0", ["e"]),
        ("E1", ["a"]),
        ("[respx] E2", ["d"]),
    ]


def test_render_table_and_groups_and_json():
    base = _run("baseline", [("a::1", "passed"), ("a::2", "passed"), ("a::3", "skipped")])
    exp = _run("experiment", [("a::1", "failed", "Boom"), ("a::2", "passed"), ("a::3", "skipped")])
    rep = R.TargetReport("demo", "demo==1.0", baseline=base, experiment=exp)
    rep.comparison = R.compare(base, exp)
    broken = R.TargetReport("nosetup", "x==1", status="setup failed: no sdist")
    table = R.render_table([rep, broken])
    lines = table.splitlines()
    assert lines[0].split(" | ")[0].strip() == "target"
    demo = [cell.strip() for cell in lines[2].split(" | ")]
    assert demo == ["demo", "demo==1.0", "3/2/0/0/1", "3/1/1/0/1", "1", "0", "0", "ok"]
    assert lines[3].split(" | ")[-1] == "setup failed: no sdist"
    groups = R.render_groups([rep, broken])
    assert "1 regressions in 1 groups" in groups and "Boom" in groups and "a::1" in groups
    data = json.loads(json.dumps(rep.to_json()))
    assert data["regressions"][0] == {
        "nodeid": "a::1",
        "baseline": "passed",
        "experiment": "failed",
        "cause": "Boom",
        "respx": False,
    }
    assert data["experiment"]["counts"]["failed"] == 1
    assert broken.to_json()["regressions"] is None


def test_render_table_marks_a_run_that_never_started():
    exp = _run("experiment", [], fatal="pytest exited 4 before running tests: X")
    rep = R.TargetReport("t", "t==1", experiment=exp)
    assert "- (pytest stopped)" in R.render_table([rep])


def test_parse_junit_fallback():
    xml = textwrap.dedent(
        """\
        <?xml version="1.0" encoding="utf-8"?>
        <testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4">
        <testcase classname="tests.test_a" name="test_ok" file="tests/test_a.py" line="1"/>
        <testcase classname="tests.test_a.TestK" name="test_bad" file="tests/test_a.py">
          <properties><property name="ecosystem_cause" value="TypeError: x"/>
          <property name="ecosystem_respx" value="1"/></properties>
          <failure message="TypeError: x y z">trace</failure></testcase>
        <testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py">
          <skipped type="pytest.skip" message="nope"/></testcase>
        <testcase classname="" name="tests.test_b"><error message="collection failure">
          E   ImportError: q</error></testcase>
        </testsuite></testsuites>
        """
    )
    run = R.parse_junit(xml, "baseline")
    assert run.tests["tests/test_a.py::test_ok"].outcome == "passed"
    bad = run.tests["tests/test_a.py::TestK::test_bad"]
    assert (bad.outcome, bad.cause, bad.respx) == ("failed", "TypeError: x", True)
    assert run.tests["tests/test_a.py::test_skip"].outcome == "skipped"
    assert len(run.collect_errors) == 1


# --------------------------------------------------------------------------------------
# Targets, sources, CLI


def test_lock_requirements_filters_self_comments_and_tools():
    lock = textwrap.dedent(
        """\
        # generated by rye
        -e file:.
        anyio==4.12.1
            # via httpx
        mypy==1.17.0
        Pyright==1.1.399
        pytest==9.0.2 ; python_full_version >= '3.10'
        respx==0.22.0
        """
    )
    assert T.lock_requirements(lock) == [
        "anyio==4.12.1",
        "pytest==9.0.2 ; python_full_version >= '3.10'",
        "respx==0.22.0",
    ]
    assert T.requirement_name("Typing_Extensions==4") == "typing-extensions"


def test_uv_requirements_pins_the_default_groups_from_the_lock():
    """openai 3.x ships uv.lock and no requirements-dev.lock: the default dependency
    groups are installed, each at its locked version when the lock has exactly one."""
    pyproject = textwrap.dedent(
        """\
        [dependency-groups]
        dev = ["pytest>=9", "ty==0.0.1", "types-requests>=2", "Rich>=13",
               "trio ; python_version >= '3.10'", {include-group = "other"}]
        pydantic-v2 = ["pydantic>=2,<3"]
        pydantic-v1 = ["pydantic<2"]
        [tool.uv]
        default-groups = ["dev", "pydantic-v2"]
        """
    )
    lock = textwrap.dedent(
        """\
        [[package]]
        name = "pytest"
        version = "9.2.0"
        [[package]]
        name = "rich"
        version = "15.0.0"
        [[package]]
        name = "trio"
        version = "0.35.0"
        [[package]]
        name = "pydantic"
        version = "1.10.26"
        [[package]]
        name = "pydantic"
        version = "2.12.5"
        [[package]]
        name = "openai"
        source = { editable = "." }
        """
    )
    assert T.uv_requirements(pyproject, lock) == [
        "pytest==9.2.0",
        "rich==15.0.0",
        "trio==0.35.0 ; python_version >= '3.10'",
        "pydantic>=2,<3",  # two locked versions (conflicting groups): left to pip
    ]


def test_relax_missing_pin_takes_the_newest_release_of_that_name():
    reqs = ["httpx==0.28.1", "inline-snapshot==0.36.2 ; python_version >= '3.10'", "rich"]
    error = "ERROR: No matching distribution found for inline-snapshot==0.36.2"
    relaxed, pin = check_ecosystem.relax_missing_pin(reqs, error)
    assert relaxed == ["httpx==0.28.1", "inline-snapshot ; python_version >= '3.10'", "rich"]
    assert pin == "inline-snapshot==0.36.2"
    assert check_ecosystem.relax_missing_pin(reqs, "ERROR: network unreachable") is None
    # a name pip reported that is not among the requirements: nothing to relax
    assert check_ecosystem.relax_missing_pin(reqs, error.replace("inline-snapshot", "x")) is None


def test_targets_are_pinned_as_the_issue_says():
    assert set(T.TARGETS) == {
        "httpx",
        "httpx2",
        "openai",
        "anthropic",
        "openai3",
        "anthropic2",
        "python-telegram-bot",
        "groq",
    }
    assert T.TARGETS["openai"].version == "2.54.0"
    assert T.TARGETS["groq"].version == "1.7.0"
    assert T.TARGETS["anthropic"].version.startswith("0.121.")
    # The current SDKs, built on httpx2: both names are routed to httprs.
    assert T.TARGETS["openai3"].version == "3.63.0"
    assert T.TARGETS["anthropic2"].version == "2.17.0"
    # with the extras whose tests drive the client (realtime, aiohttp, bedrock, ...)
    assert T.TARGETS["openai3"].install_self == ".[realtime,aiohttp,datalib]"
    assert T.TARGETS["anthropic2"].install_self == ".[aiohttp,bedrock,vertex]"
    for name in ("openai3", "anthropic2", "httpx2"):
        assert T.TARGETS[name].switch == "httpx2,httpx"
    for name in ("openai", "anthropic", "httpx", "python-telegram-bot", "groq"):
        assert T.TARGETS[name].switch == "httpx"
    assert T.TARGETS["python-telegram-bot"].version == "22.8"
    assert "not network" in T.TARGETS["httpx"].pytest_args
    for name in ("openai", "anthropic", "openai3", "anthropic2", "groq"):
        assert "--ignore=tests/api_resources" in T.TARGETS[name].pytest_args
    ptb = T.TARGETS["python-telegram-bot"]
    assert "not req" in ptb.pytest_args and "--ignore=tests/test_official" in ptb.pytest_args
    assert ptb.env["TEST_WITH_OPT_DEPS"] == "true" and ptb.install_self == ".[all]"
    assert "httpx==0.28.1" in T.COMMON_DEPS


def test_httpx_prepare_moves_the_source_package_aside(tmp_path):
    (tmp_path / "httpx").mkdir()
    (tmp_path / "httpx" / "__init__.py").write_text("")
    T.TARGETS["httpx"].prepare(tmp_path)
    assert not (tmp_path / "httpx").exists()
    assert (tmp_path / "httpx-source-unused" / "__init__.py").exists()


def test_extract_sdist_strips_the_top_directory(tmp_path):
    archive = tmp_path / "pkg-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("pkg-1.0/tests/test_x.py", b"x"), ("pkg-1.0/pyproject.toml", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    checkout = tmp_path / "checkouts" / "pkg"
    checkout.parent.mkdir()
    check_ecosystem.extract_sdist(archive, checkout)
    assert (checkout / "tests" / "test_x.py").read_bytes() == b"x"
    assert (checkout / "pyproject.toml").exists()
    assert [p.name for p in checkout.parent.iterdir()] == ["pkg"]


def test_cli_defaults_and_checks():
    args = check_ecosystem.parse_args([])
    assert args.repos == list(T.TARGETS) and args.timeout == 600 and args.concurrency == 2
    assert args.source == "sdist" and not args.no_baseline and args.json is None
    assert args.tb == "native" and args.isolation == "auto"
    with pytest.raises(SystemExit):
        check_ecosystem.parse_args(["--only-regressions"])
    args = check_ecosystem.parse_args(["--only-regressions", "--repos", "openai", "-v"])
    assert args.only_regressions and args.verbose


def test_check_run_rejects_a_run_that_measured_the_wrong_httpx():
    exp = _run("experiment", [("a", "passed")])
    exp.httpx_is_shim, exp.httpx_file = False, "/site-packages/httpx/__init__.py"
    assert "invalid experiment" in check_ecosystem.check_run(exp, "experiment")
    exp.httpx_is_shim = True
    assert check_ecosystem.check_run(exp, "experiment") == ""
    base = _run("baseline", [("a", "passed")])
    base.httpx_is_shim = True
    assert "invalid baseline" in check_ecosystem.check_run(base, "baseline")


def test_suite_env_turns_the_switch_on_for_the_experiment_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:1")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("HTTPRS_INSTALL", "1")
    target = T.TARGETS["python-telegram-bot"]
    env = check_ecosystem.suite_env(target, "experiment", tmp_path, tmp_path / "r.jsonl")
    assert env["PYTHONPATH"] == str(tmp_path / "plugin")
    assert env["HTTPRS_INSTALL"] == "httpx"  # an httpx-era target
    assert env["HTTPRS_ECOSYSTEM_MODE"] == "experiment"
    assert "HTTPS_PROXY" not in env and "GITHUB_ACTIONS" not in env
    assert env["TEST_WITH_OPT_DEPS"] == "true"
    base = check_ecosystem.suite_env(target, "baseline", tmp_path, tmp_path / "r.jsonl")
    assert base["PYTHONPATH"] == str(tmp_path / "plugin") and "HTTPRS_INSTALL" not in base


def test_internal_error_cause_prefers_the_workers_root_exception():
    lines = [
        "def worker_internal_error(",
        ">           assert False, formatted_error",
        "E           AssertionError: Traceback (most recent call last):",
        'E               File "/v/_pytest/main.py", line 318, in wrap_session',
        "E             SystemError: AST constructor recursion depth mismatch (before=141, after=160)",
        "E           assert False",
        'File "/v/xdist/dsession.py", line 218, in worker_workerfinished',
        "KeyError: <WorkerController gw1>",
    ]
    assert check_ecosystem.internal_error_cause(lines) == (
        "SystemError: AST constructor recursion depth mismatch (before=N, after=N)"
    )
    assert check_ecosystem.internal_error_cause(["x", "KeyError: 'gw0'"]) == "KeyError: 'gwN'"


def test_netns_exec_brings_up_loopback_in_a_fresh_namespace():
    ok, why = check_ecosystem.probe_netns(sys.executable)
    if not ok:
        pytest.skip(f"no network namespaces here: {why}")
    # Inside the namespace a fixed port is free even if the host uses it, and only
    # loopback exists.
    code = (
        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 8000)); s.listen(1);"
        "c = socket.create_connection(('127.0.0.1', 8000), timeout=5); print('ok')"
    )
    proc = subprocess.run(
        ["unshare", "--net", sys.executable, str(check_ecosystem.NETNS_EXEC)]
        + [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_rerun_selection_uses_files_for_tests_that_were_not_collected():
    regs = [
        {"nodeid": "tests/a.py::t1", "experiment": "failed"},
        {"nodeid": "tests/b.py::t2[x]", "experiment": "missing"},
        {"nodeid": "tests/b.py::t3", "experiment": "failed"},
        {"nodeid": "tests/b.py::t4", "experiment": "missing"},
        "tests/c.py::K::t5",
    ]
    assert R.rerun_selection(regs) == ["tests/b.py", "tests/a.py::t1", "tests/c.py::K::t5"]
    assert R.rerun_selection([]) == []


def test_cause_from_text_names_the_httprs_frame_like_cause_from_exception():
    native = textwrap.dedent(
        """\
        Traceback (most recent call last):
          File "/c/tests/lib/test_x.py", line 25, in <module>
            client = Anthropic()
          File "httprs/_core.pyx", line 120, in httprs._core._check_unsupported
          File "/v/site-packages/anthropic/_base_client.py", line 9, in helper
        NotImplementedError: socket_options= is not supported by httprs yet
        """
    )
    expected = plugin.cause_from_exception(
        NotImplementedError("socket_options= is not supported by httprs yet"),
        [("httprs/_core.pyx", 120, "httprs._core._check_unsupported")],
    )
    assert plugin.cause_from_text(native) == expected
    short = "tests/a.py:3: in <module>\n    x()\nE   ValueError: bad"
    assert plugin.cause_from_text(short) == "ValueError: bad"


def test_httpx2_target_runs_its_own_suite_from_git(tmp_path):
    """httpx2 2.17.0's sdist has no tests: the target runs tests/httpx2 of the git tag,
    with the PyPI wheels of httpx2 and httpcore2 as the baseline and the root `dev`
    group as test requirements; an sdist checkout is a clear setup error."""
    target = T.TARGETS["httpx2"]
    assert (target.version, target.git_ref) == ("2.17.0", "v2.17.0")
    assert target.pytest_args[0] == "tests/httpx2" and target.install_self is None
    pyproject = textwrap.dedent(
        """\
        [dependency-groups]
        dev = ["httpx2[brotli,cli,http2,socks,ws,zstd]", "httpcore2[asyncio,trio,http2,socks]",
               "chardet==6.0.0.post1", "pytest>=9.1.0", "trustme==1.2.1", "mypy==2.3.0",
               "ruff==0.16.0", "twine==7.0.0", "uvicorn>=0.52.0"]
        docs = ["zensical>=0.0.51"]
        [tool.uv]
        default-groups = ["dev", "docs"]
        """
    )
    lock = '[[package]]\nname = "pytest"\nversion = "9.1.2"\n'
    assert T.httpx2_requirements(pyproject, lock) == [
        "httpx2[brotli,cli,http2,socks,ws,zstd]==2.17.0",
        "httpcore2[asyncio,trio,http2,socks]==2.17.0",
        "chardet==6.0.0.post1",
        "pytest==9.1.2",
        "trustme==1.2.1",
        "uvicorn>=0.52.0",
    ]
    (tmp_path / "pyproject.toml").write_text(pyproject)
    assert target.deps(tmp_path)[2:] == [
        "chardet==6.0.0.post1",
        "pytest>=9.1.0",
        "trustme==1.2.1",
        "uvicorn>=0.52.0",
    ]
    with pytest.raises(FileNotFoundError, match="--source git"):
        target.prepare(tmp_path)
    (tmp_path / "tests" / "httpx2").mkdir(parents=True)
    target.prepare(tmp_path)


def test_a_failing_prepare_is_a_setup_error(tmp_path, monkeypatch):
    target = T.TARGETS["httpx2"]
    monkeypatch.setattr(
        check_ecosystem, "download_sdist", lambda *a, **k: tmp_path / "unused.tar.gz"
    )
    monkeypatch.setattr(
        check_ecosystem, "extract_sdist", lambda archive, checkout: checkout.mkdir(parents=True)
    )
    args = type("Args", (), {"source": "sdist", "checkouts_dir": tmp_path, "index": "x"})()
    with pytest.raises(check_ecosystem.SetupError, match="no tests/httpx2"):
        check_ecosystem.ensure_checkout(target, tmp_path / "co", args, tmp_path / "log")


def test_local_source_uses_the_tree_as_it_is_and_never_deletes_it(tmp_path):
    target = T.TARGETS["httpx2"]
    args = type("Args", (), {"source": "local", "checkouts_dir": tmp_path, "index": "x"})()
    checkout = tmp_path / "httpx2"
    with pytest.raises(check_ecosystem.SetupError, match="does not exist"):
        check_ecosystem.ensure_checkout(target, checkout, args, tmp_path / "log")
    checkout.mkdir()
    (checkout / "mine.txt").write_text("kept")
    with pytest.raises(check_ecosystem.SetupError, match="--source local"):
        check_ecosystem.ensure_checkout(target, checkout, args, tmp_path / "log")
    (checkout / "tests" / "httpx2").mkdir(parents=True)
    # A marker from another source would make sdist/git runs replace the tree: not here.
    (checkout / check_ecosystem.SOURCE_MARKER).write_text('{"source": "git"}')
    assert check_ecosystem.ensure_checkout(target, checkout, args, tmp_path / "log") == (
        "local checkout"
    )
    assert (checkout / "mine.txt").read_text() == "kept"
    assert check_ecosystem.parse_args(["--source", "local"]).source == "local"

"""scripts/dev.sh: how the sanitizer recipes read their pytest arguments.

`test-tsan` runs a default set of threaded tests; options alone (`-k fork -x`) must
narrow that set, not widen the run to the whole suite, and a path names exactly what
runs. The script is sourced (functions only, no job) and its decision asked directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV_SH = ROOT / "scripts" / "dev.sh"


def names_test_path(*args: str) -> bool:
    proc = subprocess.run(
        ["bash", "-c", 'source "$0" && names_test_path "$@"', str(DEV_SH), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("-q", "-rfE"),
        ("-k", "fork", "-x"),
        # option values that happen to be directories of the repository
        ("-k", "tests"),
        ("-m", "scripts"),
        ("-p", "no:cacheprovider"),
        ("--deselect", "tests/test_pool.py::test_x"),
        # options whose value is a path: the path is not a test to run
        ("--ignore", "tests/test_tls.py"),
        ("--ignore-glob", "tests"),
        ("--log-file", "tests/test_pool.py"),
        ("--junitxml", "scripts"),
        ("--maxfail", "1", "--tb", "short"),
    ],
)
def test_options_alone_keep_the_default_set(args: tuple[str, ...]) -> None:
    assert not names_test_path(*args)


@pytest.mark.parametrize(
    "args",
    [
        ("tests/",),
        ("tests/test_tls.py",),
        ("tests/test_tls.py::test_something", "-q"),
        ("-k", "fork", "tests/test_pool.py"),
    ],
)
def test_a_path_runs_what_it_names(args: tuple[str, ...]) -> None:
    assert names_test_path(*args)


def test_sourcing_runs_no_job() -> None:
    proc = subprocess.run(
        ["bash", "-c", 'source "$0" && echo sourced', str(DEV_SH), "lint"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sourced\n"


def scanned(*args: str) -> list[str]:
    proc = subprocess.run(
        [
            "bash",
            "-c",
            'source "$0" && scan_test_args "$@" && printf "%s\\n" "${TEST_ARGS[@]}"',
            str(DEV_SH),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_paths_are_made_absolute_and_option_values_kept() -> None:
    assert scanned("-k", "tests", "tests/test_tls.py::test_x", "-q") == [
        "-k",
        "tests",
        f"{ROOT}/tests/test_tls.py::test_x",
        "-q",
    ]


def test_path_option_values_are_made_absolute() -> None:
    # pytest runs from tests/ (run_installed): a relative value would be read there
    assert scanned(
        "--ignore",
        "tests/test_tls.py",
        "--ignore-glob=tests/*_h2.py",
        "--junitxml",
        "out.xml",
        "--log-file=/var/tmp/x.log",
        "tests/test_pool.py",
    ) == [
        "--ignore",
        f"{ROOT}/tests/test_tls.py",
        f"--ignore-glob={ROOT}/tests/*_h2.py",
        "--junitxml",
        f"{ROOT}/out.xml",
        "--log-file=/var/tmp/x.log",
        f"{ROOT}/tests/test_pool.py",
    ]


@pytest.mark.parametrize(
    ("named", "expected"),
    [
        # each CPython version builds in its own build/cpXY (test-python runs 3.9, 3.13
        # and 3.14 on the same tree as the host's 3.11): named after the venv's python
        ("", f"build/cp{sys.version_info[0]}{sys.version_info[1]}"),
        # test-python's chroots name their own (build/SUITE-cpXY): `test-python 3.11`
        # would otherwise reconfigure the host's build/cp311 for bookworm's interpreter
        ("build/bookworm-cp311", "build/bookworm-cp311"),
    ],
)
def test_the_build_directory_is_per_python_or_named(
    tmp_path: Path, named: str, expected: str
) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    proc = subprocess.run(
        ["bash", "-c", 'source "$0" && ensure_venv && echo "$BUILD_DIR"', str(DEV_SH)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HTTPRS_VENV": str(venv), "HTTPRS_BUILD_DIR": named},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == expected + "\n"


@pytest.mark.parametrize("args", [(), ("3.10",), ("trixie",)])
def test_test_python_names_the_versions_it_has(args: tuple[str, ...]) -> None:
    """test-python takes only the versions it maps to a Debian suite, and says which,
    before it makes or mounts anything."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "test_python.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        # Not with test-asan's preloaded libasan: bash's own leaks at exit would make it exit 1.
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )
    assert proc.returncode == 2
    assert "3.9|3.11|3.13|3.14" in proc.stderr


@pytest.mark.parametrize("lists", [False, True])
def test_package_choices_fetch_the_lists_a_fresh_machine_lacks(lists: bool) -> None:
    """add_llhttp and add_nginx choose by what the package lists have (libllhttp-dev
    from Debian 13 on, nginx-light in 12): on a fresh machine, whose lists are not
    fetched yet, they are fetched first (once), else every package looks absent and
    Debian 13 gets node-llhttp, which has no C sources there."""
    script = r"""
        source "$0"
        updates=0
        compgen() { [ "$LISTS" = 1 ] || [ "$updates" -gt 0 ]; }
        sudo_cmd() { [ "$1 $2" = "apt-get update" ] && updates=$((updates + 1)); }
        apt-cache() { [ "$1 $2" = "show libllhttp-dev" ] && { [ "$LISTS" = 1 ] || [ "$updates" -gt 0 ]; }; }
        apt_has libllhttp-dev && apt_has libllhttp-dev && ! apt_has nginx-light
        echo "$?" "$updates"
    """
    proc = subprocess.run(
        ["bash", "-c", script, str(DEV_SH)],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LISTS": "1" if lists else "0"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("0 0\n" if lists else "0 1\n")


def _test_python(chroots: Path) -> subprocess.CompletedProcess[str]:
    # A mirror nothing answers on: were a guard to let the run through, debootstrap
    # fails at once instead of downloading a suite.
    env = {**os.environ, "HTTPRS_CHROOTS": str(chroots)}
    env["HTTPRS_DEBIAN_MIRROR"] = "http://127.0.0.1:9/debian"
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "test_python.sh"), "3.13"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="test-python runs as root only")


@needs_root
def test_test_python_leaves_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """A trixie/ that test-python did not start is never deleted to make the chroot."""
    mine = tmp_path / "trixie" / "mine.txt"
    mine.parent.mkdir()
    mine.write_text("keep")
    proc = _test_python(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "is not a chroot test-python made" in proc.stderr
    assert mine.read_text() == "keep"


@needs_root
def test_test_python_never_deletes_through_a_mount(tmp_path: Path) -> None:
    """A half-made chroot with something still mounted in it (a run killed with SIGKILL
    leaves the tree bind-mounted) is not deleted: `rm -rf --one-file-system` would go
    through a bind mount of the same file system. Named through a symlink, as
    HTTPRS_CHROOTS or the repository's path may be (mountinfo has no symlinks)."""
    real = tmp_path / "real"
    chroot = real / "trixie"
    (chroot / "work").mkdir(parents=True)
    (real / ".trixie.making").touch()  # test-python's marker: a chroot it started
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "precious.txt").write_text("keep")
    (tmp_path / "link").symlink_to(real)
    mount = subprocess.run(
        ["mount", "--bind", str(tree), str(chroot / "work")], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mount.stderr.strip()}")
    try:
        proc = _test_python(tmp_path / "link")
    finally:
        subprocess.run(["umount", str(chroot / "work")], check=True)
    assert proc.returncode == 1, proc.stderr
    assert "has mounts" in proc.stderr
    assert (tree / "precious.txt").read_text() == "keep"

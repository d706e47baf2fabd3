"""The benchmark's servers: a pinned nginx and the project's own C echo/chunked server.

Nothing here runs in a client's process. Both servers are started once per benchmark
run, pinned to the server CPU, and stopped at the end; their CPU time is read from
/proc/<pid>/stat by the client workers around each timed window.
"""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NATIVE = HERE / "native"
NATIVE_BUILD = REPO / "build" / "bench-native"

SMALL_BODY = b"Hello, world!"
# ~1 KB body for the many-headers case (exactly 1024 bytes, plain ASCII).
HEADERS_BODY = (b"0123456789abcdef" * 64)[:1024]
FILE_SIZES = {"1m": 1 << 20, "10m": 10 << 20, "100m": 100 << 20}
JSON_ITEMS = 1500


class SetupError(RuntimeError):
    """A server or tool could not be prepared; the message says what is missing."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(f"{what} exited with status {proc.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise SetupError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def taskset(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    if not shutil.which("taskset"):
        raise SetupError("taskset (util-linux) is required to pin processes to CPUs")
    return ["taskset", "-c", str(cpu)]


def plain_env() -> dict[str, str]:
    """The environment for the compiler, the servers and the native load tools (wrk, the
    C client): without a sanitizer runtime preloaded for the process under test
    (scripts/dev.sh test-asan / test-tsan); with it a compiler's own leaks at exit fail
    the build, and none of them is what is tested."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def build_native() -> dict[str, Path]:
    """Compiles the C server and clients once (rebuilt when a source is newer)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SetupError("a C compiler (cc) is required to build scripts/bench/native")
    NATIVE_BUILD.mkdir(parents=True, exist_ok=True)
    out = {}
    # tls_floor links the libssl / libcrypto that Python's ssl module and httprs use.
    libs = {"echo_server": [], "pingpong": [], "tls_floor": ["-lssl", "-lcrypto"]}
    shared = NATIVE / "measure.h"  # the clients' timed loop
    for name, link in libs.items():
        src = NATIVE / f"{name}.c"
        exe = NATIVE_BUILD / name
        newest = max(src.stat().st_mtime, shared.stat().st_mtime)
        if not exe.exists() or exe.stat().st_mtime < newest:
            res = subprocess.run(
                [cc, "-O2", "-Wall", "-o", str(exe), str(src), *link],
                capture_output=True,
                text=True,
                env=plain_env(),
            )
            if res.returncode != 0:
                raise SetupError(f"compiling {src.name} failed:\n{res.stderr}")
        out[name] = exe
    return out


def make_json_document() -> bytes:
    """A ~200 KB JSON array of small records (deterministic)."""
    items = [
        {
            "id": i,
            "name": f"item-{i:05d}",
            "active": i % 3 == 0,
            "score": round(i * 0.731, 3),
            "tags": ["alpha", "beta", "gamma"][: 1 + i % 3],
            "owner": {"login": f"user{i % 97}", "site": f"https://example.org/u/{i % 97}"},
        }
        for i in range(JSON_ITEMS)
    ]
    return json.dumps(items).encode()


def _file_block() -> bytes:
    # 1 MiB of non-repeating-looking bytes so nothing on the path can shortcut zeros.
    import random

    rnd = random.Random(1234)
    return rnd.randbytes(1 << 20)


@dataclass
class Servers:
    """Everything a worker needs to know about the running servers."""

    root: Path
    cpu: int | None
    http_port: int = 0
    https_port: int = 0
    h2_port: int = 0
    h2c_port: int = 0
    c_port: int = 0
    ca_pem: Path = field(default_factory=Path)
    nginx_master: subprocess.Popen | None = None
    nginx_worker_pid: int = 0
    c_server: subprocess.Popen | None = None
    native: dict[str, Path] = field(default_factory=dict)
    json_items: int = JSON_ITEMS

    # -- start-up -------------------------------------------------------------
    @classmethod
    def start(cls, cpu: int | None, need_tls: bool = True, in_memory: bool = True) -> Servers:
        """in_memory: the files under /dev/shm (~111 MB; a container's may hold 64 MB)."""
        if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
            raise SetupError("nginx is not installed (Debian: apt-get install nginx-light)")
        base = Path("/dev/shm") if in_memory and Path("/dev/shm").is_dir() else None
        root = Path(tempfile.mkdtemp(prefix="httprs-bench-", dir=base))
        self = cls(root=root, cpu=cpu)
        try:
            self.native = build_native()
            self._write_content()
            self._write_certs()
            self._start_nginx()
            self._start_c_server()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_content(self) -> None:
        www = self.root / "www"
        (www / "files").mkdir(parents=True)
        block = _file_block()
        for name, size in FILE_SIZES.items():
            with open(www / "files" / f"{name}.bin", "wb") as f:
                for _ in range(size // len(block)):
                    f.write(block)
        doc = make_json_document()
        (www / "data.json.gz").write_bytes(gzip.compress(doc, compresslevel=6))
        self.json_bytes = len(doc)

    def _write_certs(self) -> None:
        try:
            import trustme
        except ImportError as exc:
            raise SetupError(
                "trustme is required for the TLS listener (pip install trustme)"
            ) from exc
        ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        cert = ca.issue_cert("127.0.0.1", "localhost", key_type=trustme.KeyType.ECDSA)
        tls = self.root / "tls"
        tls.mkdir()
        self.ca_pem = tls / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_pem))
        cert.private_key_pem.write_to_path(str(tls / "key.pem"))
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        (tls / "cert.pem").write_bytes(chain)

    def _start_nginx(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        prefix = self.root / "nginx"
        prefix.mkdir()
        self.http_port = free_port()
        self.https_port = free_port()
        self.h2_port = free_port()
        self.h2c_port = free_port()
        headers = "".join(
            f"            add_header X-Bench-Header-{i:02d} "
            f'"value-{i:02d}-abcdefghijklmnopqrstuvwxyz";\n'
            for i in range(15)
        )
        headers = (
            "        location = /headers {\n"
            "            default_type text/plain;\n"
            f"{headers}"
            f'            return 200 "{HEADERS_BODY.decode()}";\n'
            "        }\n"
        )
        user = ""
        if os.geteuid() == 0:
            # the master runs as root here: keep the worker as the same user so it can
            # read the private temporary prefix
            user = f"user {pwd.getpwuid(os.geteuid()).pw_name};"
        affinity = "auto" if self.cpu is None else "1" + "0" * self.cpu
        conf = (HERE / "nginx.conf.in").read_text()
        for key, value in {
            "@USER@": user,
            "@AFFINITY@": affinity,
            "@PREFIX@": str(prefix),
            "@HTTP_PORT@": str(self.http_port),
            "@HTTPS_PORT@": str(self.https_port),
            "@H2_PORT@": str(self.h2_port),
            "@H2C_PORT@": str(self.h2c_port),
            "@CERT@": str(self.root / "tls" / "cert.pem"),
            "@KEY@": str(self.root / "tls" / "key.pem"),
            "@ROOT@": str(self.root / "www"),
            "@HEADERS@": headers,
        }.items():
            conf = conf.replace(key, value)
        conf_path = prefix / "nginx.conf"
        conf_path.write_text(conf)
        log = open(prefix / "stderr.log", "wb")
        self.nginx_master = subprocess.Popen(
            [
                *taskset(self.cpu),
                nginx,
                "-p",
                str(prefix),
                "-c",
                str(conf_path),
                "-e",
                str(prefix / "error.log"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=plain_env(),
        )
        log.close()
        try:
            wait_port(self.http_port, self.nginx_master, "nginx")
        except SetupError as exc:
            err = (
                (prefix / "error.log").read_text(errors="replace")
                if (prefix / "error.log").exists()
                else ""
            )
            err += (prefix / "stderr.log").read_text(errors="replace")
            raise SetupError(f"{exc}\n{err.strip()}") from None
        self.nginx_worker_pid = self._find_child(self.nginx_master.pid)

    @staticmethod
    def _find_child(pid: int) -> int:
        deadline = time.monotonic() + 5
        path = Path(f"/proc/{pid}/task/{pid}/children")
        while time.monotonic() < deadline:
            try:
                kids = path.read_text().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.02)
        raise SetupError("could not find the nginx worker process")

    def _start_c_server(self) -> None:
        self.c_port = free_port()
        self.c_server = subprocess.Popen(
            [*taskset(self.cpu), str(self.native["echo_server"]), str(self.c_port)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "c_server.log", "wb"),
            start_new_session=True,
            env=plain_env(),
        )
        wait_port(self.c_port, self.c_server, "the C echo server")

    # -- description for workers ------------------------------------------------
    def urls(self) -> dict[str, str]:
        h = f"http://127.0.0.1:{self.http_port}"
        s = f"https://127.0.0.1:{self.https_port}"
        h2 = f"https://127.0.0.1:{self.h2_port}"
        c = f"http://127.0.0.1:{self.c_port}"
        return {
            "small": f"{h}/small",
            "headers": f"{h}/headers",
            "file_1m": f"{h}/files/1m.bin",
            "file_10m": f"{h}/files/10m.bin",
            "file_100m": f"{h}/files/100m.bin",
            "json_gz": f"{h}/data.json",
            "tls_small": f"{s}/small",
            "tls_file_10m": f"{s}/files/10m.bin",
            "h2_small": f"{h2}/small",
            "h2_file_10m": f"{h2}/files/10m.bin",
            "h2c_small": f"http://127.0.0.1:{self.h2c_port}/small",
            "echo": f"{c}/echo",
            "upload": f"{c}/upload",
            "chunked_10m": f"{c}/chunked?size={10 << 20}&chunk=16384",
        }

    def info(self) -> dict:
        return {
            "urls": self.urls(),
            "ca_pem": str(self.ca_pem),
            "server_pids": {
                "nginx": self.nginx_worker_pid,
                "c": self.c_server.pid if self.c_server else 0,
            },
            "stats_ports": {"nginx": self.http_port, "c": self.c_port},
            "json_items": self.json_items,
        }

    def check_alive(self) -> None:
        for what, proc in (("nginx", self.nginx_master), ("the C echo server", self.c_server)):
            if proc is not None and proc.poll() is not None:
                raise SetupError(f"{what} died (exit status {proc.returncode})")

    # -- shutdown ---------------------------------------------------------------
    def stop(self) -> None:
        for proc in (self.c_server, self.nginx_master):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()  # nginx: SIGTERM is a fast shutdown of master and worker
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def proc_cpu_seconds(pid: int) -> float:
    """CPU time of a (single-threaded) server process in seconds, 0.0 if it is gone.

    /proc/<pid>/schedstat gives nanoseconds on CPU; /proc/<pid>/stat (utime+stime in
    clock ticks) is the fallback.
    """
    if not pid:
        return 0.0
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def accepted_connections(port: int, server: str) -> int | None:
    """The server's count of accepted connections (nginx stub_status, C server /stats).

    The count includes the connection used to ask. None when it cannot be read.
    """
    path = "/nginx_status" if server == "nginx" else "/stats"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return None
    body = data.partition(b"\r\n\r\n")[2].decode(errors="replace")
    if server == "nginx":  # "Active connections: 1\nserver accepts handled requests\n A H R\n..."
        lines = body.splitlines()
        try:
            return int(lines[2].split()[0])
        except (IndexError, ValueError):
            return None
    try:
        return int(body.split()[1])
    except (IndexError, ValueError):
        return None

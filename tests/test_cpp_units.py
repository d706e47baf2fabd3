"""Build and run the C++ unit test programs in tests/cpp against src/.

Each program is compiled with g++ (flags from pkg-config, AddressSanitizer and
UBSan on, so leaks and undefined behaviour fail the run; ThreadSanitizer for the engine
race test) into tmp_path and run;
the test fails when the program does not build or exits non-zero, and shows its
output. Nothing is skipped: a missing compiler or library is a failure. (One exception:
where a system has llhttp only as a library (libllhttp-dev, Debian 13 on), without the C
sources Debian 12's node-llhttp installs, the lenient-llhttp build cannot be made.)
"""

import datetime
import os
import shlex
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
# The compilers and the test programs run without the ASan build's preloaded
# libasan (scripts/dev.sh test-asan): the programs link their own sanitizer
# runtime (ThreadSanitizer cannot share a process with ASan) and the compilers
# are not what is tested.
ENV = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SSLKEYLOGFILE")}
SRC = ROOT / "src"
CPP_TESTS = ROOT / "tests" / "cpp"
CXXFLAGS = [
    "-std=c++17",
    "-O1",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    # float-cast-overflow is not part of "undefined": a double out of an integer's
    # range (a timeout of inf or 1e300 s as milliseconds) must abort too.
    "-fsanitize=address,undefined,float-cast-overflow",
    "-fno-sanitize-recover=undefined,float-cast-overflow",
    f"-I{SRC}",
]


# The TLS core (src/tls.h): contexts, the OpenSSL session, the foreign session and
# what they share.
TLS_SOURCES = (
    "tls_context.cc",
    "tls_foreign.cc",
    "tls_gate.cc",
    "tls_internal.cc",
    "tls_openssl.cc",
)

# The socket (src/socket_stream.h): its home, connecting, the Happy Eyeballs race,
# writing and reading.
SOCKET_SOURCES = (
    "socket_stream.cc",
    "socket_connect.cc",
    "socket_race.cc",
    "socket_write.cc",
    "socket_read.cc",
)

# The engine with its connection: the socket, the byte-stream layers, the HTTP/1.1
# and HTTP/2 sessions and TLS (everything in src/ that the engine tests link).
ENGINE_SOURCES = (
    "engine.cc",
    "engine_consumer.cc",
    "engine_wait.cc",
    "connection.cc",
    "connection_exchange.cc",
    "connection_read.cc",
    "connection_end.cc",
    "connection_close.cc",
    "connection_h2.cc",
    "connection_info.cc",
    "http2_exchanges.cc",
    "http2_session.cc",
    "stream_chain.cc",
    "stream_layer.cc",
    "tls_stream.cc",
    "socks5.cc",
    "connect_tunnel.cc",
    "http1_session.cc",
    "http1.cc",
    *SOCKET_SOURCES,
    *TLS_SOURCES,
)


def pkg_config(*packages: str) -> list[str]:
    out = subprocess.run(
        ["pkg-config", "--cflags", "--libs", *packages],
        check=True,
        capture_output=True,
        text=True,
        env=ENV,
    )
    return shlex.split(out.stdout)


def build(tmp_path: Path, name: str, sources: list[Path], packages: list[str]) -> Path:
    exe = tmp_path / name
    cmd = ["g++", *CXXFLAGS, *map(str, sources), "-o", str(exe), *pkg_config(*packages)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    return exe


def run(args: list[str], timeout: float = 90) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=ENV)
    output = proc.stdout + proc.stderr
    print(output)
    assert proc.returncode == 0, f"{Path(args[0]).name} exited {proc.returncode}:\n{output}"
    assert " 0 failures" in proc.stdout, output
    return output


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_decode(tmp_path: Path) -> None:
    exe = build(
        tmp_path,
        "test_decode",
        [CPP_TESTS / "test_decode.cc", SRC / "decode.cc"],
        ["zlib", "libbrotlienc", "libbrotlidec", "libzstd"],
    )
    run([str(exe)])


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_http2_session(tmp_path: Path) -> None:
    """The sans-IO HTTP/2 client session against an nghttp2 server session in the same
    program: request/response, multiplexing, GOAWAY, REFUSED_STREAM, RST_STREAM, flow
    control windows, request bodies, SETTINGS changes, connection errors, input split
    anywhere and mutated (under AddressSanitizer)."""
    exe = build(
        tmp_path,
        "test_http2_session",
        [CPP_TESTS / "test_http2_session.cc", SRC / "http2_session.cc"],
        ["libnghttp2"],
    )
    run([str(exe)])


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_http2_exchanges(tmp_path: Path) -> None:
    """HTTP/2 as a ProtocolSession against an nghttp2 server session: transfers filled
    from streams, the window given back only as the consumer reads, cancel / reset /
    REFUSED_STREAM / GOAWAY / EOF outcomes (retry or fail), per-stream deadlines,
    streamed bodies held to their length, MAX_CONCURRENT_STREAMS."""
    exe = tmp_path / "test_http2_exchanges"
    cmd = [
        "g++", *CXXFLAGS, f"-I{LLHTTP_INCLUDE}",
        str(CPP_TESTS / "test_http2_exchanges.cc"), str(SRC / "http2_exchanges.cc"),
        str(SRC / "http2_session.cc"), "-o", str(exe),
        *pkg_config("libnghttp2", "libuv", "openssl"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    run([str(exe)])


# CPython's default cipher string from 3.10 on (PY_SSL_DEFAULT_CIPHER_STRING, ssl's
# _DEFAULT_CIPHERS), which TlsPolicy's default (src/tls.h) copies.
CPYTHON_DEFAULT_CIPHERS = (
    "@SECLEVEL=2:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
)
LLHTTP_SRC = Path("/usr/share/llhttp")  # meson.options' llhttp_src default
LLHTTP_INCLUDE = Path("/usr/share/include/llhttp")


def llhttp_objects(tmp_path: Path, strict: bool) -> list[str]:
    """llhttp compiled from its C sources, in strict mode or not (lenient, as
    a distribution's libllhttp 8 built without LLHTTP_STRICT_MODE): the include flag
    and the objects to link. Without the sources, the system's libllhttp >= 9 (strict
    at run time, as meson.build takes it), and no lenient build."""
    if not (LLHTTP_SRC / "llhttp.c").exists():
        if not strict:
            pytest.skip("a lenient llhttp is built from C sources, which this system lacks")
        return pkg_config("libllhttp")
    objects = []
    for name in ("api", "http", "llhttp"):
        obj = tmp_path / f"{name}_{int(strict)}.o"
        cmd = [
            "gcc", "-O1", "-w", "-c", f"-DLLHTTP_STRICT_MODE={int(strict)}",
            f"-I{LLHTTP_INCLUDE}", str(LLHTTP_SRC / f"{name}.c"), "-o", str(obj),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
        assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stderr}"
        objects.append(str(obj))
    return [f"-I{LLHTTP_INCLUDE}", *objects]


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
@pytest.mark.parametrize("strict", [True, False], ids=["strict-llhttp", "lenient-llhttp"])
def test_http1(tmp_path: Path, strict: bool) -> None:
    """Request framing, header checks, 101 handling; and llhttp_is_strict()
    telling a strict llhttp from a lenient one (the import-time guard)."""
    exe = tmp_path / "test_http1"
    cmd = [
        "g++", *CXXFLAGS,
        str(CPP_TESTS / "test_http1.cc"), str(SRC / "http1.cc"),
        *llhttp_objects(tmp_path, strict), "-o", str(exe),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    run([str(exe), f"--strict={int(strict)}"])


def _build_with_llhttp(tmp_path: Path, name: str, sources: list[str]) -> Path:
    exe = tmp_path / name
    cmd = [
        "g++", *CXXFLAGS,
        str(CPP_TESTS / f"{name}.cc"), *(str(SRC / s) for s in sources),
        *llhttp_objects(tmp_path, True), "-o", str(exe),
        *pkg_config("libuv", "openssl", "libnghttp2"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    return exe


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_socket_stream(tmp_path: Path) -> None:
    """Happy Eyeballs on a loop with its own listener: the winning attempt's handle
    becomes the stream's, and the stream reports itself closed once, after its own
    unused handle and the winner's are closed, whichever closes first; no descriptor
    or attempt is left behind (under AddressSanitizer)."""
    exe = tmp_path / "test_socket_stream"
    cmd = [
        "g++", *CXXFLAGS, f"-I{LLHTTP_INCLUDE}",
        str(CPP_TESTS / "test_socket_stream.cc"), *(str(SRC / s) for s in SOCKET_SOURCES),
        "-o", str(exe), *pkg_config("libuv", "openssl", "libnghttp2"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    run([str(exe)])


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_layers(tmp_path: Path) -> None:
    """SOCKS5 and CONNECT layers and the chain moving bytes between layers, with
    scripted bytes (no sockets), fed whole and one byte at a time."""
    sources = ["socks5.cc", "connect_tunnel.cc", "stream_chain.cc", "stream_layer.cc", "http1.cc"]
    run([str(_build_with_llhttp(tmp_path, "test_layers", sources))])


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_http1_session(tmp_path: Path) -> None:
    """The HTTP/1.1 protocol session with scripted bytes: request framing out,
    responses in (split anywhere), uploads, pausing, draining, resend rules."""
    sources = ["http1_session.cc", "http1.cc"]
    run([str(_build_with_llhttp(tmp_path, "test_http1_session", sources))])


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_protocol_session(tmp_path: Path) -> None:
    """The protocol-session interface alone, as the connection drives the session it
    chose after ALPN: the same exchanges (a response split anywhere, fixed and streamed
    bodies, an EOF before the response) on Http1Session and Http2Exchanges, with
    scripted HTTP/1.1 bytes and an nghttp2 server session."""
    sources = ["http1_session.cc", "http1.cc", "http2_exchanges.cc", "http2_session.cc"]
    run([str(_build_with_llhttp(tmp_path, "test_protocol_session", sources))])


def make_certificates(tmp_path: Path) -> dict[str, str]:
    """Certificates for test_tls, as --name=path arguments."""
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client@example.org")
    now = datetime.datetime.now(datetime.timezone.utc)
    expired = ca.issue_cert(
        "localhost",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=1),
    )
    intermediate = ca.create_child_ca()
    via_intermediate = intermediate.issue_cert("localhost")
    files = {
        "ca": ca.cert_pem,
        "other_ca": other_ca.cert_pem,
        "server": server.private_key_and_cert_chain_pem,
        "client": client.private_key_and_cert_chain_pem,
        "client_cert": client.cert_chain_pems[0],
        "expired": expired.private_key_and_cert_chain_pem,
        "chained": via_intermediate.private_key_and_cert_chain_pem,
    }
    paths = {}
    for name, blob in files.items():
        path = tmp_path / f"{name}.pem"
        blob.write_to_path(str(path))
        paths[name] = str(path)
    password = "s3cret pass"
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    (tmp_path / "client_key_enc.pem").write_bytes(encrypted)
    paths["client_key_enc"] = str(tmp_path / "client_key_enc.pem")
    paths["password"] = password
    # A server that sends its (untrusted) root along with the leaf.
    with_root = tmp_path / "with_root.pem"
    with_root.write_bytes(
        server.private_key_and_cert_chain_pem.bytes() + other_ca.cert_pem.bytes()
    )
    paths["with_root"] = str(with_root)
    other_leaf = other_ca.issue_cert("localhost")
    with_other_root = tmp_path / "with_other_root.pem"
    with_other_root.write_bytes(
        other_leaf.private_key_and_cert_chain_pem.bytes() + other_ca.cert_pem.bytes()
    )
    paths["with_other_root"] = str(with_other_root)
    self_signed = tmp_path / "self_signed.pem"
    self_signed.write_bytes(other_ca.private_key_pem.bytes() + other_ca.cert_pem.bytes())
    paths["self_signed"] = str(self_signed)
    (tmp_path / "garbage.pem").write_text("this is not a certificate\n")
    paths["garbage"] = str(tmp_path / "garbage.pem")
    (tmp_path / "empty_dir").mkdir()
    paths["empty_dir"] = str(tmp_path / "empty_dir")
    paths["tmpdir"] = str(tmp_path)
    # The policy httpx gets from the ssl module, to compare with the core's default
    # TlsPolicy (CPython's). Its ciphers are CPython's default cipher string, which a
    # distribution's build may replace with OpenSSL's own longer default (Debian's
    # python3: --with-ssl-default-suites=openssl), so the comparison is with that
    # string. (What the Cython layer passes instead, the running interpreter's own
    # policy, is compared in tests/test_tls.py.)
    py_ctx = ssl.create_default_context()
    if getattr(ssl, "_DEFAULT_CIPHERS", None) != CPYTHON_DEFAULT_CIPHERS:
        py_ctx.set_ciphers(CPYTHON_DEFAULT_CIPHERS)
    paths["py_options"] = str(int(py_ctx.options))
    paths["py_ciphers"] = ":".join(c["name"] for c in py_ctx.get_ciphers())
    return paths


@pytest.mark.timeout(600)  # ASan builds are slow on a loaded machine
def test_tls(tmp_path: Path) -> None:
    exe = build(
        tmp_path,
        "test_tls",
        [
            CPP_TESTS / "test_tls.cc",
            *(SRC / s for s in (*TLS_SOURCES, "tls_stream.cc", "stream_chain.cc")),
        ],
        ["openssl"],
    )
    args = make_certificates(tmp_path)
    run([str(exe), *(f"--{name}={value}" for name, value in args.items())])


def _llhttp(tmp_path: Path, sanitize: str) -> list[str]:
    """llhttp as the extension gets it: pkg-config's libllhttp, else Debian's C sources
    (meson.options' defaults) compiled here."""
    probe = subprocess.run(["pkg-config", "--exists", "libllhttp"], capture_output=True, env=ENV)
    if probe.returncode == 0:
        return pkg_config("libllhttp")
    src, include = Path("/usr/share/llhttp"), "/usr/share/include/llhttp"
    objects = []
    for name in ("api", "http", "llhttp"):
        obj = tmp_path / f"llhttp_{name}.o"
        cmd = ["gcc", "-O1", "-g", sanitize, f"-I{include}", "-c", str(src / f"{name}.c")]
        proc = subprocess.run([*cmd, "-o", str(obj)], capture_output=True, text=True, env=ENV)
        assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stderr}"
        objects.append(str(obj))
    return [f"-I{include}", *objects]


@pytest.mark.timeout(900)
def test_engine_race(tmp_path: Path) -> None:
    """ThreadSanitizer: the bridge's lock-free reads of a transfer's completion flags
    (and of the head / error they announce) race with no engine write."""
    exe = tmp_path / "test_engine_race"
    flags = [f for f in CXXFLAGS if not f.startswith("-fsanitize")]
    sources = [CPP_TESTS / "test_engine_race.cc"] + [SRC / name for name in ENGINE_SOURCES]
    cmd = [
        "g++",
        *flags,
        "-fsanitize=thread",
        *map(str, sources),
        *_llhttp(tmp_path, "-fsanitize=thread"),
        "-o",
        str(exe),
        *pkg_config("libuv", "openssl", "libnghttp2"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    output = run([str(exe)], timeout=120)
    assert "ThreadSanitizer" not in output


LLHTTP_SRC = Path("/usr/share/llhttp")
LLHTTP_INCLUDE = Path("/usr/share/include/llhttp")


@pytest.mark.timeout(900)
def test_engine_lifecycle(tmp_path: Path) -> None:
    # The engine with its connection, HTTP/1.1 and TLS layers; llhttp's C sources
    # (Debian's node-llhttp, as meson.build uses them) compiled as C. The objects are
    # compiled in parallel: ASan builds of these files take a while.
    flags = pkg_config("libuv", "openssl", "libnghttp2")
    jobs = []
    # Without the C sources, the system's libllhttp (not built with the sanitizers).
    system_llhttp = [] if (LLHTTP_SRC / "llhttp.c").exists() else pkg_config("libllhttp")
    for name in () if system_llhttp else ("api.c", "http.c", "llhttp.c"):
        obj = tmp_path / (name + ".o")
        cmd = [
            "gcc", "-O1", "-g", "-w", "-DLLHTTP_STRICT_MODE=1", "-fsanitize=address,undefined",
            f"-I{LLHTTP_INCLUDE}", "-c", str(LLHTTP_SRC / name), "-o", str(obj),
        ]  # fmt: skip
        jobs.append((obj, cmd))
    sources = [CPP_TESTS / "test_engine_lifecycle.cc"] + [SRC / f for f in ENGINE_SOURCES]
    for src in sources:
        obj = tmp_path / (src.name + ".o")
        cmd = ["g++", *CXXFLAGS, f"-I{LLHTTP_INCLUDE}", *flags, "-c", str(src), "-o", str(obj)]
        jobs.append((obj, cmd))
    procs = [
        (
            cmd,
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV
            ),
        )
        for _, cmd in jobs
    ]
    for cmd, proc in procs:
        out = proc.communicate()[0]
        assert proc.returncode == 0, f"build failed: {shlex.join(cmd)}\n{out}"
    exe = tmp_path / "test_engine_lifecycle"
    cmd = [
        "g++", *CXXFLAGS, *(str(obj) for obj, _ in jobs), "-o", str(exe), "-ldl", "-pthread",
        *flags, *system_llhttp,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert proc.returncode == 0, f"link failed: {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
    out = run([str(exe)])
    assert "child exit status 0" in out


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))

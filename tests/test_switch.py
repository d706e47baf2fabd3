"""The supported switch: `httprs.install()`, `alias_httpx()`, `python -m httprs.run` and
the HTTPRS_INSTALL start-up hook route `import httpx` / `import httpx2` to httprs.

The switch lasts for the whole process, and this test process imports the real httpx for
the differential tests, so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import httprs

pytestmark = pytest.mark.httprs_only

REPO = Path(__file__).resolve().parent.parent


def run_py(code: str, *args: str, env: dict | None = None, cwd=None, check=True):
    full_env = {k: v for k, v in os.environ.items() if k != "HTTPRS_INSTALL"}
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, *args] if not code else [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_dir_lists_every_export_before_first_use():
    """`dir(httprs)` lists every name of `__all__`, the lazy `main` included, in a fresh
    process where nothing has touched `httprs.main` (and the CLI stays unimported)."""
    out = run_py(
        """
        import sys, httprs
        names = dir(httprs)
        print(sorted(set(httprs.__all__) - set(names)), "main" in names)
        print("httprs._main" in sys.modules, names == sorted(names))
        """
    )
    assert out.stdout.split("\n")[:2] == ["[] True", "False True"], out.stdout


def test_httprs_exports_the_union_of_httpx_and_httpx2():
    import httpx

    from httprs._alias import HTTPX2_ALL, HTTPX_ALL

    assert set(httprs.__all__) >= set(httpx.__all__)
    assert list(HTTPX_ALL) == list(httpx.__all__)
    # Derived from httprs.__all__ (listed once), they match both libraries' lists.
    httpx2 = pytest.importorskip("httpx2")
    assert "httprs" not in (httpx2.__file__ or "")
    assert set(HTTPX2_ALL) == set(httpx2.__all__)
    # Every httpx2 name is provided.
    assert sorted(set(HTTPX2_ALL) - set(httprs.__all__)) == []
    for name in httprs.__all__:
        assert hasattr(httprs, name), name


# Makes httprs find the httpx distribution given (or none) where it looks: the release it
# presents as follows it.
_FAKE_HTTPX_DIST = """
from httprs import _alias
_alias._installed_httpx = lambda: INSTALLED
"""

_PRESENTED = """
import httprs
httprs.install(["httpx"])
import httpx
from httpx.__version__ import __version__
print(httpx.__version__, __version__, httpx.Client().headers["user-agent"])
print(" ".join(httpx.__all__))
"""


@pytest.mark.parametrize(
    ("installed", "presented"),
    [
        ("0.29.0", "0.29.0"),
        ("0.30.2", "0.29.0"),
        (None, "0.29.0"),
        ("0.28.1", "0.28.1"),
        ("0.27.2", "0.28.1"),
    ],
)
def test_the_httpx_release_presented_follows_the_installed_one(installed, presented):
    """httprs presents as the httpx release installed beside it (0.28.1 for one before
    0.29: what pytest-httpx still pins), else as 0.29.0: its version, User-Agent and
    `__all__`, which lists FunctionAuth from 0.29.0 on."""
    import httpx  # the real httpx of the test environment (0.28.1)

    code = f"INSTALLED = {installed!r}\n" + _FAKE_HTTPX_DIST + _PRESENTED
    version_line, all_line = run_py(code).stdout.splitlines()
    assert version_line.split() == [presented, presented, f"python-httpx/{presented}"]
    expected = [n for n in httpx.__all__ if n != "FunctionAuth"]  # 0.28.1's list
    if presented == "0.29.0":  # httpx 0.29.0's list: 0.28.1's and FunctionAuth
        dunders = [n for n in expected if n.startswith("__")]
        rest = [n for n in expected if not n.startswith("__")] + ["FunctionAuth"]
        expected = dunders + sorted(rest, key=str.casefold)
    assert all_line.split() == expected


def test_install_routes_both_names_and_their_private_modules():
    out = run_py(
        """
        import logging, sys
        import httprs
        httprs.install()
        import httpx, httpx2
        from httpx._client import Client as C1, USE_CLIENT_DEFAULT, UseClientDefault
        from httpx2._transports.default import HTTPTransport
        import httpx._transports.default as d
        assert httpx.Client is httprs.Client is httpx2.Client is C1
        assert HTTPTransport is httprs.HTTPTransport and d.HTTPTransport is HTTPTransport
        assert sys.modules["httpx._client"] is sys.modules["httprs._client"]
        assert httpx._client is sys.modules["httprs._client"]
        assert httpx.__version__ == "0.28.1" and httpx.__title__ == "httpx"
        assert httpx2.__version__ == "2.17.0" and httpx2.__title__ == "httpx2"
        assert httpx is not httpx2 and httpx.__spec__.name == "httpx"
        assert "Origin" in httpx2.__all__ and "Origin" not in httpx.__all__
        assert "main" in httpx.__all__ and httpx.main is httprs.main
        # httpx2 is imported, so httprs presents as httpx2 (see test_primary_name).
        assert httprs._client.logger is logging.getLogger("httpx2")
        assert httpx.Client.__module__ == "httpx2" and httpx.Timeout.__module__ == "httpx2"
        assert httpx.ConnectError.__module__ == "httpx2"
        httprs.install()  # again: a no-op
        httprs.alias_httpx()  # httpx2's spelling: a no-op too, names already routed
        assert [f for f in sys.meta_path if type(f).__name__ == "_Finder"].__len__() == 1
        ns = {}
        exec("from httpx import *; from httpx2 import *", ns)
        assert ns["Client"] is httprs.Client and ns["EventSource"] is httprs.EventSource
        try:
            import httpx._nope
        except ModuleNotFoundError as exc:
            print("missing:", exc.name)
        print("ok")
        """
    )
    assert out.stdout.split() == ["missing:", "httpx._nope", "ok"], out.stderr


@pytest.mark.parametrize("switched", [True, False], ids=["httprs", "real"])
def test_import_hooks_keyed_on_private_modules_run_as_with_the_real_libraries(switched):
    """New Relic instruments httpx from a post-import hook on `httpx._client` (wrapt's
    `register_post_import_hook` works the same way): a finder ahead of the others wraps
    the loader of a watched module and, once it has run, looks the callbacks up by the
    module's `__name__`. The real packages import their private modules with themselves;
    under the switch the hooks never ran (the modules were mapped only when imported,
    and kept httprs's names), so New Relic saw no httpx request. With both names routed
    a module is the same under each, and takes the first: hooks for the second name do
    not run again on the one Client class (New Relic's would wrap `send` twice)."""
    out = run_py(
        f"""
        import importlib, importlib.abc, importlib.util, sys
        import httprs
        if {switched}:
            httprs.install()
        names = {{"httpx", "httpx._client", "httpx._transports.default", "httpx2._client",
                 "httpx2._models"}}
        watched = set(names)
        fired = []

        class Chained(importlib.abc.Loader):
            def __init__(self, loader):
                self.loader = loader
            def create_module(self, spec):
                return self.loader.create_module(spec)
            def exec_module(self, module):
                self.loader.exec_module(module)
                if module.__name__ in watched:  # each name's hooks run once (as wrapt's)
                    watched.discard(module.__name__)
                    fired.append(module.__name__)
                    if module.__name__.endswith("._client"):
                        module.Client.instrumented = True

        class HookFinder(importlib.abc.MetaPathFinder):
            busy = set()
            def find_spec(self, fullname, path=None, target=None):
                if fullname not in names or fullname in self.busy:
                    return None
                self.busy.add(fullname)
                try:
                    spec = importlib.util.find_spec(fullname)
                finally:
                    self.busy.discard(fullname)
                if spec is not None and spec.loader is not None:
                    spec.loader = Chained(spec.loader)
                return spec

        sys.meta_path.insert(0, HookFinder())
        import httpx
        print(sorted(fired))
        import httpx2
        print(sorted(fired))
        assert httpx.Client.instrumented and httpx2.Client.instrumented
        assert httpx._client.Client is httpx.Client
        if {switched}:
            assert httpx.Client is httprs.Client and httpx2._client is httprs._client
        """
    )
    first = "['httpx', 'httpx._client', 'httpx._transports.default']"
    both = (
        "['httpx', 'httpx._client', 'httpx._transports.default', 'httpx2._client', "
        "'httpx2._models']"
    )
    assert out.stdout.splitlines() == [first, first if switched else both], out.stderr


def test_each_name_has_its_librarys_codes():
    """httpx2 renamed four codes (RFC 9110) and warns about the old names; httpx 0.28.1
    did neither. Each name gives its library's `codes`, so httpx code routed beside
    httpx2 reads the old names without a warning (-W error here)."""
    out = run_py(
        """
        import pickle, warnings
        import httprs
        httprs.install()
        import httpx, httpx2
        from httpx2._status_codes import codes, _DEPRECATED_CODES, _CodesMeta
        from httpx._status_codes import codes as httpx_codes
        assert codes is httpx2.codes and httpx_codes is httpx.codes is httprs.codes
        assert httpx.codes is not httpx2.codes and type(httpx2.codes) is _CodesMeta
        assert httpx.codes.UNPROCESSABLE_ENTITY == 422  # no warning (-W error)
        assert httpx.codes(413).name == "REQUEST_ENTITY_TOO_LARGE"
        assert httpx2.codes(413).name == "CONTENT_TOO_LARGE"
        assert httpx2.Response(413).reason_phrase == "Content Too Large"
        assert "codes" in httpx2.__all__ and httpx2.codes.__module__ == "httpx2"
        for member in (httpx2.codes(413), httpx.codes(413)):
            assert pickle.loads(pickle.dumps(member)) is member
        try:
            httpx2.codes.REQUEST_URI_TOO_LONG
        except DeprecationWarning as exc:
            print(exc)
        """,
        env={"PYTHONWARNINGS": "error"},
    )
    assert (
        out.stdout.strip() == "'REQUEST_URI_TOO_LONG' is deprecated. Use 'URI_TOO_LONG' instead."
    )


def test_an_exception_class_made_of_both_names_of_one_class():
    """With both names routed, httpx.RequestError is httpx2.RequestError; pydantic-ai
    makes its errors of both names' classes (`type(name, (httpx2.RequestError,
    httpx.RequestError), ...)`, so handlers written for either name match): that named
    one base twice, a TypeError ("duplicate base class") that stopped pydantic-ai's
    import. The class derives from the base once, and handlers of both names catch it."""
    out = run_py(
        """
        import httprs
        httprs.install()
        import httpx, httpx2
        assert httpx.RequestError is httpx2.RequestError
        Both = type("Both", (httpx2.RequestError, httpx.RequestError), {})
        class Status(httpx2.HTTPStatusError, httpx.HTTPStatusError):
            pass
        assert Both.__bases__ == (httpx2.RequestError,)
        assert Status.__mro__[1] is httpx.HTTPStatusError
        try:
            with httpx2.Client() as client:
                client.get("http://127.0.0.1:1/")
        except httpx2.RequestError as error:
            converted = Both(str(error), request=error.request)
        try:
            raise converted
        except httpx.TransportError:
            raise AssertionError("a RequestError, no TransportError")
        except httpx.RequestError as error:
            print(type(error).__name__, error.request.url)
        """
    )
    assert out.stdout.split() == ["Both", "http://127.0.0.1:1/"]


def test_codes_pickle_after_alias_httpx_replaced_httpx():
    """httpx routed first, then `alias_httpx()` makes `httpx` httpx2's module: a member of
    httpx's codes obtained before still pickles (it names where it is defined)."""
    out = run_py(
        """
        import pickle
        import httprs
        httprs.install()
        import httpx
        member = httpx.codes(413)
        import httpx2
        httpx2.alias_httpx()
        assert pickle.loads(pickle.dumps(member)) is member
        assert pickle.loads(pickle.dumps(httpx2.codes(413))) is httpx2.codes(413)
        print("ok")
        """
    )
    assert out.stdout.split() == ["ok"], out.stderr


def test_websockets_imported_again_binds_its_new_classes():
    """The annotation names `httprs.websockets` binds (httprs/_hints.py) follow a second
    import of the package (a test suite purging it from sys.modules)."""
    out = run_py(
        """
        import sys, typing
        import httprs, httprs.websockets
        for name in [n for n in sys.modules if n.startswith("httprs.websockets")]:
            del sys.modules[name]
        import httprs.websockets as again
        hints = typing.get_type_hints(httprs.Client.websocket)
        assert typing.get_args(hints["return"])[0] is again.WebSocketSession, hints["return"]
        print("ok")
        """
    )
    assert out.stdout.split() == ["ok"], out.stderr


def test_install_refuses_after_the_real_module_was_imported():
    out = run_py(
        """
        import httpx, httprs
        try:
            httprs.install(["httpx"])
        except httprs._alias.AlreadyImportedError as exc:
            print(type(exc).__mro__[1].__name__, "|", exc)
        """
    )
    kind, message = out.stdout.split("|", 1)
    assert kind.strip() == "RuntimeError"
    assert "'httpx' was already imported" in message and "site-packages" in message
    # It names the package (its directory), not whichever submodule sys.modules lists first.
    import httpx as real_httpx

    where = message.split("(from ", 1)[1].split(")", 1)[0]
    assert where == os.path.dirname(real_httpx.__file__), message
    # The real httpx is untouched and the refused name is not routed.
    out = run_py(
        """
        import httpx, httprs
        try:
            httprs.install(["httpx"])
        except RuntimeError:
            pass
        import httpx as again
        print(again is httpx, hasattr(httpx, "__httprs__"), httprs._alias.installed())
        """
    )
    assert out.stdout.split() == ["True", "False", "()"]


def test_install_validates_names():
    with pytest.raises(ValueError, match="requests"):
        httprs.install(["requests"])
    with pytest.raises(ValueError):
        httprs.install([])


def test_alias_httpx_makes_httpx2_primary():
    out = run_py(
        """
        import logging, httprs
        httprs.alias_httpx()
        import httpx, httpx2
        print(httprs._alias.installed(), httpx.Response is httpx2.Response,
              httprs._client.logger.name, httpx2.Client.__module__)
        """
    )
    assert out.stdout.split() == ["('httpx2',", "'httpx')", "True", "httpx2", "httpx2"]


def test_alias_httpx_makes_httpx_the_httpx2_module_as_httpx2_does():
    """httpx2's `alias_httpx()`: `import httpx` gives the very `httpx2` module, and
    `httpx.<sub>` the very `httpx2.<sub>` module; idempotent; httpx2's error text when the
    real httpx came first; an unknown submodule is not found."""
    out = run_py(
        """
        import importlib.util, sys, types, httprs
        from httprs._alias import _AliasFinder
        httprs.install(["httpx"])
        import httpx as routed_first  # an httpx already routed to httprs is replaced
        httprs.alias_httpx()
        httprs.alias_httpx()
        import httpx, httpx2
        from httpx._exceptions import HTTPError
        print(httpx is httpx2, routed_first is httpx, HTTPError is httpx2.HTTPError,
              sys.modules["httpx._exceptions"] is sys.modules["httpx2._exceptions"],
              sum(isinstance(f, _AliasFinder) for f in sys.meta_path),
              importlib.util.find_spec("httpx._does_not_exist"),
              _AliasFinder().find_spec("json"))
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AliasFinder)]
        sys.modules["httpx"] = types.ModuleType("httpx")
        try:
            httprs.alias_httpx()
        except RuntimeError as exc:
            print("|", exc)
        """
    )
    result, message = out.stdout.split("|")
    # Two finders: httpx's, and httpcore's (httpcore2 is installed here).
    assert result.split() == ["True", "False", "True", "True", "2", "None", "None"]
    assert message.strip().startswith("httpx was already imported; call `alias_httpx()`")


def test_alias_httpx_makes_httpcore_the_httpcore2_module_as_httpx2_does():
    """httpx2's `alias_httpx()` also gives `import httpcore` the very `httpcore2` (respx
    then patches httpcore2's classes, which the transports notice), and refuses once
    another httpcore was imported, with httpx2's message."""
    out = run_py(
        """
        import sys, types, httprs, httpcore2
        httprs.alias_httpx()
        import httpcore
        from httpcore._exceptions import ConnectError
        print(httpcore is httpcore2, ConnectError is httpcore2.ConnectError,
              sys.modules["httpcore._exceptions"] is sys.modules["httpcore2._exceptions"])
        for name in [n for n in sys.modules if n.partition(".")[0] in ("httpx", "httpcore")]:
            del sys.modules[name]
        sys.modules["httpcore"] = types.ModuleType("httpcore")
        try:
            httprs.alias_httpx()
        except RuntimeError as exc:
            print("|", exc)
        """
    )
    result, message = out.stdout.split("|")
    assert result.split() == ["True", "True", "True"]
    assert message.strip() == (
        "httpcore was already imported; call `alias_httpx()` before any `import httpcore`."
    )


def test_after_alias_httpx_the_transports_still_send_themselves_and_raise_httpcores_errors():
    """With httpcore aliased to httpcore2, the transports still take httpcore2's own
    pool method for unpatched (a respx mock came and went: the next request is sent by
    httprs, not through an httpcore2 pool), and a raw stream's errors are one class with
    httpcore's (httpcore2's) of that name, not a duplicate base."""
    out = run_py(
        """
        import socket, threading, httprs
        httprs.alias_httpx()
        import httpcore, respx

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = "http://127.0.0.1:%d/" % listener.getsockname()[1]

        def serve():
            while True:
                conn, _ = listener.accept()
                data = b""
                while b"\\r\\n\\r\\n" not in data:
                    data += conn.recv(1000)
                if data.startswith(b"CONNECT"):
                    conn.sendall(b"HTTP/1.1 200 OK\\r\\n\\r\\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        with httprs.Client() as client:
            with respx.mock:
                respx.get("http://mocked.invalid/").respond(200, text="mocked")
                assert client.get("http://mocked.invalid/").text == "mocked"
            r = client.get(url)
            print(r.text, type(r.extensions["network_stream"]).__module__)
            with client.stream("CONNECT", url) as r:
                stream = r.extensions["network_stream"]
                stream.close()
                try:
                    stream.read(10)
                except httpcore.ReadError as e:
                    print(isinstance(e, httprs.ReadError))
        """
    )
    assert out.stdout.split() == ["ok", "httprs._core", "True"]


def test_alias_httpx_leaves_httpcore_alone_without_httpcore2():
    """httprs needs neither httpcore: without httpcore2 installed, `alias_httpx()` still
    works (httpx2's would fail to import httpcore2) and `httpcore` stays the real one."""
    out = run_py(
        """
        import sys, httprs, httprs._alias as alias
        alias._optional_module = lambda name: None  # as if httpcore2 were not installed
        httprs.alias_httpx()
        import httpx, httpx2, httpcore
        print(httpx is httpx2, httpcore.__name__, "httpcore2" in sys.modules)
        """
    )
    assert out.stdout.split() == ["True", "httpcore", "False"]


def test_httpx2_main_is_deprecated_like_httpx2():
    out = run_py(
        """
        import warnings, httprs
        httprs.install(["httpx2"])
        import httpx2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            main = httpx2.main
        print(main is httprs.main, caught[0].category.__name__, "main" in httpx2.__all__)
        """
    )
    assert out.stdout.split() == ["True", "DeprecationWarning", "False"]


def test_messages_name_the_library_httprs_presents_as():
    """httpx2's own messages say `httpx2.Timeout` / `httpx2.URL` where httpx 0.28.1's say
    `httpx.`: httprs's follow the name it presents as."""
    out = run_py(
        """
        import httprs

        def messages(module):
            found = []
            try:
                module.Timeout(connect=1.0)
            except ValueError as exc:
                found.append(str(exc).split(" must")[0])
            try:
                module.URL(1)
            except TypeError as exc:
                found.append(str(exc).split(",")[0].rsplit(" ", 1)[1])
            return found

        print(*messages(httprs))
        httprs.install(["httpx"])
        import httpx
        print(*messages(httpx))
        httprs.install(["httpx2"])
        import httpx2
        print(*messages(httpx2), *messages(httpx))
        """
    )
    assert out.stdout.splitlines() == [
        "httpx.Timeout httpx.URL",
        "httpx.Timeout httpx.URL",
        "httpx2.Timeout httpx2.URL httpx2.Timeout httpx2.URL",
    ]


_ACCEPT_ENCODING_OF = """
    import sys
    for name in {blocked!r}:
        sys.modules[name] = None  # as if not installed: `import` and find_spec fail
    if {switched!r}:
        import httprs
        {patch}
        httprs.install([{library!r}])
    module = __import__({library!r})
    print(module.Client().headers["accept-encoding"], module.AsyncClient().headers["accept-encoding"])
"""


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
@pytest.mark.parametrize(
    "blocked", [(), ("brotli", "brotlicffi"), ("zstandard", "backports.zstd")], ids=str
)
def test_accept_encoding_is_the_presented_librarys(library, blocked):
    """httpx and httpx2 ask for br and zstd only when their optional decoder packages
    import (starlette's suite compares the header httpx2 sends without brotli); httprs
    decodes all four natively and, presented as one of them, asks for what it would."""
    pytest.importorskip(library)

    def accept_encoding(switched: bool, patch: str = "") -> str:
        code = _ACCEPT_ENCODING_OF.format(
            blocked=blocked, switched=switched, library=library, patch=patch
        )
        return run_py(code).stdout.strip()

    real = accept_encoding(switched=False)
    assert real.startswith("gzip, deflate")
    assert accept_encoding(switched=True) == real
    patched = accept_encoding(True, patch='httprs._client.ACCEPT_ENCODING = "identity"')
    assert patched == "identity identity"  # a value the program set is kept


_USER_AGENT_OF = """
    if {switched!r}:
        import httprs
        {patch}
        httprs.install([{library!r}])
    module = __import__({library!r})
    sync, async_ = module.Client(), module.AsyncClient()
    request = sync.build_request("GET", "http://127.0.0.1/")
    own = module.Client(headers={{"User-Agent": "mine/1"}}).build_request("GET", "http://127.0.0.1/")
    print(sync.headers["user-agent"], async_.headers["user-agent"], request.headers["user-agent"])
    print(own.headers["user-agent"], module._client.USER_AGENT)
"""


@pytest.mark.parametrize("library", ["httpx", "httpx2"])
def test_user_agent_is_the_presented_librarys(library):
    """Presented as httpx or httpx2, httprs sends that library's default User-Agent
    (pytest-httpx's and the libraries' own suites compare it); a header the user gives
    wins, and a value the program patched into `_client.USER_AGENT` is kept."""
    pytest.importorskip(library)

    def user_agent(switched: bool, patch: str = "") -> list[str]:
        code = _USER_AGENT_OF.format(switched=switched, library=library, patch=patch)
        return run_py(code).stdout.splitlines()

    real = user_agent(switched=False)
    version = {"httpx": "0.28.1", "httpx2": "2.17.0"}[library]
    assert real[0] == " ".join([f"python-{library}/{version}"] * 3)
    assert user_agent(switched=True) == real
    patched = user_agent(True, patch='httprs._client.USER_AGENT = "patched/2"')
    assert patched == ["patched/2 patched/2 patched/2", "mine/1 patched/2"]


def test_user_agent_follows_the_presented_name():
    """httprs presents as httpx2 once `import httpx2` has run (see `install()`): the
    User-Agent follows; one patched meanwhile is kept; plain httprs keeps its own."""
    out = run_py(
        """
        import httprs
        from httprs import _client
        own = httprs.Client().headers["user-agent"]
        print(own == "python-httprs/" + httprs.__version__)
        httprs.install(["httpx", "httpx2"])
        print(httprs.Client().headers["user-agent"])
        import httpx
        print(httpx.AsyncClient().headers["user-agent"])
        import httpx2
        print(httpx.Client().headers["user-agent"], _client.USER_AGENT)
        """
    )
    assert out.stdout.splitlines() == [
        "True",
        "python-httprs/" + httprs.__version__,  # both routed, neither imported: undecided
        "python-httpx/0.28.1",
        "python-httpx2/2.17.0 python-httpx2/2.17.0",
    ]
    out = run_py(
        """
        import httprs
        httprs.install(["httpx", "httpx2"])
        import httpx
        httpx._client.USER_AGENT = "patched/3"
        import httpx2
        print(httpx2.Client().headers["user-agent"], httpx2.Client().headers["accept-encoding"])
        """
    )
    assert out.stdout.split()[0] == "patched/3"
    assert "python-httprs" not in out.stdout


def test_logging_goes_to_the_primary_name(server):
    out = run_py(
        f"""
        import logging, httprs
        httprs.install(["httpx2", "httpx"])
        import httpx, httpx2  # both imported: httprs presents as httpx2
        records = []
        class H(logging.Handler):
            def emit(self, record):
                records.append((record.name, record.getMessage()))
        logging.getLogger("httpx2").addHandler(H())
        logging.getLogger("httpx2").setLevel(logging.INFO)
        httpx.get("{server.url}/")
        print(records)
        """
    )
    assert "('httpx2', 'HTTP Request: GET" in out.stdout and "200 OK" in out.stdout


SCRIPT = """
import sys
import httpx, httpx2
print(httpx.__version__, httpx2.__version__, httpx.Client.__module__, sys.argv[1:], __name__)
"""


def test_python_m_httprs_run_script_and_module(tmp_path):
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    out = run_py("", "-m", "httprs.run", str(script), "a", "b")
    assert out.stdout.split() == ["0.28.1", "2.17.0", "httpx2", "['a',", "'b']", "__main__"]
    (tmp_path / "appmod.py").write_text(SCRIPT)
    out = run_py("", "-m", "httprs.run", "-m", "appmod", "x", cwd=tmp_path)
    assert out.stdout.split() == ["0.28.1", "2.17.0", "httpx2", "['x']", "__main__"]
    # HTTPRS_INSTALL picks the names.
    out = run_py("", "-m", "httprs.run", str(script), env={"HTTPRS_INSTALL": "httpx"}, check=False)
    assert "No module named 'httpx2'" in out.stderr or out.stdout.split()[:1] == ["0.28.1"]
    out = run_py("", "-m", "httprs.run", check=False)
    assert out.returncode == 2 and "usage" in out.stderr


def _site_dir_with_hook(tmp_path: Path) -> Path:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    shutil.copyfile(REPO / "httprs-install.pth", site_dir / "httprs-install.pth")
    return site_dir


HOOK = """
import site, sys
site.addsitedir(sys.argv[1])  # processes httprs-install.pth as start-up would
import httpx
print(httpx.__version__, getattr(httpx, "__httprs__", False))
"""


def test_pth_hook_switches_only_when_the_variable_is_set(tmp_path):
    site_dir = _site_dir_with_hook(tmp_path)
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    on = run_py("", str(script), str(site_dir), env={"HTTPRS_INSTALL": "1"})
    assert on.stdout.split() == ["0.28.1", "True"]
    off = run_py("", str(script), str(site_dir), env={"HTTPRS_INSTALL": "0"})
    assert off.stdout.split() == ["0.28.1", "False"]  # the real httpx 0.28.1
    assert "httprs" not in off.stdout
    # A name httprs cannot stand in for is reported, and start-up goes on.
    bad = run_py("", str(script), str(site_dir), env={"HTTPRS_INSTALL": "requests"})
    assert "HTTPRS_INSTALL='requests' not applied" in bad.stderr
    assert bad.stdout.split() == ["0.28.1", "False"]


def test_pth_file_is_installed_by_meson():
    text = (REPO / "meson.build").read_text()
    assert "py.install_sources(['httprs-install.pth'])" in text
    line = (REPO / "httprs-install.pth").read_text().strip()
    assert line.startswith("import ") and "\n" not in line


def test_pickles_made_under_the_switch_load_under_it():
    out = run_py(
        """
        import pickle, httprs
        httprs.install()
        import httpx
        error = httpx.ConnectError("refused")
        timeout = httpx.Timeout(3.0, connect=1.0)
        data = pickle.dumps((error, timeout, httpx.codes.OK))
        assert b"httpx" in data and b"httprs._exceptions" not in data
        e2, t2, code = pickle.loads(data)
        assert type(e2) is httprs.ConnectError and str(e2) == "refused"
        assert t2 == timeout and code is httprs.codes.OK
        print("ok")
        """
    )
    assert out.stdout.split() == ["ok"]


def test_plain_install_presents_as_what_the_program_imports():
    """The README's `httprs.install()` in an httpx-only program presents as httpx (logger,
    `__module__`); importing httpx2 too makes it httpx2, in either order; before either
    import nothing is renamed."""
    code = """
        import logging, httprs
        from httprs import _alias
        httprs.install()
        def state():
            return (_alias.primary(), httprs.Client.__module__, httprs._client.logger.name,
                    httprs.Response.__module__)
        print(state())
        import {first}
        print(state())
        import {second}
        print(state())
    """
    httpx_first = run_py(code.format(first="httpx", second="httpx2")).stdout.splitlines()
    assert httpx_first == [
        "(None, 'httprs._client', 'httpx', 'httprs._models')",
        "('httpx', 'httpx', 'httpx', 'httpx')",
        "('httpx2', 'httpx2', 'httpx2', 'httpx2')",
    ]
    httpx2_first = run_py(code.format(first="httpx2", second="httpx")).stdout.splitlines()
    assert httpx2_first[1:] == ["('httpx2', 'httpx2', 'httpx2', 'httpx2')"] * 2
    # An httpx-only program logs on httpx's logger, as the README promises.
    out = run_py(
        """
        import logging, httprs
        httprs.install()
        import httpx
        from httpx._client import Client
        print(logging.getLogger("httpx") is httprs._client.logger, Client.__module__)
        """
    )
    assert out.stdout.split() == ["True", "httpx"]


def test_primary_name():
    """httprs presents as httpx2 once httpx2 is imported: SDKs built on httpx2 (anthropic
    2, openai 3) refuse objects any of whose classes has the module `httpx`."""
    out = run_py(
        """
        import logging, httprs
        from httprs import _alias
        httprs.install(["httpx"])
        import httpx
        first = (_alias.primary(), httpx.Client.__module__, httprs._client.logger.name)
        httprs.install(["httpx2"])  # routing httpx2 later, then importing it, switches
        import httpx2
        second = (_alias.primary(), httpx.Client.__module__, httprs._client.logger.name)
        # anthropic 2.x's check on a client passed as http_client:
        rejected = [c for c in type(httpx2.Client()).__mro__
                    if (getattr(c, "__module__", "") or "").partition(".")[0] == "httpx"]
        httprs.install(["httpx"], primary="httpx")  # explicit choice wins
        third = (_alias.primary(), httpx.Client.__module__, httprs._client.logger.name)
        print(first, second, rejected, third)
        """
    )
    assert out.stdout.split("\n")[0] == (
        "('httpx', 'httpx', 'httpx') ('httpx2', 'httpx2', 'httpx2') [] ('httpx', 'httpx', 'httpx')"
    )
    with pytest.raises(ValueError, match="primary"):
        httprs.install(["httpx"], primary="httpx2")


def test_the_installed_httpx_is_found_by_its_metadata_directory(tmp_path, monkeypatch):
    """The first httpx metadata directory on sys.path names the installed release (a
    wheel's .dist-info, an egg's .egg-info); none, None."""
    from httprs import _alias

    empty, wheel, egg = (tmp_path / n for n in ("empty", "wheel", "egg"))
    for d in (empty, wheel, egg):
        d.mkdir()
    (empty / "httpx_ws-0.9.0.dist-info").mkdir()  # other httpx-named projects do not count
    (empty / "httpx2-2.17.0.dist-info").mkdir()
    (wheel / "httpx-0.29.0.dist-info").mkdir()
    (egg / "httpx-0.27.2-py3.11.egg-info").mkdir()
    monkeypatch.setattr(sys, "path", [str(tmp_path / "missing"), str(empty)])
    assert _alias._installed_httpx() is None
    monkeypatch.setattr(sys, "path", [str(empty), str(wheel), str(egg)])
    assert _alias._installed_httpx() == "0.29.0"
    monkeypatch.setattr(sys, "path", [str(egg), str(wheel)])
    assert _alias._installed_httpx() == "0.27.2"
    # the test environment's own: the httpx 0.28.1 that pytest-httpx pins
    monkeypatch.undo()
    assert _alias._installed_httpx() == "0.28.1"
    assert _alias.httpx_version() == "0.28.1"


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (("httpx", "httpx2"), "httpx httpx2"),
        (("httpx",), "httpx -"),
        (("httpx2",), "- httpx2"),
        ((), "httpx httpx2"),
    ],
)
def test_default_names_stand_in_only_for_what_is_installed(installed, expected):
    """`install()` without names (so HTTPRS_INSTALL=1 and `python -m httprs.run`) routes
    both names, but an import of one whose real package is not installed while the
    other's is fails as it would without httprs: a library that tries `import httpx2`
    before httpx (starlette's TestClient, vcrpy, opentelemetry) falls back to httpx, and
    the process presents as httpx (session 33). Decided at the import, when sys.path and
    editable-install finders are complete (not at start-up, in the `.pth` hook)."""
    code = f"""
        import sys
        import httprs._alias as alias
        alias._real_package_exists = lambda name: name in {installed!r}
        import httprs
        httprs.install()

        class NotInstalled:  # behind httprs's finder: what this venv has is hidden
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name in ("httpx", "httpx2") and name not in {installed!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}")

        sys.meta_path.insert(1, NotInstalled)
        found = []
        for name in ("httpx", "httpx2"):
            try:
                module = __import__(name)
            except ModuleNotFoundError:
                found.append("-")
            else:
                assert module.Client is httprs.Client
                found.append(name)
        print(*found)
    """
    assert run_py(code).stdout.strip() == expected


def test_real_packages_are_found_past_the_switch():
    code = """
        import httprs
        httprs.install()
        from httprs._alias import _real_package_exists
        print(_real_package_exists("httpx"), _real_package_exists("httpx2"),
              _real_package_exists("httprs_no_such_package"))
    """
    assert run_py(code).stdout.split() == ["True", "True", "False"]

"""Where httprs's warnings are attributed: where httpx's are.

Python's default filters show a DeprecationWarning only when it is attributed to
`__main__`, and `module=` filters match the module it is attributed to, so the line a
warning names decides who sees it. httpx names the line that called `Client.request()`
itself for per-request cookies, and a line inside httpx for the others (a request made
through `get()`, `data=<bytes>`, `verify=<str>`, `URL.raw`).
"""

from __future__ import annotations

import asyncio
import os
import warnings

import certifi
import httpx
import pytest

import httprs

HERE = os.path.abspath(__file__)


def _where(lib, action) -> str:
    """'caller' when the warning names this file, 'library' when a file of `lib`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    assert len(caught) == 1, [str(w.message) for w in caught]
    filename = os.path.abspath(caught[0].filename)
    if filename == HERE:
        return "caller"
    package = os.path.dirname(os.path.abspath(lib.__file__))
    assert filename.startswith(package + os.sep), filename
    return "library"


def _sync_cases(lib):
    client = lib.Client(transport=lib.MockTransport(lambda request: lib.Response(200)))
    url = "http://example.org/"
    return client, {
        "request(cookies=)": ("caller", lambda: client.request("GET", url, cookies={"a": "1"})),
        "get(cookies=)": ("library", lambda: client.get(url, cookies={"a": "1"})),
        "post(data=bytes)": ("library", lambda: client.post(url, data=b"raw")),
        "Request(data=str)": ("library", lambda: lib.Request("POST", url, data="raw")),
        "Client(verify=str)": ("library", lambda: lib.Client(verify=certifi.where()).close()),
        "create_ssl_context(verify=str)": (
            "library",
            lambda: lib.create_ssl_context(verify=certifi.where()),
        ),
        "URL.raw": ("library", lambda: lib.URL(url).raw),
    }


@pytest.mark.parametrize("lib", [httpx, httprs], ids=["httpx", "httprs"])
def test_sync_warnings_attributed_as_httpx(lib):
    client, cases = _sync_cases(lib)
    with client:
        found = {name: _where(lib, action) for name, (_, action) in cases.items()}
    assert found == {name: expected for name, (expected, _) in cases.items()}


@pytest.mark.parametrize("lib", [httpx, httprs], ids=["httpx", "httprs"])
def test_async_request_cookies_warning_attributed_as_httpx(lib):
    url = "http://example.org/"

    async def ok(request):
        return lib.Response(200)

    async def main():
        async with lib.AsyncClient(transport=lib.MockTransport(ok)) as client:
            found = []
            for call, expected in (
                (lambda: client.request("GET", url, cookies={"a": "1"}), "caller"),
                (lambda: client.get(url, cookies={"a": "1"}), "library"),
            ):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    await call()
                assert len(caught) == 1
                where = "caller" if os.path.abspath(caught[0].filename) == HERE else "library"
                found.append((where, expected))
            return found

    assert all(where == expected for where, expected in asyncio.run(main()))


MODULES = ("_client", "_models", "_config", "_urls", "_content")


def _filtered_by(lib_name, action) -> list[str]:
    """The `<name>.<module>` filters (matched exactly, as pytest's `-W ...:module`)
    that silence the warning `action` raises."""
    silenced = []
    for module in MODULES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", module=rf"{lib_name}\.{module}\Z")
            action()
        if not caught:
            silenced.append(module)
    return silenced


@pytest.mark.parametrize("presented", ["httpx", "httpx2"])
def test_module_filters_written_for_the_library_match(monkeypatch, presented):
    """A warning from inside the library is attributed to the module of the presented
    name that httpx's comes from, so `module=` filters (pytest's
    `ignore::DeprecationWarning:httpx._models`) written for it silence httprs's too."""
    import importlib

    from httprs import _alias

    real = importlib.import_module(presented)
    monkeypatch.setitem(_alias._state, "primary", presented)
    theirs, ours = _sync_cases(real)[1], _sync_cases(httprs)[1]
    found = {name: _filtered_by(presented, action) for name, (_, action) in ours.items()}
    expected = {name: _filtered_by(presented, action) for name, (_, action) in theirs.items()}
    assert found == expected
    assert found["post(data=bytes)"] == ["_models"] and found["get(cookies=)"] == ["_client"]


def test_url_raw_is_httpx2s_deprecation_at_the_caller(presented_as_httpx2):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        httprs.URL("http://example.org/").raw  # noqa: B018
    assert [w.category for w in caught] == [httprs.HTTPXDeprecationWarning]
    assert os.path.abspath(caught[0].filename) == HERE

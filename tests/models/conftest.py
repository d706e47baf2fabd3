import functools
import importlib

import pytest


@functools.cache
def _load(name):
    """Return a namespace with the data-model names from httprs' submodules or httpx."""
    if name == "httpx":
        return importlib.import_module("httpx")

    import types

    ns = types.SimpleNamespace()
    for sub in (
        "_exceptions",
        "_status_codes",
        "_config",
        "_urls",
        "_models",
        "_content",
        "_decoders",
    ):
        try:
            mod = importlib.import_module(f"httprs.{sub}")
        except ImportError:
            continue
        for key, value in vars(mod).items():
            if not key.startswith("__"):
                setattr(ns, key, value)
    return ns


@pytest.fixture(params=["httpx", "httprs"])
def hx(request):
    """The module under test: each differential test runs for httpx and httprs."""
    return _load(request.param)


@pytest.fixture
def rs():
    return _load("httprs")

"""Atheris target: URL parsing in the Cython layer (httprs/_urls.pyx), differential
against httpx 0.28.1's pure-Python parser (instrumented, so its branches guide the
fuzzer).

The input is a URL string (and a second one joined onto it). For every input,
httprs and httpx must agree: both raise httpx's exception class of the same name
(InvalidURL, TypeError, ...) or both give a URL with the same components, str(),
raw_path, host/port, and the same result of join(). Any other exception, or any
disagreement, is a finding.

    python tests/fuzz/fuzz_url.py [libFuzzer args] CORPUS_DIR
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["httpx"]):
    import httpx

import httprs


def fields(url) -> tuple:
    return (
        str(url),
        url.scheme,
        url.raw_scheme,
        url.userinfo,
        url.username,
        url.password,
        url.host,
        url.raw_host,
        url.port,
        url.raw_path,
        url.path,
        url.query,
        url.fragment,
        url.is_absolute_url,
        url.is_relative_url,
    )


def outcome(module, text: str, other: str):
    try:
        url = module.URL(text)
        got = fields(url)
    except Exception as exc:  # noqa: BLE001 - compared by class name
        return ("raise", type(exc).__name__)
    try:
        joined = str(url.join(other))
    except Exception as exc:  # noqa: BLE001
        joined = ("raise", type(exc).__name__)
    return ("ok", got, joined)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 200))
    other = fdp.ConsumeUnicodeNoSurrogates(64)
    expected = outcome(httpx, text, other)
    got = outcome(httprs, text, other)
    if got != expected:
        raise AssertionError(f"URL({text!r}) join {other!r}:\n httpx:  {expected}\n httprs: {got}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

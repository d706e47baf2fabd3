"""Atheris target: Response.json()'s direct decoder (httprs/_json_decode.pxi),
differential against json.loads, the standard library's decoder.

The input is a response body. For every input, `.json()` and json.loads must agree: the
same value, type for type (key order, int/float/bool, float reprs, NaN), or the same
exception class and message; and the decoder on its own never returns a value where
json.loads raises. Any disagreement is a finding.

The compiled decoder is not instrumented. What guides the fuzzer is the coverage of
json's pure-Python scanner (py_make_scanner, py_scanstring, JSONObject, JSONArray), which
follows the same grammar branch for branch and is run over each input for that alone:
inputs reaching new escapes, number forms and nesting are kept. The JSON dictionary
(fuzz_json.dict) helps it there.

    python tests/fuzz/fuzz_json.py [libFuzzer args] CORPUS_DIR
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import sys
from pathlib import Path

import atheris

import httprs
from httprs import _models

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from json_outcome import canon, outcome  # noqa: E402 - tests/ is put on the path first

for _function in (
    json.decoder.py_scanstring,
    json.decoder.JSONObject,
    json.decoder.JSONArray,
    json.scanner.py_make_scanner,
):
    atheris.instrument_func(_function)
# A decoder running only the (instrumented) Python scanner: the coverage signal.
_guide = json.decoder.JSONDecoder()
_guide.parse_string = json.decoder.py_scanstring
_guide.scan_once = json.scanner.py_make_scanner(_guide)


def test_one_input(data: bytes) -> None:
    try:
        _guide.decode(data.decode("utf-8", "surrogatepass"))
    except Exception:  # noqa: BLE001, S110 - run for its coverage only
        pass
    expected = outcome(json.loads, data)
    got = outcome(lambda body: httprs.Response(200, content=body).json(), data)
    if got != expected:
        raise AssertionError(f".json() of {data!r}:\n json:   {expected}\n httprs: {got}")
    direct = _models._json_decode_direct(data)
    if direct is not _models._JSON_GAVE_UP and expected != ("ok", canon(direct)):
        raise AssertionError(f"direct decoder of {data!r}: {canon(direct)}, json: {expected}")


def main() -> None:
    if not _models._JSON_DECODE_DIRECT:
        sys.exit("fuzz_json: the direct decoder is off on this interpreter")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

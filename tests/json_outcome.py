"""What a JSON decoder did with a body, in a form two decoders can be compared by:
the value, type for type, or the exception. Shared by tests/models/test_json.py and
the fuzz_json target."""

from __future__ import annotations

import json

CONSTANTS = (json.decoder.NaN, json.decoder.PosInf, json.decoder.NegInf)


def canon(value) -> list:
    """A comparable picture of a decoded value, built without recursion (documents nest
    deeper than the recursion limit): exact types, order and sizes, float reprs, and
    whether a float is json's own NaN/infinity object."""
    out: list = []
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            out.append(("dict", len(item)))
            for key, val in reversed(list(item.items())):
                stack += (val, key)
        elif kind is list:
            out.append(("list", len(item)))
            stack += reversed(item)
        elif kind is float:
            out.append(("float", repr(item), any(item is c for c in CONSTANTS)))
        else:
            out.append((kind.__name__, item))
    return out


def outcome(decode, body: bytes) -> tuple:
    """("ok", canon(value)), or ("raise", class, message, position) for an error."""
    try:
        value = decode(body)
    except Exception as exc:  # noqa: BLE001 - the class and message are compared
        return ("raise", type(exc), str(exc), getattr(exc, "pos", None))
    return ("ok", canon(value))

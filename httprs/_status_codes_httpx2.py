"""`httpx2._status_codes` through the switch: httpx2's `codes` (RFC 9110's names and
phrases for 413, 414, 416 and 422; the old names warn) and its private names. httprs's
own `httprs.codes`, and `httpx.codes` through the switch, are httpx 0.28.1's."""

from httprs._status_codes import _DEPRECATED_CODES as _DEPRECATED_CODES
from httprs._status_codes import _CodesMeta as _CodesMeta
from httprs._status_codes import httpx2_codes as codes

__all__ = ["codes"]  # (the private names are importable, not exported, as in httpx2)

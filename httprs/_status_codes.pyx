# cython: language_level=3, annotation_typing=False
"""HTTP status codes and reason phrases: `codes` as httpx 0.28.1's, and httpx2's (2.10+:
RFC 9110's names and phrases for 413, 414, 416 and 422, the old names deprecated), which
the switch gives as `httpx2.codes`. Two classes, as the two libraries have: code written
for httpx sees httpx's names and no warnings, whichever other name is routed beside it."""

import sys
import warnings
from enum import IntEnum

__all__ = ["codes"]


class _Codes(IntEnum):
    """What both `codes` classes share (an enum without members can be extended)."""

    def __new__(cls, value, phrase=""):
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.phrase = phrase
        return obj

    if sys.version_info < (3, 10):
        # Cython makes anything bound to __new__ in a class body a staticmethod, which
        # Python 3.9's enum calls directly (callable only from 3.10): the function itself,
        # put in the class namespace past Cython's name rule.
        locals()["__new__"] = locals()["__new__"].__func__

    def __str__(self):
        return str(self.value)

    @classmethod
    def get_reason_phrase(cls, value: int) -> str:
        try:
            return cls(value).phrase
        except ValueError:
            return ""

    @classmethod
    def is_informational(cls, value: int) -> bool:
        """Returns `True` for 1xx status codes, `False` otherwise."""
        return 100 <= value <= 199

    @classmethod
    def is_success(cls, value: int) -> bool:
        """Returns `True` for 2xx status codes, `False` otherwise."""
        return 200 <= value <= 299

    @classmethod
    def is_redirect(cls, value: int) -> bool:
        """Returns `True` for 3xx status codes, `False` otherwise."""
        return 300 <= value <= 399

    @classmethod
    def is_client_error(cls, value: int) -> bool:
        """Returns `True` for 4xx status codes, `False` otherwise."""
        return 400 <= value <= 499

    @classmethod
    def is_server_error(cls, value: int) -> bool:
        """Returns `True` for 5xx status codes, `False` otherwise."""
        return 500 <= value <= 599

    @classmethod
    def is_error(cls, value: int) -> bool:
        """Returns `True` for 4xx or 5xx status codes, `False` otherwise."""
        return 400 <= value <= 599


class codes(_Codes):
    """HTTP status codes and reason phrases (RFC 7231, 6585, 3229, 4918, 5842,
    7238, 2295, 2774, 7540, 2324, 7725, 8297, 8470)."""

    CONTINUE = 100, "Continue"
    SWITCHING_PROTOCOLS = 101, "Switching Protocols"
    PROCESSING = 102, "Processing"
    EARLY_HINTS = 103, "Early Hints"

    OK = 200, "OK"
    CREATED = 201, "Created"
    ACCEPTED = 202, "Accepted"
    NON_AUTHORITATIVE_INFORMATION = 203, "Non-Authoritative Information"
    NO_CONTENT = 204, "No Content"
    RESET_CONTENT = 205, "Reset Content"
    PARTIAL_CONTENT = 206, "Partial Content"
    MULTI_STATUS = 207, "Multi-Status"
    ALREADY_REPORTED = 208, "Already Reported"
    IM_USED = 226, "IM Used"

    MULTIPLE_CHOICES = 300, "Multiple Choices"
    MOVED_PERMANENTLY = 301, "Moved Permanently"
    FOUND = 302, "Found"
    SEE_OTHER = 303, "See Other"
    NOT_MODIFIED = 304, "Not Modified"
    USE_PROXY = 305, "Use Proxy"
    TEMPORARY_REDIRECT = 307, "Temporary Redirect"
    PERMANENT_REDIRECT = 308, "Permanent Redirect"

    BAD_REQUEST = 400, "Bad Request"
    UNAUTHORIZED = 401, "Unauthorized"
    PAYMENT_REQUIRED = 402, "Payment Required"
    FORBIDDEN = 403, "Forbidden"
    NOT_FOUND = 404, "Not Found"
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed"
    NOT_ACCEPTABLE = 406, "Not Acceptable"
    PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required"
    REQUEST_TIMEOUT = 408, "Request Timeout"
    CONFLICT = 409, "Conflict"
    GONE = 410, "Gone"
    LENGTH_REQUIRED = 411, "Length Required"
    PRECONDITION_FAILED = 412, "Precondition Failed"
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large"
    REQUEST_URI_TOO_LONG = 414, "Request-URI Too Long"
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type"
    REQUESTED_RANGE_NOT_SATISFIABLE = 416, "Requested Range Not Satisfiable"
    EXPECTATION_FAILED = 417, "Expectation Failed"
    IM_A_TEAPOT = 418, "I'm a teapot"
    MISDIRECTED_REQUEST = 421, "Misdirected Request"
    UNPROCESSABLE_ENTITY = 422, "Unprocessable Entity"
    LOCKED = 423, "Locked"
    FAILED_DEPENDENCY = 424, "Failed Dependency"
    TOO_EARLY = 425, "Too Early"
    UPGRADE_REQUIRED = 426, "Upgrade Required"
    PRECONDITION_REQUIRED = 428, "Precondition Required"
    TOO_MANY_REQUESTS = 429, "Too Many Requests"
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431, "Request Header Fields Too Large"
    UNAVAILABLE_FOR_LEGAL_REASONS = 451, "Unavailable For Legal Reasons"

    INTERNAL_SERVER_ERROR = 500, "Internal Server Error"
    NOT_IMPLEMENTED = 501, "Not Implemented"
    BAD_GATEWAY = 502, "Bad Gateway"
    SERVICE_UNAVAILABLE = 503, "Service Unavailable"
    GATEWAY_TIMEOUT = 504, "Gateway Timeout"
    HTTP_VERSION_NOT_SUPPORTED = 505, "HTTP Version Not Supported"
    VARIANT_ALSO_NEGOTIATES = 506, "Variant Also Negotiates"
    INSUFFICIENT_STORAGE = 507, "Insufficient Storage"
    LOOP_DETECTED = 508, "Loop Detected"
    NOT_EXTENDED = 510, "Not Extended"
    NETWORK_AUTHENTICATION_REQUIRED = 511, "Network Authentication Required"

    # RFC 9110's names for four codes, as httpx2 2.10+ spells them, as silent aliases
    # (code written for httpx 0.29 uses them; httpx 0.28.1 has neither).
    CONTENT_TOO_LARGE = REQUEST_ENTITY_TOO_LARGE
    URI_TOO_LONG = REQUEST_URI_TOO_LONG
    RANGE_NOT_SATISFIABLE = REQUESTED_RANGE_NOT_SATISFIABLE
    UNPROCESSABLE_CONTENT = UNPROCESSABLE_ENTITY


# httpx2's: the four codes RFC 9110 renamed, by their old names (deprecated aliases there).
_DEPRECATED_CODES = {
    "REQUEST_ENTITY_TOO_LARGE": "CONTENT_TOO_LARGE",
    "REQUEST_URI_TOO_LONG": "URI_TOO_LONG",
    "REQUESTED_RANGE_NOT_SATISFIABLE": "RANGE_NOT_SATISFIABLE",
    "UNPROCESSABLE_ENTITY": "UNPROCESSABLE_CONTENT",
}
_RFC9110_PHRASES = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


class _CodesMeta(type(IntEnum)):
    """httpx2's `codes` metaclass: reading an old name warns (DeprecationWarning)."""

    def __getattribute__(cls, name):
        new_name = _DEPRECATED_CODES.get(name)
        if new_name is not None:
            # (stacklevel 1: compiled code has no frame; the caller's line is innermost)
            warnings.warn(
                f"'{name}' is deprecated. Use '{new_name}' instead.", DeprecationWarning
            )
        return super().__getattribute__(name)


class _Httpx2Codes(_Codes, metaclass=_CodesMeta):
    """The base of httpx2's `codes` (made below from httpx's members)."""


def _httpx2_members():
    members = []
    for name, code in codes.__members__.items():
        if code.name != name:
            continue  # the RFC 9110 aliases: httpx2's canonical names, below
        new_name = _DEPRECATED_CODES.get(name, name)
        members.append((new_name, (int(code), _RFC9110_PHRASES.get(int(code), code.phrase))))
    members += [(old, (int(codes[old]), "")) for old in _DEPRECATED_CODES]  # the aliases
    return members


httpx2_codes = _Httpx2Codes("codes", _httpx2_members(), module="httpx2", qualname="codes")
httpx2_codes.__doc__ = codes.__doc__


# Lower-case aliases (plain ints), for `requests` compatibility, of every name (the
# aliases' too: `codes.content_too_large`, `codes.unprocessable_entity`), as in httpx2.
for _codes in (codes, httpx2_codes):
    for _name, _code in type.__getattribute__(_codes, "_member_map_").items():
        setattr(_codes, _name.lower(), int(_code))
del _codes, _name, _code

# Each library's phrase per status, for responses without their own (read per response:
# a dict lookup, where `get_reason_phrase` builds a member, and httpx2's through its
# metaclass).
HTTPX_PHRASES = {int(_code): _code.phrase for _code in codes}
HTTPX2_PHRASES = {int(_code): _code.phrase for _code in httpx2_codes}

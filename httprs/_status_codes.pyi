from enum import EnumMeta, IntEnum
from typing import Any

__all__ = ["codes"]

class _Codes(IntEnum):  # type: ignore[misc]  # (members only in its subclasses)
    phrase: str
    @classmethod
    def get_reason_phrase(cls, value: int) -> str: ...
    @classmethod
    def is_informational(cls, value: int) -> bool: ...
    @classmethod
    def is_success(cls, value: int) -> bool: ...
    @classmethod
    def is_redirect(cls, value: int) -> bool: ...
    @classmethod
    def is_client_error(cls, value: int) -> bool: ...
    @classmethod
    def is_server_error(cls, value: int) -> bool: ...
    @classmethod
    def is_error(cls, value: int) -> bool: ...

_DEPRECATED_CODES: dict[str, str]
_RFC9110_PHRASES: dict[int, str]

class _CodesMeta(EnumMeta):
    def __getattribute__(cls, name: str) -> Any: ...

class _Httpx2Codes(_Codes, metaclass=_CodesMeta): ...  # type: ignore[misc]

def _httpx2_members() -> list[tuple[str, tuple[int, str]]]: ...

# httpx2's codes (the switch's `httpx2.codes`), made from httpx's members
httpx2_codes: type[_Httpx2Codes]

HTTPX_PHRASES: dict[int, str]
HTTPX2_PHRASES: dict[int, str]

class codes(_Codes):
    CONTINUE = 100
    SWITCHING_PROTOCOLS = 101
    PROCESSING = 102
    EARLY_HINTS = 103
    OK = 200
    CREATED = 201
    ACCEPTED = 202
    NON_AUTHORITATIVE_INFORMATION = 203
    NO_CONTENT = 204
    RESET_CONTENT = 205
    PARTIAL_CONTENT = 206
    MULTI_STATUS = 207
    ALREADY_REPORTED = 208
    IM_USED = 226
    MULTIPLE_CHOICES = 300
    MOVED_PERMANENTLY = 301
    FOUND = 302
    SEE_OTHER = 303
    NOT_MODIFIED = 304
    USE_PROXY = 305
    TEMPORARY_REDIRECT = 307
    PERMANENT_REDIRECT = 308
    BAD_REQUEST = 400
    UNAUTHORIZED = 401
    PAYMENT_REQUIRED = 402
    FORBIDDEN = 403
    NOT_FOUND = 404
    METHOD_NOT_ALLOWED = 405
    NOT_ACCEPTABLE = 406
    PROXY_AUTHENTICATION_REQUIRED = 407
    REQUEST_TIMEOUT = 408
    CONFLICT = 409
    GONE = 410
    LENGTH_REQUIRED = 411
    PRECONDITION_FAILED = 412
    REQUEST_ENTITY_TOO_LARGE = 413
    REQUEST_URI_TOO_LONG = 414
    UNSUPPORTED_MEDIA_TYPE = 415
    REQUESTED_RANGE_NOT_SATISFIABLE = 416
    EXPECTATION_FAILED = 417
    IM_A_TEAPOT = 418
    MISDIRECTED_REQUEST = 421
    UNPROCESSABLE_ENTITY = 422
    LOCKED = 423
    FAILED_DEPENDENCY = 424
    TOO_EARLY = 425
    UPGRADE_REQUIRED = 426
    PRECONDITION_REQUIRED = 428
    TOO_MANY_REQUESTS = 429
    REQUEST_HEADER_FIELDS_TOO_LARGE = 431
    UNAVAILABLE_FOR_LEGAL_REASONS = 451
    INTERNAL_SERVER_ERROR = 500
    NOT_IMPLEMENTED = 501
    BAD_GATEWAY = 502
    SERVICE_UNAVAILABLE = 503
    GATEWAY_TIMEOUT = 504
    HTTP_VERSION_NOT_SUPPORTED = 505
    VARIANT_ALSO_NEGOTIATES = 506
    INSUFFICIENT_STORAGE = 507
    LOOP_DETECTED = 508
    NOT_EXTENDED = 510
    NETWORK_AUTHENTICATION_REQUIRED = 511
    # RFC 9110 names (httpx2), aliases of the httpx 0.28.1 members above.
    CONTENT_TOO_LARGE = REQUEST_ENTITY_TOO_LARGE
    URI_TOO_LONG = REQUEST_URI_TOO_LONG
    RANGE_NOT_SATISFIABLE = REQUESTED_RANGE_NOT_SATISFIABLE
    UNPROCESSABLE_CONTENT = UNPROCESSABLE_ENTITY
    # Lower-case aliases, plain ints (set after the class body at runtime).
    switching_protocols: int
    processing: int
    early_hints: int
    ok: int
    created: int
    accepted: int
    non_authoritative_information: int
    no_content: int
    reset_content: int
    partial_content: int
    multi_status: int
    already_reported: int
    im_used: int
    multiple_choices: int
    moved_permanently: int
    found: int
    see_other: int
    not_modified: int
    use_proxy: int
    temporary_redirect: int
    permanent_redirect: int
    bad_request: int
    unauthorized: int
    payment_required: int
    forbidden: int
    not_found: int
    method_not_allowed: int
    not_acceptable: int
    proxy_authentication_required: int
    request_timeout: int
    conflict: int
    gone: int
    length_required: int
    precondition_failed: int
    request_entity_too_large: int
    request_uri_too_long: int
    unsupported_media_type: int
    requested_range_not_satisfiable: int
    expectation_failed: int
    im_a_teapot: int
    misdirected_request: int
    unprocessable_entity: int
    locked: int
    failed_dependency: int
    too_early: int
    upgrade_required: int
    precondition_required: int
    too_many_requests: int
    request_header_fields_too_large: int
    unavailable_for_legal_reasons: int
    internal_server_error: int
    not_implemented: int
    bad_gateway: int
    service_unavailable: int
    gateway_timeout: int
    http_version_not_supported: int
    variant_also_negotiates: int
    insufficient_storage: int
    loop_detected: int
    not_extended: int
    network_authentication_required: int
    content_too_large: int
    uri_too_long: int
    range_not_satisfiable: int
    unprocessable_content: int

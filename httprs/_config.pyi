import ssl
from typing import Any

from httprs._types import CertTypes, HeaderTypes, TimeoutTypes
from httprs._urls import URL

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_EVENT_SIZE_BYTES",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT_CONFIG",
    "Limits",
    "Proxy",
    "Timeout",
    "create_ssl_context",
]

class UnsetType: ...

UNSET: UnsetType

def create_ssl_context(
    verify: ssl.SSLContext | str | bool = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
) -> ssl.SSLContext: ...
def _create_ssl_context(
    verify: ssl.SSLContext | str | bool,
    cert: CertTypes | None,
    trust_env: bool,
    warn: bool,
) -> ssl.SSLContext: ...

class Timeout:
    connect: float | None
    read: float | None
    write: float | None
    pool: float | None
    def __init__(
        self,
        timeout: TimeoutTypes | UnsetType = ...,
        *,
        connect: None | float | UnsetType = ...,
        read: None | float | UnsetType = ...,
        write: None | float | UnsetType = ...,
        pool: None | float | UnsetType = ...,
    ) -> None: ...
    def as_dict(self) -> dict[str, float | None]: ...
    def __eq__(self, other: Any) -> bool: ...

class Limits:
    max_connections: int | None
    max_keepalive_connections: int | None
    keepalive_expiry: float | None
    def __init__(
        self,
        *,
        max_connections: int | None = None,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None: ...
    def __eq__(self, other: Any) -> bool: ...

class Proxy:
    url: URL
    auth: tuple[str, str] | None
    headers: Any
    ssl_context: ssl.SSLContext | None
    def __init__(
        self,
        url: URL | str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        headers: HeaderTypes | None = None,
    ) -> None: ...
    @property
    def raw_auth(self) -> tuple[bytes, bytes] | None: ...

DEFAULT_TIMEOUT_CONFIG: Timeout
DEFAULT_LIMITS: Limits
DEFAULT_MAX_REDIRECTS: int
DEFAULT_MAX_EVENT_SIZE_BYTES: int
DEFAULT_MAX_MESSAGE_SIZE_BYTES: int
DEFAULT_QUEUE_SIZE: int
DEFAULT_KEEPALIVE_PING_INTERVAL_SECONDS: float
DEFAULT_KEEPALIVE_PING_TIMEOUT_SECONDS: float

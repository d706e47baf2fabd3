"""httpx2's `_cookies` module: `IndexedCookieJar`, the jar `Cookies` makes when httprs
presents as httpx2 (httpx 0.28.1's `Cookies` make a plain `http.cookiejar.CookieJar`).

For each request the jar looks only at the stored domains that can match the request's
host, from the least specific to the most (`""`, `.org`, `org`, `.example.org`, ...), so
its cost does not grow with the number of other domains stored, and the `Cookie` header
lists cookies in that order (after the longest path first, as every jar sorts them). The
expiry sweep that runs after each request is skipped until the earliest expiry it knows of
has passed.
"""

from __future__ import annotations

import math
import time
import urllib.request
from http import cookiejar
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy

__all__ = ["IndexedCookieJar"]

# Longer hosts than DNS allows (RFC 1035: 255 octets) are looked up the plain jar's way.
MAX_HOST_LENGTH = 255
# The longest request path the jar is given (RFC 6265bis's limit on a cookie's Path).
MAX_PATH_LENGTH = 1024


class IndexedCookieJar(CookieJar):
    """A `CookieJar` that looks up only the domains a request's host can match."""

    _next_expiry: float = math.inf

    def set_cookie(self, cookie: Cookie) -> None:
        with self._cookies_lock:  # type: ignore[attr-defined]
            super().set_cookie(cookie)
            if cookie.expires is not None and cookie.expires < self._next_expiry:
                self._next_expiry = cookie.expires

    def clear_expired_cookies(self) -> None:
        if time.time() < self._next_expiry:
            return
        with self._cookies_lock:  # type: ignore[attr-defined]
            super().clear_expired_cookies()
            expiries = [c.expires for c in self if c.expires is not None]
            self._next_expiry = min(expiries, default=math.inf)

    def _cookies_for_request(self, request: urllib.request.Request) -> list[Cookie]:
        hosts = cookiejar.eff_request_host(request)  # type: ignore[attr-defined]
        policy = self._policy  # type: ignore[attr-defined]
        # The candidates are the domains the default policy's domain_return_ok accepts;
        # a policy that decides otherwise gets every domain, as in the plain jar.
        default_matching = type(policy).domain_return_ok is DefaultCookiePolicy.domain_return_ok
        if not default_matching or max(len(host) for host in hosts) > MAX_HOST_LENGTH:
            plain: list[Cookie] = super()._cookies_for_request(request)  # type: ignore[misc]
            return plain
        stored = self._cookies  # type: ignore[attr-defined]
        cookies: list[Cookie] = []
        for domain in _candidate_domains(hosts):
            if domain in stored:
                cookies.extend(self._cookies_for_domain(domain, request))  # type: ignore[attr-defined]
        return cookies


def _candidate_domains(hosts: tuple[str, str]) -> dict[str, None]:
    """The cookie domains a request to these hosts (the host and its effective name) can
    get cookies of, least specific first: the empty domain, then each dot-started suffix
    with and without its dot. An ordered set (a dict)."""
    found: dict[str, None] = {"": None}
    for host in hosts:
        dotted = host if host.startswith(".") else "." + host
        end = len(dotted)
        while True:
            start = dotted.rfind(".", 0, end)
            if start < 0:
                break
            found[dotted[start:]] = None
            found[dotted[start + 1 :]] = None
            end = start
    return found

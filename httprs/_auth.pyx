# cython: language_level=3, annotation_typing=False
"""Authentication flows: Auth (the generator protocol), Basic, Digest, function and netrc."""

import hashlib
import os
import re
import time
from collections import namedtuple
from base64 import b64encode
from urllib.request import parse_http_list

from httprs._content import _LazyAsyncIterator
from httprs._exceptions import ProtocolError
from httprs._methods import python_methods
from httprs._utils import to_bytes, to_str, unquote


class Auth:
    """Base class of every authentication scheme.

    Subclasses override `auth_flow(request)`, a generator that yields requests
    and receives each response back; or override `sync_auth_flow` /
    `async_auth_flow` directly when the scheme does I/O of its own.
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        yield request

    def sync_auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        if self.requires_request_body:
            request.read()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                return

    def async_auth_flow(self, request: Request) -> typing.AsyncGenerator[Request, Response]:
        # Lazy (see httprs._content._LazyAsyncIterator): a flow created and
        # dropped unstarted stays silent, as a Python async generator does.
        return _LazyAsyncIterator(_async_auth_flow, self, request)


async def _async_auth_flow(auth, request):
    if auth.requires_request_body:
        await request.aread()
    flow = auth.auth_flow(request)
    request = next(flow)
    while True:
        response = yield request
        if auth.requires_response_body:
            await response.aread()
        try:
            request = flow.send(response)
        except StopIteration:
            return


def _basic_auth_header(username, password):
    token = b64encode(to_bytes(username) + b":" + to_bytes(password)).decode()
    return "Basic " + token


class FunctionAuth(Auth):
    """Wrap a plain callable `func(request) -> request` as an auth scheme."""

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        yield self._func(request)


class BasicAuth(Auth):
    """HTTP Basic authentication with a (username, password) pair."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._auth_header = _basic_auth_header(username, password)

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        request.headers["Authorization"] = self._auth_header
        yield request

    def _build_auth_header(self, username, password):
        return _basic_auth_header(username, password)


class NetRCAuth(Auth):
    """Basic authentication with credentials looked up by host in a netrc file."""

    def __init__(self, file: str | None = None) -> None:
        import netrc

        self._netrc_info = netrc.netrc(file)

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        found = self._netrc_info.authenticators(request.url.host)
        if found is not None and found[2]:
            request.headers["Authorization"] = _basic_auth_header(found[0], found[2])
        yield request

    def _build_auth_header(self, username, password):
        return _basic_auth_header(username, password)


# httpx's name and shape (a named tuple of realm, nonce, algorithm, opaque, qop): libraries
# that subclass DigestAuth build one and pass it to `_build_auth_header` (pyprusalink).
_DigestAuthChallenge = namedtuple(
    "_DigestAuthChallenge", ("realm", "nonce", "algorithm", "opaque", "qop"), module=__name__
)


_DIGEST_HASHES = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA": hashlib.sha1,
    "SHA-SESS": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
    "SHA-512": hashlib.sha512,
    "SHA-512-SESS": hashlib.sha512,
}

# Fields written without quotes in the Authorization header (RFC 7616 section 3.4).
_UNQUOTED_FIELDS = frozenset(("algorithm", "qop", "nc"))


class DigestAuth(Auth):
    """HTTP Digest authentication (RFC 2069 / 2617 / 7616): MD5, SHA, SHA-256, SHA-512,
    their -sess variants, and qop=auth. The last challenge is reused for later requests.
    """

    _ALGORITHM_TO_HASH_FUNCTION = _DIGEST_HASHES

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._username = to_bytes(username)
        self._password = to_bytes(password)
        self._last_challenge = None
        self._nonce_count = 1

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        if self._last_challenge is not None:
            request.headers["Authorization"] = self._build_auth_header(
                request, self._last_challenge
            )
        response = yield request

        if response.status_code != 401 or "www-authenticate" not in response.headers:
            return
        challenge_header = None
        for value in response.headers.get_list("www-authenticate"):
            if value.lower().startswith("digest "):
                challenge_header = value
                break
        if challenge_header is None:
            return

        self._last_challenge = self._parse_challenge(request, response, challenge_header)
        self._nonce_count = 1
        request.headers["Authorization"] = self._build_auth_header(request, self._last_challenge)
        if response.cookies:
            from httprs._models import Cookies

            Cookies(response.cookies).set_cookie_header(request=request)
        yield request

    def _parse_challenge(self, request, response, auth_header):
        scheme, _, rest = auth_header.partition(" ")
        if scheme.lower() != "digest":
            raise ProtocolError("Malformed Digest WWW-Authenticate header", request=request)
        fields = {}
        for item in parse_http_list(rest):
            key, sep, value = item.strip().partition("=")
            if not sep:
                raise ProtocolError("Malformed Digest WWW-Authenticate header", request=request)
            # Parameter names are case-insensitive (RFC 7235 section 2.1; httpx2).
            fields[key.strip().lower()] = unquote(value.strip())
        if "realm" not in fields or "nonce" not in fields:
            raise ProtocolError("Malformed Digest WWW-Authenticate header", request=request)
        opaque = fields.get("opaque")
        qop = fields.get("qop")
        return _DigestAuthChallenge(
            realm=fields["realm"].encode(),
            nonce=fields["nonce"].encode(),
            algorithm=fields.get("algorithm", "MD5"),
            opaque=None if opaque is None else opaque.encode(),
            qop=None if qop is None else qop.encode(),
        )

    def _build_auth_header(self, request, challenge):
        hash_func = _DIGEST_HASHES.get(challenge.algorithm.upper())
        if hash_func is None:
            raise ProtocolError(
                f"Unsupported digest auth algorithm {challenge.algorithm!r}", request=request
            )

        def hexdigest(data):
            return hash_func(data).hexdigest().encode()

        uri = request.url.raw_path
        nc_value = b"%08x" % self._nonce_count
        cnonce = self._get_client_nonce(self._nonce_count, challenge.nonce)
        self._nonce_count += 1

        ha1 = hexdigest(self._username + b":" + challenge.realm + b":" + self._password)
        if challenge.algorithm.lower().endswith("-sess"):
            ha1 = hexdigest(ha1 + b":" + challenge.nonce + b":" + cnonce)
        ha2 = hexdigest(request.method.encode() + b":" + uri)

        qop = self._resolve_qop(challenge.qop, request=request)
        if qop is None:
            parts = (ha1, challenge.nonce, ha2)  # RFC 2069
        else:
            parts = (ha1, challenge.nonce, nc_value, cnonce, qop, ha2)

        fields = {
            "username": self._username,
            "realm": challenge.realm,
            "nonce": challenge.nonce,
            "uri": uri,
            "response": hexdigest(b":".join(parts)),
            "algorithm": challenge.algorithm.encode(),
        }
        if challenge.opaque:
            fields["opaque"] = challenge.opaque
        if qop:
            fields["qop"] = b"auth"
            fields["nc"] = nc_value
            fields["cnonce"] = cnonce
        return "Digest " + self._get_header_value(fields)

    def _get_client_nonce(self, nonce_count, nonce):
        seed = str(nonce_count).encode() + nonce + time.ctime().encode() + os.urandom(8)
        return hashlib.sha1(seed).hexdigest()[:16].encode()

    def _get_header_value(self, header_fields):
        out = []
        for name, value in header_fields.items():
            if name in _UNQUOTED_FIELDS:
                out.append(f"{name}={to_str(value)}")
            else:
                out.append(f'{name}="{to_str(value)}"')
        return ", ".join(out)

    def _resolve_qop(self, qop, request):
        if qop is None:
            return None
        choices = re.split(b", ?", qop)
        if b"auth" in choices:
            return b"auth"
        if choices == [b"auth-int"]:
            raise NotImplementedError("Digest auth-int support is not yet implemented")
        raise ProtocolError(f'Unexpected qop value "{qop!r}" in digest auth', request=request)

# Python functions in front of the compiled methods (httprs._methods).
python_methods(Auth, FunctionAuth, BasicAuth, NetRCAuth, DigestAuth)

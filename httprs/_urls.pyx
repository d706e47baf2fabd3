# cython: language_level=3, annotation_typing=False
"""URL and QueryParams, with httpx 0.28's parsing and normalisation rules.

A URL is parsed once into seven normalised ASCII strings (scheme, userinfo,
host, port, path, query, fragment); every property derives from them. Parsing
follows RFC 3986 splitting, WHATWG percent-encode sets, IDNA host encoding and
default-port elision, exactly as httpx does (including its quirks, e.g. the
default port is only dropped for an already lower-case scheme).
"""

from collections import namedtuple
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote, urlencode, urljoin
import warnings

import idna

from httprs.includes.pyobject cimport class_unchanged as _class_unchanged

from httprs._exceptions import InvalidURL

__all__ = ["URL", "QueryParams"]

cdef Py_ssize_t MAX_URL_LENGTH = 65536

# ---------------------------------------------------------------------------
# Percent-encode sets: a 128-entry table per set, 1 = left as is.

cdef str _UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
cdef str _SUB_DELIMS = "!$&'()*+,;="


def _table(excluded=None, only=None):
    cdef bytearray out = bytearray(128)
    cdef int i
    for i in range(0x20, 0x7F):
        if only is not None:
            out[i] = 1 if (chr(i) in only or chr(i) in _UNRESERVED) else 0
        else:
            out[i] = 0 if chr(i) in excluded else 1
    return bytes(out)


# fragment set: C0 controls, space " < > `
cdef bytes _FRAG_SAFE = _table(' "<>`')
# query set: C0 controls, space " # < >
cdef bytes _QUERY_SAFE = _table(' "#<>')
# path set: query set plus ? ` { }
cdef bytes _PATH_SAFE = _table(' "#<>?`{}')
# userinfo set (username / password): path set plus / : ; = @ [ \ ] ^ |
cdef bytes _USERNAME_SAFE = _table(' "#<>?`{}/:;=@[\\]^|')
# the joint userinfo component keeps ':'
cdef bytes _USERINFO_SAFE = _table(' "#<>?`{}/;=@[\\]^|')
# ASCII reg-name hosts: unreserved, sub-delims and the WHATWG extras
cdef bytes _HOST_SAFE = _table(only=_SUB_DELIMS + '"`{}%|\\')

cdef dict _DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}

_COMPONENT_REGEX = {
    "scheme": re.compile("([a-zA-Z][a-zA-Z0-9+.-]*)?"),
    "authority": re.compile("[^/?#]*"),
    "path": re.compile("[^?#]*"),
    "query": re.compile("[^#]*"),
    "fragment": re.compile(".*"),
    "userinfo": re.compile("[^@]*"),
    "host": re.compile("(\\[.*\\]|[^:]*)"),
    "port": re.compile(".*"),
}
_IPV4_STYLE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")


cdef str _quote(str s, bytes safe):
    """Percent-encode every character outside `safe` (and the unreserved set).

    '%' is in every set httpx uses, so existing %XX escapes survive unchanged.
    """
    cdef const unsigned char* table = safe
    cdef Py_UCS4 c
    cdef bint clean = True
    for c in s:
        if c >= 128 or not table[c]:
            clean = False
            break
    if clean:
        return s
    parts = []
    for c in s:
        if c < 128 and table[c]:
            parts.append(c)
        else:
            for b in str(c).encode("utf-8"):
                parts.append("%%%02X" % b)
    return "".join(parts)


cdef inline int _find_control(str s):
    cdef Py_ssize_t i = 0
    cdef Py_UCS4 c
    for c in s:
        if c < 0x20 or c == 0x7F:
            return i
        i += 1
    return -1


cdef bint _is_scheme(str s):
    cdef Py_UCS4 c
    cdef Py_ssize_t i = 0
    for c in s:
        if i == 0:
            if not ((c >= 97 and c <= 122) or (c >= 65 and c <= 90)):
                return False
        elif not (
            (c >= 97 and c <= 122)
            or (c >= 65 and c <= 90)
            or (c >= 48 and c <= 57)
            or c == 43 or c == 45 or c == 46
        ):
            return False
        i += 1
    return True


cdef bint _plain_ipv4(str host):
    """True for a dotted quad ipaddress.IPv4Address surely accepts (fast path)."""
    cdef int parts = 0, digits = 0, value = 0
    cdef Py_UCS4 c, lead = 0
    for c in host:
        if c == 46:  # '.'
            if digits == 0 or value > 255 or (digits > 1 and lead == 48):
                return False
            parts += 1
            digits = 0
            value = 0
        elif c >= 48 and c <= 57:
            if digits == 0:
                lead = c
            digits += 1
            if digits > 3:
                return False
            value = value * 10 + (<int>c - 48)
        else:
            return False
    if digits == 0 or value > 255 or (digits > 1 and lead == 48):
        return False
    return parts == 3


cdef str _bracketed(str host):
    """An IPv6 host as a URL writes it: in brackets, the "%" before a zone id as "%25"."""
    if "%" in host:
        host = host.replace("%", "%25")
    return "[" + host + "]"


cpdef bytes _zone_free(bytes netloc):
    """`netloc` without the zone id of an IPv6 host: "[fe80::1%25en0]:8080" gives
    "[fe80::1]:8080". A zone only has meaning on the client, so what goes on the wire
    (Host, :authority, a proxy's target) leaves it out, as httpx2 2.17 does."""
    if not netloc or netloc[0] != 91:  # "["
        return netloc
    cdef Py_ssize_t close = netloc.find(b"]")
    cdef Py_ssize_t zone = netloc.find(b"%", 0, close)
    if close < 0 or zone < 0:
        return netloc
    return netloc[:zone] + netloc[close:]


def host_header(url):
    """The Host header value for `url`: its netloc without an IPv6 zone id (httpx2's
    `httpx2._urls.host_header`)."""
    return _zone_free(url.netloc)


cpdef str _format_host(str host):
    """A host as a URL's authority writes it (IPv6 bracketed, its zone after "%25")."""
    return _bracketed(host) if ":" in host else host


cdef str _encode_host(str host):
    if not host:
        return ""
    cdef Py_UCS4 first = host[0]
    if first >= 48 and first <= 57 and _plain_ipv4(host):
        return host
    if first >= 48 and first <= 57 and _IPV4_STYLE.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if first == 91 and host[len(host) - 1] == "]":
        # An IPv6 literal; a zone id (RFC 6874) is written after "%25" and held after a
        # bare "%": "[fe80::1%25en0]" holds "fe80::1%en0" (httpx2 2.17). A zone of two
        # characters or fewer is taken as written ("%25" alone is the zone "25").
        literal = host[1:-1]
        if "%" in literal:
            address, _, zone = literal.partition("%")
            if len(zone) > 2 and zone.startswith("25"):
                zone = zone[2:]
            literal = address + "%" + zone
        try:
            ipaddress.IPv6Address(literal)
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return literal
    if host.isascii():
        return _quote(host.lower(), _HOST_SAFE)
    try:
        return idna.encode(host.lower()).decode("ascii")
    except idna.IDNAError:
        raise InvalidURL(f"Invalid IDNA hostname: {host!r}") from None


cdef str _unicode_host(str host):
    """A host's IDNA A-labels as unicode. Presented as httpx2 every `xn--` label is
    decoded; as httpx 0.28.1, only a host that starts with one. A label that is not valid
    IDNA stays as written (httpx2's `display=True`), where httpx 0.28.1 raised idna's own
    error, no httpx exception, even from a redirect the caller did not follow."""
    from httprs._alias import primary

    if not host.startswith("xn--") and primary() != "httpx2":
        return host
    labels = host.split(".")
    for i, label in enumerate(labels):
        if label.startswith("xn--"):
            try:
                labels[i] = idna.decode(label)
            except idna.IDNAError:
                pass
    return ".".join(labels)


cdef object _normalize_port(object port, object scheme):
    if port is None or port == "":
        return None
    try:
        value = int(port)
    except ValueError:
        raise InvalidURL(f"Invalid port: {port!r}") from None
    if value == _DEFAULT_PORTS.get(scheme):
        return None
    return value


cdef str _normalize_path(str path):
    """Drop '.' and '..' segments (RFC 3986 section 5.2.4)."""
    if "." not in path:
        return path
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    out = []
    for seg in segments:
        if seg == ".":
            continue
        if seg == "..":
            if out and out != [""]:
                out.pop()
        else:
            out.append(seg)
    return "/".join(out)


cdef void _validate_path(str path, bint has_scheme, bint has_authority) except *:
    if has_authority and path and not path.startswith("/"):
        raise InvalidURL("For absolute URLs, path must be empty or begin with '/'")
    if not has_scheme and not has_authority:
        if path.startswith("//"):
            raise InvalidURL("Relative URLs cannot have a path starting with '//'")
        if path.startswith(":"):
            raise InvalidURL("Relative URLs cannot have a path starting with ':'")


cdef tuple _split(str url):
    """Split into (scheme, authority, path, query, fragment) as RFC 3986's regex."""
    cdef Py_ssize_t n = len(url)
    cdef Py_ssize_t i, pos = 0, end
    cdef Py_UCS4 c
    scheme = None
    authority = None
    query = None
    fragment = None
    for i in range(n):
        c = url[i]
        if c == 58:  # ':'
            if _is_scheme(url[:i]):
                scheme = url[:i]
                pos = i + 1
            break
        if c == 47 or c == 63 or c == 35:  # / ? #
            break
    if n - pos >= 2 and url[pos] == "/" and url[pos + 1] == "/":
        end = pos + 2
        while end < n:
            c = url[end]
            if c == 47 or c == 63 or c == 35:
                break
            end += 1
        authority = url[pos + 2:end]
        pos = end
    end = pos
    while end < n:
        c = url[end]
        if c == 63 or c == 35:
            break
        end += 1
    path = url[pos:end]
    pos = end
    if pos < n and url[pos] == "?":
        end = pos + 1
        while end < n and url[end] != "#":
            end += 1
        query = url[pos + 1:end]
        pos = end
    if pos < n and url[pos] == "#":
        fragment = url[pos + 1:]
    return scheme, authority, path, query, fragment


cdef tuple _split_authority(str authority):
    """Split into (userinfo, host, port) as httpx's authority regex."""
    at = authority.rfind("@")
    if at >= 0:
        userinfo = authority[:at]
        rest = authority[at + 1:]
    else:
        userinfo = None
        rest = authority
    close = rest.rfind("]") if rest.startswith("[") else -1
    if close >= 0:
        host = rest[:close + 1]
        rest = rest[close + 1:]
    else:
        colon = rest.find(":")
        if colon < 0:
            host = rest
            rest = ""
        else:
            host = rest[:colon]
            rest = rest[colon:]
    if rest.startswith(":"):
        rest = rest[1:]
    return userinfo, host, rest


cdef void _check_control(str value, str key) except *:
    cdef int idx = _find_control(value)
    if idx >= 0:
        char = value[idx]
        if key is None:
            raise InvalidURL(
                f"Invalid non-printable ASCII character in URL, {char!r} at position {idx}."
            )
        raise InvalidURL(
            f"Invalid non-printable ASCII character in URL {key} component, "
            f"{char!r} at position {idx}."
        )


cdef dict _prepare_kwargs(dict kwargs):
    """Turn convenience keywords into the components the parser knows, and validate."""
    if "port" in kwargs:
        port = kwargs["port"]
        kwargs["port"] = str(port) if isinstance(port, int) else port
    if "netloc" in kwargs:
        netloc = kwargs.pop("netloc") or ""
        host, _, port = netloc.partition(":")
        kwargs["host"] = host
        kwargs["port"] = port
    if "username" in kwargs or "password" in kwargs:
        username = _quote(kwargs.pop("username", "") or "", _USERNAME_SAFE)
        password = _quote(kwargs.pop("password", "") or "", _USERNAME_SAFE)
        kwargs["userinfo"] = f"{username}:{password}" if password else username
    if "raw_path" in kwargs:
        raw_path = kwargs.pop("raw_path") or ""
        path, sep, query = raw_path.partition("?")
        kwargs["path"] = path
        kwargs["query"] = query if sep else None
    if "host" in kwargs:
        host = kwargs.get("host") or ""
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            # An unbracketed IPv6 host is the form `URL.host` gives (zone after "%").
            kwargs["host"] = _bracketed(host)
    for key, value in kwargs.items():
        if value is None:
            continue
        if len(value) > MAX_URL_LENGTH:
            raise InvalidURL(f"URL component '{key}' too long")
        _check_control(value, key)
        if not _COMPONENT_REGEX[key].fullmatch(value):
            raise InvalidURL(f"Invalid URL component '{key}'")
    return kwargs


cdef inline bint _parts_reparse(object url):
    """Whether parsing `url`'s parts again gives the same parts. Not when its port is the
    default of its scheme: `HTTP://h:80` keeps its port (the raw scheme names no default,
    as in httpx), which building from the lower-cased scheme then drops."""
    return url._port is None or url._port != _DEFAULT_PORTS.get(url._scheme)


cdef int _with_query(self, other, query) except -1:
    """URL(other, query=query) for a URL `other` (exact URL, so parsed: its parts are
    what parsing them again gives) and a query str or None: its parts copied, as
    URL(other) copies them, and the query checked and quoted as the parser does it."""
    if query is not None:
        if len(<str?>query) > MAX_URL_LENGTH:
            raise InvalidURL("URL component 'query' too long")
        _check_control(query, "query")
        if "#" in query:  # (_COMPONENT_REGEX["query"])
            raise InvalidURL("Invalid URL component 'query'")
        query = _quote(query, _QUERY_SAFE)
    self._scheme = other._scheme
    self._userinfo = other._userinfo
    self._host = other._host
    self._port = other._port
    self._path = other._path
    self._query = query
    self._fragment = other._fragment
    pair = other._host_pair  # (the Host pair does not depend on the query)
    if pair is not None:
        self._host_pair = pair
    return 0


cdef _parse_into(self, str url, dict kwargs):
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL("URL too long")
    _check_control(url, None)
    if kwargs:
        kwargs = _prepare_kwargs(kwargs)

    scheme, authority, path, query, fragment = _split(url)
    if kwargs:
        scheme = kwargs.get("scheme", scheme)
        authority = kwargs.get("authority", authority)
        path = kwargs.get("path", path)
        query = kwargs.get("query", query)
        fragment = kwargs.get("fragment", fragment)
    scheme = scheme or ""
    path = path or ""
    userinfo, host, port = _split_authority(authority or "")
    if kwargs:
        userinfo = kwargs.get("userinfo", userinfo)
        host = kwargs.get("host", host)
        port = kwargs.get("port", port)
    userinfo = userinfo or ""
    host = host or ""

    cdef str n_scheme = scheme.lower()
    cdef str n_userinfo = _quote(userinfo, _USERINFO_SAFE)
    cdef str n_host = _encode_host(host)
    n_port = _normalize_port(port, scheme)
    cdef bint has_scheme = n_scheme != ""
    cdef bint has_authority = n_userinfo != "" or n_host != "" or n_port is not None
    _validate_path(path, has_scheme, has_authority)
    if has_scheme or has_authority:
        path = _normalize_path(path)
    self._scheme = n_scheme
    self._userinfo = n_userinfo
    self._host = n_host
    self._port = n_port
    self._path = _quote(path, _PATH_SAFE)
    self._query = None if query is None else _quote(query, _QUERY_SAFE)
    self._fragment = None if fragment is None else _quote(fragment, _FRAG_SAFE)


# Parsed components of recently seen URL strings. A client sends to the same few
# URLs over and over, and parsing (splitting, quoting, IDNA, validation) is a pure
# function of the string: the components are immutable values, so a hit copies
# them instead of parsing again. Only exact str objects are cached (a subclass may
# compare or hash differently); a failed parse raises before anything is stored.
# Bounded: when full, the table starts over; strings longer than _PARSED_MAX_LEN are
# parsed every time (the table never holds more than 256 x 2 KiB of URL text).
cdef Py_ssize_t _PARSED_MAX = 256
cdef Py_ssize_t _PARSED_MAX_LEN = 2048
cdef dict _parsed_urls = {}


cdef int _parse_cached(self, str url) except -1:
    cdef tuple parts = _parsed_urls.get(url)
    if parts is None:
        _parse_into(self, url, None)
        if len(url) > _PARSED_MAX_LEN:
            return 0
        if len(_parsed_urls) >= _PARSED_MAX:
            _parsed_urls.clear()
        _parsed_urls[url] = (
            self._scheme, self._userinfo, self._host, self._port, self._path, self._query,
            self._fragment,
        )
        return 0
    (
        self._scheme, self._userinfo, self._host, self._port, self._path, self._query,
        self._fragment,
    ) = parts
    return 0


cdef str _authority(self, bint secure):
    userinfo = self._userinfo
    if secure and ":" in userinfo:
        userinfo = userinfo.split(":")[0] + ":[secure]"
    parts = []
    if userinfo:
        parts.append(userinfo)
        parts.append("@")
    parts.append(_format_host(self._host))
    if self._port is not None:
        parts.append(f":{self._port}")
    return "".join(parts)

cdef str _build(self, bint secure):
    authority = _authority(self, secure)
    parts = []
    if self._scheme:
        parts.append(self._scheme)
        parts.append(":")
    if authority:
        parts.append("//")
        parts.append(authority)
    parts.append(self._path)
    if self._query is not None:
        parts.append("?")
        parts.append(self._query)
    if self._fragment is not None:
        parts.append("#")
        parts.append(self._fragment)
    return "".join(parts)


_ALLOWED_KWARGS = {
    "scheme": str,
    "username": str,
    "password": str,
    "userinfo": bytes,
    "host": str,
    "port": int,
    "netloc": bytes,
    "path": str,
    "query": bytes,
    "raw_path": bytes,
    "fragment": str,
    "params": object,
}


class _URIReference(
    namedtuple("_URIReference", "scheme userinfo host port path query fragment")
):
    __slots__ = ()

    @property
    def authority(self):
        host = _format_host(self.host)
        userinfo = f"{self.userinfo}@" if self.userinfo else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{userinfo}{host}{port}"


class URL:
    """A parsed, normalised URL (httpx.URL): a plain class, as httpx's is.

    The normalised components are `_scheme`, `_userinfo`, `_host`, `_port`,
    `_path`, `_query` and `_fragment`; `_str` caches the string form.
    """

    # Defaults a URL made from a parsed template leaves unset (_client's _merge_url).
    _userinfo = ""
    _port = None
    _query = None
    _fragment = None
    _str = None
    _netloc = None  # `netloc` and `raw_path`, made on first use (the parts never change)
    _raw_path = None
    # A request's (b"Host", netloc) pair, made for a URL the client's requests share
    # (httprs._client's _made_whole) before it is shared; None: made by each request.
    _host_pair = None

    def __init__(self, url: URL | str = "", **kwargs: typing.Any) -> None:
        if kwargs:
            for key, value in kwargs.items():
                expected = _ALLOWED_KWARGS.get(key)
                if expected is None:
                    raise TypeError(f"{key!r} is an invalid keyword argument for URL()")
                if value is not None and not isinstance(value, expected):
                    raise TypeError(
                        f"Argument {key!r} must be {expected.__name__} "
                        f"but got {type(value).__name__}"
                    )
                if isinstance(value, bytes):
                    kwargs[key] = value.decode("ascii")
            if "params" in kwargs:
                params = kwargs.pop("params")
                kwargs["query"] = None if not params else _params_query(params)
                if len(kwargs) == 1 and type(url) is URL and _parts_reparse(url):
                    _with_query(self, url, kwargs["query"])  # (only the query)
                    return

        if type(url) is str and not kwargs:
            _parse_cached(self, <str>url)
        elif isinstance(url, str):
            # A str subclass parses as its text (its own __str__ is not asked).
            _parse_into(self, str.__str__(url), kwargs)
        elif isinstance(url, URL):
            other = url
            if kwargs:
                base = {
                    "scheme": other._scheme,
                    "authority": _authority(other, False),
                    "path": other._path,
                    "query": other._query,
                    "fragment": other._fragment,
                }
                base.update(kwargs)
                _parse_into(self, "", base)
            else:
                self._scheme = other._scheme
                self._userinfo = other._userinfo
                self._host = other._host
                self._port = other._port
                self._path = other._path
                self._query = other._query
                self._fragment = other._fragment
                if other._str is not None:
                    self._str = other._str
        else:
            from httprs._alias import presented_name

            raise TypeError(
                f"Invalid type for url.  Expected str or {presented_name()}.URL,"
                f" got {type(url)}: {url!r}"
            )

    @property
    def scheme(self) -> str:
        """The URL scheme, lower-cased ("http", "https")."""
        return self._scheme

    @property
    def raw_scheme(self) -> bytes:
        return self._scheme.encode("ascii")

    @property
    def userinfo(self) -> bytes:
        """The userinfo as raw (still percent-encoded) bytes."""
        return self._userinfo.encode("ascii")

    @property
    def username(self) -> str:
        return unquote(self._userinfo.partition(":")[0])

    @property
    def password(self) -> str:
        return unquote(self._userinfo.partition(":")[2])

    @property
    def host(self) -> str:
        """The host, lower-cased, IDNA hosts decoded to unicode, IPv6 without brackets."""
        host = self._host
        if "xn--" in host:
            host = _unicode_host(host)
        return host

    @property
    def raw_host(self) -> bytes:
        """The host as ASCII bytes: lower-cased, IDNA-encoded, no IPv6 brackets."""
        return self._host.encode("ascii")

    @property
    def port(self) -> int | None:
        """The port as an int, or None when absent or the scheme's default."""
        return self._port

    @property
    def netloc(self) -> bytes:
        netloc = self._netloc
        if netloc is None:
            host = _format_host(self._host)
            if self._port is not None:
                host = f"{host}:{self._port}"
            netloc = self._netloc = host.encode("ascii")
        return netloc

    @property
    def path(self) -> str:
        return unquote(self._path or "/")

    @property
    def _uri_reference(self):
        """The seven parsed components, as httpx's private ParseResult has them.

        Private in httpx too; respx reads `.path` from it to tell an empty path from
        "/", so openai's and anthropic's respx-based suites need it.
        """
        return _URIReference(
            self._scheme,
            self._userinfo,
            self._host,
            self._port,
            self._path,
            self._query,
            self._fragment,
        )

    @property
    def query(self) -> bytes:
        return (self._query or "").encode("ascii")

    @property
    def params(self) -> QueryParams:
        return QueryParams(self._query)

    @property
    def raw_path(self) -> bytes:
        """Path and query as sent in the request line, as bytes."""
        raw_path = self._raw_path
        if raw_path is None:
            path = self._path or "/"
            if self._query is not None:
                path = path + "?" + self._query
            raw_path = self._raw_path = path.encode("ascii")
        return raw_path

    @property
    def fragment(self) -> str:
        return unquote(self._fragment or "")

    @property
    def is_absolute_url(self) -> bool:
        return bool(self._scheme and self._host)

    @property
    def is_relative_url(self) -> bool:
        return not (self._scheme and self._host)

    @property
    def origin(self) -> Origin:
        """httpx2: the scheme, host and effective port, as a hashable `Origin`."""
        from httprs._origin import Origin

        return Origin(self)

    def copy_with(self, **kwargs: typing.Any) -> URL:
        return URL(self, **kwargs)

    def copy_set_param(self, key: str, value: typing.Any = None) -> URL:
        return self.copy_with(params=self.params.set(key, value))

    def copy_add_param(self, key: str, value: typing.Any = None) -> URL:
        return self.copy_with(params=self.params.add(key, value))

    def copy_remove_param(self, key: str) -> URL:
        return self.copy_with(params=self.params.remove(key))

    def copy_merge_params(self, params: QueryParamTypes) -> URL:
        return self.copy_with(params=self.params.merge(params))

    def join(self, url: URL | str) -> URL:
        """Resolve `url` against this URL as the base."""
        return URL(urljoin(str(self), str(URL(url))))

    def __hash__(self):
        return hash(str(self))

    def __eq__(self, other):
        return isinstance(other, (URL, str)) and str(self) == str(URL(other))

    def __ne__(self, other):
        return not self.__eq__(other)

    def __str__(self):
        if self._str is None:
            self._str = _build(self, False)
        return self._str

    def __repr__(self):
        return f"{self.__class__.__name__}({_build(self, True)!r})"

    @property
    def raw(self) -> tuple[bytes, bytes, int, bytes]:
        import collections

        from httprs._alias import primary

        if primary() == "httpx2":
            # httpx2 marks it @deprecated: its own category, at the caller's line (the
            # innermost Python frame: this property has none).
            from httprs._exceptions import HTTPXDeprecationWarning

            warnings.warn("URL.raw is deprecated.", HTTPXDeprecationWarning, stacklevel=1)
        else:
            from httprs._methods import warn_inside

            warn_inside("URL.raw is deprecated.", UserWarning, "_urls")
        RawURL = collections.namedtuple("RawURL", ["raw_scheme", "raw_host", "port", "raw_path"])
        return RawURL(
            raw_scheme=self.raw_scheme,
            raw_host=self.raw_host,
            port=self.port,
            raw_path=self.raw_path,
        )


def primitive_value_to_str(value):
    """Coerce a primitive to str, JSON-style for booleans and "" for None."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


class QueryParams:
    """Immutable multi-dict of URL query parameters (httpx.QueryParams): a plain class."""

    __reversed__ = None  # not reversible, as a collections.abc.Mapping (see Headers)

    def __init__(self, *args: QueryParamTypes | None, **kwargs: typing.Any) -> None:
        assert len(args) < 2, "Too many arguments."
        assert not (args and kwargs), "Cannot mix named and unnamed arguments."
        value = args[0] if args else kwargs
        if type(value) is dict:
            plain = _str_pairs_dict(value)
            if plain is not None:
                self._dict = plain
                return
        if value is None or isinstance(value, (str, bytes)):
            if isinstance(value, bytes):
                value = value.decode("ascii")
            self._dict = parse_qs(value, keep_blank_values=True) if value else {}
        elif isinstance(value, QueryParams):
            self._dict = {k: list(v) for k, v in value._dict.items()}
        else:
            grouped = {}
            if isinstance(value, (list, tuple)):
                for item in value:
                    grouped.setdefault(item[0], []).append(item[1])
            else:
                grouped = {
                    k: list(v) if isinstance(v, (list, tuple)) else [v]
                    for k, v in value.items()
                }
            self._dict = {
                str(k): [primitive_value_to_str(item) for item in v] for k, v in grouped.items()
            }

    def keys(self) -> typing.KeysView[str]:
        return self._dict.keys()

    def values(self) -> typing.ValuesView[str]:
        return {k: v[0] for k, v in self._dict.items()}.values()

    def items(self) -> typing.ItemsView[str, str]:
        return {k: v[0] for k, v in self._dict.items()}.items()

    def multi_items(self) -> list[tuple[str, str]]:
        out = []
        for k, v in self._dict.items():
            out.extend([(k, i) for i in v])
        return out

    def get(self, key: typing.Any, default: typing.Any = None) -> typing.Any:
        if key in self._dict:
            return self._dict[str(key)][0]
        return default

    def get_list(self, key: str) -> list[str]:
        return list(self._dict.get(str(key), []))

    def set(self, key: str, value: typing.Any = None) -> QueryParams:
        q = _qp_copy(self)
        q._dict[str(key)] = [primitive_value_to_str(value)]
        return q

    def add(self, key: str, value: typing.Any = None) -> QueryParams:
        q = _qp_copy(self)
        q._dict[str(key)] = q.get_list(key) + [primitive_value_to_str(value)]
        return q

    def remove(self, key: str) -> QueryParams:
        q = _qp_copy(self)
        q._dict.pop(str(key), None)
        return q

    def merge(self, params: QueryParamTypes | None = None) -> QueryParams:
        q = QueryParams(params)
        q._dict = {**self._dict, **q._dict}
        return q

    def __getitem__(self, key):
        return self._dict[key][0]

    def __contains__(self, key):
        return key in self._dict

    def __iter__(self):
        return iter(self._dict.keys())

    def __len__(self):
        return len(self._dict)

    def __bool__(self):
        return bool(self._dict)

    def __hash__(self):
        return hash(str(self))

    def __eq__(self, other):
        if not isinstance(other, self.__class__):
            return False
        return sorted(self.multi_items()) == sorted(other.multi_items())

    def __ne__(self, other):
        return not self.__eq__(other)

    def __str__(self):
        if type(self) is QueryParams and _class_unchanged(
            QueryParams, &_query_params_tag, _QUERY_PARAMS_STOCK
        ):
            text = _plain_urlencoded(self._dict)
            if text is not None:
                return text
        return urlencode(self.multi_items())

    def __repr__(self):
        return f"{self.__class__.__name__}({str(self)!r})"

    def update(self, params: QueryParamTypes | None = None) -> None:
        raise RuntimeError(
            "QueryParams are immutable since 0.18.0. "
            "Use `q = q.merge(...)` to create an updated copy."
        )

    def __setitem__(self, key, value):
        raise RuntimeError(
            "QueryParams are immutable since 0.18.0. "
            "Use `q = q.set(key, value)` to create an updated copy."
        )


Mapping.register(QueryParams)


cdef unsigned int _query_params_tag = 0  # _class_unchanged's memo
cdef tuple _QUERY_PARAMS_STOCK = (
    ("__init__", QueryParams.__init__),
    ("__str__", QueryParams.__str__),
    ("multi_items", QueryParams.multi_items),
)


cdef str _params_query(object params):
    """str(QueryParams(params)); a stock QueryParams' own string (a copy's is the same)."""
    if type(params) is QueryParams and _class_unchanged(
        QueryParams, &_query_params_tag, _QUERY_PARAMS_STOCK
    ):
        return str(params)
    return str(QueryParams(params))


cdef dict _str_pairs_dict(dict value):
    """QueryParams' dict for a dict of str names and str values ({name: [value]}, what
    the general steps give them), or None for any other dict."""
    cdef dict out = {}
    for name, item in value.items():
        if type(name) is not str or type(item) is not str:
            return None
        out[name] = [item]
    return out
# What quote_plus (urlencode's quoting) keeps as it is: its always-safe characters.
cdef bytes _ALWAYS_SAFE = _table(only="")


cdef object _plain_urlencoded(object mapping):
    """urlencode(params.multi_items()) for a QueryParams' {str: [str]} dict whose names
    and values are all made of quote_plus's always-safe characters (ASCII letters,
    digits, "_.-~": quoted as they are): "k=v&..." joined; None for anything else."""
    if type(mapping) is not dict:
        return None
    cdef list parts = []
    for name, values in (<dict>mapping).items():
        if type(name) is not str or not _always_safe(<str>name) or type(values) is not list:
            return None
        for value in <list>values:
            if type(value) is not str or not _always_safe(<str>value):
                return None
            parts.append(f"{name}={value}")
    return "&".join(parts)


cdef inline bint _always_safe(str text):
    """Whether every character of `text` is one quote_plus keeps (_ALWAYS_SAFE)."""
    cdef const unsigned char* table = _ALWAYS_SAFE
    cdef Py_UCS4 c
    for c in text:
        if c >= 128 or not table[c]:
            return False
    return True


cdef object _qp_copy(params):
    q = object.__new__(QueryParams)
    q._dict = dict(params._dict)
    return q


# httpx2 keeps Origin in `_urls` (`from httpx2._urls import Origin`), with its ports.
from httprs._origin import _DEFAULT_PORTS as _ORIGIN_DEFAULT_PORTS  # noqa: E402, F401
from httprs._origin import Origin  # noqa: E402


# ---------------------------------------------------------------------------
# The same steps as Python functions, for httpx's private `_urlparse` helpers
# (httprs/_urlparse.py).


def _urlparse_encode_host(str host):
    return _encode_host(host)


def _urlparse_normalize_port(port, scheme):
    return _normalize_port(port, scheme)


def _urlparse_normalize_path(str path):
    return _normalize_path(path)


def _urlparse_validate_path(str path, bint has_scheme, bint has_authority):
    _validate_path(path, has_scheme, has_authority)


def _urlparse_quote(str string, bytes table):
    """Percent-encode what `table` (128 entries, 1 = safe) does not keep."""
    return _quote(string, table)

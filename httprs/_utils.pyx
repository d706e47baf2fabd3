# cython: language_level=3, annotation_typing=False
"""Client-side helpers: environment proxies, mount/proxy URL patterns, small coercions."""

from httprs.includes.pyobject cimport dict_version as _dict_version

import ipaddress
import os
import re
import urllib.request

from httprs._exceptions import InvalidURL


def to_bytes(value, encoding="utf-8"):
    if isinstance(value, str):
        return value.encode(encoding)
    return value


def to_str(value, encoding="utf-8"):
    if isinstance(value, str):
        return value
    return value.decode(encoding)


def to_bytes_or_str(value, match_type_of):
    """`value` (a str) as str if `match_type_of` is a str, else as ASCII bytes."""
    return value if isinstance(match_type_of, str) else value.encode()


def unquote(value):
    """Strip one pair of surrounding double quotes, if present."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def format_host(host):
    """A host as a URL writes it (httpx2's `_urlparse.format_host`, which its `_utils`
    imports): an IPv6 address in brackets, its zone after "%25"."""
    from httprs._urls import _format_host

    return _format_host(host)


def _looks_like_ip(hostname, cls):
    try:
        cls(hostname.split("/")[0])
    except ValueError:
        return False
    return True


def is_ipv4_hostname(hostname):
    return _looks_like_ip(hostname, ipaddress.IPv4Address)


def is_ipv6_hostname(hostname):
    return _looks_like_ip(hostname, ipaddress.IPv6Address)


def _no_proxy_pattern(host):
    """The mount key that disables proxying for one NO_PROXY entry (curl's rules, with
    httpx2's additions: "*.example.com", CIDR networks, bracketed IPv6), or None for an
    entry that is neither a host nor a network (ignored, as curl and Go do)."""
    if "://" in host:
        return host
    if host.startswith("["):
        return "all://" + host  # "[::1]", "[::1]:8080", "[fd00::]/8"
    if is_ipv4_hostname(host) or host.lower() == "localhost":
        return "all://" + host  # "10.1.2.3", "10.0.0.0/8"
    if is_ipv6_hostname(host):
        address, slash, prefix = host.partition("/")
        if not slash:
            return "all://[" + host.replace("%", "%25") + "]"  # a zone id after "%25"
        return "all://[" + address + "]" + slash + prefix
    if "/" in host:
        return None
    if host.startswith("*."):
        return "all://" + host  # like ".example.com": subdomains only
    # "example.com" matches example.com and its subdomains; ".example.com" only subdomains.
    return "all://*" + host


cdef object _urllib_request = urllib.request  # the module (looked up once)
cdef object _Environ = os._Environ


cdef inline bint _ends_with_proxy(bytes name):
    """name[-6:].lower() == b"_proxy" (ASCII case folding, as bytes.lower()), without
    slicing or lowering: the test runs for every variable of the process, per Client()."""
    cdef Py_ssize_t n = len(name)
    cdef const unsigned char* p
    if n < 6:
        return False
    p = <const unsigned char*>(<char*>name) + n - 6
    return (
        p[0] == 0x5F  # "_"
        and (p[1] | 0x20) == 0x70  # p
        and (p[2] | 0x20) == 0x72  # r
        and (p[3] | 0x20) == 0x6F  # o
        and (p[4] | 0x20) == 0x78  # x
        and (p[5] | 0x20) == 0x79  # y
    )


# The last scan of os.environ's variables: (its dict, that dict's version then (PEP 509,
# renewed by any change to it; 0 where it cannot be read), what the scan found), made
# whole before it is stored, so no thread ever reads one scan's version with another's
# result.
cdef tuple _scanned = None


def _proxy_variables():
    """What urllib.request.getproxies() returns on POSIX, without decoding every variable.

    urllib walks os.environ.items(), decoding each of the process's variables, which made
    it most of the cost of Client(). This scans the raw (bytes) names instead and decodes
    only the *_proxy ones, with urllib's rules: a name ending in "_proxy" in any case
    counts, a lower-case "_proxy" name wins over the other spellings (an empty one then
    removes the entry), and under CGI (REQUEST_METHOD set) HTTP_PROXY is ignored.
    Anywhere the shortcut cannot see what urllib would (not POSIX, os.environ replaced,
    urllib's getproxies patched) urllib is asked. While os.environ's dict has not changed
    since the last scan (its version, where Python lets it be read: before 3.12), that
    scan's result is returned (a copy) without scanning again.
    """
    global _scanned
    env = os.environ
    data = getattr(env, "_data", None)
    request = _urllib_request
    if (
        os.name != "posix"
        or type(env) is not _Environ
        or type(data) is not dict
        or request.getproxies is not request.getproxies_environment
    ):
        return request.getproxies()
    cdef unsigned long long version = _dict_version(data)
    cdef tuple memo = _scanned
    if version != 0 and memo is not None and memo[0] is data and <unsigned long long>memo[1] == version:
        return dict(memo[2])
    found = _scan_proxy_variables(data)
    # os.fsdecode may let another thread change the environment mid-scan: kept only if not.
    if version != 0 and _dict_version(data) == version:
        memo = (data, version, dict(found))
        _scanned = memo
    return found


cdef dict _scan_proxy_variables(dict raw):
    variables = None
    for key in raw:
        if type(key) is bytes and _ends_with_proxy(<bytes>key):
            if variables is None:
                variables = []
            variables.append((os.fsdecode(key), os.fsdecode(raw[key])))
    if variables is None:  # the common case: no proxy variable at all
        return {}
    found = {}
    for name, value in variables:
        if value:
            found[name.lower()[:-6]] = value
    if b"REQUEST_METHOD" in raw:
        found.pop("http", None)
    for name, value in variables:
        if name.endswith("_proxy"):
            scheme = name.lower()[:-6]
            if value:
                found[scheme] = value
            else:
                found.pop(scheme, None)
    return found


def get_environment_proxies():
    """Map of mount pattern -> proxy URL (or None for "no proxy") from the environment.

    Reads HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY (either case) through
    urllib's getproxies(); other schemes found there are ignored. A NO_PROXY entry that
    does not make a valid pattern is skipped.
    """
    found = _proxy_variables()
    if not found:
        return {}
    result = {}
    for scheme in ("http", "https", "all"):
        value = found.get(scheme)
        if value:
            result[scheme + "://"] = value if "://" in value else "http://" + value
    for entry in found.get("no", "").split(","):
        host = entry.strip()
        if host == "*":
            return {}
        if not host:
            continue
        pattern = _no_proxy_pattern(host)
        if pattern is None:
            continue
        try:
            URLPattern(pattern)
        except (InvalidURL, ValueError):
            continue
        result[pattern] = None
    return result


cdef object _host_regex(str host):
    if not host or host == "*":
        return None
    if host.startswith("*."):
        return re.compile("^.+\\." + re.escape(host[2:]) + "$")
    if host.startswith("*"):
        return re.compile("^(.+\\.)?" + re.escape(host[1:]) + "$")
    return re.compile("^" + re.escape(host) + "$")


class URLPattern:
    """A mount key such as "all://", "https://*.example.com", "http://host:8080" or a
    network, "all://10.0.0.0/8" / "all://[fd00::]/8" (httpx2).

    Patterns sort from most to least specific: ports first, then exact hosts, then
    networks (smaller first), then host-less patterns; longer hosts and schemes first.
    """

    def __init__(self, pattern):
        from httprs._urls import URL

        if pattern and ":" not in pattern:
            raise ValueError(
                "Proxy keys should use proper URL forms rather than plain scheme "
                f'strings. Instead of "{pattern}", use "{pattern}://"'
            )
        url = URL(pattern)
        self.pattern = pattern
        self.scheme = "" if url.scheme == "all" else url.scheme
        self.host = "" if url.host == "*" else url.host
        self.port = url.port
        self.network = _network(pattern, url)
        self.host_regex = None if self.network is not None else _host_regex(url.host)

    def matches(self, other):
        if self.scheme and self.scheme != other.scheme:
            return False
        if self.network is not None:
            try:
                address = ipaddress.ip_address(other.host)
            except ValueError:
                return False
            if address not in self.network:
                return False
        elif self.host and self.host_regex is not None:
            if self.host_regex.match(other.host) is None:
                return False
        if self.port is not None and self.port != other.port:
            return False
        return True

    @property
    def priority(self):
        if self.network is not None:
            kind, size, host_length = 1, self.network.num_addresses, 0
        else:
            kind, size, host_length = (0 if self.host else 2), 0, -len(self.host)
        return (0 if self.port is not None else 1, kind, size, host_length, -len(self.scheme))

    def __hash__(self):
        return hash(self.pattern)

    def __lt__(self, other):
        return self.priority < other.priority

    def __eq__(self, other):
        return isinstance(other, URLPattern) and self.pattern == other.pattern

    def __repr__(self):
        return f"URLPattern({self.pattern!r})"


def _network(pattern, url):
    """The ip_network of a CIDR pattern ("all://10.0.0.0/8"), else None. A pattern whose
    path is not a plain prefix length after an IP host raises InvalidURL."""
    prefix = url.path[1:] if url.path.startswith("/") else url.path
    if not prefix or not (is_ipv4_hostname(url.host) or is_ipv6_hostname(url.host)):
        return None
    host = "[" + url.host + "]" if ":" in url.host else url.host
    valid = (
        prefix.isascii()
        and prefix.isdigit()
        and "@" not in pattern
        and "%" not in pattern
        and pattern.endswith(host + "/" + prefix)
    )
    if valid:
        try:
            return ipaddress.ip_network(url.host + "/" + prefix, strict=False)
        except ValueError:
            pass
    raise InvalidURL(f"Invalid network in {pattern!r}")


def sorted_mounts(mounts):
    """Order a {URLPattern: transport} dict from most to least specific (stable)."""
    return dict(sorted(mounts.items(), key=lambda item: item[0].priority))


# httpx's `_utils` also holds these (code imports them from `httpx._utils`); httprs keeps
# them with the request body encoding.
from httprs._content import peek_filelike_length, primitive_value_to_str  # noqa: E402

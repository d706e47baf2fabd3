# cython: language_level=3, annotation_typing=False
"""Client-side helpers: environment proxies, mount/proxy URL patterns, small coercions."""

import ipaddress
import re
from urllib.request import getproxies


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
    """The mount key that disables proxying for one NO_PROXY entry (curl's rules)."""
    if "://" in host:
        return host
    if is_ipv4_hostname(host) or host.lower() == "localhost":
        return "all://" + host
    if is_ipv6_hostname(host):
        return "all://[" + host + "]"
    # "example.com" matches example.com and its subdomains; ".example.com" only subdomains.
    return "all://*" + host


def get_environment_proxies():
    """Map of mount pattern -> proxy URL (or None for "no proxy") from the environment.

    Reads HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY (either case) through
    urllib's getproxies(); other schemes found there are ignored.
    """
    found = getproxies()
    result = {}
    for scheme in ("http", "https", "all"):
        value = found.get(scheme)
        if value:
            result[scheme + "://"] = value if "://" in value else "http://" + value
    for entry in found.get("no", "").split(","):
        host = entry.strip()
        if host == "*":
            return {}
        if host:
            result[_no_proxy_pattern(host)] = None
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
    """A mount key such as "all://", "https://*.example.com" or "http://host:8080".

    Patterns sort from most to least specific: ports first, then longer hosts,
    then longer schemes.
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
        self.host_regex = _host_regex(url.host)

    def matches(self, other):
        if self.scheme and self.scheme != other.scheme:
            return False
        if self.host and self.host_regex is not None:
            if self.host_regex.match(other.host) is None:
                return False
        if self.port is not None and self.port != other.port:
            return False
        return True

    @property
    def priority(self):
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def __hash__(self):
        return hash(self.pattern)

    def __lt__(self, other):
        return self.priority < other.priority

    def __eq__(self, other):
        return isinstance(other, URLPattern) and self.pattern == other.pattern

    def __repr__(self):
        return f"URLPattern({self.pattern!r})"


def sorted_mounts(mounts):
    """Order a {URLPattern: transport} dict from most to least specific (stable)."""
    return dict(sorted(mounts.items(), key=lambda item: item[0].priority))


# httpx's `_utils` also holds these (code imports them from `httpx._utils`); httprs keeps
# them with the request body encoding.
from httprs._content import peek_filelike_length, primitive_value_to_str  # noqa: E402

import pytest


def test_codes_match_httpx(rs):
    import httpx

    ours = [(c.name, c.value, c.phrase) for c in rs.codes]
    theirs = [(c.name, c.value, c.phrase) for c in httpx.codes]
    assert ours == theirs


def test_codes_helpers(hx):
    codes = hx.codes
    assert codes.OK == 200
    assert str(codes.NOT_FOUND) == "404"
    assert repr(codes.OK) == "<codes.OK: 200>"
    assert codes.not_found == 404
    assert type(codes.not_found) is int
    assert codes.get_reason_phrase(418) == "I'm a teapot"
    assert codes.get_reason_phrase(999) == ""
    assert codes.is_informational(101)
    assert codes.is_success(299) and not codes.is_success(300)
    assert codes.is_redirect(301)
    assert codes.is_client_error(404) and not codes.is_client_error(500)
    assert codes.is_server_error(503)
    assert codes.is_error(400) and codes.is_error(599) and not codes.is_error(600)
    assert codes(201).phrase == "Created"


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((None,), {}),
        ((5.0,), {}),
        ((None,), {"connect": 5.0}),
        ((5.0,), {"connect": 10.0}),
        ((5.0,), {"pool": None}),
        (((1.0, 2.0),), {}),
        (((1.0, 2.0, 3.0, 4.0),), {}),
        ((), {"connect": 1, "read": 2, "write": 3, "pool": 4}),
    ],
)
def test_timeout_forms(hx, args, kwargs):
    import httpx

    t = hx.Timeout(*args, **kwargs)
    ref = httpx.Timeout(*args, **kwargs)
    assert t.as_dict() == ref.as_dict()
    assert repr(t) == repr(ref)
    assert hx.Timeout(t) == t
    assert t != ref or hx is httpx


def test_timeout_errors(hx):
    with pytest.raises(ValueError, match="must either include a default"):
        hx.Timeout()
    with pytest.raises(ValueError):
        hx.Timeout(connect=1.0)
    with pytest.raises(AssertionError):
        hx.Timeout(hx.Timeout(1.0), read=2.0)
    with pytest.raises(TypeError):
        hx.Timeout(1.0, 2.0)


def test_limits(hx):
    lim = hx.Limits(max_connections=10)
    assert repr(lim) == (
        "Limits(max_connections=10, max_keepalive_connections=None, keepalive_expiry=5.0)"
    )
    assert lim == hx.Limits(max_connections=10)
    assert lim != hx.Limits(max_connections=11)
    with pytest.raises(TypeError):
        hx.Limits(10)


def test_defaults(rs):
    hx = rs
    import importlib

    ref = importlib.import_module("httpx._config")

    assert hx.DEFAULT_TIMEOUT_CONFIG.as_dict() == ref.DEFAULT_TIMEOUT_CONFIG.as_dict()
    assert repr(hx.DEFAULT_LIMITS) == repr(ref.DEFAULT_LIMITS)
    assert hx.DEFAULT_MAX_REDIRECTS == 20


def test_proxy(hx):
    if not hasattr(hx, "Headers"):
        pytest.skip("URL not built yet")
    p = hx.Proxy("http://user:pass@proxy.local:8080", headers={"X-A": "1"})
    assert p.auth == ("user", "pass")
    assert p.raw_auth == (b"user", b"pass")
    assert str(p.url) == "http://proxy.local:8080"
    assert (
        repr(p)
        == "Proxy('http://proxy.local:8080', auth=('user', '********'), headers={'x-a': '1'})"
    )
    q = hx.Proxy(hx.URL("https://proxy.local"))
    assert q.auth is None and q.raw_auth is None
    assert repr(q) == "Proxy('https://proxy.local')"
    with pytest.raises(ValueError, match="Unknown scheme for proxy URL"):
        hx.Proxy("ftp://proxy.local")


BAD_DEFAULT_TIMEOUTS = ["5", b"5", [1, 2], {"read": 1}, object()]


@pytest.mark.httprs_only
@pytest.mark.parametrize("value", BAD_DEFAULT_TIMEOUTS)
def test_timeout_of_a_wrong_type_is_refused_as_httpx2(rs, presented_as_httpx2, value):
    """Presented as httpx2, a default timeout that is no number, None, tuple or Timeout
    is a TypeError at once, with httpx2 2.17's message (keywords given beside it or
    not; a client's `timeout=` too)."""
    import httpx2

    with pytest.raises(TypeError) as theirs:
        httpx2.Timeout(value)
    for make in (
        lambda: rs.Timeout(value),
        lambda: rs.Timeout(value, connect=1.0),
        lambda: __import__("httprs").Client(timeout=value),
    ):
        with pytest.raises(TypeError) as ours:
            make()
        assert str(ours.value) == str(theirs.value)
        assert str(ours.value).startswith("Invalid timeout: expected a number, `None`")


@pytest.mark.httprs_only
@pytest.mark.parametrize("value", [None, 0, 2.5, True, "decimal", "fraction", "float-like"])
def test_timeout_numbers_are_kept_as_httpx2(rs, presented_as_httpx2, value):
    import decimal
    import fractions

    import httpx2

    class FloatLike:
        def __float__(self):
            return 1.5

    value = {
        "decimal": decimal.Decimal("1.5"),
        "fraction": fractions.Fraction(3, 2),
        "float-like": FloatLike(),
    }.get(value, value)
    assert rs.Timeout(value).as_dict() == httpx2.Timeout(value).as_dict()


@pytest.mark.parametrize("value", BAD_DEFAULT_TIMEOUTS[:2])
def test_timeout_of_a_wrong_type_is_kept_as_httpx(hx, value):
    """httpx 0.28.1 keeps such a value (the request then fails where it is used:
    tests/test_timeouts.py::test_bad_timeout_values_raise_as_httpx), and so does httprs
    under any other name than httpx2."""
    assert hx.Timeout(value).as_dict() == dict.fromkeys(
        ("connect", "read", "write", "pool"), value
    )

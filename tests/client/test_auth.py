import hashlib
from urllib.request import parse_http_list

import pytest


def echo_auth(hx):
    def handler(request):
        return hx.Response(200, json={"auth": request.headers.get("authorization")})

    return handler


def test_basic_auth_tuple(hx):
    client = hx.Client(transport=hx.MockTransport(echo_auth(hx)), auth=("user", "pass"))
    assert client.get("http://example.org/").json()["auth"] == "Basic dXNlcjpwYXNz"


def test_basic_auth_bytes_and_unicode(hx):
    client = hx.Client(transport=hx.MockTransport(echo_auth(hx)))
    response = client.get("http://example.org/", auth=hx.BasicAuth(b"us\xe9r", "pässword"))
    assert response.json()["auth"] == "Basic dXPpcjpww6Rzc3dvcmQ="


def test_url_userinfo_auth(hx):
    client = hx.Client(transport=hx.MockTransport(echo_auth(hx)))
    response = client.get("http://tom:secret@example.org/")
    assert response.json()["auth"] == "Basic dG9tOnNlY3JldA=="
    response = client.get("http://tom:secret@example.org/", auth=("a", "b"))
    assert response.json()["auth"] == "Basic YTpi"


def test_request_auth_none_overrides_client(hx):
    client = hx.Client(transport=hx.MockTransport(echo_auth(hx)), auth=("u", "p"))
    assert client.get("http://example.org/", auth=None).json()["auth"] is None
    assert client.get("http://example.org/").json()["auth"] == "Basic dTpw"


def test_function_auth(hx):
    def add_token(request):
        request.headers["Authorization"] = "Token abc"
        return request

    client = hx.Client(transport=hx.MockTransport(echo_auth(hx)), auth=add_token)
    assert client.get("http://example.org/").json()["auth"] == "Token abc"


def test_custom_auth_flow_retries(hx):
    class TokenAuth(hx.Auth):
        requires_response_body = True

        def __init__(self):
            self.calls = 0

        def auth_flow(self, request):
            request.headers["Authorization"] = "old"
            response = yield request
            self.calls += 1
            assert response.content == b"expired"  # read because requires_response_body
            if response.status_code == 401:
                request.headers["Authorization"] = "new"
                yield request

    def handler(request):
        if request.headers["authorization"] == "new":
            return hx.Response(200, text="ok")
        return hx.Response(401, content=iter([b"expired"]))

    auth = TokenAuth()
    client = hx.Client(transport=hx.MockTransport(handler), auth=auth)
    response = client.get("http://example.org/")
    assert response.text == "ok"
    assert auth.calls == 1
    assert [r.status_code for r in response.history] == [401]
    assert response.history[0].is_closed


def test_auth_flow_requires_request_body(hx):
    class SigningAuth(hx.Auth):
        requires_request_body = True

        def auth_flow(self, request):
            request.headers["X-Signature"] = hashlib.md5(request.content).hexdigest()
            yield request

    def body():
        yield b"sign "
        yield b"me"

    client = hx.Client(
        transport=hx.MockTransport(lambda r: hx.Response(200, text=r.headers["x-signature"])),
        auth=SigningAuth(),
    )
    response = client.post("http://example.org/", content=body())
    assert response.text == hashlib.md5(b"sign me").hexdigest()


def test_auth_flow_generator_closed_on_error(hx):
    closed = []

    class Flow(hx.Auth):
        def auth_flow(self, request):
            try:
                yield request
                yield request
            finally:
                closed.append(True)

    def handler(request):
        raise hx.ReadError("boom")

    client = hx.Client(transport=hx.MockTransport(handler), auth=Flow())
    with pytest.raises(hx.ReadError):
        client.get("http://example.org/")
    assert closed == [True]


def test_netrc_auth(hx, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org\nlogin alice\npassword wonder\n")
    netrc.chmod(0o600)
    client = hx.Client(
        transport=hx.MockTransport(echo_auth(hx)), auth=hx.NetRCAuth(file=str(netrc))
    )
    assert client.get("http://example.org/").json()["auth"] == "Basic YWxpY2U6d29uZGVy"
    assert client.get("http://other.org/").json()["auth"] is None


# -- Digest -------------------------------------------------------------------------------

HASHES = {
    "MD5": hashlib.md5,
    "SHA": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-512": hashlib.sha512,
}


class DigestServer:
    """Verifies Digest Authorization headers the way a server does (RFC 7616)."""

    def __init__(self, hx, algorithm="MD5", qop="auth", opaque="xyz", user="bob", pw="pw"):
        self.hx = hx
        self.algorithm = algorithm
        self.qop = qop
        self.opaque = opaque
        self.user = user
        self.pw = pw
        self.nonce = "n0nce123"
        self.realm = "test@example.org"
        self.seen = []

    def challenge(self):
        parts = [f'realm="{self.realm}"', f'nonce="{self.nonce}"']
        if self.qop is not None:
            parts.append(f'qop="{self.qop}"')
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        parts.append(f"algorithm={self.algorithm}")
        return "Digest " + ", ".join(parts)

    def verify(self, request, header):
        fields = {}
        for item in parse_http_list(header[len("Digest ") :]):
            key, _, value = item.strip().partition("=")
            fields[key] = value[1:-1] if value.startswith('"') else value
        self.seen.append(fields)
        base = self.algorithm.upper().replace("-SESS", "")
        h = HASHES[base]

        def hd(s):
            return h(s.encode()).hexdigest()

        ha1 = hd(f"{self.user}:{self.realm}:{self.pw}")
        if self.algorithm.upper().endswith("-SESS"):
            ha1 = hd(f"{ha1}:{self.nonce}:{fields['cnonce']}")
        ha2 = hd(f"{request.method}:{fields['uri']}")
        if "qop" in fields:
            expected = hd(
                f"{ha1}:{self.nonce}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}"
            )
        else:
            expected = hd(f"{ha1}:{self.nonce}:{ha2}")
        return (
            fields["response"] == expected
            and fields["username"] == self.user
            and fields["uri"] == request.url.raw_path.decode()
            and fields.get("opaque") == self.opaque
        )

    def __call__(self, request):
        header = request.headers.get("authorization")
        if header is None or not header.startswith("Digest "):
            return self.hx.Response(
                401, headers={"WWW-Authenticate": self.challenge(), "Set-Cookie": "c=1"}
            )
        if self.verify(request, header):
            return self.hx.Response(200, text="welcome")
        return self.hx.Response(403)


@pytest.mark.parametrize(
    "algorithm",
    ["MD5", "MD5-SESS", "SHA", "SHA-SESS", "SHA-256", "SHA-256-SESS", "SHA-512", "SHA-512-SESS"],
)
@pytest.mark.parametrize("qop", ["auth", "auth, auth-int", None])
def test_digest_auth(hx, algorithm, qop):
    if qop is None and algorithm.endswith("-SESS"):
        pytest.skip("-sess without qop: httpx hashes a cnonce it never sends (unverifiable)")
    server = DigestServer(hx, algorithm=algorithm, qop=qop)
    client = hx.Client(transport=hx.MockTransport(server))
    response = client.get("http://example.org/path?q=1", auth=hx.DigestAuth("bob", "pw"))
    assert response.status_code == 200
    assert response.text == "welcome"
    assert len(response.history) == 1
    assert response.history[0].status_code == 401
    fields = server.seen[0]
    assert fields["algorithm"] == algorithm
    assert fields["uri"] == "/path?q=1"
    if qop is None:
        assert "qop" not in fields and "nc" not in fields
    else:
        assert fields["qop"] == "auth"
        assert fields["nc"] == "00000001"
        assert len(fields["cnonce"]) == 16
    # The cookie set on the challenge is sent with the retry.
    assert response.request.headers["cookie"] == "c=1"


def test_digest_reuses_challenge_and_counts_nonce(hx):
    server = DigestServer(hx)
    auth = hx.DigestAuth("bob", "pw")
    client = hx.Client(transport=hx.MockTransport(server), auth=auth)
    assert client.get("http://example.org/").status_code == 200
    second = client.get("http://example.org/again")
    assert second.status_code == 200
    assert second.history == []  # the stored challenge was used up front
    assert server.seen[-1]["nc"] == "00000002"


def test_digest_wrong_password(hx):
    client = hx.Client(transport=hx.MockTransport(DigestServer(hx)))
    response = client.get("http://example.org/", auth=hx.DigestAuth("bob", "nope"))
    assert response.status_code == 403


def test_digest_no_challenge(hx):
    client = hx.Client(transport=hx.MockTransport(lambda r: hx.Response(200)))
    response = client.get("http://example.org/", auth=hx.DigestAuth("u", "p"))
    assert response.status_code == 200
    assert response.history == []
    basic_only = hx.MockTransport(
        lambda r: hx.Response(401, headers={"WWW-Authenticate": 'Basic realm="x"'})
    )
    client = hx.Client(transport=basic_only)
    response = client.get("http://example.org/", auth=hx.DigestAuth("u", "p"))
    assert response.status_code == 401


def test_digest_malformed_challenge(hx):
    transport = hx.MockTransport(
        lambda r: hx.Response(401, headers={"WWW-Authenticate": 'Digest realm="x"'})
    )
    client = hx.Client(transport=transport)
    with pytest.raises(hx.ProtocolError, match="Malformed Digest WWW-Authenticate header"):
        client.get("http://example.org/", auth=hx.DigestAuth("u", "p"))


def test_digest_auth_int_only(hx):
    server = DigestServer(hx, qop="auth-int")
    client = hx.Client(transport=hx.MockTransport(server))
    with pytest.raises(NotImplementedError, match="auth-int"):
        client.get("http://example.org/", auth=hx.DigestAuth("bob", "pw"))
    server = DigestServer(hx, qop="bogus")
    client = hx.Client(transport=hx.MockTransport(server))
    with pytest.raises(hx.ProtocolError, match="Unexpected qop value"):
        client.get("http://example.org/", auth=hx.DigestAuth("bob", "pw"))

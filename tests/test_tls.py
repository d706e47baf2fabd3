"""TLS: verification modes, CA configuration, hostname checks and client certificates."""

from __future__ import annotations

import ssl

import pytest
from servers.tls import CLIENT_KEY_PASSWORD, server_context, tls_server

import httprs


def localhost(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


@pytest.fixture
def ca_context(certs):
    return ssl.create_default_context(cafile=certs.ca_file)


def test_default_verify_fails_on_unknown_ca(https_server):
    with httprs.Client() as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(https_server.url)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_default_verify_fails_without_env(https_server, clean_env):
    with pytest.raises(httprs.ConnectError) as info:
        httprs.get(https_server.url)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_verify_false(https_server):
    with httprs.Client(verify=False) as c:
        r = c.get(https_server.url + "/path?q=1")
        assert r.status_code == 200
        assert r.json()["target"] == "/path?q=1"
        assert r.url.scheme == "https"
    assert httprs.get(https_server.url, verify=False).status_code == 200


def test_verify_context_with_ca(https_server, ca_context):
    with httprs.Client(verify=ca_context) as c:
        doc = c.get(https_server.url).json()
        assert doc["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert c.get(localhost(https_server.url)).status_code == 200


def test_verify_context_without_ca_fails(https_server, certs):
    ctx = ssl.create_default_context(cafile=certs.other_ca_file)
    with httprs.Client(verify=ctx) as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(https_server.url)
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_verify_context_no_check_hostname(tls_server_factory, certs):
    srv = tls_server_factory(certs.wrong_name)
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    ctx.check_hostname = False
    with httprs.Client(verify=ctx) as c:
        assert c.get(srv.url).status_code == 200


def test_verify_str_path_is_deprecated_but_works(https_server, certs):
    with pytest.warns(DeprecationWarning, match="verify=<str>"):
        c = httprs.Client(verify=certs.ca_file)
    with c:
        assert c.get(https_server.url).status_code == 200
    with pytest.warns(DeprecationWarning):
        c = httprs.Client(verify=certs.other_ca_file)
    with c:
        with pytest.raises(httprs.ConnectError):
            c.get(https_server.url)


def test_ssl_cert_file_env_with_trust_env(https_server, certs, clean_env):
    clean_env.setenv("SSL_CERT_FILE", certs.ca_file)
    with httprs.Client() as c:
        assert c.get(https_server.url).status_code == 200
    with httprs.Client(trust_env=False) as c:
        with pytest.raises(httprs.ConnectError):
            c.get(https_server.url)


def test_wrong_ip_fails(tls_server_factory, certs, ca_context):
    srv = tls_server_factory(certs.wrong_name)
    good = tls_server_factory()
    with httprs.Client(verify=ca_context) as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(srv.url)
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        # the client stays usable
        assert c.get(good.url).status_code == 200


def test_wrong_hostname_fails(tls_server_factory, certs, ca_context):
    srv = tls_server_factory(certs.wrong_name)
    with httprs.Client(verify=ca_context) as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(localhost(srv.url))
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_sni_sent_for_names_not_ips(certs, ca_context):
    names: list = []
    srv = tls_server(server_context(certs.server, sni_log=names))
    try:
        with httprs.Client(verify=ca_context) as c:
            c.get(localhost(srv.url))
            c.get(srv.url)
    finally:
        srv.close()
    assert names == ["localhost", None]


def test_tls_keepalive_reuse(https_server, ca_context):
    with httprs.Client(verify=ca_context) as c:
        docs = [c.get(https_server.url).json() for _ in range(4)]
    assert [d["connection_index"] for d in docs] == [0, 0, 0, 0]
    assert https_server.connections == 1


def test_tls_upload(https_server, ca_context):
    data = b"z" * (3 * 1024 * 1024 + 7)
    with httprs.Client(verify=ca_context) as c:
        assert c.post(https_server.url, content=data).json()["body_len"] == len(data)
        chunks = (data[i : i + 100000] for i in range(0, len(data), 100000))
        assert c.post(https_server.url, content=chunks).json()["body_len"] == len(data)


@pytest.fixture
def mtls_server(certs):
    srv = tls_server(server_context(certs.server, require_client_cert_from=certs.ca))
    yield srv
    srv.close()


def test_client_cert_via_context(mtls_server, certs):
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    ctx.load_cert_chain(certs.client_cert_file, certs.client_key_file)
    with httprs.Client(verify=ctx) as c:
        assert c.get(mtls_server.url).json()["client_subject"] is not None


@pytest.mark.parametrize("form", ["tuple", "combined_path", "with_password"])
def test_client_cert_deprecated_cert_argument(mtls_server, certs, ca_context, form):
    cert = {
        "tuple": (certs.client_cert_file, certs.client_key_file),
        "combined_path": certs.client_both_file,
        "with_password": (
            certs.client_cert_file,
            certs.client_key_encrypted_file,
            CLIENT_KEY_PASSWORD.decode(),
        ),
    }[form]
    with pytest.warns(DeprecationWarning, match="cert=..."):
        c = httprs.Client(verify=ca_context, cert=cert)
    with c:
        assert c.get(mtls_server.url).json()["client_subject"] is not None


def test_client_cert_missing_fails(mtls_server, ca_context, https_server):
    with httprs.Client(verify=ca_context) as c:
        # TLS 1.3: the server's "certificate required" alert arrives on the first read
        # (httpx: ReadError); with TLS 1.2 it fails in the handshake (ConnectError).
        with pytest.raises((httprs.ReadError, httprs.ConnectError)):
            c.get(mtls_server.url)
        assert c.get(https_server.url).status_code == 200


def test_https_server_via_uvicorn(certs, ca_context, tmp_path):
    from servers.app import App, UvicornThread

    key = tmp_path / "key.pem"
    chain = tmp_path / "chain.pem"
    certs.server.private_key_pem.write_to_path(str(key))
    certs.server.cert_chain_pems[0].write_to_path(str(chain))
    srv = UvicornThread(App(), ssl_certfile=str(chain), ssl_keyfile=str(key)).start()
    try:
        with httprs.Client(verify=ca_context) as c:
            r = c.get(srv.url + "/gzip")
            assert r.status_code == 200
            assert len(r.content) > 1000
            assert c.get(srv.url + "/json").json()["name"] == "httprs"
            assert len(c.get(srv.url + "/bytes/2000000").content) == 2000000
    finally:
        srv.stop()

"""TLS: verification modes, CA configuration, hostname checks and client certificates."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest
from servers.scripted import ScriptedServer
from servers.tls import CLIENT_KEY_PASSWORD, server_context, tls_info_handler, tls_server

import httprs

VALIDATING = os.environ.get("HTTPRS_TEST_TARGET", "") == "httpx"


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


@pytest.mark.parametrize(
    ("host", "named", "ok"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("::1", "::1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("::1", "127.0.0.1", False),
        ("::1", "::2", False),
    ],
)
def test_ip_address_is_checked_against_the_certificate(certs, clean_env, host, named, ok):
    """An IP-literal host is matched against the certificate's IP SANs, as bytes
    (so any spelling of the same IPv6 address matches), IPv4 and IPv6 alike, on a
    passed context and on httprs's own (verify=True, SSL_CERT_FILE)."""
    clean_env.setenv("SSL_CERT_FILE", certs.ca_file)
    srv = ScriptedServer(
        tls_info_handler, ssl_context=server_context(certs.ca.issue_cert(named)), host=host
    )
    try:
        ctx = ssl.create_default_context(cafile=certs.ca_file)
        for verify in (ctx, True):
            with httprs.Client(verify=verify) as c:
                if ok:
                    assert c.get(srv.url).status_code == 200
                    continue
                with pytest.raises(httprs.ConnectError) as info:
                    c.get(srv.url)
                assert "IP address mismatch" in str(info.value)
    finally:
        srv.close()


def test_wrong_hostname_fails(tls_server_factory, certs, ca_context):
    srv = tls_server_factory(certs.wrong_name)
    with httprs.Client(verify=ca_context) as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(localhost(srv.url))
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_verify_failure_is_caused_by_ssl_cert_verification_error(https_server):
    """As in httpx, the ConnectError's cause chain holds the ssl module's
    SSLCertVerificationError (openai's TLS hostname tests walk the chain for it)."""
    with httprs.Client() as c:
        with pytest.raises(httprs.ConnectError) as info:
            c.get(https_server.url)
    cause = info.value.__cause__
    assert isinstance(cause, ssl.SSLCertVerificationError)
    assert cause.reason == "CERTIFICATE_VERIFY_FAILED"
    assert str(info.value) in str(cause)


def _cause_of_class(error: BaseException, cls: type) -> BaseException:
    while error is not None and not isinstance(error, cls):
        error = error.__cause__ or error.__context__  # (httpcore's chains by context)
    assert error is not None
    return error


@pytest.mark.parametrize("kind", ["exact", "path", "subclass"])
@pytest.mark.parametrize("case", ["unknown_ca", "wrong_name", "ip_mismatch"])
def test_verify_failure_cause_tells_code_and_message_as_httpx(
    tls_server_factory, certs, kind, case
):
    """The SSLCertVerificationError in the chain carries `verify_code` and
    `verify_message` as Python's ssl sets them (code reporting why a certificate was
    refused reads them), on each TLS path: an adopted context, an own one, Python's."""
    import certifi

    srv = tls_server_factory(certs.wrong_name if case != "unknown_ca" else None)
    url = localhost(srv.url) if case != "ip_mismatch" else srv.url  # (127.0.0.1)
    ca = certifi.where() if case == "unknown_ca" else certs.ca_file

    def verify():
        if kind == "path":
            return ca
        ctx = (ssl.SSLContext if kind == "exact" else PinningContext)(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        return ctx

    seen = {}
    for lib in (httpx, httprs):
        with lib.Client(verify=verify()) as c:
            with pytest.raises(lib.ConnectError) as info:
                c.get(url)
        cause = _cause_of_class(info.value, ssl.SSLCertVerificationError)
        seen[lib.__name__] = (cause.verify_code, cause.verify_message, cause.reason)
    assert seen["httprs"] == seen["httpx"]


@pytest.mark.parametrize("lib", [httpx, httprs])
def test_a_server_side_context_is_refused_with_pythons_words(https_server, lib):
    """verify= given a server's context (ssl.create_default_context(Purpose.CLIENT_AUTH),
    a common mistake) fails the request with Python's own explanation, as with httpx
    (it was OpenSSL's "called a function you should not call")."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with lib.Client(verify=ctx) as c:
        with pytest.raises(lib.ConnectError, match="with a PROTOCOL_TLS_SERVER context"):
            c.get(https_server.url)


@pytest.mark.anyio
async def test_a_server_side_context_is_refused_with_pythons_words_async(https_server):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    async with httprs.AsyncClient(verify=ctx) as c:
        with pytest.raises(httprs.ConnectError, match="with a PROTOCOL_TLS_SERVER context"):
            await c.get(https_server.url)


@pytest.mark.parametrize("kind", ["exact", "path", "subclass"])
def test_handshake_failure_is_caused_by_ssl_error_as_httpx(certs, kind):
    """A handshake the server refuses (here: it speaks TLS 1.2 at most, the client 1.3
    at least) ends httpx's chain in the ssl module's SSLError, with its library and
    reason; httprs's ConnectError had no cause."""
    server_ctx = server_context(certs.server)
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    srv = tls_server(server_ctx)

    def verify():
        if kind == "path":
            return certs.ca_file  # httprs's own context
        ctx = (ssl.SSLContext if kind == "exact" else PinningContext)(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(certs.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx

    seen = {}
    try:
        for lib in (httpx, httprs):  # each side's cause: (class, errno, library, reason)
            if kind == "path":  # a TLS 1.2 cipher no default client offers
                server_ctx.set_ciphers("AES128-SHA")
            with lib.Client(verify=verify()) as c:
                with pytest.raises(lib.ConnectError) as info:
                    c.get(localhost(srv.url))
            cause = _cause_of_class(info.value, ssl.SSLError)
            seen[lib.__name__] = (type(cause), cause.errno, cause.library, cause.reason)
    finally:
        srv.close()
    assert seen["httprs"] == seen["httpx"]


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


@pytest.mark.parametrize("verify", ["context", "default"])
@pytest.mark.parametrize(
    "form",
    ["tuple", "combined_path", "with_password", "list", "one_tuple", "password_callable"],
)
def test_client_cert_deprecated_cert_argument(
    mtls_server, certs, ca_context, clean_env, monkeypatch, form, verify
):
    """Every form httpx's load_cert_chain(*cert) takes, into a passed context or the
    client's own (verify=True: SSL_CERT_FILE's CA here); a list, a 1-tuple and a
    password callable were a TypeError for the own context until session 50."""
    cert = {
        "tuple": (certs.client_cert_file, certs.client_key_file),
        "combined_path": certs.client_both_file,
        "with_password": (
            certs.client_cert_file,
            certs.client_key_encrypted_file,
            CLIENT_KEY_PASSWORD.decode(),
        ),
        "list": [certs.client_cert_file, certs.client_key_file],
        "one_tuple": (certs.client_both_file,),
        "password_callable": (
            certs.client_cert_file,
            certs.client_key_encrypted_file,
            lambda: CLIENT_KEY_PASSWORD,
        ),
    }[form]
    if verify == "default":
        monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    with pytest.warns(DeprecationWarning, match="cert=..."):
        c = httprs.Client(verify=ca_context if verify == "context" else True, cert=cert)
    with c:
        assert c.get(mtls_server.url).json()["client_subject"] is not None


@pytest.mark.httprs_only  # httpx 0.28.1 drops `cert=` when `verify=` is a path
def test_client_cert_is_presented_with_a_ca_path(mtls_server, certs):
    with pytest.warns(DeprecationWarning):
        c = httprs.Client(verify=certs.ca_file, cert=certs.client_both_file)
    with c:
        assert c.get(mtls_server.url).json()["client_subject"] is not None


@pytest.mark.httprs_only
def test_ca_path_with_cert_is_refused_as_httpx2(presented_as_httpx2, certs):
    match = "cannot be combined with `cert=...`"
    for build in (httprs.Client, httprs.AsyncClient, httprs.HTTPTransport):
        with pytest.raises(TypeError, match=match):
            build(verify=certs.ca_file, cert=certs.client_both_file)
    with pytest.raises(TypeError, match=match):
        httprs._config.create_ssl_context(verify=certs.ca_file, cert=certs.client_both_file)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_a_ca_directory_changed_in_place_is_read_again_by_the_next_client(
    https_server, certs, clean_env, tmp_path, lib
):
    """SSL_CERT_DIR's certificates are read as verifications need them: a CA file
    replaced under its hashed name (the directory's own stat() unchanged) is what the
    next client trusts, as with httpx's context built in each Client()."""
    hashed = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", certs.ca_file],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    directory = tmp_path / "cadir"
    directory.mkdir()
    entry = directory / f"{hashed}.0"
    entry.write_bytes(certs.ca.cert_pem.bytes())
    clean_env.setenv("SSL_CERT_DIR", str(directory))
    with lib.Client() as client:
        assert client.get(https_server.url).status_code == 200
    entry.write_bytes(certs.other_ca.cert_pem.bytes())  # the CA taken out, in place
    with lib.Client() as client:
        with pytest.raises(lib.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get(https_server.url)


@pytest.mark.httprs_only  # httpx reads the file in C too; its certifi path stats in Python
@pytest.mark.parametrize("kind", ["Client", "AsyncClient"])
def test_building_a_client_stats_no_file_from_python(certs, clean_env, monkeypatch, kind):
    """A client made inside a coroutine makes no blocking call an event-loop watchdog
    (BlockBuster, as mcp's tests run it) would flag: the CA file named by SSL_CERT_FILE
    is read by OpenSSL, and checked for existence only when it cannot be loaded."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    calls = []
    real_stat = os.stat

    def counting_stat(*args, **kwargs):
        calls.append(args[0])
        return real_stat(*args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    getattr(httprs, kind)()
    assert calls == []
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file + ".missing")
    with pytest.raises(FileNotFoundError, match="missing"):
        getattr(httprs, kind)()


@pytest.mark.parametrize("how", ["rewritten", "replaced"])
@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_a_default_store_changed_on_disk_is_read_again_by_the_next_client(
    https_server, certs, clean_env, tmp_path, lib, how
):
    """The default context reads SSL_CERT_FILE's store as it is when a client is made:
    a CA taken out of the bundle (rewritten in place, or replaced by a rename as
    update-ca-certificates and mounted secrets do) is no longer trusted by the next
    client, and one put back is trusted again, as httpx's contexts, built in each
    Client(), do. httprs kept the first store it read for the process's lifetime (a CA
    removed from the bundle still trusted). A client made earlier keeps its store."""
    bundle = tmp_path / "bundle.pem"
    ca, other = certs.ca.cert_pem.bytes(), certs.other_ca.cert_pem.bytes()

    def store(*pems):
        if how == "rewritten":
            bundle.write_bytes(b"".join(pems))
        else:
            staged = tmp_path / "staged.pem"
            staged.write_bytes(b"".join(pems))
            os.replace(staged, bundle)

    clean_env.setenv("SSL_CERT_FILE", str(bundle))
    store(other, ca)
    with lib.Client(limits=lib.Limits(max_keepalive_connections=0)) as trusting:
        assert trusting.get(https_server.url).status_code == 200
        store(other)  # the CA removed (the file's size changes with each step)
        with lib.Client() as after_removal:
            with pytest.raises(lib.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                after_removal.get(https_server.url)
        assert trusting.get(https_server.url).status_code == 200
    store(ca, other, ca)  # put back
    with lib.Client() as after_return:
        assert after_return.get(https_server.url).status_code == 200


def test_context_made_before_the_class_was_replaced_is_adopted(https_server, certs, monkeypatch):
    """truststore.inject_into_ssl() (and mocket) put another class in ssl.SSLContext's
    place: a context made before, of the stdlib class, is still a context to adopt (httpx
    takes any object), sync and async."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)

    class Injected(ssl.SSLContext):
        pass

    monkeypatch.setattr(ssl, "SSLContext", Injected)
    with httprs.Client(verify=ctx) as client:
        assert client.get(https_server.url).status_code == 200

    async def main():
        async with httprs.AsyncClient(verify=ctx) as client:
            return (await client.get(https_server.url)).status_code

    assert asyncio.run(main()) == 200


class _NoContext:
    """mocket's stand-in for ssl.SSLContext while it is active: no real context."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@pytest.mark.httprs_only  # httpx's contexts are the stand-in's own objects then
def test_a_replaced_context_class_fails_only_https_requests(
    server, https_server, certs, monkeypatch
):
    """With ssl.SSLContext replaced by a class that makes no real context, the
    interpreter's TLS defaults cannot be read: clients are still made (SSL_CERT_FILE set,
    whose context is built eagerly), plain HTTP works, and an HTTPS request fails with a
    ConnectError that says why; nothing looser is used instead, nor cached."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    monkeypatch.setattr(ssl, "SSLContext", _NoContext)
    with httprs.Client() as client:
        assert client.get(server.url).status_code == 200
        with pytest.raises(httprs.ConnectError, match="Could not make Python's default SSL"):
            client.get(https_server.url)
    monkeypatch.undo()
    with httprs.Client(verify=ssl.create_default_context(cafile=certs.ca_file)) as client:
        assert client.get(https_server.url).status_code == 200


def test_empty_verify_path_is_the_interpreters_default_store(
    https_server, certs, clean_env, monkeypatch
):
    """`verify=""`, as httpx: `ssl.create_default_context(cafile="")` loads no file but the
    interpreter's default store, which OpenSSL reads from SSL_CERT_FILE when it is set."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    with pytest.warns(DeprecationWarning):
        client = httprs.Client(verify="", trust_env=False)
    with client:
        assert client.get(https_server.url).status_code == 200
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.warns(DeprecationWarning):
        client = httprs.Client(verify="")
    with client, pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(https_server.url)


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


@pytest.mark.parametrize("sni", ["example.org", b"example.org"])
def test_sni_hostname_extension_sets_sni_and_checked_name(certs, ca_context, sni):
    names: list = []
    srv = tls_server(server_context(certs.wrong_name, sni_log=names))
    if isinstance(sni, bytes) and VALIDATING:
        sni = sni.decode()
    try:
        with httprs.Client(verify=ca_context) as c:
            r = c.get(srv.url, extensions={"sni_hostname": sni})
            assert r.status_code == 200
        # the certificate is checked against the SNI name, not the URL's host
        with httprs.Client(verify=ca_context) as c:
            with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                c.get(srv.url, extensions={"sni_hostname": "localhost"})
            with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                c.get(srv.url)
    finally:
        srv.close()
    assert names[0] == "example.org"


def test_sni_hostname_with_a_nul_is_refused_not_cut(certs, ca_context):
    """The server's certificate names example.org: cut at the NUL, the name would pass
    the check. A TypeError, as the ssl module raises in httpx; nothing is sent, and the
    client goes on."""
    srv = tls_server(server_context(certs.wrong_name))
    try:
        with httprs.Client(verify=ca_context) as c:
            with pytest.raises(TypeError, match="null"):
                c.get(srv.url, extensions={"sni_hostname": "example.org\x00.attacker.test"})
            assert c.get(srv.url, extensions={"sni_hostname": "example.org"}).status_code == 200
    finally:
        srv.close()


@pytest.mark.anyio
async def test_sni_hostname_with_a_nul_is_refused_not_cut_async(certs, ca_context):
    srv = tls_server(server_context(certs.wrong_name))
    try:
        async with httprs.AsyncClient(verify=ca_context) as c:
            with pytest.raises(TypeError, match="null"):
                await c.get(srv.url, extensions={"sni_hostname": "example.org\x00.x"})
            r = await c.get(srv.url, extensions={"sni_hostname": "example.org"})
            assert r.status_code == 200
    finally:
        srv.close()


@pytest.mark.httprs_only
def test_sni_hostname_is_part_of_the_pool_key(certs, ca_context):
    """httpcore reuses a connection verified for another sni_hostname; httprs does not
    (a name the certificate was not checked for never rides on it)."""
    srv = tls_server(server_context(certs.wrong_name))
    try:
        with httprs.Client(verify=ca_context) as c:
            assert c.get(srv.url, extensions={"sni_hostname": "example.org"}).status_code == 200
            with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                c.get(srv.url)
    finally:
        srv.close()


def _cert_error(anyio_backend, text):
    """httpx on trio reports a failed handshake as ConnectError with an empty message."""
    return None if VALIDATING and anyio_backend == "trio" else text


@pytest.mark.anyio
async def test_sni_hostname_extension_async(certs, ca_context, anyio_backend):
    names: list = []
    srv = tls_server(server_context(certs.wrong_name, sni_log=names))
    try:
        async with httprs.AsyncClient(verify=ca_context) as c:
            r = await c.get(srv.url, extensions={"sni_hostname": "example.org"})
            assert r.status_code == 200
        async with httprs.AsyncClient(verify=ca_context) as c:
            match = _cert_error(anyio_backend, "CERTIFICATE_VERIFY_FAILED")
            with pytest.raises(httprs.ConnectError, match=match):
                await c.get(srv.url)
    finally:
        srv.close()
    assert names[0] == "example.org"


@pytest.mark.httprs_only
def test_session_tickets_are_not_shared_across_proxies(
    proxy_factory, https_server, certs, clean_env
):
    """Clients behind different proxies share the default TLS context (and its session
    cache): a ticket learned through proxy A is resumed through A only, never offered
    through proxy B."""
    clean_env.setenv("SSL_CERT_FILE", certs.ca_file)
    proxy_a, proxy_b = proxy_factory(), proxy_factory()

    def fetch(proxy):
        with httprs.Client(proxy=proxy.url) as c:
            return c.get(https_server.url).json()["session_reused"]

    assert fetch(proxy_a) is False
    assert fetch(proxy_b) is False  # no ticket from A's tunnel
    assert fetch(proxy_a) is True  # A's own ticket is resumed (the check can see resumption)
    assert fetch(proxy_b) is True  # and B learned its own on its first connection


# ---------------------------------------------------------------- ssl.SSLContext honoured


def _der(leaf) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


class _PinnedObject(ssl.SSLObject):
    def do_handshake(self):
        super().do_handshake()
        self.context.check_pin(self.getpeercert(binary_form=True))


class PinningContext(ssl.SSLContext):
    """Checks a SHA-256 pin of the server certificate, for sockets and for BIOs."""

    pin = ""
    sslobject_class = _PinnedObject

    def check_pin(self, der):
        if hashlib.sha256(der).hexdigest() != self.pin:
            raise ssl.SSLError("certificate pin mismatch")

    def wrap_socket(self, *args, **kwargs):
        sock = super().wrap_socket(*args, **kwargs)
        try:
            self.check_pin(sock.getpeercert(binary_form=True))
        except Exception:
            sock.close()
            raise
        return sock


def pinning_context(certs, pinned_leaf):
    ctx = PinningContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    ctx.pin = hashlib.sha256(_der(pinned_leaf)).hexdigest()
    return ctx


def test_pinning_subclass_is_honoured(https_server, certs):
    with httprs.Client(verify=pinning_context(certs, certs.server)) as c:
        assert c.get(https_server.url).status_code == 200
    # the chain and the name are valid; only the subclass's pin check fails
    with httprs.Client(verify=pinning_context(certs, certs.wrong_name)) as c:
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)


@pytest.mark.anyio
async def test_pinning_subclass_is_honoured_async(https_server, certs, anyio_backend):
    async with httprs.AsyncClient(verify=pinning_context(certs, certs.server)) as c:
        assert (await c.get(https_server.url)).status_code == 200
    async with httprs.AsyncClient(verify=pinning_context(certs, certs.wrong_name)) as c:
        match = _cert_error(anyio_backend, "certificate pin mismatch")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)


def test_pinning_subclass_via_https_proxy(proxy_factory, https_server, certs):
    """The proxy's TLS session and the origin's inside it both run the subclass."""
    proxy = proxy_factory(ssl_context=server_context(certs.server))
    good = pinning_context(certs, certs.server)
    bad = pinning_context(certs, certs.wrong_name)
    with httprs.Client(proxy=httprs.Proxy(proxy.url, ssl_context=good), verify=good) as c:
        assert c.get(https_server.url).status_code == 200
    with httprs.Client(proxy=httprs.Proxy(proxy.url, ssl_context=bad), verify=good) as c:
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)
    with httprs.Client(proxy=httprs.Proxy(proxy.url, ssl_context=good), verify=bad) as c:
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)


class SocketOnlyPinning(ssl.SSLContext):
    def wrap_socket(self, *args, **kwargs):
        raise ssl.SSLError("pin check in wrap_socket")


@pytest.mark.httprs_only
def test_sync_refuses_a_context_customising_only_wrap_socket(certs):
    """httpx's sync transport calls wrap_socket; httprs runs TLS through wrap_bio, so a
    check living only in wrap_socket cannot run: refused instead of skipped."""
    ctx = SocketOnlyPinning(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(NotImplementedError, match="wrap_bio"):
        httprs.Client(verify=ctx)
    with pytest.raises(NotImplementedError, match="wrap_bio"):
        httprs.Client(proxy=httprs.Proxy("https://127.0.0.1:1", ssl_context=ctx))


@pytest.mark.httprs_only
def test_sync_refusal_holds_after_ssl_sslcontext_is_replaced(certs, monkeypatch):
    """truststore.inject_into_ssl() (or mocket) puts another class in ssl.SSLContext's
    place: a context of the stdlib class with a wrap_socket-only check is refused still,
    never adopted with its check skipped."""
    ctx = SocketOnlyPinning(ssl.PROTOCOL_TLS_CLIENT)

    class Injected(ssl.SSLContext):
        pass

    monkeypatch.setattr(ssl, "SSLContext", Injected)
    with pytest.raises(NotImplementedError, match="wrap_bio"):
        httprs.Client(verify=ctx)
    with pytest.raises(NotImplementedError, match="wrap_bio"):
        httprs.Client(proxy=httprs.Proxy("https://127.0.0.1:1", ssl_context=ctx))


@pytest.mark.anyio
async def test_async_runs_wrap_bio_like_httpx(https_server, certs):
    """httpx's AsyncClient (anyio) only calls wrap_bio: a wrap_socket override is not
    involved there, for httpx and httprs alike."""
    ctx = SocketOnlyPinning(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    async with httprs.AsyncClient(verify=ctx) as c:
        assert (await c.get(https_server.url)).status_code == 200


class _ClassHookPin:
    """The pin a class-level hook (installed on ssl.SSLContext itself) checks."""

    pin = ""

    @classmethod
    def check(cls, der):
        if hashlib.sha256(der).hexdigest() != cls.pin:
            raise ssl.SSLError("certificate pin mismatch (class-level hook)")


class _ClassPinnedObject(ssl.SSLObject):
    def do_handshake(self):
        super().do_handshake()
        if not self.server_side:  # the test servers run in this process too
            _ClassHookPin.check(self.getpeercert(binary_form=True))


class _ClassPinnedSocket(ssl.SSLSocket):
    def do_handshake(self, *args, **kwargs):
        super().do_handshake(*args, **kwargs)
        if not self.server_side:
            _ClassHookPin.check(self.getpeercert(binary_form=True))


@pytest.fixture
def class_level_pinning(monkeypatch, certs):
    """Installs a pin check on ssl.SSLContext itself, as a pinning library would (its
    sslobject_class and sslsocket_class). Yields a setter for the pinned leaf."""

    def pin_to(leaf):
        monkeypatch.setattr(_ClassHookPin, "pin", hashlib.sha256(_der(leaf)).hexdigest())
        monkeypatch.setattr(ssl.SSLContext, "sslobject_class", _ClassPinnedObject)
        monkeypatch.setattr(ssl.SSLContext, "sslsocket_class", _ClassPinnedSocket)

    return pin_to


def test_class_level_pinning_hook_is_honoured(https_server, certs, class_level_pinning):
    """A hook a library installs on ssl.SSLContext runs for a plain context too, even one
    a client already used before the hook came: the fast path is taken only while the
    class's TLS entry points are the ssl module's own (httpx runs the hook: so must we)."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    with httprs.Client(verify=ctx, limits=NO_KEEPALIVE) as c:
        assert c.get(https_server.url).status_code == 200
        class_level_pinning(certs.wrong_name)
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)
        class_level_pinning(certs.server)
        assert c.get(https_server.url).status_code == 200
    with httprs.Client(verify=ssl.create_default_context(cafile=certs.ca_file)) as c:
        class_level_pinning(certs.wrong_name)
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)


@pytest.mark.anyio
async def test_class_level_pinning_hook_is_honoured_async(
    https_server, certs, class_level_pinning, anyio_backend
):
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    async with httprs.AsyncClient(verify=ctx, limits=NO_KEEPALIVE) as c:
        assert (await c.get(https_server.url)).status_code == 200
        class_level_pinning(certs.wrong_name)
        match = _cert_error(anyio_backend, "certificate pin mismatch")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)
        class_level_pinning(certs.server)
        assert (await c.get(https_server.url)).status_code == 200


def test_class_level_hook_runs_for_a_clients_own_context(
    https_server, mtls_server, certs, class_level_pinning, monkeypatch
):
    """httpx builds a Python context for verify=True, False or a path, so a hook on
    ssl.SSLContext runs in its connections; while one is there, httprs's own contexts
    give way to the context httpx would build, run through its hooks (they ran
    OpenSSL directly and skipped it), and come back once the hook is gone. A client
    certificate given with a CA path is still presented (docs/compatibility.md, TLS)."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    with httprs.Client(limits=NO_KEEPALIVE) as c, httprs.Client(verify=False) as insecure:
        assert c.get(https_server.url).status_code == 200
        class_level_pinning(certs.wrong_name)
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            insecure.get(https_server.url)
        class_level_pinning(certs.server)
        assert c.get(https_server.url).status_code == 200
        if not VALIDATING:  # httpx 0.28.1 drops a certificate given with a CA path
            with pytest.warns(DeprecationWarning):
                mtls = httprs.Client(verify=certs.ca_file, cert=certs.client_both_file)
            with mtls:
                assert mtls.get(mtls_server.url).json()["client_subject"] is not None
        class_level_pinning(certs.wrong_name)
        monkeypatch.undo()
        assert c.get(https_server.url).status_code == 200


@pytest.mark.anyio
async def test_class_level_hook_runs_for_a_clients_own_context_async(
    https_server, certs, class_level_pinning, anyio_backend
):
    async with httprs.AsyncClient(verify=certs.ca_file, limits=NO_KEEPALIVE) as c:
        assert (await c.get(https_server.url)).status_code == 200
        class_level_pinning(certs.wrong_name)
        match = _cert_error(anyio_backend, "certificate pin mismatch")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)


@pytest.mark.anyio
async def test_wrap_bio_replaced_on_the_class_forges_the_sni_name(
    certs, ca_context, monkeypatch, anyio_backend
):
    """sanic's tests forge the name a server sees by replacing ssl.SSLContext.wrap_bio
    (tests/test_tls.py::test_cert_sni_list there): httpx's AsyncClient calls it for its
    verify=False context, so the server saw that name; httprs's own context skipped it
    and sent no name (an IP address's URL)."""
    seen: list = []
    srv = tls_server(server_context(certs.server, sni_log=seen))
    original = ssl.SSLContext.wrap_bio

    def forging(self, incoming, outgoing, server_side=False, server_hostname=None, session=None):
        name = server_hostname if server_side else "forged.example"
        return original(self, incoming, outgoing, server_side, name, session)

    monkeypatch.setattr(ssl.SSLContext, "wrap_bio", forging)
    try:
        async with httprs.AsyncClient(verify=False) as c:
            assert (await c.get(srv.url)).status_code == 200
    finally:
        srv.close()
    assert seen == ["forged.example"]


@pytest.mark.anyio
@pytest.mark.parametrize("passed", [False, True], ids=["own", "passed"])
async def test_a_pin_check_on_sslobject_itself_runs(
    https_server, certs, monkeypatch, anyio_backend, passed
):
    """A check put on ssl.SSLObject.do_handshake (not on ssl.SSLContext) runs in httpx's
    AsyncClient, whose TLS makes an SSLObject; httprs skipped it for its own contexts
    and for a passed one on the fast path."""
    original = ssl.SSLObject.do_handshake

    def refusing(self):
        original(self)
        if not self.server_side:
            raise ssl.SSLError("certificate pin mismatch (SSLObject hook)")

    verify = ssl.create_default_context(cafile=certs.ca_file) if passed else certs.ca_file
    async with httprs.AsyncClient(verify=verify, limits=NO_KEEPALIVE) as c:
        assert (await c.get(https_server.url)).status_code == 200
        monkeypatch.setattr(ssl.SSLObject, "do_handshake", refusing)
        match = _cert_error(anyio_backend, "certificate pin mismatch")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)
        monkeypatch.undo()
        assert (await c.get(https_server.url)).status_code == 200


@pytest.mark.httprs_only  # httpx's sync Client runs a wrap_socket hook; httprs cannot
def test_a_wrap_socket_hook_on_the_class_is_refused_by_a_sync_client(
    https_server, certs, monkeypatch
):
    """httpx's sync Client calls wrap_socket, httprs runs TLS through wrap_bio: a hook on
    ssl.SSLContext's wrap_socket side alone (a pin check) cannot be run by a sync
    client's own context, so its requests are refused (as a passed context with such a
    hook is at Client()) instead of skipping it; an AsyncClient (httpx's calls wrap_bio
    only) and the hook's removal are unaffected."""
    original = ssl.SSLContext.wrap_socket

    def pinning(self, *args, **kwargs):
        return original(self, *args, **kwargs)

    with httprs.Client(verify=certs.ca_file, limits=NO_KEEPALIVE) as c:
        assert c.get(https_server.url).status_code == 200
        monkeypatch.setattr(ssl.SSLContext, "wrap_socket", pinning)
        with pytest.raises(NotImplementedError, match="wrap_socket"):
            c.get(https_server.url)

        async def main():
            async with httprs.AsyncClient(verify=certs.ca_file) as ac:
                return (await ac.get(https_server.url)).status_code

        assert asyncio.run(main()) == 200
        monkeypatch.undo()
        assert c.get(https_server.url).status_code == 200


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_truststore_injected_into_ssl_makes_the_clients_contexts(
    https_server, certs, clean_env, lib
):
    """truststore's inject_into_ssl() puts its class in ssl.SSLContext's place; the
    contexts httpx builds in Client() from then on are of that class, which checks
    certificates against the system's store (on Linux OpenSSL's default paths, which
    SSL_CERT_FILE names here; with trust_env=False httpx loads certifi's bundle
    besides). So are the contexts of a client of httprs made then (it checked against
    certifi's bundle alone); a client made before keeps the context it had, in both."""
    truststore = pytest.importorskip("truststore")
    clean_env.setenv("SSL_CERT_FILE", certs.ca_file)
    with lib.Client(trust_env=False) as before:
        truststore.inject_into_ssl()
        try:
            injected = lib.Client(trust_env=False, limits=NO_KEEPALIVE)
        finally:
            truststore.extract_from_ssl()
        with injected:
            assert injected.get(https_server.url).status_code == 200
            assert injected.get(https_server.url).status_code == 200
        with pytest.raises(lib.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            before.get(https_server.url)


class _WrongPinContext(PinningContext):
    pin = "0" * 64  # no certificate has this SHA-256: every pin check fails


class _RefusingObject(ssl.SSLObject):
    def do_handshake(self):
        super().do_handshake()
        raise ssl.SSLError("certificate pin mismatch")


def _give_pinning_class(ctx):
    ctx.__class__ = _WrongPinContext


def _take_pinning_class(ctx):
    ctx.__class__ = ssl.SSLContext


def _give_instance_hook(ctx):
    ctx.sslobject_class = _RefusingObject


def _take_instance_hook(ctx):
    del ctx.sslobject_class


# A plain context that served requests and is then given a pinning subclass as its
# __class__ (no attribute of its own), or an sslobject_class of its own (an instance
# attribute: the class untouched), runs that check on the next connection, as httpx
# would: the fast path looks at the context's own class and instance dict. Taking the
# hook away brings the shared SSL_CTX back.
_HOOK_BETWEEN_REQUESTS = pytest.mark.parametrize(
    "give, take",
    [(_give_pinning_class, _take_pinning_class), (_give_instance_hook, _take_instance_hook)],
    ids=["class", "instance"],
)


@_HOOK_BETWEEN_REQUESTS
def test_context_given_a_pinning_hook_between_requests(https_server, certs, give, take):
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    with httprs.Client(verify=ctx, limits=NO_KEEPALIVE) as c:
        assert c.get(https_server.url).status_code == 200
        give(ctx)
        with pytest.raises(httprs.ConnectError, match="certificate pin mismatch"):
            c.get(https_server.url)
        take(ctx)
        assert c.get(https_server.url).status_code == 200


@_HOOK_BETWEEN_REQUESTS
@pytest.mark.anyio
async def test_context_given_a_pinning_hook_between_requests_async(
    https_server, certs, anyio_backend, give, take
):
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    async with httprs.AsyncClient(verify=ctx, limits=NO_KEEPALIVE) as c:
        assert (await c.get(https_server.url)).status_code == 200
        give(ctx)
        match = _cert_error(anyio_backend, "certificate pin mismatch")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)
        take(ctx)
        assert (await c.get(https_server.url)).status_code == 200


def _refusing_wrap_bio(self, *args, **kwargs):
    raise ssl.SSLError("pin check failed (class-level wrap_bio hook)")


@pytest.mark.anyio
async def test_class_level_wrap_bio_hook_is_honoured_async(
    https_server, certs, monkeypatch, anyio_backend
):
    """The review's reproducer: a wrap_bio replaced on ssl.SSLContext refuses the
    connection (httpx's AsyncClient calls wrap_bio)."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    monkeypatch.setattr(ssl.SSLContext, "wrap_bio", _refusing_wrap_bio)
    async with httprs.AsyncClient(verify=ctx) as c:
        match = _cert_error(anyio_backend, "pin check failed")
        with pytest.raises(httprs.ConnectError, match=match):
            await c.get(https_server.url)


@pytest.mark.httprs_only
def test_class_level_wrap_bio_hook_is_honoured(https_server, certs, monkeypatch):
    """The sync client runs TLS through wrap_bio (httpx's through wrap_socket): a
    wrap_bio hook on ssl.SSLContext refuses the connection."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    monkeypatch.setattr(ssl.SSLContext, "wrap_bio", _refusing_wrap_bio)
    with httprs.Client(verify=ctx) as c:
        with pytest.raises(httprs.ConnectError, match="pin check failed"):
            c.get(https_server.url)


@pytest.mark.anyio
async def test_class_level_hook_installed_between_requests_async(
    https_server, certs, monkeypatch, anyio_backend
):
    """A hook installed on ssl.SSLContext after connections took the fast path (which
    remembers that the class was untouched) applies to the next connection, and
    removing it brings the fast path back."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    no_keepalive = httprs.Limits(max_keepalive_connections=0)
    async with httprs.AsyncClient(verify=ctx, limits=no_keepalive) as c:
        for _ in range(2):
            assert (await c.get(https_server.url)).status_code == 200
        monkeypatch.setattr(ssl.SSLContext, "wrap_bio", _refusing_wrap_bio)
        # httpx on trio lets the hook's SSLError through unwrapped.
        refused = (httprs.ConnectError, ssl.SSLError) if VALIDATING else httprs.ConnectError
        with pytest.raises(refused, match="pin check failed"):
            await c.get(https_server.url)
        monkeypatch.undo()
        assert (await c.get(https_server.url)).status_code == 200
    if not VALIDATING:
        assert not httprs._core._uses_python_tls(ctx)


@pytest.mark.anyio
async def test_msg_callback_set_between_requests_async(https_server, certs, anyio_backend):
    """A TLS message callback set on a context that already served requests sees the
    next connection's handshake (it runs through Python's ssl module)."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    no_keepalive = httprs.Limits(max_keepalive_connections=0)
    seen = []
    async with httprs.AsyncClient(verify=ctx, limits=no_keepalive) as c:
        assert (await c.get(https_server.url)).status_code == 200
        ctx._msg_callback = lambda *args: seen.append(args[2])
        assert (await c.get(https_server.url)).status_code == 200
        assert seen
        ctx._msg_callback = None
        count = len(seen)
        assert (await c.get(https_server.url)).status_code == 200
    assert len(seen) == count


@pytest.mark.httprs_only
def test_sync_refuses_a_class_level_hook_only_in_wrap_socket(certs, monkeypatch):
    """A wrap_socket hook installed on ssl.SSLContext itself cannot run either on
    httprs's wrap_bio path: a sync client refuses it, as it refuses such a subclass."""

    def refusing_wrap_socket(self, *args, **kwargs):
        raise ssl.SSLError("pin check in wrap_socket")

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", refusing_wrap_socket)
    with pytest.raises(NotImplementedError, match="wrap_bio"):
        httprs.Client(verify=ssl.create_default_context(cafile=certs.ca_file))


def truststore_context(certs):
    truststore = pytest.importorskip("truststore")
    ctx = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    return ctx


def test_truststore_context(https_server, certs, tls_server_factory):
    with httprs.Client(verify=truststore_context(certs)) as c:
        r = c.get(https_server.url)
        assert r.status_code == 200
        assert r.json()["tls_version"] in ("TLSv1.2", "TLSv1.3")
        # truststore verifies the name too
        wrong = tls_server_factory(certs.wrong_name)
        with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            c.get(wrong.url)


@pytest.mark.anyio
async def test_truststore_context_async(https_server, certs):
    async with httprs.AsyncClient(verify=truststore_context(certs)) as c:
        assert (await c.get(https_server.url)).status_code == 200
        assert (await c.get(https_server.url)).status_code == 200


def test_truststore_via_https_proxy(proxy_factory, https_server, certs):
    proxy = proxy_factory(ssl_context=server_context(certs.server))
    ctx = truststore_context(certs)
    with httprs.Client(proxy=httprs.Proxy(proxy.url, ssl_context=ctx), verify=ctx) as c:
        r = c.get(https_server.url + "/t")
        assert r.status_code == 200
        assert r.json()["target"] == "/t"
        assert c.post(https_server.url, content=b"x" * 300000).json()["body_len"] == 300000


NO_KEEPALIVE = httprs.Limits(max_keepalive_connections=0)


def _mutations(ctx, certs, wrong_name_url, good_url):
    """Steps (mutate, url, expect_ok) applied to a context already given to a client."""

    def strict():
        ctx.verify_mode = ssl.CERT_REQUIRED

    def hostname_on():
        ctx.check_hostname = True

    def hostname_off():
        ctx.check_hostname = False

    def trust_ca():
        ctx.load_verify_locations(certs.ca_file)

    return [
        (None, good_url, True),  # CERT_NONE: anything goes
        (strict, good_url, False),  # now required, no CA loaded (a resumed session must not pass)
        (trust_ca, good_url, True),
        (hostname_on, wrong_name_url, False),
        (hostname_off, wrong_name_url, True),
    ]


def lax_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_context_mutated_after_client_creation(tls_server_factory, https_server, certs):
    wrong = tls_server_factory(certs.wrong_name)
    ctx = lax_context()
    with httprs.Client(verify=ctx, limits=NO_KEEPALIVE) as c:
        for step, url, ok in _mutations(ctx, certs, wrong.url, https_server.url):
            if step is not None:
                step()
            if ok:
                assert c.get(url).status_code == 200
            else:
                with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    c.get(url)


@pytest.mark.anyio
async def test_context_mutated_after_client_creation_async(
    tls_server_factory, https_server, certs, anyio_backend
):
    wrong = tls_server_factory(certs.wrong_name)
    ctx = lax_context()
    async with httprs.AsyncClient(verify=ctx, limits=NO_KEEPALIVE) as c:
        for step, url, ok in _mutations(ctx, certs, wrong.url, https_server.url):
            if step is not None:
                step()
            if ok:
                assert (await c.get(url)).status_code == 200
            else:
                match = _cert_error(anyio_backend, "CERTIFICATE_VERIFY_FAILED")
                with pytest.raises(httprs.ConnectError, match=match):
                    await c.get(url)


def _reused(response) -> bool:
    return response.json()["session_reused"]


@pytest.mark.httprs_only
def test_passed_context_resumes_until_it_changes(https_server, ca_context, certs):
    """A context the user passes resumes TLS sessions within one client, per host name,
    and only while it verifies and presents what it did when the session was verified:
    loading a client certificate (any change to the context's checks) means a full
    handshake. Another client, or verify=False, never gets this client's sessions."""
    url = https_server.url
    with httprs.Client(verify=ca_context, limits=NO_KEEPALIVE) as c:
        first = [_reused(c.get(url)) for _ in range(3)]
        other_name = [_reused(c.get(localhost(url))) for _ in range(2)]
        ca_context.load_cert_chain(certs.client_both_file)
        changed = [_reused(c.get(url)) for _ in range(2)]
    assert first == [False, True, True]
    assert other_name == [False, True]  # 127.0.0.1's session is never offered to localhost
    assert changed == [False, True]
    with httprs.Client(verify=ca_context, limits=NO_KEEPALIVE) as c:
        assert _reused(c.get(url)) is False
    with httprs.Client(verify=False, limits=NO_KEEPALIVE) as c:
        assert _reused(c.get(url)) is False


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_passed_context_resumes_until_it_changes_async(
    https_server, ca_context, certs, anyio_backend
):
    url = https_server.url
    async with httprs.AsyncClient(verify=ca_context, limits=NO_KEEPALIVE) as c:
        first = [_reused(await c.get(url)) for _ in range(3)]
        other_name = [_reused(await c.get(localhost(url))) for _ in range(2)]
        ca_context.load_cert_chain(certs.client_both_file)
        changed = [_reused(await c.get(url)) for _ in range(2)]
    assert first == [False, True, True]
    assert other_name == [False, True]
    assert changed == [False, True]
    async with httprs.AsyncClient(verify=ca_context, limits=NO_KEEPALIVE) as c:
        assert _reused(await c.get(url)) is False


def _other_ca_pem(certs) -> str:
    return certs.other_ca.cert_pem.bytes().decode()


def _write_crl(ca, path) -> str:
    """An empty CRL (nothing revoked) signed by ``ca``, valid for a day."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject
    now = datetime.datetime.now(datetime.timezone.utc)
    crl = (
        x509
        .CertificateRevocationListBuilder()
        .issuer_name(issuer)
        .last_update(now - datetime.timedelta(hours=1))
        .next_update(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return str(path)


# Every change Python can make to what a handshake verifies or presents, applied
# to a context a client already resumed sessions on.
_CONTEXT_CHANGES = {
    "verify_mode": lambda ctx, certs: setattr(ctx, "verify_mode", ssl.CERT_OPTIONAL),
    "check_hostname": lambda ctx, certs: setattr(ctx, "check_hostname", False),
    # toggled: ssl.create_default_context() sets VERIFY_X509_STRICT from Python 3.13 on
    "verify_flags": lambda ctx, certs: setattr(
        ctx, "verify_flags", ctx.verify_flags ^ ssl.VERIFY_X509_STRICT
    ),
    "hostname_checks_common_name": lambda ctx, certs: setattr(
        ctx, "hostname_checks_common_name", not ctx.hostname_checks_common_name
    ),
    "load_verify_locations_cafile": lambda ctx, certs: ctx.load_verify_locations(
        certs.other_ca_file
    ),
    "load_verify_locations_cadata": lambda ctx, certs: ctx.load_verify_locations(
        cadata=_other_ca_pem(certs)
    ),
    "set_ciphers": lambda ctx, certs: ctx.set_ciphers("ECDHE+AESGCM"),
    "security_level": lambda ctx, certs: ctx.set_ciphers(
        "@SECLEVEL=3:ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:!aDSS:!SHA1:!AESCCM"
    ),
    "minimum_version": lambda ctx, certs: setattr(ctx, "minimum_version", ssl.TLSVersion.TLSv1_3),
    "maximum_version": lambda ctx, certs: setattr(ctx, "maximum_version", ssl.TLSVersion.TLSv1_3),
    "options": lambda ctx, certs: setattr(ctx, "options", ctx.options | ssl.OP_NO_RENEGOTIATION),
    "load_cert_chain": lambda ctx, certs: ctx.load_cert_chain(certs.client_both_file),
}


@pytest.mark.httprs_only
@pytest.mark.parametrize("change", sorted(_CONTEXT_CHANGES))
def test_passed_context_change_means_a_full_handshake(change, https_server, ca_context, certs):
    """A session is offered only under the settings it was verified with: after any
    change to the passed context the next connection does a full handshake, and its
    own session resumes from then on."""
    url = https_server.url
    with httprs.Client(verify=ca_context, limits=NO_KEEPALIVE) as c:
        before = [_reused(c.get(url)) for _ in range(2)]
        _CONTEXT_CHANGES[change](ca_context, certs)
        after = [_reused(c.get(url)) for _ in range(2)]
    assert before == [False, True]
    assert after == [False, True]


@pytest.mark.httprs_only
@pytest.mark.anyio
@pytest.mark.parametrize("change", sorted(_CONTEXT_CHANGES))
async def test_passed_context_change_means_a_full_handshake_async(
    change, https_server, ca_context, certs, anyio_backend
):
    url = https_server.url
    async with httprs.AsyncClient(verify=ca_context, limits=NO_KEEPALIVE) as c:
        before = [_reused(await c.get(url)) for _ in range(2)]
        _CONTEXT_CHANGES[change](ca_context, certs)
        after = [_reused(await c.get(url)) for _ in range(2)]
    assert before == [False, True]
    assert after == [False, True]


def _never_resumes(ctx, url) -> list:
    with httprs.Client(verify=ctx, limits=NO_KEEPALIVE) as c:
        return [_reused(c.get(url)) for _ in range(3)]


async def _never_resumes_async(ctx, url) -> list:
    async with httprs.AsyncClient(verify=ctx, limits=NO_KEEPALIVE) as c:
        return [_reused(await c.get(url)) for _ in range(3)]


def _tls12_context(ctx):
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _crl_context(ctx, certs, tmp_path):
    ctx.load_verify_locations(_write_crl(certs.ca, tmp_path / "crl.pem"))
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


@pytest.mark.httprs_only
def test_passed_context_never_resumes_tls12_or_with_crl_checks(
    https_server, ca_context, certs, tmp_path
):
    """Two cases a passed context never resumes: a TLS 1.2 session (its resumption
    reuses the old master secret and key exchange, which the context's current groups
    may no longer allow) and a context that checks CRLs (a resumed session skips the
    revocation check)."""
    url = https_server.url
    assert _never_resumes(_tls12_context(ca_context), url) == [False] * 3
    crl = _crl_context(ssl.create_default_context(cafile=certs.ca_file), certs, tmp_path)
    assert _never_resumes(crl, url) == [False] * 3


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_passed_context_never_resumes_tls12_or_with_crl_checks_async(
    https_server, ca_context, certs, tmp_path, anyio_backend
):
    url = https_server.url
    assert await _never_resumes_async(_tls12_context(ca_context), url) == [False] * 3
    crl = _crl_context(ssl.create_default_context(cafile=certs.ca_file), certs, tmp_path)
    assert await _never_resumes_async(crl, url) == [False] * 3


def _client_identities(certs, tmp_path) -> dict:
    paths = {}
    for name in ("alice", "bob", "carol"):
        leaf = certs.ca.issue_cert(f"{name}@example.org", common_name=name)
        path = tmp_path / f"{name}.pem"
        leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
        paths[name] = str(path)
    return paths


def _subject(response) -> str:
    return response.json()["client_subject"]["commonName"]


# Identities loaded one after another into the same context: each certificate
# object may be allocated where a freed one was, so only content tells them apart.
_IDENTITY_SEQUENCE = ["alice", "alice", "bob", "carol", "carol", "bob", "alice", "carol"]


@pytest.mark.httprs_only
def test_passed_context_resumes_only_as_the_identity_it_presents(
    tls_server_factory, ca_context, certs, tmp_path
):
    """A resumed session carries the client certificate of its full handshake: after
    load_cert_chain() with another certificate, the server must see the new one."""
    srv = tls_server_factory(require_client_cert_from=certs.ca)
    paths = _client_identities(certs, tmp_path)
    seen = []
    with httprs.Client(verify=ca_context, limits=NO_KEEPALIVE) as c:
        for name in _IDENTITY_SEQUENCE:
            ca_context.load_cert_chain(paths[name])
            seen += [_subject(c.get(srv.url)) for _ in range(2)]
    assert seen == [name for name in _IDENTITY_SEQUENCE for _ in range(2)]


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_passed_context_resumes_only_as_the_identity_it_presents_async(
    tls_server_factory, ca_context, certs, tmp_path, anyio_backend
):
    srv = tls_server_factory(require_client_cert_from=certs.ca)
    paths = _client_identities(certs, tmp_path)
    seen = []
    async with httprs.AsyncClient(verify=ca_context, limits=NO_KEEPALIVE) as c:
        for name in _IDENTITY_SEQUENCE:
            ca_context.load_cert_chain(paths[name])
            seen += [_subject(await c.get(srv.url)) for _ in range(2)]
    assert seen == [name for name in _IDENTITY_SEQUENCE for _ in range(2)]


def test_subclass_mutated_after_client_creation(tls_server_factory, https_server, certs):
    class Sub(ssl.SSLContext):
        pass

    wrong = tls_server_factory(certs.wrong_name)
    ctx = Sub(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with httprs.Client(verify=ctx, limits=NO_KEEPALIVE) as c:
        for step, url, ok in _mutations(ctx, certs, wrong.url, https_server.url):
            if step is not None:
                step()
            if ok:
                assert c.get(url).status_code == 200
            else:
                with pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    c.get(url)


@pytest.mark.parametrize("kind", ["exact", "subclass"])
def test_keylog_filename_context(https_server, certs, tmp_path, kind):
    class Sub(ssl.SSLContext):
        pass

    cls = ssl.SSLContext if kind == "exact" else Sub
    ctx = cls(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca_file)
    log = tmp_path / "keys.log"
    ctx.keylog_filename = str(log)
    with httprs.Client(verify=ctx) as c:
        assert c.get(https_server.url).status_code == 200
    assert "CLIENT_" in log.read_text()


_KEYLOG_SCRIPT = """
import importlib, sys
lib = importlib.import_module(sys.argv[1])
verify = sys.argv[3] if sys.argv[4] == "path" else True  # True: SSL_CERT_FILE's CA
with lib.Client(verify=verify) as c:
    print(c.get(sys.argv[2]).status_code)
"""


@pytest.mark.parametrize("verify", ["path", "default"])
@pytest.mark.parametrize("flag", ["", "-E", "-I"])
def test_sslkeylogfile_is_read_where_httpx_reads_it(https_server, certs, tmp_path, verify, flag):
    """httpx's verifying contexts come from ssl.create_default_context(), which logs TLS
    secrets to $SSLKEYLOGFILE unless the interpreter ignores the environment (-E, -I).
    httprs's own contexts read it there and only there: until session 50 it read the
    variable in C for verify=True even under -E / -I (secrets written where httpx writes
    none), and never for a CA path (where httpx logs)."""
    script = tmp_path / "keylog.py"
    script.write_text(_KEYLOG_SCRIPT)
    logged = {}
    for lib in ("httpx", "httprs"):
        log = tmp_path / f"{lib}.keys"
        env = {**os.environ, "SSLKEYLOGFILE": str(log), "SSL_CERT_FILE": certs.ca_file}
        args = [flag] if flag else []
        proc = subprocess.run(
            [sys.executable, *args, str(script), lib, https_server.url, certs.ca_file, verify],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.stdout.split() == ["200"], proc.stderr[-2000:]
        logged[lib] = log.exists() and "CLIENT_" in log.read_text()
    assert logged == {"httpx": not flag, "httprs": not flag}


@pytest.mark.httprs_only
def test_fast_path_only_for_exact_contexts_on_the_same_openssl(certs):
    from httprs._core import _uses_python_tls

    assert not _uses_python_tls(ssl.create_default_context())
    assert _uses_python_tls(PinningContext(ssl.PROTOCOL_TLS_CLIENT))
    assert _uses_python_tls(truststore_context(certs))


def test_python_tls_under_threads(https_server, certs):
    """Python-run TLS callbacks take the GIL while the engine is locked: many threads
    sharing one client must neither deadlock nor mix responses up."""
    import concurrent.futures

    ctx = pinning_context(certs, certs.server)
    with httprs.Client(verify=ctx, limits=httprs.Limits(max_connections=3)) as c:

        def work(i):
            r = c.get(https_server.url + f"/n{i}")
            return r.json()["target"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            got = list(pool.map(work, range(48)))
    assert got == [f"/n{i}" for i in range(48)]


# A GC pass inside a Python TLS callback (it runs with the engine mutex held)
# frees an unclosed streamed response of the same client: its finaliser must not
# take the engine mutex again (it used to, and the thread waited for itself).
_GC_IN_TLS_CALLBACK = r"""
import asyncio, gc, json, ssl, sys
import httprs

url, ca, mode = sys.argv[1], sys.argv[2], sys.argv[3]


class Obj(ssl.SSLObject):
    def cipher(self):  # called from a TLS callback once the handshake is done
        gc.collect()
        return super().cipher()


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(ca)
ctx.sslobject_class = Obj


def garbage(response):
    if mode == "iter":  # a suspended iterator: its `finally` runs in the collection
        it = response.iter_raw() if isinstance(response, httprs.Response) else None
        holder = [response, it]
        if it is not None:
            next(it)
    else:
        holder = [response]
    holder.append(holder)  # cyclic garbage, freed only by a collection


def sync():
    with httprs.Client(verify=ctx) as client:
        garbage(client.send(client.build_request("GET", url), stream=True))
        statuses = [client.get(url).status_code]  # a new TLS connection
        garbage(client.send(client.build_request("GET", url), stream=True))
        statuses.append(client.get(url).status_code)
        return statuses


async def async_():
    async with httprs.AsyncClient(verify=ctx) as client:
        garbage(await client.send(client.build_request("GET", url), stream=True))
        statuses = [(await client.get(url)).status_code]
        garbage(await client.send(client.build_request("GET", url), stream=True))
        statuses.append((await client.get(url)).status_code)
        return statuses


statuses = asyncio.run(async_()) if mode == "async" else sync()
print(json.dumps(statuses))
"""


@pytest.mark.httprs_only
@pytest.mark.parametrize("mode", ["sync", "iter", "async"])
def test_gc_in_python_tls_callback_frees_unclosed_response(https_server, certs, tmp_path, mode):
    script = tmp_path / "gc_tls.py"
    script.write_text(_GC_IN_TLS_CALLBACK)
    proc = subprocess.run(
        [sys.executable, str(script), https_server.url + "/", certs.ca_file, mode],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [200, 200]


# keylog_filename set on a context while a fast-path connection's handshake waits for
# the server: OpenSSL reads the SSL_CTX's key log callback when it derives the secrets,
# and Python's callback dereferences the Python socket object it expects behind every SSL
# (httprs's have none): the process crashed (SIGSEGV), from one thread (another task) or
# from another thread. The handshake now checks the callback before each step.
_KEYLOG_MID_HANDSHAKE = r"""
import asyncio, os, socket, ssl, sys, tempfile, threading, time
import trustme
import httprs

mode = sys.argv[1]
ca = trustme.CA()
server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
url = "https://127.0.0.1:%d/" % listener.getsockname()[1]


def serve():
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        try:
            raw.settimeout(5)
            raw.recv(1, socket.MSG_PEEK)  # the ClientHello arrived
            time.sleep(0.6)  # the client waits for the ServerHello meanwhile
            s = server_ctx.wrap_socket(raw, server_side=True)
            s.recv(65536)
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            s.close()
        except (OSError, ssl.SSLError):
            raw.close()


threading.Thread(target=serve, daemon=True).start()
ctx = ssl.create_default_context()
ca.configure_trust(ctx)
keylog = os.path.join(tempfile.mkdtemp(), "keys.log")


def flip():
    time.sleep(0.2)
    ctx.keylog_filename = keylog


def outcome(call):
    try:
        return "status %d" % call().status_code
    except httprs.ConnectError as exc:
        return "ConnectError: %s" % exc


async def in_task():
    async with httprs.AsyncClient(verify=ctx) as client:
        async def flip_task():
            await anyio.sleep(0.2)
            ctx.keylog_filename = keylog

        async with anyio.create_task_group() as tg:
            tg.start_soon(flip_task)
            first = await outcome_async(client.get(url))
        second = await outcome_async(client.get(url))
    return first, second


async def outcome_async(coro):
    try:
        return "status %d" % (await coro).status_code
    except httprs.ConnectError as exc:
        return "ConnectError: %s" % exc


if mode == "sync":
    with httprs.Client(verify=ctx) as client:
        t = threading.Thread(target=flip)
        t.start()
        first = outcome(lambda: client.get(url))
        t.join()
        second = outcome(lambda: client.get(url))
else:
    import anyio

    first, second = anyio.run(in_task, backend=mode)
print(first)
print(second)
print("logged" if "CLIENT_" in open(keylog).read() else "not logged")
"""


@pytest.mark.httprs_only
@pytest.mark.parametrize("mode", ["sync", "asyncio", "trio"])
def test_keylog_set_during_the_handshake_is_an_error_not_a_crash(tmp_path, mode):
    script = tmp_path / "keylog_mid_handshake.py"
    script.write_text(_KEYLOG_MID_HANDSHAKE)
    proc = subprocess.run(
        [sys.executable, str(script), mode], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second, logged = proc.stdout.strip().splitlines()[-3:]
    assert first.startswith("ConnectError:") and "keylog_filename" in first, first
    # The next connection takes Python's TLS path, which logs the secrets.
    assert (second, logged) == ("status 200", "logged")


# ------------------------------------------- catalog rows (docs/reliability.md)


def test_wrong_protocol_on_the_port(server, https_server, ca_context):
    """S19: https:// to a plain-HTTP server is a ConnectError at once; http:// to a TLS
    server gets no HTTP response back: RemoteProtocolError (or ReadError), no hang."""
    with httprs.Client(verify=ca_context, timeout=5) as c:
        t0 = time.monotonic()
        with pytest.raises(httprs.ConnectError):
            c.get(server.url.replace("http://", "https://") + "/")
        with pytest.raises((httprs.RemoteProtocolError, httprs.ReadError)):
            c.get(https_server.url.replace("https://", "http://") + "/")
        assert time.monotonic() - t0 < 4
        assert c.get(localhost(https_server.url)).status_code == 200


def _tls_truncating(certs, response: bytes):
    """A TLS server that sends `response` and then drops TCP without close_notify."""

    def handler(conn):
        if conn.read_request() is None:
            return
        conn.send(response)
        raw = conn.sock
        import socket as socket_module

        socket_module.socket.shutdown(raw, socket_module.SHUT_RDWR)  # FIN, no alert

    return tls_server(server_context(certs.server), handler)


@pytest.mark.parametrize(
    "response,expected",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", "RemoteProtocolError"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "RemoteProtocolError",
        ),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", b"hello"),
    ],
    ids=["content_length", "chunked", "close_delimited"],
)
def test_tls_truncation_without_close_notify(certs, ca_context, response, expected):
    """S20: a TCP FIN without TLS close_notify: a body short of its Content-Length or
    chunked framing is RemoteProtocolError; a close-delimited body ends there, as in
    httpx (Python's ssl treats a ragged EOF as EOF)."""
    with _tls_truncating(certs, response) as srv, httprs.Client(verify=ca_context) as c:
        if isinstance(expected, bytes):
            assert c.get(localhost(srv.url)).content == expected
        else:
            with pytest.raises(getattr(httprs, expected)):
                c.get(localhost(srv.url))


def test_tls_churn_keeps_descriptors_and_memory_flat(https_server, ca_context):
    """L07 (short form): TLS requests with keep-alive disabled, each a full handshake:
    descriptors return to the baseline and RSS does not grow with the count."""
    import gc

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def fds():
        return len(os.listdir("/proc/self/fd"))

    def settled_fds(target=None):
        # Both ends live in this process: the server thread closes its side a moment
        # after the client's, so wait (briefly) for the count to settle.
        deadline = time.monotonic() + 3
        while True:
            n = fds()
            if (target is not None and n <= target) or time.monotonic() > deadline:
                return n
            if target is None:
                time.sleep(0.3)
                if fds() == n:
                    return n
            else:
                time.sleep(0.05)

    limits = httprs.Limits(max_keepalive_connections=0)
    url = localhost(https_server.url)
    with httprs.Client(verify=ca_context, limits=limits) as c:
        for _ in range(50):
            assert c.get(url).status_code == 200
        gc.collect()
        base_fds, base_rss = settled_fds(), rss()
        for _ in range(300):
            assert c.get(url).status_code == 200
        gc.collect()
        # Not above the baseline: a server-side socket still closing when the baseline
        # was counted may be gone by now.
        assert settled_fds(base_fds) <= base_fds
        # Under `test-asan` freed memory waits in ASan's quarantine (256 MB) before it
        # is reused, so RSS grows with every handshake whatever httprs does; there,
        # LeakSanitizer checks what is never freed instead.
        if os.environ.get("HTTPRS_ASAN") != "1":
            assert rss() - base_rss < 8 * 1024 * 1024


def test_alpn_offers_http11(certs, ca_context):
    """S17: the ClientHello offers ALPN `http/1.1` (the SNI half is
    test_sni_sent_for_names_not_ips), so a server preferring h2 still picks http/1.1."""
    ctx = server_context(certs.server)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    chosen = []

    def handler(conn):
        while conn.read_request() is not None:
            chosen.append(conn.sock.selected_alpn_protocol())
            conn.respond(b"ok")

    with tls_server(ctx, handler) as srv, httprs.Client(verify=ca_context) as c:
        assert c.get(localhost(srv.url)).text == "ok"
    assert chosen == ["http/1.1"]


class _FlightServer:
    """A TLS 1.3 server on a raw socket, run over memory BIOs so that it sees each read
    of the socket: for every connection it records whether the client's first request
    bytes arrived in the same read as the client's Finished (one write from the
    client, one segment), then answers and closes."""

    def __init__(self, certs, flight_delay=0.0, answer=True):
        self.ctx = server_context(certs.server)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.flight_delay = flight_delay  # before its first flight, the client waits
        self.answer = answer  # False: no tickets, no response (the client times out)
        if not answer:
            self.ctx.num_tickets = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.url = f"https://localhost:{self.sock.getsockname()[1]}/"
        self.together: list[bool] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(5)
                    self._serve(conn)
        except BaseException as exc:
            self.errors.append(exc)

    def _serve(self, conn):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.ctx.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if self.flight_delay:
                    time.sleep(self.flight_delay)
                conn.sendall(outgoing.read())
                data = conn.recv(65536)
                if not data:
                    return
                incoming.write(data)
        # The read that completed the handshake: did it carry the request too?
        try:
            request = tls.read(65536)
            self.together.append(True)
        except ssl.SSLWantReadError:
            self.together.append(False)
            request = b""
        while b"\r\n\r\n" not in request:
            conn.sendall(outgoing.read())
            try:
                request += tls.read(65536)
            except ssl.SSLWantReadError:
                incoming.write(conn.recv(65536))
        if not self.answer:
            while conn.recv(65536):  # until the client gives up
                pass
            return
        tls.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.sendall(outgoing.read())

    def close(self):
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def flight_server(certs):
    srv = _FlightServer(certs)
    yield srv
    srv.close()
    assert not srv.errors


@pytest.mark.httprs_only
@pytest.mark.parametrize("verify", ["context", "path"])
def test_handshake_finished_goes_with_the_request(flight_server, certs, verify):
    """The TLS client's last handshake flight (Finished) and the first request leave in
    one write: the server reads them together, one round trip and one segment fewer.
    Both for the core's own contexts and for an adopted ssl.SSLContext."""
    if verify == "context":
        client = httprs.Client(verify=ssl.create_default_context(cafile=certs.ca_file))
    else:
        with pytest.warns(DeprecationWarning, match="verify=<str>"):
            client = httprs.Client(verify=certs.ca_file)
    with client as c:
        for _ in range(3):  # a full handshake, then resumed ones
            assert c.get(flight_server.url).text == "ok"
    assert flight_server.together == [True, True, True]


@pytest.mark.httprs_only
@pytest.mark.anyio
async def test_handshake_finished_goes_with_the_request_async(flight_server, certs):
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    async with httprs.AsyncClient(verify=ctx) as c:
        for _ in range(2):
            assert (await c.get(flight_server.url)).text == "ok"
    assert flight_server.together == [True, True]


def test_handshake_finished_sent_when_the_request_waits(flight_server, certs):
    """A request held back after the handshake (here by a trace callback) does not hold
    the Finished: the handshake completes on the server first, and the request follows."""
    ctx = ssl.create_default_context(cafile=certs.ca_file)
    seen = []

    def trace(name, info):
        seen.append(name)
        if name == "http11.send_request_headers.started":
            time.sleep(0.05)

    with httprs.Client(verify=ctx) as c:
        r = c.get(flight_server.url, extensions={"trace": trace})
        assert r.text == "ok"
    assert "connection.start_tls.complete" in seen
    assert flight_server.together == [False]


@pytest.mark.httprs_only
def test_handshake_flight_read_by_the_waiting_thread(certs):
    """A sync request waiting for the server's TLS handshake flight polls its own socket
    and reads the flight itself (Engine's direct wait), as it does for the response,
    rather than through another round of the loop. The server here sends no tickets and
    no response: every direct read is a handshake read."""
    # The delay puts the flight well after the loop round that follows the ClientHello.
    srv = _FlightServer(certs, flight_delay=0.2, answer=False)
    try:
        ctx = ssl.create_default_context(cafile=certs.ca_file)
        with httprs.Client(verify=ctx, timeout=httprs.Timeout(5.0, read=0.2)) as c:
            before = c._transport._direct_reads()
            with pytest.raises(httprs.ReadTimeout):  # the handshake completed
                c.get(srv.url)
            assert c._transport._direct_reads() > before
    finally:
        srv.close()
    assert srv.together == [True]
    assert not srv.errors


# ---------------------------------------------------------------- the interpreter's policy
# httpx's contexts are ssl.create_default_context() (verify=False: a bare
# ssl.SSLContext(PROTOCOL_TLS_CLIENT)) of the running interpreter, whose ciphers and
# verification flags depend on how and which Python was built: Debian's python3 offers
# OpenSSL's default cipher list, CPython 3.13 verifies with VERIFY_X509_STRICT and
# VERIFY_X509_PARTIAL_CHAIN. httprs's own contexts (verify=True / a path / False) match.


def _hello_recorder(scripted):
    """A scripted TCP server that records the cipher suites of each ClientHello it
    receives (in the client's order) and closes the connection: what a client offers,
    read off the wire (ssl's shared_ciphers() cannot tell it: before CPython 3.11.4 it
    returns the server's whole list). Returns the server and its list of hellos."""
    hellos: list = []

    def handler(conn) -> None:
        header = conn.read_exact(5)
        body = None if header is None else conn.read_exact(int.from_bytes(header[3:5], "big"))
        if body is not None:
            hellos.append(_hello_ciphers(header + body))

    return scripted(handler), hellos


def _hello_ciphers(record: bytes) -> list:
    """The cipher suite numbers of a TLS record holding a ClientHello."""
    assert record[0] == 22 and record[5] == 1  # handshake, client_hello
    pos = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    pos += 1 + record[pos]  # session id
    size = int.from_bytes(record[pos : pos + 2], "big")
    return [int.from_bytes(record[i : i + 2], "big") for i in range(pos + 2, pos + 2 + size, 2)]


def _python_handshake(ctx: ssl.SSLContext, port: int) -> str:
    """A handshake by `ctx` itself (what httpx does), then a request whose answer
    shows the server saw the handshake through: "" or the verification error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                head = b""
                while len(head) < 12 and (data := tls.recv(12 - len(head))):
                    head += data
                assert head == b"HTTP/1.1 200"
                return ""
    except ssl.SSLCertVerificationError as error:
        return error.verify_message or str(error)


def _interpreter_context(verify: bool, cafile: str) -> ssl.SSLContext:
    """The context httpx builds for verify=<cafile> / verify=False."""
    if verify:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def reread_policy():
    """Makes httprs read the interpreter's TLS defaults again before the test and after
    it (a patch in place is followed anyway; this also drops what a patch on an
    attribute of the same function or class would leave); httpx reads them per client."""
    forget = getattr(getattr(httprs, "_core", None), "_forget_tls_policy", None)
    if forget is not None:
        forget()
    yield
    if forget is not None:
        forget()


@pytest.fixture
def changed_defaults(monkeypatch, reread_policy):
    """ssl.create_default_context() as another Python build could make it: another
    cipher list and security level, VERIFY_X509_STRICT and VERIFY_X509_PARTIAL_CHAIN."""
    original = ssl.create_default_context

    def create_default_context(*args, **kwargs):
        ctx = original(*args, **kwargs)
        ctx.set_ciphers("ECDHE+AESGCM:AES256-GCM-SHA384:@SECLEVEL=1")
        ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", create_default_context)


@pytest.mark.parametrize(
    "defaults, verify",
    [("interpreter", True), ("interpreter", False), ("changed", True)],
    ids=["verify", "no_verify", "changed_defaults"],
)
def test_own_context_offers_the_interpreters_ciphers(
    certs, clean_env, monkeypatch, request, scripted, defaults, verify
):
    """The cipher suites an httprs connection offers (TLS 1.2 and 1.3, in order) are
    those httpx's context offers: ssl.create_default_context()'s, or a bare
    SSLContext's for verify=False."""
    if defaults == "changed":
        request.getfixturevalue("changed_defaults")
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    srv, hellos = _hello_recorder(scripted)
    reference = _interpreter_context(verify, certs.ca_file)
    with pytest.raises((ssl.SSLError, OSError)):
        _python_handshake(reference, srv.port)
    with httprs.Client(verify=verify) as c:
        with pytest.raises(httprs.TransportError):
            c.get(f"https://127.0.0.1:{srv.port}/")
    srv.close()
    assert len(hellos) >= 2
    assert all(hello == hellos[0] for hello in hellos[1:])
    if defaults == "changed":
        assert 0x009D in hellos[0]  # AES256-GCM-SHA384 (not in CPython's string)


def test_own_context_follows_a_later_patch_of_the_interpreters_defaults(
    certs, clean_env, monkeypatch, scripted
):
    """httpx reads ssl.create_default_context() for every client: a patch made after
    httprs's first HTTPS request applies to the next client, and undoing it brings the
    original policy back (no reread_policy fixture: this is the cache's own rule)."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    srv, hellos = _hello_recorder(scripted)

    def offered():
        before = len(hellos)
        with httprs.Client() as c:
            with pytest.raises(httprs.TransportError):
                c.get(f"https://127.0.0.1:{srv.port}/")
        assert len(hellos) > before
        return hellos[before]

    original_hello = offered()
    original = ssl.create_default_context

    def create_default_context(*args, **kwargs):
        ctx = original(*args, **kwargs)
        ctx.set_ciphers("ECDHE+AESGCM:AES256-GCM-SHA384")
        return ctx

    with monkeypatch.context() as patch:
        patch.setattr(ssl, "create_default_context", create_default_context)
        patched_hello = offered()
        with pytest.raises((ssl.SSLError, OSError)):
            _python_handshake(create_default_context(cafile=certs.ca_file), srv.port)
        assert hellos[-1] == patched_hello
    restored_hello = offered()
    assert 0x009D in patched_hello  # AES256-GCM-SHA384
    assert patched_hello != original_hello
    assert restored_hello == original_hello


def _write_pem(path, *objects) -> str:
    from cryptography.hazmat.primitives import serialization

    blobs = []
    for obj in objects:
        if hasattr(obj, "public_bytes"):
            blobs.append(obj.public_bytes(serialization.Encoding.PEM))
        else:
            blobs.append(
                obj.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
    path.write_bytes(b"".join(blobs))
    return str(path)


def _leaf_without_authority_key_id(tmp_path):
    """A CA and a certificate for localhost / 127.0.0.1 it signed without the Authority
    Key Identifier extension, which OpenSSL's VERIFY_X509_STRICT requires ("Missing
    Authority Key Identifier"; CPython 3.13's create_default_context() sets that flag):
    (CA file, certificate chain file, key file)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject, issuer, key, signer, extensions):
        builder = (
            x509
            .CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "httprs strict test CA")])
    ca = build(
        ca_name,
        ca_name,
        ca_key,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
            (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
        ],
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = build(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        ca_name,
        key,
        ca_key,
        [
            (
                x509.SubjectAlternativeName([
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]),
                False,
            ),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    return (
        _write_pem(tmp_path / "strict_ca.pem", ca),
        _write_pem(tmp_path / "strict_leaf.pem", leaf),
        _write_pem(tmp_path / "strict_key.pem", key),
    )


def _serve(certfile: str, keyfile: str):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    return tls_server(ctx)


def _httprs_outcome(verify, url: str) -> str:
    try:
        with httprs.Client(verify=verify) as c:
            assert c.get(url).status_code == 200
        return ""
    except httprs.ConnectError as error:
        assert "CERTIFICATE_VERIFY_FAILED" in str(error)
        return str(error)


@pytest.mark.parametrize("defaults", ["interpreter", "changed"])
def test_own_context_applies_the_interpreters_x509_strict(
    tmp_path, clean_env, monkeypatch, request, defaults
):
    """A certificate only VERIFY_X509_STRICT refuses (no Authority Key Identifier) is
    refused by httprs exactly when ssl.create_default_context() refuses it: from Python
    3.13 on, which sets that flag (never a weaker check than httpx's)."""
    if defaults == "changed":
        request.getfixturevalue("changed_defaults")
    ca_file, certfile, keyfile = _leaf_without_authority_key_id(tmp_path)
    srv = _serve(certfile, keyfile)
    try:
        expected = _python_handshake(ssl.create_default_context(cafile=ca_file), srv.port)
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        got = {"verify=True": _httprs_outcome(True, srv.url)}
        with pytest.warns(DeprecationWarning):
            got["verify=<path>"] = _httprs_outcome(ca_file, srv.url)
    finally:
        srv.close()
    strict = defaults == "changed" or sys.version_info >= (3, 13)
    assert ("Authority Key Identifier" in expected) == strict, expected
    for how, outcome in got.items():
        assert bool(outcome) == strict, (how, outcome)
        assert expected in outcome, (how, outcome)


@pytest.mark.parametrize("defaults", ["interpreter", "changed"])
def test_own_context_applies_the_interpreters_partial_chain(
    certs, tls_server_factory, tmp_path, clean_env, monkeypatch, request, defaults
):
    """Trusting only an intermediate CA: accepted where ssl.create_default_context()
    sets VERIFY_X509_PARTIAL_CHAIN (Python 3.13 on), refused before, by httprs as by
    the interpreter's context."""
    if defaults == "changed":
        request.getfixturevalue("changed_defaults")
    intermediate = certs.ca.create_child_ca()
    srv = tls_server_factory(intermediate.issue_cert("localhost", "127.0.0.1"))
    inter_file = str(tmp_path / "intermediate.pem")
    intermediate.cert_pem.write_to_path(inter_file)
    expected = _python_handshake(ssl.create_default_context(cafile=inter_file), srv.port)
    monkeypatch.setenv("SSL_CERT_FILE", inter_file)
    got = _httprs_outcome(True, srv.url)
    partial = defaults == "changed" or sys.version_info >= (3, 13)
    assert (expected == "") == partial, expected
    assert (got == "") == partial, got
    assert expected in got


@pytest.mark.httprs_only
@pytest.mark.parametrize("verify", [True, False])
def test_own_policy_is_the_interpreters(verify):
    """What httprs reads (and keeps until ssl's factory or class changes) is the
    interpreter's context's settings."""
    from httprs._core import _own_policy

    policy = _own_policy(verify)
    ctx = ssl.create_default_context() if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    names = [c["name"] for c in ctx.get_ciphers()]
    assert policy["ciphersuites"].split(":") + policy["cipher_list"].split(":") == names
    assert policy["verify_flags"] == ctx.verify_flags
    assert policy["options"] == ctx.options
    # never below TLS 1.2 (docs/compatibility.md)
    assert policy["min_version"] == max(ctx.minimum_version, ssl.TLSVersion.TLSv1_2)
    assert policy["max_version"] == max(ctx.maximum_version, 0)
    assert policy["security_level"] == getattr(ctx, "security_level", -1)
    partial_wildcards, subject = 0x4, 0x20  # X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, ...
    assert policy["host_flags"] == partial_wildcards | (
        0 if ctx.hostname_checks_common_name else subject
    )
    assert not ctx.post_handshake_auth  # httprs's own contexts never offer it either


@pytest.mark.httprs_only
def test_own_policy_probe_failure_is_a_connect_error(certs, clean_env, monkeypatch):
    """A replacement create_default_context that refuses the probe's capath= (httpx
    passes cafile=) gives httpx's ConnectError, chained, and is not cached: restored,
    the next client works."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    original = ssl.create_default_context

    def create_default_context(cafile=None):
        return original(cafile=cafile)

    with monkeypatch.context() as patch:
        patch.setattr(ssl, "create_default_context", create_default_context)
        # (with SSL_CERT_FILE set the context is built by Client(), as httpx builds it)
        with pytest.raises(httprs.ConnectError, match="default SSL context") as info:
            with httprs.Client() as c:
                c.get("https://127.0.0.1:9/")
        assert isinstance(info.value.__cause__, TypeError)
    from httprs._core import _own_policy

    assert _own_policy(True)["min_version"] >= ssl.TLSVersion.TLSv1_2


@pytest.mark.httprs_only
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_own_context_keeps_the_tls_1_2_floor(certs, clean_env, monkeypatch):
    """An interpreter whose create_default_context() allows TLS 1.0/1.1 (security level
    0, MINIMUM_SUPPORTED): its context reaches a server capped at TLS 1.1, httprs's own
    context never goes below TLS 1.2 and refuses it."""
    original = ssl.create_default_context

    def create_default_context(*args, **kwargs):
        ctx = original(*args, **kwargs)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", create_default_context)
    server_ctx = server_context(certs.server)
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    srv = tls_server(server_ctx)
    try:
        assert _python_handshake(create_default_context(cafile=certs.ca_file), srv.port) == ""
        monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
        with httprs.Client() as c:
            with pytest.raises(httprs.ConnectError):
                c.get(srv.url)
    finally:
        srv.close()


# Bad TLS file arguments fail at Client() with the exceptions httpx's create_ssl_context
# raises there (the ssl module's), not a ConnectError (no request is under way); httprs
# raised OSError / ConnectError and quietly used certifi for a missing SSL_CERT_FILE.


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.parametrize("arg", ["verify", "cert", "cert_key"])
def test_missing_tls_file_is_file_not_found_at_construction(lib, arg, tmp_path, certs):
    missing = str(tmp_path / "missing.pem")
    kwargs = {
        "verify": {"verify": missing},
        "cert": {"cert": missing},
        "cert_key": {"cert": (certs.client_cert_file, missing)},
    }[arg]
    with pytest.warns(DeprecationWarning), pytest.raises(FileNotFoundError):
        lib.Client(**kwargs)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_client_certificate_that_is_not_pem_is_ssl_error(lib, tmp_path):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.warns(DeprecationWarning), pytest.raises(ssl.SSLError):
        lib.Client(cert=str(not_pem))


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_missing_ssl_cert_file_is_file_not_found_at_construction(lib, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        lib.Client()
    lib.Client(trust_env=False).close()  # the environment is not read then


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.parametrize("arg", ["ssl_cert_file", "cert", "cert_key"])
def test_directory_named_as_a_tls_file_is_is_a_directory_error(
    lib, arg, tmp_path, certs, monkeypatch
):
    """A directory where a file belongs fails at Client() as the ssl module fails on it in
    httpx (IsADirectoryError); httprs raised ssl.SSLError ("no certificate or crl found")."""
    folder = str(tmp_path)
    if arg == "ssl_cert_file":
        monkeypatch.setenv("SSL_CERT_FILE", folder)
        with pytest.raises(IsADirectoryError):
            lib.Client()
        return
    cert = folder if arg == "cert" else (certs.client_cert_file, folder)
    with pytest.warns(DeprecationWarning), pytest.raises(IsADirectoryError):
        lib.Client(cert=cert)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_a_refused_ca_file_is_reported_before_a_bad_key_path(lib, tmp_path, certs):
    """The CA file is read first: its SSLError, not the key's IsADirectoryError."""
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.warns(DeprecationWarning), pytest.raises(ssl.SSLError):
        lib.Client(verify=str(garbage), cert=(certs.client_cert_file, str(tmp_path)))


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
@pytest.mark.parametrize("arg", ["verify", "cert", "cert_key"])
def test_tls_path_with_a_nul_is_value_error(lib, arg, certs):
    """The ssl module's ValueError, as in httpx: the core would open the file named by
    what precedes the NUL (a CA bundle other than the one given)."""
    kwargs = {
        "verify": {"verify": certs.ca_file + "\x00.extra"},
        "cert": {"cert": certs.client_cert_file + "\x00.extra"},
        "cert_key": {"cert": (certs.client_cert_file, certs.client_key_file + "\x00x")},
    }[arg]
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="null"):
        lib.Client(**kwargs)


def test_ssl_cert_file_env_naming_an_undecodable_path(https_server, certs, clean_env, tmp_path):
    """A variable whose bytes are no UTF-8 (os.environ gives it surrogate-escaped) names
    the file those bytes name, as ssl.create_default_context(cafile=...) opens it."""
    raw = os.fsencode(str(tmp_path)) + b"/ca-\xff.pem"
    with open(raw, "wb") as f, open(certs.ca_file, "rb") as ca:
        f.write(ca.read())
    clean_env.setenv("SSL_CERT_FILE", os.fsdecode(raw))
    with httprs.Client() as c:
        assert c.get(https_server.url).status_code == 200


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_ssl_cert_file_of_an_environ_replaced_by_a_mapping_is_read(lib, monkeypatch, tmp_path):
    """A program (or test) that puts another mapping in os.environ's place is read
    through that mapping."""
    missing = str(tmp_path / "missing.pem")
    monkeypatch.setattr(os, "environ", {**os.environ, "SSL_CERT_FILE": missing})
    with pytest.raises(FileNotFoundError):
        lib.Client()


def test_ssl_cert_dir_is_used_even_when_ssl_cert_file_is_unset(
    certs, https_server, monkeypatch, tmp_path
):
    """As httpx: SSL_CERT_DIR names the CA directory (a directory without our CA fails the
    verification; httprs fell back to certifi's bundle for a missing one)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with (
        httprs.Client() as c,
        pytest.raises(httprs.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        c.get(https_server.url)


@pytest.mark.parametrize("lib", [httprs, httpx], ids=["httprs", "httpx"])
def test_pool_ssl_context_is_the_one_httpx_builds(lib):
    """Test suites read `transport._pool._ssl_context` to check verify= (httprs gave None)."""
    with lib.Client() as c:
        ctx = c._transport._pool._ssl_context
        assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    with lib.Client(verify=False) as c:
        ctx = c._transport._pool._ssl_context
        assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname
    given = ssl.create_default_context()
    with lib.Client(verify=given) as c:
        assert c._transport._pool._ssl_context is given


def test_clients_made_concurrently_under_a_hooked_class_leave_warning_filters(certs):
    """Building httpx's context under warnings.catch_warnings() (not thread-safe) from
    many threads left an "ignore DeprecationWarning" filter in the process."""
    truststore = pytest.importorskip("truststore")
    import threading
    import warnings

    before = list(warnings.filters)

    def make():
        for i in range(20):
            httprs.Client(verify=True if i % 2 else False).close()

    truststore.inject_into_ssl()
    try:
        threads = [threading.Thread(target=make) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        truststore.extract_from_ssl()
    assert list(warnings.filters) == before


@pytest.mark.httprs_only  # httpx: a PathLike cert is a TypeError
def test_hooked_class_takes_verify_none_and_a_pathlike_cert(
    https_server, mtls_server, certs, class_level_pinning, clean_env
):
    """verify=None (True for httprs's own context) and cert=<PathLike> (taken by it) still
    work while ssl.SSLContext has hooks: httpx's context was built from them and failed."""
    import pathlib

    clean_env.setenv("SSL_CERT_FILE", certs.ca_file)
    class_level_pinning(certs.server)
    with httprs.Client(verify=None) as c:
        assert c.get(https_server.url).status_code == 200
    with httprs.Client(cert=pathlib.Path(certs.client_both_file)) as c:
        assert c.get(mtls_server.url).json()["client_subject"] is not None


@pytest.mark.httprs_only
def test_a_functools_wraps_hook_is_not_the_ssl_modules_own():
    """A hook made with functools.wraps has the original's __module__ and __qualname__:
    installed before httprs was imported, it was taken for the ssl module's own and
    skipped"""
    import functools

    from httprs import _core

    original = ssl.SSLContext.wrap_bio

    @functools.wraps(original)
    def hook(self, *args, **kwargs):
        return original(self, *args, **kwargs)

    assert _core._is_the_ssl_modules_own(original)
    assert not _core._is_the_ssl_modules_own(hook)


@pytest.mark.httprs_only
def test_an_sslobject_hook_installed_before_httprs_was_imported_is_seen(monkeypatch):
    """sslkeylog replaces ssl.SSLObject.do_handshake (with functools.wraps); installed
    before httprs was imported, the snapshot httprs compares SSLObject with would hold
    the hook as if it were the ssl module's own: it must not pass for it."""
    import functools

    from httprs import _core

    assert _core._sslobject_is_the_ssl_modules_own()
    original = ssl.SSLObject.do_handshake

    @functools.wraps(original)
    def logging_keys(self):
        return original(self)

    monkeypatch.setattr(ssl.SSLObject, "do_handshake", logging_keys)
    assert not _core._sslobject_is_the_ssl_modules_own()

"""TLS session resumption: when a kept session may be offered again.

A resumed TLS 1.3 handshake verifies no certificate, so httprs offers a kept session only
while the chain its full handshake verified is still valid (and at most an hour after that
verification), hands each ticket out once (RFC 8446 C.4), and keeps no session across
fork(). Each case runs for a passed ``ssl.SSLContext`` (the "adopted" context, whose
sessions the connections harvest) and for a CA path (httprs's own context, fed by
OpenSSL's new-session callback).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import time
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers.tls import server_context, tls_server

import httprs

VALIDATING = os.environ.get("HTTPRS_TEST_TARGET", "") == "httpx"
NO_KEEPALIVE = httprs.Limits(max_keepalive_connections=0)
VALID_FOR = 4  # seconds: long enough for two requests, short enough to wait out

# verify=<CA path> is deprecated, and it is how a test gets httprs's own context.
pytestmark = pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning")


def _reused(response) -> bool:
    return response.json()["session_reused"]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _verify_options(certs):
    """(label, make verify=) for a passed context and for httprs's own context."""
    return [
        ("passed", lambda: ssl.create_default_context(cafile=certs.ca_file)),
        ("own", lambda: certs.ca_file),
    ]


def _cert(subject, issuer, issuer_key, key, not_before, not_after, *, ca, names=()):
    builder = (
        x509
        .CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Key identifiers: ssl.create_default_context() sets VERIFY_X509_STRICT from
        # Python 3.13 on, under which OpenSSL refuses a certificate without its issuer's.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        usage = dict(key_cert_sign=True, crl_sign=True, digital_signature=False)
    else:
        usage = dict(key_cert_sign=False, crl_sign=False, digital_signature=True)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(n)) for n in names]),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    builder = builder.add_extension(
        x509.KeyUsage(
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            encipher_only=False,
            decipher_only=False,
            **usage,
        ),
        critical=True,
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _short_lived_intermediate_context(certs, tmp_path, not_after) -> ssl.SSLContext:
    """A server context for 127.0.0.1 whose leaf (valid for a day) is signed by an
    intermediate CA that expires at ``not_after``, itself signed by ``certs.ca``."""
    root_key = serialization.load_pem_private_key(certs.ca.private_key_pem.bytes(), password=None)
    root = x509.load_pem_x509_certificate(certs.ca.cert_pem.bytes())
    start = _now() - datetime.timedelta(hours=1)
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = _cert(
        "short-lived intermediate", root.subject, root_key, mid_key, start, not_after, ca=True
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(
        "127.0.0.1",
        mid.subject,
        mid_key,
        leaf_key,
        start,
        start + datetime.timedelta(days=1),
        ca=False,
        names=("127.0.0.1",),
    )
    chain = tmp_path / "chain.pem"
    key = tmp_path / "key.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + mid.public_bytes(serialization.Encoding.PEM)
    )
    key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    return ctx


def _expiring_servers(certs, tmp_path):
    """Two servers whose verified chain expires VALID_FOR seconds from now: one through its
    leaf, one through its intermediate CA. Returns (servers, when both have expired)."""
    now = _now()
    not_after = now + datetime.timedelta(seconds=VALID_FOR)
    leaf = certs.ca.issue_cert(
        "127.0.0.1", not_before=now - datetime.timedelta(hours=1), not_after=not_after
    )
    servers = {
        "leaf": tls_server(server_context(leaf)),
        "intermediate": tls_server(_short_lived_intermediate_context(certs, tmp_path, not_after)),
    }
    return servers, not_after + datetime.timedelta(seconds=1.5)


def _sleep_until(moment: datetime.datetime) -> None:
    time.sleep(max(0.0, (moment - _now()).total_seconds()))


def _assert_expired(exc_info) -> None:
    assert "certificate has expired" in str(exc_info.value)


def test_expired_chain_is_never_resumed(certs, tmp_path):
    """F1: a session is not offered once a certificate of the chain its handshake verified
    has expired: the full handshake then fails like httpx's (CERTIFICATE_VERIFY_FAILED)."""
    servers, expired_at = _expiring_servers(certs, tmp_path)
    clients = {}
    try:
        for label, verify in _verify_options(certs):
            for which, srv in servers.items():
                c = httprs.Client(verify=verify(), limits=NO_KEEPALIVE)
                clients[label, which] = c
                assert _reused(c.get(srv.url)) is False
                resumed = _reused(c.get(srv.url))
                assert resumed is not VALIDATING, (label, which)  # httprs resumes, httpx not
        _sleep_until(expired_at)
        for (_label, which), c in clients.items():
            with pytest.raises(httprs.ConnectError) as exc_info:
                c.get(servers[which].url)
            _assert_expired(exc_info)
    finally:
        for c in clients.values():
            c.close()
        for srv in servers.values():
            srv.close()


@pytest.mark.anyio
async def test_expired_chain_is_never_resumed_async(certs, tmp_path, anyio_backend):
    servers, expired_at = _expiring_servers(certs, tmp_path)
    clients = {}
    try:
        for label, verify in _verify_options(certs):
            for which, srv in servers.items():
                c = httprs.AsyncClient(verify=verify(), limits=NO_KEEPALIVE)
                clients[label, which] = c
                assert _reused(await c.get(srv.url)) is False
                resumed = _reused(await c.get(srv.url))
                assert resumed is not VALIDATING, (label, which)
        _sleep_until(expired_at)
        for (_label, which), c in clients.items():
            with pytest.raises(httprs.ConnectError) as exc_info:
                await c.get(servers[which].url)
            _assert_expired(exc_info)
    finally:
        for c in clients.values():
            await c.aclose()
        for srv in servers.values():
            srv.close()


def _one_ticket_server(certs):
    """A server that issues exactly one ticket: on its first handshake, then none."""
    ctx = server_context(certs.server)
    ctx.num_tickets = 1
    return ctx, tls_server(ctx)


@pytest.mark.httprs_only
@pytest.mark.parametrize("kind", ["passed", "own"])
def test_a_ticket_is_offered_once(certs, kind):
    """F2: a connection that resumed and got no new ticket does not put the ticket it
    offered back: the server's single ticket resumes one connection, not every one."""
    verify = dict(_verify_options(certs))[kind]()
    sctx, srv = _one_ticket_server(certs)
    try:
        with httprs.Client(verify=verify, limits=NO_KEEPALIVE) as c:
            seq = [_reused(c.get(srv.url))]
            sctx.num_tickets = 0
            seq += [_reused(c.get(srv.url)) for _ in range(4)]
    finally:
        srv.close()
    assert seq == [False, True, False, False, False]


@pytest.mark.httprs_only
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["passed", "own"])
async def test_a_ticket_is_offered_once_async(certs, kind, anyio_backend):
    verify = dict(_verify_options(certs))[kind]()
    sctx, srv = _one_ticket_server(certs)
    try:
        async with httprs.AsyncClient(verify=verify, limits=NO_KEEPALIVE) as c:
            seq = [_reused(await c.get(srv.url))]
            sctx.num_tickets = 0
            seq += [_reused(await c.get(srv.url)) for _ in range(4)]
    finally:
        srv.close()
    assert seq == [False, True, False, False, False]


def _fork_child_resumes(client, url) -> bool:
    """Forks; the child makes one request with ``client`` and reports whether it resumed."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(r)
            os.write(w, b"1" if _reused(client.get(url)) else b"0")
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    try:
        got = os.read(r, 1)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and got in (b"0", b"1")
    return got == b"1"


@pytest.mark.httprs_only
@pytest.mark.parametrize("kind", ["passed", "own"])
@pytest.mark.parametrize("pooled", [False, True], ids=["closed", "pooled"])
def test_fork_child_does_not_present_the_parents_tickets(certs, kind, pooled):
    """F3: the child of fork() starts without the parent's sessions (one ticket issued in
    total: only the parent may use it), also when the parent's connection is still pooled
    at the fork (the child drops its copy without donating its session)."""
    verify = dict(_verify_options(certs))[kind]()
    sctx, srv = _one_ticket_server(certs)
    limits = httprs.Limits() if pooled else NO_KEEPALIVE
    try:
        with httprs.Client(verify=verify, limits=limits) as c:
            assert _reused(c.get(srv.url)) is False
            sctx.num_tickets = 0
            assert _fork_child_resumes(c, srv.url) is False
            if not pooled:
                assert _reused(c.get(srv.url)) is True  # the parent still has its ticket
    finally:
        srv.close()

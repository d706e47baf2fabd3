"""Certificates (trustme) and TLS servers built on the scripted server."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from .scripted import Conn, ScriptedServer


@dataclass
class Certs:
    ca: trustme.CA
    ca_file: str  # PEM of the CA that signed the server certificates
    other_ca: trustme.CA
    other_ca_file: str  # PEM of an unrelated CA
    server: trustme.LeafCert  # for localhost and 127.0.0.1
    wrong_name: trustme.LeafCert  # for "example.org" only
    client: trustme.LeafCert  # client certificate, signed by ``ca``
    client_cert_file: str  # PEM: client cert chain
    client_key_file: str  # PEM: client private key (unencrypted)
    client_both_file: str  # PEM: key + cert chain in one file
    client_key_encrypted_file: str  # PEM: the key encrypted with CLIENT_KEY_PASSWORD


CLIENT_KEY_PASSWORD = b"s3cret"


def make_certs(directory: Path) -> Certs:
    ca = trustme.CA()
    other_ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    wrong_name = ca.issue_cert("example.org")
    client = ca.issue_cert("client@example.org")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca_file = directory / "other_ca.pem"
    other_ca.cert_pem.write_to_path(str(other_ca_file))
    client_cert_file = directory / "client_cert.pem"
    client_key_file = directory / "client_key.pem"
    client_both_file = directory / "client_both.pem"
    for blob in client.cert_chain_pems:
        blob.write_to_path(str(client_cert_file), append=True)
    client.private_key_pem.write_to_path(str(client_key_file))
    client.private_key_and_cert_chain_pem.write_to_path(str(client_both_file))
    client_key_encrypted_file = directory / "client_key_encrypted.pem"
    _write_encrypted_key(client.private_key_pem.bytes(), client_key_encrypted_file)
    return Certs(
        ca=ca,
        ca_file=str(ca_file),
        other_ca=other_ca,
        other_ca_file=str(other_ca_file),
        server=server,
        wrong_name=wrong_name,
        client=client,
        client_cert_file=str(client_cert_file),
        client_key_file=str(client_key_file),
        client_both_file=str(client_both_file),
        client_key_encrypted_file=str(client_key_encrypted_file),
    )


def _write_encrypted_key(key_pem: bytes, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_pem, password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(CLIENT_KEY_PASSWORD),
        )
    )


def server_context(
    cert: trustme.LeafCert,
    *,
    require_client_cert_from: trustme.CA | None = None,
    sni_log: list | None = None,
) -> ssl.SSLContext:
    """A server context; if ``sni_log`` is given, each handshake appends the SNI name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    if sni_log is not None:

        def record(sslobj, name, context):
            sni_log.append(name)

        ctx.sni_callback = record
    if require_client_cert_from is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        require_client_cert_from.configure_trust(ctx)
    return ctx


def tls_info_handler(conn: Conn) -> None:
    """Keep-alive; answers JSON with the request line, headers and the client cert subject."""
    while (req := conn.read_request()) is not None:
        peer = conn.sock.getpeercert() if hasattr(conn.sock, "getpeercert") else None
        subject = None
        if peer:
            subject = dict(x[0] for x in peer.get("subject", ()))
        doc = {
            "method": req.method,
            "target": req.target,
            "headers": req.headers,
            "client_subject": subject,
            "tls_version": conn.sock.version(),
            "session_reused": conn.sock.session_reused,
            "body_len": len(req.body),
            "connection_index": conn.index,
        }
        if not conn.respond(
            json.dumps(doc).encode(), headers=[("Content-Type", "application/json")]
        ):
            return


def tls_server(ctx: ssl.SSLContext, handler=tls_info_handler) -> ScriptedServer:
    return ScriptedServer(handler, ssl_context=ctx)

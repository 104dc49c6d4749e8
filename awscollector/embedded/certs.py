"""Throwaway PKI for the embedded Devo relay: a CA, a server and two client certificates.

Devo authenticates senders by client certificate, so the demo and the tests need a CA,
a server certificate for the relay, a client certificate the relay trusts and one it
must refuse (signed by a different CA). Keys are EC P-256 so that making them is fast.

    pki = make_test_pki(tmp_path)
    relay = DevoRelay(pki).start()
    Sender(SenderConfigSSL(address=relay.address, key=str(pki.client_key),
                           cert=str(pki.client_cert), chain=str(pki.ca_cert)))

The server certificate file holds the server certificate followed by the CA, so the
relay presents its whole chain, which devo-sdk's `verify_config=True` check expects.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class TestPki:
    """Paths of the PEM files made by make_test_pki."""

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    ca_cert: Path  # the "chain" file both the client and the relay trust
    server_cert: Path  # CN=localhost, SAN DNS:localhost and IP:127.0.0.1, then the CA
    server_key: Path
    client_cert: Path  # signed by the CA
    client_key: Path
    rogue_client_cert: Path  # signed by another CA, which the relay does not trust
    rogue_client_key: Path


def make_test_pki(directory: str | Path) -> TestPki:
    """Create a fresh CA, server and client certificates in directory (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    not_before = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)

    ca_key, ca = _make_ca("awscollector test CA", not_before)
    rogue_ca_key, rogue_ca = _make_ca("awscollector untrusted CA", not_before)

    server_key = _new_key()
    server = _sign(
        ca_key,
        ca,
        server_key,
        "localhost",
        not_before,
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_key = _new_key()
    client = _sign(
        ca_key,
        ca,
        client_key,
        "awscollector test client",
        not_before,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    rogue_key = _new_key()
    rogue = _sign(
        rogue_ca_key,
        rogue_ca,
        rogue_key,
        "awscollector rogue client",
        not_before,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )

    pki = TestPki(
        directory=out,
        ca_cert=out / "ca.crt",
        server_cert=out / "server.crt",
        server_key=out / "server.key",
        client_cert=out / "client.crt",
        client_key=out / "client.key",
        rogue_client_cert=out / "rogue-client.crt",
        rogue_client_key=out / "rogue-client.key",
    )
    _write(pki.ca_cert, _cert_pem(ca))
    _write(pki.server_cert, _cert_pem(server) + _cert_pem(ca))
    _write(pki.server_key, _key_pem(server_key), private=True)
    _write(pki.client_cert, _cert_pem(client))
    _write(pki.client_key, _key_pem(client_key), private=True)
    _write(pki.rogue_client_cert, _cert_pem(rogue))
    _write(pki.rogue_client_key, _key_pem(rogue_key), private=True)
    return pki


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_ca(
    common_name: str, not_before: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    public = key.public_key()
    # Key usage and key identifiers keep strict verifiers (Python 3.13's default) happy.
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _sign(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    not_before: dt.datetime,
    usage: x509.ObjectIdentifier,
    alt_names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, private: bool = False) -> None:
    mode = 0o600 if private else 0o644
    # Create with the final mode so a key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that already existed

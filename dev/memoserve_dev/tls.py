"""A throwaway CA and server certificate per instance, as Memorystore's in-transit encryption
has: clients verify the server with the CA from ``serverCaCerts`` (server authentication only).

The server certificate names the emulator's host (and localhost), so clients may check the
host name or not (Memorystore's own certificates name no host: memoserve does not check it).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: str
    ca_path: Path
    cert_path: Path
    key_path: Path
    serial_number: str
    sha1_fingerprint: str
    not_before: datetime.datetime
    not_after: datetime.datetime


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])


def _san(host: str) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    if host != "127.0.0.1":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    return x509.SubjectAlternativeName(names)


def make_tls(directory: Path, host: str, label: str) -> TlsFiles:
    """Write ca.crt, server.crt and server.key into ``directory`` (EC P-256: fast to make)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(f"memorystore-emulator CA {label}"))
        .issuer_name(_name(f"memorystore-emulator CA {label}"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
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
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(label))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(_san(host), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    files = TlsFiles(
        ca_pem=ca_pem,
        ca_path=directory / "ca.crt",
        cert_path=directory / "server.crt",
        key_path=directory / "server.key",
        serial_number=str(ca.serial_number),
        sha1_fingerprint=ca.fingerprint(hashes.SHA1()).hex(),  # as the API shows it
        not_before=now,
        not_after=now + VALIDITY,
    )
    files.ca_path.write_text(ca_pem)
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key_path.chmod(0o600)
    return files


def load_tls(directory: Path) -> TlsFiles | None:
    """The files ``make_tls`` wrote earlier into ``directory``, if they are all there."""
    files = [directory / name for name in ("ca.crt", "server.crt", "server.key")]
    if not all(path.exists() for path in files):
        return None
    ca_pem = files[0].read_text()
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    return TlsFiles(
        ca_pem=ca_pem,
        ca_path=files[0],
        cert_path=files[1],
        key_path=files[2],
        serial_number=str(ca.serial_number),
        sha1_fingerprint=ca.fingerprint(hashes.SHA1()).hex(),
        not_before=ca.not_valid_before_utc,
        not_after=ca.not_valid_after_utc,
    )

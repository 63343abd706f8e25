"""The serving pods' gRPC TLS certificate: self-signed, made by the operator.

Google Cloud load balancers send HTTP/2 to backends only over TLS and do not verify the
backend's certificate (GKE's "HTTP/2 for load balancing with Ingress"), so a self-signed one is
all the TLS gRPC port needs; an in-cluster client that wants TLS can pin it (``tls.crt`` of the
``<name>-grpc-tls`` Secret). EC P-256: quick to make, accepted by the load balancer.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from memoserve_operator.builders.grpc_tls import TlsMaterial

VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)  # a renewed certificate rolls the pods


def dns_names(namespace: str, name: str) -> list[str]:
    """The names in-cluster clients reach the Service by."""
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
    ]


def make_certificate(namespace: str, name: str, now: datetime.datetime) -> TlsMaterial:
    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names(namespace, name)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clock skew between nodes
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return TlsMaterial(cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode())


def still_good(material: TlsMaterial, namespace: str, name: str, now: datetime.datetime) -> bool:
    """Whether ``material`` is a matching key and certificate for this Service, valid for a
    while yet. Anything unreadable is not good (and gets replaced)."""
    try:
        cert = x509.load_pem_x509_certificate(material.cert_pem.encode())
        key = serialization.load_pem_private_key(material.key_pem.encode(), password=None)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    same_key = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    names = sans.get_values_for_type(x509.DNSName)
    return (
        same_key
        and names == dns_names(namespace, name)
        and cert.not_valid_before_utc <= now
        and now < cert.not_valid_after_utc - RENEW_BEFORE
    )

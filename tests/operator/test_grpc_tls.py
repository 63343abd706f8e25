"""The gRPC TLS certificate the operator makes for the pods, and when it is replaced."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from memoserve_operator.builders.grpc_tls import TlsMaterial
from memoserve_operator.grpc_tls.certificate import (
    RENEW_BEFORE,
    VALIDITY,
    make_certificate,
    still_good,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def material() -> TlsMaterial:
    return make_certificate("ml", "iris", NOW)


def test_the_certificate_names_the_service(material: TlsMaterial) -> None:
    cert = x509.load_pem_x509_certificate(material.cert_pem.encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "iris", "iris.ml", "iris.ml.svc", "iris.ml.svc.cluster.local",
    ]  # fmt: skip
    assert cert.not_valid_after_utc == NOW + VALIDITY


def test_python_ssl_takes_the_pair(material: TlsMaterial, tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text(material.cert_pem)
    (tmp_path / "tls.key").write_text(material.key_pem)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")  # raises if they differ


def test_kept_until_thirty_days_before_it_expires(material: TlsMaterial) -> None:
    assert still_good(material, "ml", "iris", NOW)
    assert still_good(material, "ml", "iris", NOW + VALIDITY - RENEW_BEFORE - datetime.timedelta(1))
    assert not still_good(material, "ml", "iris", NOW + VALIDITY - RENEW_BEFORE)


def test_replaced_when_it_does_not_fit(material: TlsMaterial) -> None:
    other = make_certificate("ml", "iris", NOW)
    assert not still_good(material, "ml", "ranker", NOW)  # another service's names
    assert not still_good(TlsMaterial(material.cert_pem, other.key_pem), "ml", "iris", NOW)
    assert not still_good(TlsMaterial("garbage", material.key_pem), "ml", "iris", NOW)
    assert not still_good(TlsMaterial(material.cert_pem, ""), "ml", "iris", NOW)
    assert not still_good(material, "ml", "iris", NOW - datetime.timedelta(hours=1))

"""The local metadata server: what google-auth asks of it, and the knobs tests turn."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from memoserve_dev.metadata_server import DEFAULT_EMAIL, MetadataServer

FLAVOR = {"Metadata-Flavor": "Google"}
ACCOUNT = "/computeMetadata/v1/instance/service-accounts/default"


@pytest.fixture
def server() -> Iterator[MetadataServer]:
    with MetadataServer(project="p1", token="t1", expires_in=120) as running:
        yield running


@pytest.fixture
def http(server: MetadataServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{server.environ()['GCE_METADATA_HOST']}") as client:
        yield client


def test_only_requests_with_the_metadata_flavor_header_are_answered(http: httpx.Client) -> None:
    refused = http.get("/computeMetadata/v1/project/project-id")
    assert refused.status_code == 403
    answered = http.get("/computeMetadata/v1/project/project-id", headers=FLAVOR)
    assert (answered.status_code, answered.text) == (200, "p1")
    assert answered.headers["Metadata-Flavor"] == "Google"
    assert http.get("/", headers=FLAVOR).headers["Metadata-Flavor"] == "Google"  # the ping


def test_service_account_and_tokens(server: MetadataServer, http: httpx.Client) -> None:
    info = http.get(ACCOUNT + "/", params={"recursive": "true"}, headers=FLAVOR).json()
    assert info["email"] == DEFAULT_EMAIL
    assert (
        http.get(
            f"/computeMetadata/v1/instance/service-accounts/{DEFAULT_EMAIL}/email", headers=FLAVOR
        ).text
        == DEFAULT_EMAIL
    )
    first = http.get(ACCOUNT + "/token", headers=FLAVOR).json()
    assert first == {"access_token": "t1", "expires_in": 120, "token_type": "Bearer"}
    server.set_token("t2", expires_in=60)
    assert http.get(ACCOUNT + "/token", headers=FLAVOR).json()["access_token"] == "t2"
    assert server.tokens_served == ["t1", "t2"]
    assert (
        http.get(
            "/computeMetadata/v1/instance/service-accounts/other/token", headers=FLAVOR
        ).status_code
        == 404
    )


def test_failing_tokens_and_not_being_on_google_cloud(
    server: MetadataServer, http: httpx.Client
) -> None:
    server.fail_tokens(403, "no Google service account for this pod")
    refused = http.get(ACCOUNT + "/token", headers=FLAVOR)
    assert (refused.status_code, refused.text) == (403, "no Google service account for this pod")
    server.fail_tokens(None)
    assert http.get(ACCOUNT + "/token", headers=FLAVOR).status_code == 200
    server.gce = False
    ping = http.get("/", headers=FLAVOR)
    assert ping.status_code == 404
    assert "Metadata-Flavor" not in ping.headers

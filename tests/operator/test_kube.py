"""The thin Kubernetes client against a fake API server: requests on the wire, errors mapped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import Configuration

from memoserve_dev.ports import free_port
from memoserve_operator.kube import client as kube
from memoserve_operator.kube.client import KubeClient, resource_of
from tests.operator.fake_api import (
    APPLY,
    NAMESPACE,
    FakeKube,
    declare_resources,
    key,
    path,
    requests,
    write_kubeconfig,
)

pytestmark = pytest.mark.kmock(cls=FakeKube)

DEPLOYMENTS = resource_of("apps/v1", "Deployment")
SECRETS = resource_of("v1", "Secret")
ISVCS = resource_of("serving.memoserve.dev/v1alpha1", "InferenceService")


@pytest.fixture
def api(kmock: Any) -> Any:
    declare_resources(kmock)
    return kmock


@pytest.fixture
async def client(api: Any) -> AsyncIterator[KubeClient]:
    client = await KubeClient.open(Configuration(host=str(api.url)))
    yield client
    await client.close()


def deployment(**labels: str) -> dict[str, Any]:
    meta = {"name": "iris", "namespace": NAMESPACE, "labels": labels}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": {}}


@pytest.mark.parametrize(
    ("api_version", "kind", "name", "sub", "expected_path", "rbac"),
    [
        ("v1", "Secret", "x", None, "/api/v1/namespaces/ml/secrets/x", "secrets"),
        (
            "apps/v1",
            "Deployment",
            None,
            None,
            "/apis/apps/v1/namespaces/ml/deployments",
            "deployments.apps",
        ),
        (
            "serving.memoserve.dev/v1alpha1",
            "InferenceService",
            "iris",
            "status",
            "/apis/serving.memoserve.dev/v1alpha1/namespaces/ml/inferenceservices/iris/status",
            "inferenceservices/status.serving.memoserve.dev",
        ),
    ],
)
def test_paths_and_rbac_names(
    api_version: str, kind: str, name: str | None, sub: str | None, expected_path: str, rbac: str
) -> None:
    resource = resource_of(api_version, kind)
    assert resource.path("ml", name, sub) == expected_path
    assert resource.rbac_name(sub) == rbac


async def test_apply_is_a_server_side_apply_patch(api: Any, client: KubeClient) -> None:
    result = await client.apply(deployment(app="a"), "memoserve-operator")
    assert result["metadata"]["labels"] == {"app": "a"}
    (request,) = requests(api)
    assert (request.method.value, str(request.url.path)) == (
        "PATCH",
        path("apps/v1", "Deployment", "iris"),
    )
    assert request.params == {"fieldManager": "memoserve-operator", "force": "true"}
    assert request.headers["Content-Type"] == APPLY
    assert request.headers["User-Agent"] == "memoserve-operator"
    assert request.data == deployment(app="a")


async def test_get_list_delete_and_status(api: Any, client: KubeClient) -> None:
    await client.apply(deployment(app="a"), "m")
    found = await client.get(DEPLOYMENTS, NAMESPACE, "iris")
    assert found is not None
    assert await client.get(DEPLOYMENTS, NAMESPACE, "other") is None
    assert [o["metadata"]["name"] for o in await client.list(DEPLOYMENTS, NAMESPACE, "app=a")] == [
        "iris"
    ]
    assert await client.list(DEPLOYMENTS, NAMESPACE, "app=b") == []
    list_request = requests(api)[-1]
    assert list_request.params == {"labelSelector": "app=b"}
    await client.delete(DEPLOYMENTS, NAMESPACE, "iris", found["metadata"]["uid"])
    assert requests(api)[-1].data == {
        "propagationPolicy": "Background",
        "preconditions": {"uid": found["metadata"]["uid"]},
    }
    assert api.objects[key("apps/v1", "Deployment"), NAMESPACE, "iris"].deleted
    await client.delete(DEPLOYMENTS, NAMESPACE, "iris", "gone")  # already gone: fine


async def test_status_is_a_merge_patch_of_the_subresource(api: Any, client: KubeClient) -> None:
    body = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris", "namespace": NAMESPACE},
    }
    api.objects[key("serving.memoserve.dev/v1alpha1", "InferenceService"), NAMESPACE, "iris"] = body
    await client.patch_status(ISVCS, NAMESPACE, "iris", {"url": None, "replicas": 1})
    (request,) = requests(api)
    assert str(request.url.path).endswith("/inferenceservices/iris/status")
    assert request.headers["Content-Type"] == "application/merge-patch+json"
    assert request.data == {"status": {"url": None, "replicas": 1}}


async def test_uninstalled_resource_types_read_as_empty(kmock: Any) -> None:
    # No BackendConfig CRD on this cluster: nothing to find, nothing to prune.
    client = await KubeClient.open(Configuration(host=str(kmock.url)))
    try:
        backend_configs = resource_of("cloud.google.com/v1", "BackendConfig")
        assert await client.list(backend_configs, NAMESPACE, "a=b") == []
        assert await client.get(backend_configs, NAMESPACE, "iris") is None
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (401, kube.Unauthorized, True),
        (403, kube.Forbidden, False),
        (409, kube.Conflict, False),
        (422, kube.Invalid, False),
        (429, kube.Unavailable, True),
        (500, kube.Unavailable, True),
        (418, kube.KubeError, False),
    ],
)
async def test_api_errors_become_domain_errors(
    api: Any, client: KubeClient, status: int, error: type[kube.KubeError], transient: bool
) -> None:
    api.refuse("PATCH", "deployments", status, "the server says no")
    with pytest.raises(error) as caught:
        await client.apply(deployment(), "m")
    assert type(caught.value) is error
    assert caught.value.transient is transient
    assert (
        str(caught.value) == f"patch deployments.apps ml/iris: the server says no (HTTP {status})"
    )


async def test_no_answer_is_unavailable() -> None:
    port = free_port()  # nobody listens there
    client = await KubeClient.open(Configuration(host=f"http://127.0.0.1:{port}"))
    try:
        with pytest.raises(kube.Unavailable) as caught:
            await client.get(SECRETS, NAMESPACE, "x")
        assert caught.value.transient
    finally:
        await client.close()


async def test_configuration_comes_from_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes_asyncio.config import kube_config

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = write_kubeconfig(tmp_path / "kubeconfig", "https://203.0.113.1:6443")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
    configuration = await kube.load_configuration()
    assert configuration.host == "https://203.0.113.1:6443"
    assert configuration.api_key["BearerToken"].endswith("fake-token")

"""The InferenceService models and the operator's settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memoserve_contract.resource.inferenceservice import InferenceService, InferenceServiceSpec
from memoserve_contract.resource.status import ConditionStatus, InferenceServiceStatus
from memoserve_operator.settings import OperatorSettings, SettingsError
from tests.operator.helpers import make_isvc


def test_camel_case_on_the_wire_snake_case_in_python() -> None:
    isvc = make_isvc(
        minReplicas=2,
        maxReplicas=5,
        autoscaling={"targetCPUUtilization": 60, "targetInflightRequestsPerPod": 4},
        ingress={"enabled": True, "staticIPName": "ip", "className": "gce-internal"},
        cache={"l1MaxBytes": 10, "existingMemorystore": {"name": "shared"}},
    )
    spec = isvc.spec
    assert (spec.min_replicas, spec.max_replicas) == (2, 5)
    assert spec.autoscaling is not None
    assert spec.autoscaling.target_cpu_utilization == 60
    assert spec.ingress is not None
    assert spec.ingress.static_ip_name == "ip"
    assert spec.cache is not None
    assert spec.cache.source == "existingMemorystore"
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["autoscaling"] == {"targetCPUUtilization": 60, "targetInflightRequestsPerPod": 4}
    assert dumped["ingress"]["staticIPName"] == "ip"
    assert InferenceServiceSpec.model_validate(dumped) == spec


def test_defaults_match_the_crd() -> None:
    isvc = make_isvc(
        cache={"memorystore": {}}, ingress={"enabled": True}, gpu={"type": "nvidia-l4"}
    )
    spec = isvc.spec
    assert (spec.min_replicas, spec.max_replicas, spec.replicas) == (1, None, None)
    assert spec.cache is not None
    assert spec.cache.memorystore is not None
    assert (spec.cache.enabled, spec.cache.ttl_seconds) == (True, 3600)
    assert spec.cache.memorystore.redis_configs == {"maxmemory-policy": "allkeys-lru"}
    assert spec.ingress is not None
    assert (spec.ingress.class_name, spec.ingress.path) == ("gce", "/")
    assert spec.gpu is not None
    assert spec.gpu.count == 1


@pytest.mark.parametrize(
    ("spec", "autoscaled", "fixed"),
    [
        ({}, False, 1),
        ({"minReplicas": 3}, False, 3),
        ({"minReplicas": 2, "maxReplicas": 2, "replicas": 4}, False, 4),
        ({"minReplicas": 1, "maxReplicas": 3}, True, 1),
    ],
)
def test_autoscaling_is_on_when_max_exceeds_min(
    spec: dict[str, int], autoscaled: bool, fixed: int
) -> None:
    isvc = make_isvc(**spec)
    assert (isvc.spec.autoscaled, isvc.spec.fixed_replicas) == (autoscaled, fixed)


def test_model_name_defaults_to_metadata_name() -> None:
    assert make_isvc().model_name == "iris"
    named = make_isvc(model={"uri": "/m.onnx", "format": "onnx", "name": "flowers"})
    assert named.model_name == "flowers"


def test_from_body_ignores_what_the_api_server_adds() -> None:
    body = {
        "apiVersion": "serving.memoserve.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "uid": "u",
            "generation": 3,
            "resourceVersion": "42",
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"model": {"uri": "gs://my-models/iris/", "format": "sklearn"}},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Serving"}],
            "kopf": {"progress": {}},
        },
    }
    isvc = InferenceService.from_body(body)
    assert (isvc.metadata.generation, isvc.metadata.uid) == (3, "u")
    assert isvc.status is not None
    assert isvc.status.observed_generation == 2
    ready = isvc.status.condition("Ready")
    assert ready is not None
    assert ready.status == ConditionStatus.TRUE


def test_unknown_spec_fields_are_errors() -> None:
    with pytest.raises(ValidationError, match="replica"):
        make_isvc(replica=3)


def test_models_are_immutable() -> None:
    isvc = make_isvc()
    with pytest.raises(ValidationError):
        isvc.spec.min_replicas = 4


def test_status_round_trip() -> None:
    status = InferenceServiceStatus.model_validate(
        {"replicas": 2, "readyReplicas": 1, "replicaSummary": "1/2", "cache": {"state": "READY"}}
    )
    assert status.model_dump(by_alias=True, exclude_none=True)["readyReplicas"] == 1


def test_settings_from_env() -> None:
    settings = OperatorSettings.from_env(
        {
            "MEMOSERVE_OPERATOR_DEFAULT_IMAGE": "example/memoserve:2",
            "MEMOSERVE_OPERATOR_NAMESPACES": "ml, team-a,",
            "MEMOSERVE_OPERATOR_DEFAULT_REQUESTS": '{"cpu": "2"}',
            "MEMOSERVE_OPERATOR_POD_MONITORING": "true",
            "MEMOSERVE_OTHER": "ignored",
        },
        gcp_project="p",
    )
    assert settings.default_image == "example/memoserve:2"
    assert settings.namespaces == ("ml", "team-a")
    assert settings.default_requests == {"cpu": "2"}
    assert (settings.pod_monitoring, settings.gcp_project) == (True, "p")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MEMOSERVE_OPERATOR_RUN_AS_USER": "root"}, "MEMOSERVE_OPERATOR_RUN_AS_USER: "),
        ({"MEMOSERVE_OPERATOR_DEFAULT_REQUESTS": "cpu=1"}, "not a JSON object"),
    ],
)
def test_bad_settings_name_their_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        OperatorSettings.from_env(environ)

"""The model preflight against a real Cloud Storage emulator, through google-cloud-storage.

What the emulator cannot show (it has no IAM): a 403 for the pods' account and a refused
impersonation. Those are the client library's own exception types handed to ``judge``, the
pure function that reads them; nothing is called on a fake.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core.exceptions import Forbidden, NotFound, ServiceUnavailable
from google.auth.exceptions import RefreshError

from memoserve_contract.resource.inferenceservice import InferenceService
from memoserve_operator.preflight import FAILED_TTL, FOUND_TTL, ModelPreflight, judge
from tests.operator.fake_api import isvc_body
from tests.operator.helpers import SETTINGS
from tests.support.gcs import BUCKET, GcsEmulator

PODS = "iris@p.iam.gserviceaccount.com"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def bucket(gcs_emulator: GcsEmulator) -> Any:
    gcs_emulator.wipe()
    return gcs_emulator.bucket()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def preflight(gcs_emulator: GcsEmulator, clock: Clock) -> ModelPreflight:
    settings = SETTINGS.model_copy(
        update={"model_preflight": True, "storage_endpoint": gcs_emulator.url}
    )
    return ModelPreflight(settings, clock=clock)


def service(uri: str, **spec: Any) -> InferenceService:
    body = isvc_body(**spec)
    body["spec"]["model"]["uri"] = uri
    return InferenceService.from_body(body)


@pytest.mark.parametrize(
    "uri",
    [
        f"gs://{BUCKET}/iris/model.onnx",  # the object
        f"gs://{BUCKET}/iris",  # a prefix, without and with its slash
        f"gs://{BUCKET}/iris/",
        f"gs://{BUCKET}",  # the whole bucket
    ],
)
async def test_an_object_or_a_prefix_with_files_is_found(
    preflight: ModelPreflight, bucket: Any, uri: str
) -> None:
    bucket.blob("iris/model.onnx").upload_from_string(b"onnx")
    result = await preflight.check(service(uri))
    assert (result.result, result.hold, result.verdict) == ("found", False, None)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            f"gs://{BUCKET}/iris/modle.onnx",
            f"gs://{BUCKET}/iris/modle.onnx: no such object, and no objects under "
            f"gs://{BUCKET}/iris/modle.onnx/",
        ),
        (
            f"gs://{BUCKET}/empty/",  # only a console's "folder" placeholder
            f"gs://{BUCKET}/empty/: no such object, and no objects under gs://{BUCKET}/empty/",
        ),
        (
            "gs://no-such-bucket/iris/",
            "gs://no-such-bucket/iris/: bucket no-such-bucket does not exist",
        ),
    ],
)
async def test_a_missing_model_fails_and_holds(
    preflight: ModelPreflight, bucket: Any, uri: str, message: str
) -> None:
    bucket.blob("iris/model.onnx").upload_from_string(b"onnx")
    bucket.blob("empty/").upload_from_string(b"")
    result = await preflight.check(service(uri))
    assert result.hold
    assert result.verdict is not None
    assert (result.verdict.type, result.verdict.status) == ("ModelReady", "False")
    assert (result.verdict.reason, result.verdict.message) == ("ModelPreflightFailed", message)


async def test_answers_are_kept_for_their_ttl_and_a_new_uri_is_asked_at_once(
    preflight: ModelPreflight, bucket: Any, clock: Clock
) -> None:
    uri = f"gs://{BUCKET}/iris/model.onnx"
    assert (await preflight.check(service(uri))).hold
    bucket.blob("iris/model.onnx").upload_from_string(b"onnx")  # the user uploads it
    assert (await preflight.check(service(uri))).hold  # not asked again yet
    clock.now += FAILED_TTL
    assert (await preflight.check(service(uri))).result == "found"
    bucket.blob("iris/model.onnx").delete()
    clock.now += FOUND_TTL - 1
    assert (await preflight.check(service(uri))).result == "found"  # kept
    assert (await preflight.check(service(f"gs://{BUCKET}/iris/other.onnx"))).hold  # new key


async def test_an_external_model_server_is_not_checked(preflight: ModelPreflight) -> None:
    # The operator hands model.uri to no container of a model.server service (its own args
    # say where it loads from), so a URI that is not there says nothing about its pods.
    missing = f"gs://{BUCKET}/triton-repository/"
    server = {"image": "tritonserver:24.08", "port": 8000, "readinessPath": "/v2/health/ready"}
    external = InferenceService.from_body(
        isvc_body(front={"enabled": True}, model={"uri": missing, "server": server})
    )
    assert (await preflight.check(external)).result == "found"
    builtin = service(missing, front={"enabled": True})  # its model tier loads model.uri
    assert (await preflight.check(builtin)).hold


async def test_local_paths_are_not_checked(preflight: ModelPreflight) -> None:
    assert (await preflight.check(service("/models/iris.onnx"))).result == "found"


def test_denied_to_the_pods_account_fails() -> None:
    result = judge(
        "gs://m/iris/",
        Forbidden("iris@p.iam.gserviceaccount.com does not have storage.objects.list access"),
        as_pods="iris@p.iam.gserviceaccount.com",
    )
    assert result.hold
    assert result.verdict is not None
    assert result.verdict.message == (
        "gs://m/iris/: iris@p.iam.gserviceaccount.com may not read it: "
        "iris@p.iam.gserviceaccount.com does not have storage.objects.list access"
    )


@pytest.mark.parametrize(
    ("exc", "as_pods"),
    [
        (Forbidden("the operator may not list"), None),  # the pods may still be allowed
        (RefreshError("iam.serviceAccounts.getAccessToken denied"), PODS),
        (ServiceUnavailable("try again"), PODS),
        (OSError("connection refused"), None),
    ],
)
def test_what_it_cannot_decide_holds_nothing(
    exc: Exception, as_pods: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    result = judge("gs://m/iris/", exc, as_pods=as_pods)
    assert (result.result, result.hold, result.verdict) == ("undecided", False, None)
    assert "gs://m/iris/" in caplog.text


def test_a_missing_bucket_fails_whoever_asked() -> None:
    assert judge("gs://m/iris/", NotFound("no bucket"), as_pods=None).hold

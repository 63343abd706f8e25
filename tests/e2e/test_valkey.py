"""A service with a Memorystore for Valkey cache on a real API server: the operator (a real
process, exactly its RBAC) creates the instance in the emulator, the service becomes Ready,
and the pods' Secret and environment are those of an IAM-auth, TLS, sharded cache."""

from __future__ import annotations

import base64
import json
import time

from memoserve_contract.settings import env_var
from memoserve_operator.cache import naming
from memoserve_operator.cache.record import ANNOTATION, FINALIZER
from tests.e2e.helpers import ISVC, apply_isvc, wait_for, wait_ready
from tests.memorystore.emulator_thread import EmulatorThread
from tests.support.controlplane import ControlPlane
from tests.support.operator_process import OperatorProcess

SPEC = {
    "model": {"uri": "gs://my-models/ranker/v3/", "format": "sklearn"},
    # Small: one shard without replicas is still a cluster (cluster protocol, discovery).
    "cache": {"valkey": {"shardCount": 1, "replicaCount": 0, "deletionPolicy": "Delete"}},
}


def test_a_valkey_service_becomes_ready_with_an_iam_tls_endpoint(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    memorystore_emulator: EmulatorThread,
    namespace: str,
) -> None:
    apply_isvc(control_plane, namespace, "ranker", SPEC)
    wait_ready(control_plane, namespace, "ranker", timeout=180)
    instance_id = naming.instance_id(namespace, "ranker")
    name = f"projects/e2e-project/locations/us-central1/instances/{instance_id}"
    instance = memorystore_emulator.valkey.records[name].resource
    discovery = instance.discovery_endpoints[0]

    obj = control_plane.get(ISVC, "ranker", "-n", namespace)
    cache = obj["status"]["cache"]
    assert (cache["source"], cache["engine"], cache["name"]) == ("valkey", "valkey", name)
    assert (cache["host"], cache["port"], cache["shards"]) == (
        discovery.address, discovery.port, 1,
    )  # fmt: skip
    ready = next(c for c in obj["status"]["conditions"] if c["type"] == "CacheReady")
    assert (ready["status"], ready["reason"]) == ("True", "ValkeyReady")
    record = json.loads(obj["metadata"]["annotations"][ANNOTATION])
    assert record == {"name": name, "deletionPolicy": "Delete", "engine": "valkey"}

    secret = control_plane.get("secret", "ranker-redis", "-n", namespace)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["url"] == f"rediss://{discovery.address}:{discovery.port}/0"
    assert data["auth"] == "iam"
    assert "BEGIN CERTIFICATE" in data["ca.crt"]
    assert "password" not in data  # IAM auth: nothing secret

    deployment = control_plane.get("deployment", "ranker", "-n", namespace)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env[env_var("redis_auth")]["value"] == "iam"
    assert env[env_var("redis_url")]["valueFrom"]["secretKeyRef"] == {
        "name": "ranker-redis", "key": "url",
    }  # fmt: skip
    assert env_var("redis_password_file") not in env

    # Deleted with the service (deletionPolicy Delete), after which the finalizer lets go.
    control_plane.kubectl("delete", ISVC, "ranker", "-n", namespace, "--timeout=120s")
    wait_for(
        lambda: name not in memorystore_emulator.valkey.records,
        "the Valkey instance to be deleted",
        timeout=60,
    )


def test_an_operator_killed_after_the_create_call_never_creates_twice(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    memorystore_emulator: EmulatorThread,
    namespace: str,
) -> None:
    name = (
        "projects/e2e-project/locations/us-central1/instances/"
        f"{naming.instance_id(namespace, 'ranker')}"
    )
    creates = memorystore_emulator.calls("CreateInstance")
    apply_isvc(control_plane, namespace, "ranker", SPEC)
    # The create call reached Google (the emulator holds the instance, CREATING): SIGKILL at
    # once, most likely before the operator wrote the operation into the status (either way,
    # the record it wrote before the call is all a new operator needs).
    deadline = time.monotonic() + 60
    while name not in memorystore_emulator.valkey.records:
        assert time.monotonic() < deadline, "no create call within 60 s"
        time.sleep(0.002)
    operator.kill()
    # Recorded before the call: the finalizer holds the service until the instance is dealt
    # with, whatever the killed operator did not get to write.
    meta = control_plane.get(ISVC, "ranker", "-n", namespace)["metadata"]
    assert json.loads(meta["annotations"][ANNOTATION])["name"] == name
    assert FINALIZER in meta["finalizers"]
    operator.start()
    wait_ready(control_plane, namespace, "ranker", timeout=180)
    assert memorystore_emulator.calls("CreateInstance") == creates + 1
    control_plane.kubectl("delete", ISVC, "ranker", "-n", namespace, "--timeout=120s")

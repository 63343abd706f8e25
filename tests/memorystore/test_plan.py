"""The pure part of the Memorystore lifecycle: names, ownership, desired instance, differences,
endpoint, and the pacing of polls and retries."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from memoserve_contract.resource.status import CacheStatus
from memoserve_operator.cache.memorystore.api import Instance
from memoserve_operator.cache.memorystore.plan import (
    compare,
    desired_instance,
    endpoint,
    update_target,
)
from memoserve_operator.cache.naming import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    Location,
    existing_name,
    instance_id,
    location,
    not_owned,
    owner_labels,
)
from memoserve_operator.cache.outcome import CacheOutcome
from memoserve_operator.cache.pace import MemorystoreOutcome, Pacer
from memoserve_operator.settings import OperatorSettings
from memoserve_operator.verdict import Verdict
from tests.operator.helpers import make_isvc

WHERE = Location("proj-1", "us-central1")
SETTINGS = OperatorSettings(gcp_project="proj-1", gcp_region="us-central1")


@pytest.mark.parametrize(
    ("namespace", "name", "expected"),
    [
        ("ml", "iris", "ml-iris"),
        ("0day", "iris", "ms-0day-iris"),  # namespaces may start with a digit
        ("team-recommendations", "ranker-v2", "team-recommendations-ranker-v2"),
        ("a" * 30, "b" * 30, None),  # too long: shortened with a hash
    ],
)
def test_instance_id_is_valid_and_deterministic(
    namespace: str, name: str, expected: str | None
) -> None:
    found = instance_id(namespace, name)
    assert ID_PATTERN.match(found)
    assert len(found) <= MAX_ID_LENGTH
    assert found == instance_id(namespace, name)
    if expected is not None:
        assert found == expected
    else:
        assert found.startswith("a" * 10)
        assert found != instance_id(namespace, "b" * 29 + "c")


def test_long_names_that_share_a_prefix_get_different_ids() -> None:
    ids = {instance_id("x" * 63, f"{'y' * 60}{n}") for n in range(100)}
    assert len(ids) == 100
    assert all(ID_PATTERN.match(i) and len(i) == MAX_ID_LENGTH for i in ids)


def test_desired_instance_from_the_spec() -> None:
    isvc = make_isvc(
        cache={
            "memorystore": {
                "tier": "STANDARD_HA",
                "memorySizeGb": 5,
                "zone": "us-central1-f",
                "authorizedNetwork": "shared-vpc",
                "redisConfigs": {"notify-keyspace-events": "Ex"},
                "labels": {"team": "ml", "managed-by": "someone-else"},
                "replicaCount": 2,
            }
        }
    )
    assert isvc.spec.cache is not None
    assert isvc.spec.cache.memorystore is not None
    wanted = desired_instance(isvc, isvc.spec.cache.memorystore, WHERE)
    assert wanted.name == "projects/proj-1/locations/us-central1/instances/ml-iris"
    assert wanted.authorized_network == "projects/proj-1/global/networks/shared-vpc"
    # The default eviction policy stays unless the spec names another; owner labels win.
    assert wanted.redis_configs == {
        "maxmemory-policy": "allkeys-lru",
        "notify-keyspace-events": "Ex",
    }
    assert wanted.labels == {"team": "ml"} | owner_labels(isvc)
    assert (wanted.auth_enabled, wanted.tls, wanted.replica_count) == (True, True, 2)
    assert (wanted.location_id, wanted.redis_version) == ("us-central1-f", "")


def test_ownership_by_labels() -> None:
    isvc = make_isvc(cache={"memorystore": {}})
    ours = Instance(name="n", labels=owner_labels(isvc))
    assert not_owned(ours, "uid-1") is None
    assert "not created by memoserve" in str(not_owned(Instance(name="n"), "uid-1"))
    earlier = not_owned(ours, "uid-2")
    assert earlier is not None
    assert "ml/iris with uid uid-1" in earlier
    assert "memoserve-uid=uid-2" in earlier  # how to adopt it


def test_location_from_spec_settings_or_credentials() -> None:
    spec = make_isvc(cache={"memorystore": {"zone": "europe-west4-b"}}).spec.cache
    assert spec is not None
    assert spec.memorystore is not None
    zone = spec.memorystore.zone
    assert location(None, None, zone, OperatorSettings(), "adc-project") == Location(
        "adc-project", "europe-west4"
    )
    assert location(None, None, None, SETTINGS, None) == WHERE
    unset = OperatorSettings()
    assert "MEMOSERVE_OPERATOR_GCP_PROJECT" in str(location(None, None, None, unset, None))
    assert "MEMOSERVE_OPERATOR_GCP_REGION" in str(location(None, None, None, unset, "p"))
    assert existing_name("shared", WHERE) == f"{WHERE.parent}/instances/shared"
    assert existing_name("projects/o/locations/r/instances/s", WHERE).startswith("projects/o/")


ACTUAL = Instance(
    name=f"{WHERE.parent}/instances/ml-iris",
    tier="BASIC",
    memory_size_gb=1,
    redis_version="REDIS_7_0",
    location_id="us-central1-a",
    authorized_network="projects/proj-1/global/networks/default",
    auth_enabled=True,
    transit_encryption_mode="SERVER_AUTHENTICATION",
    redis_configs={"maxmemory-policy": "allkeys-lru"},
    labels={"a": "b"},
    display_name="memoserve ml/iris",
)
DESIRED = dataclasses.replace(ACTUAL, redis_version="", location_id="", authorized_network="")


@pytest.mark.parametrize(
    ("change", "update", "upgrade", "recreate"),
    [
        ({}, (), None, ()),
        ({"memory_size_gb": 4}, ("memory_size_gb",), None, ()),
        ({"redis_configs": {"maxmemory-policy": "volatile-lru"}}, ("redis_configs",), None, ()),
        ({"labels": {"a": "c"}, "display_name": "x"}, ("labels", "display_name"), None, ()),
        ({"auth_enabled": False}, ("auth_enabled",), None, ()),
        ({"labels": {}, "redis_configs": {}}, (), None, ()),  # others' keys are not fought over
        ({"redis_version": "REDIS_7_2"}, (), "REDIS_7_2", ()),
        ({"redis_version": "REDIS_6_X"}, (), None, ("redis_version",)),
        ({"tier": "STANDARD_HA"}, (), None, ("tier",)),
        ({"connect_mode": "PRIVATE_SERVICE_ACCESS"}, (), None, ("connect_mode",)),
        ({"transit_encryption_mode": "DISABLED"}, (), None, ("transit_encryption_mode",)),
        ({"location_id": "us-central1-b"}, (), None, ("location_id",)),
        (
            {"authorized_network": "projects/proj-1/global/networks/other"},
            (),
            None,
            ("authorized_network",),
        ),
        (
            {"name": "projects/proj-1/locations/europe-west4/instances/ml-iris"},
            (),
            None,
            ("location",),
        ),
    ],
)
def test_compare(
    change: dict[str, Any], update: tuple[str, ...], upgrade: str | None, recreate: tuple[str, ...]
) -> None:
    changes = compare(dataclasses.replace(DESIRED, **change), ACTUAL)
    assert (changes.update, changes.upgrade) == (update, upgrade)
    assert tuple(r.split(":")[0] for r in changes.recreate) == recreate


def test_an_update_keeps_the_map_keys_it_does_not_name() -> None:
    desired = dataclasses.replace(DESIRED, labels={"team": "ml"}, memory_size_gb=2)
    target = update_target(desired, ACTUAL)
    assert (target.name, target.memory_size_gb) == (ACTUAL.name, 2)
    assert target.labels == {"a": "b", "team": "ml"}
    assert target.redis_configs == {"maxmemory-policy": "allkeys-lru"}


def test_endpoint_of_an_instance() -> None:
    ready = dataclasses.replace(
        ACTUAL, host="10.0.0.3", port=6378, server_ca_certs=("PEM1", "PEM2\n")
    )
    found = endpoint(ready, "s3cret")
    assert (found.url, found.password, found.ca_cert) == (
        "rediss://10.0.0.3:6378/0",
        "s3cret",
        "PEM1\nPEM2\n",
    )
    plain = dataclasses.replace(
        ready, auth_enabled=False, transit_encryption_mode="DISABLED", port=6379
    )
    assert endpoint(plain, None) == dataclasses.replace(
        found, port=6379, tls=False, password=None, ca_cert=None
    )


def _outcome(reason: str) -> CacheOutcome:
    return CacheOutcome(Verdict.false("CacheReady", reason), CacheStatus())


def test_pacer_polls_backs_off_and_remembers() -> None:
    now = [0.0]
    settings = OperatorSettings(memorystore_poll_seconds=10, memorystore_max_backoff_seconds=60)
    pacer = Pacer(settings, clock=lambda: now[0])
    delays = [
        pacer.record("k", "d", MemorystoreOutcome("waiting", _outcome("CacheCreating"))).retry_after
        for _ in range(5)
    ]
    assert delays == [10, 20, 40, 60, 60]
    assert pacer.skip("k", "d") is None  # polls always ask
    failed = pacer.record("k", "d", MemorystoreOutcome("failed", _outcome("PERMISSION_DENIED")))
    assert failed.retry_after == 20
    now[0] = 5
    repeated = pacer.skip("k", "d")
    assert repeated is not None
    assert (repeated.verdict.reason, repeated.retry_after) == (
        "PERMISSION_DENIED",
        15,
    )
    assert pacer.skip("k", "other spec") is None  # a spec change asks at once
    now[0] = 21
    assert pacer.skip("k", "d") is None
    assert (
        pacer.record(
            "k", "d", MemorystoreOutcome("failed", _outcome("PERMISSION_DENIED"))
        ).retry_after
        == 40
    )
    final = pacer.record(
        "k", "d", MemorystoreOutcome("failed", _outcome("INVALID_ARGUMENT"), retryable=False)
    )
    assert final.retry_after is None
    now[0] = 10_000
    left = pacer.skip("k", "d")
    assert left is not None
    assert left.retry_after is None
    pacer.record("k", "d2", MemorystoreOutcome("ready", _outcome("MemorystoreReady")))
    assert pacer.skip("k", "d2") is not None  # fresh for memorystore_refresh_seconds
    now[0] = 10_061
    assert pacer.skip("k", "d2") is None

"""The pure part of the Valkey / Redis Cluster lifecycle: the desired instance, what changes in
place (one field per update) and what needs a new instance, the endpoint, ownership, and the
recognition of a missing service connection policy."""

from __future__ import annotations

import dataclasses

import pytest

from memoserve_operator.cache.gcp import MemorystoreError
from memoserve_operator.cache.naming import Location, owner_labels
from memoserve_operator.cache.sharded import psc
from memoserve_operator.cache.sharded.api import (
    AUTH_DISABLED,
    DISABLED,
    REDIS_CLUSTER,
    VALKEY,
    ShardedInstance,
)
from memoserve_operator.cache.sharded.plan import (
    compare,
    desired_instance,
    endpoint,
    update_target,
)
from tests.operator.helpers import make_isvc

WHERE = Location("proj-1", "us-central1")
CLUSTERS = Location("proj-1", "us-central1", "clusters")
ISVC = make_isvc()
NETWORKS = "projects/proj-1/global/networks"


def _actual(engine: str = VALKEY, **changes: object) -> ShardedInstance:
    where = WHERE if engine == VALKEY else CLUSTERS
    base = desired_instance(
        ISVC, ShardedInstance(engine, shard_count=3, replica_count=1), where, "vpc"
    )
    fields = {"state": "ACTIVE", "discovery_address": "10.0.0.5", "discovery_port": 6379}
    return dataclasses.replace(base, **(fields | changes))  # type: ignore[arg-type]


def test_desired_valkey_instance_is_named_labelled_and_evicts() -> None:
    wish = ShardedInstance(
        VALKEY,
        shard_count=3,
        configs={"maxmemory-policy": "volatile-lru"},
        network="vpc-1",
        labels={"team": "ml", "managed-by": "someone-else"},
    )
    wanted = desired_instance(ISVC, wish, WHERE, "default")
    assert wanted.name == "projects/proj-1/locations/us-central1/instances/ml-iris"
    assert wanted.network == "projects/proj-1/global/networks/vpc-1"
    assert wanted.configs == {"maxmemory-policy": "volatile-lru"}  # the spec's wins
    assert wanted.labels == {"team": "ml"} | owner_labels(ISVC)
    assert wanted.authorization_mode == "IAM_AUTH"
    assert wanted.transit_encryption_mode == "SERVER_AUTHENTICATION"


def test_desired_redis_cluster_has_no_labels_and_a_cluster_name() -> None:
    wish = ShardedInstance(REDIS_CLUSTER, shard_count=3, labels={"team": "ml"})
    wanted = desired_instance(ISVC, wish, CLUSTERS, "shared")
    assert wanted.name == "projects/proj-1/locations/us-central1/clusters/ml-iris"
    assert wanted.labels == {}  # the API has none
    assert wanted.configs == {"maxmemory-policy": "allkeys-lru"}
    assert wanted.network == f"{NETWORKS}/shared"  # the operator's, when the spec names none


@pytest.mark.parametrize(
    ("engine", "desired", "update", "recreate"),
    [
        (VALKEY, {}, (), ()),
        (VALKEY, {"shard_count": 4}, ("shard_count",), ()),
        (VALKEY, {"replica_count": 2}, ("replica_count",), ()),
        # One scaling change per operation: shards first, replicas on a later reconcile.
        (VALKEY, {"shard_count": 4, "replica_count": 2}, ("shard_count",), ()),
        (VALKEY, {"replica_count": None}, (), ()),  # None: the default, not compared
        (VALKEY, {"node_type": "HIGHMEM_MEDIUM"}, ("node_type",), ()),
        (VALKEY, {"configs": {"maxmemory-policy": "allkeys-lfu"}}, ("configs",), ()),
        (VALKEY, {"labels": {"team": "ml"}}, ("labels",), ()),
        (VALKEY, {"engine_version": "VALKEY_8_0"}, ("engine_version",), ()),
        (REDIS_CLUSTER, {"shard_count": 4}, ("shard_count",), ()),
        (REDIS_CLUSTER, {"configs": {"maxmemory-policy": "allkeys-lfu"}}, ("configs",), ()),
        (
            VALKEY,
            {"authorization_mode": AUTH_DISABLED},
            (),
            ("authorization_mode: IAM_AUTH -> AUTH_DISABLED",),
        ),
        (
            REDIS_CLUSTER,
            {"transit_encryption_mode": DISABLED, "shard_count": 5},
            ("shard_count",),  # what can change does; the rest is reported
            ("transit_encryption_mode: SERVER_AUTHENTICATION -> DISABLED",),
        ),
        (
            VALKEY,
            {"network": f"{NETWORKS}/other"},
            (),
            (f"network: {NETWORKS}/vpc -> {NETWORKS}/other",),
        ),
        (VALKEY, {"mode": "CLUSTER_DISABLED"}, (), ("mode: CLUSTER -> CLUSTER_DISABLED",)),
    ],
)
def test_compare(
    engine: str,
    desired: dict[str, object],
    update: tuple[str, ...],
    recreate: tuple[str, ...],
) -> None:
    actual = _actual(
        engine,
        engine_version="VALKEY_7_2" if engine == VALKEY else "",
        mode="CLUSTER" if engine == VALKEY else "",
        network=f"{NETWORKS}/vpc",
    )
    unset = {"state": "", "discovery_address": "", "discovery_port": 0, "engine_version": "",
             "mode": "", "network": ""}  # fmt: skip
    wanted = dataclasses.replace(actual, **(unset | desired))  # type: ignore[arg-type]
    changes = compare(wanted, actual)
    assert (changes.update, changes.recreate) == (update, recreate)
    assert changes.upgrade is None


def test_compare_says_what_follows_and_refuses_a_downgrade() -> None:
    actual = _actual(engine_version="VALKEY_8_0")
    wanted = dataclasses.replace(actual, shard_count=4, replica_count=2)
    assert compare(wanted, actual).summary == "shard_count: 3 -> 4 (then replica_count)"
    older = compare(dataclasses.replace(actual, engine_version="VALKEY_7_2"), actual)
    assert older.update == ()
    assert older.recreate == ("engine_version: VALKEY_8_0 -> VALKEY_7_2",)


def test_compare_across_locations() -> None:
    actual = _actual()
    moved = dataclasses.replace(actual, name=actual.name.replace("us-central1", "europe-west4"))
    assert compare(moved, actual).recreate == (
        "location: projects/proj-1/locations/us-central1 -> projects/proj-1/locations/europe-west4",
    )


def test_update_target_keeps_the_rest_and_merges_maps() -> None:
    actual = _actual(configs={"maxmemory-policy": "allkeys-lru", "notify-keyspace-events": "Ex"})
    wanted = dataclasses.replace(actual, shard_count=4, configs={"maxmemory-policy": "allkeys-lfu"})
    target = update_target(wanted, actual, ("configs",))
    assert target.shard_count == 3  # not in the mask: as it is
    assert target.configs == {"maxmemory-policy": "allkeys-lfu", "notify-keyspace-events": "Ex"}
    assert update_target(wanted, actual, ("shard_count",)).shard_count == 4


@pytest.mark.parametrize("tls", [True, False])
def test_endpoint_is_the_discovery_endpoint_and_holds_no_secret(tls: bool) -> None:
    mode = "SERVER_AUTHENTICATION" if tls else "DISABLED"
    instance = _actual(transit_encryption_mode=mode)
    found = endpoint(instance, ("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----",))
    assert (found.host, found.port, found.tls) == ("10.0.0.5", 6379, tls)
    assert found.password is None
    assert (found.ca_cert is not None) == tls
    if tls:
        assert found.ca_cert is not None
        assert found.ca_cert.endswith("-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(
    ("code", "message", "missing"),
    [
        (
            "FAILED_PRECONDITION",
            "No service connection policy is associated with project/network/region",
            True,
        ),
        ("INVALID_ARGUMENT", "no Service Connection Policy found for network default", True),
        ("FAILED_PRECONDITION", "Service connection policy limit reached", False),
        ("PERMISSION_DENIED", "No service connection policy is associated with ...", False),
        ("FAILED_PRECONDITION", "an operation is in progress", False),
    ],
)
def test_a_missing_service_connection_policy_is_recognised(
    code: str, message: str, missing: bool
) -> None:
    assert psc.policy_missing(MemorystoreError(code, message)) is missing


def test_the_missing_policy_message_says_what_to_create() -> None:
    exc = MemorystoreError("FAILED_PRECONDITION", "No service connection policy is associated")
    where = psc.Where("projects/proj-1/global/networks/vpc-1", "gcp-memorystore", "us-central1")
    verdict = psc.verdict(exc, where, "proj-1")
    assert verdict.reason == "ServiceConnectionPolicyMissing"
    for part in (
        "service class gcp-memorystore",
        "projects/proj-1/global/networks/vpc-1",
        "region us-central1",
        "gcloud network-connectivity service-connection-policies create",
        "--network=vpc-1",
        "--region=us-central1",
        "--service-class=gcp-memorystore",
        "FAILED_PRECONDITION: No service connection policy is associated",
    ):
        assert part in verdict.message
